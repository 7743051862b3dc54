# Helpers for the system tests (sourced): Debian roots built with mmdebstrap, booted with
# systemd-nspawn inside a network namespace of their own, attacked from a second namespace.
# Nothing here touches the host's network, firewall or services.
passed=0; failed=0
ok()   { passed=$((passed + 1)); echo "ok - $1"; }
fail() { failed=$((failed + 1)); echo "FAILED - $1"; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else fail "$what"; fi; }
# Until "$@" succeeds, for up to $limit seconds (default 60). Waits for the thing itself.
until_true() {
  local end=$(( $(date +%s) + ${limit:-60} ))
  while :; do
    "$@" >/dev/null 2>&1 && return 0
    [ "$(date +%s)" -ge "$end" ] && return 1
    sleep 0.1
  done
}

cache=${RELAYBAN_SYSTEM_CACHE:-/var/cache/relayban-system-test}
# The host's Debian mirror (the same apt sources serve every suite), else deb.debian.org.
mirror() {
  local m
  m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | grep -v '^ *#' \
        | grep -o -E 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n 1 | tr -d ' ')
  echo "${m:-http://deb.debian.org/debian}"
}

# A root file system as a tarball: suite $1, packages $2 (comma separated). Cached by both,
# so a second run on the same machine does not download again.
root_tarball() {
  local suite=$1 pkgs=$2 key tar
  key=$(printf '%s %s' "$suite" "$pkgs" | sha256sum | cut -c1-16)
  tar=$cache/$suite-$key.tar
  mkdir -p "$cache"
  if [ ! -s "$tar" ]; then
    mmdebstrap --variant=minbase --format=tar --include="$pkgs" "$suite" "$tar.part" "$(mirror)" > "$cache/$suite-$key.log" 2>&1 \
      || { tail -n 20 "$cache/$suite-$key.log" >&2; return 1; }
    mv "$tar.part" "$tar"
  fi
  echo "$tar"
}

# The packages a .deb depends on, comma separated (the root is built with them).
deb_depends() {
  dpkg-deb -f "$1" Depends | tr ',' '\n' | sed 's/(.*//; s/|.*//; s/ //g' | grep -v '^$' | paste -sd,
}

# Unpacks tarball $1 into a fresh folder ($ct_dir) named after the test.
unpack_root() {
  ct_dir=$(mktemp -d "${TMPDIR:-/tmp}/relayban-ct.XXXXXX")
  tar -xf "$1" -C "$ct_dir"
  echo "relayban-ct" > "$ct_dir/etc/hostname"
}
# Runs a command in the root before it boots (no services start: policy-rc.d).
in_root() {
  printf '#!/bin/sh\nexit 101\n' > "$ct_dir/usr/sbin/policy-rc.d"; chmod +x "$ct_dir/usr/sbin/policy-rc.d"
  local rc=0
  chroot "$ct_dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@" || rc=$?
  rm -f "$ct_dir/usr/sbin/policy-rc.d"
  return $rc
}

# Two namespaces joined by a veth pair: $srv_ns (the mail host: 10.77.0.1, fd77::1) and
# $atk_ns (the clients: 10.77.0.2-.40 and .100, fd77::2-::9, each client binds its own).
net_up() {
  srv_ns=rbsrv$$; atk_ns=rbatk$$
  ip netns add "$srv_ns"; ip netns add "$atk_ns"
  ip link add rbs$$ type veth peer name rba$$
  ip link set rbs$$ netns "$srv_ns"; ip link set rba$$ netns "$atk_ns"
  ip -n "$srv_ns" link set lo up; ip -n "$atk_ns" link set lo up
  ip netns exec "$srv_ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  ip netns exec "$atk_ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  # A new namespace starts with the kernel's 10 datagrams per Unix socket queue; systemd
  # raises it to 512 on a host, but cannot inside nspawn (/proc/sys is read-only there). At
  # 10, journald misses lines it forwards to rsyslog in a burst ("Forwarding to syslog missed
  # 34 messages"): a Debian 13 run lost 6 of the stolen account's 25 relay lines from mail.log.
  ip netns exec "$srv_ns" sysctl -qw net.unix.max_dgram_qlen=512
  ip -n "$srv_ns" link set rbs$$ name eth0; ip -n "$srv_ns" addr add 10.77.0.1/24 dev eth0
  ip -n "$srv_ns" addr add fd77::1/64 dev eth0 nodad
  local i
  for i in $(seq 2 40) 100; do ip -n "$atk_ns" addr add 10.77.0.$i/24 dev rba$$; done
  for i in $(seq 2 9); do ip -n "$atk_ns" addr add fd77::$i/64 dev rba$$ nodad; done
  ip -n "$srv_ns" link set eth0 up; ip -n "$atk_ns" link set rba$$ up
}
net_down() {
  [ -n "${srv_ns:-}" ] && ip netns del "$srv_ns" 2>/dev/null
  [ -n "${atk_ns:-}" ] && ip netns del "$atk_ns" 2>/dev/null
  srv_ns=; atk_ns=
}
# From the clients' namespace.
atk() { ip netns exec "$atk_ns" "$@"; }

# Boots the root with systemd inside $srv_ns; waits until systemd says it is up.
boot() {
  systemd-nspawn -D "$ct_dir" --boot --register=no --keep-unit --capability=CAP_NET_ADMIN \
    --network-namespace-path=/run/netns/"$srv_ns" --quiet --console=pipe </dev/null >"$ct_dir.console" 2>&1 &
  ct_nspawn=$!
  limit=60 until_true leader_known || { echo "the container did not start" >&2; tail "$ct_dir.console" >&2; return 1; }
  limit=120 until_true booted
  local state; state=$(ct systemctl is-system-running 2>/dev/null)
  echo "   container up: systemd says '$state' $(ct systemctl --failed --no-legend --plain | awk '{print $1}' | paste -sd' ')"
}
booted() { case $(ct systemctl is-system-running --wait 2>/dev/null) in running|degraded) return 0 ;; esac; return 1; }
# The container's init: the child of systemd-nspawn in a PID namespace of its own (nspawn's
# short-lived outer child, seen first, is still in ours).
leader_known() {
  local p own; own=$(readlink /proc/self/ns/pid)
  ct_leader=
  for p in $(pgrep -P "$ct_nspawn"); do
    if [ "$(readlink "/proc/$p/ns/pid" 2>/dev/null)" != "$own" ] && [ -n "$(readlink "/proc/$p/ns/pid" 2>/dev/null)" ]; then
      ct_leader=$p
      return 0
    fi
  done
  return 1
}
# Runs a command inside the booted container.
ct() { nsenter -t "$ct_leader" -a /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
shutdown_ct() {
  [ -n "${ct_nspawn:-}" ] || return 0
  ct systemctl poweroff >/dev/null 2>&1 || kill -TERM "$ct_nspawn" 2>/dev/null
  limit=60 until_true bash -c "! kill -0 $ct_nspawn" || kill -9 "$ct_nspawn" 2>/dev/null
  wait "$ct_nspawn" 2>/dev/null
  ct_nspawn=
}
cleanup_ct() {
  [ -n "${fleet_pids:-}" ] && kill $fleet_pids 2>/dev/null
  if [ -n "${RELAYBAN_SYSTEM_KEEP:-}" ] && [ -n "${ct_nspawn:-}" ]; then
    echo "kept: nsenter -t $ct_leader -a bash   (container $ct_dir, namespaces $srv_ns $atk_ns)"
    srv_ns=; atk_ns=
    return 0
  fi
  shutdown_ct
  [ -n "${ct_dir:-}" ] && rm -rf "$ct_dir" "$ct_dir.console"
  ct_dir=
}

# relayban inside the container.
rb() { ct relayban "$@"; }
# The addresses and networks in the kernel's ban sets, sorted, one per line.
kernel_bans() {
  ct nft -j list table inet relayban | python3 -c '
import json, sys
out = set()
for item in json.load(sys.stdin)["nftables"]:
    s = item.get("set")
    if not s or s["name"] not in ("ban4", "ban6", "ban4_net", "ban6_net"): continue
    for e in s.get("elem", []):
        v = e["elem"]["val"] if isinstance(e, dict) and "elem" in e else e
        if isinstance(v, dict) and "prefix" in v: v = "%s/%d" % (v["prefix"]["addr"], v["prefix"]["len"])
        elif isinstance(v, dict) and "range" in v: v = "%s-%s" % tuple(v["range"])
        out.add(str(v))
print("\n".join(sorted(out)))'
}
# True when the kernel holds exactly the addresses given (sorted compare).
kernel_holds_exactly() { [ "$(kernel_bans)" = "$(printf '%s\n' "$@" | sort)" ]; }
# True when a TCP connection from source $1 to the mail host's port $2 gets the banner.
reaches() { atk python3 "$here/mailclient.py" banner "$1" "$2"; }
not() { ! "$@"; }
# On a failure: what the mail host logged about each address given, and what relayban saw.
diagnose() {
  local a
  for a in "$@"; do
    a=${a%/64}; a=${a%::}
    echo "   --- log lines naming $a"
    ct sh -c "cat ${mail_log:-/var/log/mail.log} 2>/dev/null || journalctl --no-pager -o short-iso" | grep -F "$a" | tail -n 12 | cut -c1-260 | sed 's/^/   /'
  done
  echo "   --- lines journald could not forward to rsyslog (lost before mail.log)"
  ct journalctl -u systemd-journald --no-pager -o cat 2>/dev/null | grep -F 'missed' | sed 's/^/   /'
  echo "   --- relayban status"
  rb status | head -n 30 | sed 's/^/   /'
}

# One SMTP session from source address $1 (swaks options follow). Bounded from outside too:
# a ban that lands in the middle of a TLS session drops the server's replies, and swaks's own
# --timeout does not cover a TLS read (a CI run hung there until killed).
smtp() {
  local src=$1; shift
  local server=10.77.0.1; case $src in *:*) server=fd77::1 ;; esac
  atk timeout -k 5 60 swaks --server "$server" --local-interface "$src" --timeout 30 ${SWAKS_OPTS:-} --hide-all "$@" >/dev/null 2>&1
}
smtp_auth_fail() {  # smtp_auth_fail SRC USER TIMES
  local i
  for i in $(seq "$3"); do smtp "$1" --auth PLAIN --auth-user "$2" --auth-password "wrong-$i" --quit-after AUTH -t "$2@example.org"; done
}

# True when the kernel holds every address of $expected (maybe more).
holds_all() { local b; b=$(kernel_bans); for a in $expected; do grep -qxF "$a" <<<"$b" || return 1; done; }

# Reload and restart keep the bans and the daemon answers; $expected are the bans.
lifecycle_checks() {
  before=$(kernel_bans)
  ct systemctl reload relayban
  check "systemctl reload keeps the daemon running" until_true rb status
  check "and keeps the bans" test "$(kernel_bans)" = "$before"
  ct systemctl restart relayban
  check "systemctl restart comes back active" until_true ct systemctl is-active relayban
  check "and keeps the bans" test "$(kernel_bans)" = "$before"
  n=$(rb list --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["bans"] if isinstance(d, dict) else d))')
  check "relayban list shows the $(echo $expected | wc -w) bans after the restart" test "$n" = "$(echo $expected | wc -w)"
}

# What operations see under the hardened unit: the decision log (LogsDirectory, rotated),
# the metrics textfile (ReadWritePaths), the digest, and its service mailing through the
# host's own MTA. $expected are the bans.
operations_checks() {
  local log=/var/log/relayban/decisions.log records
  records=$(ct cat "$log")
  if python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
bans = {r["target"] for r in recs if r["action"] == "ban"}
assert all(a in bans for a in sys.argv[2:]), ("missing", bans)
assert all(r["evidence"] for r in recs if r["action"] == "ban" and r["origin"] == "rule"), "a ban without evidence"
' <(printf '%s\n' "$records") $expected; then ok "the decision log records a ban of every attacker, each with its evidence"
  else fail "the decision log (expected $expected): $(tail -n 3 <<<"$records")"; fi
  check "the metrics textfile is written (0644) under the hardened unit" until_true ct sh -c \
    'test "$(stat -c %a /var/lib/prometheus/node-exporter/relayban.prom)" = 644 && grep -q "^relayban_degraded 0" /var/lib/prometheus/node-exporter/relayban.prom'
  # The daemon was restarted (lifecycle_checks): its counters started again at 0, as a
  # Prometheus counter does; the bans in force are a gauge and came back with it.
  local want; want=$(echo $expected | wc -w)
  check "and counts the bans in force (at least $want)" until_true ct sh -c \
    "awk '/^relayban_active_bans/ {s += \$NF} END {exit !(s >= $want)}' /var/lib/prometheus/node-exporter/relayban.prom"
  ct mv "$log" "$log.1"
  check "after logrotate moves the decision log, a new one is started" until_true ct test -e "$log"
  rb unban 192.0.2.123 >/dev/null
  check "and the next decision is written there" until_true ct grep -q 192.0.2.123 "$log"
  local digest; digest=$(rb digest --since 2h)
  if grep -q "^$(echo $expected | wc -w) bans\|^[0-9]* bans" <<<"$digest" && grep -A2 'very likely stolen' <<<"$digest" | grep -q ' test '; then
    ok "relayban digest summarises both generations: the bans and the stolen account"
  else fail "relayban digest: $digest"; fi
  check "relayban-digest.service runs" ct systemctl start relayban-digest.service
  if limit=60 until_true ct sh -c 'grep -rqs "^Subject: relayban digest for" /var/mail/bob /home/bob/Maildir'; then
    ok "and its mail reaches bob through the local MTA"
  else
    fail "and its mail reaches bob through the local MTA"
    ct journalctl -u relayban-digest --no-pager | tail -n 5
    ct sh -c 'tail -n 5 /var/log/exim4/mainlog /var/log/mail.log 2>/dev/null; ls -la /var/mail'
  fi
}

# The watchdog never fired, no error was logged, and purge leaves no table behind.
# Fleet mode under the packaged, hardened unit: a Redis (the host's redis-server) and a second
# relayban ("mx2": this checkout's build, its own nftables table) in the clients' namespace at
# 10.77.0.200, the container as mx1. Without the unit drop-in the hardening keeps relayban
# from Redis; with it, bans go both ways. Everything is undone at the end.
fleet_checks() {
  local root w bin redis mx2 acl
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd); w=$ct_dir.fleet; bin=$root/build/relayban
  if ! command -v redis-server >/dev/null || [ ! -x "$bin" ]; then fail "fleet checks need redis-server and build/relayban"; return; fi
  mkdir -p "$w/state" "$w/log"; : > "$w/log/mail.log"
  ip -n "$atk_ns" addr add 10.77.0.200/24 dev rba$$
  acl=$(sed -n "s/^fleet_acl='\(.*\)'$/\1/p" "$root/tests/integration/fleet_lib.sh")
  cat > "$w/redis.conf" <<CONF
bind 10.77.0.200
port 6390
save ""
appendonly no
dir $w
logfile $w/redis.log
user default on >adminpw ~* &* +@all
user mx1 on >pw-mx1 $acl
user mx2 on >pw-mx2 $acl
CONF
  # Not through atk (a function: $! would be its subshell, and killing that leaves the server).
  ip netns exec "$atk_ns" redis-server "$w/redis.conf" >/dev/null 2>&1 & redis=$!; fleet_pids="$redis"
  openssl rand -hex 32 > "$w/fleet.key"; chmod 600 "$w/fleet.key"
  echo pw-mx2 > "$w/mx2.password"; chmod 600 "$w/mx2.password"
  cat > "$w/mx2.yaml" <<YAML
state_dir: $w/state
control_socket: $w/control.sock
fleet: {redis: "10.77.0.200:6390", name: prod, host: mx2, user: mx2, password_file: $w/mx2.password, key_file: $w/fleet.key}
jails: {}
YAML
  ip netns exec "$atk_ns" "$bin" daemon -c "$w/mx2.yaml" > "$w/mx2.log" 2>&1 & mx2=$!; fleet_pids="$redis $mx2"
  cp "$w/fleet.key" "$ct_dir/etc/relayban/fleet.key"; echo pw-mx1 > "$ct_dir/etc/relayban/fleet.password"
  ct chmod 600 /etc/relayban/fleet.key /etc/relayban/fleet.password
  cp "$ct_dir/etc/relayban/relayban.yaml" "$w/relayban.yaml.before"
  printf '\nfleet: {redis: "10.77.0.200:6390", name: prod, host: mx1, user: mx1, password_file: /etc/relayban/fleet.password, key_file: /etc/relayban/fleet.key}\n' \
    >> "$ct_dir/etc/relayban/relayban.yaml"
  fleet_state() { rb status --json | python3 -c 'import json,sys; f=json.load(sys.stdin)["fleet"]; print("connected" if f["connected"] else f["last_error"])'; }
  fleet_refused() { fleet_state | grep -q 'socket: '; }
  ct systemctl restart relayban
  limit=30 until_true fleet_refused
  check "without the drop-in, the unit's hardening keeps relayban from Redis ($(fleet_state))" fleet_refused
  check "... and local protection runs on (relayban active)" ct systemctl is-active relayban
  mkdir -p "$ct_dir/etc/systemd/system/relayban.service.d"
  sed 's|^IPAddressAllow=.*|IPAddressAllow=10.77.0.200/32|' "$ct_dir/usr/share/doc/relayban/examples/fleet.conf" \
    > "$ct_dir/etc/systemd/system/relayban.service.d/fleet.conf"
  ct systemctl daemon-reload
  ct systemctl restart relayban
  fleet_connected() { [ "$(fleet_state)" = connected ]; }
  limit=30 until_true fleet_connected
  check "with the packaged fleet.conf drop-in, relayban connects to Redis as its ACL user" fleet_connected
  rb ban 198.51.100.99 --for 1h >/dev/null
  check "a ban on the container (mx1) reaches mx2's kernel" until_true atk nft get element inet relayban ban4 '{ 198.51.100.99 }'
  "$bin" ban 203.0.113.99 --for 1h -c "$w/mx2.yaml" >/dev/null
  check "a ban on mx2 reaches the container's kernel" until_true ct nft get element inet relayban ban4 '{ 203.0.113.99 }'
  check "... listed with origin fleet, from mx2" sh -c "nsenter -t $ct_leader -a relayban list | grep 203.0.113.99 | grep -q 'from mx2'"
  # Undo: the bans, the fleet, the drop-in.
  rb unban 203.0.113.99 >/dev/null; rb unban 198.51.100.99 >/dev/null
  cp "$w/relayban.yaml.before" "$ct_dir/etc/relayban/relayban.yaml"
  rm -rf "$ct_dir/etc/systemd/system/relayban.service.d"
  ct systemctl daemon-reload; ct systemctl restart relayban
  kill "$mx2" "$redis" 2>/dev/null; wait "$mx2" "$redis" 2>/dev/null; fleet_pids=
  atk nft delete table inet relayban 2>/dev/null
  rm -rf "$w"
}

final_checks() {
  restarts=$(ct systemctl show -p NRestarts --value relayban)
  watchdog_lines() { ct journalctl --no-pager | grep -i 'relayban.*watchdog'; }
  error_lines() { ct journalctl -u relayban --no-pager -p err | grep -v -e '^-- ' -e 'No entries'; }
  check "the watchdog never fired (NRestarts=$restarts, no watchdog line)" test "$restarts" = 0 -a -z "$(watchdog_lines)"
  errors=$(error_lines)
  if [ -z "$errors" ]; then ok "no relayban error in the journal"; else fail "relayban logged errors: $errors"; fi

  check "apt purge removes the package" ct apt-get purge -y -qq relayban
  check "and leaves no firewall table" not grep -q relayban <<<"$(ct nft list tables)"
}

# A root of Debian $1 with the relayban package ($deb) installed and the packages $2
# (comma separated) beside it; unpacked into $ct_dir, not booted yet.
prepare_root() {
  local pkgs="systemd-sysv,dbus,iproute2,nftables,procps,$2,$(deb_depends "$deb")" tar
  tar=$(root_tarball "$1" "$pkgs") || { fail "mmdebstrap builds a $1 root with $2"; return 1; }
  unpack_root "$tar"
  cp "$deb" "$ct_dir/tmp/relayban.deb"
  check "the package installs in a $1 root" in_root dpkg -i /tmp/relayban.deb
  # Metrics for node_exporter's textfile collector (the folder its package makes), and the
  # digest mailed to a local user.
  mkdir -p "$ct_dir/var/lib/prometheus/node-exporter"
  printf '\nmetrics: {every: 2s}\ndigest: {mail_to: [bob@example.org]}\n' >> "$ct_dir/etc/relayban/relayban.yaml"
  printf 'nameserver 127.0.0.1\n' > "$ct_dir/etc/resolv.conf"   # no DNS: outside mail is deferred
}
# Boots it in its own namespace; the mail services $2.. must come up and relayban must
# turn on exactly the jails $1 (enabled: auto).
boot_host() {
  local want=$1; shift
  net_up
  boot || { fail "the container boots"; return 1; }
  check "relayban.service is active (Type=notify)" until_true ct systemctl is-active relayban
  check "$* run" until_true ct systemctl is-active "$@"
  local jails
  jails=$(rb status --json | python3 -c 'import json,sys; print(" ".join(sorted(j["name"] for j in json.load(sys.stdin)["jails"] if j.get("enabled"))))')
  if [ "$jails" = "$want" ]; then ok "enabled: auto turns on exactly the jails $want"
  else fail "enabled: auto turns on exactly the jails $want (got: $jails)"; fi
}
# Waits until the kernel holds every address of $expected, then checks it holds no other.
ban_checks() {
  if limit=180 until_true holds_all; then ok "the attackers are banned in the kernel: $expected"
  else fail "the attackers are banned in the kernel (kernel holds: $(kernel_bans | paste -sd' '))"; diagnose $expected; fi
  local got; got=$(kernel_bans | paste -sd' ')
  if [ "$got" = "$(printf '%s\n' $expected | sort | paste -sd' ')" ]; then ok "nobody else is banned (the honest user and the injector are not)"
  else fail "exactly the attackers are banned (kernel holds: $got)"; fi
}

# The rule that banned address $1.
ban_rule() {
  rb list --json | python3 -c 'import json,sys; print(" ".join(b["rule"] for b in json.load(sys.stdin)["bans"] if b["target"] == sys.argv[1]))' "$1"
}
# 'test' (password 'test') relayed to 25 outside domains: a relay-flood verdict; bob is clean.
stolen_account_check() {
  local accounts; accounts=$(rb accounts --json)
  if python3 -c '
import json, sys
rows = {a["account"]: a for a in json.load(sys.stdin)["accounts"]}
sys.exit(0 if "relay-flood" in json.dumps(rows.get("test", {}).get("verdicts")) and not rows.get("bob", {}).get("verdicts") else 1)
' <<<"$accounts"; then ok "accounts: 'test' stolen (relay-flood), bob clean"
  else fail "accounts view: $(head -c 1500 <<<"$accounts")"; fi
}

# The SMTP-only scenario (one server, AUTH over SMTP): brute force, a spray of four accounts,
# brute force over IPv6, 'test' relaying to 25 outside domains, an honest user, and the
# injection function $1 (from 10.77.0.7, under every limit); then every check.
smtp_scenario() {
  local inject=$1
  echo "# attacks from the second namespace (in parallel)"
  local pids=()
  smtp_auth_fail 10.77.0.2 alice 6 &                                             # brute force
  pids+=($!)
  (for u in alice bob carol dave; do smtp_auth_fail 10.77.0.3 "$u" 1; done) &   # password spray
  pids+=($!)
  smtp_auth_fail fd77::2 erin 6 &                                                # over IPv6
  pids+=($!)
  local rcpts; rcpts=$(for i in $(seq -w 1 25); do printf 'sales@shop%s.example,' "$i"; done)
  smtp 10.77.0.6 --auth PLAIN --auth-user test --auth-password test -f test@example.org -t "${rcpts%,}" &
  pids+=($!)
  smtp 10.77.0.100 --auth LOGIN --auth-user bob --auth-password bob-Secret-77 -f bob@example.org \
    -t alice@example.org,orders@customer.example &                              # an honest user
  pids+=($!)
  "$inject" 10.77.0.100 &
  pids+=($!)
  wait "${pids[@]}"

  expected="10.77.0.2 10.77.0.3 10.77.0.6 fd77::/64"
  ban_checks
  local rule3; rule3=$(ban_rule 10.77.0.3)
  check "the spray is banned as password-spray (got '$rule3')" test "$rule3" = password-spray
  check "a banned address gets no answer" not reaches 10.77.0.2 25
  check "the honest user still connects" reaches 10.77.0.100 25
  check "the injector (under every limit) still connects" reaches 10.77.0.7 25
  stolen_account_check
  lifecycle_checks
  operations_checks
  final_checks
}

# The mail host's users: Unix accounts in the root; 'test' has the password 'test'.
users="alice bob carol dave erin test"
password_of() { if [ "$1" = test ]; then echo test; else echo "$1-Secret-77"; fi; }
add_users() { local u; for u in $users; do in_root useradd -m "$u"; done; }
