#!/bin/bash
# slim-equivalent.sh IMAGE - builds, for comparison only, what the fdstore image would be on a
# node:20-bookworm-slim base, which cannot be pulled here: the closest local equivalent of it.
#
#   base   localhost/fdstore-image/bookworm:slim = the debootstrap minbase with what
#          debian:bookworm-slim leaves out removed as debuerreotype's slimify does
#          (/usr/share/doc except copyright files, man, info, groff, lintian, linda,
#          locale except locale.alias; apt's package cache and lists), squashed into
#          one layer so the removals really shrink it
#   node   this machine's node 20 install as node's release tarball lays it out under
#          /usr/local (the binary unstripped, npm, corepack, headers), as the official
#          node images do (they add yarn 1, about 5 MB, which this leaves out)
#   app    IMAGE's /opt/fdstore (the same runtime node_modules, dist, addon, launcher)
#
# stdout: SLIM_BASE_IMAGE, SLIM_BASE_SIZE, SLIM_IMAGE, SLIM_IMAGE_SIZE, IMAGE_SIZE (bytes,
# podman image inspect .Size). Needs build.sh's cache (same podman storage); root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
IMAGE=${1:?usage: slim-equivalent.sh IMAGE (as build.sh prints it)}
SLIM_BASE=localhost/fdstore-image/bookworm:slim
SLIM_REPO=localhost/fdstore-image/slim-equivalent

image_prepare
image_minbase
podman image exists "$IMAGE" || image_die "$IMAGE is not in $IMAGE_CACHE's storage (run build.sh)"

if ! podman image exists "$SLIM_BASE"; then
  t=$(image_now)
  ctx=$IMAGE_CACHE/slim-base-ctx
  rm -rf "$ctx"; mkdir -p "$ctx"
  cat >"$ctx/Containerfile" <<EOF
FROM $MINBASE_IMAGE
RUN find /usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete \\
 && find /usr/share/doc -mindepth 1 -type d -empty -delete \\
 && find /usr/share/locale -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + \\
 && rm -rf /usr/share/man/* /usr/share/info/* /usr/share/groff/* /usr/share/lintian/* /usr/share/linda/* \\
      /var/cache/apt/archives/*.deb /var/cache/apt/*.bin /var/lib/apt/lists/*
EOF
  podman build -q --pull=never --network=none --squash-all -t "$SLIM_BASE" "$ctx" >"$IMAGE_CACHE/slim.log" 2>&1 \
    || { tail -n 20 "$IMAGE_CACHE/slim.log" >&2; image_die "slim base failed (log: $IMAGE_CACHE/slim.log)"; }
  rm -rf "$ctx"
  echo "$(date +%F.%T) slim base $(image_since "$t") s" >>"$IMAGE_CACHE/timings.txt"
fi

SLIM_IMAGE=$SLIM_REPO:${IMAGE##*:}
if ! podman image exists "$SLIM_IMAGE"; then
  t=$(image_now)
  NODE=$(readlink -f "${FDSTORE_IMAGE_NODE:-$(command -v node)}")
  NODE_PREFIX=$(dirname "$(dirname "$NODE")")
  ctx=$IMAGE_CACHE/slim-ctx
  rm -rf "$ctx"
  mkdir -p "$ctx/usr/local/bin" "$ctx/usr/local/include" "$ctx/usr/local/lib/node_modules"
  cp "$NODE" "$ctx/usr/local/bin/node"
  cp -a "$NODE_PREFIX/include/node" "$ctx/usr/local/include/"
  for m in npm corepack; do
    [ ! -d "$NODE_PREFIX/lib/node_modules/$m" ] || cp -a "$NODE_PREFIX/lib/node_modules/$m" "$ctx/usr/local/lib/node_modules/"
  done
  cat >"$ctx/Containerfile" <<EOF
FROM $SLIM_BASE
COPY usr/ /usr/
COPY --from=$IMAGE /opt/fdstore /opt/fdstore
USER 64919:64919
ENTRYPOINT ["/usr/local/bin/node", "/opt/fdstore/bin/fdstore.js"]
EOF
  podman build -q --pull=never --network=none -t "$SLIM_IMAGE" "$ctx" >"$IMAGE_CACHE/slim.log" 2>&1 \
    || { tail -n 20 "$IMAGE_CACHE/slim.log" >&2; image_die "slim equivalent failed (log: $IMAGE_CACHE/slim.log)"; }
  rm -rf "$ctx"
  for old in $(podman images --noheading --format '{{.Repository}}:{{.Tag}}' "$SLIM_REPO"); do
    [ "$old" = "$SLIM_IMAGE" ] || podman rmi "$old" >/dev/null 2>&1 || true
  done
  echo "$(date +%F.%T) slim equivalent $SLIM_IMAGE $(image_since "$t") s" >>"$IMAGE_CACHE/timings.txt"
fi

echo "SLIM_BASE_IMAGE=$SLIM_BASE"
echo "SLIM_BASE_SIZE=$(podman image inspect --format '{{.Size}}' "$SLIM_BASE")"
echo "SLIM_IMAGE=$SLIM_IMAGE"
echo "SLIM_IMAGE_SIZE=$(podman image inspect --format '{{.Size}}' "$SLIM_IMAGE")"
echo "IMAGE_SIZE=$(podman image inspect --format '{{.Size}}' "$IMAGE")"
