#!/usr/bin/env bash
# Make the webhook's TLS material for the self-signed overlay: a CA (10 years) and a serving
# certificate for the webhook Service signed by it (1 year). Writes ca.crt, tls.crt and tls.key
# next to this script (or into $1), where kustomization.yaml's secretGenerator reads them and
# the CA is copied into the ValidatingWebhookConfiguration's caBundle. The files are
# git-ignored: keep the key out of the repository (sealed-secrets / SOPS for GitOps).
set -euo pipefail
out="${1:-$(cd "$(dirname "$0")" && pwd)}"
service="${LAKEOP_WEBHOOK_SERVICE:-lakeop-webhook}"
namespace="${LAKEOP_NAMESPACE_NAME:-lakeop-system}"
days="${LAKEOP_CERT_DAYS:-365}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
umask 077

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -subj "/CN=lakeop webhook CA" -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=${service}.${namespace}.svc" -keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s,DNS:%s.%s,DNS:%s.%s.svc,DNS:%s.%s.svc.cluster.local\n' \
  "$service" "$service" "$namespace" "$service" "$namespace" "$service" "$namespace" \
  >"$work/san.ext"
printf 'extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n' >>"$work/san.ext"
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
  -CAcreateserial -days "$days" -extfile "$work/san.ext" -out "$work/tls.crt" 2>/dev/null

cp "$work/ca.crt" "$work/tls.crt" "$work/tls.key" "$out/"
echo "wrote $out/ca.crt $out/tls.crt $out/tls.key for ${service}.${namespace}.svc"
