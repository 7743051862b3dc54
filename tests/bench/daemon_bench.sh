#!/usr/bin/env bash
# Daemon benchmarks, in a private network namespace with real nftables:
#  1. latency from an appended log line to the address in the kernel set (median, p99 of 1,000)
#  2. sustained ingest of a 2,000,000-line mixed log while banning
#  3. resident memory with 1,000,000 tracked client addresses
# usage: tests/bench/daemon_bench.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
exec unshare --net -- bash -s "$build" "$root" <<'BENCH'
set -euo pipefail
build=$1; root=$2; bin=$build/relayban
work=$(mktemp -d /tmp/relayban-bench.XXXXXX)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/log" "$work/state"; : > "$work/log/mail.log"
config() {  # $1 = threshold of the brute-force rule; $2 = a decision log (with evidence), or none
cat > "$work/relayban.yaml" <<YAML
state_dir: $work/state
control_socket: $work/control.sock
decision_log: "${2:-}"
max_tracked: 2000000
include: [$root/etc/relayban/filters.d/*.yaml]
jails:
  postfix:
    logs: [$work/log/mail.log]
    filters: [postfix]
    rules:
      - {name: auth-bruteforce, key: ip, events: [auth_failure], threshold: $1, window: 10m, ban: 1h}
      - {name: password-spray, key: ip, events: [auth_failure], distinct: account, threshold: 4, window: 1h, ban: 1d}
  dovecot:
    logs: [$work/log/mail.log]
    filters: [dovecot]
    rules:
      - {name: auth-bruteforce, key: ip, events: [auth_failure], threshold: 5, window: 10m, ban: 1h}
YAML
}
start() {
  "$bin" daemon -c "$work/relayban.yaml" 2>/dev/null & pid=$!
  until "$bin" status -c "$work/relayban.yaml" >/dev/null 2>&1; do sleep 0.05; done
}
stop() { kill -TERM $pid; wait $pid || true; nft delete table inet relayban 2>/dev/null || true; rm -rf "$work/state"/*; : > "$work/log/mail.log"; }
# Waits until the daemon has read $1 lines (one interpreter polls: see wait_status.py); sets
# done_s, when it had, in seconds after $2 (a `date +%s.%N`).
wait_lines() { read -r _ _ done_s _ < <(python3 "$root/tests/bench/wait_status.py" "$bin" "$work/relayban.yaml" lines "$1" "$2"); }

echo "1. latency, one ban per appended line"
config 1; start
"$build/tests/bench/latency_bench" "$work/log/mail.log" 1000
stop

echo "2. sustained ingest while banning (without, then with the decision log; evidence is kept in both)"
n=2000000
python3 "$root/tests/bench/gen_mixed_log.py" $n "$work/mixed.log"
for decisions in "" "$work/decisions.log"; do
  config 5 "$decisions"; start
  t0=$(date +%s.%N)
  cat "$work/mixed.log" >> "$work/log/mail.log"
  wait_lines $n "$t0"
  bans=$("$bin" list --json -c "$work/relayban.yaml" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["bans"]))')
  python3 -c "t=$done_s; print('   %d lines in %.2f s: %d lines/s, %s bans in the kernel%s' % ($n, t, $n/t, '$bans', ', decision log' if '$decisions' else ''))"
  stop; rm -f "$work/decisions.log"
done

echo "3. memory with 1,000,000 tracked addresses (one failure each, no ban)"
config 5; start
rss0=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
python3 - "$work/million.log" <<'PY'
import sys, time
stamp = time.strftime("%b %e %H:%M:%S")
with open(sys.argv[1], "w") as f:
    for i in range(1000000):
        f.write(f"{stamp} mx1 postfix/smtpd[1]: warning: unknown[10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}]: SASL LOGIN authentication failed: x, sasl_username=user{i % 50}\n")
PY
cat "$work/million.log" >> "$work/log/mail.log"
wait_lines 1000000 "$(date +%s.%N)"
rss1=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
echo "   RSS: $((rss0 / 1024)) MB at start, $((rss1 / 1024)) MB with 1,000,000 tracked addresses"
stop
BENCH
