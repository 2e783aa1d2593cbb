#!/bin/bash
# status.sh - what runs of the shared cluster: each component's pid and RSS, the containerd shims
# (one per pod), the pods, and whether up.sh would call it healthy (exit 0) or not (exit 1).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/env.sh"
tot=0
for n in $KUBE_COMPONENTS; do
  if kube_alive "$n"; then
    read -r pid < "$FDSTORE_KUBE_STATE/pids/$n.pid"; r=$(kube_rss_mib "$pid")
    printf '%-24s pid %-8s %5s MiB\n' "$n" "$pid" "$r"; tot=$((tot + r))
  else
    printf '%-24s not running\n' "$n"
  fi
done
shims=0 ns=0
for p in $(kube_shim_pids); do r=$(kube_rss_mib "$p"); shims=$((shims + ${r:-0})); ns=$((ns + 1)); done
printf '%-24s %-12s %5s MiB\n' containerd-shim-runc-v2 "($ns)" "$shims"
printf '%-24s %-12s %5s MiB\n' TOTAL "" "$((tot + shims))"
if "$HERE/up.sh" --check >/dev/null 2>&1; then
  echo "healthy; pods: $(kctl get pods -A --no-headers 2>/dev/null | wc -l)"
else
  echo "not up (scripts/kube/up.sh starts it)"; exit 1
fi
