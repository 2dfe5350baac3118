#!/usr/bin/env bash
# Proves a plain `osbd` build (no `failpoints` feature: what `cargo build -p osbd` and release
# builds give) holds no failpoint code: neither the variable that arms one nor the prefix it
# parses (`crash_after:` for the control plane, `worker_abort_after:` for a worker) appears in
# the binary. Issue 14 item 8, issue 13 item 3. Usage: check-failpoints-off.sh PATH/TO/osbd
set -euo pipefail
binary="${1:?usage: check-failpoints-off.sh PATH/TO/osbd (a build without --features failpoints)}"
[ -x "$binary" ] || { echo "check-failpoints-off: $binary is not an executable" >&2; exit 2; }

# The search must be able to find a string the binary does hold, or an absence proves nothing.
if ! grep -aq 'OPENSANDBOX_SAGA_LEASE_SECS' "$binary"; then
  echo "check-failpoints-off: $binary does not look like osbd (no OPENSANDBOX_SAGA_LEASE_SECS)" >&2
  exit 2
fi
for needle in OPENSANDBOX_FAILPOINT 'crash_after:' 'worker_abort_after:' 'failpoint armed'; do
  if grep -aq "$needle" "$binary"; then
    echo "check-failpoints-off: $binary contains '$needle': failpoint code reached a plain build" >&2
    exit 1
  fi
done
echo "check-failpoints-off: $binary has no failpoint code"
