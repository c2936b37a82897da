#!/usr/bin/env bash
# `make demo`: install the CRDs, run the operator in the background, apply examples/, wait
# with progress, then show the objects and DuckDB queries over the tables the runs wrote
# (Parquet directories, Delta's delta_scan, Iceberg's iceberg_scan at status.metadataLocation).
# Expects the local cluster to be up (make demo runs `make cluster-up` first).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export KUBECONFIG="$ROOT/.devcluster/kubeconfig"
KUBECTL="$ROOT/.devcluster/bin/kubectl"
PY="$ROOT/.venv/bin/python"
LOGS="$ROOT/.devcluster/logs"
PIDFILE="$ROOT/.devcluster/run/operator.pid"
NS=analytics
JOB=user-events-sample
DELTA_JOB=orders-sample
ICEBERG_JOB=orders-iceberg-sample
TIMEOUT="${DEMO_TIMEOUT:-180}"
REAL_NODE=kubenode # the cluster's kubelet + containerd node (devcluster/cluster.sh)
POD_UID=65532      # the Job pods' user (lakeop.core.runs.jobs.NON_ROOT_UID)
# The default lake: a file:// folder inside the checkout (override to try another root).
export LAKEOP_DEFAULT_LOCATION="${LAKEOP_DEFAULT_LOCATION:-file://$ROOT/.lake}"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "Installing the CRDs (crds/)"
"$KUBECTL" apply -k crds
"$KUBECTL" wait --for condition=established --timeout=60s \
  crd/tables.lakeop.io crd/schemaversions.lakeop.io crd/ingestionjobs.lakeop.io

# With the real node (kubelet + containerd) the operator sends every run there in a
# container of the project's image, as a cluster's operator would: LAKEOP_JOB_NODE_SELECTOR
# and LAKEOP_JOB_TOLERATIONS for kubenode and its taint, and the lake folder as a hostPath
# volume mounted at its own path in every Job pod (LAKEOP_LAKE_VOLUME/_MOUNT_PATH).
lake_root="${LAKEOP_DEFAULT_LOCATION#file://}"
real=false
if "$KUBECTL" get node "$REAL_NODE" >/dev/null 2>&1 && [[ "$LAKEOP_DEFAULT_LOCATION" == file://* ]]; then
  real=true
  mkdir -p "$lake_root"
  export LAKEOP_JOB_IMAGE="lakeop:$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -1)"
  export LAKEOP_JOB_NODE_SELECTOR="{\"kubernetes.io/hostname\": \"$REAL_NODE\"}"
  export LAKEOP_JOB_TOLERATIONS='[{"key": "devcluster.lakeop.io/real-node", "operator": "Exists", "effect": "NoSchedule"}]'
  export LAKEOP_LAKE_VOLUME="{\"hostPath\": {\"path\": \"$lake_root\", \"type\": \"Directory\"}}"
  export LAKEOP_LAKE_MOUNT_PATH="$lake_root"
fi

say "Starting the operator in the background (logs: .devcluster/logs/operator.log)"
mkdir -p "$LOGS" "$(dirname "$PIDFILE")"
if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "operator already running (pid $(cat "$PIDFILE")); stop it to change its settings"
else
  nohup "$ROOT/.venv/bin/lakeop" run --standalone --all-namespaces \
    >>"$LOGS/operator.log" 2>&1 &
  echo $! >"$PIDFILE"
  echo "operator pid $(cat "$PIDFILE"), lake at $LAKEOP_DEFAULT_LOCATION"
  if [[ $real == true ]]; then echo "Job pods: $LAKEOP_JOB_IMAGE on $REAL_NODE, $lake_root mounted in each"; fi
fi

# The sample's uri points where a GitOps deployment mounts landing data; here: this checkout.
rewrite() {
  for f in "$@"; do
    sed "s#file:///var/lib/lakeop/examples/#file://$ROOT/examples/#" "$f"
    echo "---"
  done
}
say "Applying examples/ (Tables user-events, orders (Delta) and orders-iceberg, SchemaVersions, IngestionJobs)"
"$KUBECTL" apply -f examples/00-namespace.yaml
if [[ $real == true ]]; then
  # The runs go to the real node (the operator's settings above); their template only mounts
  # the sample data (read-only) at the path the operator sees. The Job pods run as uid 65532:
  # the tables' folders are theirs.
  rewrite examples/1*.yaml | "$KUBECTL" apply -f -
  for tbl in user-events orders orders-iceberg; do
    location=""
    for ((i = 0; i < 60; i += 1)); do
      location=$("$KUBECTL" get ltbl "$tbl" -n "$NS" -o jsonpath='{.status.location}' \
        2>/dev/null || true)
      [[ -n "$location" ]] && break
      sleep 1
    done
    [[ "$location" == file://* ]] || { echo "Table $tbl has no file:// location: '$location'" >&2; exit 1; }
    chown -R "$POD_UID:$POD_UID" "${location#file://}"
  done
  echo "runs go to $REAL_NODE; examples/data is mounted into their pods"
  rewrite examples/[2-9]*.yaml | "$PY" "$ROOT/devcluster/real_node_template.py" "$ROOT/examples/data" |
    "$KUBECTL" apply -f -
else
  echo "no $REAL_NODE in this cluster (DEVCLUSTER_NODE=process): runs go to the process node"
  rewrite examples/[1-9]*.yaml | "$KUBECTL" apply -f -
fi

say "Waiting for the schema verdicts and the ingestion run (up to ${TIMEOUT}s)"
# The run starts only once every SchemaVersion of its table is decided (Accepted or
# Rejected), and writes under the highest Accepted one: v2 here, v3 being incompatible.
phase=""
for ((i = 0; i < TIMEOUT; i += 2)); do
  table=$("$KUBECTL" get ltbl user-events -n "$NS" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
  schemas=$("$KUBECTL" get lsv -n "$NS" \
    -o jsonpath='{range .items[*]}v{.spec.version}={.status.phase} {end}' 2>/dev/null || true)
  phase=$("$KUBECTL" get lij "$JOB" -n "$NS" -o jsonpath='{.status.phase}' 2>/dev/null || true)
  printf '  %3ss  table Ready=%-5s  schemas: %-45s job: %s\n' "$i" "${table:-?}" \
    "${schemas:-?}" "${phase:-?}"
  undecided=$("$KUBECTL" get lsv -n "$NS" -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' \
    2>/dev/null | grep -cvE '^(Accepted|Rejected)$' || true)
  delta_phase=$("$KUBECTL" get lij "$DELTA_JOB" -n "$NS" -o jsonpath='{.status.phase}' \
    2>/dev/null || true)
  iceberg_phase=$("$KUBECTL" get lij "$ICEBERG_JOB" -n "$NS" -o jsonpath='{.status.phase}' \
    2>/dev/null || true)
  [[ ( "$phase" == Succeeded || "$phase" == Failed ) && "$undecided" == 0 \
    && ( "$delta_phase" == Succeeded || "$delta_phase" == Failed ) \
    && ( "$iceberg_phase" == Succeeded || "$iceberg_phase" == Failed ) ]] && break
  sleep 2
done

say "The run's pod (kubectl get pods -n $NS -o wide)"
"$KUBECTL" get pods -n "$NS" -l "lakeop.io/ingestionjob=$JOB" -o wide

say "kubectl get lakeop -A"
"$KUBECTL" get lakeop -A

say "Schema verdicts (kubectl get lsv -n $NS)"
"$KUBECTL" get lsv -n "$NS" \
  -o custom-columns='NAME:.metadata.name,VERSION:.spec.version,PHASE:.status.phase,REASON:.status.conditions[?(@.type=="Ready")].reason'
echo "the run wrote under schema version $("$KUBECTL" get lij "$JOB" -n "$NS" \
  -o jsonpath='{.status.lastRun.schemaVersion}')"

location=$("$KUBECTL" get ltbl user-events -n "$NS" -o jsonpath='{.status.location}')
say "Rows per partition in ${location} (DuckDB over the written Parquet)"
"$PY" - "$location" <<'PYEOF'
import sys
from urllib.parse import urlparse

import duckdb

root = urlparse(sys.argv[1]).path
query = f"""
    select year, month, day, count(*) as rows
    from read_parquet('{root}/**/*.parquet', hive_partitioning = true, union_by_name = true)
    group by all order by all
"""
print(duckdb.sql(query))
PYEOF

orders=$("$KUBECTL" get ltbl orders -n "$NS" -o jsonpath='{.status.location}')
say "The Delta table ${orders}: rows per partition (DuckDB delta_scan) and its history"
"$KUBECTL" get ltbl orders -n "$NS" \
  -o custom-columns='NAME:.metadata.name,FORMAT:.status.format,SNAPSHOT:.status.snapshot.id,AT:.status.snapshot.timestamp,ROWS:.status.rows,FILES:.status.files'
"$PY" - "$orders" <<'PYEOF'
import json
import sys
from urllib.parse import urlparse

import duckdb
from deltalake import DeltaTable

from lakeop.duckext import delta_extension

root = urlparse(sys.argv[1]).path
con = duckdb.connect()
con.execute(f"LOAD '{delta_extension()}'")  # from the duckdb-ext-delta wheel: no download
print(con.sql(f"""
    select region_group, count(*) as orders, round(sum(total), 2) as total
    from delta_scan('{root}') group by all order by all
"""))
print("version  operation     rows added  run id")
for entry in sorted(DeltaTable(root).history(), key=lambda e: e["version"]):
    record = json.loads(entry.get("lakeop") or "{}")
    rows = sum(f["rows"] for f in record.get("files", [])) if record else ""
    print(f"{entry['version']:>7}  {entry['operation']:<12}  {rows!s:>10}  {record.get('run_id', '')}")
PYEOF

# The Iceberg table: its status names the current metadata file; DuckDB's iceberg_scan reads
# it with no catalog at all (the embedded SQLite catalog is the writers' business).
for ((i = 0; i < 60; i += 2)); do
  metadata=$("$KUBECTL" get ltbl orders-iceberg -n "$NS" -o jsonpath='{.status.metadataLocation}' \
    2>/dev/null || true)
  [[ -n "$metadata" ]] && break
  sleep 2
done
say "The Iceberg table orders-iceberg: rows per day (DuckDB iceberg_scan at status.metadataLocation) and its snapshots"
"$KUBECTL" get ltbl orders-iceberg -n "$NS" \
  -o custom-columns='NAME:.metadata.name,FORMAT:.status.format,SNAPSHOT:.status.snapshot.id,AT:.status.snapshot.timestamp,ROWS:.status.rows,FILES:.status.files'
echo "metadataLocation: ${metadata:-(none yet)}"
if [[ -n "$metadata" ]]; then
  "$PY" - "$metadata" <<'PYEOF'
import json
import sys
from urllib.parse import urlparse

import duckdb

from lakeop.duckext import extension_path

metadata = sys.argv[1]
con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
for name in ("avro", "iceberg"):  # from the duckdb-ext-* wheels: no download
    con.execute(f"LOAD '{extension_path(name)}'")
print(con.sql(f"""
    select cast(placed_at as date) as day, count(*) as orders, round(sum(total), 2) as total
    from iceberg_scan('{metadata}') group by all order by all
"""))
print(con.sql(f"""
    select sequence_number, snapshot_id, timestamp_ms
    from iceberg_snapshots('{metadata}') order by sequence_number
"""))
# each snapshot's summary (in the metadata file) carries the run that made it
print("snapshot             operation  rows added  lakeop.run-id")
with open(urlparse(metadata).path) as f:
    for snap in json.load(f)["snapshots"]:
        summary = snap["summary"]
        print(f"{snap['snapshot-id']:<20} {summary['operation']:<10} "
              f"{summary.get('added-records', ''):>10}  {summary.get('lakeop.run-id', '')}")
PYEOF
fi

if [[ "$iceberg_phase" != Succeeded ]]; then
  echo "The Iceberg table's run did not succeed (phase: ${iceberg_phase:-unknown})." >&2
fi
if [[ "$delta_phase" != Succeeded ]]; then
  echo "The Delta table's run did not succeed (phase: ${delta_phase:-unknown})." >&2
fi
if [[ "$phase" != Succeeded ]]; then
  echo "The run did not succeed (phase: ${phase:-unknown}); see the hints below." >&2
fi

cat <<HINTS

Look further:
  export KUBECONFIG=$KUBECONFIG
  $KUBECTL describe lij $JOB -n $NS          # lastRun, conditions, Events
  $KUBECTL get lsv user-events-v3 -n $NS -o yaml   # why v3 was Rejected (violations, diff)
  $KUBECTL get jobs,pods -n $NS -l lakeop.io/ingestionjob=$JOB
  tail -f .devcluster/logs/operator.log
  .venv/bin/lakeop validate examples/        # the offline check CI would run

Stop:
  kill \$(cat .devcluster/run/operator.pid)   # the operator
  make cluster-down                           # the local cluster
HINTS
[[ "$phase" == Succeeded && "$delta_phase" == Succeeded && "$iceberg_phase" == Succeeded ]]
