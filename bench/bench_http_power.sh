#!/usr/bin/env bash
# Throughput and latency of POST /v1/power/holdout against GET /health on the same server, with wrk
# (Debian package `wrk`). Starts `counterfact serve` (production settings: uvicorn, uvloop, httptools,
# access log off) on a free port, against DATABASE_URL or the embedded PostgreSQL.
# Usage: bash bench/bench_http_power.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
connections=${2:-32}
port=${BENCH_PORT:-8765}
command -v wrk >/dev/null || { echo "install wrk: apt-get install wrk" >&2; exit 1; }

# No rate limit: the benchmark measures the service, not the limiter's 429s.
COUNTERFACT_RATE_LIMIT_READ=0 COUNTERFACT_LOG_LEVEL=WARNING .venv/bin/counterfact serve --port "$port" >/tmp/counterfact-bench.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.2; done

key=$(COUNTERFACT_LOG_LEVEL=WARNING .venv/bin/counterfact keys create --name bench --scopes read)
lua=$(mktemp --suffix=.lua)
cat >"$lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
wrk.body = '{"metric":{"kind":"proportion","baseline":0.05},"solve_for":"sample_size","mde":{"relative":0.1},"holdout_fraction":0.1,"daily_units":20000}'
LUA

run() {  # name, extra wrk args...
    local name=$1; shift
    wrk -t1 -c"$connections" -d"${seconds}s" --latency "$@" | awk -v name="$name" '
        /Requests\/sec/ {rps=$2} /^ +99%/ {p99=$2} /^ +50%/ {p50=$2}
        END {printf "| %s | %s | %s | %s |\n", name, rps, p50, p99}'
}
echo "| endpoint | requests/s | p50 | p99 |"
echo "|---|---:|---:|---:|"
run "GET /health" "http://127.0.0.1:$port/health"
run "POST /v1/power/holdout" -s "$lua" "http://127.0.0.1:$port/v1/power/holdout"
rm -f "$lua"
