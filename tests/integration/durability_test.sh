#!/usr/bin/env bash
# Nothing lost: the real daemon, real nftables and real files, in private network and mount
# namespaces (netns_run.sh --mount). Each case is one an admin met with earlier versions:
# counts lost at reload and restart, a full or damaged state disk, fast rotation, a flood of
# hanging hooks, a set flushed by someone else, a missing runtime folder.
# usage: durability_test.sh RELAYBAN_BINARY SOURCE_DIR
set -uo pipefail
bin=$1
src=$2
. "$(dirname "$0")/netns_guard.sh"
if [ "$(stat -L -c %i /proc/self/ns/mnt)" = "$(stat -L -c %i /proc/1/ns/mnt 2>/dev/null)" ]; then
  echo "refusing: this is the host's mount namespace"; exit 1
fi
work=$(mktemp -d /tmp/relayban-durability.XXXXXX)
. "$(dirname "$0")/lib.sh"
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  pkill -9 -f "relayban-durability-hook" 2>/dev/null
  [ -n "${hang:-}" ] && pkill -9 -f "sleep $hang" 2>/dev/null
  nft delete table inet relayban 2>/dev/null
  umount "$work/tinydisk" "$work/fulldisk" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# A configuration: $1 = name, then extra top-level YAML and jail YAML.
config() {
  local name=$1 top=${2:-} jail=${3:-}
  mkdir -p "$work/$name/log" "$work/$name/state"
  : >> "$work/$name/log/${LOGFILE:-mail.log}"
  cat > "$work/$name/relayban.yaml" <<YAML
state_dir: ${STATE_DIR:-$work/$name/state}
control_socket: ${SOCKET:-$work/$name/control.sock}
ignore: [127.0.0.0/8]
include: [$src/etc/relayban/filters.d/*.yaml]
$top
jails:
  postfix:
    enabled: true
    logs: [$work/$name/log/${LOGFILE:-mail.log}]
    filters: [postfix]
$jail
    rules:
      - {name: auth-bruteforce, key: ip, events: [auth_failure], threshold: ${THRESHOLD:-3}, window: 1h, ban: 1h}
YAML
  echo "$work/$name/relayban.yaml"
}
log_of() { echo "$work/$1/log/${LOGFILE:-mail.log}"; }
fails() { local log=$1 prefix=$2 n=$3 times=$4 i k; for k in $(seq "$times"); do for i in $(seq "$n"); do fail_line "$prefix.$i"; done; done >> "$log"; }
lines_read() { status_json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lines"])' 2>/dev/null || echo -1; }
read_at_least() { [ "$(lines_read "$1")" -ge "$2" ]; }
# Every log of config $1 is read to its end.
caught_up() { status_json "$1" | python3 -c '
import json, sys
logs = [l for j in json.load(sys.stdin)["jails"] for l in j["logs"]]
sys.exit(0 if logs and all(l.get("read") == l.get("size") for l in logs) else 1)'; }

# 1. Counts survive SIGHUP, `relayban reload`, SIGTERM and start, kill -9 and start.
c=$(config counts)
start_daemon "$c" "$work/counts/daemon.log"
fails "$(log_of counts)" 10.1.0 50 2   # SIGHUP
fails "$(log_of counts)" 10.2.0 50 2   # reload
fails "$(log_of counts)" 10.3.0 50 2   # SIGTERM
check "300 failures are read (none bans: 2 of 3)" until_true read_at_least "$c" 300
check "and nothing is banned yet" test "$(count_banned 10.1.0 50)" -eq 0
readies=$(grep -c "replayed" "$work/counts/daemon.log")
kill -HUP "$pid"
check "SIGHUP: the new engine replays the journal" wait_for "$work/counts/daemon.log" "replayed" $((readies + 1))
fails "$(log_of counts)" 10.1.0 50 1
check "after SIGHUP the third failure of each of 50 addresses bans all 50" until_true all_banned 10.1.0 50
check "relayban reload" "$bin" reload -c "$c"
fails "$(log_of counts)" 10.2.0 50 1
check "after relayban reload all 50 are banned" until_true all_banned 10.2.0 50
stop_daemon
start_daemon "$c" "$work/counts/daemon.log"
fails "$(log_of counts)" 10.3.0 50 1
check "after SIGTERM and a start all 50 are banned" until_true all_banned 10.3.0 50
check "and no line was read twice (status counts the 50 new lines)" test "$(lines_read "$c")" -eq 50
# kill -9 right after two failures each were read: the lines of the last second may be read
# again, but must not count twice (2 + 2 would ban at 3).
fails "$(log_of counts)" 10.4.0 50 2
check "100 more failures are read" until_true caught_up "$c"
kill_daemon
start_daemon "$c" "$work/counts/daemon.log"
check "after kill -9 and a start the daemon has read its log again" until_true caught_up "$c"
check "and counted no failure twice: none of the 50 is banned" test "$(count_banned 10.4.0 50)" -eq 0
fails "$(log_of counts)" 10.4.0 50 1
check "their third failure bans all 50" until_true all_banned 10.4.0 50
stop_daemon

# 2. Killed every 0.6 s during a 1,500-line attack: all 300 attackers are banned.
c=$(THRESHOLD=5 config crash)
start_daemon "$c" "$work/crash/daemon.log"
( for k in 1 2 3 4 5; do for i in $(seq 0 299); do fail_line "10.5.$((i / 250)).$((i % 250 + 1))"; done >> "$(log_of crash)"; sleep 0.3; done ) &
writer=$!
kills=0
while kill -0 "$writer" 2>/dev/null; do
  sleep 0.6
  kill_daemon; kills=$((kills + 1))
  start_daemon "$c" "$work/crash/daemon.log"
done
wait "$writer"
crash_banned() { [ "$(( $(count_banned 10.5.0 250) + $(count_banned 10.5.1 50) ))" -eq 300 ]; }
check "killed $kills times during the attack, all 300 attackers are banned" until_true crash_banned
stop_daemon
nft delete table inet relayban

# 3. A full state disk: bans reach the kernel, status says why it is degraded, the log says
# it once, a restart keeps the bans, and they are written when there is room again.
mkdir -p "$work/fulldisk" && mount -t tmpfs -o size=1m tmpfs "$work/fulldisk"
c=$(STATE_DIR=$work/fulldisk config disk)
start_daemon "$c" "$work/disk/daemon.log"
dd if=/dev/zero of="$work/fulldisk/filler" bs=4k 2>/dev/null
fails "$(log_of disk)" 10.6.0 200 3
check "with the state disk full, 200 bans reach the kernel" until_true all_banned 10.6.0 200
check "status says: degraded: state database: ... full" until_true health_is "$c" "degraded: state database: .*full"
check "and the log says so" wait_for "$work/disk/daemon.log" "database or disk is full"
stop_daemon
start_daemon "$c" "$work/disk/daemon.log"
check "after a restart on the full disk the 200 are still in the kernel" all_banned 10.6.0 200
check "and listed (adopted from the kernel)" until_true test "$("$bin" list -c "$c" | grep -c '10\.6\.0\.')" -eq 200
rm -f "$work/fulldisk/filler"
check "with room again, health is ok" until_true health_is "$c" "ok"
stop_daemon
start_daemon "$c" "$work/disk/daemon.log"
check "and after another restart the 200 come from the database" until_true test "$("$bin" list -c "$c" | grep -c '10\.6\.0\.')" -eq 200
stop_daemon
nft delete table inet relayban
# A disk too small for the database at all: the daemon starts and protects all the same.
mkdir -p "$work/tinydisk" && mount -t tmpfs -o size=64k tmpfs "$work/tinydisk"
dd if=/dev/zero of="$work/tinydisk/filler" bs=4k 2>/dev/null
c=$(STATE_DIR=$work/tinydisk config tiny)
check "on a 64 KiB state disk that is full the daemon starts" start_daemon "$c" "$work/tiny/daemon.log"
fails "$(log_of tiny)" 10.7.0 20 3
check "and bans" until_true all_banned 10.7.0 20
check "degraded: state database" until_true health_is "$c" "degraded: state database"
stop_daemon
nft delete table inet relayban

# 4. A damaged state database is moved aside; the daemon starts and adopts the kernel's bans.
c=$(config corrupt)
start_daemon "$c" "$work/corrupt/daemon.log"
fails "$(log_of corrupt)" 10.8.0 30 3
check "30 bans before the damage" until_true all_banned 10.8.0 30
stop_daemon
dd if=/dev/urandom of="$work/corrupt/state/state.db" bs=4k count=8 conv=notrunc 2>/dev/null
check "the daemon starts on a damaged database" start_daemon "$c" "$work/corrupt/daemon.log"
check "it says it moved the file aside" wait_for "$work/corrupt/daemon.log" "moved it aside to"
check "the damaged file is kept beside it" bash -c "ls $work/corrupt/state/state.db.corrupt-*"
check "and the 30 bans are adopted from the kernel" until_true test "$("$bin" list -c "$c" | grep -c '10\.8\.0\.')" -eq 30
stop_daemon
nft delete table inet relayban

# 5. Fast rotation, every 10 lines, without a pause: every line counts.
rotate_run() {  # $1 = name, $2 = prefix, $3 = how
  c=$(THRESHOLD=5 config "$1")
  start_daemon "$c" "$work/$1/daemon.log"
  local log; log=$(log_of "$1")
  local n=0 k i
  for k in 1 2 3 4 5; do
    for i in $(seq 0 299); do
      fail_line "$2.$((i / 250)).$((i % 250 + 1))" >> "$log"
      n=$((n + 1))
      if [ $((n % 10)) -eq 0 ]; then
        case $3 in
          rename) mv "$log" "$log.1"; : > "$log" ;;
          delete) rm "$log"; : > "$log" ;;
          copytruncate) cp "$log" "$log.1"; truncate -s 0 "$log" ;;
        esac
      fi
    done
  done
  rot_banned() { [ "$(( $(count_banned "$2.0" 250) + $(count_banned "$2.1" 50) ))" -eq 300 ]; }
  check "rotation by $3 every 10 lines: all 300 attackers are banned" until_true rot_banned "$1" "$2"
  check "rotation by $3: no line was read twice" until_true test "$(lines_read "$c")" -eq 1500
  stop_daemon
  nft delete table inet relayban
}
rotate_run rot-rename 10.9 rename
rotate_run rot-delete 10.10 delete
rotate_run rot-copy 10.11 copytruncate

# The same at full speed (a rotation every 10 lines, all 150 of them within milliseconds: no
# reader keeps up) with the names multilog and logrotate's dateext give each generation.
fast_run() {  # $1 = name, $2 = prefix, $3 = multilog | dateext
  local logfile=mail.log
  [ "$3" = multilog ] && logfile=current
  c=$(THRESHOLD=5 LOGFILE=$logfile config "$1")
  start_daemon "$c" "$work/$1/daemon.log"
  python3 - "$work/$1/log/$logfile" "$2" "$3" <<'PY'
import os, sys, time
log, prefix, how = sys.argv[1:4]
d, stamp, n, gen = os.path.dirname(log), time.strftime("%b %e %H:%M:%S"), 0, 0
for k in range(5):
    for i in range(300):
        with open(log, "a") as f:
            f.write(f"{stamp} mx1 postfix/smtpd[1]: warning: unknown[{prefix}.{i // 250}.{i % 250 + 1}]: "
                    "SASL LOGIN authentication failed: x, sasl_username=u\n")
        n += 1
        if n % 10 == 0:
            gen += 1
            rotated = os.path.join(d, "@4000000069%014x.s" % gen) if how == "multilog" else log + "-2026120%04d" % gen
            os.rename(log, rotated)
            open(log, "a").close()
PY
  rot_banned() { [ "$(( $(count_banned "$1.0" 250) + $(count_banned "$1.1" 50) ))" -eq 300 ]; }
  check "full-speed rotation to $3 names: all 300 attackers are banned" until_true rot_banned "$2"
  check "full-speed rotation to $3 names: no line was read twice" until_true test "$(lines_read "$c")" -eq 1500
  stop_daemon
  nft delete table inet relayban
}
fast_run fast-multilog 10.14 multilog
fast_run fast-dateext 10.15 dateext

# 6. Hooks that hang and leave children: a bounded number run, the time limit kills their
# groups, and nothing is left under PID 1.
# The hooks sleep for a time unique to this run (300.<pid>), so processes of another suite
# running beside this one (the PID namespace is shared) are never counted.
hang="300.$$"
cat > "$work/hook.sh" <<SH
#!/bin/sh
# relayban-durability-hook: starts a child and hangs.
sleep $hang &
exec sleep $hang
SH
chmod +x "$work/hook.sh"
c=$(config hooks "hooks: {timeout: 1s, max_running: 4, max_queued: 1000}" "    on_ban: [$work/hook.sh, \"{ip}\"]")
start_daemon "$c" "$work/hooks/daemon.log"
fails "$(log_of hooks)" 10.12.0 40 3
hooks_done() { status_json "$c" | python3 -c 'import json,sys; h=json.load(sys.stdin)["hooks"]; sys.exit(0 if h["killed"] >= 40 and h["running"] == 0 else 1)'; }
hanging() { pgrep -c -f "sleep $hang" || true; }
most=0
for _ in $(seq 1500); do
  n=$(hanging)
  [ "$n" -gt "$most" ] && most=$n
  hooks_done && break
  sleep 0.01
done
check "40 bans ran their hooks, each group killed at its time limit" hooks_done
check "at most 4 hooks ran at once (2 processes each; $most seen)" test "$most" -le 8
none_hanging() { [ "$(hanging)" -eq 0 ]; }
check "and nothing they started is left running" until_true none_hanging
stop_daemon
nft delete table inet relayban

# 7. Without table ownership, a set flushed by someone else is refilled.
c=$(config flush "firewall: {own_table: false}")
start_daemon "$c" "$work/flush/daemon.log"
fails "$(log_of flush)" 10.13.0 50 3
check "50 bans" until_true all_banned 10.13.0 50
nft flush set inet relayban ban4
check "after nft flush set the 50 are back" until_true all_banned 10.13.0 50
check "and the log says who did what" wait_for "$work/flush/daemon.log" "removed from the kernel set by someone else"
stop_daemon
nft delete table inet relayban

# 8. Outside systemd: a missing runtime folder is created, and log lines carry a time stamp.
c=$(SOCKET=$work/run/relayban/control.sock config runtime)
check "the daemon creates its missing runtime folder" start_daemon "$c" "$work/runtime/daemon.log"
check "its log lines carry a time stamp when stderr is not the journal" \
  grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z info: relayban .* running' "$work/runtime/daemon.log"
stop_daemon

# 9. Killed with more bans than the kernel's sets are ever listed at (50,000): a start adds
#    every ban again without listing - the single addresses the kernel still holds plainly
#    (no delete first, which fails on kernels without DESTROY), those it lost as well, a
#    prefix too; nothing is left out and nothing is doubled.
#    The decision log keeps a record of every ban, but the lines behind them only for the
#    first thousand of a second: a flood must not write its lines again and again.
c=$(THRESHOLD=1 config many "decision_log: $work/many/decisions.log")
start_daemon "$c" "$work/many/daemon.log"
"$bin" ban 198.51.100.0/24 --for 1h -c "$c" > /dev/null
python3 - "$(log_of many)" <<'PY'
import sys, time
stamp = time.strftime("%b %e %H:%M:%S")
with open(sys.argv[1], "a") as f:
    for i in range(50050):
        f.write(f"{stamp} mx1 postfix/smtpd[1]: warning: unknown[10.{20 + i // 65536}.{i // 256 % 256}.{i % 256}]: "
                f"SASL LOGIN authentication failed: authentication failure, sasl_username=u{i % 97}\n")
PY
in_force() { status_json "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if d["bans"] >= int(sys.argv[1]) and d["backlog"]["kernel"] == 0 else 1)' "$2"; }
kernel_count() { nft -j list set inet relayban "$1" | python3 -c '
import json, sys
print(sum(len(o["set"].get("elem", [])) for o in json.load(sys.stdin)["nftables"] if "set" in o))'; }
check "50,051 bans in force and in the kernel" until_true in_force "$c" 50051
omitted=$(status_json "$c" | python3 -c 'import json,sys; print(json.load(sys.stdin)["decision_log"]["evidence_omitted"])')
check "past 1,000 records a second the decision log leaves the lines out, and counts them" python3 - "$work/many/decisions.log" "$omitted" <<'PY'
import json, sys
with_lines = without = 0
for raw in open(sys.argv[1]):
    d = json.loads(raw)
    if d["action"] != "ban" or d["rule"] != "auth-bruteforce":
        continue
    if "evidence_omitted" in d:
        assert d["evidence"] == [] and d["evidence_omitted"] == 1, d
        without += 1
    else:
        assert len(d["evidence"]) == 1 and d["target"] in d["evidence"][0]["line"], d
        with_lines += 1
assert with_lines + without == 50050, (with_lines, without)
assert with_lines >= 1000 and without >= 1 and without == int(sys.argv[2]), (with_lines, without, sys.argv[2])
PY
kill_daemon
nft delete element inet relayban ban4 '{ 10.20.0.7, 10.20.100.9 }'
start_daemon "$c" "$work/many/daemon.log"
check "the start does not list the sets" wait_for "$work/many/daemon.log" "50051 bans in force: the kernel's sets are not listed"
check "and every ban is in force again" until_true in_force "$c" 50051
check "the kernel holds all 50,050 addresses, the two it lost included" test "$(kernel_count ban4)" -eq 50050
check "and the prefix" test "$(kernel_count ban4_net)" -eq 1
check "nothing failed on the way" test "$(grep -c 'firewall: \|cannot' "$work/many/daemon.log")" -eq 0
expires_of() { nft -j list set inet relayban ban4 | python3 -c '
import json, sys
for o in json.load(sys.stdin)["nftables"]:
    for e in o.get("set", {}).get("elem", []):
        if isinstance(e, dict) and e["elem"]["val"] == sys.argv[1]:
            print(e["elem"].get("expires", -1))' "$1"; }
within_hour() { local x; x=$(expires_of "$1"); [ -n "$x" ] && [ "$x" -gt 3000 ] && [ "$x" -le 3600 ]; }
check "a lost address added again expires within its hour" within_hour 10.20.100.9
check "one the kernel kept too" within_hour 10.20.0.8
stop_daemon
nft delete table inet relayban

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
