# Helpers shared by the integration scripts (sourced). They need $bin (the relayban binary)
# and $work (a scratch folder). Every wait has a generous bound and measures nothing.
passed=0; failed=0
ok()   { passed=$((passed + 1)); echo "ok - $1"; }
fail() { failed=$((failed + 1)); echo "FAILED - $1"; [ -n "${daemon_log:-}" ] && [ -f "$daemon_log" ] && tail -n 15 "$daemon_log" | sed 's/^/    /'; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else fail "$what"; fi; }
in_kernel() { nft get element inet relayban "$1" "{ $2 }" >/dev/null 2>&1; }
# Waits for something to hold: until "$@" succeeds, for up to $limit seconds (default 30).
until_true() {
  local end=$(( $(date +%s) + ${limit:-30} ))
  while :; do
    "$@" >/dev/null 2>&1 && return 0
    [ "$(date +%s)" -ge "$end" ] && return 1
    sleep 0.02
  done
}
wait_kernel() { until_true in_kernel "$1" "$2"; }
# Lines of $1 matching $2, at least $3 of them (default 1).
has_lines() { [ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "${3:-1}" ]; }
wait_for() { until_true has_lines "$@"; }
stamp() { date '+%b %e %H:%M:%S'; }
fail_line() { echo "$(stamp) mx1 postfix/smtpd[$RANDOM]: warning: unknown[$1]: SASL LOGIN authentication failed: authentication failure, sasl_username=${2:-u$RANDOM}"; }
# How many of the addresses $1.1 .. $1.$2 are in the kernel's ban4 set (one listing).
count_banned() {
  nft list set inet relayban ban4 2>/dev/null | python3 -c '
import re, sys
prefix, n = sys.argv[1], int(sys.argv[2])
found = set(re.findall(r"\b(\d+\.\d+\.\d+\.\d+)\b", sys.stdin.read()))
print(sum(1 for i in range(1, n + 1) if f"{prefix}.{i}" in found))' "$1" "$2"
}
all_banned() { [ "$(count_banned "$1" "$2")" -eq "$2" ]; }
# Starts the daemon on config $1 with log $2; waits until it answers on its socket.
start_daemon() {
  daemon_log=$2
  "$bin" daemon -c "$1" >> "$2" 2>&1 & pid=$!
  until_true "$bin" status -c "$1"
}
stop_daemon() { [ -n "${pid:-}" ] && { kill -TERM "$pid"; wait "$pid" 2>/dev/null; }; pid=; }
kill_daemon() { [ -n "${pid:-}" ] && { kill -9 "$pid"; wait "$pid" 2>/dev/null; }; pid=; }
status_json() { "$bin" status --json -c "$1" 2>/dev/null; }
health_is() { status_json "$1" | grep -q "\"health\": \"$2"; }
