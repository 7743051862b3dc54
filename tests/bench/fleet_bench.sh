#!/usr/bin/env bash
# Fleet benchmarks with real parts (run by hand; figures in README.md): Debian's redis-server
# and three daemons (mx1, mx2, mx3), each in its own network namespace, joined to Redis by
# veth pairs, as tests/integration/fleet_test.sh sets them up.
#  1. latency from a failure line appended to mx1's log to the address in mx3's kernel set,
#     timed by mx3's nftables event group (latency_bench): median and p99 over 1,000 bans;
#  2. sustained throughput: N distinct attackers (default 50,000) appended to mx1's log at
#     once; the time until mx3 has applied them all and its kernel holds them.
# With SCOPE=fleet the rule counts across the fleet (a Redis script per failure line): under
# the burst a host falls back to deciding alone while more than 20,000 counts wait.
# usage: [SCOPE=fleet] tests/bench/fleet_bench.sh [BUILD_DIR] [N]   (as root)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
n=${2:-50000}
exec unshare --net -- bash -s "$build" "$root" "$n" "${SCOPE:-host}" <<'BENCH'
set -uo pipefail
build=$1; src=$2; n=$3; scope=$4; bin=$build/relayban
RELAYBAN_TEST_NETNS=1
. "$src/tests/integration/lib.sh"
. "$src/tests/integration/fleet_lib.sh"
fleet_init mx1 mx2 mx3
start_redis || { echo "redis-server does not start"; exit 1; }
# Ban at the first failure (one line, one ban); the fleet may apply as fast as it can.
rules="      - {name: first-failure, key: ip, events: [auth_failure], threshold: 1, window: 10m, ban: 1h, scope: $scope}"
for h in $hosts; do fleet_host "$h" '[127.0.0.0/8]' "$rules" "  rate: 1000000
  burst: 10000000" || exit 1; done
echo "max_tracked: 2000000" >> "$(cfg mx1)"
for h in $hosts; do start_host "$h" || { echo "$h does not start"; tail "$work/$h/daemon.log"; exit 1; }; done
for h in $hosts; do limit=30 until_true fleet_is "$h" 'f["connected"] and f["in_step"]'; done
echo "three hosts in step through $(redis-server --version | cut -d' ' -f3)"

echo "1. latency, line on mx1 -> element in mx3's kernel set:"
ip netns exec "$tag-mx3" "$build/tests/bench/latency_bench" "$work/mx1/log/mail.log" 1000

echo "2. throughput: $n distinct attackers appended to mx1's log at once"
python3 - "$n" > "$work/burst.log" <<'PY'
import sys, time
n = int(sys.argv[1])
stamp = time.strftime("%b %e %H:%M:%S")
for i in range(n):
    print(f"{stamp} mx1 postfix/smtpd[1]: warning: unknown[172.{16 + (i >> 16) % 16}.{(i >> 8) & 255}.{i & 255}]: SASL LOGIN authentication failed: x")
PY
applied0=$(fleet_field mx3 'f["applied"]')
done_on_mx3() { fleet_is mx3 "f['applied'] >= $applied0 + $n" && [ "$(cli mx3 status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["backlog"]["kernel"])')" = 0 ]; }
t0=$(date +%s.%N)
cat "$work/burst.log" >> "$work/mx1/log/mail.log"
limit=300 until_true done_on_mx3 || { echo "mx3 did not apply them all"; cli mx3 status; exit 1; }
t1=$(date +%s.%N)
python3 - "$t0" "$t1" "$n" <<'PY'
import sys
t0, t1, n = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
print(f"   {n} bans in mx3's kernel {t1 - t0:.2f} s after the burst: {n / (t1 - t0):,.0f} bans/s through one Redis")
PY
echo "   Redis: $(rcli INFO memory | grep '^used_memory_human' | tr -d '\r'), $(rcli XLEN 'rb:{prod}:events') events in the stream, $(rcli ZCARD 'rb:{prod}:bans') bans"
cli mx3 metrics | grep -E '^relayban_fleet_propagation_delay_seconds_(bucket\{le="0.05"\}|count)'
cli mx1 metrics | grep -E '^relayban_fleet_(counted_total|verdicts_won_total|errors_total\{kind="counts_dropped"\})'
grep -E "fleet counts wait|keeps up again" "$work/mx1/daemon.log" | head -4
BENCH
