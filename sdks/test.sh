#!/usr/bin/env bash
# Runs the Python and TypeScript SDK suites against a real `osbd up` on a fresh data dir (netns
# sandboxes as root, the sealing proxy), with local TLS origins the suites start themselves on
# 127.80.0.11 / 127.80.0.12:443 for the hosts *.sdk.test (a CA made here; the proxy trusts it
# and resolves those hosts there). Always stops osbd (Ctrl-C destroys its sandboxes). Needs the
# deps `scripts/install-deps.sh` installs (a venv under the cache dir, `npm ci`).
# Ports 18080-18089, prefix osbsdk, pool 100.80.0.0/16: never shared with other test runs.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
cache="${OSB_SDK_CACHE:-/var/cache/opensandbox-sdk}"
venv="$cache/venv"
target="${CARGO_TARGET_DIR:-$root/target}"
started=$(date +%s)

echo "sdk tests: building osbd"
cargo build -q --locked -p osbd --bin osbd
osbd="$target/debug/osbd"
# The plain build the SDK suites use is also the one that must hold no failpoint code.
scripts/check-failpoints-off.sh "$osbd"

tmp="$(mktemp -d /tmp/osbsdk.XXXXXX)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

port=""
for candidate in $(seq 18080 18089); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port="$candidate"; break; fi
done
[ -n "$port" ] || { echo "sdk tests: ports 18080-18089 are all taken" >&2; exit 1; }

# A CA and one leaf for every origin host.
hosts=(py-llm.sdk.test py-other.sdk.test ts-llm.sdk.test ts-other.sdk.test)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=osbsdk test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=sdk.test" \
  -keyout "$tmp/origin.key" -out "$tmp/origin.csr" 2>/dev/null
san="subjectAltName=$(printf 'DNS:%s,' "${hosts[@]}" | sed 's/,$//')"
printf '%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$san" > "$tmp/leaf.ext"
openssl x509 -req -in "$tmp/origin.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
  -days 2 -extfile "$tmp/leaf.ext" -out "$tmp/origin.pem" 2>/dev/null

export OSB_SDK_PY_ORIGIN_IP=127.80.0.11 OSB_SDK_TS_ORIGIN_IP=127.80.0.12
resolve="py-llm.sdk.test=$OSB_SDK_PY_ORIGIN_IP,py-other.sdk.test=$OSB_SDK_PY_ORIGIN_IP"
resolve="$resolve,ts-llm.sdk.test=$OSB_SDK_TS_ORIGIN_IP,ts-other.sdk.test=$OSB_SDK_TS_ORIGIN_IP"
unset_vars=()
for name in $(env | sed -n 's/^\(OPENSANDBOX_[A-Z0-9_]*\)=.*/\1/p'); do unset_vars+=(-u "$name"); done
env "${unset_vars[@]}" -u DATABASE_URL -u NATS_URL \
  OPENSANDBOX_DATA_DIR="$tmp/data" OPENSANDBOX_CONFIG="$tmp/config.toml" \
  OPENSANDBOX_PROXY_RESOLVE="$resolve" OPENSANDBOX_PROXY_EXTRA_CA="$tmp/ca.pem" \
  OPENSANDBOX_PROXY_ALLOW_LOOPBACK=1 \
  "$osbd" up --listen "127.0.0.1:$port" --prefix osbsdk --pool 100.80.0.0/16 \
  >"$tmp/osbd.out" 2>"$tmp/osbd.err" &
pid=$!
for _ in $(seq 1 120); do
  grep -q '^ready' "$tmp/osbd.out" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { echo "sdk tests: osbd up exited:" >&2; tail -20 "$tmp/osbd.err" >&2; exit 1; }
  sleep 1
done
grep -q '^ready' "$tmp/osbd.out" || { echo "sdk tests: osbd up never got ready" >&2; tail -20 "$tmp/osbd.err" >&2; exit 1; }
echo "sdk tests: osbd up on 127.0.0.1:$port ($(( $(date +%s) - started )) s)"

export OPENSANDBOX_CONFIG="$tmp/config.toml" OSB_SDK_DATA_DIR="$tmp/data"
export OSB_SDK_ORIGIN_CERT="$tmp/origin.pem" OSB_SDK_ORIGIN_KEY="$tmp/origin.key"
unset OPENSANDBOX_API_URL OPENSANDBOX_API_KEY

status=0
# The packages install as users install them: the wheel pip built into the venv imports from
# outside the tree, and `npm install ./sdks/typescript` into an empty project imports too.
(cd "$tmp" && "$venv/bin/python" -c "import opensandbox; print('sdk tests: pip-installed opensandbox', opensandbox.__version__)") || status=1
mkdir -p "$tmp/npm-user" && (cd "$tmp/npm-user" && echo '{"name":"user","version":"1.0.0","type":"module"}' > package.json &&
  npm install --silent --no-audit --no-fund "$root/sdks/typescript" &&
  node -e "import('opensandbox').then((m) => console.log('sdk tests: npm-installed opensandbox', m.VERSION))") || status=1
python_started=$(date +%s)
PYTHONPATH="$root/sdks/python/src:$root/sdks/python/tests" "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  "$root/sdks/python/tests" || status=1
echo "sdk tests: python took $(( $(date +%s) - python_started )) s"
ts_started=$(date +%s)
(cd "$root/sdks/typescript" && npm run --silent build && node --test --test-reporter=spec test/) || status=1
# dist/ is committed (so `npm install ./sdks/typescript` needs no build step): it must be the
# build of src/.
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1 &&
   [ -n "$(git -C "$root" status --porcelain -- sdks/typescript/dist)" ]; then
  echo "sdk tests: sdks/typescript/dist is not the build of src/: run npm run build there and commit dist" >&2
  status=1
fi
echo "sdk tests: typescript took $(( $(date +%s) - ts_started )) s"
if [ "$status" -ne 0 ]; then echo "sdk tests: osbd log tail:" >&2; tail -30 "$tmp/osbd.err" >&2; fi
echo "sdk tests: $(( $(date +%s) - started )) s in all"
exit "$status"
