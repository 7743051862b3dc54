#!/usr/bin/env bash
# Metrics, the decision log and the digest with the real daemon, real nftables and a real
# Prometheus, inside a private network namespace (run through netns_run.sh).
# usage: metrics_test.sh RELAYBAN_BINARY SOURCE_DIR
set -uo pipefail
bin=$1
src=$2
. "$(dirname "$0")/netns_guard.sh"
command -v promtool >/dev/null || { echo "SKIP: promtool is not installed (apt-get install prometheus)"; exit 77; }
work=$(mktemp -d /tmp/relayban-metrics-test.XXXXXX)
pid=; prom=
cleanup() { [ -n "${KEEP:-}" ] && { echo "kept $work"; return; }
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  [ -n "$prom" ] && kill -9 "$prom" 2>/dev/null
  nft delete table inet relayban 2>/dev/null; rm -rf "$work"
}
trap cleanup EXIT
. "$src/tests/integration/lib.sh"
ip link set lo up
# check, showing what the command said when it fails.
checkv() { local what=$1 out; shift; if out=$("$@" 2>&1); then ok "$what"; else fail "$what"; printf '%s\n' "$out" | tail -n 6 | sed 's/^/    | /'; fi; }
port=19687

mkdir -p "$work/log" "$work/state" "$work/textfile"
: > "$work/log/mail.log"
cat > "$work/relayban.yaml" <<YAML
state_dir: $work/state
control_socket: $work/control.sock
ignore: [127.0.0.0/8]
decision_log: $work/decisions/decisions.log
metrics: {textfile: $work/textfile/relayban.prom, every: 1s, listen: "127.0.0.1:$port"}
include: [$src/etc/relayban/filters.d/*.yaml]
jails:
  postfix:
    enabled: yes
    logs: [$work/log/mail.log]
    filters: [postfix]
    rules:
      - {name: auth-bruteforce, key: ip, events: [auth_failure], threshold: 5, window: 10m, ban: 1h}
      - {name: relay-flood, key: account, events: [relay], distinct: recipient_domain, threshold: 20, window: 1h, ban: 1d}
      - {name: relay-daily, key: account, events: [relay], distinct: recipient_domain, threshold: 40, window: 1d, ban: 1d,
         relative: {factor: 5, warmup: 7d, while_warming: 150}, new_network: {factor: 0.5, for: 1d}}
YAML
start_daemon "$work/relayban.yaml" "$work/daemon.log" || { fail "the daemon starts"; exit 1; }
cli() { "$bin" "$@" -c "$work/relayban.yaml"; }
metric() {  # metric NAME_AND_LABELS: its value in `relayban metrics`, or nothing
  cli metrics | python3 -c '
import sys
want = sys.argv[1]
for line in sys.stdin:
    if line.startswith("#"): continue
    name, _, value = line.rstrip("\n").rpartition(" ")
    if name == want: print(value)' "$1"
}
metric_is() { [ "$(metric "$1")" = "$2" ]; }
http() {  # http REQUEST_BYTES: the raw answer of the listener
  python3 - "$port" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
data = b""
while True:
    b = s.recv(65536)
    if not b: break
    data += b
sys.stdout.write(data.decode("utf-8", "replace"))
PY
}

# Attacks: a brute force, and account test relaying to 25 outside domains from 198.51.100.9.
for i in 1 2 3 4 5; do fail_line 203.0.113.7 "guess$i@example.com" >> "$work/log/mail.log"; done
{
  echo "$(stamp) mx1 postfix/submission/smtpd[4242]: 5B00000001: client=unknown[198.51.100.9], sasl_method=LOGIN, sasl_username=test"
  for d in $(seq 1 25); do
    echo "$(stamp) mx1 postfix/smtp[5151]: 5B00000001: to=<x$d@d$d.example>, relay=mx.d$d.example[192.0.2.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)"
  done
  # A hostile account name trying to forge a second record in the decision log.
  for i in 1 2 3 4 5; do fail_line 203.0.113.8 'x","action":"unban","target":"203.0.113.7'; done
} >> "$work/log/mail.log"
check "the brute force is banned" wait_kernel ban4 203.0.113.7
check "the stolen account's address is banned" wait_kernel ban4 198.51.100.9
check "the hostile one is banned" wait_kernel ban4 203.0.113.8

# relayban metrics: valid exposition, and the numbers of what happened.
cli metrics > "$work/metrics.txt"
check "relayban metrics passes promtool check metrics" promtool check metrics < "$work/metrics.txt"
check "lines read are counted for the log" until_true metric_is "relayban_log_lines_read_total{log=\"$work/log/mail.log\"}" 36
check "auth failures are counted by jail and kind" metric_is 'relayban_events_total{jail="postfix",kind="auth_failure"}' 10
check "bans are counted by jail, rule and origin" metric_is 'relayban_bans_total{jail="postfix",rule="auth-bruteforce",origin="rule"}' 2
check "the account verdict is counted" metric_is 'relayban_account_verdicts_total{jail="postfix",rule="relay-flood"}' 1
check "active bans by family" metric_is 'relayban_active_bans{family="ipv4",origin="rule"}' 3
check "accounts with a verdict" metric_is 'relayban_accounts_with_verdict' 1
check "no label names an address or an account" bash -c "! sed 's/log=\"[^\"]*\"//g' '$work/metrics.txt' | grep -E '203\.0\.113|198\.51\.100|[^a-z]test[^a-z]|guess'"
cli status > "$work/status.txt"
check "status shows the decision log and where metrics go" bash -c "grep -q '^decision log .*records' '$work/status.txt' && grep -q '^metrics: textfile .*relayban.prom http://127.0.0.1:$port/metrics' '$work/status.txt'"
check "process facts are exported" grep -q '^process_resident_memory_bytes [1-9]' "$work/metrics.txt"

# The textfile: atomic, readable by node_exporter's user, valid.
check "the textfile is written" until_true test -s "$work/textfile/relayban.prom"
check "the textfile is mode 0644 whatever the umask" bash -c "[ \"\$(stat -c %a '$work/textfile/relayban.prom')\" = 644 ]"
check "the textfile passes promtool check metrics" promtool check metrics < "$work/textfile/relayban.prom"
check "the textfile catches up with the bans" until_true grep -q 'relayban_bans_total{jail="postfix",rule="auth-bruteforce",origin="rule"} 2' "$work/textfile/relayban.prom"
check "no temporary file is left beside it" bash -c "[ \"\$(ls -A '$work/textfile')\" = relayban.prom ]"

# The HTTP listener: GET /metrics only, bounded.
http 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n' > "$work/http.raw"
check "GET /metrics answers 200 with the exposition content type" bash -c "head -1 '$work/http.raw' | grep -q '^HTTP/1.0 200' && grep -qi '^Content-Type: text/plain; version=0.0.4' '$work/http.raw'"
python3 -c 'import sys; d=open(sys.argv[1], newline="").read(); sys.stdout.write(d.split("\r\n\r\n",1)[1])' "$work/http.raw" > "$work/http.txt"
check "the HTTP body passes promtool check metrics" promtool check metrics < "$work/http.txt"
status_of() { http "$1" | head -1 | cut -d' ' -f2; }
check "POST is refused with 405" test "$(status_of 'POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n')" = 405
check "another path is 404" test "$(status_of 'GET /etc/passwd HTTP/1.0\r\n\r\n')" = 404
check "a request over 8 KiB is refused" test "$(status_of "GET /metrics HTTP/1.0\r\nX: $(head -c 9000 /dev/zero | tr '\0' a)")" = 431
# A peer that sends half a request and waits is dropped after the timeout.
check "a silent peer is disconnected" python3 - "$port" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
s.sendall(b"GET /metr")
start = time.time()
assert s.recv(100) == b"" and time.time() - start < 30
PY
check "refused requests are counted" until_true bash -c "[ \"\$($(printf '%q ' "$bin") metrics -c $work/relayban.yaml | grep -c 'relayban_metrics_http_requests_total{result=\"\(rejected\|timed_out\)\"} [1-9]')\" = 2 ]"

# The shipped dashboard and alerts query only what relayban exports; the alerts fire when
# they should (promtool test rules).
mon=$src/packaging/monitoring
check "the dashboard and alerts name only exported metrics" python3 "$src/tests/monitoring/check_names.py" "$work/metrics.txt" "$mon/relayban-dashboard.json" "$mon/relayban-alerts.yml"
sed 's/relayban_accounts_with_verdict/relayban_accounts_stolen/' "$mon/relayban-dashboard.json" > "$work/bad-dashboard.json"
check "and that check catches a metric relayban does not export" bash -c "! python3 '$src/tests/monitoring/check_names.py' '$work/metrics.txt' '$work/bad-dashboard.json' '$mon/relayban-alerts.yml'"
check "the alerting rules pass promtool check rules" promtool check rules "$mon/relayban-alerts.yml"
check "the alerts fire on the series they are meant for (promtool test rules)" bash -c "cd '$src/tests/monitoring' && promtool test rules alerts_test.yml"

# A real Prometheus scrapes it, with the shipped alerting rules loaded.
if command -v prometheus >/dev/null; then
  cat > "$work/prometheus.yml" <<YAML
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
rule_files: ["$mon/relayban-alerts.yml"]
scrape_configs:
  - job_name: relayban
    static_configs: [{targets: ["127.0.0.1:$port"]}]
YAML
  prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom-data" \
    --web.listen-address=127.0.0.1:19090 > "$work/prometheus.log" 2>&1 & prom=$!
  query() {
    python3 - "$1" "$2" <<'PY'
import json, sys, urllib.parse, urllib.request
q = urllib.parse.urlencode({"query": sys.argv[1]})
r = json.load(urllib.request.urlopen("http://127.0.0.1:19090/api/v1/query?" + q, timeout=5))
res = r["data"]["result"]
assert res and res[0]["value"][1] == sys.argv[2], res
PY
  }
  limit=90 check "Prometheus scrapes the listener: relayban_bans_total" until_true query 'sum(relayban_bans_total{rule="auth-bruteforce"})' 2
  limit=30 check "Prometheus sees the target up" until_true query 'up{job="relayban"}' 1
  # Every dashboard query evaluates in a real Prometheus and has data (rates need two
  # scrapes a minute apart at most).
  limit=60 check "Prometheus has two scrapes of everything" until_true query 'count(count_over_time(relayban_build_info[1m]) >= 3)' 1
  checkv "every dashboard query evaluates in Prometheus" python3 - "$mon/relayban-dashboard.json" <<'PY'
import json, sys, urllib.parse, urllib.request
d = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in d["panels"] for t in p["targets"]]
with_data = 0
for e in exprs:
    q = e.replace("$__rate_interval", "1m").replace("$instance", ".*")
    r = json.load(urllib.request.urlopen("http://127.0.0.1:19090/api/v1/query?" + urllib.parse.urlencode({"query": q}), timeout=5))
    assert r["status"] == "success", (e, r)
    with_data += bool(r["data"]["result"])
assert with_data == len(exprs), (with_data, len(exprs))
PY
  checkv "the shipped alerting rules load and evaluate" python3 - "$mon/relayban-alerts.yml" <<'PY'
import json, sys, time, urllib.request
shipped = sum(1 for l in open(sys.argv[1]) if l.strip().startswith("- alert:"))
for _ in range(100):
    r = json.load(urllib.request.urlopen("http://127.0.0.1:19090/api/v1/rules", timeout=5))
    rules = [x for g in r["data"]["groups"] for x in g["rules"]]
    if len(rules) == shipped and all(x.get("health") == "ok" for x in rules):
        break
    time.sleep(0.2)
assert shipped >= 8 and len(rules) == shipped and all(x.get("health") == "ok" for x in rules), (shipped, rules)
assert not any(x["state"] == "firing" for x in rules), rules
PY
  # A second stolen account while Prometheus watches: its alert fires.
  {
    echo "$(stamp) mx1 postfix/submission/smtpd[4243]: 5B00000002: client=unknown[198.51.100.10], sasl_method=LOGIN, sasl_username=test2"
    for d in $(seq 1 21); do
      echo "$(stamp) mx1 postfix/smtp[5152]: 5B00000002: to=<y$d@e$d.example>, relay=mx.e$d.example[192.0.2.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)"
    done
  } >> "$work/log/mail.log"
  check "the second stolen account's address is banned" wait_kernel ban4 198.51.100.10
  firing() {
    python3 - "$1" <<'PY'
import json, sys, urllib.request
r = json.load(urllib.request.urlopen("http://127.0.0.1:19090/api/v1/alerts", timeout=5))
assert any(a["labels"]["alertname"] == sys.argv[1] and a["state"] == "firing" for a in r["data"]["alerts"]), r
PY
  }
  limit=60 check "Prometheus fires RelaybanStolenAccount" until_true firing RelaybanStolenAccount
  kill "$prom"; wait "$prom" 2>/dev/null; prom=
else
  echo "SKIP - a real Prometheus scrape (prometheus is not installed)"
fi

# The decision log: one JSON object a line, with the evidence; hostile text stays a string.
check "the decision log has the bans and the verdict" until_true bash -c "[ \"\$(grep -c '\"action\":\"ban\"' '$work/decisions/decisions.log')\" -ge 3 ] && grep -q '\"action\":\"account_verdict\"' '$work/decisions/decisions.log'"
check "every decision line is one JSON object" python3 - "$work/decisions/decisions.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    assert isinstance(json.loads(line), dict)
PY
check "a ban carries the log lines that led to it" python3 - "$work/decisions/decisions.log" "$work/log/mail.log" <<'PY'
import json, sys
bans = [json.loads(l) for l in open(sys.argv[1]) if '"target":"203.0.113.7' in l]
assert bans and len(bans[0]["evidence"]) == 5, bans
assert all(e["log"] == sys.argv[2] and "203.0.113.7" in e["line"] for e in bans[0]["evidence"])
PY
check "the hostile account name forged no unban record" python3 - "$work/decisions/decisions.log" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert not any(r["action"] == "unban" for r in recs)
assert any(r.get("target") == "203.0.113.8/32" or r.get("target") == "203.0.113.8" for r in recs)
PY
# explain: the ban, its rule and the lines behind it; the account's verdict and its bans.
cli explain 203.0.113.7 > "$work/explain-ip.txt"
check "explain shows the ban in force and its rule" grep -q '^203.0.113.7: banned, .* left (jail postfix, rule auth-bruteforce' "$work/explain-ip.txt"
check "and the five lines that led to it" bash -c "grep -q 'the 5 lines that led to it' '$work/explain-ip.txt' && [ \"\$(grep -c '^        > .*unknown\[203.0.113.7\]: SASL LOGIN authentication failed' '$work/explain-ip.txt')\" = 5 ]"
cli explain test > "$work/explain-account.txt"
check "explain of an account shows its verdict and the address banned for it" bash -c "grep -q '^  verdicts (what it did): relay-flood' '$work/explain-account.txt' && grep -q '^198.51.100.9: banned' '$work/explain-account.txt' && grep -q 'account_verdict test  postfix/relay-flood' '$work/explain-account.txt'"
check "explain of an account shows its habits from its history (25 recipients today)" grep -q '^  usually (history of 0 days): 0 outside domains (0 in its busiest hour) and 0 recipients on a busy day (today 25 and 25)' "$work/explain-account.txt"
check "accounts --json carries the habits" bash -c "$(printf '%q ' "$bin") accounts --json -c $work/relayban.yaml | python3 -c 'import json,sys,time; a=[x for x in json.load(sys.stdin)[\"accounts\"] if x[\"account\"]==\"test\"][0]; h=a[\"habits\"]; assert h[\"recipients_today\"]==25 and h[\"outside_domains_today\"]==25, h'"
check "explain --json" bash -c "$(printf '%q ' "$bin") explain --json 203.0.113.7 -c $work/relayban.yaml | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"decisions\"][0][\"evidence\"][4][\"line\"].endswith(\"guess5@example.com\")'"
cli unban 203.0.113.7 >/dev/null
cli ban 192.0.2.99 --reason "seen in the web log" >/dev/null
cli forgive test >/dev/null
check "manual actions are recorded with who asked" until_true bash -c "grep '\"action\":\"unban\"' '$work/decisions/decisions.log' | grep -q '\"by\":\"uid 0'"
check "unbans are counted" metric_is 'relayban_unbans_total' 1
check "manual bans are counted" metric_is 'relayban_bans_total{jail="manual",rule="manual",origin="manual"}' 1
# logrotate moves the file away: the next decision goes to a new file.
mv "$work/decisions/decisions.log" "$work/decisions/decisions.log.1"
check "after a rotation the log is started again" until_true test -e "$work/decisions/decisions.log"
cli ban 192.0.2.98 >/dev/null
check "and the next decision is written there" until_true grep -q 192.0.2.98 "$work/decisions/decisions.log"

# A reload keeps every counter (the engine is new; what it counted is carried over).
cli reload >/dev/null
check "counters survive a reload" metric_is 'relayban_events_total{jail="postfix",kind="auth_failure"}' 10
check "the reload is counted" metric_is 'relayban_config_reloads_total{result="ok"}' 1
fail_line 203.0.113.50 someone >> "$work/log/mail.log"
check "and go on counting after it" until_true metric_is 'relayban_events_total{jail="postfix",kind="auth_failure"}' 11

# history-import fills the accounts' history from old logs, only while the daemon is stopped.
python3 - "$work/old-mail.log" <<'PY'
import datetime, sys
with open(sys.argv[1], "w") as f:
    now = datetime.datetime.now()
    for d in range(10, 0, -1):
        day = now - datetime.timedelta(days=d)
        q = "6C%08X" % d
        f.write(day.strftime("%b %e 10:00:00") + " mx1 postfix/submission/smtpd[7]: %s: client=unknown[192.0.2.44], sasl_method=PLAIN, sasl_username=hist\n" % q)
        for i in range(30):
            f.write(day.strftime("%b %e 10:00:01") + " mx1 postfix/smtp[8]: %s: to=<a@h%d-%d.example>, relay=mx[192.0.2.200]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)\n" % (q, d, i))
PY
check "history-import refuses while the daemon runs" bash -c "! $(printf '%q ' "$bin") history-import -c $work/relayban.yaml $work/old-mail.log"
# After a restart, explain still has the evidence (the state database).
stop_daemon
"$bin" history-import -c "$work/relayban.yaml" "$work/nonexistent.log" > "$work/import-bad.txt" 2>&1; rc=$?
check "history-import names a log it cannot read and writes nothing (exit 66)" bash -c "[ $rc = 66 ] && grep -q nonexistent.log '$work/import-bad.txt'"
"$bin" history-import -c "$work/relayban.yaml" "$work/old-mail.log" > "$work/import.txt" 2>&1
check "history-import reads old logs into the state database" grep -q '^read 310 lines; the history of 3 accounts is in .* (2 merged with what the daemon had kept)' "$work/import.txt"
check "the imported account has ten days of history" python3 - "$work/state/state.db" <<'PY'
import sqlite3, sys
import time
rows = dict(sqlite3.connect(sys.argv[1]).execute("SELECT account, data FROM account_history"))
data = rows["hist"]
assert data[0] == 2, data[:4]
first, shift, i = 0, 0, 1
while True:  # the first day, a varint after the format byte
    first |= (data[i] & 0x7F) << shift
    shift += 7
    if not data[i] & 0x80: break
    i += 1
assert int(time.time()) // 86400 - first >= 9, first
PY
# check --history: the account that sent to 30 outside domains a day for ten days may send to
# 25 in an hour (its usual day, not the 20 a stranger may); without its history it may not.
python3 - "$work/hist-today.log" <<'PY'
import datetime, sys
now = datetime.datetime.now().replace(hour=11, minute=0)
with open(sys.argv[1], "w") as f:
    f.write(now.strftime("%b %e %H:%M:%S") + " mx1 postfix/submission/smtpd[7]: 6D00000001: client=unknown[192.0.2.44], sasl_method=PLAIN, sasl_username=hist\n")
    for i in range(25):
        f.write(now.strftime("%b %e %H:%M:%S") + " mx1 postfix/smtp[8]: 6D00000001: to=<a@today%d.example>, relay=mx[192.0.2.200]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)\n" % i)
PY
# The shipped relay-flood: 20 an hour, or the account's usual busy day if that is more.
cat > "$work/check-history.yaml" <<YAML
include: [$src/etc/relayban/filters.d/*.yaml]
jails:
  postfix:
    logs: [$work/log/mail.log]
    filters: [postfix]
    rules:
      - {name: relay-flood, key: account, events: [relay], distinct: recipient_domain, threshold: 20, window: 1h, ban: 1d,
         relative: {factor: 1, warmup: 7d, while_warming: 20}}
YAML
verdicts_for_hist() { python3 -c 'import json,sys; print(sum(1 for v in json.load(sys.stdin)["account_verdicts"] if v["account"] == "hist"))'; }
check "check without the history gives the account a verdict for 25 outside domains in an hour" \
  test "$("$bin" check --json -c "$work/check-history.yaml" "$work/hist-today.log" | verdicts_for_hist)" -ge 1
check "check --history starts from the imported history: no verdict" \
  test "$("$bin" check --json --history "$work/state/state.db" -c "$work/check-history.yaml" "$work/hist-today.log" | verdicts_for_hist)" = 0
check "check --history names a database that is not there (exit 66)" bash -c "$(printf '%q ' "$bin") check --history $work/none.db -c $work/check-history.yaml $work/hist-today.log; [ \$? = 66 ]"
check "the accounts' history is kept in the state database at stop" python3 - "$work/state/state.db" <<'PY'
import sqlite3, sys
rows = dict(sqlite3.connect(sys.argv[1]).execute("SELECT account, length(data) FROM account_history"))
assert "test" in rows and "test2" in rows and rows["test"] > 20, rows
PY
start_daemon "$work/relayban.yaml" "$work/daemon.log" || fail "the daemon restarts"
cli explain 203.0.113.8 > "$work/explain-restart.txt"
check "after a restart explain still shows the lines behind a ban" bash -c "[ \"\$(grep -c '^        > .*unknown\[203.0.113.8\]' '$work/explain-restart.txt')\" = 5 ]"
check "and an unban by hand is among its decisions" bash -c "cli() { $(printf '%q ' "$bin") \"\$@\" -c $work/relayban.yaml; }; cli explain 203.0.113.7 | grep -q 'unban 203.0.113.7  (by uid 0'"

# The digest reads both generations of the decision log.
"$bin" digest --log "$work/decisions/decisions.log" --since 1h > "$work/digest.txt"
check "the digest counts the bans by rule" grep -qE '^ +2  postfix/auth-bruteforce' "$work/digest.txt"
check "the digest names the stolen account with its evidence" bash -c "grep -A3 'very likely stolen' '$work/digest.txt' | grep -q 'test' && grep -q '| .*to=<x20@d20.example>' '$work/digest.txt'"
check "the digest lists the actions by hand" bash -c "grep -q 'unban 203.0.113.7' '$work/digest.txt' && grep -q 'forgive test' '$work/digest.txt'"
check "the digest's top networks" grep -qE '^ +2  203\.0\.113\.0/24' "$work/digest.txt"
"$bin" digest --log "$work/decisions/decisions.log" --since 1h --json > "$work/digest.json"
check "digest --json" python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['bans_by_rule']['postfix/auth-bruteforce']==2 and d['account_verdicts'][0]['account']=='test'" "$work/digest.json"
# --mail hands the digest to sendmail's standard input, the recipients as arguments.
cat > "$work/sendmail" <<SH
#!/bin/sh
printf '%s\n' "\$@" > "$work/sendmail.args"
cat > "$work/sendmail.msg"
SH
chmod +x "$work/sendmail"
sed -i "s|^decision_log:.*|&\ndigest: {mail_to: [postmaster@example.org, root], sendmail: $work/sendmail}|" "$work/relayban.yaml"
check "digest --mail runs sendmail" "$bin" digest -c "$work/relayban.yaml" --mail
check "with the recipients as its arguments, after --" bash -c "[ \"\$(tr '\n' ' ' < '$work/sendmail.args')\" = '-oi -- postmaster@example.org root ' ]"
check "and a message with headers and the digest" bash -c "grep -q '^To: postmaster@example.org, root' '$work/sendmail.msg' && grep -q '^Subject: relayban digest for .*bans' '$work/sendmail.msg' && grep -q 'postfix/auth-bruteforce' '$work/sendmail.msg'"
check "a recipient that looks like an option is refused" bash -c "! $(printf '%q ' "$bin") digest -c $work/relayban.yaml --mail --to=-oQ/tmp"

stop_daemon
check "the accounts' history was restored at start" grep -q 'account history of 3 accounts restored' "$work/daemon.log"
check "the daemon logged no error" bash -c "! grep -E '<3>|error' '$work/daemon.log' | grep -v 'decision log'"
echo "metrics test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
