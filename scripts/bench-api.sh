#!/usr/bin/env bash
# REST API load (issue 6), without `oc`: starts `osbd up` (release build) on a temporary data
# dir with DATABASE_URL pointing at a fresh PostgreSQL database and a free --listen port, then
# drives it with oha on loopback, each measurement next to its baseline in the same run:
#
#   1. GET /healthz (baseline: the bare actix handler, no auth, no database) vs GET /api/projects
#      and GET /api/sandboxes (API key lookup, cached for 1 s (ADR 0033), + one indexed page
#      query; PROJECTS projects and SANDBOXES idle sandboxes in the org), alternated ROUNDS
#      times, DUR each, CONC connections; STORE=postgres (default) or STORE=sqlite (the
#      embedded database `osbd up` uses without DATABASE_URL);
#   2. POST /api/sandboxes {"project":"bench"} (the create saga, a netns sandbox, sealing of one
#      secret) in batches of BATCH: SERIAL_ROUNDS batches at -c 1 (the baseline) and
#      CREATE_ROUNDS at -c CREATE_CONC; each batch is deleted before the next.
#
#   sudo scripts/bench-api.sh                       # as root (the netns runtime needs it)
#   DUR=5s ROUNDS=3 CREATE_ROUNDS=5 CREATE_CONC=4 scripts/bench-api.sh
#   READS_ONLY=1 CONC=64 ROUNDS=3 STORE=sqlite scripts/bench-api.sh   # issue 17.3 (no create batches)
#   CREATES_ONLY=1 SERIAL_ROUNDS=5 CREATE_ROUNDS=0 scripts/bench-api.sh # issue 17.1 (REST create p50/p99)
#
# Knobs: DUR [10s], CONC [64], ROUNDS [2], PROJECTS [10], SANDBOXES [4], STORE [postgres],
# READS_ONLY [unset], CREATES_ONLY [unset: skip the read loads], LISTING_CACHE_TTL_MS [unset:
# the default 1 s; 0 turns the listing cache off (ADR 0035): the uncached baseline of issue
# 17.3], RATE_LIMIT [off: the per-key limit (ADR 0027) would answer most of a load test with
# 429], BATCH [8], CREATE_CONC [4],
# SERIAL_ROUNDS [3], CREATE_ROUNDS [5], PORT [a free one], API_TARGET_DIR [/work/target-bench],
# OSB_TEST_POSTGRES_URL [postgres://postgres@127.0.0.1:5432/postgres] (an admin URL: the script
# creates and drops its own database), SKIP_BUILD=1, KEEP=1 (keep the temp dir).
#
# `osbd up` reaps its netns prefix's leftovers at start, so the script runs it with its own
# PREFIX [osbbeu] and POOL [100.120.1.0/24] (an older osbd without --prefix uses the fixed `osb`)
# and refuses to start while another `osbd up` uses the same prefix.
# Everything is cleaned up on exit (also on Ctrl-C): osbd gets SIGTERM, which destroys its
# sandboxes; then the database and the temp dir are removed. Needs curl, jq, psql and oha
# (installed with `cargo install --locked oha` when missing).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DUR=${DUR:-10s}
CONC=${CONC:-64}
SANDBOXES=${SANDBOXES:-4}
STORE=${STORE:-postgres}
ROUNDS=${ROUNDS:-2}
PROJECTS=${PROJECTS:-10}
BATCH=${BATCH:-8}
CREATE_CONC=${CREATE_CONC:-4}
SERIAL_ROUNDS=${SERIAL_ROUNDS:-3}
CREATE_ROUNDS=${CREATE_ROUNDS:-5}
API_TARGET_DIR=${API_TARGET_DIR:-/work/target-bench}
ADMIN_URL=${OSB_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PREFIX=${PREFIX:-osbbeu}
POOL=${POOL:-100.120.1.0/24}

say() { printf '== %s\n' "$*"; }
die() { printf 'bench-api.sh: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root: osbd up needs the netns runtime for sandbox creates"
for tool in curl jq psql; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh installs it)"
done
if ! command -v oha >/dev/null; then
  say "installing oha (cargo install --locked oha)"
  cargo install --locked oha
  export PATH="$HOME/.cargo/bin:$PATH"
fi

if [[ -z ${SKIP_BUILD:-} ]]; then
  say "building osbd (release, target dir $API_TARGET_DIR)"
  (cd "$ROOT" && CARGO_TARGET_DIR=$API_TARGET_DIR cargo build --release -q -p osbd --bin osbd)
fi
OSBD=$API_TARGET_DIR/release/osbd
[[ -x $OSBD ]] || die "$OSBD not found (build it or unset SKIP_BUILD)"

# Host objects: our own prefix and pool when this osbd takes them, else the fixed `osb`.
if "$OSBD" up --help 2>/dev/null | grep -q -- '--prefix'; then
  UP_ARGS=(--prefix "$PREFIX" --pool "$POOL")
  others=$(pgrep -af 'osbd up' | grep -E -- "--prefix $PREFIX( |\$)" || true)
else
  PREFIX=osb
  UP_ARGS=()
  others=$(pgrep -af 'osbd up' | grep -v -- '--prefix' || true)
fi
[[ -z $others ]] || die "another osbd up uses the netns prefix $PREFIX (it would reap ours): $others"

WORK=$(mktemp -d /tmp/osb-bench-api.XXXXXX)
DB=osb_bench_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
DB_URL=${ADMIN_URL%/*}/$DB
OSBD_PID=

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n $OSBD_PID ]] && kill -0 "$OSBD_PID" 2>/dev/null; then
    say "stopping osbd (SIGTERM destroys its sandboxes)"
    kill -TERM "$OSBD_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$OSBD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$OSBD_PID" 2>/dev/null && { echo "osbd did not stop in 30 s; killing it" >&2; kill -KILL "$OSBD_PID"; }
    tail -n 2 "$WORK/osbd.err" 2>/dev/null || true
  fi
  psql "$ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  local leftovers
  leftovers=$(ip netns list 2>/dev/null | grep -cE "^$PREFIX-n[0-9]+" || true)
  [[ $leftovers -eq 0 ]] || echo "warning: $leftovers $PREFIX-n* network namespaces are left" >&2
  if [[ -z ${KEEP:-} ]]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

case $STORE in
  postgres)
    psql "$ADMIN_URL" -qAtc "CREATE DATABASE $DB" >/dev/null || die "cannot create $DB on $ADMIN_URL (scripts/services.sh)"
    DB_ENV=(DATABASE_URL="$DB_URL") ;;
  sqlite) DB_ENV=() ;; # osbd up uses the embedded SQLite file in its data dir
  *) die "STORE must be postgres or sqlite, not $STORE" ;;
esac
[[ -z ${LISTING_CACHE_TTL_MS:-} ]] || DB_ENV+=(OPENSANDBOX_LISTING_CACHE_TTL_MS="$LISTING_CACHE_TTL_MS")
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}

say "starting osbd up on 127.0.0.1:$PORT (store $STORE, database $DB, data dir $WORK/data, netns prefix $PREFIX, listing cache ttl ${LISTING_CACHE_TTL_MS:-default} ms)"
OPENSANDBOX_DATA_DIR=$WORK/data \
OPENSANDBOX_CONFIG=$WORK/config.toml \
OPENSANDBOX_SECRET_ENCRYPTION_KEY=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n') \
OPENSANDBOX_API_RATE_LIMIT=${RATE_LIMIT:-off} \
RUST_LOG=${RUST_LOG:-warn} \
  env "${DB_ENV[@]}" "$OSBD" up --listen "127.0.0.1:$PORT" "${UP_ARGS[@]}" >"$WORK/osbd.out" 2>"$WORK/osbd.err" &
OSBD_PID=$!
for _ in $(seq 1 600); do
  grep -q '^ready ' "$WORK/osbd.out" 2>/dev/null && break
  kill -0 "$OSBD_PID" 2>/dev/null || { cat "$WORK/osbd.err" >&2; die "osbd up exited"; }
  sleep 0.1
done
URL=$(sed -n 's/^ready //p' "$WORK/osbd.out")
[[ -n $URL ]] || die "osbd up did not print 'ready <url>' within 60 s"
KEY=$(sed -n 's/^api_key *= *"\(.*\)"$/\1/p' "$WORK/config.toml")
[[ -n $KEY ]] || die "no api_key in $WORK/config.toml"
AUTH="X-API-Key: $KEY"
say "ready at $URL; load average $(cut -d' ' -f1-3 /proc/loadavg)"

api() { curl -sS -f -H "$AUTH" -H 'Content-Type: application/json' "$@"; }
for i in $(seq 1 "$PROJECTS"); do
  api -X POST "$URL/api/projects" -d "{\"name\":\"p$i\"}" >/dev/null
done
api -X POST "$URL/api/projects" -d '{"name":"bench","egressAllowlist":["api.example.com"]}' >/dev/null
printf '{"value":"bench-%s"}' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" |
  api -X PUT "$URL/api/projects/bench/secrets/API_KEY" -d @- >/dev/null
[[ $(api "$URL/api/projects" | jq length) -eq $((PROJECTS + 1)) ]] || die "project listing is off"

# oha in JSON; prints "<req/s> <p50 ms> <p99 ms> <status counts>".
load() {
  oha --no-tui --output-format json "$@" | jq -r '[
      (.summary.requestsPerSec * 100 | floor / 100),
      ((.latencyPercentiles.p50 // 0) * 1000 * 1000 | floor / 1000),
      ((.latencyPercentiles.p99 // 0) * 1000 * 1000 | floor / 1000),
      (.statusCodeDistribution | to_entries | map("\(.key)x\(.value)") | join(","))
    ] | @tsv'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

delete_all() {
  local ids
  ids=$(api "$URL/api/sandboxes" | jq -r '.[] | select(.status != "destroyed") | .sandboxID')
  for id in $ids; do api -X DELETE "$URL/api/sandboxes/$id" >/dev/null || echo "delete $id failed" >&2; done
  echo "$ids" | grep -c . || true
}

if [[ -n ${CREATES_ONLY:-} ]]; then
  say "CREATES_ONLY: no read loads"
else
for _ in $(seq 1 "$SANDBOXES"); do
  api -X POST "$URL/api/sandboxes" -d '{"project":"bench"}' >/dev/null || die "a sandbox for the listing was not created"
done
say "GET /healthz (baseline) vs GET /api/projects ($((PROJECTS + 1)) projects) and GET /api/sandboxes ($SANDBOXES): $ROUNDS rounds, -c $CONC -z $DUR each, store $STORE"
printf '%-6s %-16s %10s %10s %10s  %s\n' round endpoint req/s p50_ms p99_ms statuses
for round in $(seq 1 "$ROUNDS"); do
  read -r h_rps h_p50 h_p99 h_codes < <(load -c "$CONC" -z "$DUR" "$URL/healthz")
  printf '%-6s %-16s %10s %10s %10s  %s\n' "$round" /healthz "$h_rps" "$h_p50" "$h_p99" "$h_codes"
  for endpoint in /api/projects /api/sandboxes; do
    read -r p_rps p_p50 p_p99 p_codes < <(load -c "$CONC" -z "$DUR" -H "$AUTH" "$URL$endpoint")
    printf '%-6s %-16s %10s %10s %10s  %s\n' "$round" "$endpoint" "$p_rps" "$p_p50" "$p_p99" "$p_codes"
    printf '%-6s %s/healthz: req/s %sx, p50 %sx\n' "$round" "$endpoint" "$(ratio "$p_rps" "$h_rps")" "$(ratio "$p_p50" "$h_p50")"
  done
done
deleted=$(delete_all)
sleep 2
fi
[[ -z ${READS_ONLY:-} ]] || { say "READS_ONLY: no create batches (deleted $deleted listing sandboxes)"; exit 0; }


# `osbd up` offers 4 CPUs per core (8 on 2 cores) and sandboxes ask for 1: batches of BATCH
# creates fit, and every batch is deleted before the next (placement answers 503 when full, and
# counts a deletion only from the worker's next heartbeat).
BODY='{"project":"bench"}'
create_rounds() { # concurrency rounds
  local conc=$1 rounds=$2 round
  for round in $(seq 1 "$rounds"); do
    read -r rps p50 p99 codes < <(load -c "$conc" -n "$BATCH" -m POST -H "$AUTH" -T application/json -d "$BODY" "$URL/api/sandboxes")
    deleted=$(delete_all)
    sleep 2 # placement frees a deleted sandbox's room at the worker's next heartbeat (1 s)
    printf '%-6s %-8s %10s %10s %10s  %-14s deleted %s\n' "$round" "-c $conc" "$rps" "$p50" "$p99" "$codes" "$deleted"
    echo "$rps $p50 $p99" >>"$WORK/creates-$conc"
  done
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
say "POST /api/sandboxes in batches of $BATCH: $SERIAL_ROUNDS rounds at -c 1 (baseline), $CREATE_ROUNDS at -c $CREATE_CONC"
printf '%-6s %-8s %10s %10s %10s  %s\n' round conc creates/s p50_ms p99_ms statuses
create_rounds 1 "$SERIAL_ROUNDS"
create_rounds "$CREATE_CONC" "$CREATE_ROUNDS"
s_rps=$(cut -d' ' -f1 "$WORK/creates-1" | median); s_p50=$(cut -d' ' -f2 "$WORK/creates-1" | median)
s_p99=$(cut -d' ' -f3 "$WORK/creates-1" | sort -n | tail -n 1)
printf 'serial (-c 1): median of the rounds: %s creates/s, p50 %s ms; highest round p99 %s ms\n' "$s_rps" "$s_p50" "$s_p99"
if [[ $CREATE_ROUNDS -gt 0 ]]; then
  c_rps=$(cut -d' ' -f1 "$WORK/creates-$CREATE_CONC" | median); c_p50=$(cut -d' ' -f2 "$WORK/creates-$CREATE_CONC" | median)
  printf 'medians: -c 1 %s creates/s p50 %s ms; -c %s %s creates/s p50 %s ms\n' "$s_rps" "$s_p50" "$CREATE_CONC" "$c_rps" "$c_p50"
  printf 'concurrent/serial: creates/s %sx, p50 %sx\n' "$(ratio "$c_rps" "$s_rps")" "$(ratio "$c_p50" "$s_p50")"
fi
say "load average $(cut -d' ' -f1-3 /proc/loadavg)"
