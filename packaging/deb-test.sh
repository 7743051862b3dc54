#!/usr/bin/env bash
# Builds the .deb, installs it, checks what it installed, then removes and purges it.
# The service is never started here (policy-rc.d): on the host it would create its
# firewall table in the host's ruleset. usage: packaging/deb-test.sh   (as root)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else failed=$((failed + 1)); echo "FAILED - $what"; fi; }

"$root/packaging/build-deb.sh" || { echo "0 passed, 1 failed"; exit 1; }
deb=$(ls "$root"/build/relayban_*.deb | tail -n 1)
policy=/usr/sbin/policy-rc.d
had_policy=; [ -e $policy ] && had_policy=1 && cp $policy $policy.relayban-test
printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy
trap 'if [ -n "$had_policy" ]; then mv $policy.relayban-test $policy; else rm -f $policy; fi' EXIT

export DEBIAN_FRONTEND=noninteractive
check "lintian reports no errors" lintian --fail-on error "$deb"
check "dpkg installs the package" dpkg -i "$deb"
check "relayban --version" /usr/sbin/relayban --version
check "config-test passes on the installed configuration" /usr/sbin/relayban config-test
check "the shipped jails and filters are conffiles" bash -c "dpkg-query --showformat='\${Conffiles}' -W relayban | grep -q /etc/relayban/jails.d/qmail.yaml"
out=$(/usr/sbin/relayban check /usr/share/relayban/samples/qmail-story.log /usr/share/relayban/samples/qmail-story-syslog.log 2>&1)
if echo "$out" | grep -q "ban 82.128.32.42" && echo "$out" | grep -q "relay-flood"; then ok "check on the bundled sample bans the spammer"; else failed=$((failed + 1)); echo "FAILED - check on the bundled sample: $out"; fi
check "man pages relayban(8) and relayban.yaml(5)" test -e /usr/share/man/man8/relayban.8.gz -a -e /usr/share/man/man5/relayban.yaml.5.gz
check "bash completion" test -e /usr/share/bash-completion/completions/relayban
check "lock-account hook examples" test -e /usr/share/doc/relayban/examples/lock-account-vpopmail -a -e /usr/share/doc/relayban/examples/lock-account-postfix
check "the unit is installed and enabled" test -e /lib/systemd/system/relayban.service -a -L /etc/systemd/system/multi-user.target.wants/relayban.service
check "the digest timer is installed and off" bash -c "test -e /lib/systemd/system/relayban-digest.timer -a -e /lib/systemd/system/relayban-digest.service && ! test -e /etc/systemd/system/timers.target.wants/relayban-digest.timer"
check "logrotate handles the decision log (a conffile)" bash -c "grep -q /var/log/relayban/decisions.log /etc/logrotate.d/relayban && dpkg-query --showformat='\${Conffiles}' -W relayban | grep -q /etc/logrotate.d/relayban"
if command -v logrotate >/dev/null; then
  check "logrotate accepts it" logrotate -d /etc/logrotate.d/relayban
fi
check "the Grafana dashboard and alerting rules" test -s /usr/share/relayban/monitoring/relayban-dashboard.json -a -s /usr/share/relayban/monitoring/relayban-alerts.yml
check "the metrics-over-HTTP drop-in example" test -e /usr/share/doc/relayban/examples/metrics-http.conf
check "the fleet drop-in example" test -e /usr/share/doc/relayban/examples/fleet.conf
if command -v systemd-analyze >/dev/null; then
  check "systemd-analyze verify passes" bash -c "systemd-analyze verify /lib/systemd/system/relayban.service 2>&1 | (! grep -v -e 'not executable' -e 'man ' -e '^$' .)"
  check "and on the digest's service and timer" bash -c "systemd-analyze verify /lib/systemd/system/relayban-digest.service /lib/systemd/system/relayban-digest.timer 2>&1 | (! grep -v -e 'not executable' -e 'man ' -e '^$' .)"
  score=$(systemd-analyze security --offline=true /lib/systemd/system/relayban.service 2>/dev/null | tail -n 1)
  echo "   systemd-analyze security: $score"
fi
check "dpkg removes it" dpkg -r relayban
check "removal keeps the configuration" test -e /etc/relayban/relayban.yaml
check "and removes the binary" test ! -e /usr/sbin/relayban
mkdir -p /var/lib/relayban /var/log/relayban && touch /var/lib/relayban/state.db /var/log/relayban/decisions.log
check "dpkg purges it" dpkg -P relayban
check "purge removes the configuration" test ! -e /etc/relayban
check "purge removes the state and the decision log" test ! -e /var/lib/relayban -a ! -e /var/log/relayban
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
