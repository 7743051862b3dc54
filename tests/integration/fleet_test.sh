#!/usr/bin/env bash
# Fleet mode with real parts: Debian's redis-server and three real daemons (mx1, mx2, mx3),
# each in a network namespace of its own with its own nftables table and logs, joined to
# Redis by veth pairs. Redis has an ACL user per host (only the commands fleet mode needs).
# Run inside a private network namespace (netns_run.sh); the hosts' namespaces are made here
# and removed at the end.
# usage: fleet_test.sh RELAYBAN_BINARY SOURCE_DIR
set -uo pipefail
bin=$1
src=$2
. "$(dirname "$0")/netns_guard.sh"
command -v redis-server >/dev/null || { echo "SKIP: redis-server is not installed (apt-get install redis-server)"; exit 77; }
. "$src/tests/integration/lib.sh"
. "$src/tests/integration/fleet_lib.sh"
fleet_init mx1 mx2 mx3
start_redis || { fail "redis-server starts"; exit 1; }
ok "redis-server starts with an ACL user per host"

rules='      - {name: auth-bruteforce, key: ip, events: [auth_failure], threshold: 5, window: 10m, ban: 1h, scope: fleet}
      - {name: relay-flood, key: account, events: [relay], distinct: recipient_domain, threshold: 6, window: 1h,
         ban: 1d, scope: fleet, on_account: [/usr/bin/touch, "ON_ACCOUNT-{ip}"]}'
for h in $hosts; do
  ignore='[127.0.0.0/8]'
  [ "$h" = mx3 ] && ignore='[127.0.0.0/8, 192.0.2.0/24]'
  fleet_host "$h" "$ignore" "${rules//ON_ACCOUNT/$work/$h/on_account-ran}" "  max_remote_ban: 2d" || { fail "host $h is set up"; exit 1; }
done
banned_everywhere() { local set=$1 t=$2 h; for h in $hosts; do banned_in "$h" "$set" "$t" || return 1; done; }
nowhere() { local set=$1 t=$2 h; for h in $hosts; do banned_in "$h" "$set" "$t" && return 1; done; return 0; }
brute() { local h=$1 ip=$2 i; for i in 1 2 3 4 5; do fail_line "$ip" "guess$i@example.com" >> "$work/$h/log/mail.log"; done; }
# The targets of `list --json` on host $1, sorted, one a line.
targets() { cli "$1" list --json | python3 -c '
import json, sys
print("\n".join(sorted(b["target"] for b in json.load(sys.stdin)["bans"])))'; }
ban_field() {  # ban_field HOST TARGET FIELD
  cli "$1" list --json | python3 -c '
import json, sys
for b in json.load(sys.stdin)["bans"]:
    if b["target"] == sys.argv[1]: print(b[sys.argv[2]])' "$2" "$3"; }

for h in $hosts; do start_host "$h" || { fail "daemon $h starts"; exit 1; }; done
ok "three daemons start, each in its own network namespace"
for h in $hosts; do
  limit=30 until_true fleet_is "$h" 'f["connected"] and f["in_step"] and len(f["peers"]) == 2'
  check "$h is connected to Redis as its ACL user, in step, and sees the two others" fleet_is "$h" 'f["connected"] and f["in_step"] and len(f["peers"]) == 2'
done

# --- Shared counting (scope: fleet) ----------------------------------------------------------
# A brute force spread over the three hosts: 2 + 2 + 1 failures, under every host's threshold.
for i in 1 2; do fail_line 203.0.113.40 "a$i@example.com" >> "$work/mx1/log/mail.log"; done
limit=10 until_true fleet_is mx1 'f["counted"] >= 2'
for i in 3 4; do fail_line 203.0.113.40 "a$i@example.com" >> "$work/mx2/log/mail.log"; done
limit=10 until_true fleet_is mx2 'f["counted"] >= 2'
fail_line 203.0.113.40 "a5@example.com" >> "$work/mx3/log/mail.log"
limit=20 until_true banned_everywhere ban4 203.0.113.40
check "a brute force spread over three hosts (2+2+1 failures, threshold 5) is banned on all three" banned_everywhere ban4 203.0.113.40
winners() { grep -l "fleet verdict won here: jail=postfix rule=$1 $2 " "$work"/mx*/daemon.log 2>/dev/null | wc -l; }
check "... by one verdict, raised by one host" test "$(winners auth-bruteforce 203.0.113.40)" -eq 1
check "... which the last host's failure decided (mx3)" grep -q "fleet verdict won here: jail=postfix rule=auth-bruteforce 203.0.113.40 reached 5" "$work/mx3/daemon.log"

# The stolen account spread: test logs in on each host from its own address and relays to two
# outside domains there (6 in all; the rule's threshold is 6, no host sees more than 2).
relay_lines() {  # relay_lines HOST IP QUEUEID DOMAIN...
  local h=$1 ip=$2 q=$3; shift 3
  { echo "$(stamp) $h postfix/submission/smtpd[4242]: $q: client=unknown[$ip], sasl_method=LOGIN, sasl_username=test"
    for d in "$@"; do
      echo "$(stamp) $h postfix/smtp[5151]: $q: to=<x@$d>, relay=mx.$d[192.0.2.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)"
    done; } >> "$work/$h/log/mail.log"
}
relay_lines mx1 203.0.113.71 5C00000001 d1.example d2.example
limit=10 until_true fleet_is mx1 'f["counted"] >= 4'
relay_lines mx2 203.0.113.72 5C00000002 d3.example d4.example
limit=10 until_true fleet_is mx2 'f["counted"] >= 4'
relay_lines mx3 203.0.113.73 5C00000003 d5.example d6.example
all_account_ips() { local ip; for ip in 203.0.113.71 203.0.113.72 203.0.113.73; do banned_everywhere ban4 $ip || return 1; done; }
limit=20 until_true all_account_ips
check "an account relaying to 2 outside domains on each of 3 hosts (threshold 6) is caught" all_account_ips
check "... its verdict reported once in the fleet's decision logs" test "$(cat "$work"/mx*/decisions.log | grep -c '"action":"account_verdict".*"account":"test"')" -eq 1
check "... its on_account hook run on one host only" test "$(ls "$work"/mx*/on_account-ran-* 2>/dev/null | wc -l)" -eq 1
check "... with the address whose relay crossed the threshold there (mx3: 203.0.113.73)" test -e "$work/mx3/on_account-ran-203.0.113.73"
check "... and every host lists the account with the verdict" sh -c "for h in $hosts; do \"$bin\" accounts --json -c $work/\$h/relayban.yaml | grep -q 'relay-flood' || exit 1; done"

# --- Shared bans ---------------------------------------------------------------------------
brute mx1 203.0.113.7
limit=20 until_true banned_everywhere ban4 203.0.113.7
check "a brute force on mx1 is banned in the kernels of mx1, mx2 and mx3" banned_everywhere ban4 203.0.113.7
check "mx2 lists it with origin fleet" test "$(ban_field mx2 203.0.113.7 origin)" = fleet
check "... its jail and rule" test "$(ban_field mx2 203.0.113.7 jail) $(ban_field mx2 203.0.113.7 rule)" = "postfix auth-bruteforce"
check "... and the host it came from" sh -c "printf '%s' '$(ban_field mx2 203.0.113.7 reason)' | grep -q 'from mx1'"
check "mx3's decision log records the fleet ban and its host" grep -q '"target":"203.0.113.7".*"origin":"fleet","host":"mx1"' "$work/mx3/decisions.log"
rem=$(ban_field mx2 203.0.113.7 remaining_s)
check "the remote ban keeps its remaining time (about 1h, got ${rem}s)" test "${rem:-0}" -gt 3500 -a "${rem:-0}" -le 3600

cli mx2 ban 198.51.100.0/24 --for 2h --reason "abuse desk ticket 42" >/dev/null
limit=20 until_true banned_everywhere ban4_net 198.51.100.0/24
check "a manual /24 ban on mx2 reaches mx1 and mx3" banned_everywhere ban4_net 198.51.100.0/24
check "... with its reason" sh -c "printf '%s' '$(ban_field mx3 198.51.100.0/24 reason)' | grep -q '^abuse desk ticket 42 \[from mx2\]$'"
cli mx2 ban 2001:db8:77::/48 --for 1h >/dev/null
limit=20 until_true banned_everywhere ban6_net 2001:db8:77::/48
check "an IPv6 /48 ban reaches every host" banned_everywhere ban6_net 2001:db8:77::/48

# Too wide: mx2 may ban a /16 by hand; the others refuse it from the fleet.
cli mx2 ban 10.99.0.0/16 --for 1h >/dev/null
limit=20 until_true fleet_is mx1 'f["refused"]["too_wide"] >= 1'
check "mx1 refuses a remote ban wider than /24" fleet_is mx1 'f["refused"]["too_wide"] >= 1'
check "... and its kernel does not hold it" sh -c "! ip netns exec $tag-mx1 nft get element inet relayban ban4_net '{ 10.99.0.0/16 }' >/dev/null 2>&1"
check "mx2 itself holds it" banned_in mx2 ban4_net 10.99.0.0/16

# The local ignore list wins: mx3 ignores 192.0.2.0/24.
brute mx1 192.0.2.50
limit=20 until_true banned_in mx2 ban4 192.0.2.50
limit=20 until_true fleet_is mx3 'f["refused"]["ignored"] >= 1'
check "mx3 refuses a fleet ban of an address in its ignore list" fleet_is mx3 'f["refused"]["ignored"] >= 1'
check "... and does not ban it" sh -c "! ip netns exec $tag-mx3 nft get element inet relayban ban4 '{ 192.0.2.50 }' >/dev/null 2>&1"

# Unban on one host lifts it everywhere.
cli mx3 unban 203.0.113.7 >/dev/null
limit=20 until_true nowhere ban4 203.0.113.7
check "an unban on mx3 lifts the ban on mx1 and mx2 too" nowhere ban4 203.0.113.7

# --- Forged events -------------------------------------------------------------------------
before=$(fleet_field mx1 'f["refused"]["forged"]')
now_ms=$(( $(date +%s) * 1000 ))
rcli XADD 'rb:{prod}:events' '*' v 1 type ban host mx9 id mx9-1 target 203.0.113.66 at "$now_ms" until $((now_ms + 3600000)) \
  jail postfix rule auth-bruteforce account '' reason forged origin rule mac 0000000000000000000000000000000000000000000000000000000000000000 >/dev/null
# A correct MAC under another key.
python3 - "$now_ms" <<'PY' > "$work/forged.args"
import hmac, hashlib, sys
now = int(sys.argv[1])
f = [("v","1"),("type","ban"),("host","mx9"),("id","mx9-2"),("target","203.0.113.67"),("at",str(now)),
     ("until",str(now+3600000)),("jail","postfix"),("rule","auth-bruteforce"),("account",""),("reason","forged"),("origin","rule")]
def put(v): return f"{len(v.encode())}:{v},"
c = put("relayban-fleet") + put("prod") + "".join(put(k) + put(v) for k, v in f)
mac = hmac.new(b"not-the-fleet-key-at-all", c.encode(), hashlib.sha256).hexdigest()
for k, v in f + [("mac", mac)]: print(k); print(v)
PY
mapfile -t args < "$work/forged.args"
rcli XADD 'rb:{prod}:events' '*' "${args[@]}" >/dev/null
limit=20 until_true fleet_is mx1 "f['refused']['forged'] >= $before + 2"
check "two forged events written straight into Redis are refused (bad MAC, wrong key)" fleet_is mx1 "f['refused']['forged'] >= $before + 2"
check "... and no host banned their addresses" sh -c "for h in $hosts; do ip netns exec $tag-\$h nft get element inet relayban ban4 '{ 203.0.113.66 }' >/dev/null 2>&1 && exit 1; ip netns exec $tag-\$h nft get element inet relayban ban4 '{ 203.0.113.67 }' >/dev/null 2>&1 && exit 1; done; exit 0"
check "the host's ACL user may not FLUSHALL" sh -c "redis-cli -h 127.0.0.1 -p $port --no-auth-warning --user mx1 -a pw-mx1 FLUSHALL | grep -q NOPERM"
check "... nor read keys of another fleet" sh -c "redis-cli -h 127.0.0.1 -p $port --no-auth-warning --user mx1 -a pw-mx1 GET 'rb:{other}:epoch' | grep -q NOPERM"

# --- A host that was down catches up from its saved position ---------------------------------
resyncs_before=$(grep -c 'reading the bans in force' "$work/mx2/daemon.log")
stop_host mx2
brute mx1 203.0.113.21
limit=20 until_true banned_in mx3 ban4 203.0.113.21
start_host mx2 || fail "mx2 starts again"
limit=20 until_true banned_in mx2 ban4 203.0.113.21
check "mx2, stopped while mx1 banned, has the ban after its restart" banned_in mx2 ban4 203.0.113.21
check "... read from its saved stream position (no resync)" test "$(grep -c 'reading the bans in force' "$work/mx2/daemon.log")" -eq "$resyncs_before"

# ... and from the bans set when the events it missed were trimmed from the stream.
stop_host mx2
brute mx1 203.0.113.23
brute mx1 203.0.113.24
limit=20 until_true banned_in mx3 ban4 203.0.113.24
rcli XTRIM 'rb:{prod}:events' MAXLEN 1 >/dev/null
start_host mx2 || fail "mx2 starts again"
limit=20 until_true banned_in mx2 ban4 203.0.113.23
check "with the events it missed trimmed from the stream, a returning mx2 resyncs and has both bans" sh -c \
  "ip netns exec $tag-mx2 nft get element inet relayban ban4 '{ 203.0.113.23 }' && ip netns exec $tag-mx2 nft get element inet relayban ban4 '{ 203.0.113.24 }'"
check "... and says why" grep -q "were trimmed from the stream" "$work/mx2/daemon.log"

# ... and from the bans set when the stream is gone.
stop_host mx2
brute mx1 203.0.113.22
limit=20 until_true banned_in mx3 ban4 203.0.113.22
rcli DEL 'rb:{prod}:events' >/dev/null
start_host mx2 || fail "mx2 starts again"
limit=20 until_true banned_in mx2 ban4 203.0.113.22
check "with the stream deleted, a returning mx2 resyncs from the bans set" banned_in mx2 ban4 203.0.113.22
check "... and says so" grep -q "event stream is gone" "$work/mx2/daemon.log"
check "... the unban of 203.0.113.7 is not undone by the resync" sh -c "! ip netns exec $tag-mx2 nft get element inet relayban ban4 '{ 203.0.113.7 }' >/dev/null 2>&1"

# --- Redis dies mid-attack and comes back empty ---------------------------------------------
kill -9 "$redis_pid"; wait "$redis_pid" 2>/dev/null; redis_pid=
brute mx1 203.0.113.30
brute mx3 203.0.113.31
limit=20 until_true banned_in mx1 ban4 203.0.113.30
check "with Redis down, mx1 still bans locally (its fleet rule counts on this host alone)" banned_in mx1 ban4 203.0.113.30
check "... and says its fleet rules count locally" grep -q "fleet rules count on this host alone" "$work/mx1/daemon.log"
limit=20 until_true fleet_is mx1 'not f["connected"] and f["outbox"] >= 1'
check "mx1's status shows the fleet disconnected and the decision in its outbox" fleet_is mx1 'not f["connected"] and f["outbox"] >= 1'
check "... and its health is degraded" sh -c "\"$bin\" status --json -c '$(cfg mx1)' | grep -q '\"health\": \"degraded: fleet'"
sleep_until_saved() { sqlite3_count=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from fleet_outbox").fetchone()[0])' "$work/mx1/state/state.db" 2>/dev/null); [ "${sqlite3_count:-0}" -ge 1 ]; }
limit=10 until_true sleep_until_saved
check "the outbox is kept in the state database" sleep_until_saved
start_redis || fail "redis-server starts again, empty"
limit=60 until_true banned_everywhere ban4 203.0.113.30
check "after Redis returns empty, mx1's outage ban reaches every host" banned_everywhere ban4 203.0.113.30
limit=60 until_true sh -c "ip netns exec $tag-mx1 nft get element inet relayban ban4 '{ 203.0.113.31 }' && ip netns exec $tag-mx2 nft get element inet relayban ban4 '{ 203.0.113.31 }'"
check "... and mx3's too" banned_everywhere ban4 203.0.113.31
check "the hosts said Redis lost the fleet's data and published their bans again" grep -q "Redis lost the fleet's data" "$work/mx2/daemon.log"
# mx1: 192.0.2.50 .21 .22 .23 .24 .30 .71; mx2: the /24, the /48, the /16, .72; mx3: .31 .40 .73.
bans_in_redis() { [ "$(rcli ZCARD 'rb:{prod}:bans')" = "$1" ]; }
limit=30 until_true bans_in_redis 14
check "Redis holds the fleet's 14 bans again (its bans set rebuilt from the hosts)" bans_in_redis 14
# Every host holds exactly the bans it should: the same set, but for the /16 only mx2 keeps
# and the address mx3 ignores.
same_sets() {
  diff <(targets mx1 | grep -v '^10.99.0.0/16$') <(targets mx2 | grep -v '^10.99.0.0/16$') >/dev/null &&
  diff <(targets mx1 | grep -v '^192.0.2.50$') <(targets mx3) >/dev/null
}
limit=30 until_true same_sets
check "every host holds exactly the bans it should (same sets, but the /16 and the ignored address)" same_sets
check "... which are the ones expected" test "$(targets mx1 | tr '\n' ' ')" = '192.0.2.50 198.51.100.0/24 2001:db8:77::/48 203.0.113.21 203.0.113.22 203.0.113.23 203.0.113.24 203.0.113.30 203.0.113.31 203.0.113.40 203.0.113.71 203.0.113.72 203.0.113.73 ' 

# --- Bounds on what other hosts may do -------------------------------------------------------
cli mx1 ban 203.0.113.90 --for 30d >/dev/null
limit=20 until_true banned_in mx2 ban4 203.0.113.90
rem=$(ban_field mx2 203.0.113.90 remaining_s)
check "a remote 30d ban lasts at most max_remote_ban (2d) on mx2 (${rem}s)" test "${rem:-0}" -gt 170000 -a "${rem:-0}" -le 172800
# mx3 takes at most 2 remote bans at once, then 1 a second.
sed -i 's/  max_remote_ban: 2d/  max_remote_ban: 2d\n  rate: 1\n  burst: 2/' "$(cfg mx3)"
cli mx3 reload >/dev/null
limit=20 until_true fleet_is mx3 'f["connected"] and f["in_step"]'
# 20 bans at once (in parallel, so the burst does not depend on the machine's speed).
bans=()
for i in $(seq 101 120); do cli mx1 ban 198.18.0.$i --for 1h >/dev/null & bans+=($!); done
wait "${bans[@]}"
all_on_mx2() { local i; for i in $(seq 101 120); do banned_in mx2 ban4 198.18.0.$i || return 1; done; }
limit=20 until_true all_on_mx2
limit=20 until_true fleet_is mx3 'f["refused"]["rate"] >= 10'
check "a host over its rate of remote bans refuses the rest (counted)" fleet_is mx3 'f["refused"]["rate"] >= 10'
got=0; for i in $(seq 101 120); do banned_in mx3 ban4 198.18.0.$i && got=$((got + 1)); done
check "... and applied only a few of the 20 ($got)" test "$got" -ge 2 -a "$got" -le 10

# --- Metrics ---------------------------------------------------------------------------------
cli mx2 metrics > "$work/mx2.prom"
check "promtool accepts the fleet metrics" promtool check metrics < "$work/mx2.prom"
check "relayban_fleet_connected is 1" grep -q '^relayban_fleet_connected 1$' "$work/mx2.prom"
check "applied fleet events are counted" grep -Eq '^relayban_fleet_events_total\{direction="applied"\} [1-9]' "$work/mx2.prom"
check "the propagation delay histogram has samples" grep -Eq '^relayban_fleet_propagation_delay_seconds_count [1-9]' "$work/mx2.prom"
check "bans from the fleet are counted with origin fleet" grep -Eq '^relayban_bans_total\{.*origin="fleet".*\} [1-9]' "$work/mx2.prom"

# --- Redis falling behind: fleet rules decide locally -------------------------------------------
# Redis stops answering writes for a while (CLIENT PAUSE) while a flood of 25,000 one-failure
# addresses reaches mx1: past 20,000 counts waiting, mx1's fleet rule decides on its own.
# A brute force hides in the flood, just past the point where the counts back up, so its
# lines are read in the very slice that finds Redis behind.
rcli CLIENT PAUSE 4000 WRITE >/dev/null
python3 -c '
import sys, time
stamp = time.strftime("%b %e %H:%M:%S")
for i in range(25000):
    print(f"{stamp} mx1 postfix/smtpd[1]: warning: unknown[198.19.{i >> 8}.{i & 255}]: SASL LOGIN authentication failed: x, sasl_username=u")
    if i == 20005:
        for k in range(5):
            print(f"{stamp} mx1 postfix/smtpd[1]: warning: unknown[203.0.113.95]: SASL LOGIN authentication failed: x, sasl_username=g{k}")
' >> "$work/mx1/log/mail.log"
limit=20 until_true banned_in mx1 ban4 203.0.113.95
check "with Redis too far behind, a brute force on mx1 is still banned there at once" banned_in mx1 ban4 203.0.113.95
check "... and mx1 says its fleet rules decide alone until Redis catches up" grep -q "fleet counts wait for Redis" "$work/mx1/daemon.log"
limit=30 until_true banned_in mx3 ban4 203.0.113.95
check "... and once Redis answers again the ban reaches the others" banned_in mx3 ban4 203.0.113.95

# --- Redis by host name: resolved at start -----------------------------------------------------
mkdir -p "$work/mx4/state"
sed -e "s|10.250.1.1:$port|localhost:$port|; s|host: mx1|host: mx4|; s|$work/mx1/state|$work/mx4/state|; s|$work/mx1/control.sock|$work/mx4/control.sock|" \
    -e "s|$work/mx1/decisions.log|$work/mx4/decisions.log|" "$(cfg mx1)" > "$work/mx4/relayban.yaml"
"$bin" daemon --dry-run -c "$work/mx4/relayban.yaml" > "$work/mx4/daemon.log" 2>&1 & mx4=$!
mx4_in_step() { "$bin" status --json -c "$work/mx4/relayban.yaml" 2>/dev/null | python3 -c 'import json,sys; f=json.load(sys.stdin)["fleet"]; sys.exit(0 if f["connected"] and f["in_step"] and f["redis"] == "127.0.0.1:'$port'" else 1)'; }
limit=30 until_true mx4_in_step
check "a host that names Redis by host name (localhost) resolves it and joins" mx4_in_step
kill -TERM "$mx4"; wait "$mx4" 2>/dev/null
sed "s|localhost:$port|no-such-host.invalid:$port|" "$work/mx4/relayban.yaml" > "$work/mx4/bad.yaml"
out=$("$bin" daemon --dry-run -c "$work/mx4/bad.yaml" 2>&1); rc=$?
check "a host name that does not resolve stops the start (exit 78) and says so" sh -c "[ $rc = 78 ] && printf '%s' \"\$1\" | grep -q 'cannot resolve no-such-host.invalid'" sh "$out"

# --- Configuration errors ----------------------------------------------------------------
chmod 644 "$work/fleet.key"
out=$("$bin" daemon -c "$(cfg mx1)" --dry-run 2>&1); rc=$?
check "a key file others may read is refused at start (exit 78)" test "$rc" -eq 78
check "... saying what to do" sh -c "printf '%s' '$out' | grep -q 'chmod 600'"
chmod 600 "$work/fleet.key"
cat > "$work/bad.yaml" <<YAML
fleet: {redis: "redis.example", name: "prod fleet", key_file: relative.key}
YAML
out=$("$bin" config-test -c "$work/bad.yaml" 2>&1)
check "config-test names a bad redis address with its line" sh -c "printf '%s' \"\$1\" | grep -q 'bad.yaml:1:.*fleet.redis must be'" sh "$out"
check "... a bad fleet name" sh -c "printf '%s' \"\$1\" | grep -q 'fleet.name must be'" sh "$out"
check "... and a relative key file" sh -c "printf '%s' \"\$1\" | grep -q 'fleet.key_file must be an absolute path'" sh "$out"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
