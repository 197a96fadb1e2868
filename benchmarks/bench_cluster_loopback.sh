#!/usr/bin/env bash
# Issue 39's check of `make reproduce CLUSTER=...` on one machine: notebooks 01, 04, 05, 08 and 09 (smoke profile)
# locally and on a 2-node loopback Ray cluster, each cold (its own results, cache and figures under WORK), then
# `study compare` local vs cluster and the Ray nodes each table's rows name (docs/cluster.md, "A 2-node loopback run").
#
#   bash benchmarks/bench_cluster_loopback.sh [WORK]      # default WORK: a new folder under /tmp
#
# Runs from this checkout with its .venv (make setup); the cluster is stopped by PID at the end.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=${1:-$(mktemp -d /tmp/cluster-loopback-XXXX)}
mkdir -p "$WORK"
PY="$ROOT/.venv/bin/python"
echo "commit $(git rev-parse --short HEAD), work $WORK"
run() {  # name, extra args
  local name=$1; shift
  export STUDY_RESULTS_DIR=$WORK/r-$name STUDY_CACHE_DIR=$WORK/c-$name STUDY_FIGURES_DIR=$WORK/f-$name
  local start=$(date +%s)
  "$PY" -m study reproduce --profile smoke --only 01 04 05 08 09 --force "$@" > "$WORK/$name.log" 2>&1
  echo "$name rc=$? seconds=$(( $(date +%s) - start ))"
}
run local
"$PY" -m study cluster --nodes 2 > "$WORK/cluster.out" 2> "$WORK/cluster.err" &
CPID=$!
ADDR=""
for _ in $(seq 1 180); do ADDR=$(head -1 "$WORK/cluster.out" 2>/dev/null); [ -n "$ADDR" ] && break; sleep 1; done
[ -n "$ADDR" ] || { echo "the cluster did not start: $WORK/cluster.err"; kill -TERM $CPID; exit 1; }
echo "cluster at $ADDR (pid $CPID)"
run cluster --param cluster="$ADDR"
kill -TERM $CPID; wait $CPID
"$PY" -m study compare "$WORK/r-local" "$WORK/r-cluster" > "$WORK/compare.txt" 2>&1; echo "compare rc=$?"
grep "^\[compare\]" "$WORK/compare.txt"
for r in local cluster; do
  echo "== $r: seconds per notebook"
  "$PY" -c "import json, pathlib, sys
for f in sorted(pathlib.Path(sys.argv[1]).glob('*.json')): print(f.stem, json.loads(f.read_text())['seconds'])" "$WORK/r-$r/reproduce"
done
"$PY" - "$WORK/r-cluster/tables" <<'PY'
import re, sys
import pandas as pd
for table in ("rq1_deployment_matrix", "table_ix_finetuning", "table_x_browser", "rq3v_new_version_costs",
              "rq1_fidelity_per_member"):
    df = pd.read_csv(f"{sys.argv[1]}/{table}.csv")
    ids = {m for text in df["node"].astype(str) for m in re.findall(r"/([0-9a-f]{8}) ", text)}
    print(f"{table}: {len(df)} rows; Ray nodes named: {sorted(ids)}")
PY
