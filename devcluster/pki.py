"""Certificates, keys and kubeconfigs for the local control plane.

The API server needs a serving certificate, clients need credentials it trusts, and
ServiceAccount tokens need a signing key pair. Everything is self-signed by one throwaway
CA that lives under ``.devcluster/pki`` and is deleted by ``make cluster-down``. Existing
files are kept, so re-running this is harmless and an already issued kubeconfig stays valid.

Usage: ``python devcluster/pki.py <state-dir> <api-server-url> [<pod-bridge-gateway-ip>]``
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import sys
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=365)
SERVICE_IP = "10.96.0.1"  # first address of --service-cluster-ip-range
API_SANS_DNS = [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
]

# client certificate name -> (common name, organisation); system:masters is the admin group
CLIENTS = {
    "admin": ("devcluster-admin", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", ""),
    "procnode": ("devcluster:procnode", "system:masters"),
    "scheduler": ("system:kube-scheduler", ""),
    # the real node's kubelet (Node authorizer) and the API server's client to it
    "kubenode": ("system:node:kubenode", "system:nodes"),
    "apiserver-kubelet-client": ("devcluster-apiserver", "system:masters"),
}


def _name(cn: str, org: str = "") -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{path}: expected an EC private key")
    return key


def _issue(
    pki: Path,
    stem: str,
    subject: x509.Name,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    server: bool = False,
    ips: tuple[str, ...] = (),
) -> None:
    """Write ``<stem>.key``/``<stem>.crt``; ``ca=None`` makes a self-signed CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    issuer, signer = (subject, key) if ca is None else (ca[0].subject, ca[1])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
    )
    if ca is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        usage = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        eku = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        if server:
            sans: list[x509.GeneralName] = [x509.DNSName(d) for d in API_SANS_DNS]
            addresses = ("127.0.0.1", SERVICE_IP, *ips)
            sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(signer, hashes.SHA256())
    _write_key(pki / f"{stem}.key", key)
    (pki / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _kubeconfig(path: Path, server: str, *, ca: Path, cert: Path, key: Path, user: str) -> None:
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "devcluster",
                "cluster": {"server": server, "certificate-authority-data": b64(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)},
            }
        ],
        "contexts": [{"name": "devcluster", "context": {"cluster": "devcluster", "user": user}}],
        "current-context": "devcluster",
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)


def ensure_pki(state: Path, server: str, gateway: str = "") -> None:
    """``gateway``: the pod bridge's address, where pods reach the API server and the API
    server reaches the real node's kubelet (a SAN of both serving certificates)."""
    pki = state / "pki"
    pki.mkdir(parents=True, exist_ok=True)
    if not (pki / "ca.crt").exists():
        _issue(pki, "ca", _name("devcluster-ca"), None)
    ca_cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca = (ca_cert, _load_key(pki / "ca.key"))
    ips = (gateway,) if gateway else ()
    # the process node's log API serves on 127.0.0.1 too; kubenode-serving is the kubelet's
    for stem in ("apiserver", "kubelet", "kubenode-serving"):
        if not (pki / f"{stem}.crt").exists():
            _issue(pki, stem, _name(f"devcluster-{stem}"), ca, server=True, ips=ips)
    for stem, (cn, org) in CLIENTS.items():
        if not (pki / f"{stem}.crt").exists():
            _issue(pki, stem, _name(cn, org), ca)
    if not (pki / "sa.key").exists():
        sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_key(pki / "sa.key", sa)
        pub = sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        (pki / "sa.pub").write_bytes(pub)
    targets = {
        "admin": state / "kubeconfig",
        "controller-manager": pki / "controller-manager.kubeconfig",
        "procnode": pki / "procnode.kubeconfig",
        "scheduler": pki / "scheduler.kubeconfig",
        "kubenode": pki / "kubenode.kubeconfig",
    }
    for stem, path in targets.items():
        crt, key = pki / f"{stem}.crt", pki / f"{stem}.key"
        _kubeconfig(path, server, ca=pki / "ca.crt", cert=crt, key=key, user=CLIENTS[stem][0])


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    ensure_pki(Path(argv[0]), argv[1], *argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
