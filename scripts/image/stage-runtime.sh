#!/bin/bash
# stage-runtime.sh NODE_PREFIX OUT - runs in the Dockerfile's builder stage, in the built
# source tree (after npm run install, npm run build, npm prune --omit=dev and the entry's
# gcc). It lays out the runtime image's files in three trees, one COPY (layer) each, from
# the least to the most often changed:
#   OUT/base  node (stripped), the dynamic loader and the shared libraries ldd names for
#             node, the addon and the entry; /etc/passwd, group, nsswitch.conf (no /tmp:
#             nothing writes one; docs/image.md)
#   OUT/deps  /opt/fdstore/node_modules: runtime dependencies only, without type
#             declarations, source maps and Bare addons (nothing loads them under node)
#   OUT/app   /opt/fdstore/{package.json,bin,dist}, the addon, the launcher; the
#             /usr/local/bin/fdstore and fdstore-exec commands
# Everything is root's and not writable by others: the agent (uid 64919) cannot change
# its own code, and needs to write nowhere in the image (docs/image.md).
set -euo pipefail
NODE_PREFIX=$1
OUT=$2
APP=/opt/fdstore
# The agent's uid and gid: its own, not 65532 (distroless nonroot, which apps often use; docs/security.md).
AGENT_ID=64919
ENTRY=build/fdstore                 # agent/entry/fdstore.c, built by the Dockerfile
ADDON=agent/addon/build/Release/fdstore.node
LAUNCHER=agent/launcher/fdstore-exec
KEEPER=agent/keeper/fdstore-keeper   # static, like the launcher (docs/keeper.md)

die() { echo "stage-runtime.sh: $*" >&2; exit 1; }
for f in "$NODE_PREFIX/bin/node" "$ENTRY" "$ADDON" "$LAUNCHER" "$KEEPER" dist/cli/main.js bin/fdstore.js package.json; do
  [ -e "$f" ] || die "$f is missing"
done
rm -rf "$OUT"
base=$OUT/base deps=$OUT/deps app=$OUT/app

# ---- base
install -D -m 0755 "$NODE_PREFIX/bin/node" "$base/usr/local/bin/node"
# The symbol table is 12 MB of node's ~99; the dynamic symbols the addon links against stay.
strip "$base/usr/local/bin/node"
# The launcher is static (it runs in any app image) and so has no libraries to list.
ldd_out=$(ldd "$base/usr/local/bin/node" "$ADDON" "$ENTRY") || die "ldd failed: $ldd_out"
if grep -q 'not found' <<<"$ldd_out"; then die "missing libraries: $ldd_out"; fi
# "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)";
# linux-vdso has no file. Copied to the paths ldd shows (cp -L: the file, not the symlink), which
# are the paths the binaries and the loader's built-in search path name.
libs=$(awk '/:$/ { next } $2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$ldd_out" | sort -u)
[ -n "$libs" ] || die "ldd named no libraries: $ldd_out"
for lib in $libs; do cp -L --parents "$lib" "$base/"; done
mkdir -p "$base/etc"
# getpwuid (os.userInfo, logs) and getgrgid find the agent here; no login shell exists.
cat >"$base/etc/passwd" <<EOP
root:x:0:0:root:/root:/nonexistent
fdstore:x:$AGENT_ID:$AGENT_ID:fdstore agent:/nonexistent:/nonexistent
nobody:x:65534:65534:nobody:/nonexistent:/nonexistent
EOP
cat >"$base/etc/group" <<EOP
root:x:0:
fdstore:x:$AGENT_ID:
nogroup:x:65534:
EOP
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$base/etc/nsswitch.conf"

# ---- deps
mkdir -p "$deps$APP"
cp -a node_modules "$deps$APP/"
# *.bare: native addons of the Bare runtime's packages (bare-fs and friends, optional
# dependencies of client-node's tar-fs, which imports them only under Bare's "bare"
# condition): node cannot load them, and they are 7 MB of prebuilt code for six platforms.
find "$deps$APP/node_modules" -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \
  -o -name '*.bare' \) -delete
find "$deps$APP/node_modules" -type d -empty -delete
# npm's command links point at scripts that need a shell or /usr/bin/env: nothing to run them.
rm -rf "$deps$APP/node_modules/.bin"

# ---- app
mkdir -p "$app$APP"
cp -a package.json bin dist "$app$APP/"
install -D -m 0755 "$ADDON" "$app$APP/$ADDON"
install -D -m 0755 "$LAUNCHER" "$app$APP/$LAUNCHER"
install -D -m 0755 "$KEEPER" "$app$APP/$KEEPER"
install -D -m 0755 "$ENTRY" "$app/usr/local/bin/fdstore"
# The launcher at a fixed path too; the agent copies it from $APP/$LAUNCHER into each DIR/NAME.
ln -s "$APP/$LAUNCHER" "$app/usr/local/bin/fdstore-exec"
# The keeper's container runs the same image with this entrypoint.
ln -s "$APP/$KEEPER" "$app/usr/local/bin/fdstore-keeper"

chown -R 0:0 "$OUT"
chmod -R go-w "$OUT"
