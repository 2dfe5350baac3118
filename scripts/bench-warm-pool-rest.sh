#!/usr/bin/env bash
# REST create with and without the warm pool (ADR 0208), side by side in one run: two `osbd up`
# (the build at $OSBD, default the debug build of $CARGO_TARGET_DIR) with --warm-pool 0 and
# --warm-pool 4, their own prefixes (osbrpa, osbrpb), pools (100.121.0.0/24, 100.121.1.0/24),
# ports (18191, 18192) and temp data dirs; N [20] `POST /api/sandboxes` on each, interleaved,
# each deleted and followed by a 1.2 s pause (the pool refills, placement frees the room).
# Prints p50/p99 (nearest rank)/min/max per side and the warm side's ratio to the cold one.
# WARM [4] sets the warm side's pool; PAUSE [1.2] the seconds between creates; STORE [sqlite:
# the embedded database] or postgres (each side gets a fresh database on OSB_TEST_POSTGRES_URL
# [postgres://postgres@127.0.0.1:5432/postgres], dropped at the end). As root; both
# osbd get SIGINT on exit (they destroy their sandboxes and drain the pool).
#
#   OSBD=/path/to/release/osbd N=100 scripts/bench-warm-pool-rest.sh   # issue 17 item 1
set -euo pipefail
OSBD=${OSBD:-${CARGO_TARGET_DIR:-target}/debug/osbd}
N=${N:-20}
WARM=${WARM:-4}
PAUSE=${PAUSE:-1.2}
WORK=$(mktemp -d /tmp/osb-warm-rest.XXXXXX)
STORE=${STORE:-sqlite}
ADMIN_URL=${OSB_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
[[ $STORE == sqlite || $STORE == postgres ]] || { echo "STORE must be sqlite or postgres" >&2; exit 2; }
pids=()
databases=()
cleanup() {
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  done
  for db in "${databases[@]}"; do psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $db" || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
start() { # name port prefix pool warm-pool
  mkdir -p "$WORK/$1"
  local database=()
  if [[ $STORE == postgres ]]; then
    local db="osb_rest_bench_$1_$$"
    psql -q "$ADMIN_URL" -c "CREATE DATABASE $db"
    databases+=("$db")
    database=(DATABASE_URL="${ADMIN_URL%/*}/$db"
      OPENSANDBOX_SECRET_ENCRYPTION_KEY="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')")
  fi
  env -u DATABASE_URL -u NATS_URL "${database[@]}" OPENSANDBOX_DATA_DIR="$WORK/$1/data" \
    OPENSANDBOX_CONFIG="$WORK/$1/config.toml" OPENSANDBOX_API_RATE_LIMIT=off RUST_LOG=warn \
    "$OSBD" up --listen "127.0.0.1:$2" --prefix "$3" --pool "$4" --warm-pool "$5" \
    >"$WORK/$1/out" 2>"$WORK/$1/err" &
  pids+=($!)
}
start cold 18191 osbrpa 100.121.0.0/24 0
start warm 18192 osbrpb 100.121.1.0/24 "$WARM"
declare -A URL KEY
for name in cold warm; do
  for _ in $(seq 1 600); do grep -q '^ready ' "$WORK/$name/out" 2>/dev/null && break; sleep 0.1; done
  URL[$name]=$(sed -n 's/^ready //p' "$WORK/$name/out")
  KEY[$name]=$(sed -n 's/^api_key *= *"\(.*\)"$/\1/p' "$WORK/$name/config.toml")
  [[ -n ${URL[$name]} && -n ${KEY[$name]} ]] || { tail "$WORK/$name/err" >&2; exit 1; }
  curl -sSf -H "X-API-Key: ${KEY[$name]}" -H 'Content-Type: application/json' \
    -X POST "${URL[$name]}/api/projects" -d '{"name":"bench","egressAllowlist":["api.example.com"]}' >/dev/null
done
sleep 3
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq 1 "$N"); do
  for name in cold warm; do
    seconds=$(curl -sSf -o "$WORK/body" -w '%{time_total}' -H "X-API-Key: ${KEY[$name]}" \
      -H 'Content-Type: application/json' -X POST "${URL[$name]}/api/sandboxes" -d '{"project":"bench"}')
    echo "$name $seconds" >>"$WORK/samples"
    id=$(jq -r '.sandboxID' "$WORK/body")
    curl -sSf -o /dev/null -H "X-API-Key: ${KEY[$name]}" -X DELETE "${URL[$name]}/api/sandboxes/$id"
    sleep "$PAUSE"
  done
done
python3 - "$WORK/samples" "$WARM" <<'PY'
import math, statistics, sys
samples = {}
for line in open(sys.argv[1]):
    name, seconds = line.split()
    samples.setdefault(name, []).append(float(seconds) * 1000)
def p99(v):
    return v[max(0, math.ceil(0.99 * len(v)) - 1)]
pools = {"cold": "0", "warm": sys.argv[2]}
for name in ("cold", "warm"):
    v = sorted(samples[name])
    print(f"{name:4} --warm-pool {pools[name]}: {len(v)} creates, "
          f"p50 {statistics.median(v):.1f} ms, p99 {p99(v):.1f} ms, "
          f"min {v[0]:.1f} ms, max {v[-1]:.1f} ms")
cold, warm = sorted(samples["cold"]), sorted(samples["warm"])
print(f"warm/cold: p50 {statistics.median(warm) / statistics.median(cold):.2f}x, "
      f"p99 {p99(warm) / p99(cold):.2f}x")
PY
