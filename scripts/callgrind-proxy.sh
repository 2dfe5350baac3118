#!/usr/bin/env bash
# Instructions the sealing proxy spends (callgrind: counted, not timed, so the figure repeats on a
# loaded machine) per keep-alive request, per downloaded byte and per uploaded byte, on the peer
# kit's origin with the bench token substituted and responses scrubbed (issues 11 and 19).
#
#   scripts/callgrind-proxy.sh                        # after one run of scripts/bench-proxy.sh
#   PROXY_BIN=/path/to/other/bench_proxy scripts/callgrind-proxy.sh   # before/after
#   REQUESTS=4000 CONNS=8 MIB=8 TOP=25 scripts/callgrind-proxy.sh
#
# It runs `bench_proxy --lanes 1 --workers 1` under `valgrind --tool=callgrind` between the kit's
# origin and the clients (oha for requests, curl --http1.1 for bodies), warms every path first,
# then zeroes the counters (`callgrind_control -z`) around each measured part and dumps them
# (`callgrind_control -d`). Prints Ir per request / per byte and the TOP functions of the
# keep-alive part (inclusive of nothing: self cost). Reuses what the kit left in WORK
# [/tmp/osb-peers]: the origin binary, the certificates and the upload file of MIB MiB (made here
# when missing). Everything runs on 127.0.0.1; the origin and the proxy are stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REQUESTS=${REQUESTS:-4000}
CONNS=${CONNS:-8}
MIB=${MIB:-8}
TOP=${TOP:-25}
PROXY_PORT=${PROXY_PORT:-18091}
PROXY_ARGS="--lanes 1 --workers 1"
# shellcheck source=scripts/proxy-bench-env.sh
source "$ROOT/scripts/proxy-bench-env.sh"

require_files "$KIT_BIN/osb-bench-origin" "$CERTS/bundle.pem" "$PROXY_BIN"
for tool in valgrind callgrind_control callgrind_annotate oha curl; do
  command -v "$tool" > /dev/null || die "$tool not found (apt-get install valgrind curl; cargo install --locked oha)"
done

UPLOAD=$SCRATCH/upload.bin
head -c $((MIB * 1024 * 1024 * 3 / 4)) /dev/urandom | base64 -w 0 > "$UPLOAD"
BYTES=$(stat -c %s "$UPLOAD")
trust_bundle
start_origin
start_proxy valgrind --tool=callgrind --callgrind-out-file="$SCRATCH/cg.%p"
wait_port "$ORIGIN_PORT" && wait_port "$PROXY_PORT" || { cat "$SCRATCH/proxy.log" >&2; die "origin or proxy did not start"; }

curl_p() { curl -sS --http1.1 --max-time 600 --cacert "$SCRATCH/trust.pem" --proxy "http://127.0.0.1:$PROXY_PORT" \
  -H 'Expect:' -H "Authorization: Bearer $TOKEN" "$@"; }
load() { oha --no-tui --output-format json --cacert "$SCRATCH/trust.pem" -x "http://127.0.0.1:$PROXY_PORT" \
  -H "Authorization: Bearer $TOKEN" -c "$CONNS" -n "$1" "$URL/small" > "$SCRATCH/oha.json"; }
ok_count() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["statusCodeDistribution"].get("200", 0))' "$SCRATCH/oha.json"; }
# Ir of the last dump: `callgrind_control -d` writes cg.<pid>.<n>, one file for all threads.
measured=0
dump() { # NAME
  callgrind_control -d "$1" > /dev/null
  sleep 1
  local file
  file=$(ls -t "$SCRATCH"/cg.*.* | head -1)
  measured=$(awk '/^summary:/ { s += $2 } END { print s + 0 }' "$file")
  mv "$file" "$SCRATCH/part-$1.out"
}

# Warm-up: leaves minted, the upstream pool filled, the origin's body cached, every path taken.
load 400
curl_p -o /dev/null "$URL/bytes/$BYTES"
curl_p -o /dev/null -H 'Content-Type: application/octet-stream' --data-binary "@$UPLOAD" "$URL/sink"

callgrind_control -z > /dev/null
load "$REQUESTS"
dump requests
ok=$(ok_count)
[[ $ok -gt 0 ]] || die "no request succeeded"
per_request=$((measured / ok))
echo "keep-alive: $measured Ir over $ok requests on $CONNS connections = $per_request Ir per request (incl. $CONNS handshakes)"

callgrind_control -z > /dev/null
curl_p -o "$SCRATCH/e.body" -D "$SCRATCH/e.head" "$URL/bytes/$BYTES"
dump download
echo "download:   $measured Ir for $BYTES bytes = $(awk -v m="$measured" -v b="$BYTES" 'BEGIN { printf "%.2f", m / b }') Ir per byte"

callgrind_control -z > /dev/null
curl_p -o "$SCRATCH/d.body" -H 'Content-Type: application/octet-stream' --data-binary "@$UPLOAD" "$URL/sink"
dump upload
grep -q "\"len\":$BYTES," "$SCRATCH/d.body" || die "upload answer: $(head -c 200 "$SCRATCH/d.body")"
echo "upload:     $measured Ir for $BYTES bytes = $(awk -v m="$measured" -v b="$BYTES" 'BEGIN { printf "%.2f", m / b }') Ir per byte"

for part in requests download upload; do
  echo "== top $TOP functions by self Ir: $part"
  callgrind_annotate --threshold=100 --auto=no "$SCRATCH/part-$part.out" 2>/dev/null \
    | awk '/file:function/ { on = 1; next } on && NF && !/100.0%/' | head -"$TOP" | cut -c1-200 || true
done
if [[ -n ${KEEP:-} ]]; then mkdir -p "$KEEP" && cp "$SCRATCH"/part-*.out "$KEEP"/ && echo "== callgrind parts kept in $KEEP"; fi
