#!/bin/bash
# build.sh - builds the fdstore image (the repo's Dockerfile) with podman from local base
# images, and writes it as a docker-archive tarball for containerd
# (`ctr -n k8s.io images import`). No container registry is used: only the Debian mirror
# (cold: the builder base's packages) and the npm registry (npm ci in the builder stage).
#
#   scripts/image/build.sh      # as root; idempotent: when the tag exists nothing is built
#
# 1. podman with runc, cgroupfs, storage in the cache (lib.sh);
# 2. localhost/fdstore-image/bookworm:minbase: debootstrap --variant=minbase bookworm (lib.sh);
# 3. the builder base, what node:20-bookworm is elsewhere: minbase + build-essential +
#    python3 (apt) + this machine's node 20 (binary, headers, npm) under /usr/local, and
#    the CA bundle npm uses here (the npm registry may be behind a TLS-intercepting proxy);
# 4. podman build --pull=never --network=host (npm ci needs the registry), BUILDER_IMAGE=3,
#    RUNTIME_BASE=scratch; tag localhost/fdstore:<version>-<content hash>, never :latest
#    (the kubelet would try to pull it). The hash covers the files the Dockerfile copies,
#    the Dockerfile itself and the builder base, so the tag changes exactly when the
#    image would; a commit that changes only docs or tests reuses the image;
# 5. podman save --format docker-archive to $CACHE/images/.
# The newest IMAGE_KEEP images and tarballs are kept, older ones removed.
#
# stdout, KEY=VALUE lines only (logs go to stderr; step times to $CACHE/timings.txt):
#   IMAGE=localhost/fdstore:0.1.0-0123456789ab
#   TARBALL=/var/cache/fdstore-image/images/fdstore-0.1.0-0123456789ab.tar
#   IMAGE_SIZE=<bytes: podman image inspect .Size>   BUILT=1 (built now) | 0 (cached)
#   CONTAINERS_CONF=... CONTAINERS_STORAGE_CONF=...  (the podman storage that holds it)
#   HASHED_PATHS=<the paths hashed for the tag>
#
# Environment: FDSTORE_IMAGE_CACHE (default /var/cache/fdstore-image), FDSTORE_IMAGE_RUNTIME
# (/run/fdstore-image), FDSTORE_IMAGE_NODE (node for the builder, default `command -v node`),
# FDSTORE_IMAGE_CA (CA bundle for npm in the builder; default npm's cafile, else
# NODE_EXTRA_CA_CERTS), MIRROR (Debian mirror; default apt's).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"

IMAGE_REPO=localhost/fdstore
BUILDER_REPO=localhost/fdstore-image/builder
IMAGE_KEEP=${IMAGE_KEEP:-3}
# The build's inputs: what the Dockerfile COPYs (test/image checks the two lists agree).
HASHED_PATHS="Dockerfile .dockerignore package.json package-lock.json .npmrc tsconfig.json tsconfig.build.json bin src agent scripts/image/stage-runtime.sh"
# bump when the builder base's recipe below changes
BUILDER_RECIPE=v1

T_ALL=$(image_now)
image_prepare
step() { echo "$(date +%F.%T) $1 $(image_since "$2") s" | tee -a "$IMAGE_CACHE/timings.txt" >&2; }

# ---- 2. minbase
image_minbase

# ---- 3. the builder base
NODE=${FDSTORE_IMAGE_NODE:-$(command -v node)}
NODE=$(readlink -f "$NODE")
NODE_PREFIX=$(dirname "$(dirname "$NODE")")
[ -f "$NODE_PREFIX/include/node/node_api.h" ] || image_die "no node headers in $NODE_PREFIX/include/node (node-gyp needs them)"
[ -f "$NODE_PREFIX/lib/node_modules/npm/bin/npm-cli.js" ] || image_die "no npm in $NODE_PREFIX/lib/node_modules/npm"
# one node for three facts (each start costs ~0.3 s on a loaded machine)
read -r node_major npm_version VERSION < <("$NODE" -p '[process.versions.node.split(".")[0],
  require(process.argv[1]).version, require(process.argv[2]).version].join(" ")' \
  "$NODE_PREFIX/lib/node_modules/npm/package.json" "$REPO/package.json")
[ "$node_major" = 20 ] || image_die "$NODE is node $node_major, not 20 (FDSTORE_IMAGE_NODE)"
node_sha16() { # hashing 100 MB costs 0.5 s: reuse the last hash while the file's identity is unchanged
  local id memo=$IMAGE_CACHE/.node-sha
  id=$(stat -L -c '%d:%i:%s:%Y' "$NODE")
  if [ "$(head -1 "$memo" 2>/dev/null)" != "$NODE $id" ]; then
    printf '%s\n%s\n' "$NODE $id" "$(sha256sum "$NODE" | cut -c1-16)" >"$memo"
  fi
  tail -1 "$memo"
}
# this machine's npm settings the builder needs: its registry and the CA bundle it trusts
npm_cafile= REGISTRY=https://registry.npmjs.org/
while IFS='=' read -r key value; do
  case "$key" in cafile) npm_cafile=$value ;; registry) REGISTRY=$value ;; esac
done < <("$NODE" "$NODE_PREFIX/lib/node_modules/npm/bin/npm-cli.js" config get cafile registry 2>/dev/null || true)
case "$npm_cafile" in null | undefined) npm_cafile= ;; esac
CA=${FDSTORE_IMAGE_CA:-${npm_cafile:-${NODE_EXTRA_CA_CERTS:-}}}
[ -z "$CA" ] || [ -r "$CA" ] || image_die "CA bundle $CA is not readable (FDSTORE_IMAGE_CA)"
ca_sum=none
[ -z "$CA" ] || ca_sum=$(sha256sum "$CA" | cut -c1-16)
builder_key=$(printf '%s\n' "$BUILDER_RECIPE" "$(node_sha16)" "$npm_version" "$ca_sum" "$REGISTRY" \
  "$(podman image inspect --format '{{.Id}}' "$MINBASE_IMAGE")" | sha256sum | cut -c1-16)
BUILDER=$BUILDER_REPO:$builder_key
if ! podman image exists "$BUILDER"; then
  t=$(image_now)
  ctx=$IMAGE_CACHE/builder-ctx
  rm -rf "$ctx"
  mkdir -p "$ctx/usr/local/bin" "$ctx/usr/local/include" "$ctx/usr/local/lib/node_modules"
  # the layout of node's release tarball (and of node:20-bookworm)
  cp "$NODE" "$ctx/usr/local/bin/node"
  cp -a "$NODE_PREFIX/include/node" "$ctx/usr/local/include/"
  cp -a "$NODE_PREFIX/lib/node_modules/npm" "$ctx/usr/local/lib/node_modules/"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/usr/local/bin/npx"
  ca_lines=
  if [ -n "$CA" ]; then
    cp "$CA" "$ctx/site-ca.crt"
    ca_lines='COPY site-ca.crt /usr/local/share/fdstore-build/site-ca.crt
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/fdstore-build/site-ca.crt'
  fi
  cat >"$ctx/Containerfile" <<EOF
# written by scripts/image/build.sh: this site's node:20-bookworm
FROM $MINBASE_IMAGE
RUN apt-get update -q \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends build-essential python3 \\
 && rm -rf /var/lib/apt/lists/*
COPY usr/ /usr/
$ca_lines
ENV npm_config_registry=$REGISTRY
RUN node --version && npm --version && gcc --version >/dev/null && python3 -c 0
EOF
  image_log "building the builder base $BUILDER (apt: build-essential python3; node $("$NODE" --version))"
  # host network for apt only (no bridge, no iptables needed)
  podman build -q --pull=never --network=host -t "$BUILDER" "$ctx" >"$IMAGE_CACHE/builder.log" 2>&1 \
    || { tail -n 30 "$IMAGE_CACHE/builder.log" >&2; image_die "builder base failed (log: $IMAGE_CACHE/builder.log)"; }
  rm -rf "$ctx"
  for old in $(podman images --noheading --format '{{.Repository}}:{{.Tag}}' "$BUILDER_REPO"); do
    [ "$old" = "$BUILDER" ] || podman rmi "$old" >/dev/null 2>&1 || true
  done
  step "builder base $BUILDER" "$t"
fi

# ---- 4. the image
content_hash() {
  local f list
  # tracked and untracked-but-not-ignored files (git-ignored ones are build outputs, which
  # .dockerignore leaves out too); without git, every file minus those outputs
  # shellcheck disable=SC2086
  if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
    list=$(cd "$REPO" && git ls-files -co --exclude-standard -- $HASHED_PATHS | LC_ALL=C sort -u)
  else
    list=$(cd "$REPO" && find $HASHED_PATHS -type f -not -path 'agent/addon/build/*' \
      -not -path agent/launcher/fdstore-exec -not -name '*.o' | LC_ALL=C sort -u)
  fi
  local present=()
  while IFS= read -r f; do
    if [ -f "$REPO/$f" ]; then present+=("$f"); fi   # not tracked files deleted in the work tree
  done <<<"$list"
  [ ${#present[@]} -gt 0 ] || image_die "no files to hash under $HASHED_PATHS"
  {
    echo "builder $(podman image inspect --format '{{.Id}}' "$BUILDER") runtime scratch version $VERSION"
    # contents and modes (COPY keeps the mode); one sha256sum and one stat for all files
    (cd "$REPO" && sha256sum -- "${present[@]}" && stat -c '%a %n' -- "${present[@]}")
  } | sha256sum | cut -c1-12
}
HASH=$(content_hash)
IMAGE=$IMAGE_REPO:$VERSION-$HASH
TARBALL=$IMAGE_CACHE/images/fdstore-$VERSION-$HASH.tar
mkdir -p "$IMAGE_CACHE/images"
BUILT=0
if ! podman image exists "$IMAGE"; then
  t=$(image_now)
  REVISION=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
  # shellcheck disable=SC2086
  if [ "$REVISION" != unknown ] && [ -n "$(git -C "$REPO" status --porcelain -- $HASHED_PATHS)" ]; then
    REVISION=$REVISION-dirty
  fi
  image_log "building $IMAGE (podman build; npm ci from $REGISTRY)"
  podman build --pull=never --network=host \
      --build-arg BUILDER_IMAGE="$BUILDER" --build-arg RUNTIME_BASE=scratch \
      --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" \
      -t "$IMAGE" -f "$REPO/Dockerfile" "$REPO" >"$IMAGE_CACHE/build.log" 2>&1 \
    || { tail -n 40 "$IMAGE_CACHE/build.log" >&2; image_die "podman build failed (log: $IMAGE_CACHE/build.log)"; }
  BUILT=1
  step "image $IMAGE" "$t"
fi
if [ ! -s "$TARBALL" ]; then
  t=$(image_now)
  rm -f "$TARBALL.tmp"
  podman save -q --format docker-archive -o "$TARBALL.tmp" "$IMAGE"
  mv "$TARBALL.tmp" "$TARBALL"
  step "tarball $TARBALL" "$t"
fi

# ---- the cache stays bounded: older images and tarballs go, and build layers no image
# uses any more once they are a day old (recent ones are the next build's cache)
if [ "$BUILT" = 1 ]; then
  n=0
  for old in $(podman images --noheading --sort created --format '{{.Repository}}:{{.Tag}}' "$IMAGE_REPO"); do
    [ "$old" = "$IMAGE" ] && continue
    n=$((n + 1))
    if [ "$n" -ge "$IMAGE_KEEP" ]; then
      podman rmi "$old" >/dev/null 2>&1 || true
      rm -f "$IMAGE_CACHE/images/fdstore-${old#"$IMAGE_REPO":}.tar"
    fi
  done
  podman image prune -f --filter until=24h >/dev/null 2>&1 || true
fi

SIZE=$(podman image inspect --format '{{.Size}}' "$IMAGE")
image_log "$IMAGE: $((SIZE / 1000000)) MB, $TARBALL ($(image_since "$T_ALL") s)"
echo "IMAGE=$IMAGE"
echo "TARBALL=$TARBALL"
echo "IMAGE_SIZE=$SIZE"
echo "BUILT=$BUILT"
echo "CONTAINERS_CONF=$CONTAINERS_CONF"
echo "CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF"
echo "HASHED_PATHS=$HASHED_PATHS"
