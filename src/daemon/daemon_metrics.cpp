// The daemon's metrics (Prometheus text) and where they go: a textfile for node_exporter's
// textfile collector, written atomically every `metrics.every`; the optional HTTP listener;
// `relayban metrics` on the control socket. No label names an address or an account.
// Counters of an engine replaced by a reload are carried over, so they never go back.
#include <fcntl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon.hpp"
#include "relayban/core/text.hpp"
#include "relayban/version.hpp"

namespace relayban {
namespace {

using Labels = MetricsText::Labels;
using Type = MetricsText::Type;

double EpochSeconds(Time t) { return std::chrono::duration<double>(t.time_since_epoch()).count(); }

struct ProcessFacts {
  double cpu_seconds = 0, start_time = 0, resident = 0, virtual_bytes = 0, open_fds = 0, max_fds = 0;
};

// From /proc/self: what the Prometheus client libraries export as process_*.
ProcessFacts ReadProcess() {
  ProcessFacts p;
  long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
  std::ifstream stat("/proc/self/stat");
  std::string s((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold blanks.
  size_t close = s.rfind(')');
  if (close != std::string::npos && tick > 0) {
    std::istringstream in(s.substr(close + 2));
    std::vector<std::string> f;
    for (std::string x; in >> x;) f.push_back(x);
    // f[0] is field 3 (state): utime 14, stime 15, starttime 22, vsize 23, rss 24.
    if (f.size() > 21) {
      p.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(tick);
      p.virtual_bytes = std::stod(f[20]);
      p.resident = std::stod(f[21]) * static_cast<double>(page);
      std::ifstream up("/proc/stat");
      for (std::string line; std::getline(up, line);)
        if (line.rfind("btime ", 0) == 0) p.start_time = std::stod(line.substr(6)) + std::stod(f[19]) / static_cast<double>(tick);
    }
  }
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec))
    p.open_fds += 1;
  std::ifstream limits("/proc/self/limits");
  for (std::string line; std::getline(limits, line);)
    if (line.rfind("Max open files", 0) == 0) {
      std::istringstream in(line.substr(14));
      std::string soft;
      in >> soft;
      if (!soft.empty() && soft != "unlimited") p.max_fds = std::stod(soft);
    }
  return p;
}

void Add(Daemon::Counters& c, const char* family, Labels labels, double v) { c[family][std::move(labels)] += v; }

}  // namespace

void Daemon::CollectEngineCounters(Counters& into, const EngineCounts& counts,
                                   const std::vector<SourceSet::SourceInfo>& sources) const {
  std::map<std::string, double> jail_lines;
  for (const auto& src : sources) {
    if (src.engine_source < 0 || static_cast<size_t>(src.engine_source) >= counts.sources.size()) continue;
    const auto& c = counts.sources[static_cast<size_t>(src.engine_source)];
    Labels l{{"log", src.name}};
    Add(into, "relayban_log_lines_read_total", l, static_cast<double>(c.lines));
    Add(into, "relayban_log_lines_matched_total", l, static_cast<double>(c.matched));
    const std::pair<const char*, uint64_t> reasons[] = {
        {"unclean", c.unclean}, {"no_stamp", c.no_stamp}, {"bad_field", c.bad_field}, {"ambiguous", c.ambiguous}};
    for (const auto& [reason, n] : reasons) Add(into, "relayban_log_lines_skipped_total", {{"log", src.name}, {"reason", reason}}, static_cast<double>(n));
    for (const auto& j : src.jails) jail_lines[j] += static_cast<double>(c.lines);
  }
  for (const auto& [jail, n] : jail_lines) Add(into, "relayban_jail_lines_read_total", {{"jail", jail}}, n);
  for (const auto& e : counts.events) Add(into, "relayban_events_total", {{"jail", e.jail}, {"kind", e.kind}}, static_cast<double>(e.count));
  for (const auto& v : counts.verdicts)
    Add(into, "relayban_verdicts_total", {{"jail", v.jail}, {"rule", v.rule}, {"key", v.key == RuleKey::kIp ? "ip" : "account"}},
        static_cast<double>(v.count));
  EngineEvictions ev = engine_->evictions();
  const std::pair<const char*, uint64_t> evicted[] = {
      {"windows", ev.windows}, {"accounts", ev.accounts}, {"correlation", ev.correlation}, {"offences", ev.offences}};
  for (const auto& [what, n] : evicted) Add(into, "relayban_evictions_total", {{"structure", what}}, static_cast<double>(n));
  const EngineStats& s = engine_->stats();
  Add(into, "relayban_relay_repeats_total", {}, static_cast<double>(s.relay_repeats));
  Add(into, "relayban_outage_guard_trips_total", {}, static_cast<double>(s.outages));
  Add(into, "relayban_outage_guard_events_held_total", {}, static_cast<double>(s.outage_suppressed));
}

void Daemon::CarryCounters() {
  if (engine_) CollectEngineCounters(carried_, engine_->counts(), sources_->Describe());
}

std::string Daemon::RenderMetrics() const {
  MetricsText m;
  Time now = parts_.clock->Now();
  m.Family("relayban_build_info", Type::kGauge, "relayban's version; always 1");
  m.Sample({{"version", kVersion}}, 1);
  m.Family("relayban_metrics_generated_timestamp_seconds", Type::kGauge,
           "When these metrics were made (a textfile that stops changing means the daemon stopped)");
  m.Sample(EpochSeconds(now));
  std::string health = Health();
  m.Family("relayban_degraded", Type::kGauge, "1 while the firewall or the state database fails (see relayban status)");
  m.Sample(health == "ok" ? 0 : 1);
  m.Family("relayban_mirror_failing", Type::kGauge, "1 while this mirror of the bans fails and is retried");
  m.Sample({{"mirror", "firewall"}}, ledger_->firewall_problem().empty() ? 0 : 1);
  m.Sample({{"mirror", "state_database"}}, ledger_->store_problem().empty() && progress_problem_.empty() ? 0 : 1);
  m.Family("relayban_jail_enabled", Type::kGauge, "1 for a jail that is on, 0 for one that is off");
  for (const auto& j : plan_.jails) m.Sample({{"jail", j.name}}, j.on ? 1 : 0);

  // Counters of the engine, with what engines before the last reload counted.
  Counters counters = carried_;
  // Read once per rendering: describing the sources stats every log file.
  const EngineCounts counts = engine_->counts();
  const auto sources = sources_->Describe();
  CollectEngineCounters(counters, counts, sources);
  const std::pair<const char*, const char*> engine_families[] = {
      {"relayban_log_lines_read_total", "Lines read from each log (a file path or a journal)"},
      {"relayban_log_lines_matched_total", "Lines of each log that yielded at least one event"},
      {"relayban_log_lines_skipped_total",
       "Lines refused, by reason: unclean (too long or not text), no_stamp, bad_field, ambiguous (a likely injection)"},
      {"relayban_jail_lines_read_total", "Lines read from the logs each jail follows (a log two jails share counts in both)"},
      {"relayban_events_total", "Events the filters yielded, by jail and kind"},
      {"relayban_verdicts_total", "Times a rule reached its threshold, by jail, rule and key (ip or account)"},
      {"relayban_evictions_total", "Entries dropped because a bounded structure was full, by structure"},
      {"relayban_relay_repeats_total", "Delivery attempts of a (message, recipient) already counted as relayed"},
      {"relayban_outage_guard_trips_total", "Times an outage guard held a pattern's events back"},
      {"relayban_outage_guard_events_held_total", "Events held back by outage guards"},
  };
  for (const auto& [name, help] : engine_families) {
    m.Family(name, Type::kCounter, help);
    auto it = counters.find(name);
    if (it == counters.end()) continue;
    for (const auto& [labels, v] : it->second) m.Sample(labels, v);
  }

  // Log lag: 0 when a log is read to its end, else the age of its newest event read.
  m.Family("relayban_log_unread_bytes", Type::kGauge, "Bytes of a log file written but not read yet");
  std::vector<std::pair<std::string, double>> lag;
  std::map<std::string, double> jail_lag;
  for (const auto& src : sources) {
    double unread = src.read && src.size && *src.size > *src.read ? static_cast<double>(*src.size - *src.read) : 0;
    if (!src.journal) m.Sample({{"log", src.name}}, unread);
    bool behind = src.journal ? sources_->Pending() : unread > 0;
    double age = 0;
    if (behind && src.engine_source >= 0 && static_cast<size_t>(src.engine_source) < counts.sources.size()) {
      Time newest = counts.sources[static_cast<size_t>(src.engine_source)].newest;
      if (newest != Time{}) age = std::max(0.0, std::chrono::duration<double>(now - newest).count());
    }
    lag.emplace_back(src.name, age);
    for (const auto& j : src.jails) jail_lag[j] = std::max(jail_lag[j], age);
  }
  m.Family("relayban_log_lag_seconds", Type::kGauge,
           "0 when a log is read to its end; else how old the newest event read from it is");
  for (const auto& [name, v] : lag) m.Sample({{"log", name}}, v);
  m.Family("relayban_jail_log_lag_seconds", Type::kGauge, "The largest log lag of the logs each jail follows");
  for (const auto& [jail, v] : jail_lag) m.Sample({{"jail", jail}}, v);
  m.Family("relayban_log_newest_event_timestamp_seconds", Type::kGauge, "Log time of the newest event read from each log");
  for (const auto& src : sources)
    if (src.engine_source >= 0 && static_cast<size_t>(src.engine_source) < counts.sources.size())
      if (Time t = counts.sources[static_cast<size_t>(src.engine_source)].newest; t != Time{})
        m.Sample({{"log", src.name}}, EpochSeconds(t));

  // Every rule's series exists from the start at 0: a counter first seen at 1 shows no
  // increase in Prometheus, and an alert on the first verdict would never fire.
  auto bans_by = bans_by_;
  auto account_verdicts_by = account_verdicts_by_;
  for (const auto& v : counts.verdicts) {
    bans_by.try_emplace({v.jail, v.rule, "rule"}, 0);
    if (v.key == RuleKey::kAccount) account_verdicts_by.try_emplace({v.jail, v.rule}, 0);
  }
  m.Family("relayban_bans_total", Type::kCounter, "Bans decided, by jail, rule and origin (rule or manual)");
  for (const auto& [k, n] : bans_by) m.Sample({{"jail", k[0]}, {"rule", k[1]}, {"origin", k[2]}}, static_cast<double>(n));
  const auto& ls = ledger_->stats();
  m.Family("relayban_unbans_total", Type::kCounter, "Bans lifted by hand (relayban unban)");
  m.Sample(static_cast<double>(ls.unbans));
  m.Family("relayban_bans_expired_total", Type::kCounter, "Bans that ran their time");
  m.Sample(static_cast<double>(ls.expired));
  m.Family("relayban_bans_repaired_total", Type::kCounter, "Bans put back in the kernel after something removed them");
  m.Sample(static_cast<double>(ls.repaired));
  std::map<std::pair<std::string, std::string>, double> active;
  for (const char* f : {"ipv4", "ipv6"})
    for (BanOrigin o : {BanOrigin::kRule, BanOrigin::kManual, BanOrigin::kAdopted}) active[{f, OriginName(o)}] = 0;
  ledger_->ForEach([&](const BanLedger::ActiveBan& b) {
    active[{b.target.address().is_v4() ? "ipv4" : "ipv6", OriginName(b.info->origin)}] += 1;
  });
  m.Family("relayban_active_bans", Type::kGauge, "Bans in force, by address family and origin");
  for (const auto& [k, n] : active) m.Sample({{"family", k.first}, {"origin", k.second}}, n);
  m.Family("relayban_jail_active_bans", Type::kGauge, "Bans in force, by jail");
  for (const auto& j : plan_.jails) m.Sample({{"jail", j.name}}, static_cast<double>(ledger_->CountInJail(j.name)));
  m.Family("relayban_accounts_tracked", Type::kGauge, "Accounts in the account book");
  m.Sample(static_cast<double>(engine_->accounts().size()));
  m.Family("relayban_accounts_with_verdict", Type::kGauge, "Accounts with a verdict of what they did (likely stolen)");
  m.Sample(static_cast<double>(engine_->accounts().CountWithVerdict()));
  m.Family("relayban_account_verdicts_total", Type::kCounter, "Account verdicts (an account-keyed rule on what it did), by jail and rule");
  for (const auto& [k, n] : account_verdicts_by) m.Sample({{"jail", k.first}, {"rule", k.second}}, static_cast<double>(n));

  m.Family("relayban_firewall_changes_total", Type::kCounter, "Elements added to or removed from the kernel's sets");
  m.Sample(static_cast<double>(ls.kernel_changes));
  m.Family("relayban_firewall_errors_total", Type::kCounter, "Firewall transactions that failed (each is retried)");
  m.Sample(static_cast<double>(ls.kernel_errors));
  m.Family("relayban_firewall_backlog", Type::kGauge, "Bans and unbans waiting for the kernel");
  m.Sample(static_cast<double>(ledger_->kernel_backlog()));
  m.Family("relayban_state_writes_total", Type::kCounter, "Bans written to the state database");
  m.Sample(static_cast<double>(ls.store_writes));
  m.Family("relayban_state_errors_total", Type::kCounter, "State database writes that failed (each is retried)");
  m.Sample(static_cast<double>(ls.store_errors));
  m.Family("relayban_state_backlog", Type::kGauge, "Bans waiting to be written to the state database");
  m.Sample(static_cast<double>(ledger_->store_backlog()));
  m.Family("relayban_work_seconds_total", Type::kCounter, "Time the loop spent, by part");
  m.Sample({{"part", "reading"}}, reading_seconds_);
  m.Sample({{"part", "kernel"}}, ls.kernel_seconds);
  m.Sample({{"part", "bans_written"}}, ls.store_seconds);
  m.Sample({{"part", "journal_written"}}, journal_seconds_);
  m.Family("relayban_loop_turn_seconds", Type::kHistogram,
           "Time the loop's own work took per turn (what a control request may wait for)");
  m.Histogram({}, std::vector<double>(std::begin(kTurnBounds), std::end(kTurnBounds)), turn_stats_.buckets,
              turn_stats_.seconds);

  m.Family("relayban_lost_before_reading_lines_total", Type::kCounter,
           "Log lines dropped before relayban could read them, as journald reported: by its rate limit (reason "
           "rate_limit, by unit) or not handed to the syslog daemon that writes the log files (reason syslog_forward)");
  for (const auto& [unit, n] : journald_suppressed_) m.Sample({{"reason", "rate_limit"}, {"unit", unit}}, static_cast<double>(n));
  m.Sample({{"reason", "syslog_forward"}, {"unit", ""}}, static_cast<double>(syslog_forward_missed_));
  const auto& hs = hooks_->stats();
  m.Family("relayban_hook_runs_total", Type::kCounter,
           "Hook runs, by result: started, failed (status not 0 or not started), killed (over its time limit), "
           "dropped (queue full)");
  m.Sample({{"result", "started"}}, static_cast<double>(hs.started));
  m.Sample({{"result", "failed"}}, static_cast<double>(hs.failed));
  m.Sample({{"result", "killed"}}, static_cast<double>(hs.killed));
  m.Sample({{"result", "dropped"}}, static_cast<double>(hs.dropped));
  m.Family("relayban_hooks_running", Type::kGauge, "Hooks running now");
  m.Sample(static_cast<double>(hooks_->running()));
  m.Family("relayban_hooks_queued", Type::kGauge, "Hooks waiting for a free place");
  m.Sample(static_cast<double>(hooks_->queued()));
  m.Family("relayban_hook_duration_seconds", Type::kHistogram, "Run time of the hooks that ended");
  m.Histogram({}, std::vector<double>(std::begin(HookRunner::kDurationBounds), std::end(HookRunner::kDurationBounds)),
              hs.duration_buckets, static_cast<double>(hs.total_ms) / 1000.0);

  if (fleet_) {
    const FleetStats& fs = fleet_->stats();
    m.Family("relayban_fleet_connected", Type::kGauge, "1 while both links to the fleet's Redis are up");
    m.Sample(fleet_->connected() ? 1 : 0);
    m.Family("relayban_fleet_peers", Type::kGauge, "Other hosts of the fleet seen in the last minute");
    m.Sample(static_cast<double>(fleet_->peers().size()));
    m.Family("relayban_fleet_outbox_events", Type::kGauge, "Decisions waiting to be sent to the fleet");
    m.Sample(static_cast<double>(fleet_->outbox()));
    m.Family("relayban_fleet_events_total", Type::kCounter,
             "Fleet events: sent (confirmed by Redis), received (from other hosts), applied (changed this host's bans)");
    m.Sample({{"direction", "sent"}}, static_cast<double>(fs.sent));
    m.Sample({{"direction", "received"}}, static_cast<double>(fs.received));
    m.Sample({{"direction", "applied"}}, static_cast<double>(fs.applied));
    m.Family("relayban_fleet_refused_total", Type::kCounter,
             "Fleet events refused, by reason: forged (bad MAC or malformed), too_wide, ignored (ignore list), rate, "
             "lifted (banned before an unban)");
    m.Sample({{"reason", "forged"}}, static_cast<double>(fs.refused_forged));
    m.Sample({{"reason", "too_wide"}}, static_cast<double>(fs.refused_bounds));
    m.Sample({{"reason", "ignored"}}, static_cast<double>(fs.refused_ignored));
    m.Sample({{"reason", "rate"}}, static_cast<double>(fs.refused_rate));
    m.Sample({{"reason", "lifted"}}, static_cast<double>(fs.refused_lifted));
    m.Family("relayban_fleet_errors_total", Type::kCounter,
             "Fleet failures, by kind: send (Redis refused a decision), count (a fleet count), outbox_dropped (full), "
             "counts_dropped (not sent: Redis away or too far behind; decided locally)");
    m.Sample({{"kind", "send"}}, static_cast<double>(fs.send_errors));
    m.Sample({{"kind", "count"}}, static_cast<double>(fs.count_errors));
    m.Sample({{"kind", "outbox_dropped"}}, static_cast<double>(fs.outbox_dropped));
    m.Sample({{"kind", "counts_dropped"}}, static_cast<double>(fs.counts_dropped));
    m.Family("relayban_fleet_counted_total", Type::kCounter, "Events added to fleet rules' windows in Redis");
    m.Sample(static_cast<double>(fs.counted));
    m.Family("relayban_fleet_verdicts_won_total", Type::kCounter, "Fleet rule verdicts this host raised");
    m.Sample(static_cast<double>(fs.fleet_verdicts));
    m.Family("relayban_fleet_resyncs_total", Type::kCounter, "Full reads of the fleet's bans (new host, trimmed stream)");
    m.Sample(static_cast<double>(fs.resyncs));
    m.Family("relayban_fleet_connects_total", Type::kCounter, "Connections made to the fleet's Redis");
    m.Sample(static_cast<double>(fs.connects));
    m.Family("relayban_fleet_propagation_delay_seconds", Type::kHistogram,
             "From another host's decision to its ban applied here");
    m.Histogram({}, std::vector<double>(std::begin(FleetMember::kDelayBounds), std::end(FleetMember::kDelayBounds)),
                fs.delay_buckets, fs.delay_sum);
  }
  m.Family("relayban_config_reloads_total", Type::kCounter, "Configuration reloads, by result");
  m.Sample({{"result", "ok"}}, static_cast<double>(reloads_ok_));
  m.Sample({{"result", "rejected"}}, static_cast<double>(reloads_failed_));
  m.Family("relayban_config_last_reload_success_timestamp_seconds", Type::kGauge,
           "When the configuration in force was loaded");
  m.Sample(EpochSeconds(config_loaded_at_));
  const auto& cs = server_->stats();
  m.Family("relayban_control_connections_total", Type::kCounter,
           "Control socket connections, by result: accepted, refused (not root or the control group), timed_out, busy");
  m.Sample({{"result", "accepted"}}, static_cast<double>(cs.accepted));
  m.Sample({{"result", "refused"}}, static_cast<double>(cs.refused));
  m.Sample({{"result", "timed_out"}}, static_cast<double>(cs.timed_out));
  m.Sample({{"result", "busy"}}, static_cast<double>(cs.too_many));
  if (metrics_listener_) {
    const auto& ms = metrics_listener_->stats();
    m.Family("relayban_metrics_http_requests_total", Type::kCounter, "Requests to the metrics listener, by result");
    m.Sample({{"result", "ok"}}, static_cast<double>(ms.requests));
    m.Sample({{"result", "rejected"}}, static_cast<double>(ms.rejected));
    m.Sample({{"result", "timed_out"}}, static_cast<double>(ms.timed_out));
  }
  const auto& ds = decisions_->stats();
  m.Family("relayban_decision_log_lines_total", Type::kCounter, "Records queued for the decision log");
  m.Sample(static_cast<double>(ds.lines));
  m.Family("relayban_decision_log_errors_total", Type::kCounter, "Decision log opens and writes that failed");
  m.Sample(static_cast<double>(ds.errors));
  m.Family("relayban_decision_log_dropped_total", Type::kCounter, "Decision records lost: the file could not be written for too long");
  m.Sample(static_cast<double>(ds.dropped));
  m.Family("relayban_decisions_unsaved_total", Type::kCounter,
           "Decisions not kept for relayban explain: too many waited for the state database at once");
  m.Sample(static_cast<double>(decisions_unsaved_));
  m.Family("relayban_decision_evidence_omitted_total", Type::kCounter,
           "Decision records written without the log lines behind them: more than 1000 a second (a flood)");
  m.Sample(static_cast<double>(evidence_omitted_));
  m.Family("relayban_metrics_textfile_errors_total", Type::kCounter, "Failed writes of the metrics textfile");
  m.Sample(static_cast<double>(textfile_errors_));

  ProcessFacts p = ReadProcess();
  m.Family("process_cpu_seconds_total", Type::kCounter, "User and system CPU time spent in seconds");
  m.Sample(p.cpu_seconds);
  m.Family("process_start_time_seconds", Type::kGauge, "Start time of the process since unix epoch in seconds");
  m.Sample(p.start_time);
  m.Family("process_resident_memory_bytes", Type::kGauge, "Resident memory size in bytes");
  m.Sample(p.resident);
  m.Family("process_virtual_memory_bytes", Type::kGauge, "Virtual memory size in bytes");
  m.Sample(p.virtual_bytes);
  m.Family("process_open_fds", Type::kGauge, "Number of open file descriptors");
  m.Sample(p.open_fds);
  if (p.max_fds > 0) {
    m.Family("process_max_fds", Type::kGauge, "Maximum number of open file descriptors");
    m.Sample(p.max_fds);
  }
  return m.Take();
}

void Daemon::ApplyOutputs() {
  decisions_->SetPath(config_.decision_log);
  const MetricsSpec& ms = config_.metrics;
  std::string want = ms.on ? ms.listen : std::string();
  if (want != metrics_listen_) {
    metrics_listener_.reset();
    metrics_listen_.clear();
    if (auto addr = ParseListenAddress(want)) {
      auto l = std::make_unique<MetricsListener>(loop_, *parts_.clock, MetricsListener::Limits{},
                                                 [this](int p, const std::string& m) { Log(p, m); });
      if (auto r = l->Listen(addr->first, addr->second, [this] { return RenderMetrics(); }); !r) {
        Log(LOG_ERR, r.error().message + "; metrics are not served over HTTP (the unit needs AF_INET: see "
                                         "/usr/share/doc/relayban/examples/metrics-http.conf)");
      } else {
        Log(LOG_INFO, "metrics served on http://" + want + "/metrics");
        metrics_listener_ = std::move(l);
        metrics_listen_ = want;
      }
    }
  }
  next_textfile_ = Clock::Steady{};  // written at the next tick
}

void Daemon::WriteTextfile() {
  const MetricsSpec& ms = config_.metrics;
  if (!ms.on || ms.textfile.empty()) return;
  Clock::Steady now = parts_.clock->Monotonic();
  if (now < next_textfile_) return;
  next_textfile_ = now + ms.every;
  // A temporary file beside it, then rename: the collector never reads half a file. Mode
  // 0644 whatever our umask: node_exporter runs as its own user.
  std::filesystem::path target(ms.textfile);
  std::string tmp = (target.parent_path() / ("." + target.filename().string() + ".tmp")).string();
  std::string text = RenderMetrics();
  std::string problem;
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    problem = tmp + ": " + std::strerror(errno);
  } else {
    bool ok = fchmod(fd, 0644) == 0;
    for (size_t done = 0; ok && done < text.size();) {
      ssize_t n = write(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) ok = false;
      else done += static_cast<size_t>(n);
    }
    if (!ok) problem = tmp + ": " + std::strerror(errno);
    if (close(fd) != 0 && ok) problem = tmp + ": " + std::strerror(errno);
    if (problem.empty() && rename(tmp.c_str(), ms.textfile.c_str()) != 0) problem = ms.textfile + ": " + std::strerror(errno);
    if (!problem.empty()) unlink(tmp.c_str());
  }
  if (!problem.empty()) {
    ++textfile_errors_;
    if (problem != textfile_problem_)
      Log(LOG_WARNING, "cannot write the metrics textfile " + problem +
                           " (is prometheus-node-exporter installed? set metrics.textfile, or false)");
  } else if (!textfile_problem_.empty()) {
    Log(LOG_NOTICE, "the metrics textfile " + ms.textfile + " is written again");
  }
  textfile_problem_ = problem;
}

}  // namespace relayban
