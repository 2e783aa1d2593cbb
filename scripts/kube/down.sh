#!/bin/bash
# down.sh - stop the cluster that up.sh started and undo its host changes.
#   scripts/kube/down.sh          stop everything, keep $FDSTORE_KUBE_STATE (certs, etcd data: up.sh = warm restart)
#   scripts/kube/down.sh clean    the same, then delete $FDSTORE_KUBE_STATE
# The cluster is shared by everyone on the machine: this stops it for all of them.
# Only processes whose pids up.sh recorded (and containerd shims carrying our socket path) are signalled.
# Order: controllers -> delete all pods (the kubelet tears sandboxes down: CNI DEL, netns) -> kube-proxy,
# kubelet -> leftover containerd tasks -> containerd -> apiserver -> etcd -> unmount everything under the
# state dir -> iptables (KUBE-* and our CNI network's chains), bridge, kubepods cgroups, host dirs, sysctls.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/env.sh"
S=$FDSTORE_KUBE_STATE
T0=$(kube_now)
[[ -d $S ]] || { kube_log "down.sh: no state dir $S: nothing to stop"; exit 0; }
if [[ -z ${FDSTORE_KUBE_LOCK_HELD:-} ]]; then   # (up.sh calls us with its lock held)
  exec 9>"$FDSTORE_KUBE_LOCK"
  flock -n 9 || { kube_log "waiting for another up.sh/down.sh ($FDSTORE_KUBE_LOCK)"; flock 9; }
fi
rm -f "$S/ready"   # from now on up.sh's fast path does not report the cluster healthy

# 1. no new pods, then let the kubelet stop every pod properly (containers, then sandbox: CNI DEL + netns)
kube_stop_pid kube-controller-manager kube-controller
kube_stop_pid kube-scheduler kube-schedule
sandbox_netns() { # the netns files of this containerd's pod sandboxes
  local c
  for c in $(ctr_ containers ls -q 'labels."io.cri-containerd.kind"==sandbox' 2>/dev/null); do
    ctr_ containers info "$c" 2>/dev/null | jq -r '.Spec.linux.namespaces[]? | select(.type=="network") | .path // empty'
  done | sort -u
}
running_tasks() { ctr_ tasks ls 2>/dev/null | awk 'NR>1 && $3=="RUNNING"' | wc -l; }
if kube_alive kube-apiserver && kube_alive kubelet && kube_alive containerd && [[ -f $S/kubeconfig ]]; then
  NS_FILES=$(sandbox_netns)
  kctl delete pods --all -A --grace-period=1 --wait=false >/dev/null 2>&1 || true
  # done when no task runs and every sandbox netns is gone (containerd removes it after CNI DEL);
  # the API objects may linger (volume/cgroup clean-up): that does not matter here
  left=0
  for _ in $(seq 1 150); do
    left=0; for f in $NS_FILES; do [[ -e $f ]] && left=$((left+1)); done
    (( left == 0 )) && (( $(running_tasks) == 0 )) && break
    sleep 0.2
  done
  (( left > 0 )) && kube_log "  $left pod sandboxes still up after 30 s"
fi
kube_log "  pods stopped: $(kube_since "$T0") s"
kube_stop_pid kube-proxy kube-proxy
kube_stop_pid kubelet kubelet

# 2. whatever still runs in our containerd: kill it, remember its netns and ids
NETNS=(); IDS=()
if kube_alive containerd; then
  for c in $(ctr_ containers ls -q 2>/dev/null); do
    IDS+=("$c")
    ns=$(ctr_ containers info "$c" 2>/dev/null | jq -r '.Spec.linux.namespaces[]? | select(.type=="network") | .path // empty' 2>/dev/null)
    [[ -n $ns ]] && NETNS+=("$ns")
    ctr_ tasks kill -s SIGKILL "$c" >/dev/null 2>&1
  done
  if (( ${#IDS[@]} )); then
    for _ in $(seq 1 20); do (( $(running_tasks) == 0 )) && break; sleep 0.1; done
  fi
  for c in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$c" >/dev/null 2>&1; done
  # containers (and their snapshots) go too: containerd's root is in the cache, shared by later state dirs
  for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers rm "$c" >/dev/null 2>&1; done
  kube_stop_pid containerd containerd
fi
# containerd crashed or was killed: its shims and containers live on. runc's state (a root shared by every
# containerd's k8s.io namespace) names each container's bundle; ours lie under this state dir.
RUNC_ROOT=/run/containerd/runc/k8s.io
if [[ -d $RUNC_ROOT ]]; then
  R_IDS=()
  for c in $(runc --root "$RUNC_ROOT" list -q 2>/dev/null); do
    b=$(runc --root "$RUNC_ROOT" state "$c" 2>/dev/null | jq -r '.bundle // empty')
    [[ $b == "$S/containerd/"* ]] || continue
    IDS+=("$c"); R_IDS+=("$c")
    ns=$(jq -r '.linux.namespaces[]? | select(.type=="network") | .path // empty' "$b/config.json" 2>/dev/null)
    [[ -n $ns ]] && NETNS+=("$ns")
    kube_log "  leftover container ${c:0:12}: runc kill + delete"
    runc --root "$RUNC_ROOT" kill "$c" KILL >/dev/null 2>&1
  done
  for c in "${R_IDS[@]}"; do runc --root "$RUNC_ROOT" delete -f "$c" >/dev/null 2>&1; done
fi
# shims of our containerd: note their sockets (/run/containerd/s/<hash>, a fixed path), then kill them
SOCKS=()
for p in $(kube_shim_pids); do
  for ino in $(for fd in /proc/$p/fd/*; do readlink "$fd"; done 2>/dev/null | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p'); do
    SOCKS+=($(awk -v i="$ino" '$7==i && $8 ~ /^\/run\/containerd\/s\// {print $8}' /proc/net/unix))
  done
  kube_log "  leftover shim $p: SIGKILL"; kill -KILL "$p" 2>/dev/null
done
kube_stop_pid containerd containerd
for f in "${SOCKS[@]}"; do rm -f "$f"; done
for ns in $(printf '%s\n' "${NETNS[@]}" | sort -u); do
  [[ $ns == /var/run/netns/cni-* || $ns == /run/netns/cni-* ]] || continue
  umount "$ns" 2>/dev/null; rm -f "$ns"    # last reference gone -> the pod's veth disappears with it
done
# libcni's result cache of sandboxes that never got a CNI DEL
for c in "${IDS[@]}"; do rm -f /var/lib/cni/results/"$KUBE_CNI_NAME-$c"-* /var/lib/cni/results/cni-loopback-"$c"-*; done
kube_log "  containerd stopped: $(kube_since "$T0") s"

# 3. control plane
kube_stop_pid kube-apiserver kube-apiserver
kube_stop_pid etcd etcd
kube_log "  apiserver, etcd stopped: $(kube_since "$T0") s"

# 4. mounts under the state dir (kubelet tmpfs/secret volumes, its rshared self-bind, overlay rootfs), deepest first
awk -v p="$S/" 'index($5, p)==1 || $5==substr(p,1,length(p)-1) {print $5}' /proc/self/mountinfo | sort -r | \
  while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done

# 5. iptables: kube-proxy's and the kubelet's KUBE-* chains, and the per-pod chains of our CNI network
[[ -x $KUBE_BIN/kube-proxy ]] && "$KUBE_BIN/kube-proxy" --cleanup >/dev/null 2>&1
for t in nat filter mangle; do
  # rules in built-in chains that jump to KUBE-* chains, then the chains
  iptables -t "$t" -S 2>/dev/null | grep -E '^-A (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) .*-j KUBE-' | \
    while read -r r; do eval "iptables -t $t ${r/-A/-D}" 2>/dev/null; done
  for ch in $(iptables -t "$t" -S 2>/dev/null | awk '/^-N KUBE-/{print $2}'); do iptables -t "$t" -F "$ch" 2>/dev/null; done
  for ch in $(iptables -t "$t" -S 2>/dev/null | awk '/^-N KUBE-/{print $2}'); do iptables -t "$t" -X "$ch" 2>/dev/null; done
done
# bridge plugin ipMasq: POSTROUTING -s <podIP> -j CNI-<hash> -m comment "name: \"fdstore\" id: ..."
iptables -t nat -S POSTROUTING 2>/dev/null | grep -F "name: \\\"$KUBE_CNI_NAME\\\"" | while read -r r; do
  ch=$(sed -E 's/.* -j (CNI-[0-9a-f]+).*/\1/' <<<"$r")
  eval "iptables -t nat ${r/-A/-D}" 2>/dev/null; iptables -t nat -F "$ch" 2>/dev/null; iptables -t nat -X "$ch" 2>/dev/null
done
ip link show "$KUBE_CNI_BRIDGE" >/dev/null 2>&1 && ip link delete "$KUBE_CNI_BRIDGE"

# 6. kubelet leftovers on the host: empty kubepods cgroups, the pod log dirs of this cluster's pods
for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods; do
  [[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
done
if [[ -f $S/hostdirs.before ]]; then
  for d in /var/log/pods/*_*-*-*-*-*; do   # <namespace>_<pod>_<uid>
    [[ -d $d ]] || continue
    grep -qxF "POD ${d##*/}" "$S/hostdirs.before" || rm -rf "$d"
  done
  find /var/log/containers -maxdepth 1 -xtype l -delete 2>/dev/null   # now-dangling symlinks into those dirs
  # the (stopped) kubelet's device-plugin socket and marker
  rm -f /var/lib/kubelet/device-plugins/kubelet.sock
  grep -qxF "DIR /var/lib/kubelet/device-plugins" "$S/hostdirs.before" || rm -f /var/lib/kubelet/device-plugins/DEPRECATION
  for d in $(tr ' ' '\n' <<<"$KUBE_HOSTDIRS" | sort -r); do   # deepest first; rmdir only removes empty dirs
    grep -qxF "DIR $d" "$S/hostdirs.before" || rmdir "$d" 2>/dev/null
  done
  rm -f "$S/hostdirs.before"
fi

# 7. sysctls back to what they were before up.sh
if [[ -s $S/sysctl.orig ]]; then
  while IFS== read -r k v; do sysctl -qw "$k=$v" 2>/dev/null; done < "$S/sysctl.orig"
  rm -f "$S/sysctl.orig"
fi

if [[ ${1:-} == clean ]]; then
  if grep -q " ${S}[/ ]" /proc/self/mountinfo; then kube_log "down.sh: mounts left under $S, not deleting"; exit 1; fi
  rm -rf "$S"
  kube_log "stopped and removed $S ($(kube_since "$T0") s)"
else
  kube_log "stopped ($(kube_since "$T0") s); state kept in $S"
fi
