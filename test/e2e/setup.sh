#!/bin/bash
# Idempotent setup for the real-pod end-to-end test (test/e2e/pod.test.ts):
#   - podman configured with runc and cgroupfs (crun refuses the hybrid cgroup layout
#     of some hosts), ulimits no higher than this machine's hard limits, storage in a
#     cache dir outside the repo;
#   - a Debian bookworm minbase image from debootstrap (`podman import`), from the
#     mirror apt already uses; no container registry is needed;
#   - an image FROM it with python3 (the demo app needs http.server, which
#     python3-minimal lacks) and this machine's node
#     (the agent; the repo's addon is built against the same bookworm glibc).
# Images are reused when present: cold under a minute here (debootstrap ~35 s, build
# ~10 s; plus the apt install of the packages), warm about 1 s.
#
# Needs root and the Debian packages podman, runc, debootstrap (and catatonit, which
# podman uses for the pod's infra container).
#
# Environment:
#   FDSTORE_E2E_CACHE    storage, images, config (default /var/cache/fdstore-e2e)
#   FDSTORE_E2E_RUNTIME  podman's runtime state (default /run/fdstore-e2e)
#   FDSTORE_E2E_MIRROR   Debian mirror (default: the first one apt uses)
#   FDSTORE_E2E_NODE     node binary copied into the image (default: `command -v node`)
#
# Prints KEY=VALUE lines on stdout for the test (the podman environment and the
# image); everything else goes to stderr.
set -euo pipefail

CACHE=${FDSTORE_E2E_CACHE:-/var/cache/fdstore-e2e}
RUNTIME=${FDSTORE_E2E_RUNTIME:-/run/fdstore-e2e}
BASE_IMAGE=localhost/fdstore-e2e-bookworm:latest
NODE_REPO=localhost/fdstore-e2e-node

die() { echo "fdstore e2e setup: $*" >&2; exit 1; }
log() { echo "fdstore e2e setup: $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (podman kube play with runAsUser, hostPath run dirs)"
missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[ -x /usr/libexec/podman/catatonit ] || command -v catatonit >/dev/null || missing+=(catatonit)
[ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: apt-get install podman runc debootstrap catatonit"
NODE=${FDSTORE_E2E_NODE:-$(command -v node)} || die "no node binary"
[ -x "$NODE" ] || die "node binary $NODE is not executable (FDSTORE_E2E_NODE)"

mkdir -p "$CACHE" "$RUNTIME"
exec 9>"$CACHE/.lock"
flock -w 900 9 || die "another setup holds $CACHE/.lock"

# ---- podman configuration (rewritten every time: cheap, and follows the limits) ----
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
[ "$nofile" = unlimited ] && nofile=1048576
cat >"$CACHE/containers.conf.tmp" <<EOF
# written by test/e2e/setup.sh
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$RUNTIME/events.log"
tmp_dir = "$RUNTIME/libpod"
EOF
cat >"$CACHE/storage.conf.tmp" <<EOF
# written by test/e2e/setup.sh
[storage]
driver = "overlay"
graphroot = "$CACHE/storage"
runroot = "$RUNTIME/storage"
EOF
mv "$CACHE/containers.conf.tmp" "$CACHE/containers.conf"
mv "$CACHE/storage.conf.tmp" "$CACHE/storage.conf"
export CONTAINERS_CONF="$CACHE/containers.conf" CONTAINERS_STORAGE_CONF="$CACHE/storage.conf"
# Keep a user's registries.conf or policy out of it: nothing is pulled anyway (--pull=never).

info=$(podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}} {{.Store.GraphDriverName}} {{.Store.GraphRoot}}') \
  || die "podman info failed (see above)"
log "podman: $info"

# ---- the bookworm minbase image ----
mirror() {
  if [ -n "${FDSTORE_E2E_MIRROR:-}" ]; then echo "$FDSTORE_E2E_MIRROR"; return; fi
  local m=""
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ]; then
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }')
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

if ! podman image exists "$BASE_IMAGE"; then
  m=$(mirror)
  rootfs="$CACHE/rootfs.tmp"
  rm -rf "$rootfs"
  log "debootstrap --variant=minbase bookworm from $m (cold setup, about a minute)"
  debootstrap --variant=minbase bookworm "$rootfs" "$m" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -n 30 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
  tar -C "$rootfs" -c . | podman import - "$BASE_IMAGE" >/dev/null || die "podman import failed"
  rm -rf "$rootfs"
fi

# ---- python3 + this machine's node, FROM the base only ----
node_sum=$(sha256sum "$NODE" | cut -c1-16)
NODE_IMAGE="$NODE_REPO:$node_sum"
if ! podman image exists "$NODE_IMAGE"; then
  ctx="$CACHE/build"
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp "$NODE" "$ctx/node"
  cat >"$ctx/Containerfile" <<'EOF'
FROM localhost/fdstore-e2e-bookworm:latest
COPY node /usr/local/bin/node
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* \
 && node -e 'process.exit(0)' && python3 -c 'import http.server, socket'
EOF
  log "building $NODE_IMAGE (python3 from the mirror, node $("$NODE" --version))"
  # Host network for apt only: no bridge, no iptables needed.
  podman build -q --pull=never --network=host -t "$NODE_IMAGE" "$ctx" >"$CACHE/build.log" 2>&1 \
    || { tail -n 30 "$CACHE/build.log" >&2; die "podman build failed (log: $CACHE/build.log)"; }
  rm -rf "$ctx"
  # Images for other node binaries are stale now.
  for old in $(podman images --noheading --format '{{.Repository}}:{{.Tag}}' "$NODE_REPO"); do
    [ "$old" = "$NODE_IMAGE" ] || podman rmi -f "$old" >/dev/null 2>&1 || true
  done
fi

podman run --rm --network=none "$NODE_IMAGE" sh -c 'node -e 0 && python3 -c 0' \
  || die "$NODE_IMAGE does not run node and python3"

echo "CONTAINERS_CONF=$CONTAINERS_CONF"
echo "CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF"
echo "FDSTORE_E2E_IMAGE=$NODE_IMAGE"
