#!/usr/bin/env bash
# Debian's own Postfix (SASL through Dovecot) and Dovecot IMAP/POP3, with the relayban
# package, booted under systemd in a container of their own network namespace and attacked
# from a second namespace with real clients (swaks, imaplib, poplib).
# usage: tests/system/postfix_dovecot.sh RELAYBAN.deb [SUITE]   (as root; SUITE: bookworm)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
deb=$1; suite=${2:-bookworm}
trap 'cleanup_ct; net_down' EXIT
echo "# Postfix + Dovecot on Debian $suite"

prepare_root "$suite" rsyslog,postfix,dovecot-imapd,dovecot-pop3d || exit 1

# The mail host: example.org, users with passwords; 'test' has the password 'test'.
add_users
for u in $users; do
  echo "$u:{PLAIN}$(password_of "$u")"
done > "$ct_dir/etc/dovecot/users"
in_root postconf -e myhostname=mail.example.org mydomain=example.org \
  'mydestination=example.org, localhost' inet_interfaces=all inet_protocols=all \
  'mynetworks=127.0.0.0/8 [::1]/128' smtpd_tls_security_level=none smtp_tls_security_level=none \
  smtpd_sasl_auth_enable=yes smtpd_sasl_type=dovecot smtpd_sasl_path=private/auth \
  'smtpd_relay_restrictions=permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination'
# Dovecot may start before Postfix has made its private folder (Debian 13 does).
in_root install -d -o postfix -g root -m 700 /var/spool/postfix/private
sed -i 's/^!include auth-system.conf.ext/#&/' "$ct_dir/etc/dovecot/conf.d/10-auth.conf"
if grep -q '^dovecot_config_version = 2\.4' "$ct_dir/etc/dovecot/dovecot.conf"; then
  # Dovecot 2.4 (Debian 13): its new configuration syntax.
  cat > "$ct_dir/etc/dovecot/conf.d/99-relayban-test.conf" <<'EOF'
auth_allow_cleartext = yes
auth_mechanisms = plain login
ssl = no
passdb passwd-file {
  passwd_file_path = /etc/dovecot/users
}
userdb passwd {
}
EOF
else
  cat > "$ct_dir/etc/dovecot/conf.d/99-relayban-test.conf" <<'EOF'
disable_plaintext_auth = no
auth_mechanisms = plain login
ssl = no
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u /etc/dovecot/users
}
userdb {
  driver = passwd
}
EOF
fi
cat >> "$ct_dir/etc/dovecot/conf.d/99-relayban-test.conf" <<'EOF'
auth_verbose = yes
service auth {
  unix_listener /var/spool/postfix/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
EOF

boot_host "dovecot postfix" postfix dovecot || exit 1
check "Postfix listens" until_true reaches 10.77.0.100 25

echo "# attacks from the second namespace (in parallel)"
pids=()
smtp_auth_fail 10.77.0.2 alice 6 &                                # SMTP AUTH brute force
pids+=($!)
(for u in alice bob carol dave erin test; do smtp_auth_fail 10.77.0.3 "$u" 1; done) &   # password spray
pids+=($!)
atk python3 "$here/mailclient.py" imap 10.77.0.4 bob wrong 6 >/dev/null &     # IMAP brute force
pids+=($!)
atk python3 "$here/mailclient.py" pop 10.77.0.5 carol wrong 6 >/dev/null &    # POP3 brute force
pids+=($!)
atk python3 "$here/mailclient.py" imap fd77::5 alice wrong 6 >/dev/null &     # IMAP over IPv6
pids+=($!)
rcpts=$(for i in $(seq -w 1 25); do printf 'sales@shop%s.example,' "$i"; done)
smtp 10.77.0.6 --auth PLAIN --auth-user test --auth-password test -f test@example.org -t "${rcpts%,}" &
pids+=($!)
(  # an honest user: logs in, sends to a colleague and one customer, reads mail
  smtp 10.77.0.100 --auth PLAIN --auth-user bob --auth-password bob-Secret-77 -f bob@example.org \
    -t alice@example.org,orders@customer.example
  atk python3 "$here/mailclient.py" imap 10.77.0.100 bob bob-Secret-77 2 >/dev/null
  atk python3 "$here/mailclient.py" pop 10.77.0.100 bob bob-Secret-77 1 >/dev/null
) &
pids+=($!)
(  # injection: text naming the honest address in HELO, MAIL FROM, user names, recipients
  v=10.77.0.100
  smtp 10.77.0.7 --ehlo "$v" -f "x@[$v]" --auth PLAIN --auth-user "rip=$v" --auth-password x --quit-after AUTH
  smtp 10.77.0.7 --ehlo "[$v]" --auth LOGIN --auth-user "bob@[$v]" --auth-password x --quit-after AUTH
  smtp 10.77.0.7 --auth PLAIN --auth-user "x, sasl_username=y client=unknown[$v]" --auth-password x --quit-after AUTH
  smtp 10.77.0.7 --ehlo "unknown[$v]" -f "<$v>@example.org" -t "\"rip=$v\"@example.org"
  smtp 10.77.0.7 -f "a@example.org" -t "user@[$v]"
  atk python3 "$here/mailclient.py" imap 10.77.0.7 "x rip=$v" wrong 1 >/dev/null
) &
pids+=($!)
wait "${pids[@]}"   # the attack clients only (the container runs in the background too)

expected="10.77.0.2 10.77.0.3 10.77.0.4 10.77.0.5 10.77.0.6 fd77::/64"
ban_checks
# Dovecot delays every further failure from an address (up to 15 s) and Postfix gives up
# after 10 s: from the third try on, Postfix logs "Connection lost to authentication
# server" without the user name. Those count as failures; the spray's names are lost.
rule3=$(ban_rule 10.77.0.3)
case $rule3 in password-spray|auth-bruteforce) ok "the spray is banned ($rule3; Dovecot's auth penalty hides the later user names)" ;;
  *) fail "the spray is banned by password-spray or auth-bruteforce (got '$rule3')" ;; esac
# auth_verbose: Dovecot's auth process logs each SASL request Postfix made, with the user
# name; the dovecot jail counts them (10.77.0.2 only ever spoke SMTP). Requests Postfix gave
# up on during Dovecot's auth penalty are dropped unlogged by Dovecot too.
sasl_seen=$(ct sh -c 'journalctl -u dovecot -o short-iso --no-pager > /run/dovecot-journal.log; relayban check -j dovecot --events /run/dovecot-journal.log' | grep -c 'ip=10.77.0.2 ')
check "Dovecot's auth-process lines for Postfix's SASL requests are counted ($sasl_seen for 10.77.0.2)" test "$sasl_seen" -ge 1
check "a banned address gets no answer" not reaches 10.77.0.2 25
check "a banned IPv6 /64 gets no answer" not reaches fd77::5 143
check "the honest user still connects" reaches 10.77.0.100 25
check "the injector (under every limit) still connects" reaches 10.77.0.7 25

accounts=$(rb accounts --json)
echo "$accounts" | python3 -c '
import json, sys
data = json.load(sys.stdin)
rows = {a["account"]: a for a in (data["accounts"] if isinstance(data, dict) else data)}
def verdicts(name): return [v.get("rule", v) if isinstance(v, dict) else v for v in rows.get(name, {}).get("verdicts", [])]
problems = []
if "relay-flood" not in json.dumps(verdicts("test")): problems.append("test has no relay-flood verdict: %s" % rows.get("test"))
for honest in ("alice", "bob", "carol", "dave"):
    if verdicts(honest): problems.append("%s has verdicts %s" % (honest, verdicts(honest)))
if not rows.get("alice", {}).get("targeted_by"): problems.append("alice is not shown as targeted: %s" % rows.get("alice"))
print("\n".join(problems))
sys.exit(1 if problems else 0)
' > /tmp/rb-accounts.$$ 2>&1
if [ $? -eq 0 ]; then ok "accounts: 'test' stolen (relay-flood), alice targeted, no honest account with a verdict"
else fail "accounts view: $(cat /tmp/rb-accounts.$$)"; echo "$accounts" | head -c 2000; fi
rm -f /tmp/rb-accounts.$$

lifecycle_checks
operations_checks

# The journal alone: without rsyslog the jails read the units' journal.
ct systemctl stop syslog.socket rsyslog.service
ct sh -c 'rm -f /var/log/mail.log /var/log/mail.err /var/log/mail.warn /var/log/syslog'
ct systemctl restart relayban
check "relayban restarts without mail.log" until_true ct systemctl is-active relayban
smtp_auth_fail 10.77.0.8 erin 6
atk python3 "$here/mailclient.py" imap 10.77.0.9 erin wrong 6 >/dev/null
expected="$expected 10.77.0.8 10.77.0.9"
if limit=120 until_true holds_all; then ok "through journald: SMTP and IMAP brute force banned"
else fail "through journald (kernel holds: $(kernel_bans | paste -sd' '))"; ct journalctl -u relayban --no-pager | tail -n 20; fi

# journald's rate limit drops what a unit logs past it, before any reader: a botnet's burst
# hides there. Postfix's unit gets a small limit (LogRateLimitBurst=, as an admin's drop-in
# would set it); a burst of connections goes past it, and once the window is over journald
# reports what it dropped. relayban shows it in status and metrics and warns in its log.
pf_unit=$(ct systemctl list-units --no-legend --plain 'postfix*.service' | awk '$3 == "active" && $4 == "running" {print $1; exit}')
ct mkdir -p "/etc/systemd/system/$pf_unit.d"
ct sh -c "printf '[Service]\nLogRateLimitIntervalSec=20s\nLogRateLimitBurst=5\n' > /etc/systemd/system/$pf_unit.d/90-test-rate.conf"
ct systemctl daemon-reload
ct systemctl restart "$pf_unit"
check "Postfix listens again ($pf_unit, at most 5 lines in 20 s)" until_true reaches 10.77.0.100 25
atk python3 "$here/mailclient.py" burst 10.77.0.100 25 60 >/dev/null  # some 120 lines at once
lost_shown() {
  reaches 10.77.0.100 25 >/dev/null 2>&1  # journald reports a loss with the unit's next line
  rb status --json | python3 -c '
import json, sys
lost = json.load(sys.stdin)["lost_before_reading"]["journald_rate_limit"]
sys.exit(0 if lost.get(sys.argv[1], 0) >= 1 else 1)' "$pf_unit"
}
if limit=90 until_true lost_shown; then ok "journald's rate limit on $pf_unit: the lines it dropped are in relayban status --json"
else fail "journald's rate limit on $pf_unit: $(rb status --json | head -c 600) / $(ct journalctl -u systemd-journald --no-pager -o cat | grep Suppressed | tail -n 2)"; fi
status_says_lost() { rb status | grep -q "^LOST before relayban could read them: .*[0-9] lines of $pf_unit (journald's rate limit)"; }
relayban_warned() { ct journalctl -u relayban --no-pager -o cat | grep -q "journald dropped [0-9]* lines of $pf_unit (its rate limit)"; }
check "... and in relayban status" status_says_lost
check "... and in the metrics" until_true ct sh -c "grep -q '^relayban_lost_before_reading_lines_total{reason=\"rate_limit\",unit=\"$pf_unit\"} [1-9]' /var/lib/prometheus/node-exporter/relayban.prom"
check "... and relayban's log warns" relayban_warned
ct rm -r "/etc/systemd/system/$pf_unit.d"
ct systemctl daemon-reload
ct systemctl restart "$pf_unit"

fleet_checks
final_checks
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
