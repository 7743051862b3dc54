// The daemon: wiring only. It loads the configuration, builds the engine on the ban ledger,
// follows the sources, serves the control socket, and runs one epoll loop whose every turn
// does a bounded slice of work (lines read, kernel and store mirroring, streamed answers), so
// nothing ever holds the loop for long; the state store's writes run on a thread of their
// own (StoreWriter) when RunDaemon builds it. Its outside parts - firewall, state store, clock,
// process spawner, host probe, notifier, log - are given to it (DaemonParts), so unit tests
// drive it with fakes through every failure; RunDaemon gives it the real ones.
#pragma once

#include <array>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ban_ledger.hpp"
#include "decision_log.hpp"
#include "event_loop.hpp"
#include "hook_runner.hpp"
#include "jail_activation.hpp"
#include "line_matcher.hpp"
#include "source_set.hpp"
#include "relayban/control/control_server.hpp"
#include "relayban/control/metrics_listener.hpp"
#include "relayban/control/protocol.hpp"
#include "relayban/daemon/spawner.hpp"
#include "relayban/engine/engine.hpp"
#include "relayban/fleet/fleet_member.hpp"
#include "relayban/firewall/firewall.hpp"
#include "relayban/state/state_store.hpp"
#include "report/metrics_text.hpp"

namespace relayban {

struct DaemonOptions {
  std::string config = "/etc/relayban/relayban.yaml";
  bool dry_run = false;        // the dry-run firewall: log bans, change nothing, no privileges
  bool flush_on_exit = false;  // remove the table on SIGTERM (bans otherwise stay and expire)
  bool handle_signals = true;  // SIGHUP/SIGTERM/SIGINT/SIGCHLD through a signalfd, a 1 s timer
  // The newest decisions kept in the state database for `relayban explain`; at most as many
  // (and 4 MB) wait in memory to be written: in a burst the older ones go first.
  size_t decisions_kept = 50000;
};

// The daemon's outside parts. Any left empty is built from the configuration: nftables (or
// the dry-run firewall), SQLite in state_dir, the system clock, posix_spawn, the real host,
// sd_notify, stderr.
struct DaemonParts {
  std::unique_ptr<Firewall> firewall;
  std::unique_ptr<StateStore> store;
  std::unique_ptr<Clock> clock;
  std::unique_ptr<Spawner> spawner;
  std::optional<HostProbe> probe;
  std::function<void(const std::string&)> notify;
  std::function<void(int priority, const std::string&)> log;
  // The store's writes (ban slices, the journal, decisions) on a thread of their own
  // (StoreWriter), and the decision log file's on another, as RunDaemon runs them; else on
  // the loop thread. With it, `store` and `log` are also used from that thread.
  bool store_thread = false;
  // The firewall's transactions (the ledger's slices of bans) on a thread of their own
  // (JobThread), as RunDaemon runs them; else on the loop thread. With it, `firewall` is
  // also used from that thread, one call at a time.
  bool kernel_thread = false;
};

class Daemon {
 public:
  Daemon(DaemonOptions options, DaemonParts parts);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Loads the configuration and starts everything. Returns 0 when running, else the exit
  // code: 78 bad configuration, 71 no firewall or control socket.
  int Start();
  // One loop turn: waits up to `max_wait_ms` (not at all while work is left), handles what
  // is ready, then does a bounded slice of work.
  void Turn(int max_wait_ms);
  // Housekeeping, once a second (the loop's timer calls it; tests call it directly).
  void Tick();
  bool stopping() const { return stop_; }
  void RequestStop() { stop_ = true; }
  // Finishes: reads what is left, writes what is owed (a few seconds at most), removes the
  // table with --flush-on-exit. Returns the exit code.
  int Stop();
  // Re-reads the configuration; a bad one is refused and the old one keeps running.
  bool Reload(std::vector<Error>* errors = nullptr);

  // A control request handled as if it came from root on the socket; the answer lines are
  // passed to `on_line` as they are produced (during this call or later turns). For tests.
  void Command(std::string_view request, std::function<void(std::string_view line)> on_line);

  // The metrics in Prometheus' text format (daemon_metrics.cpp).
  std::string RenderMetrics() const;
  // Where the HTTP listener listens (0: none), for tests.
  uint16_t metrics_port() const { return metrics_listener_ ? metrics_listener_->port() : 0; }
  // Counters by family and labels.
  using Counters = std::map<std::string, std::map<MetricsText::Labels, double>>;

  const BanLedger& ledger() const { return *ledger_; }
  const Engine& engine() const { return *engine_; }
  const Config& config() const { return config_; }

 private:
  using ClientId = ControlServer::ClientId;
  // A streamed or deferred answer (daemon_commands.cpp).
  struct Job {
    ClientId client = 0;
    bool streaming = false;      // progresses whenever its peer reads (else it waits for the ledger)
    std::function<bool()> step;  // does a slice of the answer; true when it is complete
  };

  void Log(int priority, const std::string& msg) const;
  bool BuildEngine(const Config& config, bool initial);
  void HandleOutput();
  bool DoWork();
  // Writes the journal records of the lines read so far together with the read positions.
  void Checkpoint();
  // Feeds the new engine a slice of the journal; false when the replay is over.
  bool ReplaySlice();
  void OnSignal();
  std::string Health() const;
  // How the rules of `after` differ from those of `before`, one line each (for the log).
  static std::vector<std::string> RuleChanges(const Config& before, const Config& after);
  // The note a clean exit leaves: the ruleset generation and our table's name.
  std::string KernelNote(uint32_t generation) const { return std::to_string(generation) + " " + config_.firewall.table; }

  // Metrics and decisions (daemon_metrics.cpp).
  void CollectEngineCounters(Counters& into, const EngineCounts& counts,
                             const std::vector<SourceSet::SourceInfo>& sources) const;
  void CarryCounters();   // before an engine is replaced
  void ApplyOutputs();    // the decision log, the metrics listener, as the configuration says
  void WriteTextfile();   // when `metrics.every` has passed
  // A decision record (JSON): to the decision log and, for `relayban explain`, the state
  // database, filed under its ban's target and its account.
  void Decision(std::string record, Time t, const std::string& target, const std::string& account);
  // A record in two parts: its own head and the rest its verdict's other records share.
  void Decision(std::string_view head, const std::shared_ptr<const std::string>& tail, Time t, const std::string& target,
                const std::string& account);
  // Keeps a record (its head, and the shared rest if any) for explain and the store.
  void KeepDecision(Time t, const std::string& target, const std::string& account, std::string_view head,
                    const std::shared_ptr<const std::string>& tail);
  void SaveDecisions(bool all);  // a slice of those waiting (all: every one)
  void TrimDecisions();          // the oldest waiting go past options_.decisions_kept or 4 MB
  void SaveAccountHistory(bool all);  // the accounts whose history changed: a slice (all: every one)
  std::deque<DecisionRow> decisions_pending_;
  size_t decisions_pending_bytes_ = 0;
  Clock::Steady decisions_saved_at_{};  // when a slice last went to the store
  uint64_t decisions_unsaved_ = 0;  // dropped before reaching the database (a burst)
  void RefreshSourceNames();
  std::vector<std::string> source_names_;  // by engine source id (evidence names its log)
  std::string Requester(ClientId client) const;

  // Fleet mode (daemon_fleet.cpp).
  static Result<FleetOptions> FleetOptionsOf(const FleetSpec& spec);
  void StartFleet(FleetOptions options);
  void PublishBan(const Prefix& target, Seconds duration, const std::string& jail, const std::string& rule,
                  const std::string& account, const std::string& reason, bool manual);
  void PublishUnban(const Prefix& target);
  FleetMember::Applied FleetBan(const FleetEvent& e, Seconds remaining);
  FleetMember::Applied FleetUnban(const FleetEvent& e);
  FleetMember::Applied FleetAccountVerdict(const FleetEvent& e);
  void CountInFleet(const FleetCount& c);
  // Fleet rules count through Redis while it is there, here while it is not.
  void FollowFleetState();
  std::unique_ptr<FleetMember> fleet_;
  static constexpr size_t kBanLinesPerSecondShown = 200;  // ban log lines one by one; beyond, summed up
  static constexpr size_t kEvidencePerSecond = 1000;  // decision records with their lines; beyond, counted
  std::string EvidenceJson(const EvidenceLines& lines);
  void AddEvidence(DecisionRecord& w, const EvidenceLines& lines);
  // Whether a record gets its lines (past kEvidencePerSecond a second, not: counted), and
  // the field that says so.
  bool CountEvidence(const EvidenceLines& lines);
  void WriteEvidence(DecisionRecord& w, const EvidenceLines& lines, bool with);

  // Control commands (daemon_commands.cpp).
  void OnRequest(ClientId client, std::string_view line);
  // Sends one answer line, or several joined by newlines.
  void Reply(ClientId client, std::string_view line);
  void Finish(ClientId client);
  size_t Pending(ClientId client) const;
  bool Connected(ClientId client) const;
  std::string Status(const std::string& jail) const;
  void StartList(ClientId client);
  void StartAccounts(ClientId client);
  // What the account's history says it usually does, for `accounts` and `explain` (null: none).
  nlohmann::json HabitsJson(const std::string& account) const;
  void Ban(ClientId client, const ControlRequest& r);
  void Unban(ClientId client, const ControlRequest& r);
  void Forgive(ClientId client, const ControlRequest& r);
  void Explain(ClientId client, const ControlRequest& r);
  // Admins' decisions kept in the store: name -> when (JSON objects of time_us).
  static constexpr const char* kForgivenNote = "forgiven_accounts";
  static constexpr const char* kExemptedNote = "exempted_addresses";
  std::vector<std::pair<std::string, Time>> LoadAdminNote(const char* key);
  void SaveAdminNote(const char* key, const std::string& name, Time at);
  void WaitFor(ClientId client, std::function<std::optional<std::string>()> answer);
  bool RunJobs();

  DaemonOptions options_;
  DaemonParts parts_;
  std::unique_ptr<class StoreWriter> writer_;  // when parts_.store_thread; destroyed before parts_
  std::unique_ptr<class JobThread> kernel_thread_;  // when parts_.kernel_thread; destroyed before parts_
  // The store for the loop's own calls: through the writer (after the writes handed to it).
  StateStore& Store();
  // Waits for the writes on their way and takes their outcomes.
  void FinishWrites();
  void Checkpointed(const Result<void>& r);
  bool checkpoint_in_flight_ = false, decisions_in_flight_ = false, prune_in_flight_ = false;
  class ReopeningStore* reopening_ = nullptr;  // the store, when the daemon built it
  Config config_;
  std::unique_ptr<BanLedger> ledger_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<SourceSet> sources_;
  std::unique_ptr<LineMatcher> matcher_;  // matches a busy turn's lines while the loop scores
  std::unique_ptr<HookRunner> hooks_;
  EventLoop loop_;
  std::unique_ptr<ControlServer> server_;
  ActivationPlan plan_;
  // journald's reports of lines dropped before relayban could read them: by its rate limit,
  // per unit a jail's journal log names; and not handed to the syslog daemon (while a jail
  // reads a log file). For status, metrics and a warning in the log.
  void OnJournaldLoss(const JournaldLoss& loss);
  std::map<std::string, uint64_t> journald_suppressed_;
  uint64_t syslog_forward_missed_ = 0;
  std::vector<std::pair<Prefix, Time>> offences_;  // restored at start, for each new engine
  EngineOutput out_;
  size_t ban_lines_this_second_ = 0;
  size_t evidence_records_this_second_ = 0;
  uint64_t evidence_omitted_ = 0;  // decision records written without their lines (a flood)
  EvidenceLines evidence_cache_;   // the last lines formatted, kept alive so its identity holds
  std::string evidence_cache_text_;
  double reading_seconds_ = 0, journal_seconds_ = 0;  // where the loop's time went
  // How long the loop's own work took turn by turn - what a control request may wait for
  // besides its own answer: per kTurnBounds (seconds) and above the last, the longest and
  // what it was doing then.
  static constexpr double kTurnBounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};
  struct TurnStats {
    uint64_t turns = 0;
    double seconds = 0;
    std::vector<uint64_t> buckets = std::vector<uint64_t>(std::size(kTurnBounds) + 1, 0);
    double longest = 0;
    const char* longest_part = "";
  };
  TurnStats turn_stats_;
  const char* turn_part_ = "";  // set by DoWork: what this turn did
  std::map<std::string, uint64_t> unlogged_bans_;  // "jail rule=..." -> bans not logged one by one
  // The last rule ban's decision record after its target, and the ban it was made for (held:
  // its evidence's identity cannot be taken by other lines meanwhile).
  struct RecordTail {
    bool valid = false;
    Order order;
    bool with_evidence = false;
    std::shared_ptr<const std::string> rest;  // DecisionRecord::TakeTail
  };
  std::string record_head_;  // a ban record's head, built in this buffer each time
  RecordTail record_tail_;
  // The rule of the last ban handled and its counters (map nodes stay put).
  struct LastRuleBan {
    std::string jail, rule;
    uint64_t* total = nullptr;     // in bans_by_
    uint64_t* unlogged = nullptr;  // in unlogged_bans_, until it is cleared
  };
  LastRuleBan last_rule_ban_;
  int sigfd_ = -1, timerfd_ = -1;
  bool stop_ = false;
  bool more_work_ = false;
  // What the next DoWork does (one of them a turn; see DoWork).
  enum class Phase : uint8_t { kRead, kCheckpoint, kFlush };
  Phase phase_ = Phase::kRead;
  uint64_t ticks_ = 0;
  uint64_t store_epoch_ = 0;
  std::string progress_problem_;  // saving read positions failed: why
  // The engine's journal records not yet in the state database, and when it was last written.
  JournalBatch journal_pending_;
  JournalBatch spare_journal_;  // a batch written, cleared: its buffers serve the next
  Clock::Steady last_checkpoint_{};
  // A new engine is being fed the journal of the last window before any log line is read.
  bool replaying_ = false;
  uint64_t replay_after_ = 0;
  Time replay_since_{};
  size_t replayed_ = 0;
  std::vector<std::unique_ptr<Job>> jobs_;
  // Answers to Command() callers, by their client id (above kDirect).
  static constexpr ClientId kDirect = ClientId{1} << 62;
  ClientId next_direct_ = kDirect;
  std::map<ClientId, std::function<void(std::string_view)>> direct_;

  Counters carried_;  // counters of engines replaced by reloads
  std::map<std::array<std::string, 3>, uint64_t> bans_by_;  // (jail, rule, origin) -> bans
  std::map<std::pair<std::string, std::string>, uint64_t> account_verdicts_by_;  // (jail, rule)
  uint64_t reloads_ok_ = 0, reloads_failed_ = 0;
  Time config_loaded_at_{};
  std::unique_ptr<DecisionLog> decisions_;
  std::unique_ptr<MetricsListener> metrics_listener_;
  std::string metrics_listen_;
  Clock::Steady next_textfile_{};
  uint64_t textfile_errors_ = 0;
  std::string textfile_problem_;
};

// Runs the daemon with its real parts until SIGTERM/SIGINT. Returns the exit code.
int RunDaemon(const DaemonOptions& options);

}  // namespace relayban
