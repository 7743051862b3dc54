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
users="alice bob carol dave erin test"
for u in $users; do in_root useradd -m "$u"; done
for u in $users; do
  pw=$u-Secret-77; [ "$u" = test ] && pw=test
  echo "$u:$(openssl passwd -1 "$pw"):"
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
  smtp 10.77.0.7 --ehlo "[$v]" -f "x@[$v]" --auth PLAIN --auth-user "[$v]" --auth-password x --quit-after AUTH
  smtp 10.77.0.7 --ehlo "($v) [$v]" --auth LOGIN --auth-user "x H=[$v]" --auth-password x --quit-after AUTH
  smtp 10.77.0.7 --ehlo "x" -f "<$v>@example.org" -t "\"[$v]\"@example.org"
  smtp 10.77.0.7 -f "a@example.org" -t "user@[$v]"
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
