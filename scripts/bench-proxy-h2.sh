#!/usr/bin/env bash
# HTTP/2 against HTTP/1.1 through the sealing proxy (issue 19, must-hold 3): the peer kit's
# 64 MiB upload to /sink and download of /bytes/N, with curl on --http2 (h2 to the proxy, so the
# proxy's hyper front end and an h2 upstream) and on --http1.1 (the express lane), interleaved,
# REPS times each; prints the MiB/s of every run, the medians and h2 ÷ h1.
# The same transfers also run straight from curl to the origin (the control, no proxy): on a
# shared machine the client's and the origin's own HTTP/2 costs set much of the h2 ÷ h1 ratio,
# so every upload also prints the CPU seconds curl, the proxy and the origin spent on it, and
# the medians show how much of the h2 premium is the proxy's.
#
#   scripts/bench-proxy-h2.sh                 # after one run of scripts/bench-proxy.sh (kit built)
#   REPS=5 UPLOAD_MIB=64 PROXY_BIN=/path/to/bench_proxy scripts/bench-proxy-h2.sh
#   DIRECT=0 scripts/bench-proxy-h2.sh        # through the proxy only
#
# It reuses what the kit left in WORK [/tmp/osb-peers]: its release binaries (the origin), its
# certificates and its upload file, and the bench_proxy binary that scripts/bench-proxy.sh built
# (PROXY_BIN). Everything runs on 127.0.0.1; the origin and the proxy run in their own process
# groups and are stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPS=${REPS:-3}
DIRECT=${DIRECT:-1}
UPLOAD_MIB=${UPLOAD_MIB:-64}
# shellcheck source=scripts/proxy-bench-env.sh
source "$ROOT/scripts/proxy-bench-env.sh"
UPLOAD=$WORK/upload-${UPLOAD_MIB}MiB.b64

require_files "$KIT_BIN/osb-bench-origin" "$CERTS/bundle.pem" "$UPLOAD" "$PROXY_BIN"
trust_bundle
start_origin
start_proxy
wait_port "$ORIGIN_PORT" && wait_port "$PROXY_PORT" || die "origin or proxy did not start"

BYTES=$(stat -c %s "$UPLOAD")
SHA=$(sha256sum "$UPLOAD" | cut -d' ' -f1)
TCK=$(getconf CLK_TCK)
cpu_of() { awk -v t="$TCK" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0; }
TIMEFORMAT='%U %S'
curl_r() { # ROUTE VERSION-FLAG curl-args...: through the proxy or straight to the origin, bounded;
  # curl's own user+system seconds go to $SCRATCH/curl.cpu
  local route=$1 version=$2; shift 2
  local via=(--proxy "http://127.0.0.1:$PROXY_PORT")
  [[ $route == direct ]] && via=()
  { time timeout 200 curl -sS "$version" --max-time 180 --cacert "$SCRATCH/trust.pem" "${via[@]}" \
      -H 'Expect:' -H "Authorization: Bearer $TOKEN" "$@" 2> "$SCRATCH/curl.err" ; } 2> "$SCRATCH/curl.time"
  awk '{ printf "%.3f", $1 + $2 }' "$SCRATCH/curl.time" > "$SCRATCH/curl.cpu"
}
# The origin builds the download body once; not measured.
curl_r proxy --http1.1 -o /dev/null "$URL/bytes/$BYTES"

ROUTES=(proxy)
[[ $DIRECT == 1 ]] && ROUTES+=(direct)
declare -A RESULTS=()
for i in $(seq 1 "$REPS"); do
  for route in "${ROUTES[@]}"; do
    for version in --http1.1 --http2; do
      key="$route$version"
      # (d) upload: the origin's len and sha must match the file.
      p0=$(cpu_of "$PROXY_PID"); o0=$(cpu_of "$ORIGIN_PID")
      out=$(curl_r "$route" "$version" -o "$SCRATCH/d.body" -w '%{http_code} %{time_total} %{http_version}' \
            -H 'Content-Type: application/octet-stream' --data-binary "@$UPLOAD" "$URL/sink")
      read -r code secs proto <<< "$out"
      grep -q "\"len\":$BYTES," "$SCRATCH/d.body" && grep -q "\"sha256\":\"$SHA\"" "$SCRATCH/d.body" && [[ $code == 200 ]] \
        || { echo "upload $route $version run $i: BAD (HTTP $code: $(head -c 120 "$SCRATCH/d.body"))" >&2; exit 1; }
      cpu_curl=$(cat "$SCRATCH/curl.cpu")
      cpu_proxy=$(awk -v a="$p0" -v b="$(cpu_of "$PROXY_PID")" 'BEGIN { printf "%.3f", b - a }')
      cpu_origin=$(awk -v a="$o0" -v b="$(cpu_of "$ORIGIN_PID")" 'BEGIN { printf "%.3f", b - a }')
      mibs=$(awk -v b="$BYTES" -v s="$secs" 'BEGIN { printf "%.1f", b / s / 1048576 }')
      RESULTS[d$key]+="$mibs "
      RESULTS[curl$key]+="$cpu_curl "
      RESULTS[proxy$key]+="$cpu_proxy "
      RESULTS[origin$key]+="$cpu_origin "
      echo "  (d) upload   $route $version (negotiated HTTP/$proto) run $i: $mibs MiB/s; CPU s curl $cpu_curl proxy $cpu_proxy origin $cpu_origin"
      # (e) download: the body's sha must equal the origin's X-Bench-Sha256.
      out=$(curl_r "$route" "$version" -o "$SCRATCH/e.body" -D "$SCRATCH/e.head" -w '%{http_code} %{time_total} %{http_version}' \
            "$URL/bytes/$BYTES")
      read -r code secs proto <<< "$out"
      want=$(tr -d '\r' < "$SCRATCH/e.head" | awk -F': ' 'tolower($1) == "x-bench-sha256" { print $2 }' | tail -1)
      [[ $code == 200 && $(sha256sum "$SCRATCH/e.body" | cut -d' ' -f1) == "$want" ]] \
        || { echo "download $route $version run $i: BAD (HTTP $code)" >&2; exit 1; }
      mibs=$(awk -v b="$BYTES" -v s="$secs" 'BEGIN { printf "%.1f", b / s / 1048576 }')
      RESULTS[e$key]+="$mibs "
      echo "  (e) download $route $version (negotiated HTTP/$proto) run $i: $mibs MiB/s"
      sleep 1
    done
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "== medians of $REPS (MiB/s), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for route in "${ROUTES[@]}"; do
  for test in d e; do
    h1=$(echo "${RESULTS[$test$route--http1.1]}" | median)
    h2=$(echo "${RESULTS[$test$route--http2]}" | median)
    echo "  ($test) $route HTTP/1.1 $h1   HTTP/2 $h2   h2 ÷ h1 $(awk -v a="$h2" -v b="$h1" 'BEGIN { printf "%.2f", a / b }')"
  done
done
echo "== upload CPU seconds per transfer (medians): curl / proxy / origin = sum"
for route in "${ROUTES[@]}"; do
  for version in --http1.1 --http2; do
    key="$route$version"
    c=$(echo "${RESULTS[curl$key]}" | median); p=$(echo "${RESULTS[proxy$key]}" | median); o=$(echo "${RESULTS[origin$key]}" | median)
    echo "  $route $version: $c / $p / $o = $(awk -v c="$c" -v p="$p" -v o="$o" 'BEGIN { printf "%.3f", c + p + o }')"
  done
done
