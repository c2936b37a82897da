#!/usr/bin/env bash
# Build the local cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet, kubectl) from the Go modules pinned in devcluster/go.mod, into .devcluster/bin/.
# Only the Go toolchain and the Go module proxy are needed; nothing is downloaded as a release
# binary. The Go build cache makes re-runs cheap, and the whole step is skipped while the
# binaries are newer than go.mod, go.sum and this script.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOD="$ROOT/devcluster"
BIN="$ROOT/.devcluster/bin"

# name of the binary -> Go package that has its main()
declare -A PKGS=(
  [etcd]=go.etcd.io/etcd/server/v3
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
  [kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
  [kubelet]=k8s.io/kubernetes/cmd/kubelet
  [kubectl]=k8s.io/kubernetes/cmd/kubectl
)

up_to_date() {
  local name inputs=("$MOD/go.mod" "$MOD/go.sum" "${BASH_SOURCE[0]}")
  for name in "${!PKGS[@]}"; do
    [[ -x "$BIN/$name" ]] || return 1
    for f in "${inputs[@]}"; do
      [[ "$BIN/$name" -nt "$f" ]] || return 1
    done
  done
}

if [[ "${1:-}" != "--force" ]] && up_to_date; then
  echo "devcluster: binaries in .devcluster/bin are up to date"
  exit 0
fi

command -v go >/dev/null || { echo "devcluster: the Go toolchain (go) is required" >&2; exit 1; }

cd "$MOD"
k8s_version="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"
minor="${k8s_version#v1.}"
minor="${minor%%.*}"
# -s -w: no symbol tables (a third smaller). No -trimpath: the binaries never leave this
# machine, and it would change every compile action, so no build cache could be shared with
# plain `go build` runs. The version variables make `--version` and /version say v1.34.x.
vpkg=k8s.io/component-base/version
ldflags="-s -w -X $vpkg.gitVersion=$k8s_version -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor"
ldflags+=" -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=1970-01-01T00:00:00Z"

# One `go build` for all of them so the compiler shares work; it names each binary after the
# package path, skipping a major-version suffix (etcd's ".../server/v3" -> "server"), so
# build into a scratch directory and rename.
go_out_name() {
  local base="${1##*/}"
  if [[ "$base" =~ ^v[0-9]+$ ]]; then
    base="${1%/*}"
    base="${base##*/}"
  fi
  echo "$base"
}
tmp="$BIN/.build"
rm -rf "$tmp"
mkdir -p "$tmp"
echo "devcluster: building ${!PKGS[*]} ($k8s_version)"
echo "devcluster: a cold build takes about 12 minutes on 2 cores; later builds use the Go cache"
start=$SECONDS
go build -buildvcs=false -ldflags="$ldflags" -o "$tmp/" "${PKGS[@]}"
for name in "${!PKGS[@]}"; do
  mv -f "$tmp/$(go_out_name "${PKGS[$name]}")" "$BIN/$name"
done
rm -rf "$tmp"
echo "devcluster: built in $((SECONDS - start))s into .devcluster/bin"
