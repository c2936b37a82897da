"""Send the IngestionJobs of a manifest stream to the real node, for ``make demo``.

Reads YAML documents on stdin and writes them to stdout, each IngestionJob with a
``spec.podTemplate`` that runs its pods on NODE (nodeSelector and a toleration of its taint)
with hostPath volumes of the given folders, each mounted at its own path (the first read-only:
the landing data; the others: table locations). Other documents pass unchanged.

    real_node_template.py NODE SOURCE_DIR LAKE_DIR... < manifests > manifests
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

TAINT = "devcluster.lakeop.io/real-node"


def pod_template(node: str, source: str, lakes: list[str]) -> dict[str, Any]:
    folders = [(source, True), *((lake, False) for lake in lakes)]
    volumes = [
        {"name": f"host-{i}", "hostPath": {"path": path, "type": "Directory"}}
        for i, (path, _) in enumerate(folders)
    ]
    mounts = [
        {"name": f"host-{i}", "mountPath": path, "readOnly": read_only}
        for i, (path, read_only) in enumerate(folders)
    ]
    return {
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "tolerations": [{"key": TAINT, "operator": "Exists", "effect": "NoSchedule"}],
            "volumes": volumes,
            "containers": [{"name": "ingest", "volumeMounts": mounts}],
        }
    }


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    node, source, lakes = argv[0], argv[1], argv[2:]
    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    for doc in docs:
        if doc.get("kind") == "IngestionJob":
            doc.setdefault("spec", {})["podTemplate"] = pod_template(node, source, lakes)
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
