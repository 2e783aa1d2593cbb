# lib.sh - shared by scripts/image/*.sh (source it): paths, podman configuration, the local
# Debian bookworm minbase image. Every default can be overridden from the environment.

IMAGE_CACHE=${FDSTORE_IMAGE_CACHE:-/var/cache/fdstore-image}
# podman's runtime state: /run, since it never survives a reboot
IMAGE_RUNTIME=${FDSTORE_IMAGE_RUNTIME:-/run/fdstore-image}
# Plain debootstrap --variant=minbase bookworm: the builder's base and, slimmed, the
# comparison's (slim-equivalent.sh). Local only; never imported into the cluster.
MINBASE_IMAGE=localhost/fdstore-image/bookworm:minbase

image_log() { echo "fdstore image: $*" >&2; }
image_die() { echo "fdstore image: $*" >&2; exit 1; }
image_now() { date +%s.%N; }
image_since() { awk -v a="$1" -v b="$(image_now)" 'BEGIN { printf "%.1f", b - a }'; }

# Root, the tools, the cache lock (held until the script exits).
image_prepare() {
  [ "$(id -u)" = 0 ] || image_die "must run as root (podman with runc, debootstrap)"
  local missing=() tool
  for tool in podman runc debootstrap flock sha256sum; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  [ ${#missing[@]} -eq 0 ] || image_die "missing ${missing[*]}: apt-get install podman runc debootstrap"
  mkdir -p "$IMAGE_CACHE" "$IMAGE_RUNTIME"
  exec 9>"$IMAGE_CACHE/.lock"
  if ! flock -n 9; then
    image_log "another build holds $IMAGE_CACHE/.lock; waiting"
    flock -w 1800 9 || image_die "$IMAGE_CACHE/.lock still held after 30 min"
  fi
  image_podman_config
}

# podman with runc (crun refuses the hybrid cgroup layout of some hosts), cgroupfs, ulimits
# no higher than this machine's hard limits, storage in the cache.
# Rewritten every time: cheap, and follows the limits.
image_podman_config() {
  local nofile nproc
  nofile=$(ulimit -Hn)
  nproc=$(ulimit -Hu)
  if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
  [ "$nofile" = unlimited ] && nofile=1048576
  cat >"$IMAGE_CACHE/containers.conf.tmp" <<EOF
# written by scripts/image/lib.sh
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$IMAGE_RUNTIME/events.log"
tmp_dir = "$IMAGE_RUNTIME/libpod"
EOF
  cat >"$IMAGE_CACHE/storage.conf.tmp" <<EOF
# written by scripts/image/lib.sh
[storage]
driver = "overlay"
graphroot = "$IMAGE_CACHE/storage"
runroot = "$IMAGE_RUNTIME/storage"
EOF
  mv "$IMAGE_CACHE/containers.conf.tmp" "$IMAGE_CACHE/containers.conf"
  mv "$IMAGE_CACHE/storage.conf.tmp" "$IMAGE_CACHE/storage.conf"
  export CONTAINERS_CONF="$IMAGE_CACHE/containers.conf" CONTAINERS_STORAGE_CONF="$IMAGE_CACHE/storage.conf"
}

image_mirror() {
  if [ -n "${MIRROR:-}" ]; then echo "$MIRROR"; return; fi
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

# The minbase image: debootstrap'd once into the cache's podman storage.
image_minbase() {
  podman image exists "$MINBASE_IMAGE" && return 0
  local t m rootfs=$IMAGE_CACHE/rootfs.tmp
  t=$(image_now)
  m=$(image_mirror)
  rm -rf "$rootfs"
  image_log "minbase: debootstrap --variant=minbase bookworm from $m (about a minute)"
  debootstrap --variant=minbase bookworm "$rootfs" "$m" >"$IMAGE_CACHE/debootstrap.log" 2>&1 \
    || { tail -n 30 "$IMAGE_CACHE/debootstrap.log" >&2; image_die "debootstrap failed (log: $IMAGE_CACHE/debootstrap.log)"; }
  # debootstrap leaves the downloaded packages; the image does not need them
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | podman import -q - "$MINBASE_IMAGE" >/dev/null || image_die "podman import failed"
  rm -rf "$rootfs"
  echo "$(date +%F.%T) minbase debootstrap $(image_since "$t") s" >>"$IMAGE_CACHE/timings.txt"
  podman image exists "$MINBASE_IMAGE" || image_die "$MINBASE_IMAGE missing after import"
}
