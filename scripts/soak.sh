#!/usr/bin/env bash
# The long soak (issue 14 item 9): the same test CI runs for 60 s, for SOAK_SECS (default 600)
# seconds. Needs root (netns sandboxes), PostgreSQL and NATS as scripts/test.sh provides.
# Prints the before/after counts the test measured (descriptors, resident memory, netns, veths,
# nft tables, cgroups, processes, mounts, sandbox dirs). Usage: sudo scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export OSB_SOAK_SECS="${SOAK_SECS:-600}"
services_output="$(scripts/services.sh)"
postgres_url="$(echo "$services_output" | sed -n 's/^OSB_TEST_POSTGRES_URL=//p')"
if [ -n "$postgres_url" ]; then export OSB_TEST_POSTGRES_URL="$postgres_url"; fi
cargo nextest run -p osbd --no-capture \
  -E 'test(a_soak_of_creates_requests_rotations_and_destroys_leaks_nothing)'
