#!/bin/sh
# The demo in one command: installs what is missing, builds, and replays the bundled qmail
# story (account "test" relaying spam to hundreds of outside domains from 82.128.32.42,
# later from a second address) and a Postfix stolen-account story through `relayban check`.
# Offline: no firewall, nothing on this host changes.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/packaging/install-deps.sh"
"$root/packaging/build.sh" >/dev/null
bin=${BUILD_DIR:-$root/build}/relayban
config=$root/etc/relayban/relayban.yaml
echo "== relayban config-test"
"$bin" config-test -c "$config"
echo
echo "== The qmail story: relayban check $root/tests/data/qmail-story*.log"
"$bin" check -c "$config" "$root/tests/data/qmail-story.log" "$root/tests/data/qmail-story-syslog.log"
echo
echo "== A stolen Postfix submission account: relayban check -j postfix"
"$bin" check -c "$config" -j postfix "$root/tests/data/postfix-stolen-account.log"
