#!/usr/bin/env bash
# Build the project's image (Dockerfile) and the pause image without any registry:
#   1. a Debian bookworm root filesystem from debootstrap (python3, venv, CA certificates),
#      apt caches, lists, docs and man pages dropped, cached as .devcluster/images/base.tar;
#   2. `docker import` of it as lakeop-base:bookworm (the Dockerfile's default BASE);
#   3. `docker build` of the Dockerfile -> lakeop:<version> (pyproject.toml's version);
#   4. the pause container the kubelet's pod sandboxes need, compiled from pause.c in the
#      pinned k8s.io/kubernetes module, imported as lakeop-pause:<kubeadm's version> (containerd's sandbox_image);
#   5. both saved as .devcluster/images/{lakeop,pause}.tar, which `cluster.sh up` imports
#      into the node's containerd (namespace k8s.io).
# dockerd runs only for the duration of this script: its own data under .devcluster/docker,
# its own socket, no bridge and no iptables rules (builds use the host network, which pip
# needs to reach the package index). BASE=python:3.11-slim-bookworm uses a registry instead.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGES="$ROOT/.devcluster/images"
DOCKER_ROOT="$ROOT/.devcluster/docker"
SOCK="$DOCKER_ROOT/docker.sock"
BASE_TAG=lakeop-base:bookworm
BASE="${BASE:-$BASE_TAG}"
VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/pyproject.toml" | head -1)"
IMAGE="lakeop:$VERSION"
PAUSE_NAME=lakeop-pause
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
# the Debian mirror: DEBIAN_MIRROR, else the first one apt is configured with on this machine
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list; do
    [[ -r "$f" ]] || continue
    sed -n -e 's/^URIs: *\([^ ]*\).*/\1/p' -e 's/^deb \(\[[^]]*\] \)\?\([^ ]*\) .*/\2/p' "$f"
  done | { grep -v security || true; } | sed -n 1p
}
MIRROR="${DEBIAN_MIRROR:-$(apt_mirror)}"

log() { echo "image: $*"; }
die() { echo "image: error: $*" >&2; exit 1; }

# Nothing to do while the saved image is newer than everything that goes into it.
up_to_date() {
  [[ -s "$IMAGES/lakeop.tar" && -s "$IMAGES/pause.tar" && $BASE == "$BASE_TAG" ]] || return 1
  [[ -z "$(find "$ROOT/Dockerfile" "$ROOT/.dockerignore" "$ROOT/pyproject.toml" \
    "$ROOT/requirements/constraints.txt" "$ROOT/crds" "$ROOT/operator" "${BASH_SOURCE[0]}" \
    -newer "$IMAGES/lakeop.tar" -not -path '*/__pycache__*' -not -path '*.egg-info*' \
    -print -quit)" ]]
}
if [[ "${1:-}" != "--force" ]] && up_to_date; then
  echo "image: .devcluster/images/lakeop.tar is up to date"
  exit 0
fi

bash "$ROOT/devcluster/packages.sh"
mkdir -p "$IMAGES" "$DOCKER_ROOT"
# Debian's own client: /usr/local/bin/docker may be a newer one that needs buildx.
docker() { DOCKER_BUILDKIT=1 /usr/bin/docker -H "unix://$SOCK" "$@"; }

build_base_tar() {
  [[ -s "$IMAGES/base.tar" ]] && return 0
  local dir="$IMAGES/rootfs.tmp" t0=$SECONDS
  rm -rf "$dir"
  [[ -n "$MIRROR" ]] || die "no Debian mirror: apt has none configured; set DEBIAN_MIRROR"
  log "debootstrap bookworm (minbase + python3, python3-venv, ca-certificates); about a minute"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$dir" "$MIRROR" >"$IMAGES/debootstrap.log" 2>&1 ||
    die "debootstrap failed: see $IMAGES/debootstrap.log"
  rm -rf "$dir"/var/cache/apt/* "$dir"/var/lib/apt/lists/* "$dir"/var/log/* \
    "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* \
    "$dir"/usr/share/locale/* "$dir"/tmp/* "$dir"/var/cache/debconf/*-old
  tar --numeric-owner -C "$dir" -cf "$IMAGES/base.tar.tmp" .
  mv "$IMAGES/base.tar.tmp" "$IMAGES/base.tar"
  rm -rf "$dir"
  log "base root filesystem in $((SECONDS - t0))s: $(du -h "$IMAGES/base.tar" | cut -f1)"
}

build_pause_tar() {
  [[ -s "$IMAGES/pause.tar" ]] && grep -qs "^$PAUSE_NAME:" "$IMAGES/pause.ref" && return 0
  local k8s src dir version
  k8s="$(cd "$ROOT/devcluster" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)"
  src="$k8s/build/pause/linux/pause.c"
  [[ -f "$src" ]] || die "$src is missing (go mod download in devcluster/)"
  version="$(sed -n 's/^\s*PauseVersion = "\(.*\)"$/\1/p' "$k8s/cmd/kubeadm/app/constants/constants.go")"
  [[ -n "$version" ]] || die "no PauseVersion in $k8s/cmd/kubeadm/app/constants/constants.go"
  dir="$(mktemp -d)"
  gcc -Os -static -s -DVERSION="\"v$version-devcluster\"" -o "$dir/pause" "$src"
  tar --numeric-owner --owner=0 --group=0 -C "$dir" -cf "$dir/pause-rootfs.tar" pause
  echo "$PAUSE_NAME:$version" >"$IMAGES/pause.ref.tmp"
  docker import --change 'ENTRYPOINT ["/pause"]' --change 'USER 65535:65535' \
    "$dir/pause-rootfs.tar" "$PAUSE_NAME:$version" >/dev/null
  docker save -o "$IMAGES/pause.tar.tmp" "$PAUSE_NAME:$version"
  rm -rf "$dir"
  mv "$IMAGES/pause.tar.tmp" "$IMAGES/pause.tar"
  mv "$IMAGES/pause.ref.tmp" "$IMAGES/pause.ref"
  log "pause image $PAUSE_NAME:$version"
}

DOCKERD_PID=""
start_dockerd() {
  log "starting a private dockerd (data in .devcluster/docker)"
  # exec-root holds dockerd's containerd socket: keep its path short (unix socket limit).
  local exec_root
  exec_root="/run/lakeop-docker-$(echo -n "$ROOT" | sha256sum | cut -c1-12)"
  /usr/sbin/dockerd -H "unix://$SOCK" --data-root "$DOCKER_ROOT/data" --exec-root "$exec_root" \
    --pidfile "$DOCKER_ROOT/dockerd.pid" --bridge none --iptables=false --ip-forward=false \
    --ip-masq=false >"$DOCKER_ROOT/dockerd.log" 2>&1 </dev/null &
  DOCKERD_PID=$!
  local i
  for ((i = 0; i < 120; i++)); do
    docker version >/dev/null 2>&1 && return 0
    kill -0 "$DOCKERD_PID" 2>/dev/null || die "dockerd exited: see $DOCKER_ROOT/dockerd.log"
    sleep 0.5
  done
  die "dockerd did not answer in 60s: see $DOCKER_ROOT/dockerd.log"
}
stop_dockerd() {
  [[ -n "$DOCKERD_PID" ]] || return 0
  kill -TERM "$DOCKERD_PID" 2>/dev/null || true
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$DOCKERD_PID" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$DOCKERD_PID" 2>/dev/null || true
}
trap stop_dockerd EXIT

[[ $BASE == "$BASE_TAG" ]] && build_base_tar
start_dockerd
if [[ $BASE == "$BASE_TAG" ]] && ! docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
  docker import "$IMAGES/base.tar" "$BASE_TAG" >/dev/null
  log "imported $BASE_TAG"
fi
build_pause_tar
secret=()
[[ -s "$CA_BUNDLE" ]] && secret=(--secret "id=ca-bundle,src=$CA_BUNDLE")
log "docker build -t $IMAGE (BASE=$BASE)"
docker build --network host --build-arg "BASE=$BASE" "${secret[@]}" -t "$IMAGE" "$ROOT"
id="$(docker image inspect -f '{{.Id}}' "$IMAGE")"
if [[ "$(cat "$IMAGES/lakeop.id" 2>/dev/null)" != "$id" || ! -s "$IMAGES/lakeop.tar" ]]; then
  docker save -o "$IMAGES/lakeop.tar.tmp" "$IMAGE"
  mv "$IMAGES/lakeop.tar.tmp" "$IMAGES/lakeop.tar"
  echo "$IMAGE" >"$IMAGES/lakeop.ref"
  echo "$id" >"$IMAGES/lakeop.id"
else
  touch "$IMAGES/lakeop.tar" # same build: up to date again
fi
log "$IMAGE ($id) is $(docker image inspect -f '{{.Size}}' "$IMAGE" | numfmt --to=iec) in ${SECONDS}s" \
  "(saved as .devcluster/images/lakeop.tar)"
