"""Time ``lakeop validate`` over a generated GitOps folder of 200 manifests.

``lakeop validate`` is meant for pre-commit hooks, so what counts is the wall time a user
waits for, interpreter start-up included. The folder holds 20 tables, each with its Table,
8 SchemaVersions (a compatible chain: every version adds a nullable column and widens a
decimal) and one IngestionJob, one object per file: 200 manifests in all. The anchor, measured
in the same run, is the bare cost of starting Python and parsing the same files with
PyYAML (the same libyaml loader lakeop uses).

Prints one line; ``--manifests N`` changes the size (rounded to whole tables).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VERSIONS_PER_TABLE = 8
OBJECTS_PER_TABLE = VERSIONS_PER_TABLE + 2

ANCHOR = """
import pathlib, sys, yaml
for p in sorted(pathlib.Path(sys.argv[1]).rglob("*.yaml")):
    list(yaml.load_all(p.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
"""


def table_yaml(ns: str, name: str) -> str:
    return f"""apiVersion: lakeop.io/v1alpha1
kind: Table
metadata: {{name: {name}, namespace: {ns}}}
spec:
  description: generated table {name}
  format: parquet
  compression: zstd
  partitioning: {{strategy: date, column: ts, granularity: day}}
  compatibility: BACKWARD_TRANSITIVE
"""


def version_yaml(ns: str, table: str, version: int) -> str:
    extra = "".join(
        f"    - {{name: extra_{i}, type: string, nullable: true, doc: added in v{i}}}\n"
        for i in range(2, version + 1)
    )
    return f"""apiVersion: lakeop.io/v1alpha1
kind: SchemaVersion
metadata: {{name: {table}-v{version}, namespace: {ns}}}
spec:
  tableRef: {table}
  version: {version}
  fields:
    - {{name: id, type: long, nullable: false}}
    - {{name: ts, type: timestamp}}
    - {{name: amount, type: decimal, precision: {10 + version}, scale: 2}}
    - {{name: properties, type: map, values: string}}
    - {{name: tags, type: array, items: string}}
    - name: device
      type: struct
      fields: [{{name: os, type: string}}, {{name: model, type: string}}]
{extra}"""


def job_yaml(ns: str, table: str) -> str:
    return f"""apiVersion: lakeop.io/v1alpha1
kind: IngestionJob
metadata: {{name: {table}-daily, namespace: {ns}}}
spec:
  tableRef: {table}
  source: {{uri: "s3://landing/{table}/*.csv", format: csv, options: {{header: true}}}}
  mode: append
  schedule: "0 2 * * *"
"""


def generate(root: Path, manifests: int) -> int:
    tables = max(1, manifests // OBJECTS_PER_TABLE)
    for t in range(tables):
        ns, name = f"team-{t % 4}", f"table-{t}"
        folder = root / ns / name
        folder.mkdir(parents=True)
        (folder / "table.yaml").write_text(table_yaml(ns, name))
        (folder / "job.yaml").write_text(job_yaml(ns, name))
        for v in range(1, VERSIONS_PER_TABLE + 1):
            (folder / f"schema-v{v}.yaml").write_text(version_yaml(ns, name, v))
    return tables * OBJECTS_PER_TABLE


def timed(cmd: list[str], expect: int, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        samples.append(time.perf_counter() - start)
        if proc.returncode != expect:
            raise SystemExit(
                f"{' '.join(cmd)} exited {proc.returncode}: {proc.stdout}{proc.stderr}"
            )
    return statistics.median(samples)


def measure(manifests: int = 200, repeat: int = 5) -> tuple[int, float, float]:
    """(manifests, median seconds of ``lakeop validate``, median seconds of the anchor)."""
    with tempfile.TemporaryDirectory(prefix="lakeop-validate-bench-") as tmp:
        root = Path(tmp)
        count = generate(root, manifests)
        validate = timed([sys.executable, "-m", "lakeop", "validate", str(root)], 0, repeat)
        anchor = timed([sys.executable, "-c", ANCHOR, str(root)], 0, repeat)
    return count, validate, anchor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifests", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    count, validate, anchor = measure(args.manifests, args.repeat)
    print(
        f"lakeop validate: {count} manifests in {validate:.3f} s "
        f"(median of {args.repeat}, interpreter start-up included); anchor python+yaml.load "
        f"{anchor:.3f} s; ratio {validate / anchor:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
