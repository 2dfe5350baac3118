#!/usr/bin/env bash
# Runs every cargo-fuzz target of the sealing proxy (actors/proxy/fuzz, issue 11 item 10) for a
# bounded time each, starting from the seed corpus in actors/proxy/fuzz/corpus/<target>.
#
#   scripts/fuzz.sh                 # every target, 30 s each
#   SECONDS_PER_TARGET=300 scripts/fuzz.sh scrubber replacer
#
# Needs cargo-fuzz (`cargo install --locked cargo-fuzz`) and a nightly compiler, or stable with
# RUSTC_BOOTSTRAP=1 (set below). Not part of CI: CI runs the same oracles as proptests
# (`osb_proxy::fuzzing` tests, `osb_vm::dns::wire` tests). New crashes land in
# actors/proxy/fuzz/artifacts/<target>; add the input to the corpus once the bug is fixed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FUZZ_DIR=$ROOT/actors/proxy/fuzz
SECONDS_PER_TARGET=${SECONDS_PER_TARGET:-30}
TARGETS=("$@")
if [[ ${#TARGETS[@]} -eq 0 ]]; then
  TARGETS=(replacer scrubber express_request express_response chunked authority dns_wire websocket_frames decoder)
fi
command -v cargo-fuzz >/dev/null || { echo "fuzz.sh: cargo-fuzz not found: cargo install --locked cargo-fuzz" >&2; exit 1; }
export RUSTC_BOOTSTRAP=1
# Its own target dir: fuzz builds use different flags and would evict the normal build's cache.
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$ROOT/target-fuzz}
# What libFuzzer learns goes to a scratch corpus; the repository keeps only the seeds.
SCRATCH=${FUZZ_SCRATCH:-${TMPDIR:-/tmp}/osb-proxy-fuzz-corpus}
cd "$FUZZ_DIR"
for target in "${TARGETS[@]}"; do
  echo "== $target (${SECONDS_PER_TARGET}s)"
  mkdir -p "$SCRATCH/$target"
  cargo fuzz run "$target" --sanitizer none "$SCRATCH/$target" "corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1
done
echo "== all targets ran without a crash"
