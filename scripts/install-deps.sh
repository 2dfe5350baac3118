#!/usr/bin/env bash
# Installs what the test suite needs and a fresh Debian machine may lack: the Debian packages
# listed in scripts/debian-packages.txt, cargo-nextest, npm (when no npm came with nodejs), the
# SDK suites' pinned Python and npm packages and the dashboard browser tests' locked npm
# packages. Idempotent; installs only what is missing. Needs root (or sudo) only when
# something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
while read -r package; do
  package="${package%%#*}"; package="${package// /}"
  [ -z "$package" ] && continue
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done < scripts/debian-packages.txt

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "install-deps: installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

# npm: Debian's nodejs comes without it; a nodejs that bundles npm must not get Debian's too.
if ! command -v npm >/dev/null 2>&1; then
  echo "install-deps: installing npm"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends npm
fi

# The SDK test suites (sdks/test.sh): a venv with the pinned Python packages (and the SDK
# installed from ./sdks/python, which proves it installs), and `npm ci` of the TypeScript SDK's
# pinned devDependencies. Redone only when a pin changes.
sdk_cache="${OSB_SDK_CACHE:-/var/cache/opensandbox-sdk}"
venv="$sdk_cache/venv"
stamp="$(cat sdks/python/requirements-test.txt sdks/python/pyproject.toml | sha256sum | cut -c1-16)"
if [ "$(cat "$venv/.osb-stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "install-deps: Python SDK test venv in $venv"
  as_root mkdir -p "$sdk_cache"
  as_root chown "$(id -u):$(id -g)" "$sdk_cache"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r sdks/python/requirements-test.txt
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps ./sdks/python
  echo "$stamp" > "$venv/.osb-stamp"
fi
lock_stamp="$(sha256sum sdks/typescript/package-lock.json | cut -c1-16)"
if [ "$(cat sdks/typescript/node_modules/.osb-stamp 2>/dev/null)" != "$lock_stamp" ]; then
  echo "install-deps: npm ci in sdks/typescript"
  (cd sdks/typescript && npm ci --no-audit --no-fund --silent)
  echo "$lock_stamp" > sdks/typescript/node_modules/.osb-stamp
fi

# The dashboard's browser tests: puppeteer-core exactly as package-lock.json pins it (it never
# downloads a browser; the tests drive Debian's chromium).
dashboard_tests=api/gateway/dashboard/tests
if ! cmp -s "$dashboard_tests/package-lock.json" "$dashboard_tests/node_modules/.osb-installed-lock"; then
  echo "install-deps: installing the dashboard tests' npm packages"
  (cd "$dashboard_tests" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$dashboard_tests/package-lock.json" "$dashboard_tests/node_modules/.osb-installed-lock"
fi
