#!/usr/bin/env bash
# `make demo`: install the CRDs, run the operator in the background, apply examples/, wait
# with progress, then show the objects and a DuckDB query over the Parquet the run wrote.
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

say "Starting the operator in the background (logs: .devcluster/logs/operator.log)"
mkdir -p "$LOGS" "$(dirname "$PIDFILE")"
if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "operator already running (pid $(cat "$PIDFILE"))"
else
  nohup "$ROOT/.venv/bin/lakeop" run --standalone --all-namespaces \
    >>"$LOGS/operator.log" 2>&1 &
  echo $! >"$PIDFILE"
  echo "operator pid $(cat "$PIDFILE"), lake at $LAKEOP_DEFAULT_LOCATION"
fi

# The sample's uri points where a GitOps deployment mounts landing data; here: this checkout.
rewrite() {
  for f in "$@"; do
    sed "s#file:///var/lib/lakeop/examples/#file://$ROOT/examples/#" "$f"
    echo "---"
  done
}
say "Applying examples/ (Tables user-events and orders (Delta), SchemaVersions, IngestionJobs)"
"$KUBECTL" apply -f examples/00-namespace.yaml
if "$KUBECTL" get node "$REAL_NODE" >/dev/null 2>&1; then
  # The run goes to the real node (a container of the project's image) through the
  # IngestionJob's spec.podTemplate: a nodeSelector and toleration for kubenode, and hostPath
  # volumes of the sample data (read-only) and of the table's location, each mounted at the
  # path the operator sees. The Job pods run as uid 65532: the table's folder is theirs.
  rewrite examples/1*.yaml | "$KUBECTL" apply -f -
  lake_dirs=()
  for tbl in user-events orders; do
    location=""
    for ((i = 0; i < 60; i += 1)); do
      location=$("$KUBECTL" get ltbl "$tbl" -n "$NS" -o jsonpath='{.status.location}' \
        2>/dev/null || true)
      [[ -n "$location" ]] && break
      sleep 1
    done
    [[ "$location" == file://* ]] || { echo "Table $tbl has no file:// location: '$location'" >&2; exit 1; }
    lake_dirs+=("${location#file://}")
    chown -R "$POD_UID:$POD_UID" "${location#file://}"
  done
  lake_dir="${lake_dirs[*]}"
  echo "runs go to $REAL_NODE; $lake_dir and examples/data are mounted into their pods"
  rewrite examples/[2-9]*.yaml | "$PY" "$ROOT/devcluster/real_node_template.py" "$REAL_NODE" \
    "$ROOT/examples/data" "${lake_dirs[@]}" | "$KUBECTL" apply -f -
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
  [[ ( "$phase" == Succeeded || "$phase" == Failed ) && "$undecided" == 0 \
    && ( "$delta_phase" == Succeeded || "$delta_phase" == Failed ) ]] && break
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
[[ "$phase" == Succeeded && "$delta_phase" == Succeeded ]]
