#!/usr/bin/env bash
# Start or stop the local cluster: etcd, kube-apiserver, kube-controller-manager, and two
# nodes: the process node (devcluster/procnode, pods as host processes) and a real node,
# kubenode (containerd + kubelet + kube-scheduler, pods in containers on a CNI bridge).
# DEVCLUSTER_NODE=process starts the process node only (no root, no containers).
#   cluster.sh up      start (idempotent: a healthy cluster is left alone)
#   cluster.sh down    stop every process it started (by pid) and remove the state
#   cluster.sh status  exit 0 when healthy
# State lives in .devcluster/ (pki, etcd data, run/*.pid, pods/); logs in .devcluster/logs/.
# Ports can be changed with DEVCLUSTER_{ETCD,API,KCM,KUBELET}_PORT, the state directory with
# DEVCLUSTER_DIR (e.g. a second, throwaway cluster), the pod bridge with DEVCLUSTER_BRIDGE and
# DEVCLUSTER_POD_SUBNET (a /24 whose .1 is the gateway: a second cluster needs other values).
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
SCHED_PORT=$((KCM_PORT + 1))
KUBENODE_PORT=$((KUBELET_PORT + 1))   # the real kubelet's API, on the bridge gateway
KUBENODE_HEALTHZ=$((KUBELET_PORT + 2)) # its healthz, on 127.0.0.1
API_URL="https://127.0.0.1:$API_PORT"
NODE_MODE="${DEVCLUSTER_NODE:-real}"
case $NODE_MODE in
  real) COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler procnode containerd kubelet) ;;
  process) COMPONENTS=(etcd kube-apiserver kube-controller-manager procnode) ;;
  *) echo "devcluster: DEVCLUSTER_NODE must be real or process, not '$NODE_MODE'" >&2; exit 2 ;;
esac
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1
BRIDGE="${DEVCLUSTER_BRIDGE:-lakeop0}"
POD_SUBNET="${DEVCLUSTER_POD_SUBNET:-10.88.0.0/24}"
GATEWAY="${POD_SUBNET%.*}.1"
NAT_CHAIN="DEVCLUSTER-${BRIDGE^^}"
# The real node's pods live under a cgroup root of this cluster's own: two kubelets sharing
# the default (/kubepods) take each other's pods for orphans and kill them (exit 137).
CGROUP_ROOT="/devcluster-$BRIDGE"
CTRD="$DC/containerd"
CTRD_SOCK="$CTRD/containerd.sock"
IMAGES="$ROOT/.devcluster/images"
KUBENODE=kubenode
# kubenode's taint: only pods that ask for the real node (toleration + nodeSelector) go there;
# everything else keeps running on the process node.
KUBENODE_TAINT=devcluster.lakeop.io/real-node

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
  if [[ $NODE_MODE == real ]]; then
    kubenode_drain
    stop_pid kubelet
    containerd_cleanup
  fi
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
  # a namespace annotated with a node selector and default tolerations puts all its pods on
  # one node: how the tests send pods lakeop builds to the real node, unchanged
  plugins+=,PodNodeSelector,PodTolerationRestriction
  # --endpoint-reconciler-type none: Endpoints may not hold loopback addresses. With the real
  # node it listens on the pod bridge's gateway too (pods reach it there, through the DNAT
  # of the kubernetes Service's address), and resolves webhook Services to their endpoints
  # (pod addresses on the bridge) since there is no kube-proxy on the host.
  local bind=(--bind-address 127.0.0.1 --advertise-address 127.0.0.1)
  if [[ $NODE_MODE == real ]]; then
    bind=(--bind-address 0.0.0.0 --advertise-address "$GATEWAY" --enable-aggregator-routing=true
      --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt"
      --kubelet-client-key "$PKI/apiserver-kubelet-client.key")
  fi
  start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    "${bind[@]}" --secure-port "$API_PORT" \
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

# ---- the real node: kube-scheduler, containerd, kubelet, the pod bridge -----------------

ctr_() { ctr --address "$CTRD_SOCK" -n k8s.io "$@"; }

start_kube-scheduler() {
  local kc="$PKI/scheduler.kubeconfig"
  start kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig "$kc" --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
    --authentication-skip-lookup=true \
    --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --leader-elect=false \
    --profiling=false --v=1
}

# The bridge and its gateway address exist before the kubelet starts (its --node-ip must be
# a host address); the CNI bridge plugin then finds them as configured. Pods reach the API
# server at the kubernetes Service's address through one DNAT rule; the API server's port is
# open to loopback and the bridge only.
network_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$GATEWAY/${POD_SUBNET#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  iptables -t nat -N "$NAT_CHAIN" 2>/dev/null || iptables -t nat -F "$NAT_CHAIN"
  iptables -t nat -A "$NAT_CHAIN" -d "$SERVICE_IP/32" -p tcp --dport 443 \
    -j DNAT --to-destination "$GATEWAY:$API_PORT"
  iptables -t nat -C PREROUTING -i "$BRIDGE" -j "$NAT_CHAIN" 2>/dev/null ||
    iptables -t nat -A PREROUTING -i "$BRIDGE" -j "$NAT_CHAIN"
  iptables -N "$NAT_CHAIN" 2>/dev/null || iptables -F "$NAT_CHAIN"
  iptables -A "$NAT_CHAIN" -i lo -j RETURN
  iptables -A "$NAT_CHAIN" -i "$BRIDGE" -j RETURN
  iptables -A "$NAT_CHAIN" -j DROP
  iptables -C INPUT -p tcp --dport "$API_PORT" -j "$NAT_CHAIN" 2>/dev/null ||
    iptables -I INPUT -p tcp --dport "$API_PORT" -j "$NAT_CHAIN"
  # nothing from the pods is forwarded off the bridge: their traffic stays on this machine
  iptables -C FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP 2>/dev/null ||
    iptables -I FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP
  mkdir -p "$DC/cni/net.d"
  cat >"$DC/cni/net.d/10-devcluster.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "devcluster",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "isDefaultGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$DC/cni/ipam",
        "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$GATEWAY"}]]
      }
    }
  ]
}
JSON
}

network_down() {
  iptables -t nat -D PREROUTING -i "$BRIDGE" -j "$NAT_CHAIN" 2>/dev/null || true
  iptables -t nat -F "$NAT_CHAIN" 2>/dev/null && iptables -t nat -X "$NAT_CHAIN" 2>/dev/null || true
  iptables -D INPUT -p tcp --dport "$API_PORT" -j "$NAT_CHAIN" 2>/dev/null || true
  iptables -D FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP 2>/dev/null || true
  iptables -F "$NAT_CHAIN" 2>/dev/null && iptables -X "$NAT_CHAIN" 2>/dev/null || true
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
  rm -rf "$DC/cni"
}

start_containerd() {
  mkdir -p "$CTRD"
  network_up
  cat >"$CTRD/config.toml" <<TOML
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  level = "warn"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$(cat "$IMAGES/pause.ref")"
  # root here lacks CAP_SYS_RESOURCE: never lower a container's oom_score_adj below ours
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DC/cni/net.d"
TOML
  start containerd containerd --config "$CTRD/config.toml"
  wait_until 30 "containerd" ctr_ version
  import_images
}

# Import an image tar into containerd's k8s.io namespace unless that exact build is there.
import_images() {
  local name ref stamp
  for name in pause lakeop; do
    [[ -s "$IMAGES/$name.tar" ]] || die "$IMAGES/$name.tar is missing: run 'make image'"
    ref="$(cat "$IMAGES/$name.ref")"
    stamp="$(stat -c %Y-%s "$IMAGES/$name.tar")"
    if [[ "$(cat "$CTRD/$name.imported" 2>/dev/null)" == "$stamp" ]] &&
      ctr_ images ls -q | grep -q "\(^\|/\)$ref\$"; then  # a local name, as containerd normalised it
      continue
    fi
    log "importing $ref into containerd (namespace k8s.io)"
    ctr_ images import --no-unpack=false "$IMAGES/$name.tar" >/dev/null
    echo "$stamp" >"$CTRD/$name.imported"
  done
}

# cgroup_dirs: CGROUP_ROOT in every cgroup hierarchy (v1: one per mounted controller set).
cgroup_dirs() {
  local m
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    echo "/sys/fs/cgroup$CGROUP_ROOT"
    return
  fi
  for m in /sys/fs/cgroup/*/; do
    [[ -f "${m}cgroup.procs" ]] && echo "${m%/}$CGROUP_ROOT"
  done
  return 0
}

cgroup_up() {
  local d
  for d in $(cgroup_dirs); do
    mkdir -p "$d"
    if [[ -f "$d/cpuset.cpus" && -z "$(cat "$d/cpuset.cpus")" ]]; then
      cat "${d%/*}/cpuset.cpus" >"$d/cpuset.cpus"
      cat "${d%/*}/cpuset.mems" >"$d/cpuset.mems"
    fi
  done
}

# cgroup_down: remove CGROUP_ROOT's (now empty) cgroups, deepest first.
cgroup_down() {
  local d
  for d in $(cgroup_dirs); do
    if [[ -d "$d" ]]; then find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
  done
}

start_kubelet() {
  local kdir="$DC/kubelet"
  mkdir -p "$kdir"
  cgroup_up
  cat >"$kdir/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: "$GATEWAY"
port: $KUBENODE_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBENODE_HEALTHZ
tlsCertFile: "$PKI/kubenode-serving.crt"
tlsPrivateKeyFile: "$PKI/kubenode-serving.key"
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: Webhook}
containerRuntimeEndpoint: "unix://$CTRD_SOCK"
cgroupDriver: cgroupfs
cgroupRoot: "$CGROUP_ROOT"
failSwapOn: false
clusterDomain: cluster.local
maxPods: 40
serializeImagePulls: false
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
registerWithTaints:
  - {key: "$KUBENODE_TAINT", value: "true", effect: NoSchedule}
YAML
  start kubelet "$BIN/kubelet" --config "$kdir/config.yaml" \
    --kubeconfig "$PKI/kubenode.kubeconfig" --root-dir "$kdir/root" --cert-dir "$kdir/pki" \
    --hostname-override "$KUBENODE" --node-ip "$GATEWAY" \
    --node-labels "devcluster.lakeop.io/node=real" --v=1
}

# Stop the real node's pods before the node: delete them from the API (the kubelet then
# stops their containers and tears their sandboxes and CNI addresses down), then kill
# whatever containerd still runs.
kubenode_drain() {
  pid_alive kubelet || return 0
  if api_ready; then
    kctl delete pods -A --field-selector "spec.nodeName=$KUBENODE" --grace-period=0 --force \
      --wait=false >/dev/null 2>&1 || true
    local i
    for ((i = 0; i < 60; i++)); do
      [[ -z "$(ctr_ tasks ls -q 2>/dev/null)" ]] && break
      sleep 0.5
    done
  fi
}

containerd_cleanup() {
  local t
  if pid_alive containerd; then
    for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$t" 2>/dev/null || true; done
    sleep 0.5
    for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks rm -f "$t" >/dev/null 2>&1 || true; done
    for t in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers rm "$t" >/dev/null 2>&1 || true; done
  fi
}

# Mounts the kubelet and containerd left under the state directory (volumes, rootfs, shm).
unmount_state() {
  local m
  awk '{print $2}' /proc/mounts | grep "^$DC/" | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

component_ports() {
  case $1 in
    etcd) echo "$ETCD_PORT $ETCD_PEER_PORT" ;;
    kube-apiserver) echo "$API_PORT" ;;
    kube-controller-manager) echo "$KCM_PORT" ;;
    procnode) echo "$KUBELET_PORT" ;;
    kube-scheduler) echo "$SCHED_PORT" ;;
    kubelet) echo "$KUBENODE_HEALTHZ" ;;
    containerd) ;;
  esac
}

up() {
  if healthy; then
    log "already up and healthy"
    usage
    return 0
  fi
  local bins=(etcd kube-apiserver kube-controller-manager kubectl)
  [[ $NODE_MODE == real ]] && bins+=(kube-scheduler kubelet)
  for b in "${bins[@]}"; do
    [[ -x "$BIN/$b" ]] || die "$BIN/$b is missing: run 'make cluster-bin' (bash devcluster/build.sh)"
  done
  [[ -x "$PY" ]] || die "$PY is missing: run 'make venv'"
  if [[ $NODE_MODE == real ]]; then
    bash "$ROOT/devcluster/packages.sh"
    bash "$ROOT/devcluster/image.sh" # quick when the saved images are up to date
  fi
  local c port t0=$SECONDS
  mkdir -p "$RUN" "$DC/pods"
  if ! pid_alive etcd && ! pid_alive kube-apiserver; then
    stop_all # a crashed cluster's leftovers; etcd data is kept
    if [[ -d "$LOGS" ]]; then rm -rf "$LOGS.prev" && mv "$LOGS" "$LOGS.prev"; fi
  fi
  mkdir -p "$LOGS/pods"
  "$PY" "$ROOT/devcluster/pki.py" "$DC" "$API_URL" "$GATEWAY"
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
  if [[ $NODE_MODE == real ]]; then
    wait_until 120 "node $KUBENODE to be Ready" \
      "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" wait "node/$KUBENODE" --for=condition=Ready --timeout=2s
  fi
  wait_until 60 "ServiceAccount default/default" \
    "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" -n default get serviceaccount default
  for c in "${COMPONENTS[@]}"; do pid_alive "$c" || die "$c exited during start-up: see $LOGS/$c.log"; done
  log "control plane ready in $((SECONDS - t0))s"
  usage
}

down() {
  stop_all
  if [[ $NODE_MODE == real ]]; then
    unmount_state
    network_down
    cgroup_down
    # containerd's content store (the imported images) is kept: the next up starts faster
    rm -rf "$DC/kubelet" "$CTRD/state" "$CTRD/opt"
  fi
  rm -rf "$RUN" "$PKI" "$DC/etcd" "$DC/pods" "$KUBECONFIG_FILE"
  log "stopped; state removed (binaries, images and logs kept)"
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
