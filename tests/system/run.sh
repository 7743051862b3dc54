#!/usr/bin/env bash
# The system tests: Debian's real mail servers with the relayban package, each booted under
# systemd (systemd-nspawn) in a network namespace of its own and attacked from a second one.
#   Debian 12: Postfix + Dovecot (rsyslog, then the journal), Exim
#   Debian 13: the package built from source there, Postfix + Dovecot 2.4, OpenSMTPD 7.6
#   (the journal only). Debian 12's OpenSMTPD 6.8 cannot do TLS with OpenSSL 3, and it offers
#   AUTH only after STARTTLS: nobody can log in there, so there is nothing to attack.
# Roots come from the host's Debian mirror (mmdebstrap) and are cached in
# /var/cache/relayban-system-test. Nothing touches the host's network or firewall.
# usage: tests/system/run.sh   (as root; after packaging/build-deb.sh, or it builds the .deb)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export DEBIAN_FRONTEND=noninteractive
# swaks reaches IPv6 servers only with IO::Socket::INET6 (a Recommends, which is not installed
# here); TLS (OpenSMTPD offers AUTH after STARTTLS only) needs Net::SSLeay.
need="mmdebstrap systemd-container swaks libio-socket-inet6-perl libnet-ssleay-perl iproute2 python3 openssl redis-server"
missing=
for p in $need; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"; done
if [ -n "$missing" ]; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null || { echo "cannot install$missing"; exit 1; }
fi
deb=$(ls "$root"/build/relayban_*.deb 2>/dev/null | tail -n 1)
[ -n "$deb" ] || { "$root/packaging/build-deb.sh" >/dev/null && deb=$(ls "$root"/build/relayban_*.deb | tail -n 1); } || exit 1

results=()
failed=0
run() {  # run NAME COMMAND...: one system test, its time and its outcome
  local name=$1 start rc; shift
  start=$(date +%s)
  "$@"; rc=$?
  results+=("$(printf '%-40s %s  %4ss' "$name" "$([ $rc -eq 0 ] && echo passed || echo FAILED)" $(( $(date +%s) - start )))")
  [ $rc -eq 0 ] || failed=$((failed + 1))
}
run "Debian 12: Postfix + Dovecot" "$here/postfix_dovecot.sh" "$deb" bookworm
run "Debian 12: Exim" "$here/exim.sh" "$deb" bookworm
out=$root/build/trixie
if deb13=$("$here/build_in_root.sh" trixie "$out"); then
  results+=("$(printf '%-40s %s' "Debian 13: the package builds from source" passed)")
  run "Debian 13: Postfix + Dovecot 2.4" "$here/postfix_dovecot.sh" "$deb13" trixie
  run "Debian 13: OpenSMTPD 7.6" "$here/opensmtpd.sh" "$deb13" trixie
else
  results+=("Debian 13: the package builds from source   FAILED (see $out/build-trixie.log)")
  failed=$((failed + 1))
fi
echo
echo "== system tests"
printf '%s\n' "${results[@]}"
[ "$failed" -eq 0 ]
