# env.sh - shared settings for the fdstore kube scripts (source it; it only sets variables and helpers).
# One cluster per machine, shared by everyone on it: every default is a machine-wide path, and every
# value can be overridden from the environment (for a second, private cluster: other STATE, ports, CIDRs).

# Build cache (binaries, images, the Debian source tree, containerd's image store). Survives reboots and
# clones; `rm -rf` it to rebuild from nothing.
FDSTORE_KUBE_CACHE=${FDSTORE_KUBE_CACHE:-/var/cache/fdstore-kube}
# Runtime state (pids, certs, etcd data, kubelet root, logs). /run because the cluster is a process tree
# that never survives a reboot: on a normal host /run is a tmpfs emptied at boot, so no stale pid files or
# half-dead etcd are found afterwards. Everything worth keeping (images) lives in the cache instead.
FDSTORE_KUBE_STATE=${FDSTORE_KUBE_STATE:-/run/fdstore-kube}
# serialises up.sh/down.sh; outside the state dir because `down.sh clean` deletes that
FDSTORE_KUBE_LOCK=${FDSTORE_KUBE_LOCK:-$FDSTORE_KUBE_STATE.lock}
KUBE_BIN=$FDSTORE_KUBE_CACHE/bin
KUBECTL=${KUBECTL:-$KUBE_BIN/kubectl}      # 1.34 from npm (setup.sh); never the host's
HELM=${HELM:-$KUBE_BIN/helm}               # helm 4 from the same npm package
KUBE_NODE_NAME=${KUBE_NODE_NAME:-fdstore-node}
KUBE_ETCD_PORT=${KUBE_ETCD_PORT:-22379}
KUBE_ETCD_PEER_PORT=${KUBE_ETCD_PEER_PORT:-22380}
KUBE_APISERVER_PORT=${KUBE_APISERVER_PORT:-16443}
KUBE_KUBELET_PORT=${KUBE_KUBELET_PORT:-10250}
KUBE_KUBELET_HEALTHZ_PORT=${KUBE_KUBELET_HEALTHZ_PORT:-10248}
KUBE_KCM_PORT=${KUBE_KCM_PORT:-10257}
KUBE_SCHED_PORT=${KUBE_SCHED_PORT:-10259}
KUBE_PROXY_METRICS_PORT=${KUBE_PROXY_METRICS_PORT:-10249}
KUBE_PROXY_HEALTHZ_PORT=${KUBE_PROXY_HEALTHZ_PORT:-10256}
KUBE_SERVICE_CIDR=${KUBE_SERVICE_CIDR:-10.96.0.0/16}
KUBE_SERVICE_APISERVER_IP=${KUBE_SERVICE_APISERVER_IP:-10.96.0.1}
# The kubelet's clusterDNS. No DNS server runs here (nothing in the tests resolves names), but
# without one configured the kubelet warns MissingClusterDNS at every sync of every pod, and
# those warnings use up its event budget per pod (a burst of 25, then one per 5 min): the
# probe failures and kills after them would never reach `kubectl describe pod`.
KUBE_CLUSTER_DNS=${KUBE_CLUSTER_DNS:-10.96.0.10}
KUBE_POD_SUBNET=${KUBE_POD_SUBNET:-10.244.0.0/24}
KUBE_CLUSTER_CIDR=${KUBE_CLUSTER_CIDR:-10.244.0.0/16}
KUBE_CNI_NAME=${KUBE_CNI_NAME:-fdstore}          # CNI network name (also tags its iptables rules)
KUBE_CNI_BRIDGE=${KUBE_CNI_BRIDGE:-fdstorecni0}
KUBE_PAUSE_IMAGE=localhost/fdstore-kube/pause:3.2
# The kubelet's periodic pod resync (syncFrequency; empty = the kubelet default, 1m). It does not bound
# how late a changed annotation reaches a downwardAPI file: an annotation change is a pod update, which
# the kubelet syncs at once (measured 2-3 s, README.md). Set e.g. 5s to bound what only the periodic
# resync refreshes (configMap/secret volumes), at some kubelet CPU per pod.
KUBE_SYNC_FREQUENCY=${KUBE_SYNC_FREQUENCY:-}
KUBE_READY_TIMEOUT=${KUBE_READY_TIMEOUT:-120}
KUBE_IMAGES=$FDSTORE_KUBE_CACHE/images
# containerd's root (content store, snapshots): in the cache, so a clean state dir starts without re-importing
KUBE_CONTAINERD_ROOT=${KUBE_CONTAINERD_ROOT:-$FDSTORE_KUBE_CACHE/containerd}
KUBE_CTR_SOCK=$FDSTORE_KUBE_STATE/containerd/containerd.sock
KUBE_KUBECONFIG=$FDSTORE_KUBE_STATE/kubeconfig
# host paths the 1.20 kubelet/CNI/containerd use whatever the flags say: down.sh removes only those it created
KUBE_HOSTDIRS="/var/log/pods /var/log/containers /var/lib/kubelet /var/lib/kubelet/device-plugins /var/lib/cni /var/lib/cni/results /run/containerd /run/containerd/s /run/containerd/runc /run/containerd/runc/k8s.io"
KUBE_COMPONENTS="etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy"

kube_log() { echo "[$(date +%T)] $*" >&2; }
kube_now() { date +%s.%N; }
kube_since() { printf '%.1f' "$(echo "$(kube_now) - $1" | bc)"; }
kctl() { "$KUBECTL" --kubeconfig "$KUBE_KUBECONFIG" "$@"; }
ctr_() { ctr --address "$KUBE_CTR_SOCK" -n k8s.io "$@"; }

# node IP: the default-route interface's address (the kubelet refuses a loopback --node-ip)
kube_node_ip() {
  if [[ -n ${KUBE_NODE_IP:-} ]]; then echo "$KUBE_NODE_IP"; return; fi
  local dev; dev=$(ip -4 route show default 2>/dev/null | awk '{for(i=1;i<=NF;i++) if($i=="dev"){print $(i+1); exit}}')
  [[ -n $dev ]] && ip -4 -o addr show dev "$dev" scope global | awk '{split($4,a,"/"); print a[1]; exit}'
}

# pid bookkeeping: $STATE/pids/<name>.pid
kube_start_bg() { # kube_start_bg <name> <logfile> cmd...
  local name=$1 log=$2; shift 2
  mkdir -p "$FDSTORE_KUBE_STATE/pids"
  # 9>&-: the daemons must not inherit (and so keep holding) the up.sh lock
  setsid "$@" </dev/null >"$log" 2>&1 9>&- &
  echo $! > "$FDSTORE_KUBE_STATE/pids/$name.pid"
}
# a zombie counts as gone: our daemons are re-parented to PID 1 once up.sh exits, and it may reap late.
# Builtins only (no forks): up.sh's fast path runs this for every component, on machines under load.
kube_running() {
  local st
  [[ -n $1 ]] && read -r st 2>/dev/null < "/proc/$1/stat" || return 1
  st=${st##*) }
  [[ ${st%% *} != Z ]]
}
kube_alive() { local pid; read -r pid 2>/dev/null < "$FDSTORE_KUBE_STATE/pids/$1.pid" && kube_running "$pid"; }
kube_stop_pid() { # kube_stop_pid <name> <expected-comm-prefix> [timeout-s]
  local f=$FDSTORE_KUBE_STATE/pids/$1.pid want=$2 t=${3:-10} pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$want"* ]]; then
    kill -TERM "$pid"
    for _ in $(seq 1 $((t*20))); do kube_running "$pid" || break; sleep 0.05; done
    kube_running "$pid" && { kube_log "$1 ($pid) did not stop after ${t}s: SIGKILL"; kill -KILL "$pid"; }
  fi
  rm -f "$f"
}
kube_rss_mib() { awk '/^VmRSS/{printf "%.0f", $2/1024}' "/proc/$1/status" 2>/dev/null; }
# the containerd shims of *this* containerd (they carry our socket path in -address)
kube_shim_pids() {
  local p
  for p in /proc/[0-9]*; do
    [[ $(cat "$p/comm" 2>/dev/null) == containerd-shim* ]] || continue
    [[ $(tr '\0' ' ' 2>/dev/null < "$p/cmdline") == *"-address $KUBE_CTR_SOCK "* ]] && echo "${p#/proc/}"
  done
}
