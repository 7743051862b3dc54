#!/bin/sh
# Runs the whole test suite several times in a row while stress-ng loads every core, to show
# that no test depends on timing (run by hand; not part of ctest).
# usage: tests/stress_suite.sh [RUNS] [BUILD_DIR]     (as root; installs stress-ng if missing)
set -eu
runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${2:-$root/build}" 2>/dev/null && pwd || echo "${2:-$root/build}")   # absolute: the runs cd into it
if ! command -v stress-ng >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends stress-ng
fi
[ -x "$build/relayban" ] || "$root/packaging/build.sh"
stress-ng --cpu 4 --timeout 0 --quiet &
load=$!
trap 'kill $load 2>/dev/null; wait $load 2>/dev/null || true' EXIT
passed=0
i=1
while [ "$i" -le "$runs" ]; do
  start=$(date +%s)
  if (cd "$build" && ctest --output-on-failure --parallel "$(nproc)" > "$build/stress-run-$i.log" 2>&1); then
    passed=$((passed + 1))
    echo "run $i: passed ($(tail -n 3 "$build/stress-run-$i.log" | grep -o '[0-9]* tests passed.*' || true)), $(( $(date +%s) - start )) s"
  else
    echo "run $i: FAILED, see $build/stress-run-$i.log"
    grep -E "\(Failed\)|\(Timeout\)" "$build/stress-run-$i.log" || true
  fi
  i=$((i + 1))
done
echo "$passed of $runs runs passed under stress-ng --cpu 4"
[ "$passed" -eq "$runs" ]
