#!/usr/bin/env bash
# The whole test suite, as the README tells a newcomer to run it and as CI runs it: installs
# what is missing, builds the microVM guest (cached), starts PostgreSQL and NATS if they are not
# running, then runs every test of the workspace with nextest. Extra arguments go to nextest.
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
