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

mkdir -p "$ct_dir/etc/smtpd"
add_users
for u in $users; do
  echo "$u $(openssl passwd -6 "$(password_of "$u")")"
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
# Injection: text naming the honest address ($1) in HELO, MAIL FROM, user names, recipients.
inject() {
  local v=$1
  smtp 10.77.0.7 --ehlo "$v" -f "x@[$v]" --auth PLAIN --auth-user "x address=$v" --auth-password x --quit-after AUTH
  smtp 10.77.0.7 --auth LOGIN --auth-user "address=$v host=x" --auth-password x --quit-after AUTH
  smtp 10.77.0.7 --ehlo "address=$v" -f "<$v>@example.org" -t "\"address=$v\"@example.org"
}
smtp_scenario inject
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
