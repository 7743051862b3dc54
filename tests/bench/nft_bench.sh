#!/usr/bin/env bash
# 100,000 bans through relayban's netlink backend, and the per-ban cost side by side with
# one `nft add element` process per ban (what fail2ban's nftables action does), both in a
# private network namespace. usage: tests/bench/nft_bench.sh [BUILD_DIR] [BANS] [NFT_PROCS] [SLICE]
# (SLICE: bans per transaction, as the daemon's ledger sends them; default all in one)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
bans=${2:-100000}
procs=${3:-1000}
slice=${4:-$bans}
exec unshare --net -- env RELAYBAN_TEST_NETNS=1 bash -c '
  set -euo pipefail
  for i in 1 2 3; do "$0/tests/bench/nft_bench" "$1" "$3"; done
  nft add table inet f2b
  nft add set inet f2b ban4 "{ type ipv4_addr; flags interval,timeout; }"
  start=$(date +%s.%N)
  for i in $(seq 1 "$2"); do
    nft add element inet f2b ban4 "{ 10.$(( i / 65536 )).$(( i / 256 % 256 )).$(( i % 256 )) timeout 10m }"
  done
  end=$(date +%s.%N)
  python3 -c "
t = $end - $start
print(\"%d x nft add element (one process each): %.2f s (%.0f us/ban)\" % ($2, t, t * 1e6 / $2))"
' "$build" "$bans" "$procs" "$slice"
