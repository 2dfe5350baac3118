#!/usr/bin/env bash
# Load bench of the sealing proxy (route P) side by side with direct TLS (B0) and the peers of the
# shared kit (B1 tinyproxy, B1t tokio tunnel, B2 hudsucker no-op MITM, B3 mitmdump), all on 127.0.0.1.
#
#   scripts/bench-proxy.sh                               # every route and test, kit defaults
#   ROUTES="B0 B1t B2 P" DUR=5 scripts/bench-proxy.sh    # quicker: no mitmdump, 5 s per load run
#   UPLOAD_MIB=256 UPLOAD_REPS=1 scripts/bench-proxy.sh  # the 256 MiB upload ratio of issue 3
#   ROUNDS=3 TESTS=b ROUTES="B0 B1t P" DUR=6 scripts/bench-proxy.sh  # (b) three times, ratios listed
#
# It builds `actors/proxy/examples/bench_proxy.rs` in release mode, creates (or reuses) its CA in
# PROXY_DATA, and runs the kit's bench.sh with PRODUCT_PROXY / PRODUCT_CMD / PRODUCT_CA so the kit
# starts the proxy in its own process group and stops it at the end. The proxy registers one
# sandbox (127.0.0.1) that maps the kit's BENCH_TOKEN to BENCH_SECRET for the origin, allows the
# loopback upstream (bench switch) and re-chunks large uploads instead of answering 413.
# Note: the kit's "token replaced?" column reads the origin's /echo *through the proxy*, and the
# proxy scrubs the echoed secret back into the token, so P shows "no (token passed through)".
# The proxy prints its counters (osb_proxy_substitutions_total) into the kit's P.log at exit.
#
# Knobs: KIT [../shared/peer-bench], PROXY_PORT [18090], PROXY_DATA [/tmp/osb-proxy-bench],
# PROXY_TARGET_DIR [/work/target-proxy], PROXY_BIN [built here] (run a given bench_proxy binary
# instead, e.g. one built from an older commit for a before/after comparison), PROXY_ARGS (extra
# bench_proxy arguments, e.g. "--lanes 1"), ROUNDS [1], plus every knob of
# the kit (DUR, ROUTES, TESTS, …). The load average is printed before and after the run.
# At the end it prints P's figures against B2 and B1t of the same run (scripts/bench-proxy-ratios.py):
# (b) req/s ×B2, (b) CPU per request ×B1t, (d)/(e) MiB/s ×B2 and ×B1t, P's peak RSS; one row per
# round and the medians (issue 19).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KIT=${KIT:-$ROOT/../shared/peer-bench}
PROXY_PORT=${PROXY_PORT:-18090}
PROXY_DATA=${PROXY_DATA:-/tmp/osb-proxy-bench}
PROXY_TARGET_DIR=${PROXY_TARGET_DIR:-${CARGO_TARGET_DIR:-/work/target-proxy}}

[[ -x $KIT/bench.sh ]] || { echo "bench-proxy.sh: peer kit not found at $KIT (set KIT=)" >&2; exit 1; }
if [[ -n ${PROXY_BIN:-} ]]; then
  BIN=$PROXY_BIN   # an already built bench_proxy (e.g. of another commit, for before/after runs)
  echo "== using $BIN (not rebuilt)"
else
  echo "== building bench_proxy (release, target dir $PROXY_TARGET_DIR)"
  (cd "$ROOT" && CARGO_TARGET_DIR=$PROXY_TARGET_DIR cargo build --release -q -p osb-proxy --example bench_proxy)
  BIN=$PROXY_TARGET_DIR/release/examples/bench_proxy
fi
echo "== load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
CA=$("$BIN" --init-ca --data-dir "$PROXY_DATA")
echo "== proxy CA: $CA"

# The kit picks its own cargo target dir; do not hand it ours.
run_kit() {
  env -u CARGO_TARGET_DIR \
    PRODUCT_PROXY="127.0.0.1:$PROXY_PORT" \
    PRODUCT_CA="$CA" \
    PRODUCT_CMD="exec '$BIN' --listen 127.0.0.1:$PROXY_PORT --data-dir '$PROXY_DATA' ${PROXY_ARGS:-}" \
    "$KIT/bench.sh"
}

# ROUNDS=N repeats the whole kit run and ends with every round's ratio row per route, so a
# figure is read as a range rather than one sample (single runs move by ±10 % on 2 shared vCPUs).
ROUNDS=${ROUNDS:-1}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "bench-proxy.sh: ROUNDS must be a positive integer" >&2; exit 1; }
RUNS=()
for ((round = 1; round <= ROUNDS; round++)); do
  ((ROUNDS > 1)) && echo "== round $round of $ROUNDS"
  run_kit
  RUNS+=("$(ls -td "${WORK:-/tmp/osb-peers}"/runs/* | head -1)")
done
echo "== load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
# The figures of issue 19 (P against B2 and B1t of the same run), per round and their medians.
echo "== P against hudsucker (B2) and the bare tunnel (B1t), per round and median"
python3 "$ROOT/scripts/bench-proxy-ratios.py" "$KIT" "${RUNS[@]}"
if ((ROUNDS > 1)); then
  echo "== ratios to B0 per round: (a) p50 | (a) p99 | (b) req/s | (c) conn/s | (c) p50 | (d) MiB/s"
  for run in "${RUNS[@]}"; do
    echo "-- $run"
    # The first table headed "Ratios to B0" holds one row per route.
    awk '/^Ratios to B0/ { on = 1; next } on && /^\| (B1|B1t|B2|B3|P) \|/ { print } on && /^Ratios to B2/ { exit }' "$run/results.md"
  done
fi
