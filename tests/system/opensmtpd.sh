#!/usr/bin/env bash
# Debian's own OpenSMTPD (AUTH after STARTTLS, a credentials table) with the relayban
# package, booted under systemd without rsyslog (the journal is the only log) in a container
# of its own network namespace and attacked from a second namespace with swaks.
# Debian 13's 7.6; Debian 12's 6.8 fails every TLS handshake under OpenSSL 3 (OpenSMTPD
# issue 1171), so no client can authenticate there.
# usage: tests/system/opensmtpd.sh RELAYBAN.deb [SUITE]   (as root; SUITE: trixie)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
deb=$1; suite=${2:-trixie}
mail_log=/nonexistent   # diagnose reads the journal
trap 'cleanup_ct; net_down' EXIT
echo "# OpenSMTPD on Debian $suite (journald only)"
prepare_root "$suite" opensmtpd,openssl,ca-certificates || exit 1

users="alice bob carol dave erin test"
mkdir -p "$ct_dir/etc/smtpd"
for u in $users; do in_root useradd -m "$u"; done
for u in $users; do
  pw=$u-Secret-77; [ "$u" = test ] && pw=test
  echo "$u $(openssl passwd -6 "$pw")"
done > "$ct_dir/etc/smtpd/creds"
chmod 640 "$ct_dir/etc/smtpd/creds"; in_root chgrp opensmtpd /etc/smtpd/creds 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mail.example.org \
  -keyout "$ct_dir/etc/smtpd/mail.key" -out "$ct_dir/etc/smtpd/mail.crt" >/dev/null 2>&1
chmod 600 "$ct_dir/etc/smtpd/mail.key"
echo mail.example.org > "$ct_dir/etc/mailname"
cat > "$ct_dir/etc/smtpd.conf" <<'EOF'
pki mail.example.org cert "/etc/smtpd/mail.crt"
pki mail.example.org key "/etc/smtpd/mail.key"
table aliases file:/etc/aliases
table creds file:/etc/smtpd/creds
listen on lo
listen on 10.77.0.1 tls pki mail.example.org auth <creds> hostname mail.example.org
listen on fd77::1 tls pki mail.example.org auth <creds> hostname mail.example.org
action "local" mbox alias <aliases>
action "relay" relay
match from any for domain "example.org" action "local"
match for local action "local"
match auth from any for any action "relay"
match from local for any action "relay"
EOF

boot_host opensmtpd opensmtpd || exit 1
check "smtpd -n accepts the configuration" ct smtpd -n -f /etc/smtpd.conf
check "OpenSMTPD listens" until_true reaches 10.77.0.100 25
logs=$(rb status --json | python3 -c 'import json,sys; print(" ".join(l["path"] for j in json.load(sys.stdin)["jails"] if j["name"]=="opensmtpd" for l in j["logs"]))')
check "the opensmtpd jail reads the journal ($logs)" grep -q journal <<<"$logs"

SWAKS_OPTS=--tls   # AUTH is offered after STARTTLS only
echo "# attacks from the second namespace (in parallel)"
pids=()
smtp_auth_fail 10.77.0.2 alice 6 &                                             # brute force
pids+=($!)
(for u in alice bob carol dave; do smtp_auth_fail 10.77.0.3 "$u" 1; done) &   # password spray
pids+=($!)
smtp_auth_fail fd77::2 erin 6 &                                                # over IPv6
pids+=($!)
rcpts=$(for i in $(seq -w 1 25); do printf 'sales@shop%s.example,' "$i"; done)
smtp 10.77.0.6 --auth PLAIN --auth-user test --auth-password test -f test@example.org -t "${rcpts%,}" &
pids+=($!)
smtp 10.77.0.100 --auth LOGIN --auth-user bob --auth-password bob-Secret-77 -f bob@example.org \
  -t alice@example.org,orders@customer.example &                              # an honest user
pids+=($!)
(  # injection: text naming the honest address in HELO, MAIL FROM, user names, recipients
  v=10.77.0.100
  smtp 10.77.0.7 --ehlo "$v" -f "x@[$v]" --auth PLAIN --auth-user "x address=$v" --auth-password x --quit-after AUTH
  smtp 10.77.0.7 --auth LOGIN --auth-user "address=$v host=x" --auth-password x --quit-after AUTH
  smtp 10.77.0.7 --ehlo "address=$v" -f "<$v>@example.org" -t "\"address=$v\"@example.org"
) &
pids+=($!)
wait "${pids[@]}"

expected="10.77.0.2 10.77.0.3 10.77.0.6 fd77::/64"
ban_checks
rule3=$(ban_rule 10.77.0.3)
check "the spray is banned as password-spray (got '$rule3')" test "$rule3" = password-spray
check "a banned address gets no answer" not reaches 10.77.0.2 25
check "the honest user still connects" reaches 10.77.0.100 25
check "the injector (under every limit) still connects" reaches 10.77.0.7 25
stolen_account_check

lifecycle_checks
final_checks
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
