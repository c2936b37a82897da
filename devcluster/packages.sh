#!/usr/bin/env bash
# Install the Debian packages the local cluster's real node and `make image` need:
# containerd, runc and dockerd (docker.io), the CNI plugins, debootstrap, iptables; and
# prometheus, for the promtool that tests the alert rules (tests/ship/test_prometheus_rules.py).
# Idempotent and quick when everything is there: dpkg is asked first, apt only when
# something is missing. Needs root (the node itself needs root too).
set -euo pipefail

PACKAGES=(docker.io containerd runc containernetworking-plugins debootstrap iptables prometheus)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "devcluster: root is needed to install ${missing[*]} (apt-get install)" >&2
  exit 1
fi
echo "devcluster: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
# Only promtool is wanted from prometheus: on a host run by systemd, do not leave its server
# (port 9090) running.
if [[ " ${missing[*]} " == *" prometheus "* ]] && [[ -d /run/systemd/system ]]; then
  systemctl disable --now prometheus.service || true
fi
