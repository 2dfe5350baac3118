# Sourced, not run: the setup the proxy's side benchmarks share (scripts/bench-proxy-h2.sh,
# scripts/bench-proxy-cpu.sh, scripts/callgrind-proxy.sh). They reuse what one run of
# scripts/bench-proxy.sh left in WORK [/tmp/osb-peers] — the kit's release binaries, its
# certificates and upload file — and the bench_proxy binary (PROXY_BIN). A script may set any
# knob below before sourcing this file. Everything it starts runs on 127.0.0.1 in its own process
# group and is stopped, with the scratch directory removed, when the script exits.

SCRIPT_NAME=$(basename "$0")
WORK=${WORK:-/tmp/osb-peers}
ORIGIN_PORT=${ORIGIN_PORT:-18443}
PROXY_PORT=${PROXY_PORT:-18090}
PROXY_DATA=${PROXY_DATA:-/tmp/osb-proxy-bench}
PROXY_BIN=${PROXY_BIN:-${CARGO_TARGET_DIR:-/work/target-proxy}/release/examples/bench_proxy}
TOKEN=${BENCH_TOKEN:-osb_sealed_3f9a1c7e5b2d4086a1e9c3b7d5f20418}
SECRET=${BENCH_SECRET:-sk-bench-7d2f0c9a41e8b635SECRET}
CERTS=$WORK/certs
KIT_BIN=$WORK/target/release
URL=https://localhost:$ORIGIN_PORT
export PATH=$HOME/.cargo/bin:$PATH

die() { echo "$SCRIPT_NAME: $*" >&2; exit 1; }

# Every path given must exist (the kit's leftovers, the proxy binary).
require_files() {
  local need
  for need in "$@"; do
    [[ -e $need ]] || die "$need is missing (run scripts/bench-proxy.sh once)"
  done
}

SCRATCH=$(mktemp -d)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  sleep 0.3
  for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

wait_port() { for _ in $(seq 1 600); do (exec 3<> "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# start_group LOG COMMAND…: runs COMMAND in a process group of its own; its PID is LAST_PID.
start_group() {
  local log=$1; shift
  setsid "$@" > "$log" 2>&1 < /dev/null &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# The proxy's CA (made when missing) and the bundle clients trust: the kit's plus the proxy's.
trust_bundle() {
  local ca
  ca=$("$PROXY_BIN" --init-ca --data-dir "$PROXY_DATA")
  cat "$CERTS/bundle.pem" "$ca" > "$SCRATCH/trust.pem"
}

# The kit's origin on ORIGIN_PORT; its PID is ORIGIN_PID.
start_origin() {
  start_group "$SCRATCH/origin.log" "$KIT_BIN/osb-bench-origin" --listen "127.0.0.1:$ORIGIN_PORT" --cert-dir "$CERTS"
  ORIGIN_PID=$LAST_PID
}

# start_proxy [WRAPPER…]: the bench proxy on PROXY_PORT with the bench sandbox's token and secret
# (optionally under a wrapper such as valgrind) and PROXY_ARGS; its PID is PROXY_PID.
start_proxy() {
  start_group "$SCRATCH/proxy.log" env OSB_BENCH_ORIGIN_CA="$CERTS/origin-ca.pem" \
    OSB_BENCH_ORIGIN="localhost:$ORIGIN_PORT" OSB_BENCH_TOKEN="$TOKEN" OSB_BENCH_SECRET="$SECRET" \
    "$@" "$PROXY_BIN" --listen "127.0.0.1:$PROXY_PORT" --data-dir "$PROXY_DATA" ${PROXY_ARGS:-}
  PROXY_PID=$LAST_PID
}
