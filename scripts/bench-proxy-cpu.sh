#!/usr/bin/env bash
# Where the CPU goes (issues 11 and 19): the sealing proxy (P) beside the bare tunnel (B1t) and
# hudsucker (B2) of the peer kit, measured per process rather than per route.
#
#   scripts/bench-proxy-cpu.sh                     # after one run of scripts/bench-proxy.sh
#   ROUNDS=5 REPS=5 DUR=5 PROXY_BIN=/path/to/bench_proxy scripts/bench-proxy-cpu.sh
#   ROUTES="P B1t" REPS=0 scripts/bench-proxy-cpu.sh   # keep-alive only, without hudsucker
#   ROUTES="P F B1t" REPS=0 scripts/bench-proxy-cpu.sh # with the TLS floor (F, see below)
#
# Part 1, keep-alive: `oha -c 64 -z DUR` GET /small through P, B1t and B2 in turn, ROUNDS times;
# prints each proxy's user and system CPU per request (/proc/<pid>/task/*/stat). The bare tunnel's
# system time is the four loopback syscalls every route pays; the user time is what the route adds.
# Route F (keep-alive only, when named in ROUTES) is the TLS floor, `bench_tls_floor` (FLOOR_BIN,
# beside PROXY_BIN): TLS terminated on both legs with the proxy's tokio, rustls and ring, plaintext
# copied through, no HTTP work at all — what any TLS-terminating proxy built on them pays.
# Part 2, bodies: REPS × a 64 MiB download of /bytes/N and a 64 MiB upload to /sink (curl
# --http1.1, bodies checked by length), direct and through P, B1t and B2; prints the wall time
# and the CPU seconds of curl (rusage), the origin and the proxy (schedstat, nanoseconds), per
# transfer and as medians, with the cores the three kept busy (sum of CPU ÷ wall). With two
# cores shared by all three processes, a transfer cannot finish faster than sum ÷ 2.
#
# Reuses what the kit left in WORK [/tmp/osb-peers]: its release binaries (origin, tunnel,
# hudsucker), certificates and upload file. Everything runs on 127.0.0.1; every process runs in
# its own process group and is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-3}
REPS=${REPS:-5}
DUR=${DUR:-5}
ROUTES=${ROUTES:-P B1t B2}
UPLOAD_MIB=${UPLOAD_MIB:-64}
B1T_PORT=${B1T_PORT:-18091}
B2_PORT=${B2_PORT:-18092}
F_PORT=${F_PORT:-18093}
# shellcheck source=scripts/proxy-bench-env.sh
source "$ROOT/scripts/proxy-bench-env.sh"
UPLOAD=$WORK/upload-${UPLOAD_MIB}MiB.b64

require_files "$KIT_BIN/osb-bench-origin" "$KIT_BIN/osb-bench-tunnel" "$KIT_BIN/osb-bench-hudsucker-noop" \
  "$CERTS/bundle.pem" "$UPLOAD" "$PROXY_BIN"
command -v oha > /dev/null || die "oha not found (cargo install --locked oha)"

trust_bundle
start_origin
start_proxy
start_group "$SCRATCH/b1t.log" "$KIT_BIN/osb-bench-tunnel" --listen "127.0.0.1:$B1T_PORT"
B1T_PID=$LAST_PID
start_group "$SCRATCH/b2.log" "$KIT_BIN/osb-bench-hudsucker-noop" --listen "127.0.0.1:$B2_PORT" \
  --ca-cert "$CERTS/mitm-ca.pem" --ca-key "$CERTS/mitm-ca.key" --upstream-ca "$CERTS/origin-ca.pem"
B2_PID=$LAST_PID
PORTS=("$ORIGIN_PORT" "$PROXY_PORT" "$B1T_PORT" "$B2_PORT")
declare -A PORT=([P]=$PROXY_PORT [B1t]=$B1T_PORT [B2]=$B2_PORT)
declare -A PID=([P]=$PROXY_PID [B1t]=$B1T_PID [B2]=$B2_PID)
if [[ " $ROUTES " == *" F "* ]]; then
  FLOOR_BIN=${FLOOR_BIN:-$(dirname "$PROXY_BIN")/bench_tls_floor}
  require_files "$FLOOR_BIN"
  start_group "$SCRATCH/f.log" "$FLOOR_BIN" --listen "127.0.0.1:$F_PORT" --cert "$CERTS/origin.crt" \
    --key "$CERTS/origin.key" --upstream-ca "$CERTS/origin-ca.pem"
  PORT[F]=$F_PORT; PID[F]=$LAST_PID; PORTS+=("$F_PORT")
fi
for port in "${PORTS[@]}"; do
  wait_port "$port" || die "nothing listens on $port"
done

TCK=$(getconf CLK_TCK)
ticks() { cat /proc/"$1"/task/*/stat | awk '{ u += $14; s += $15 } END { print u, s }'; }
run_seconds() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.4f", s / 1e9 }'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== keep-alive: oha -c 64 -z ${DUR}s GET /small, CPU per request of the proxy process"
declare -A USER=() SYS=()
for round in $(seq 1 "$ROUNDS"); do
  for route in $ROUTES; do
    read -r u0 s0 <<< "$(ticks "${PID[$route]}")"
    n=$(oha --no-tui --output-format json --cacert "$SCRATCH/trust.pem" -x "http://127.0.0.1:${PORT[$route]}" \
          -H "Authorization: Bearer $TOKEN" -c 64 -z "${DUR}s" "$URL/small" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["statusCodeDistribution"].get("200", 0))')
    read -r u1 s1 <<< "$(ticks "${PID[$route]}")"
    ((n > 0)) || { die "no request through $route succeeded"; }
    line=$(awk -v n="$n" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v t="$TCK" -v d="$DUR" \
      'BEGIN { printf "%.0f %.2f %.2f", n / d, u / t / n * 1e6, s / t / n * 1e6 }')
    read -r rate user sys <<< "$line"
    USER[$route]+="$user "; SYS[$route]+="$sys "
    echo "  round $round $route: $rate req/s, user $user µs + system $sys µs per request"
    sleep 1
  done
done
for route in $ROUTES; do
  u=$(echo "${USER[$route]}" | median); s=$(echo "${SYS[$route]}" | median)
  echo "  median $route: user $u + system $s = $(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }') µs per request"
done

if ((REPS == 0)); then
  echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi
echo "== bodies: ${UPLOAD_MIB} MiB down (/bytes/N) and up (/sink), curl --http1.1, CPU seconds per transfer"
BYTES=$(stat -c %s "$UPLOAD")
TIMEFORMAT='%U %S'
transfer() { # ROUTE e|d -> prints "wall curl origin proxy"
  local route=$1 test=$2 via=() p0=0 p1=0 o0 o1 w
  [[ $route != direct ]] && via=(--proxy "http://127.0.0.1:${PORT[$route]}")
  o0=$(run_seconds "$ORIGIN_PID"); [[ $route != direct ]] && p0=$(run_seconds "${PID[$route]}")
  if [[ $test == e ]]; then
    { time curl -sS --http1.1 --max-time 120 --cacert "$SCRATCH/trust.pem" "${via[@]}" -H "Authorization: Bearer $TOKEN" \
        -o "$SCRATCH/body" -w '%{time_total}' "$URL/bytes/$BYTES" > "$SCRATCH/wall" ; } 2> "$SCRATCH/curl.time"
    [[ $(stat -c %s "$SCRATCH/body") == "$BYTES" ]] || { die "download through $route came back short"; }
  else
    { time curl -sS --http1.1 --max-time 120 --cacert "$SCRATCH/trust.pem" "${via[@]}" -H 'Expect:' \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/octet-stream' --data-binary "@$UPLOAD" \
        -o "$SCRATCH/body" -w '%{time_total}' "$URL/sink" > "$SCRATCH/wall" ; } 2> "$SCRATCH/curl.time"
    grep -q "\"len\":$BYTES," "$SCRATCH/body" || { die "upload through $route: $(head -c 200 "$SCRATCH/body")"; }
  fi
  o1=$(run_seconds "$ORIGIN_PID"); [[ $route != direct ]] && p1=$(run_seconds "${PID[$route]}")
  awk -v w="$(cat "$SCRATCH/wall")" -v c="$(awk '{ print $1 + $2 }' "$SCRATCH/curl.time")" -v o0="$o0" -v o1="$o1" -v p0="$p0" -v p1="$p1" \
    'BEGIN { printf "%.4f %.4f %.4f %.4f", w, c, o1 - o0, p1 - p0 }'
}
declare -A RESULT=()
for route in direct P B1t B2; do [[ -n $(transfer "$route" e) ]] || die "(e) through $route failed"; done   # the origin builds its body once
for rep in $(seq 1 "$REPS"); do
  for test in e d; do
    for route in direct P B1t B2; do
      read -r wall curl_s origin_s proxy_s <<< "$(transfer "$route" "$test")"
      [[ -n ${proxy_s:-} ]] || die "($test) through $route failed"
      for field in wall curl_s origin_s proxy_s; do RESULT[$test$route$field]+="${!field} "; done
      echo "  ($test) $route run $rep: $(awk -v b="$BYTES" -v w="$wall" 'BEGIN { printf "%.0f", b / w / 1048576 }') MiB/s, wall $wall s; CPU s curl $curl_s origin $origin_s proxy $proxy_s"
      sleep 0.5
    done
  done
done
echo "== medians of $REPS: MiB/s | CPU s curl / origin / proxy = sum | cores busy (sum ÷ wall)"
for test in e d; do
  for route in direct P B1t B2; do
    w=$(echo "${RESULT[$test${route}wall]}" | median); c=$(echo "${RESULT[$test${route}curl_s]}" | median)
    o=$(echo "${RESULT[$test${route}origin_s]}" | median); p=$(echo "${RESULT[$test${route}proxy_s]}" | median)
    awk -v t="$test" -v r="$route" -v b="$BYTES" -v w="$w" -v c="$c" -v o="$o" -v p="$p" 'BEGIN {
      printf "  (%s) %-6s %5.0f MiB/s | %.4f / %.4f / %.4f = %.4f | %.2f\n", t, r, b / w / 1048576, c, o, p, c + o + p, (c + o + p) / w }'
  done
done
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
