#!/usr/bin/env bash
# Throughput of `relayban check` on a 1,000,000-line mixed mail log (about 90 % benign),
# side by side with fail2ban-regex and fail2ban's postfix filter on the same file.
# usage: tests/bench/check_bench.sh [BUILD_DIR] [LINES]     (needs: packaging/install-deps.sh --bench)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
lines=${2:-1000000}
bin=$build/relayban
config=$root/etc/relayban/relayban.yaml
data=${TMPDIR:-/tmp}/relayban-bench-mixed-$lines.log
[ -x "$bin" ] || { echo "build first: $bin not found" >&2; exit 1; }
[ -s "$data" ] || python3 "$here/gen_mixed_log.py" "$lines" "$data"

# Best of five wall-clock runs, in seconds (to the millisecond), and the peak RSS in KiB.
measure() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
best = 1e9
for _ in range(5):
    t = time.perf_counter()
    subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
    best = min(best, time.perf_counter() - t)
print("%.3f %d" % (best, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
PY
}

printf '%-52s %10s %14s %10s\n' "command" "seconds" "lines/s" "peak RSS"
read -r t_pf rss_pf < <(measure "$bin" check -c "$config" -j postfix "$data")
printf '%-52s %10s %14s %9sK\n' "relayban check -j postfix" "$t_pf" "$(python3 -c "print(int($lines/$t_pf))")" "$rss_pf"
read -r t_pd rss_pd < <(measure "$bin" check -c "$config" -j postfix -j dovecot "$data")
printf '%-52s %10s %14s %9sK\n' "relayban check -j postfix -j dovecot" "$t_pd" "$(python3 -c "print(int($lines/$t_pd))")" "$rss_pd"
read -r t_all rss_all < <(measure "$bin" check -c "$config" "$data")
printf '%-52s %10s %14s %9sK\n' "relayban check (all 9 jails)" "$t_all" "$(python3 -c "print(int($lines/$t_all))")" "$rss_all"

if command -v fail2ban-regex >/dev/null 2>&1; then
  start=$(date +%s.%N)
  fail2ban-regex "$data" /etc/fail2ban/filter.d/postfix.conf >/dev/null 2>&1 || true
  t_f2b=$(python3 -c "import time; print(round($(date +%s.%N) - $start, 2))")
  printf '%-52s %10s %14s\n' "fail2ban-regex (filter.d/postfix.conf)" "$t_f2b" "$(python3 -c "print(int($lines/$t_f2b))")"
  printf 'ratio relayban -j postfix : fail2ban-regex = %sx\n' "$(python3 -c "print(round($t_f2b/$t_pf, 1))")"
  start=$(date +%s.%N)
  fail2ban-regex "$data" "/etc/fail2ban/filter.d/postfix.conf[mode=aggressive]" >/dev/null 2>&1 || true
  t_f2a=$(python3 -c "import time; print(round($(date +%s.%N) - $start, 2))")
  printf '%-52s %10s %14s\n' "fail2ban-regex (postfix.conf[mode=aggressive])" "$t_f2a" "$(python3 -c "print(int($lines/$t_f2a))")"
  printf 'ratio relayban -j postfix : fail2ban-regex aggressive = %sx\n' "$(python3 -c "print(round($t_f2a/$t_pf, 1))")"
else
  echo "fail2ban-regex not installed: packaging/install-deps.sh --bench"
fi
TIMEFORMAT=%R
t_grep=999
for _ in 1 2 3; do
  # (GNU grep stops at the first match when its output is /dev/null: count into a pipe)
  t=$( { time grep -c -F -e SASL -e "Relay access" "$data" | cat >/dev/null; } 2>&1 )
  t_grep=$(python3 -c "print(min($t_grep, $t))")
done
printf '%-52s %10s %14s\n' "grep -F with two literals (the ceiling)" "$t_grep" "$(python3 -c "print(int($lines/$t_grep))")"
