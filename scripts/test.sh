#!/usr/bin/env bash
# The whole test suite, as the README tells a newcomer to run it and as CI runs it: installs
# what is missing, builds the microVM guest (cached), starts PostgreSQL and NATS if they are not
# running, runs every test of the workspace with nextest, then (as root) the Python and
# TypeScript SDK suites (sdks/test.sh) and the dashboard's browser tests, each against a live
# `osbd up`. Extra arguments go to nextest.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# The microVM runtime's guest (kernel, initramfs, system image); cached, rebuilt only when an
# input changed. Needs root, as the tests that boot it do.
if [ "$(id -u)" -eq 0 ]; then scripts/build-guest.sh; fi
services_output="$(scripts/services.sh)"
echo "$services_output" | grep -v '^OSB_TEST_POSTGRES_URL=' || true
postgres_url="$(echo "$services_output" | sed -n 's/^OSB_TEST_POSTGRES_URL=//p')"
if [ -n "$postgres_url" ]; then export OSB_TEST_POSTGRES_URL="$postgres_url"; fi

cargo nextest run --workspace --no-fail-fast "$@"
# osbd's library has `test = false` (its tests are one integration binary), so the workspace run
# skips the few unit tests of its settings parsers; run them on their own.
cargo nextest run -p osbd --lib --no-fail-fast "$@"

case " $* " in *" --locked "*) export OSB_CARGO_LOCKED=1 ;; esac
if [ "$(id -u)" -eq 0 ]; then
  sdks/test.sh
  api/gateway/dashboard/tests/run.sh
else
  echo "test: SDK and dashboard suites skipped: they run osbd up with netns sandboxes, which needs root"
fi
