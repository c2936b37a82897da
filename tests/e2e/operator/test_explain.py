"""``kubectl explain`` on the installed CRDs reads like a manual, down to the leaves.

tests/ship/test_crd_explain.py checks every property's description offline; this checks that
the API server publishes them (the OpenAPI it serves to kubectl), for a few fields a user asks
about first.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("field", "words"),
    [
        ("ingestionjob.spec.source.sql", ["SQLAlchemy", "urlSecretRef", "incrementalColumn"]),
        ("ingestionjob.spec.source.sql.query", ["server-side cursor", "batchSize"]),
        ("ingestionjob.spec.schedule", ["Cron expression", "absent = one run"]),
        ("ingestionjob.status.lastSuccessfulTime", ["last successful run"]),
        ("table.spec.partitioning.strategy", ["none (default)", "hash", "list"]),
        ("schemaversion.spec.fields.type", ["decimal", "struct"]),
    ],
)
def test_kubectl_explain_describes_the_field(
    kube: Any, crds: None, field: str, words: list[str]
) -> None:
    out = kube.kubectl("explain", field).stdout
    text = " ".join(out.split())  # kubectl wraps long descriptions
    for word in words:
        assert word in text, out
