#!/usr/bin/env bash
# The dashboard's browser tests: starts a real `osbd up` (fresh data dir, netns sandboxes, a
# port in 18090-18099) with a local TLS origin the proxy may reach, runs dashboard.test.mjs in
# headless Debian Chromium (puppeteer-core from package-lock.json; no browser is downloaded),
# and always stops osbd (Ctrl-C: its sandboxes are destroyed) and removes its data. Needs
# root. Screenshots and the osbd log go to tests/artefacts/ (git-ignored).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
artefacts="$here/artefacts"
chromium="${OSB_CHROMIUM:-/usr/bin/chromium}"

if [ "$(id -u)" -ne 0 ]; then
  echo "dashboard tests: need root (osbd up runs network-namespace sandboxes)" >&2
  exit 1
fi
if [ ! -x "$chromium" ]; then
  echo "dashboard tests: no $chromium; scripts/install-deps.sh installs chromium" >&2
  exit 1
fi
if [ ! -d "$here/node_modules/puppeteer-core" ]; then
  echo "dashboard tests: no node_modules; scripts/install-deps.sh installs them (npm ci)" >&2
  exit 1
fi

echo "dashboard tests: building osbd"
(cd "$root" && cargo build -q ${OSB_CARGO_LOCKED:+--locked} --bin osbd)
osbd="${CARGO_TARGET_DIR:-$root/target}/debug/osbd"

port=""
for candidate in $(seq 18090 18099); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
    port="$candidate"
    break
  fi
done
if [ -z "$port" ]; then
  echo "dashboard tests: ports 18090-18099 are all taken" >&2
  exit 1
fi

work="$(mktemp -d /tmp/osbdash.XXXXXX)"
rm -rf "$artefacts"
mkdir -p "$artefacts"
osbd_pid=""
cleanup() {
  status=$?
  if [ -n "$osbd_pid" ] && kill -0 "$osbd_pid" 2>/dev/null; then
    kill -INT "$osbd_pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
      kill -0 "$osbd_pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL "$osbd_pid" 2>/dev/null || true
    wait "$osbd_pid" 2>/dev/null || true
  fi
  cp "$work/osbd.log" "$artefacts/osbd.log" 2>/dev/null || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT INT TERM

# The origin's certificate authority and its certificate for the test host.
origin_host="dash-origin.test"
origin_ip="127.81.0.9"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=dashboard test origin CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$origin_host" \
  -keyout "$work/origin.key" -out "$work/origin.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s\n' "$origin_host" > "$work/origin.ext"
openssl x509 -req -in "$work/origin.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -days 2 -extfile "$work/origin.ext" -out "$work/origin.pem" 2>/dev/null

echo "dashboard tests: starting osbd up on 127.0.0.1:$port"
started=$(date +%s)
OPENSANDBOX_DATA_DIR="$work/data" \
OPENSANDBOX_CONFIG="$work/config.toml" \
OPENSANDBOX_PROXY_RESOLVE="$origin_host=$origin_ip" \
OPENSANDBOX_PROXY_EXTRA_CA="$work/ca.pem" \
OPENSANDBOX_PROXY_ALLOW_LOOPBACK=1 \
  env -u NATS_URL -u DATABASE_URL "$osbd" up --listen "127.0.0.1:$port" --prefix osbdash --pool 100.81.0.0/16 \
  > "$work/osbd.log" 2>&1 &
osbd_pid=$!
for _ in $(seq 1 120); do
  grep -q '^ready http' "$work/osbd.log" && break
  if ! kill -0 "$osbd_pid" 2>/dev/null; then
    cat "$work/osbd.log" >&2
    echo "dashboard tests: osbd up exited before it was ready" >&2
    exit 1
  fi
  sleep 0.5
done
grep -q '^ready http' "$work/osbd.log" || { cat "$work/osbd.log" >&2; echo "dashboard tests: osbd up not ready in 60 s" >&2; exit 1; }
key="$(sed -n 's/^api_key = "\(.*\)"$/\1/p' "$work/config.toml")"

node_status=0
env \
OSB_DASH_URL="http://127.0.0.1:$port" \
OSB_DASH_KEY="$key" \
OSB_DASH_ORIGIN_HOST="$origin_host" \
OSB_DASH_ORIGIN_IP="$origin_ip" \
OSB_DASH_ORIGIN_CERT="$work/origin.pem" \
OSB_DASH_ORIGIN_KEY="$work/origin.key" \
OSB_DASH_PROFILE="$work/chromium-profile" \
OSB_DASH_ARTEFACTS="$artefacts" \
OSB_CHROMIUM="$chromium" \
  node --test --test-reporter=spec "$here/dashboard.test.mjs" | tee "$work/node.log" || node_status=$?
passed="$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$work/node.log")"
failed="$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$work/node.log")"
echo "dashboard tests: $(( $(date +%s) - started )) s from osbd start to the last test"
echo "dashboard browser tests: ${passed:-0} passed, ${failed:-0} failed"
if [ "$node_status" -eq 0 ] && [ "${passed:-0}" -eq 0 ]; then
  echo "dashboard tests: no test ran" >&2
  exit 1
fi
exit "$node_status"
