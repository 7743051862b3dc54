# Sourced first by every integration script: refuses to run anywhere but in a private network
# namespace (netns_run.sh makes one), so nothing a test does can reach the host's ruleset.
[ -n "${RELAYBAN_TEST_NETNS:-}" ] || { echo "refusing to run outside a private network namespace"; exit 1; }
if [ "$(stat -L -c %i /proc/self/ns/net)" = "$(stat -L -c %i /proc/1/ns/net 2>/dev/null)" ]; then
  echo "refusing: this is the host's network namespace"; exit 1
fi
