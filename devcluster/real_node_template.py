"""Mount the demo's landing folder into the Job pods of a manifest stream, for ``make demo``.

Reads YAML documents on stdin and writes them to stdout, each IngestionJob with a
``spec.podTemplate`` that mounts SOURCE_DIR read-only as a hostPath volume at its own path.
Where the pods run (kubenode) and their lake volume are the operator's settings
(``LAKEOP_JOB_NODE_SELECTOR``, ``LAKEOP_JOB_TOLERATIONS``, ``LAKEOP_LAKE_VOLUME``), not the
template's. Other documents pass unchanged.

    real_node_template.py SOURCE_DIR < manifests > manifests
"""

from __future__ import annotations

import sys
from typing import Any

import yaml


def pod_template(source: str) -> dict[str, Any]:
    return {
        "spec": {
            "volumes": [{"name": "landing", "hostPath": {"path": source, "type": "Directory"}}],
            "containers": [
                {
                    "name": "ingest",
                    "volumeMounts": [{"name": "landing", "mountPath": source, "readOnly": True}],
                }
            ],
        }
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    for doc in docs:
        if doc.get("kind") == "IngestionJob":
            doc.setdefault("spec", {})["podTemplate"] = pod_template(argv[0])
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
