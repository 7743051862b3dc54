#include "daemon.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "log_sink.hpp"
#include "reopening_store.hpp"
#include "job_thread.hpp"
#include "store_writer.hpp"
#include "relayban/config/config_loader.hpp"
#include "relayban/core/text.hpp"
#include "relayban/version.hpp"
#include "source/local_zone.hpp"

namespace relayban {
namespace {

constexpr size_t kLinesPerTurn = 20000;        // about 10 ms of reading ordinary lines
constexpr auto kReadingPerTurn = std::chrono::milliseconds(20);  // and never much longer
constexpr size_t kReplayPerTurn = 20000;       // journal records fed to a new engine per turn
constexpr size_t kCheckpointEvery = 20000;     // journal records that make a checkpoint at once
constexpr size_t kSpareJournalAtMost = size_t{8} << 20;  // a written batch's memory kept for the next
constexpr size_t kMaxJournalPending = 500000;  // kept in memory while the database fails
constexpr size_t kJournalKeep = 2000000;       // records kept at most (the oldest go first)
constexpr size_t kPrunePerTick = 5000;         // journal records deleted at most per second
constexpr auto kCheckpointInterval = std::chrono::milliseconds(200);
constexpr const char* kKernelNote = "kernel_as_left";
constexpr auto kAdminNoteKept = std::chrono::hours(24 * 30);
constexpr size_t kDecisionsPerWrite = 2000;         // decisions per state database transaction
// Waiting to be written, at most: in a burst each new record pushes out the oldest, and a
// queue that fits the CPU's cache does that cheaply (16 MB: a tenth of the loop's time went
// to freeing records long out of the cache).
constexpr size_t kDecisionsPendingBytes = 4 << 20;
// While lines come, decisions go to the store a slice at most this often: in a burst most of
// them are pushed out of the kept newest by later ones before they would be read.
constexpr auto kDecisionsWhileReading = std::chrono::seconds(1);

}  // namespace

Daemon::Daemon(DaemonOptions options, DaemonParts parts) : options_(std::move(options)), parts_(std::move(parts)) {
  if (!parts_.clock) parts_.clock = std::make_unique<SystemClock>();
  if (!parts_.spawner) parts_.spawner = MakePosixSpawner();
  if (!parts_.probe) parts_.probe = RealHostProbe();
  if (!parts_.notify) parts_.notify = [](const std::string& s) { sd_notify(0, s.c_str()); };
  if (!parts_.log) parts_.log = LogLine;
}

Daemon::~Daemon() {
  // The parts that refer to others go first.
  metrics_listener_.reset();
  fleet_.reset();
  server_.reset();
  jobs_.clear();
  hooks_.reset();
  matcher_.reset();
  engine_.reset();
  sources_.reset();
  ledger_.reset();
  writer_.reset();  // runs what was handed over; its outcomes go nowhere now
  kernel_thread_.reset();  // the same
  for (int fd : {sigfd_, timerfd_})
    if (fd >= 0) close(fd);
}

void Daemon::Log(int priority, const std::string& msg) const { parts_.log(priority, msg); }

int Daemon::Start() {
  std::vector<Error> errors;
  auto c = LoadConfig(options_.config, errors);
  if (!c) {
    for (const auto& e : errors) Log(LOG_ERR, e.ToString());
    Log(LOG_ERR, "configuration rejected; not starting");
    return 78;
  }
  config_ = *c;
  auto peers = ResolvePeerPolicy(config_.control_group);
  if (!peers) {
    Log(LOG_ERR, peers.error().message);
    return 78;
  }
  // The fleet's key and password files are read now: a bad one stops the start at once.
  std::optional<FleetOptions> fleet_options;
  if (config_.fleet.on) {
    auto fo = FleetOptionsOf(config_.fleet);
    if (!fo) {
      Log(LOG_ERR, fo.error().message);
      return 78;
    }
    fleet_options = std::move(*fo);
  }
  auto log = [this](int p, const std::string& m) { Log(p, m); };
  decisions_ = std::make_unique<DecisionLog>(log, parts_.store_thread);
  config_loaded_at_ = parts_.clock->Now();
  const Clock& clock = *parts_.clock;

  if (!parts_.store) {
    std::error_code ec;
    std::filesystem::create_directories(config_.state_dir, ec);
    auto store = std::make_unique<ReopeningStore>(config_.state_dir + "/state.db", clock, log, OpenSqliteStore);
    reopening_ = store.get();
    parts_.store = std::move(store);
  }
  if (!parts_.firewall) {
    if (options_.dry_run || config_.firewall.backend == "dry-run") {
      parts_.firewall = MakeDryRunFirewall([this](const std::string& l) { Log(LOG_INFO, l); });
    } else {
      FirewallSpecOptions fo;
      fo.table = config_.firewall.table;
      const auto& hooks = config_.firewall.hooks;
      fo.input = std::find(hooks.begin(), hooks.end(), "input") != hooks.end();
      fo.forward = std::find(hooks.begin(), hooks.end(), "forward") != hooks.end();
      fo.reject = config_.firewall.verdict == "reject";
      if (!config_.firewall.own_table) fo.ownership = FirewallSpecOptions::Ownership::kNone;
      auto fw = OpenNftFirewall(fo);
      if (!fw) {
        Log(LOG_ERR, "firewall: " + fw.error().ToString());
        return 71;
      }
      parts_.firewall = std::move(fw.value());
    }
  }
  // A clean exit noted the ruleset generation it left the kernel at: if nobody committed
  // anything since, the kernel holds exactly the store's bans in force and need not be
  // listed (a million elements take the kernel minutes to list). Read before our own first
  // commit; used once.
  bool kernel_as_left = false;
  if (auto note = Store().GetNote(kKernelNote); note && *note) {
    auto gen = parts_.firewall->Generation();
    kernel_as_left = gen && *gen && KernelNote(**gen) == **note;
    (void)Store().SetNote(kKernelNote, std::nullopt);
  }
  if (auto r = parts_.firewall->EnsureTable(); !r) {
    Log(LOG_ERR, "firewall: " + r.error().ToString());
    return 71;
  }

  BanLedger::Options ledger_options;
  if (parts_.store_thread) {
    writer_ = std::make_unique<StoreWriter>(*parts_.store);
    ledger_options.writer = writer_.get();
  }
  if (parts_.kernel_thread) {
    kernel_thread_ = std::make_unique<JobThread>("relayban-kernel");
    ledger_options.kernel_thread = kernel_thread_.get();
  }
  ledger_ = std::make_unique<BanLedger>(*parts_.firewall, Store(), clock, log, ledger_options);
  auto report = ledger_->Restore(kernel_as_left);
  offences_ = std::move(report.offences);
  Log(LOG_INFO, "restored " + std::to_string(report.restored) + " active bans" +
                    (report.adopted ? ", adopted " + std::to_string(report.adopted) + " found only in the kernel" : "") +
                    (report.lifted ? ", removing " + std::to_string(report.lifted) + " lifted by hand" : "") +
                    (report.missing ? "; " + std::to_string(report.missing) + " go to the kernel again" : ""));
  if (reopening_) store_epoch_ = reopening_->epoch();

  hooks_ = std::make_unique<HookRunner>(
      *parts_.spawner, clock, HookRunner::Limits{config_.hooks.max_running, config_.hooks.max_queued, config_.hooks.timeout},
      log);
  sources_ = std::make_unique<SourceSet>(config_.max_line, log);
  matcher_ = std::make_unique<LineMatcher>();

  if (auto r = loop_.Open(); !r) {
    Log(LOG_ERR, r.error().message);
    return 71;
  }
  if (options_.handle_signals) {
    sigset_t mask;
    sigemptyset(&mask);
    for (int s : {SIGHUP, SIGTERM, SIGINT, SIGCHLD}) sigaddset(&mask, s);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    signal(SIGPIPE, SIG_IGN);
    sigfd_ = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    loop_.Watch(sigfd_, Poller::kReadable, [this](uint32_t) { OnSignal(); });
    timerfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    itimerspec its{{1, 0}, {1, 0}};
    timerfd_settime(timerfd_, 0, &its, nullptr);
    loop_.Watch(timerfd_, Poller::kReadable, [this](uint32_t) {
      uint64_t expirations;
      (void)!read(timerfd_, &expirations, sizeof expirations);
      Tick();
    });
  }
  if (writer_)
    loop_.Watch(writer_->fd(), Poller::kReadable, [this](uint32_t) {
      writer_->Poll();
      more_work_ = true;
    });
  if (decisions_->fd() >= 0)
    loop_.Watch(decisions_->fd(), Poller::kReadable, [this](uint32_t) {
      decisions_->Poll();
      more_work_ = true;
    });
  if (kernel_thread_)
    loop_.Watch(kernel_thread_->fd(), Poller::kReadable, [this](uint32_t) {
      kernel_thread_->Poll();
      more_work_ = true;
    });
  if (auto fd = sources_->Open(); fd)
    loop_.Watch(*fd, Poller::kReadable, [this](uint32_t) { sources_->OnInotify(); });
  else
    Log(LOG_WARNING, fd.error().message + "; logs are read once a second");

  if (!BuildEngine(config_, true)) return 78;

  server_ = std::make_unique<ControlServer>(loop_, clock, ControlServer::Limits{}, log);
  if (auto r = server_->Listen(config_.control_socket, *peers,
                               [this](ClientId id, std::string_view line) { OnRequest(id, line); });
      !r) {
    Log(LOG_ERR, r.error().ToString());
    return 71;
  }
  ApplyOutputs();
  if (fleet_options) StartFleet(std::move(*fleet_options));
  Log(LOG_INFO, std::string("relayban ") + kVersion + " running: " + parts_.firewall->Describe() + ", " +
                    std::to_string(sources_->file_count()) + " log files, control socket " + config_.control_socket);
  parts_.notify("READY=1");
  more_work_ = true;
  return 0;
}

std::vector<std::pair<std::string, Time>> Daemon::LoadAdminNote(const char* key) {
  std::vector<std::pair<std::string, Time>> out;
  auto note = Store().GetNote(key);
  if (!note || !*note) return out;
  auto j = nlohmann::json::parse(**note, nullptr, false);
  if (!j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.value().is_number_integer()) out.emplace_back(it.key(), Time(Micros(it.value().get<int64_t>())));
  return out;
}

void Daemon::SaveAdminNote(const char* key, const std::string& name, Time at) {
  Time now = parts_.clock->Now();
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [n, t] : LoadAdminNote(key))
    if (t > now - kAdminNoteKept) j[n] = t.time_since_epoch().count();
  j[name] = at.time_since_epoch().count();
  if (auto r = Store().SetNote(key, j.dump()); !r)
    Log(LOG_ERR, "cannot keep the admin's decision in the state database (" + r.error().message +
                     "); it holds until the next restart");
}

bool Daemon::BuildEngine(const Config& config, bool initial) {
  ActivationPlan plan = PlanActivation(config, *parts_.probe);
  EngineOptions eo;
  eo.jails = plan.on;
  eo.zone = HostLocalZone();
  eo.book = ledger_.get();
  // Every decision keeps the lines behind it (the decision log, `relayban explain`).
  eo.evidence = true;
  // No jail on: an engine without jails, so the daemon still answers and reloads.
  Config effective = config;
  if (plan.on.empty()) effective.jails.clear();
  auto e = Engine::Create(effective, eo);
  if (!e) {
    Log(LOG_ERR, "engine: " + e.error().ToString());
    return false;
  }
  auto engine = std::move(e.value());
  for (const auto& [p, t] : offences_) engine->policy().AddOffence(p, t);
  // What admins decided (forgiven accounts, addresses lifted by hand) holds for the journal
  // replayed next, too.
  for (const auto& [account, at] : LoadAdminNote(kForgivenNote)) engine->Forgive(account, at);
  for (const auto& [ip, at] : LoadAdminNote(kExemptedNote))
    if (auto a = IpAddress::Parse(ip)) engine->Exempt(*a, at);
  engine->SetJournal([this](Time t, std::string_view record) { journal_pending_.Add(t, record); });
  // Per-account history before the journal is replayed over it (counting there is
  // idempotent): from the running engine at a reload (what it had not saved is saved
  // first), from the state database at start.
  if (engine->uses_account_history()) {
    size_t restored = 0;
    if (engine_) {
      SaveAccountHistory(true);
      for (const auto& [account, bytes] : engine_->TakeAccountHistory(SIZE_MAX, true))
        restored += engine->RestoreAccountHistory(account, bytes);
    } else if (auto rows = Store().LoadAccountHistory()) {
      for (const auto& [account, bytes] : *rows) restored += engine->RestoreAccountHistory(account, bytes);
      if (!rows->empty())
        Log(LOG_INFO, "account history of " + std::to_string(restored) + " accounts restored" +
                          (restored < rows->size() ? " (" + std::to_string(rows->size() - restored) + " unreadable, skipped)" : ""));
    } else {
      Log(LOG_ERR, "cannot read the account history (" + rows.error().message + "): relative limits warm up again");
    }
  }
  // The new engine learns the counts of the last window from the journal before it reads a
  // line: the records in the database, then those not written yet.
  replaying_ = true;
  replay_after_ = 0;
  replayed_ = 0;
  replay_since_ = parts_.clock->Now() - engine->LongestWindow() - std::chrono::minutes(1);
  for (const auto& j : plan.jails) Log(LOG_INFO, "jail " + j.name + ": " + j.why);
  Progress saved;
  if (auto p = Store().LoadProgress()) saved = std::move(*p);
  std::vector<int> journal_fds_before = sources_->journal_fds();
  if (engine_) CarryCounters();  // while the sources still name the old engine's ids
  Engine* raw = engine.get();
  sources_->Follow(plan, [raw](const std::vector<std::string>& jails, StampFormat f) { return raw->AddSource(jails, f); },
                   saved, initial);
  sources_->WatchLosses(plan.loss_journal, [this](const JournaldLoss& loss) { OnJournaldLoss(loss); });
  for (int fd : journal_fds_before) loop_.Unwatch(fd);
  for (int fd : sources_->journal_fds())
    loop_.Watch(fd, Poller::kReadable, [this, fd](uint32_t) { sources_->OnJournalReady(fd); });
  engine_ = std::move(engine);
  engine_->SetEvidenceLines(evidence_records_this_second_ < kEvidencePerSecond);
  plan_ = std::move(plan);
  RefreshSourceNames();
  return true;
}

namespace {
uint64_t SaturatingAdd(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
}  // namespace

void Daemon::OnJournaldLoss(const JournaldLoss& loss) {
  std::string n = std::to_string(loss.lines);
  if (loss.kind == JournaldLoss::Kind::kRateLimit) {
    if (std::find(plan_.units.begin(), plan_.units.end(), loss.unit) == plan_.units.end()) return;
    journald_suppressed_[loss.unit] = SaturatingAdd(journald_suppressed_[loss.unit], loss.lines);
    Log(LOG_WARNING, "journald dropped " + n + " lines of " + loss.unit +
                         " (its rate limit): no log reader saw them, relayban neither; raise LogRateLimitBurst= for the "
                         "mail units or RateLimitBurst= in journald.conf (see the README)");
    return;
  }
  if (plan_.files.empty()) return;  // the jails read the journal itself
  syslog_forward_missed_ = SaturatingAdd(syslog_forward_missed_, loss.lines);
  Log(LOG_WARNING, "journald could not hand " + n + " lines to the syslog daemon (its socket was full): they are " +
                       "missing from the log files relayban reads, such as " + plan_.files.front().path);
}

void Daemon::RefreshSourceNames() {
  source_names_.clear();
  for (const auto& src : sources_->Describe()) {
    if (src.engine_source < 0) continue;
    if (source_names_.size() <= static_cast<size_t>(src.engine_source)) source_names_.resize(static_cast<size_t>(src.engine_source) + 1);
    source_names_[static_cast<size_t>(src.engine_source)] = src.name;
  }
}

namespace {

// What decides a rule's counts: two rules of the same name count alike when these agree.
std::string RuleShape(const RuleSpec& r) {
  std::string events;
  for (const auto& e : r.events) events += (events.empty() ? "" : ",") + e;
  return std::string("key ") + (r.key == RuleKey::kIp ? "ip" : "account") + ", events " + events +
         (r.distinct == Field::kNone ? "" : std::string(", distinct ") + FieldName(r.distinct)) + ", threshold " +
         std::to_string(r.threshold) + ", window " + FormatDuration(r.window);
}

}  // namespace

// Rules are counted from the journal of scored events, not from state carried over: a rule
// whose definition changed is recounted under its new one (said here), a new rule counts the
// journal's events too, and a rule that went is forgotten.
std::vector<std::string> Daemon::RuleChanges(const Config& before, const Config& after) {
  std::vector<std::string> out;
  for (const auto& nj : after.jails) {
    auto oj = std::find_if(before.jails.begin(), before.jails.end(), [&](const JailSpec& j) { return j.name == nj.name; });
    for (const auto& nr : nj.rules) {
      const RuleSpec* orule = nullptr;
      if (oj != before.jails.end())
        for (const auto& r : oj->rules)
          if (r.name == nr.name) orule = &r;
      if (!orule) {
        out.push_back("jail " + nj.name + ": new rule " + nr.name + " (" + RuleShape(nr) +
                      ") counts the journal's events of its window");
      } else if (RuleShape(*orule) != RuleShape(nr)) {
        out.push_back("jail " + nj.name + ": rule " + nr.name + " changed from " + RuleShape(*orule) + " to " +
                      RuleShape(nr) + "; its counts are rebuilt from the journal under the new definition");
      }
    }
  }
  return out;
}

bool Daemon::Reload(std::vector<Error>* errors) {
  std::vector<Error> local;
  std::vector<Error>& errs = errors ? *errors : local;
  auto c = LoadConfig(options_.config, errs);
  if (!c) {
    for (const auto& e : errs) Log(LOG_ERR, e.ToString());
    Log(LOG_ERR, "new configuration rejected; the old one keeps running");
    ++reloads_failed_;
    return false;
  }
  auto peers = ResolvePeerPolicy(c->control_group);
  if (!peers) {
    errs.push_back(peers.error());
    Log(LOG_ERR, peers.error().message + "; the old configuration keeps running");
    ++reloads_failed_;
    return false;
  }
  std::optional<FleetOptions> fleet_options;
  if (c->fleet.on) {
    auto fo = FleetOptionsOf(c->fleet);
    if (!fo) {
      errs.push_back(fo.error());
      Log(LOG_ERR, fo.error().message + "; the old configuration keeps running");
      ++reloads_failed_;
      return false;
    }
    fleet_options = std::move(*fo);
  }
  if (auto off = Store().Offences(parts_.clock->Now() - c->ban.max)) offences_ = std::move(*off);
  for (const auto& change : RuleChanges(config_, *c)) Log(LOG_NOTICE, change);
  if (!BuildEngine(*c, true)) {
    ++reloads_failed_;
    return false;
  }
  config_ = *c;
  ++reloads_ok_;
  // The fleet link is made again only when its settings changed (the outbox and the
  // stream position are kept in the state database across).
  if (!fleet_options) {
    if (fleet_) {
      Log(LOG_NOTICE, "fleet mode is off now");
      fleet_->Stop();
      fleet_.reset();
    }
  } else if (!fleet_ || !(fleet_->options() == *fleet_options)) {
    StartFleet(std::move(*fleet_options));
  }
  config_loaded_at_ = parts_.clock->Now();
  ApplyOutputs();
  server_->SetPolicy(*peers);
  more_work_ = true;
  return true;
}

std::string Daemon::EvidenceJson(const EvidenceLines& lines) {
  // Every ban of one account verdict carries the same lines: formatted once.
  if (lines.identity() != nullptr && lines.identity() == evidence_cache_.identity()) return evidence_cache_text_;
  std::string a = "[";
  for (const Evidence& e : lines) {
    if (a.size() > 1) a += ',';
    a += "{\"log\":";
    if (e.source >= 0 && static_cast<size_t>(e.source) < source_names_.size())
      AppendJsonString(a, source_names_[static_cast<size_t>(e.source)]);
    else
      a += "null";
    a += ",\"line\":";
    AppendJsonString(a, e.line);
    a += '}';
  }
  a += ']';
  evidence_cache_ = lines;
  evidence_cache_text_ = a;
  return a;
}

// The lines behind a decision, for the decision log: in full for the first
// kEvidencePerSecond records of a second; past that (a flood), the records keep every other
// field and say how many lines they leave out, so a botnet's million bans cannot write
// gigabytes of repeated lines.
bool Daemon::CountEvidence(const EvidenceLines& lines) {
  if (lines.count() == 0) return true;
  if (lines.size() == lines.count() && evidence_records_this_second_ < kEvidencePerSecond) {
    // The second's share used up, the engine only counts lines until the next second.
    if (++evidence_records_this_second_ == kEvidencePerSecond && engine_) engine_->SetEvidenceLines(false);
    return true;
  }
  ++evidence_omitted_;
  return false;
}

void Daemon::WriteEvidence(DecisionRecord& w, const EvidenceLines& lines, bool with) {
  if (with) w.Raw("evidence", EvidenceJson(lines));
  else w.Raw("evidence", "[]").Int("evidence_omitted", static_cast<int64_t>(lines.count()));
}

void Daemon::AddEvidence(DecisionRecord& w, const EvidenceLines& lines) { WriteEvidence(w, lines, CountEvidence(lines)); }

void Daemon::HandleOutput() {
  Time now = parts_.clock->Now();
  std::string now_text;
  if (!out_.orders.empty() || !out_.verdicts.empty()) now_text = FormatIso8601(now);
  for (const AccountVerdict& v : out_.verdicts) {
    ++account_verdicts_by_[{v.jail, v.rule}];
    Log(LOG_WARNING, "account verdict: " + Printable(v.account, 80) + " jail=" + v.jail + " rule=" + v.rule + " (" +
                         std::to_string(v.addresses) + " addresses) reason=\"" + Printable(v.reason, 200) + "\"");
    DecisionRecord w;
    w.Str("time", now_text).Str("action", "account_verdict").Str("account", v.account).Str("jail", v.jail)
        .Str("rule", v.rule).Str("reason", v.reason).Int("ban_s", v.ban.count())
        .Int("addresses", static_cast<int64_t>(v.addresses)).Str("log_time", FormatIso8601(v.at));
    AddEvidence(w, v.evidence);
    Decision(w.Take(), now, "", v.account);
  }
  for (const Order& o : out_.orders) {
    // A verdict's fan-out bans many addresses for one rule: its counters are looked up once,
    // not with a key built again for every ban.
    LastRuleBan& last = last_rule_ban_;
    if (!last.total || last.jail != o.jail || last.rule != o.rule) {
      last.jail = o.jail;
      last.rule = o.rule;
      last.total = &bans_by_[{o.jail, o.rule, "rule"}];
      last.unlogged = nullptr;
    }
    ++*last.total;
    std::string target = o.target.ToString();
    // Every field after the target is the same for a verdict's bans: rendered once.
    bool with_evidence = CountEvidence(o.evidence);
    RecordTail& tail = record_tail_;
    // Past the flood's share of records with their lines, a record says only how many
    // lines it leaves out: a verdict's tail then serves the next verdicts alike too (in a
    // botnet's burst, each line's).
    bool same = tail.valid && tail.with_evidence == with_evidence &&
                (with_evidence ? SameButTarget(tail.order, o)
                               : SameButTargetAndLines(tail.order, o) && tail.order.evidence.count() == o.evidence.count());
    if (!same) {
      tail = {true, o, with_evidence, {}};
      DecisionRecord t;
      t.Str("jail", o.jail).Str("rule", o.rule).StrOrNull("account", o.account).Str("reason", o.reason)
          .Int("duration_s", o.duration.count()).Str("origin", "rule").Str("log_time", FormatIso8601(o.at));
      WriteEvidence(t, o.evidence, with_evidence);
      tail.rest = std::make_shared<const std::string>(t.TakeTail());
    }
    // Its own head, then the shared rest: held once for all the verdict's records.
    DecisionRecord w;
    w.Reuse(std::move(record_head_));
    w.Str("time", now_text).Str("action", "ban").Str("target", target);
    Decision(w.Head(), tail.rest, now, target, o.account);
    record_head_ = w.TakeBuffer();
    PublishBan(o.target, o.duration, o.jail, o.rule, o.account, o.reason, false);
    // One line per ban, up to kBanLinesPerSecondShown; past that, a flood is summed up per
    // jail and rule once a second (a botnet's million bans must not bury the journal).
    if (ban_lines_this_second_ >= kBanLinesPerSecondShown) {
      if (!last.unlogged) last.unlogged = &unlogged_bans_[o.jail + " rule=" + o.rule];
      ++*last.unlogged;
      continue;
    }
    ++ban_lines_this_second_;
    Log(LOG_NOTICE, "ban " + target + " for " +
                        (o.duration.count() ? FormatDuration(o.duration) : std::string("ever")) + " jail=" + o.jail +
                        " rule=" + o.rule + (o.account.empty() ? "" : " account=" + Printable(o.account, 80)) +
                        " reason=\"" + Printable(o.reason, 200) + "\"");
  }
  for (const auto& n : out_.notices) Log(LOG_WARNING, n);
  for (auto& h : out_.hooks) hooks_->Run(std::move(h.argv));
  std::vector<FleetCount> counts;
  counts.swap(out_.fleet_counts);
  out_.clear();
  for (const FleetCount& c : counts) CountInFleet(c);
}

bool Daemon::ReplaySlice() {
  auto records = Store().LoadJournal(replay_after_, replay_since_, kReplayPerTurn);
  if (!records) {
    Log(LOG_ERR, "cannot read the journal (" + records.error().message +
                     "): the counts of the last window start afresh");
    records = std::vector<std::pair<uint64_t, std::string>>{};
  }
  for (const auto& [seq, data] : *records) {
    replayed_ += engine_->Replay(data);
    replay_after_ = seq;
  }
  if (records->size() == kReplayPerTurn) return true;
  // Then what is not in the database: the records not handed over yet, and those of a
  // checkpoint it refused (back in front of them once its outcome is taken).
  FinishWrites();
  for (size_t i = 0; i < journal_pending_.size(); ++i) replayed_ += engine_->Replay(journal_pending_.data(i));
  replaying_ = false;
  if (replayed_)
    Log(LOG_INFO, "replayed " + std::to_string(replayed_) + " journal events of the last " +
                      FormatDuration(engine_->LongestWindow()) + ": counts, distinct sets, accounts and correlation restored");
  return false;
}

bool Daemon::DoWork() {
  if (replaying_) {
    turn_part_ = "restoring";
    bool more = ledger_->Flush();
    // Bans protect only once they are in the kernel: after a crash every ban goes back there
    // (a million take about two seconds) before the journal's counts are rebuilt. A firewall
    // that refuses them (retried with backoff) does not hold the replay up.
    bool kernel_first = !ledger_->KernelSettled() && ledger_->firewall_problem().empty();
    if (!kernel_first) more = ReplaySlice() || more;
    more = RunJobs() || more;
    return more || kernel_first || !replaying_;
  }
  // Reading, the journal's checkpoint and the slices for the kernel and the store take
  // turns of their own (about 20 ms each under a burst), so a control request, served
  // between turns, waits for one of them and never for all three.
  if (phase_ == Phase::kRead) {
    turn_part_ = "reading";
    Time now = parts_.clock->Now();
    FollowFleetState();
    // Lines crafted to keep the regex engine busy (16 KiB each) cost a millisecond or more:
    // the time, not the number of lines, bounds a turn.
    Clock::Steady started = parts_.clock->Monotonic();
    Clock::Steady until = started + kReadingPerTurn;
    // A busy turn's lines are matched on the matching thread while this one scores them.
    matcher_->Begin(*engine_, now, [&](int source, std::string_view line, const Engine::ParsedLine& parsed,
                                       const PatternHit* hits) {
      engine_->OnParsed(source, line, parsed, hits, out_);
      if (!out_.orders.empty() || !out_.hooks.empty() || !out_.notices.empty() || !out_.fleet_counts.empty())
        HandleOutput();
    });
    sources_->Read(
        kLinesPerTurn, [&](int source, std::string_view line) { matcher_->Add(source, line); },
        [&] { return parts_.clock->Monotonic() >= until; });
    matcher_->Finish();
    reading_seconds_ += std::chrono::duration<double>(parts_.clock->Monotonic() - started).count();
    phase_ = Phase::kCheckpoint;
    return true;
  }
  if (phase_ == Phase::kCheckpoint) {
    phase_ = Phase::kFlush;
    if (journal_pending_.size() >= kCheckpointEvery ||
        (!journal_pending_.empty() && parts_.clock->Monotonic() - last_checkpoint_ >= kCheckpointInterval)) {
      turn_part_ = "journal";
      Checkpoint();
      return true;
    }
    // Decisions left after the last lines' checkpoint (a checkpoint saves at most a slice
    // of them) go on to the store a slice a turn, not only when more lines come.
    if (journal_pending_.empty() && !decisions_pending_.empty() && !decisions_in_flight_ &&
        parts_.clock->Monotonic() - last_checkpoint_ >= kCheckpointInterval) {
      turn_part_ = "journal";
      SaveDecisions(false);
      return true;
    }
  }
  turn_part_ = "flushing";
  phase_ = Phase::kRead;
  bool more = sources_->Pending();
  more = ledger_->Flush() || more;
  if (fleet_) more = fleet_->Flush() || more;
  more = RunJobs() || more;
  decisions_->Flush();
  return more;
}

void Daemon::Turn(int max_wait_ms) {
  loop_.Turn(more_work_ ? 0 : max_wait_ms);
  Clock::Steady started = parts_.clock->Monotonic();
  more_work_ = DoWork();
  double took = std::chrono::duration<double>(parts_.clock->Monotonic() - started).count();
  TurnStats& t = turn_stats_;
  ++t.turns;
  t.seconds += took;
  size_t b = 0;
  while (b < std::size(kTurnBounds) && took > kTurnBounds[b]) ++b;
  ++t.buckets[b];
  if (took > t.longest) {
    t.longest = took;
    t.longest_part = turn_part_;
  }
}

void Daemon::SaveAccountHistory(bool all) {
  if (!engine_ || !engine_->uses_account_history()) return;
  constexpr size_t kSlice = 5000;
  Time now = parts_.clock->Now();
  do {
    auto rows = engine_->TakeAccountHistory(kSlice);
    if (rows.empty()) return;
    // An account idle for five weeks has nothing left in a four-week history.
    if (auto r = Store().SaveAccountHistory(rows, now, now - std::chrono::hours(24 * 35)); !r) {
      for (const auto& [account, bytes] : rows) engine_->AccountHistoryUnsaved(account);
      return;
    }
  } while (all);
}

void Daemon::SaveDecisions(bool all) {
  const size_t keep = options_.decisions_kept;
  if (writer_ && !all) {
    // A slice at a time on the writer's thread; a refused one goes back to the front (what
    // came meanwhile still bounded: its oldest go).
    if (decisions_in_flight_ || decisions_pending_.empty()) return;
    size_t n = std::min(decisions_pending_.size(), kDecisionsPerWrite);
    auto slice = std::make_shared<std::vector<DecisionRow>>(
        std::make_move_iterator(decisions_pending_.begin()), std::make_move_iterator(decisions_pending_.begin() + static_cast<long>(n)));
    decisions_pending_.erase(decisions_pending_.begin(), decisions_pending_.begin() + static_cast<long>(n));
    for (const auto& d : *slice) decisions_pending_bytes_ -= std::min(decisions_pending_bytes_, d.size());
    decisions_in_flight_ = true;
    decisions_saved_at_ = parts_.clock->Monotonic();
    writer_->Submit([slice, keep](StateStore& s) { return s.SaveDecisions(*slice, keep); },
                    [this, slice](const Result<void>& r) {
                      decisions_in_flight_ = false;
                      if (r) return;
                      for (const auto& d : *slice) decisions_pending_bytes_ += d.size();
                      decisions_pending_.insert(decisions_pending_.begin(), std::make_move_iterator(slice->begin()),
                                                std::make_move_iterator(slice->end()));
                      TrimDecisions();
                    });
    return;
  }
  FinishWrites();  // everything, at a stop: after what is on its way
  decisions_saved_at_ = parts_.clock->Monotonic();
  while (!decisions_pending_.empty()) {
    size_t n = all ? decisions_pending_.size() : std::min(decisions_pending_.size(), kDecisionsPerWrite);
    std::vector<DecisionRow> slice(std::make_move_iterator(decisions_pending_.begin()),
                                   std::make_move_iterator(decisions_pending_.begin() + static_cast<long>(n)));
    auto r = Store().SaveDecisions(slice, keep);
    if (!r) {
      // Put back; the store's problem shows as degraded through the ledger's writes.
      std::move(slice.begin(), slice.end(), decisions_pending_.begin());
      return;
    }
    decisions_pending_.erase(decisions_pending_.begin(), decisions_pending_.begin() + static_cast<long>(n));
    for (const auto& d : slice) decisions_pending_bytes_ -= std::min(decisions_pending_bytes_, d.size());
    if (!all) return;
  }
}

void Daemon::TrimDecisions() {
  // Under a botnet's burst the oldest unsaved go: `explain` is asked about recent bans, and
  // the store keeps only the newest `decisions_kept` anyway.
  while (!decisions_pending_.empty() &&
         (decisions_pending_.size() > options_.decisions_kept || decisions_pending_bytes_ > kDecisionsPendingBytes)) {
    decisions_pending_bytes_ -= std::min(decisions_pending_bytes_, decisions_pending_.front().size());
    decisions_pending_.pop_front();
    ++decisions_unsaved_;
  }
}

void Daemon::Decision(std::string_view head, const std::shared_ptr<const std::string>& tail, Time t,
                      const std::string& target, const std::string& account) {
  decisions_->Add(head, *tail);
  KeepDecision(t, target, account, head, tail);
}

void Daemon::Decision(std::string record, Time t, const std::string& target, const std::string& account) {
  decisions_->Add(record);
  KeepDecision(t, target, account, record, nullptr);
}

void Daemon::KeepDecision(Time t, const std::string& target, const std::string& account, std::string_view head,
                          const std::shared_ptr<const std::string>& tail) {
  // Kept for `relayban explain` too, bounded (TrimDecisions). Full, as in a burst, the oldest
  // row goes and its buffers take the new values: freeing a million records long out of the
  // cache cost more than writing them.
  size_t size = head.size() + (tail ? tail->size() : 0);
  if (!decisions_pending_.empty() && (decisions_pending_.size() >= options_.decisions_kept ||
                                      decisions_pending_bytes_ + size > kDecisionsPendingBytes)) {
    DecisionRow row = std::move(decisions_pending_.front());
    decisions_pending_.pop_front();
    ++decisions_unsaved_;
    decisions_pending_bytes_ -= std::min(decisions_pending_bytes_, row.size());
    row.time = t;
    row.target = target;
    row.account = account;
    row.record.assign(head);  // a copy into its buffer, if it has room
    row.tail = tail;
    decisions_pending_.push_back(std::move(row));
  } else {
    decisions_pending_.push_back(DecisionRow{t, target, account, std::string(head), tail});
  }
  decisions_pending_bytes_ += size;
  TrimDecisions();
}

void Daemon::Checkpoint() {
  // A few decisions go at once; a burst's, a slice a second (kDecisionsWhileReading).
  if (decisions_pending_.size() < kDecisionsPerWrite ||
      parts_.clock->Monotonic() - decisions_saved_at_ >= kDecisionsWhileReading)
    SaveDecisions(false);
  // Not while a new engine replays: its positions are those of the lines it has not read.
  if (replaying_ || checkpoint_in_flight_) return;
  last_checkpoint_ = parts_.clock->Monotonic();
  if (writer_) {
    // The records and the positions they end at, as they are now, in one transaction on
    // the writer's thread; refused, the records go back in front of the newer ones (the
    // next checkpoint's positions are later still).
    auto records = std::make_shared<JournalBatch>(std::move(journal_pending_));
    // New records go into the buffers of the last batch written, when there is one: a
    // burst's batches had grown from nothing every time (copied as they doubled, on fresh
    // memory: 3 % of the loop).
    journal_pending_ = std::move(spare_journal_);
    spare_journal_ = JournalBatch();
    journal_pending_.clear();
    auto progress = std::make_shared<Progress>(sources_->progress());
    checkpoint_in_flight_ = true;
    Clock::Steady started = last_checkpoint_;
    writer_->Submit([records, progress](StateStore& s) { return s.Checkpoint(*records, *progress); },
                    [this, records, started](const Result<void>& r) {
                      checkpoint_in_flight_ = false;
                      journal_seconds_ += std::chrono::duration<double>(parts_.clock->Monotonic() - started).count();
                      if (!r) {
                        journal_pending_.Prepend(std::move(*records));
                      } else if (records->capacity_bytes() <= kSpareJournalAtMost) {
                        records->clear();
                        spare_journal_ = std::move(*records);
                      }
                      Checkpointed(r);
                    });
    return;
  }
  auto r = Store().Checkpoint(journal_pending_, sources_->progress());
  journal_seconds_ += std::chrono::duration<double>(parts_.clock->Monotonic() - last_checkpoint_).count();
  if (r) journal_pending_.clear();
  Checkpointed(r);
}

void Daemon::Checkpointed(const Result<void>& r) {
  if (r) {
    if (!progress_problem_.empty()) Log(LOG_NOTICE, "the journal and read positions are saved again");
    progress_problem_.clear();
    return;
  }
  std::string problem = "state database: " + r.error().message;
  if (problem != progress_problem_) Log(LOG_ERR, "saving the journal and read positions failed: " + r.error().message);
  progress_problem_ = problem;
  if (journal_pending_.size() > kMaxJournalPending) {
    Log(LOG_WARNING, std::to_string(journal_pending_.size()) +
                         " journal events could not be saved and are dropped: the running daemon keeps their counts, "
                         "a restart would not");
    journal_pending_.clear();
  }
}

StateStore& Daemon::Store() { return writer_ ? writer_->store() : *parts_.store; }

void Daemon::FinishWrites() {
  if (!writer_) return;
  writer_->Wait();
  writer_->Poll();
}

void Daemon::Tick() {
  ++ticks_;
  for (const auto& [what, n] : unlogged_bans_)
    Log(LOG_NOTICE, "and " + std::to_string(n) + " more bans not logged one by one: jail=" + what);
  unlogged_bans_.clear();
  last_rule_ban_.unlogged = nullptr;
  ban_lines_this_second_ = 0;
  evidence_records_this_second_ = 0;
  engine_->SetEvidenceLines(true);
  Time now = parts_.clock->Now();
  engine_->OnTick(now);
  ledger_->Tick();
  hooks_->Poll();
  server_->Tick();
  if (fleet_) fleet_->Tick();
  if (metrics_listener_) metrics_listener_->Tick();
  decisions_->Tick();
  WriteTextfile();
  if (reopening_ && reopening_->epoch() != store_epoch_) {
    if (store_epoch_ != 0) {
      Log(LOG_WARNING, "the state database is new: writing the " + std::to_string(ledger_->size()) + " bans in force again");
      ledger_->ResaveAll();
    }
    store_epoch_ = reopening_->epoch();
  }
  // Log globs may match files that appear later (a new qmail service's log directory).
  if (ticks_ % 10 == 0) {
    ActivationPlan plan = PlanActivation(config_, *parts_.probe, sources_->journal_jails());
    std::vector<std::string> paths;
    for (const auto& f : plan.files) paths.push_back(f.path);
    if (!sources_->FollowsAll(paths)) {
      Log(LOG_INFO, "new log files match the configured globs; following them");
      Progress saved;
      if (auto p = Store().LoadProgress()) saved = std::move(*p);
      Engine* raw = engine_.get();
      sources_->Follow(plan, [raw](const std::vector<std::string>& j, StampFormat f) { return raw->AddSource(j, f); }, saved,
                       false);
      plan_ = std::move(plan);
      RefreshSourceNames();
    }
  }
  sources_->MarkAllReady();  // the safety net for a missed inotify event
  sources_->PollLosses();
  Checkpoint();
  if (ticks_ % 60 == 0) SaveAccountHistory(false);
  // A slice a second: 20,000 records every five seconds held the loop for up to 90 ms.
  if (!replaying_) {
    Time before = now - engine_->LongestWindow() - std::chrono::hours(1);
    if (!writer_) {
      (void)Store().PruneJournal(before, kJournalKeep, kPrunePerTick);
    } else if (!prune_in_flight_) {
      prune_in_flight_ = true;
      writer_->Submit(
          [before](StateStore& s) {
            (void)s.PruneJournal(before, kJournalKeep, kPrunePerTick);
            return Result<void>{};
          },
          [this](const Result<void>&) { prune_in_flight_ = false; });
    }
  }
  more_work_ = true;
  parts_.notify("WATCHDOG=1");
}

void Daemon::OnSignal() {
  signalfd_siginfo si{};
  while (read(sigfd_, &si, sizeof si) == sizeof si) {
    switch (si.ssi_signo) {
      case SIGHUP:
        parts_.notify("RELOADING=1");
        Log(LOG_INFO, "reloading " + options_.config);
        Reload();
        parts_.notify("READY=1");
        break;
      case SIGTERM:
      case SIGINT: stop_ = true; break;
      case SIGCHLD: hooks_->Poll(); break;
      default: break;
    }
  }
}

std::string Daemon::Health() const {
  std::vector<std::string> problems;
  if (!ledger_->firewall_problem().empty()) problems.push_back(ledger_->firewall_problem());
  if (!ledger_->store_problem().empty()) problems.push_back(ledger_->store_problem());
  else if (!progress_problem_.empty()) problems.push_back(progress_problem_);
  if (fleet_ && !fleet_->connected()) problems.push_back("fleet: " + (fleet_->last_error().empty() ? std::string("connecting to Redis") : fleet_->last_error()));
  if (problems.empty()) return "ok";
  std::string s = "degraded: ";
  for (size_t i = 0; i < problems.size(); ++i) s += (i ? "; " : "") + problems[i];
  return s;
}

int Daemon::Stop() {
  parts_.notify("STOPPING=1");
  Clock::Steady deadline = parts_.clock->Monotonic() + std::chrono::seconds(5);
  // What was written before the stop is read and decided on, within the deadline.
  while (replaying_ && parts_.clock->Monotonic() < deadline) DoWork();
  while (sources_->Pending() && parts_.clock->Monotonic() < deadline) DoWork();
  sources_->MarkAllReady();
  DoWork();
  if (options_.flush_on_exit) {
    if (auto r = ledger_->RemoveAll(); !r) Log(LOG_ERR, r.error().ToString());
  }
  // On cores that other work keeps busy the store writer may lag the loop, and a stop must
  // not leave the bans of a burst unwritten at the deadline (the next start would have to
  // list the kernel). What the ledger still owes the store is written here, on this thread,
  // once the writer is idle.
  FinishWrites();
  ledger_->WriteStoreHere();
  ledger_->Drain(deadline);
  if (fleet_) {
    // What is sent within the deadline is sent; the rest waits in the outbox.
    Clock::Steady until = std::min(deadline, parts_.clock->Monotonic() + std::chrono::seconds(1));
    while (fleet_->outbox() > 0 && fleet_->connected() && parts_.clock->Monotonic() < until) {
      fleet_->Flush();
      loop_.Turn(50);
    }
    fleet_->Stop();
  }
  FinishWrites();
  Checkpoint();
  FinishWrites();
  SaveDecisions(true);
  SaveAccountHistory(true);
  decisions_->Drain();
  // Everything reached the kernel and the store: the next start may take the kernel as left.
  if (!options_.flush_on_exit && ledger_->KernelSettled() && ledger_->StoreSettled() && Health() == "ok")
    if (auto gen = parts_.firewall->Generation(); gen && *gen)
      (void)Store().SetNote(kKernelNote, KernelNote(**gen));
  if (options_.flush_on_exit) Log(LOG_INFO, "stopped; the firewall table was removed (--flush-on-exit)");
  else
    Log(LOG_INFO, "stopped; " + std::to_string(ledger_->size()) + " bans stay in the kernel and expire on their own" +
                      (ledger_->KernelSettled() ? "" : " (" + std::to_string(ledger_->kernel_backlog()) + " had not reached it)"));
  server_->Shutdown();
  return 0;
}

int RunDaemon(const DaemonOptions& options) {
  // Every followed log may hold many generations open while a writer outpaces us: the soft
  // descriptor limit (1024 by default) is raised to the hard one.
  struct rlimit nofile {};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  DaemonParts parts;
  parts.store_thread = true;
  parts.kernel_thread = true;
  Daemon d(options, std::move(parts));
  if (int rc = d.Start(); rc != 0) return rc;
  while (!d.stopping()) d.Turn(1000);
  return d.Stop();
}

}  // namespace relayban
