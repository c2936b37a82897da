"""The webhook's self-signed CA and serving certificate for the local cluster."""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509

from lakeop.handlers._certs import write_self_signed


def test_leaf_is_signed_by_the_ca_and_names_the_host(tmp_path: Path) -> None:
    ca, cert, key = write_self_signed(tmp_path / "certs", "127.0.0.1")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)  # the key matches the certificate
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    root = x509.load_pem_x509_certificate(ca.read_bytes())
    leaf.verify_directly_issued_by(root)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert key.stat().st_mode & 0o777 == 0o600


def test_dns_host_becomes_a_dns_name(tmp_path: Path) -> None:
    _, cert, _ = write_self_signed(tmp_path, "lakeop-webhook.lakeop-system.svc")
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "lakeop-webhook.lakeop-system.svc" in sans.get_values_for_type(x509.DNSName)
