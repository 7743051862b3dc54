#!/bin/sh
# The demo in one command: installs what is missing (apt-get), builds, then runs the daemon
# in a throwaway network namespace with a demo configuration, feeds it the qmail story
# (account "test" relaying spam to hundreds of outside domains from 82.128.32.42, later
# from 41.203.7.99) and a Postfix brute force as live log lines, and shows `relayban list`,
# `relayban accounts` and the nftables table. Nothing on the host changes.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/packaging/install-deps.sh"
"$root/packaging/build.sh" >/dev/null
bin=${BUILD_DIR:-$root/build}/relayban
if [ "$(id -u)" -eq 0 ]; then ns="unshare --net"; else ns="unshare --map-root-user --net"; fi
exec $ns -- sh -s "$bin" "$root" <<'DEMO'
set -eu
bin=$1; root=$2
work=$(mktemp -d /tmp/relayban-demo.XXXXXX)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/qmail" "$work/log" "$work/state"
: > "$work/qmail/current"; : > "$work/log/mail.log"
# The shipped filters, and jails as shipped but reading the demo's files.
cat > "$work/relayban.yaml" <<YAML
state_dir: $work/state
control_socket: $work/control.sock
decision_log: $work/decisions.log
ignore: [127.0.0.0/8, "::1"]
include: [$root/etc/relayban/filters.d/*.yaml]
jails:
  qmail:
    logs: [{path: $work/qmail/current, stamp: tai64n}, {path: $work/log/mail.log}]
    filters: [qmail-chkuser, vpopmail-vchkpw]
    rules:
      - {name: auth-bruteforce, key: ip, events: [auth_failure], threshold: 5, window: 10m, ban: 1h}
      - {name: relay-flood, key: account, events: [relay], distinct: recipient_domain, threshold: 20, window: 1h, ban: 1d}
  postfix:
    logs: [{path: $work/log/mail.log}]
    filters: [postfix]
    rules:
      - {name: auth-bruteforce, key: ip, events: [auth_failure], threshold: 5, window: 10m, ban: 1h}
      - {name: password-spray, key: ip, events: [auth_failure], distinct: account, threshold: 4, window: 1h, ban: 1d}
YAML
echo "== relayban daemon -c $work/relayban.yaml   (in a private network namespace)"
"$bin" daemon -c "$work/relayban.yaml" 2> "$work/daemon.log" &
pid=$!
i=0; until "$bin" status -c "$work/relayban.yaml" >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.05; done
echo "== feeding the qmail story ($(wc -l < "$root/tests/data/qmail-story.log") lines of qmail-smtpd/chkuser log), live"
while IFS= read -r line; do printf '%s\n' "$line" >> "$work/qmail/current"; done < "$root/tests/data/qmail-story.log"
echo "== feeding a Postfix password spray from 203.0.113.66"
for u in alice bob carol dave erin; do
  echo "$(date '+%b %e %H:%M:%S') mx1 postfix/submission/smtpd[21000]: warning: unknown[203.0.113.66]: SASL LOGIN authentication failed: authentication failure, sasl_username=$u@example.com" >> "$work/log/mail.log"
done
sleep 1
echo; echo "== relayban list"; "$bin" list -c "$work/relayban.yaml"
echo; echo "== relayban accounts"; "$bin" accounts -c "$work/relayban.yaml"
echo; echo "== nft list table inet relayban"; nft list table inet relayban
echo; echo "== relayban digest --since 1h   (what the decision log says; a daily mail with relayban-digest.timer)"
"$bin" digest --log "$work/decisions.log" --since 1h
echo; echo "== relayban metrics | grep relayban_bans_total   (Prometheus metrics)"
"$bin" metrics -c "$work/relayban.yaml" | grep '^relayban_bans_total'
echo; echo "== the daemon's log"; sed 's/^<[0-9]>//' "$work/daemon.log"
kill -TERM $pid; wait $pid || true
echo; echo "== stopped; the namespace, its firewall and the demo files are gone"
DEMO
