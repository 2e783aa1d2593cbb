#!/bin/bash
# up.sh - start (or reuse) the project's one-node Kubernetes 1.20 cluster:
#   etcd + kube-apiserver + kube-controller-manager + kube-scheduler, containerd (CRI, runc, cgroupfs,
#   bridge CNI) + kubelet + kube-proxy (iptables); state in $FDSTORE_KUBE_STATE, binaries and images
#   from setup.sh's cache.
#
#   eval "$(scripts/kube/up.sh)"     # stdout: KEY=VALUE lines (KUBECONFIG, KUBECTL, HELM, images, ...)
#   scripts/kube/up.sh --check       # exit 0 if it is up and healthy (and print the lines), 1 if not; starts nothing
#
# Shared and idempotent: if the cluster is already up and healthy it prints the same lines and exits
# at once (0.2-0.6 s), so every test run and every person on the machine can call it. Starting is
# serialised by a lock; a second caller waits and then reuses what the first one started. A cluster
# that is half up (a component died) is stopped (down.sh, state kept) and started again.
# Logs go to stderr and to $FDSTORE_KUBE_STATE/logs/. Env: see env.sh.
set -euo pipefail
# (few forks on the fast path: each costs ~50 ms on a loaded machine)
HERE=${BASH_SOURCE[0]%/*}; [[ $HERE == "${BASH_SOURCE[0]}" ]] && HERE=.; [[ $HERE == /* ]] || HERE=$PWD/$HERE
. "$HERE/env.sh"
S=$FDSTORE_KUBE_STATE
[[ $EUID == 0 ]] || { echo "up.sh: must run as root (packages, containerd, the kubelet, iptables)" >&2; exit 1; }
die() { echo "up.sh: $*  (logs: $S/logs; down.sh undoes what was started)" >&2; exit 1; }
# what the scripts that start the cluster look like: a cluster started by other scripts is reported
config_id() { # one fork: md5sum execs in place of the $(...) subshell
  local sums h _
  sums=$(md5sum "$HERE/up.sh" "$HERE/env.sh"); CONFIG_ID=
  while read -r h _; do CONFIG_ID+=${h:0:8}; done <<<"$sums"
}
config_id

ADMIN_TOKEN=
admin_token() { # the token of the admin user (tokens.csv: token,user,uid,groups)
  local t u _
  [[ -n $ADMIN_TOKEN ]] || while IFS=, read -r t u _; do [[ $u == admin ]] && ADMIN_TOKEN=$t; done < "$S/pki/tokens.csv"
  [[ -n $ADMIN_TOKEN ]]
}
api_get() { # api_get <path>: GET with the admin token, body on stdout (fails on non-2xx)
  admin_token 2>/dev/null || return 1
  curl -sS -f --max-time "${API_TIMEOUT:-5}" --cacert "$S/pki/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" \
    "https://127.0.0.1:$KUBE_APISERVER_PORT$1" 2>/dev/null
}
all_alive() { local n; for n in $KUBE_COMPONENTS; do kube_alive "$n" || return 1; done; }
any_alive() { local n; for n in $KUBE_COMPONENTS; do kube_alive "$n" && return 0; done; return 1; }
node_ready() { # Ready=True with a heartbeat not older than the kubelet we started (a GET also proves etcd answers)
  local r since
  read -r since 2>/dev/null < "$S/kubelet.started" || return 1
  r=$(api_get "/api/v1/nodes/$KUBE_NODE_NAME" | jq -r '.status.conditions[]? | select(.type=="Ready") | "\(.status) \(.lastHeartbeatTime)"') || return 1
  [[ ${r%% *} == True && ! ${r#* } < $since ]]
}
healthy() { all_alive && [[ -f $S/ready ]] && node_ready; }

# import every tarball whose exact content (its manifest.json) is not in containerd's store yet
import_images() {
  local img m name have n=0
  mkdir -p "$KUBE_CONTAINERD_ROOT/fdstore-imported"
  have=$(ctr_ images ls -q)   # (not piped into grep -q: with pipefail an early grep exit = SIGPIPE)
  for img in "$KUBE_IMAGES"/*.tar; do
    m=$KUBE_CONTAINERD_ROOT/fdstore-imported/$(basename "$img").manifest
    [[ -f $m && ! $img -nt $m ]] && grep -qxF "$(jq -r '.[0].RepoTags[0]' "$m")" <<<"$have" && continue
    name=$(tar -xOf "$img" manifest.json | jq -r '.[0].RepoTags[0]')
    kube_log "importing $name"
    ctr_ images import "$img" >/dev/null && tar -xOf "$img" manifest.json > "$m"
    n=$((n+1))
  done
  echo "$n"
}
images_stale() { # a tarball newer than its import marker (setup.sh rebuilt it): cheap stat checks only
  local img m
  for img in "$KUBE_IMAGES"/*.tar; do
    m=$KUBE_CONTAINERD_ROOT/fdstore-imported/$(basename "$img").manifest
    [[ -f $m && ! $img -nt $m ]] || return 0
  done
  return 1
}
print_env() {
  local id ip img
  read -r id 2>/dev/null < "$S/config-id" || id=
  [[ $id == "$CONFIG_ID" ]] || \
    kube_log "note: the running cluster was started by another version of up.sh/env.sh; down.sh && up.sh applies this one"
  read -r ip < "$S/node-ip"; read -r img < "$KUBE_IMAGES/node.tag"
  printf '%s\n' "KUBECONFIG=$KUBE_KUBECONFIG" "KUBECTL=$KUBECTL" "HELM=$HELM" \
    "FDSTORE_KUBE_STATE=$S" "FDSTORE_KUBE_CACHE=$FDSTORE_KUBE_CACHE" \
    "FDSTORE_KUBE_NODE_NAME=$KUBE_NODE_NAME" "FDSTORE_KUBE_NODE_IP=$ip" \
    "FDSTORE_KUBE_NODE_IMAGE=$img" "FDSTORE_KUBE_PAUSE_IMAGE=$KUBE_PAUSE_IMAGE" \
    "FDSTORE_KUBE_CTR_SOCK=$KUBE_CTR_SOCK" "FDSTORE_KUBE_ETCD_ENDPOINT=http://127.0.0.1:$KUBE_ETCD_PORT"
}

for f in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl helm; do
  [[ -x $KUBE_BIN/$f ]] || die "missing $KUBE_BIN/$f: run scripts/kube/setup.sh first"
done
[[ -s $KUBE_IMAGES/pause.tar && -s $KUBE_IMAGES/node.tar ]] || die "missing images in $KUBE_IMAGES: run scripts/kube/setup.sh first"

# ------------------------------------------------------------------ fast path: already up
if healthy && ! images_stale; then print_env; exit 0; fi
if [[ ${1:-} == --check ]]; then
  healthy && { print_env; exit 0; }
  kube_log "the cluster in $S is not up"; exit 1
fi

exec 9>"$FDSTORE_KUBE_LOCK"
if ! flock -n 9; then
  kube_log "another up.sh/down.sh holds $FDSTORE_KUBE_LOCK; waiting"
  flock -w 600 9 || die "lock $FDSTORE_KUBE_LOCK still held after 600 s"
fi
if healthy; then
  images_stale && kube_log "$(import_images) new images imported"
  print_env; exit 0
fi
if any_alive; then
  # Some components run: either a start is in progress elsewhere (impossible: we hold the lock) or
  # one died. Give a busy machine a moment (the apiserver can be slow to answer under load) ...
  for _ in $(seq 1 50); do healthy && { print_env; exit 0; }; sleep 0.2; done
  # ... then restart the whole thing: a half cluster would fail tests in confusing ways.
  kube_log "cluster in $S is not healthy: restarting it (state kept)"
  for n in $KUBE_COMPONENTS; do kube_alive "$n" || kube_log "  $n is not running"; done
  FDSTORE_KUBE_LOCK_HELD=1 "$HERE/down.sh" >&2 || true
fi

T0=$(kube_now)
mark() { kube_log "$(printf '%-34s %6.1f s' "$1" "$(echo "$(kube_now) - $T0" | bc)")"; }
NODE_IP=$(kube_node_ip) || true
[[ -n $NODE_IP ]] || die "cannot determine the node IP (set KUBE_NODE_IP)"
mkdir -p "$S"/{pki,logs,pids,etcd,containerd,cni/net.d,cni/ipam,kubelet/manifests,kubelet/pki,kubelet/volume-plugins}
rm -f "$S/ready"
echo "$NODE_IP" > "$S/node-ip"
echo "$CONFIG_ID" > "$S/config-id"

# ------------------------------------------------------------------ host settings (saved once, restored by down.sh)
SYSCTLS="net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.ipv4.conf.all.route_localnet vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes"
modprobe br_netfilter 2>/dev/null || true
if [[ ! -s $S/sysctl.orig ]]; then
  for k in $SYSCTLS; do echo "$k=$(sysctl -n "$k")"; done > "$S/sysctl.orig"
fi
# pod -> ClusterIP -> pod needs forwarding, and bridged traffic must pass kube-proxy's iptables rules
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
# fixed host paths (env.sh KUBE_HOSTDIRS): remember what exists so that down.sh removes only what we created
if [[ ! -f $S/hostdirs.before ]]; then
  { for d in $KUBE_HOSTDIRS; do [[ -d $d ]] && echo "DIR $d"; done
    ls -A /var/log/pods 2>/dev/null | sed 's/^/POD /' || true; } > "$S/hostdirs.before"
fi

# ------------------------------------------------------------------ PKI + tokens (kept across restarts)
cd "$S/pki"
sslq() { openssl "$@" 2>/dev/null; }
[[ -f ca.key ]] || sslq req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=fdstore-kube-ca"
sign() { # sign <name> <subject> <extensions>
  sslq req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2"
  printf '%b\n' "$3" > "$1.ext"
  sslq x509 -req -in "$1.csr" -CA "${CA:-ca}.crt" -CAkey "${CA:-ca}.key" -CAcreateserial -days 3650 -out "$1.crt" -extfile "$1.ext"
}
if [[ ! -f apiserver.crt || $(cat apiserver.ip 2>/dev/null) != "$NODE_IP" ]]; then
  sign apiserver "/CN=kube-apiserver" "subjectAltName=IP:127.0.0.1,IP:$NODE_IP,IP:$KUBE_SERVICE_APISERVER_IP,DNS:localhost,DNS:$KUBE_NODE_NAME,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment"
  echo "$NODE_IP" > apiserver.ip
fi
# front proxy (API aggregation): without it the controllers log "missing content for CA bundle"
[[ -f front-proxy-ca.key ]] || sslq req -x509 -newkey rsa:2048 -nodes -keyout front-proxy-ca.key -out front-proxy-ca.crt -days 3650 -subj "/CN=front-proxy-ca"
[[ -f front-proxy-client.crt ]] || CA=front-proxy-ca sign front-proxy-client "/CN=front-proxy-client" "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment"
[[ -f kubelet-client.crt ]] || sign kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment"
[[ -f sa.key ]] || { sslq genrsa -out sa.key 2048; sslq rsa -in sa.key -pubout -out sa.pub; }
if [[ ! -f tokens.csv ]]; then
  t() { openssl rand -hex 16; }
  cat > tokens.csv.tmp <<EOT
$(t),admin,uid-admin,"system:masters"
$(t),system:node:$KUBE_NODE_NAME,uid-node,"system:nodes"
$(t),system:kube-controller-manager,uid-kcm
$(t),system:kube-scheduler,uid-sched
$(t),system:kube-proxy,uid-proxy
EOT
  mv tokens.csv.tmp tokens.csv
fi
tok() { awk -F, -v u="$1" '$2==u{print $1}' "$S/pki/tokens.csv"; }
CA_B64=$(base64 -w0 < "$S/pki/ca.crt")
kcfg() { # kcfg <file> <user>
  cat > "$1.tmp" <<EOT
apiVersion: v1
kind: Config
clusters:
- name: fdstore
  cluster:
    server: https://127.0.0.1:$KUBE_APISERVER_PORT
    certificate-authority-data: $CA_B64
users:
- name: fdstore-user
  user:
    token: $(tok "$2")
contexts:
- name: fdstore
  context: {cluster: fdstore, user: fdstore-user, namespace: default}
current-context: fdstore
EOT
  mv "$1.tmp" "$1"
}
kcfg "$S/kubeconfig" admin
kcfg "$S/kubelet.kubeconfig" "system:node:$KUBE_NODE_NAME"
kcfg "$S/kcm.kubeconfig" system:kube-controller-manager
kcfg "$S/scheduler.kubeconfig" system:kube-scheduler
kcfg "$S/proxy.kubeconfig" system:kube-proxy
cd "$S"
mark "pki + kubeconfigs"

# ------------------------------------------------------------------ etcd
ETCD_URL=http://127.0.0.1:$KUBE_ETCD_PORT
kube_start_bg etcd "$S/logs/etcd.log" /usr/bin/etcd --name fdstore --data-dir "$S/etcd" \
  --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
  --listen-peer-urls "http://127.0.0.1:$KUBE_ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$KUBE_ETCD_PEER_PORT" \
  --initial-cluster "fdstore=http://127.0.0.1:$KUBE_ETCD_PEER_PORT" --quota-backend-bytes=$((1024*1024*1024))

# ------------------------------------------------------------------ containerd (started early: it is independent)
cat > "$S/cni/net.d/10-$KUBE_CNI_NAME.conflist" <<EOT
{
  "cniVersion": "0.4.0",
  "name": "$KUBE_CNI_NAME",
  "plugins": [
    {"type": "bridge", "bridge": "$KUBE_CNI_BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$S/cni/ipam",
              "ranges": [[{"subnet": "$KUBE_POD_SUBNET"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOT
cat > "$S/containerd/config.toml" <<EOT
version = 2
root = "$KUBE_CONTAINERD_ROOT"
state = "$S/containerd/state"
[grpc]
  address = "$KUBE_CTR_SOCK"
[ttrpc]
  address = "$KUBE_CTR_SOCK.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$S/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$KUBE_PAUSE_IMAGE"
  enable_selinux = false
  disable_apparmor = true
  # No CAP_SYS_RESOURCE on these machines: a negative oom_score_adj (the kubelet asks -998 for
  # sandboxes) makes runc init die with "can't get final child's PID from pipe: EOF". Clamp to
  # containerd's own score instead (cost: no OOM priority between QoS classes).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$S/cni/net.d"
    max_conf_num = 1
EOT
kube_start_bg containerd "$S/logs/containerd.log" /usr/bin/containerd --config "$S/containerd/config.toml"

for _ in $(seq 1 200); do curl -fsS "$ETCD_URL/health" 2>/dev/null | grep -q '"health":"true"' && break; sleep 0.1; done
curl -fsS "$ETCD_URL/health" >/dev/null 2>&1 || { tail -20 "$S/logs/etcd.log" >&2; die "etcd not healthy"; }
mark "etcd healthy"

# ------------------------------------------------------------------ kube-apiserver
kube_start_bg kube-apiserver "$S/logs/kube-apiserver.log" "$KUBE_BIN/kube-apiserver" \
  --etcd-servers="$ETCD_URL" \
  --bind-address=0.0.0.0 --secure-port="$KUBE_APISERVER_PORT" --insecure-port=0 --advertise-address="$NODE_IP" \
  --tls-cert-file="$S/pki/apiserver.crt" --tls-private-key-file="$S/pki/apiserver.key" \
  --client-ca-file="$S/pki/ca.crt" \
  --kubelet-client-certificate="$S/pki/kubelet-client.crt" --kubelet-client-key="$S/pki/kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP \
  --requestheader-client-ca-file="$S/pki/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$S/pki/front-proxy-client.crt" --proxy-client-key-file="$S/pki/front-proxy-client.key" \
  --service-cluster-ip-range="$KUBE_SERVICE_CIDR" \
  --service-account-key-file="$S/pki/sa.pub" --service-account-signing-key-file="$S/pki/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --api-audiences=https://kubernetes.default.svc.cluster.local \
  --token-auth-file="$S/pki/tokens.csv" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --allow-privileged=true --profiling=false --v=1 ${KUBE_EXTRA_APISERVER_FLAGS:-}

# ------------------------------------------------------------------ images (while the apiserver boots)
for _ in $(seq 1 200); do ctr --address "$KUBE_CTR_SOCK" version >/dev/null 2>&1 && break; sleep 0.1; done
ctr --address "$KUBE_CTR_SOCK" version >/dev/null 2>&1 || { tail -20 "$S/logs/containerd.log" >&2; die "containerd not up"; }
# any container in our containerd is a leftover of an earlier run (down.sh skipped or crashed): the
# kubelet would otherwise find sandboxes it never made
stale=$(ctr_ containers ls -q 2>/dev/null || true)
if [[ -n $stale ]]; then
  kube_log "removing $(wc -w <<<"$stale") stale containers from an earlier run"
  for c in $(ctr_ tasks ls -q 2>/dev/null || true); do ctr_ tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true; done
  for c in $stale; do ctr_ tasks delete -f "$c" >/dev/null 2>&1 || true; ctr_ containers rm "$c" >/dev/null 2>&1 || true; done
fi
mark "containerd up ($(import_images) images imported)"

for _ in $(seq 1 $((KUBE_READY_TIMEOUT*10))); do
  kube_alive kube-apiserver || { tail -30 "$S/logs/kube-apiserver.log" >&2; die "kube-apiserver exited"; }
  api_get /readyz >/dev/null && break
  sleep 0.1
done
api_get /readyz >/dev/null || die "kube-apiserver not ready after ${KUBE_READY_TIMEOUT}s"
mark "kube-apiserver /readyz"

# ------------------------------------------------------------------ controller-manager + scheduler
# (all controllers, including the garbage collector that deletes objects whose owner is gone)
kube_start_bg kube-controller-manager "$S/logs/kube-controller-manager.log" "$KUBE_BIN/kube-controller-manager" \
  --kubeconfig="$S/kcm.kubeconfig" --authentication-kubeconfig="$S/kcm.kubeconfig" --authorization-kubeconfig="$S/kcm.kubeconfig" \
  --leader-elect=false --use-service-account-credentials=true \
  --service-account-private-key-file="$S/pki/sa.key" --root-ca-file="$S/pki/ca.crt" \
  --cluster-signing-cert-file="$S/pki/ca.crt" --cluster-signing-key-file="$S/pki/ca.key" \
  --flex-volume-plugin-dir="$S/kcm-flexvolume" \
  --bind-address=127.0.0.1 --secure-port="$KUBE_KCM_PORT" --port=0 --v=1
kube_start_bg kube-scheduler "$S/logs/kube-scheduler.log" "$KUBE_BIN/kube-scheduler" \
  --kubeconfig="$S/scheduler.kubeconfig" --authentication-kubeconfig="$S/scheduler.kubeconfig" \
  --authorization-kubeconfig="$S/scheduler.kubeconfig" \
  --leader-elect=false --bind-address=127.0.0.1 --secure-port="$KUBE_SCHED_PORT" --port=0 --v=1

# ------------------------------------------------------------------ kubelet
cat > "$S/kubelet/config.yaml" <<EOT
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 0.0.0.0
port: $KUBE_KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBE_KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$S/pki/ca.crt"}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
cgroupsPerQOS: true
cgroupRoot: /
failSwapOn: false
clusterDomain: cluster.local
clusterDNS: ["$KUBE_CLUSTER_DNS"]
resolvConf: /etc/resolv.conf
makeIPTablesUtilChains: false
staticPodPath: "$S/kubelet/manifests"
volumePluginDir: "$S/kubelet/volume-plugins"
# nothing can be re-pulled here (no registry): never collect images, evict only when really full
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
serializeImagePulls: false
# Ready ~8 s sooner after a start than with the default 10s
nodeStatusUpdateFrequency: 2s
${KUBE_SYNC_FREQUENCY:+syncFrequency: $KUBE_SYNC_FREQUENCY}
rotateCertificates: false
serverTLSBootstrap: false
EOT
date -u +%Y-%m-%dT%H:%M:%SZ > "$S/kubelet.started"   # a Node object left from an earlier run may still say Ready
kube_start_bg kubelet "$S/logs/kubelet.log" "$KUBE_BIN/kubelet" \
  --config="$S/kubelet/config.yaml" --kubeconfig="$S/kubelet.kubeconfig" \
  --container-runtime=remote --container-runtime-endpoint="unix://$KUBE_CTR_SOCK" \
  --pod-infra-container-image="$KUBE_PAUSE_IMAGE" \
  --root-dir="$S/kubelet" --cert-dir="$S/kubelet/pki" \
  --hostname-override="$KUBE_NODE_NAME" --node-ip="$NODE_IP" --v=1

# ------------------------------------------------------------------ kube-proxy
kube_start_bg kube-proxy "$S/logs/kube-proxy.log" "$KUBE_BIN/kube-proxy" \
  --kubeconfig="$S/proxy.kubeconfig" --hostname-override="$KUBE_NODE_NAME" --bind-address="$NODE_IP" \
  --cluster-cidr="$KUBE_CLUSTER_CIDR" --proxy-mode=iptables \
  --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
  --metrics-bind-address="127.0.0.1:$KUBE_PROXY_METRICS_PORT" --healthz-bind-address="127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT" --v=1

# ------------------------------------------------------------------ wait: node Ready, default ServiceAccount
ok=0
for _ in $(seq 1 $((KUBE_READY_TIMEOUT*5))); do
  for n in $KUBE_COMPONENTS; do kube_alive "$n" || { tail -30 "$S/logs/$n.log" >&2; die "$n exited"; }; done
  node_ready && { ok=1; break; }
  sleep 0.2
done
[[ $ok == 1 ]] || { tail -30 "$S/logs/kubelet.log" >&2; die "node $KUBE_NODE_NAME not Ready after ${KUBE_READY_TIMEOUT}s"; }
mark "node Ready"
for _ in $(seq 1 $((KUBE_READY_TIMEOUT*5))); do api_get /api/v1/namespaces/default/serviceaccounts/default >/dev/null && break; sleep 0.2; done
api_get /api/v1/namespaces/default/serviceaccounts/default >/dev/null || die "no default ServiceAccount"
mark "default ServiceAccount"
touch "$S/ready"
kube_log "node $KUBE_NODE_NAME ($NODE_IP) Ready; up.sh took $(kube_since "$T0") s"
print_env
