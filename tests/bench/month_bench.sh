#!/usr/bin/env bash
# A generated month of Postfix submission traffic (tests/bench/gen_month.py) replayed through
# the SHIPPED rules with `relayban check`: which stolen accounts are caught, after how many
# outside recipients, and which honest accounts are flagged. The admin's one change: the
# newsletter account on the allow-list, as the README says to do for a bulk sender.
# With --history, the four weeks before the month (the same accounts' honest mail) are read
# first with `relayban history-import`, as the README says to do at installation, and the
# month is replayed from that history (`check --history`): no warm-up.
# usage: tests/bench/month_bench.sh [BUILD_DIR] [SEED] [--history]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
seed=${2:-7}
with_history=${3:-}
work=$(mktemp -d /tmp/relayban-month.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$root/etc/relayban" "$work/etc"
sed -i "s|^# accounts:|accounts:|; s|^#   allow: \[newsletter@example.org\]|  allow: [newsletter@example.org]|" "$work/etc/relayban.yaml"
grep -q '^  allow: \[newsletter@example.org\]' "$work/etc/relayban.yaml"
if [ "$with_history" = --history ]; then
  sed -i "s|^state_dir: .*|state_dir: $work/state|; s|^control_socket: .*|control_socket: $work/control.sock|" "$work/etc/relayban.yaml"
  python3 "$here/gen_month.py" "$work/month.log" "$work/truth.json" --seed "$seed" --prior "$work/prior.log"
  "$build/relayban" history-import -c "$work/etc/relayban.yaml" "$work/prior.log" >&2
  history=(--history "$work/state/state.db")
else
  python3 "$here/gen_month.py" "$work/month.log" "$work/truth.json" --seed "$seed"
  history=()
fi
"$build/relayban" check --json --no-evidence "${history[@]}" -c "$work/etc/relayban.yaml" -j postfix "$work/month.log" > "$work/check.json"
python3 - "$work/month.log" "$work/truth.json" "$work/check.json" <<'PY'
import collections, datetime, json, re, sys
log, truth, check = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
year = 2026
# Outside recipients relayed per account, in time order (first delivery line of each message's recipient).
owner, seen, relays = {}, set(), collections.defaultdict(list)
for line in open(log):
    m = re.search(r"\]: (\w+): client=unknown\[([^\]]+)\], sasl_method=\w+, sasl_username=(\S+)", line)
    if m:
        owner[m.group(1)] = (m.group(3), m.group(2))
        continue
    m = re.search(r"\]: (\w+): to=<([^>]+)>", line)
    if m and m.group(1) in owner and (m.group(1), m.group(2)) not in seen:
        seen.add((m.group(1), m.group(2)))
        t = datetime.datetime.strptime("%d %s" % (year, line[:15]), "%Y %b %d %H:%M:%S")
        relays[owner[m.group(1)][0]].append((t, owner[m.group(1)][1]))
decisions = collections.defaultdict(list)
for d in check["decisions"]:
    if d.get("account"):
        decisions[d["account"]].append((datetime.datetime.strptime(d["at"], "%Y-%m-%dT%H:%M:%SZ"), d["rule"], d["target"]))
verdicts = {a["account"]: a["verdicts"] for a in check["accounts"]}
first_verdict = {}
for v in check["account_verdicts"]:
    t = datetime.datetime.strptime(v["at"], "%Y-%m-%dT%H:%M:%SZ")
    first_verdict.setdefault(v["account"], (t, v["rule"]))
print("| account | role | stolen at | caught by | after outside recipients | time to catch |")
print("|---|---|---|---|---|---|")
caught = flagged = late = stolen = 0
for name, info in sorted(truth.items(), key=lambda x: (not x[1]["role"].startswith("stolen"), x[0])):
    if not info["role"].startswith("stolen"):
        if verdicts.get(name) or decisions.get(name):
            flagged += 1
            first = first_verdict.get(name, (None,))[0]
            late += not first or (first - datetime.datetime(2026, 10, 15)).days >= 7
            week = " on day %d of the month" % ((first - datetime.datetime(2026, 10, 15)).days + 1) if first else ""
            print("| %s | %s | - | FLAGGED: %s%s | | |" % (name, info["role"], ",".join(verdicts.get(name) or [r for _, r, _ in decisions[name]]), week))
        continue
    stolen += 1
    at = datetime.datetime.fromisoformat(info["stolen_at"].rstrip("Z"))
    first = min([d for d in decisions.get(name, []) if d[0] >= at] +
                [(t, r, "") for a, (t, r) in first_verdict.items() if a == name and t >= at], default=None)
    if not first:
        print("| %s | %s | %s | NOT CAUGHT | %d | |" % (name, info["role"], at, sum(1 for t, _ in relays[name] if t >= at)))
        continue
    caught += 1
    before = sum(1 for t, _ in relays[name] if at <= t <= first[0])
    print("| %s | %s | %s | %s | %d | %s |" % (name, info["role"], at.strftime("%m-%d %H:%M"), first[1], before, first[0] - at))
honest = sum(1 for i in truth.values() if not i["role"].startswith("stolen"))
print()
print("stolen accounts caught: %d of %d; honest accounts flagged: %d of %d (%d after the first week); lines: %d" %
      (caught, stolen, flagged, honest, late, check["lines"]))
PY
