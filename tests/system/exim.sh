#!/usr/bin/env bash
# Debian's own Exim 4 (the "internet" configuration, its plain_server/login_server
# authenticators) with the relayban package, booted under systemd in a container of its own
# network namespace and attacked from a second namespace with swaks.
# usage: tests/system/exim.sh RELAYBAN.deb [SUITE]   (as root; SUITE: bookworm)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
deb=$1; suite=${2:-bookworm}
mail_log=/var/log/exim4/mainlog
trap 'cleanup_ct; net_down' EXIT
echo "# Exim on Debian $suite"
prepare_root "$suite" exim4-daemon-light,openssl || exit 1

# The mail host: example.org, users with passwords in /etc/exim4/passwd; 'test' has 'test'.
add_users
for u in $users; do
  echo "$u:$(openssl passwd -1 "$(password_of "$u")"):"
done > "$ct_dir/etc/exim4/passwd"
in_root chown root:Debian-exim /etc/exim4/passwd; chmod 640 "$ct_dir/etc/exim4/passwd"
cat > "$ct_dir/etc/exim4/update-exim4.conf.conf" <<'EOF'
dc_eximconfig_configtype='internet'
dc_other_hostnames='example.org'
dc_local_interfaces=''
dc_readhost=''
dc_relay_domains=''
dc_minimaldns='false'
dc_relay_nets=''
dc_smarthost=''
CFILEMODE='644'
dc_use_split_config='false'
dc_hide_mailname=''
dc_mailname_in_oh='true'
dc_localdelivery='mail_spool'
EOF
echo mail.example.org > "$ct_dir/etc/mailname"
echo 'AUTH_SERVER_ALLOW_NOTLS_PASSWORDS = 1' > "$ct_dir/etc/exim4/exim4.conf.localmacros"
# The template's PLAIN and LOGIN server authenticators, uncommented as its comments say.
python3 - "$ct_dir/etc/exim4/exim4.conf.template" <<'EOF'
import sys
path = sys.argv[1]
lines = open(path).read().split("\n")
out, on = [], False
for line in lines:
    if line in ("# plain_server:", "# login_server:"):
        on = True
    if on and line.startswith("#"):
        line = line[2:] if line.startswith("# ") else line[1:]
        if line.strip() == ".endif":
            on = False
    out.append(line)
open(path, "w").write("\n".join(out))
EOF
check "update-exim4.conf accepts the configuration" in_root update-exim4.conf

boot_host exim exim4 || exit 1
check "Exim listens" until_true reaches 10.77.0.100 25

# Injection: text naming the honest address ($1) in HELO, MAIL FROM, user names, recipients.
inject() {
  local v=$1
  smtp 10.77.0.7 --ehlo "[$v]" -f "x@[$v]" --auth PLAIN --auth-user "[$v]" --auth-password x --quit-after AUTH
  smtp 10.77.0.7 --ehlo "($v) [$v]" --auth LOGIN --auth-user "x H=[$v]" --auth-password x --quit-after AUTH
  smtp 10.77.0.7 --ehlo "x" -f "<$v>@example.org" -t "\"[$v]\"@example.org"
  smtp 10.77.0.7 -f "a@example.org" -t "user@[$v]"
}
smtp_scenario inject
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
