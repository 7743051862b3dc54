#!/bin/sh
# Runs a test binary inside a private network namespace it creates, so nothing it does can
# reach the host's ruleset; with --mount first, in a private mount namespace too (for tmpfs
# mounts). Exits 77 (CTest's skip code) where namespaces are unavailable. Listing the tests
# (for ctest discovery) needs no namespace.
mount=
if [ "${1:-}" = "--mount" ]; then mount="--mount --propagation private"; shift; fi
for a in "$@"; do
  case "$a" in --list-test-names-only|--list-tests|--list-reporters) exec "$@" ;; esac
done
if [ "$(id -u)" -eq 0 ]; then
  set -- unshare --net $mount -- "$@"
else
  set -- unshare --map-root-user --net $mount -- "$@"
fi
if ! unshare --net true 2>/dev/null && ! unshare --map-root-user --net true 2>/dev/null; then
  echo "SKIP: cannot create a network namespace here (unshare --net failed)" >&2
  exit 77
fi
RELAYBAN_TEST_NETNS=1 exec "$@"
