#!/usr/bin/env bash
# Start or stop the local control plane: etcd, kube-apiserver, kube-controller-manager and
# the process node (devcluster/procnode), all bound to 127.0.0.1 only.
#   cluster.sh up      start (idempotent: a healthy cluster is left alone)
#   cluster.sh down    stop every process it started (by pid) and remove the state
#   cluster.sh status  exit 0 when healthy
# State lives in .devcluster/ (pki, etcd data, run/*.pid, pods/); logs in .devcluster/logs/.
# Ports can be changed with DEVCLUSTER_{ETCD,API,KCM,KUBELET}_PORT and
# the state directory with DEVCLUSTER_DIR (e.g. a second, throwaway cluster).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DC="${DEVCLUSTER_DIR:-$ROOT/.devcluster}"
BIN="$ROOT/.devcluster/bin"
RUN="$DC/run"
LOGS="$DC/logs"
PKI="$DC/pki"
PY="$ROOT/.venv/bin/python"
KUBECONFIG_FILE="$DC/kubeconfig"
ETCD_PORT="${DEVCLUSTER_ETCD_PORT:-23790}"
ETCD_PEER_PORT=$((ETCD_PORT + 10))
API_PORT="${DEVCLUSTER_API_PORT:-16443}"
KCM_PORT="${DEVCLUSTER_KCM_PORT:-16444}"
KUBELET_PORT="${DEVCLUSTER_KUBELET_PORT:-16450}"  # the process node's log API
API_URL="https://127.0.0.1:$API_PORT"
COMPONENTS=(etcd kube-apiserver kube-controller-manager procnode)  # start order
SERVICE_CIDR=10.96.0.0/16

log() { echo "devcluster: $*"; }
die() { echo "devcluster: error: $*" >&2; exit 1; }

kctl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# pid_alive <component>: its recorded process exists and is still that component (a stale
# pid file after a reboot may name an unrelated process, which must never be signalled).
pid_alive() {
  local f="$RUN/$1.pid" pid
  [[ -f "$f" ]] || return 1
  pid="$(cat "$f")"
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$1"
}

healthy() {
  local c
  for c in "${COMPONENTS[@]}"; do pid_alive "$c" || return 1; done
  [[ -f "$KUBECONFIG_FILE" ]] || return 1
  [[ "$(kctl get --raw /readyz --request-timeout=5s 2>/dev/null)" == ok ]]
}

port_busy() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_until <seconds> <what> <command...>
wait_until() {
  local timeout=$1 what=$2 start=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS - start >= timeout)); then
      die "timed out after ${timeout}s waiting for $what (logs: $LOGS)"
    fi
    sleep 0.5
  done
}

# start <name> <command...>: detached, own session, pid in run/<name>.pid
start() {
  local name=$1
  shift
  log "starting $name"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$RUN/$name.pid"
}

stop_pid() {
  local name=$1 f="$RUN/$1.pid" pid i
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f")"
  if pid_alive "$name"; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

stop_all() {
  local i f pgid
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do stop_pid "${COMPONENTS[i]}"; done
  # Pod processes whose process group the node recorded and that outlived it.
  if [[ -d "$RUN/pods" ]]; then
    for f in "$RUN"/pods/*.pgid; do
      [[ -f "$f" ]] || continue
      pgid="$(cat "$f")"
      # only a group whose leader is still one of our pod processes
      if tr '\0' '\n' <"/proc/$pgid/environ" 2>/dev/null | grep -qx "DEVNODE_POD_DIR=$DC/pods/.*"; then
        kill -KILL -- "-$pgid" 2>/dev/null || true
      fi
      rm -f "$f"
    done
  fi
}

usage() {
  cat <<EOF
devcluster is up: kube-apiserver $API_URL ($("$BIN/kube-apiserver" --version | awk '{print $2}'))
  export KUBECONFIG=$KUBECONFIG_FILE
  $BIN/kubectl get nodes
  pod output:  $LOGS/pods/<namespace>_<pod>_<container>.log
  component logs: $LOGS/   stop: make cluster-down
EOF
}

start_etcd() {
  start etcd "$BIN/etcd" --name devcluster --data-dir "$DC/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "devcluster=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --log-level warn
  wait_until 30 "etcd health" "$PY" -c \
    "import urllib.request,sys; sys.exit(b'true' not in urllib.request.urlopen('http://127.0.0.1:$ETCD_PORT/health',timeout=2).read())"
}

start_kube-apiserver() {
  local plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultTolerationSeconds
  plugins+=,DefaultStorageClass,StorageObjectInUseProtection,PersistentVolumeClaimResize
  plugins+=,RuntimeClass,CertificateApproval,CertificateSigning,CertificateSubjectRestriction
  plugins+=,DefaultIngressClass,PodSecurity,Priority,MutatingAdmissionWebhook
  plugins+=,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook,ResourceQuota
  # --endpoint-reconciler-type none: Endpoints may not hold loopback addresses.
  start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" \
    --service-account-signing-key-file "$PKI/sa.key" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins "$plugins" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --endpoint-reconciler-type none \
    --kubelet-preferred-address-types InternalIP \
    --allow-privileged=true --profiling=false --v=1
  wait_until 90 "kube-apiserver /readyz" api_ready
}

api_ready() { [[ "$(kctl get --raw /readyz --request-timeout=3s 2>/dev/null)" == ok ]]; }

start_kube-controller-manager() {
  local kc="$PKI/controller-manager.kubeconfig"
  start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$kc" --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
    --authentication-skip-lookup=true \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" \
    --leader-elect=false \
    --controllers '*' \
    --use-service-account-credentials=true \
    --service-account-private-key-file "$PKI/sa.key" \
    --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --profiling=false --v=1
}

start_procnode() {
  start procnode env PYTHONPATH="$ROOT/devcluster" "$PY" -m procnode \
    --kubeconfig "$PKI/procnode.kubeconfig" --root "$ROOT" --state "$DC" --api-port "$API_PORT" \
    --kubelet-port "$KUBELET_PORT" --kubelet-cert "$PKI/kubelet.crt" --kubelet-key "$PKI/kubelet.key"
}

component_ports() {
  case $1 in
    etcd) echo "$ETCD_PORT $ETCD_PEER_PORT" ;;
    kube-apiserver) echo "$API_PORT" ;;
    kube-controller-manager) echo "$KCM_PORT" ;;
    procnode) echo "$KUBELET_PORT" ;;
  esac
}

up() {
  if healthy; then
    log "already up and healthy"
    usage
    return 0
  fi
  for b in etcd kube-apiserver kube-controller-manager kubectl; do
    [[ -x "$BIN/$b" ]] || die "$BIN/$b is missing: run 'make cluster-bin' (bash devcluster/build.sh)"
  done
  [[ -x "$PY" ]] || die "$PY is missing: run 'make venv'"
  local c port t0=$SECONDS
  mkdir -p "$RUN" "$DC/pods"
  if ! pid_alive etcd && ! pid_alive kube-apiserver; then
    stop_all # a crashed cluster's leftovers; etcd data is kept
    if [[ -d "$LOGS" ]]; then rm -rf "$LOGS.prev" && mv "$LOGS" "$LOGS.prev"; fi
  fi
  mkdir -p "$LOGS/pods"
  "$PY" "$ROOT/devcluster/pki.py" "$DC" "$API_URL"
  # Start what is not running, in order. Running components are kept: they reconnect to a
  # restarted etcd or API server by themselves.
  for c in "${COMPONENTS[@]}"; do
    if pid_alive "$c"; then
      if [[ $c == kube-apiserver ]] && ! api_ready; then
        stop_pid "$c"
      else
        log "$c already running (pid $(cat "$RUN/$c.pid"))"
        continue
      fi
    fi
    stop_pid "$c"
    for port in $(component_ports "$c"); do
      port_busy "$port" && die "port 127.0.0.1:$port is in use by another process"
    done
    "start_$c"
  done
  wait_until 60 "node devnode to be Ready" \
    "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" wait node/devnode --for=condition=Ready --timeout=2s
  wait_until 60 "ServiceAccount default/default" \
    "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" -n default get serviceaccount default
  for c in "${COMPONENTS[@]}"; do pid_alive "$c" || die "$c exited during start-up: see $LOGS/$c.log"; done
  log "control plane ready in $((SECONDS - t0))s"
  usage
}

down() {
  stop_all
  rm -rf "$RUN" "$PKI" "$DC/etcd" "$DC/pods" "$KUBECONFIG_FILE"
  log "stopped; state removed (binaries and logs kept)"
}

# One `up`/`down` at a time: several test sessions may ask for the cluster at once.
lock() {
  mkdir -p "$DC"
  exec 9>"$DC/cluster.lock"
  flock 9
}

case "${1:-}" in
  up) lock && up ;;
  down) lock && down ;;
  status) healthy && log "healthy" || { log "not running or not healthy"; exit 1; } ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
