#!/usr/bin/env bash
# The real daemon with real nftables, real files and its control socket, inside a private
# network namespace (run through netns_run.sh). usage: daemon_test.sh RELAYBAN_BINARY SOURCE_DIR
set -uo pipefail
bin=$1
src=$2
. "$(dirname "$0")/netns_guard.sh"
work=$(mktemp -d /tmp/relayban-daemon-test.XXXXXX)
passed=0; failed=0
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; nft delete table inet relayban 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

ok()   { passed=$((passed + 1)); echo "ok - $1"; }
fail() { failed=$((failed + 1)); echo "FAILED - $1"; [ -f "$work/daemon.log" ] && tail -n 20 "$work/daemon.log" | sed 's/^/    /'; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else fail "$what"; fi; }
in_kernel() { nft get element inet relayban "$1" "{ $2 }" >/dev/null 2>&1; }
# Waits for an element to appear (up to $3 ms: a generous bound, never a measurement).
wait_kernel() { local set=$1 ip=$2 ms=${3:-20000} i=0; while [ $i -lt "$ms" ]; do in_kernel "$set" "$ip" && return 0; sleep 0.01; i=$((i + 10)); done; return 1; }
# Waits for a file to hold a line matching $2, $3 times (default once), for up to 20 s.
wait_for() { local file=$1 pattern=$2 times=${3:-1} i=0; while [ $i -lt 2000 ]; do [ "$(grep -c -- "$pattern" "$file" 2>/dev/null)" -ge "$times" ] && return 0; sleep 0.01; i=$((i + 1)); done; return 1; }
# Waits for the daemon's status to report at least $1 lines read.
wait_lines() { local i=0; while [ $i -lt 2000 ]; do [ "$("$bin" status --json --socket "$work/control.sock" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["lines"])' 2>/dev/null || echo -1)" -ge "$1" ] && return 0; sleep 0.01; i=$((i + 1)); done; return 1; }
stamp() { date '+%b %e %H:%M:%S'; }
fail_line() { echo "$(stamp) mx1 postfix/smtpd[$RANDOM]: warning: unknown[$1]: SASL LOGIN authentication failed: authentication failure, sasl_username=${2:-u$RANDOM}"; }
burst() { for _ in 1 2 3 4 5; do fail_line "$1" >> "$2"; done; }
cli() { "$bin" "$@" -c "$work/relayban.yaml"; }

mkdir -p "$work/log" "$work/qmail" "$work/state" "$work/hooks" "$work/journal"
: > "$work/log/mail.log"
: > "$work/qmail/current"
cat > "$work/relayban.yaml" <<YAML
state_dir: $work/state
control_socket: $work/control.sock
ignore: [127.0.0.0/8, 192.0.2.0/24]
include: [$src/etc/relayban/filters.d/*.yaml]
jails:
  postfix:
    enabled: auto
    logs: [$work/log/mail.log]
    filters: [postfix]
    on_ban: [/usr/bin/touch, "$work/hooks/{ip} {jail}"]
    rules:
      - {name: auth-bruteforce, key: ip, events: [auth_failure], threshold: 5, window: 10m, ban: 1h}
  qmail:
    enabled: auto
    logs: [{path: $work/qmail/current, stamp: tai64n}, {path: "$work/qmail/*/current", stamp: tai64n}]
    filters: [qmail-chkuser]
    rules:
      - {name: relay-flood, key: account, events: [relay], distinct: recipient_domain, threshold: 20, window: 1h, ban: 1d,
         on_account: [/bin/false, "{account}"]}
  exim:
    detect: [/nonexistent/usr/sbin/exim4]
    logs: [$work/log/mail.log]
    filters: [exim]
  postfix-journal:
    logs: [{journal: {match: ["_SYSTEMD_UNIT=postfix@-.service"], directory: $work/journal}}]
    filters: [postfix]
    rules:
      - {name: auth-bruteforce, key: ip, events: [auth_failure], threshold: 5, window: 10m, ban: 1h}
YAML
cp "$work/relayban.yaml" "$work/good.yaml"

# Started when it answers (a socket file left by a killed daemon does not count).
# sd_notify messages go to a datagram socket we listen on.
python3 - "$work/notify.sock" "$work/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as f:
    while True:
        f.write(s.recv(4096).decode() + "\n")
        f.flush()
PY
notify_pid=$!
trap 'kill $notify_pid 2>/dev/null; cleanup' EXIT
for _ in $(seq 2000); do [ -S "$work/notify.sock" ] && break; sleep 0.01; done

start() {
  NOTIFY_SOCKET="$work/notify.sock" "$bin" daemon -c "$work/relayban.yaml" >> "$work/daemon.log" 2>&1 & pid=$!
  for _ in $(seq 2000); do "$bin" status --socket "$work/control.sock" >/dev/null 2>&1 && return 0; sleep 0.01; done
  return 1
}
stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null; pid=; }

out=$("$bin" list -c "$work/relayban.yaml" 2>&1); rc=$?
if [ $rc -eq 69 ] && echo "$out" | grep -q "relayban daemon is not running"; then ok "a client without a daemon gets a clear error"; else fail "no daemon: rc=$rc $out"; fi
check "the daemon starts and answers on its socket" start
check "a jail whose program is not installed is off, though its log exists" bash -c "$(printf '%q ' "$bin") status exim -c $work/relayban.yaml | grep -q 'off: enabled: auto and none of /nonexistent/usr/sbin/exim4 exists'"
check "status reports both jails on" bash -c "$(printf '%q ' "$bin") status --json --socket $work/control.sock | grep -q '\"enabled\": true'"

# A burst of failures reaches the kernel set (how fast is measured by tests/bench/, not here).
burst 203.0.113.10 "$work/log/mail.log"
check "a brute-force burst is banned into the kernel set" wait_kernel ban4 203.0.113.10
wait_hook() { for _ in $(seq 2000); do [ -e "$1" ] && return 0; sleep 0.01; done; return 1; }
check "the on_ban hook ran with its argv, no shell" wait_hook "$work/hooks/203.0.113.10 postfix"
check "sd_notify READY=1 was sent" grep -q "READY=1" "$work/notify.log"

# journald: entries of the trusted unit count; the same text forged from another unit does not.
journal_entries() {  # $1 = file name, $2 = unit, $3 = comm, $4 = address
  local usec=$(( $(date +%s%N) / 1000 )) out=""
  for i in 1 2 3 4 5; do
    out+="__REALTIME_TIMESTAMP=$((usec + i))\n_HOSTNAME=mx1\n_SYSTEMD_UNIT=$2\n_COMM=$3\nSYSLOG_IDENTIFIER=postfix/smtpd\n_PID=$((4000 + i))\n"
    out+="MESSAGE=warning: unknown[$4]: SASL LOGIN authentication failed: authentication failure\n\n"
  done
  # Written aside and moved in whole, as journald's own files appear complete to readers.
  printf "$out" | /lib/systemd/systemd-journal-remote -o "$work/$1.journal" - 2>/dev/null
  mv "$work/$1.journal" "$work/journal/$1.journal"
}
if [ -x /lib/systemd/systemd-journal-remote ]; then
  journal_entries forged php8.2-fpm.service php-fpm8.2 198.51.100.250
  journal_entries real postfix@-.service smtpd 203.0.113.20
  check "journald: a burst from the trusted unit is banned" wait_kernel ban4 203.0.113.20 3000
  check "journald: the same lines forged from another unit are not" bash -c "! nft get element inet relayban ban4 '{ 198.51.100.250 }'"
fi

# Rotation by rename and create.
mv "$work/log/mail.log" "$work/log/mail.log.1"
fail_line 203.0.113.11 >> "$work/log/mail.log.1"
: > "$work/log/mail.log"
for _ in 1 2 3 4; do fail_line 203.0.113.11 >> "$work/log/mail.log"; done
check "rename+create rotation: lines of both files count" wait_kernel ban4 203.0.113.11

# Rotation by copytruncate.
truncate -s 0 "$work/log/mail.log"
burst 203.0.113.12 "$work/log/mail.log"
check "copytruncate rotation: detection goes on" wait_kernel ban4 203.0.113.12

# The control socket.
# Each named (relayban-fault, the Prefaulter's, starts when a big table first grows).
threads_named() {
  local names t; names=$(cat /proc/$pid/task/*/comm)
  for t in relayban-declog relayban-kernel relayban-match relayban-store; do grep -qxF "$t" <<<"$names" || return 1; done
}
check "its threads are named for top -H and ps -L" threads_named
check "ban by hand" cli ban 198.51.100.77 --for 10m --reason "seen in the web log"
check "the hand ban is in the kernel" in_kernel ban4 198.51.100.77
check "list shows it with its reason" bash -c "$(printf '%q ' "$bin") list -c $work/relayban.yaml | grep 198.51.100.77 | grep -q 'seen in the web log'"
check "banning an ignored address is refused" bash -c "! $(printf '%q ' "$bin") ban 192.0.2.5 -c $work/relayban.yaml"
check "unless forced" cli ban 192.0.2.5 --force --for 1m
check "unban removes it" cli unban 198.51.100.77
check "and it is gone from the kernel" bash -c "! nft get element inet relayban ban4 '{ 198.51.100.77 }'"
check "the log says who asked for the unban" wait_for "$work/daemon.log" "unban 198.51.100.77 (asked by uid $(id -u) pid "
check "forgive answers for an account" bash -c "$(printf '%q ' "$bin") forgive nobody@example.com -c $work/relayban.yaml | grep -q 'forgave nobody@example.com: it had no verdict'"
check "and the log says who asked" wait_for "$work/daemon.log" "forgive account nobody@example.com (asked by uid $(id -u) pid "
check "a prefix ban" cli ban 203.0.113.128/25 --for 10m
check "covers its addresses" in_kernel ban4_net 203.0.113.200
check "status of one jail" bash -c "$(printf '%q ' "$bin") status postfix -c $work/relayban.yaml | grep -q 'postfix'"
check "accounts answers JSON" bash -c "$(printf '%q ' "$bin") accounts --json -c $work/relayban.yaml | grep -q '\"ok\": true'"

# Listing more bans than one slice (2,000 a loop turn, a slice in one send): 4,500 hand bans
# with a reason that needs escaping; `list --json` (printed as the daemon wrote it) and the
# table agree, every target once, the reason intact.
# Sends $1 ("ban" or "unban") for 10.77.x.y, 4,500 addresses, 50 connections at a time (the server takes 64).
many_requests() {
  python3 - "$work/control.sock" "$1" <<'PY'
import json, socket, sys
reason = 'quote " backslash \\ tab \t caf\u00e9 \u2603'
for first in range(0, 4500, 50):
    socks = []
    for i in range(first, first + 50):
        req = {"cmd": sys.argv[2], "target": "10.77.%d.%d" % (i // 250, i % 250 + 1)}
        if sys.argv[2] == "ban":
            req.update({"for": "10m", "reason": reason})
        s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
        s.sendall((json.dumps(req) + "\n").encode())
        socks.append(s)
    for s in socks:
        s.recv(4096); s.close()
PY
}
many_requests ban
"$bin" list --json -c "$work/relayban.yaml" > "$work/list.json"
check "list --json holds every hand ban once, with its reason" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
mine = [b for b in d["bans"] if b["target"].startswith("10.77.")]
assert d["ok"] is True and len(mine) == 4500 and len({b["target"] for b in mine}) == 4500, len(mine)
assert all(b["reason"] == "quote \" backslash \\ tab \t caf\u00e9 \u2603" and b["origin"] == "manual" and 0 < b["remaining_s"] <= 600 for b in mine)
' "$work/list.json"
check "and the table lists as many" bash -c "$(printf '%q ' "$bin") list -c $work/relayban.yaml | tail -1 | grep -qx \"$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["bans"]))' "$work/list.json") active bans\""
many_requests unban
check "unbanned one by one, they are gone from the kernel" bash -c "! nft list set inet relayban ban4 | grep -q '10\.77\.'"

# Garbage on the control socket gets an error answer and leaves the daemon running.
out=$(python3 - "$work/control.sock" <<'PY'
import socket, sys
answers = []
for req in [b'{"cmd":"ban","target":5}\n', b'not json\n', b'{"cmd":"nosuch"}\n', b'[1,2]\n', b'\xff\xfe\n',
            b'{"cmd":"unban","target":"192.0.2.999"}\n', b'{"cmd":"ban","target":"203.0.113.1","for":"forever"}\n']:
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(req)
    answers.append(s.makefile().readline().strip())
    s.close()
print("\n".join(answers))
PY
)
if [ "$(echo "$out" | grep -c '"ok":false')" -eq 7 ]; then ok "malformed control requests get error answers"; else fail "malformed requests: $out"; fi
check "and the daemon still answers" cli status

# A peer that is not root is refused, by the socket's mode and by SO_PEERCRED.
if command -v setpriv >/dev/null; then
  out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$bin" list --socket "$work/control.sock" 2>&1); rc=$?
  if [ $rc -ne 0 ] && echo "$out" | grep -q "permission denied"; then ok "nobody cannot connect (socket mode 0600)"; else fail "nobody was not refused: $out"; fi
  chmod 0666 "$work/control.sock"; chmod 0755 "$work"
  out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$bin" ban 203.0.113.99 --socket "$work/control.sock" 2>&1); rc=$?
  if [ $rc -eq 77 ] && echo "$out" | grep -q "permission denied: uid 65534 is not root"; then ok "nobody is refused by SO_PEERCRED"; else fail "SO_PEERCRED did not refuse: rc=$rc $out"; fi
  check "and nothing was banned" bash -c "! nft get element inet relayban ban4 '{ 203.0.113.99 }'"
  chmod 0600 "$work/control.sock"; chmod 0700 "$work"
fi

# A bad reload keeps the old configuration.
sed -i 's/filters: \[postfix\]/filters: [nosuch]/' "$work/relayban.yaml"
out=$("$bin" reload --socket "$work/control.sock" 2>&1); rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q "uses unknown filter 'nosuch'"; then ok "a bad reload is refused with its errors"; else fail "bad reload: rc=$rc $out"; fi
out=$(cli reload 2>&1); rc=$?
if [ $rc -eq 78 ] && echo "$out" | grep -q "unknown filter 'nosuch'"; then ok "the client shows the errors too"; else fail "client reload: rc=$rc $out"; fi
# Other client commands read only the socket's path: the admin can still ask the daemon.
check "status answers while the configuration has errors" cli status
rejected=$(grep -c "uses unknown filter 'nosuch'" "$work/daemon.log")
kill -HUP "$pid"
check "SIGHUP with a bad configuration logs every error" wait_for "$work/daemon.log" "uses unknown filter 'nosuch'" $((rejected + 1))
burst 203.0.113.13 "$work/log/mail.log"
check "and the old configuration keeps working" wait_kernel ban4 203.0.113.13
cp "$work/good.yaml" "$work/relayban.yaml"
readies=$(grep -c "READY=1" "$work/notify.log")
kill -HUP "$pid"
check "SIGHUP reloads a good configuration (RELOADING, then READY again)" wait_for "$work/notify.log" "READY=1" $((readies + 1))
check "and the daemon answers" cli status

# The qmail story, fed live.
cat "$src/tests/data/qmail-story.log" >> "$work/qmail/current"
check "the qmail story bans the spammer's address" wait_kernel ban4 82.128.32.42
check "and the account's second address" wait_kernel ban4 41.203.7.99
check "a failing on_account hook is logged, not fatal" wait_for "$work/daemon.log" "hook /bin/false failed with exit status 1"
check "the on_account hook ran once for the verdict, not once per further recipient" test "$(grep -c 'hook /bin/false failed' "$work/daemon.log")" -eq 1
check "relayban accounts shows test with its verdict" bash -c "$(printf '%q ' "$bin") accounts -c $work/relayban.yaml | grep '^test ' | grep -q relay-flood"

# A log matching a glob that appears after start is picked up (within ten seconds), from its
# first line.
mkdir -p "$work/qmail/submission"
sed 's/82.128.32.42/82.128.32.43/; s/41.203.7.99/41.203.7.98/' "$src/tests/data/qmail-story.log" | grep -v "41.203.7.98" > "$work/qmail/submission/current"
check "a new file matching a log glob is followed" wait_kernel ban4 82.128.32.43 30000

# Restart: bans stay, counts survive, no line is counted twice.
for _ in 1 2 3; do fail_line 203.0.113.14 >> "$work/log/mail.log"; done
stop  # reads what was written before it stops
check "after SIGTERM the bans stay in the kernel" in_kernel ban4 203.0.113.10
check "the daemon restarts" start
check "list shows the restored bans" bash -c "$(printf '%q ' "$bin") list -c $work/relayban.yaml | grep -q 203.0.113.10"
for _ in 1 2; do fail_line 203.0.113.14 >> "$work/log/mail.log"; done
check "the counts survive the restart: 3 failures before and 2 after ban (threshold 5)" wait_kernel ban4 203.0.113.14
check "and no line was read twice: status counts only the 2 new lines" bash -c "$(printf '%q ' "$bin") status --json -c $work/relayban.yaml | grep -q '\"lines\": 2'"

# SIGKILL leaves the bans in force; a restart adopts them.
kill -9 "$pid"; wait "$pid" 2>/dev/null; pid=
check "after SIGKILL the bans are still in the kernel" in_kernel ban4 82.128.32.42
check "the daemon restarts after SIGKILL" start
check "and adopts the table with its bans" bash -c "$(printf '%q ' "$bin") list -c $work/relayban.yaml | grep -q 82.128.32.42"
check "the adopted table still drops" in_kernel ban4 82.128.32.42
stop
check "sd_notify STOPPING=1 was sent" grep -q "STOPPING=1" "$work/notify.log"

# Without table ownership anyone may delete the table: the daemon notices and rebuilds it.
sed -i "s|^control_socket:.*|&\nfirewall: {own_table: false}|" "$work/relayban.yaml"
nft delete table inet relayban
check "the daemon starts with a table it does not own" start
check "and restores the bans into it" wait_kernel ban4 82.128.32.42
nft delete table inet relayban
check "a table deleted by someone else is rebuilt with its bans" wait_kernel ban4 82.128.32.42
stop

# --dry-run needs no privileges: run it as nobody, with its own state and socket.
if command -v setpriv >/dev/null; then
  dry=$work/dry; mkdir -p "$dry/log" && : > "$dry/log/mail.log" && chmod -R 0777 "$dry" && chmod 0755 "$work"
  # nobody may not be able to read the checkout (a private CI folder): give it copies.
  cp -r "$src/etc/relayban/filters.d" "$dry/filters.d" && chmod -R a+rX "$dry"
  sed -e "s|$work/state|$dry/state|; s|$work/control.sock|$dry/control.sock|; s|$work/log/mail.log|$dry/log/mail.log|; /on_ban/d" \
    -e "s|$src/etc/relayban/filters.d|$dry/filters.d|" "$work/good.yaml" > "$dry/relayban.yaml"
  chmod a+r "$dry/relayban.yaml"
  setpriv --reuid=65534 --regid=65534 --clear-groups "$bin" daemon --dry-run -c "$dry/relayban.yaml" > "$dry/daemon.log" 2>&1 &
  drypid=$!
  check "a --dry-run daemon runs as nobody" wait_for "$dry/daemon.log" "running: dry-run"
  burst 203.0.113.50 "$dry/log/mail.log"
  check "a --dry-run daemon as nobody reports the ban" wait_for "$dry/daemon.log" "dry-run: would ban 203.0.113.50 for 1h"
  kill -TERM $drypid; wait $drypid 2>/dev/null
  check "and changes no firewall" bash -c "! nft get element inet relayban ban4 '{ 203.0.113.50 }'"
  chmod 0700 "$work"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
