#include "daemon.hpp"

#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "control_socket.hpp"
#include "file_tail.hpp"
#include "hook_runner.hpp"
#include "journal_source.hpp"
#include "nft_firewall.hpp"
#include "relayban/config/config_loader.hpp"
#include "relayban/core/text.hpp"
#include "relayban/engine/engine.hpp"
#include "relayban/firewall/firewall.hpp"
#include "relayban/state/state_store.hpp"
#include "relayban/version.hpp"
#include "cli/json_report.hpp"
#include "cli/local_zone.hpp"

namespace relayban {
namespace {

using nlohmann::json;

// Log lines go to stderr with a syslog priority prefix, which journald understands.
void Log(int priority, const std::string& msg) {
  std::string line = "<" + std::to_string(priority) + ">" + msg + "\n";
  (void)!write(2, line.data(), line.size());
}

Time Now() { return std::chrono::time_point_cast<Micros>(std::chrono::system_clock::now()); }

std::vector<std::string> Expand(const std::string& pattern) {
  std::vector<std::string> out;
  if (pattern.find_first_of("*?[") == std::string::npos) return {pattern};
  glob_t g{};
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  globfree(&g);
  return out;
}

struct ActiveBan {
  BanRecord record;
  Seconds duration{0};
};

struct JournalFeed {
  std::unique_ptr<JournalSource> journal;
  std::vector<std::string> jails;
  int engine_source = 0;
};

// Whether the systemd unit a journal match names is installed (templates included).
bool UnitInstalled(const std::string& match) {
  const std::string key = "_SYSTEMD_UNIT=";
  if (match.rfind(key, 0) != 0) return false;
  std::string unit = match.substr(key.size());
  std::vector<std::string> names{unit};
  size_t at = unit.find('@'), dot = unit.rfind('.');
  if (at != std::string::npos && dot != std::string::npos && dot > at) names.push_back(unit.substr(0, at + 1) + unit.substr(dot));
  for (const char* dir : {"/etc/systemd/system/", "/lib/systemd/system/", "/usr/lib/systemd/system/", "/run/systemd/system/"})
    for (const auto& n : names)
      if (access((std::string(dir) + n).c_str(), F_OK) == 0) return true;
  return false;
}

// A jail's journald source is present when its directory exists or its unit is installed.
bool JournalPresent(const LogSpec& l) {
  if (!l.journal_directory.empty()) return access(l.journal_directory.c_str(), F_OK) == 0;
  return std::any_of(l.journal_match.begin(), l.journal_match.end(), UnitInstalled);
}

struct Source {
  std::unique_ptr<FileTail> tail;
  std::vector<std::string> jails;
  StampFormat stamp = StampFormat::kAuto;
  int engine_source = 0;
};

class Daemon {
 public:
  explicit Daemon(DaemonOptions o) : opt_(std::move(o)), hooks_(std::chrono::seconds(10), Log) {}
  ~Daemon();
  int Run();

 private:
  bool LoadAndBuild(bool initial);
  bool BuildEngine(const Config& c, std::map<std::string, std::string>& why);
  void StartSources(const Config& c, bool initial);
  void Reconcile();
  void ApplyOrders(const std::vector<Order>& orders, bool manual);
  void PollSources(const std::set<std::string>* only);
  void Tick();
  void SavePositions();
  void HandleInotify();
  void HandleSignal();
  void AcceptClients();
  void HandleClient(int fd);
  json Command(const json& req);
  json Status(const std::string& jail);
  json ListBans();
  std::vector<FirewallOrder> ActiveOrders(Time now) const;

  DaemonOptions opt_;
  Config config_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Firewall> firewall_;
  std::unique_ptr<StateStore> state_;
  std::map<std::string, Source> sources_;  // by path
  std::map<std::string, JournalFeed> journals_;  // by JournalSource::name()
  std::map<std::string, std::string> jail_why_;  // jail -> why it is on or off
  std::map<Prefix, ActiveBan> bans_;
  MemoryBanBook book_;  // what the engine's policy sees as banned
  HookRunner hooks_;
  int epfd_ = -1, inotify_ = -1, sigfd_ = -1, timerfd_ = -1, listen_ = -1;
  std::map<int, std::string> watches_;  // inotify wd -> directory
  std::map<int, std::string> clients_;  // fd -> buffered input
  bool stop_ = false;
  bool degraded_ = false;
  std::string degraded_why_;
  bool resync_ = false;  // a firewall change failed: re-apply every active ban on the next tick
  uint64_t ticks_ = 0;
  EngineOutput out_;
};

Daemon::~Daemon() {
  for (int fd : {epfd_, inotify_, sigfd_, timerfd_, listen_})
    if (fd >= 0) close(fd);
  for (auto& [fd, buf] : clients_) close(fd);
}

bool Daemon::BuildEngine(const Config& c, std::map<std::string, std::string>& why) {
  // `enabled: auto` jails are on when one of their logs exists (a journald source counts
  // as present: journald is always there on systemd hosts).
  std::vector<std::string> on;
  for (const auto& j : c.jails) {
    if (j.enabled == Enabled::kNo) {
      why[j.name] = "off: enabled: false";
      continue;
    }
    if (j.enabled == Enabled::kYes) {
      why[j.name] = "on: enabled: true";
      on.push_back(j.name);
      continue;
    }
    if (!j.detect.empty()) {
      std::string present;
      for (const auto& d : j.detect)
        if (present.empty() && access(d.c_str(), F_OK) == 0) present = d;
      if (present.empty()) {
        why[j.name] = "off: enabled: auto and none of " + j.detect.front() + (j.detect.size() > 1 ? ", ..." : "") +
                      " exists";
        continue;
      }
      why[j.name] = "on: " + present + " exists";
      on.push_back(j.name);
      continue;
    }
    std::string found;
    for (const auto& l : j.logs) {
      if (!l.path.empty()) {
        for (const auto& p : Expand(l.path))
          if (access(p.c_str(), F_OK) == 0) found = p;
      }
      if (!found.empty()) break;
    }
    if (found.empty())
      for (const auto& l : j.logs)
        if (l.path.empty() && JournalPresent(l)) {
          found = "the journal of " + (l.journal_directory.empty() ? l.journal_match.front() : l.journal_directory);
          break;
        }
    if (found.empty()) {
      why[j.name] = "off: enabled: auto and none of its logs exists";
    } else {
      why[j.name] = "on: " + found + (found.rfind("the journal", 0) == 0 ? " is there" : " exists");
      on.push_back(j.name);
    }
  }
  EngineOptions eo;
  eo.jails = on;
  eo.zone = HostLocalZone();
  eo.book = &book_;
  if (on.empty()) {
    // No jail is on: an engine without jails, so the daemon still answers and reloads.
    Config none = c;
    none.jails.clear();
    auto e = Engine::Create(none, eo);
    if (!e) return false;
    engine_ = std::move(e.value());
    return true;
  }
  auto e = Engine::Create(c, eo);
  if (!e) {
    Log(LOG_ERR, "engine: " + e.error().ToString());
    return false;
  }
  engine_ = std::move(e.value());
  return true;
}

void Daemon::StartSources(const Config& c, bool initial) {
  std::map<std::string, Source> next;
  std::map<std::string, FilePosition> saved;
  if (auto p = state_->Positions())
    for (const auto& fp : *p) saved[fp.path] = fp;
  std::map<std::string, std::pair<const LogSpec*, std::vector<std::string>>> journal_specs;
  for (const auto& j : c.jails) {
    if (jail_why_[j.name].rfind("on", 0) != 0) continue;
    // A jail reads its log files when one exists, else its journald sources: on hosts that
    // run rsyslog the same lines are in both, and must not count twice.
    bool any_file = false;
    for (const auto& l : j.logs)
      for (const auto& p : l.path.empty() ? std::vector<std::string>{} : Expand(l.path))
        any_file = any_file || access(p.c_str(), F_OK) == 0;
    for (const auto& l : j.logs) {
      if (l.path.empty()) {
        if (any_file || !JournalPresent(l)) continue;
        std::string key;
        for (const auto& m : l.journal_match) key += m + ",";
        key += "@" + l.journal_directory;
        journal_specs[key].first = &l;
        journal_specs[key].second.push_back(j.name);
        continue;
      }
      for (const auto& path : Expand(l.path)) {
        auto& s = next[path];
        s.jails.push_back(j.name);
        if (l.stamp != StampFormat::kAuto) s.stamp = l.stamp;
      }
    }
  }
  for (auto& [path, s] : next) {
    auto r = engine_->AddSource(s.jails, s.stamp);
    if (!r) {
      Log(LOG_ERR, path + ": " + r.error().ToString());
      continue;
    }
    s.engine_source = *r;
    auto old = sources_.find(path);
    if (old != sources_.end()) {
      s.tail = std::move(old->second.tail);  // keep reading where we were
    } else {
      s.tail = std::make_unique<FileTail>(path, c.max_line);
      auto it = saved.find(path);
      if (it != saved.end()) s.tail->Start(it->second);
      else if (initial) s.tail->Start(std::nullopt);  // at (re)load, old lines are history
      else s.tail->Start(FilePosition{path, 0, 0, 0});  // a file that appeared later: all of it is new
    }
    // Watch the directory: it reports changes to the file, and its creation and renames.
    std::string dir = std::filesystem::path(path).parent_path().string();
    bool watched = std::any_of(watches_.begin(), watches_.end(), [&](const auto& w) { return w.second == dir; });
    if (!watched) {
      int wd = inotify_add_watch(inotify_, dir.c_str(),
                                 IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE);
      if (wd >= 0) watches_[wd] = dir;
    }
  }
  sources_ = std::move(next);

  std::map<std::string, JournalFeed> journals;
  for (auto& [key, spec] : journal_specs) {
    auto js = JournalSource::Open(spec.first->journal_match, spec.first->journal_directory);
    if (!js) {
      Log(LOG_ERR, js.error().ToString());
      continue;
    }
    std::string name = (*js)->name();
    auto r = engine_->AddSource(spec.second, StampFormat::kRfc3339);
    if (!r) continue;
    JournalFeed feed;
    auto old = journals_.find(name);
    if (old != journals_.end()) {
      feed.journal = std::move(old->second.journal);
    } else {
      feed.journal = std::move(js.value());
      auto cur = state_->Cursor(name);
      feed.journal->Start(cur ? *cur : std::nullopt);
      if (int fd = feed.journal->fd(); fd >= 0 && epfd_ >= 0) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
      }
    }
    feed.jails = spec.second;
    feed.engine_source = *r;
    journals[name] = std::move(feed);
  }
  for (auto& [name, feed] : journals_)
    if (!journals.count(name) && feed.journal && feed.journal->fd() >= 0) epoll_ctl(epfd_, EPOLL_CTL_DEL, feed.journal->fd(), nullptr);
  journals_ = std::move(journals);
}

bool Daemon::LoadAndBuild(bool initial) {
  std::vector<Error> errors;
  auto c = LoadConfig(opt_.config, errors);
  if (!c) {
    for (const auto& e : errors) Log(LOG_ERR, e.ToString());
    Log(LOG_ERR, initial ? "configuration rejected; not starting" : "new configuration rejected; the old one keeps running");
    return false;
  }
  std::map<std::string, std::string> why;
  auto old_engine = std::move(engine_);
  if (!BuildEngine(*c, why)) {
    engine_ = std::move(old_engine);
    return false;
  }
  config_ = *c;
  jail_why_ = why;
  for (const auto& [jail, w] : why) Log(LOG_INFO, "jail " + jail + ": " + w);
  // The new engine learns the bans in force and the offence history.
  Time now = Now();
  for (const auto& [p, b] : bans_) {
    Order o;
    o.target = p;
    o.at = b.record.start;
    o.duration = b.duration;
    book_.Record(o);
  }
  if (auto off = state_->Offences(now - config_.ban.max))
    for (const auto& [p, t] : *off) engine_->policy().AddOffence(p, t);
  StartSources(config_, true);  // files there at (re)load time: their old lines are history
  return true;
}

void Daemon::Reconcile() {
  // The state store is the truth; the kernel holds what it says, with the time left.
  Time now = Now();
  auto active = state_->ActiveBans(now);
  if (!active) {
    Log(LOG_ERR, active.error().ToString());
    return;
  }
  std::vector<FirewallOrder> orders;
  for (const auto& b : *active) {
    Seconds left = b.end ? std::chrono::ceil<Seconds>(*b.end - now) : Seconds(0);
    Seconds total = b.end ? std::chrono::ceil<Seconds>(*b.end - b.start) : Seconds(0);
    bans_[b.target] = ActiveBan{b, total};
    orders.push_back({FirewallOrder::Kind::kBan, b.target, left});
  }
  auto kernel = firewall_->List();
  if (kernel)
    for (const auto& e : *kernel)
      if (!bans_.count(e.target)) orders.push_back({FirewallOrder::Kind::kUnban, e.target, Seconds(0)});
  if (orders.empty()) return;
  auto r = firewall_->Apply(orders);
  if (!r) Log(LOG_ERR, "restoring bans: " + r.error().ToString());
  else Log(LOG_INFO, "restored " + std::to_string(active->size()) + " active bans");
}

void Daemon::ApplyOrders(const std::vector<Order>& orders, bool manual) {
  if (orders.empty()) return;
  std::vector<FirewallOrder> fw;
  Time now = Now();
  for (const auto& o : orders) {
    if (o.action == Order::Action::kUnban) {
      fw.push_back({FirewallOrder::Kind::kUnban, o.target, Seconds(0)});
      continue;
    }
    BanRecord rec{o.target, o.jail, o.rule, o.account, o.reason, now, std::nullopt};
    if (o.duration.count() > 0) rec.end = now + o.duration;
    bans_[o.target] = ActiveBan{rec, o.duration};
    if (auto r = state_->SaveBan(rec); !r) Log(LOG_ERR, r.error().ToString());
    fw.push_back({FirewallOrder::Kind::kBan, o.target, o.duration});
    Log(LOG_NOTICE, std::string(manual ? "manual ban " : "ban ") + o.target.ToString() + " for " +
                        (o.duration.count() ? FormatDuration(o.duration) : std::string("ever")) + " jail=" + o.jail +
                        " rule=" + o.rule + (o.account.empty() ? "" : " account=" + Printable(o.account, 80)) +
                        " reason=\"" + Printable(o.reason, 200) + "\"");
  }
  auto r = firewall_->Apply(fw);
  if (!r) {
    degraded_ = true;
    resync_ = true;
    degraded_why_ = "firewall: " + r.error().ToString();
    Log(LOG_ERR, "firewall: " + r.error().ToString() + " (retrying every second)");
    return;
  }
  for (const auto& [p, why] : r->skipped) Log(LOG_INFO, "ban of " + p.ToString() + " not needed: " + why);
}

void Daemon::PollSources(const std::set<std::string>* only) {
  Time now = Now();
  for (auto& [path, s] : sources_) {
    if (only && !only->count(path)) continue;
    s.tail->Poll([&](std::string_view line) { engine_->OnLine(s.engine_source, line, now, out_); });
  }
  for (auto& [name, feed] : journals_) {
    if (only && !only->count(name)) continue;
    feed.journal->Poll([&](std::string_view line) { engine_->OnLine(feed.engine_source, line, now, out_); });
  }
  if (!out_.orders.empty() || !out_.hooks.empty()) {
    ApplyOrders(out_.orders, false);
    for (const auto& h : out_.hooks) hooks_.Run(h.argv);
    out_.clear();
  }
}

void Daemon::SavePositions() {
  std::vector<FilePosition> pos;
  for (const auto& [path, s] : sources_)
    if (s.tail->is_open()) pos.push_back(s.tail->Position());
  if (!pos.empty()) (void)state_->SavePositions(pos);
  for (const auto& [name, feed] : journals_)
    if (!feed.journal->cursor().empty()) (void)state_->SaveCursor(name, feed.journal->cursor());
}

void Daemon::Tick() {
  ++ticks_;
  Time now = Now();
  engine_->OnTick(now);
  hooks_.Reap();
  // Bans the kernel expired by itself: end them in the state store too.
  for (auto it = bans_.begin(); it != bans_.end();) {
    if (it->second.record.end && *it->second.record.end <= now) {
      (void)state_->EndBan(it->first, now, "expired");
      it = bans_.erase(it);
    } else {
      ++it;
    }
  }
  // Log globs may match files that appear later (a new qmail service's log directory).
  if (ticks_ % 10 == 0) {
    std::set<std::string> wanted;
    for (const auto& j : config_.jails) {
      if (jail_why_[j.name].rfind("on", 0) != 0) continue;
      for (const auto& l : j.logs)
        if (!l.path.empty())
          for (const auto& p : Expand(l.path)) wanted.insert(p);
    }
    bool changed = std::any_of(wanted.begin(), wanted.end(), [&](const std::string& p) { return !sources_.count(p); });
    if (changed) {
      Log(LOG_INFO, "new log files match the configured globs; following them");
      StartSources(config_, false);
    }
  }
  PollSources(nullptr);  // safety net for missed inotify events, and files that appeared
  SavePositions();
  if (resync_) {
    // The bans are in the state store; put them all in the kernel again.
    std::vector<FirewallOrder> orders = ActiveOrders(now);
    auto ensure = firewall_->EnsureTable();
    auto r = ensure ? firewall_->Apply(orders) : Result<ApplyReport>(Fail(ensure.error()));
    if (r) {
      resync_ = degraded_ = false;
      Log(LOG_NOTICE, "firewall is back: " + std::to_string(orders.size()) + " active bans applied again");
    }
  }
  if (ticks_ % 5 == 0) {
    auto intact = firewall_->Intact();
    if (intact && !*intact) {
      Log(LOG_WARNING, "the firewall table was changed or removed by someone else; rebuilding it");
      std::vector<FirewallOrder> orders = ActiveOrders(now);
      if (auto r = firewall_->Rebuild(orders); !r) Log(LOG_ERR, "rebuild: " + r.error().ToString());
    }
    if (!intact) {
      degraded_ = true;
      degraded_why_ = "firewall: " + intact.error().ToString();
    } else if (!resync_) {
      degraded_ = false;
    }
  }
  sd_notify(0, "WATCHDOG=1");
}

void Daemon::HandleInotify() {
  char buf[16384] __attribute__((aligned(alignof(inotify_event))));
  std::set<std::string> dirty;
  for (;;) {
    ssize_t n = read(inotify_, buf, sizeof buf);
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        PollSources(nullptr);
        continue;
      }
      auto w = watches_.find(ev->wd);
      if (w == watches_.end() || ev->len == 0) continue;
      std::string path = w->second + "/" + ev->name;
      if (sources_.count(path)) dirty.insert(path);
    }
  }
  if (!dirty.empty()) PollSources(&dirty);
}

void Daemon::HandleSignal() {
  signalfd_siginfo si{};
  while (read(sigfd_, &si, sizeof si) == sizeof si) {
    switch (si.ssi_signo) {
      case SIGHUP:
        sd_notify(0, "RELOADING=1");
        Log(LOG_INFO, "reloading " + opt_.config);
        LoadAndBuild(false);
        sd_notify(0, "READY=1");
        break;
      case SIGTERM:
      case SIGINT:
        stop_ = true;
        break;
      case SIGCHLD:
        hooks_.Reap();
        break;
      default: break;
    }
  }
}

void Daemon::AcceptClients() {
  for (;;) {
    int fd = accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) break;
    if (auto ok = CheckPeer(fd, config_.control_group); !ok) {
      std::string answer = json{{"ok", false}, {"error", ok.error().message}}.dump() + "\n";
      (void)!write(fd, answer.data(), answer.size());
      close(fd);
      Log(LOG_WARNING, "control: refused a client: " + ok.error().message);
      continue;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    clients_[fd] = "";
  }
}

void Daemon::HandleClient(int fd) {
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf);
  auto& in = clients_[fd];
  bool done = n <= 0;
  if (n > 0) in.append(buf, static_cast<size_t>(n));
  if (in.size() > 65536) done = true;  // no request is that long
  size_t nl = in.find('\n');
  if (nl != std::string::npos) {
    json req = json::parse(in.substr(0, nl), nullptr, false);
    json answer;
    if (!req.is_object()) {
      answer = json{{"ok", false}, {"error", "the request is not a JSON object"}};
    } else {
      // A field of the wrong type ("target": 5) makes the JSON library throw: answer the
      // client, never let it take the daemon down.
      try {
        answer = Command(req);
      } catch (const json::exception& e) {
        answer = json{{"ok", false}, {"error", std::string("malformed request: ") + e.what()}};
      }
    }
    std::string out = answer.dump() + "\n";
    // Answers are small; a client that does not read is its own problem.
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    (void)!write(fd, out.data(), out.size());
    done = true;
  }
  if (done) {
    epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    clients_.erase(fd);
  }
}

// Every active ban as a firewall order with the time it has left.
std::vector<FirewallOrder> Daemon::ActiveOrders(Time now) const {
  std::vector<FirewallOrder> orders;
  for (const auto& [p, b] : bans_)
    orders.push_back({FirewallOrder::Kind::kBan, p,
                      b.record.end ? std::max(Seconds(1), std::chrono::ceil<Seconds>(*b.record.end - now)) : Seconds(0)});
  return orders;
}

json Daemon::ListBans() {
  json list = json::array();
  Time now = Now();
  for (const auto& [p, b] : bans_) {
    json j;
    j["target"] = p.ToString();
    j["jail"] = b.record.jail;
    j["rule"] = b.record.rule;
    j["account"] = b.record.account.empty() ? json(nullptr) : json(b.record.account);
    j["reason"] = b.record.reason;
    j["since"] = FormatIso8601(b.record.start);
    j["remaining_s"] = b.record.end ? json(std::max<int64_t>(0, std::chrono::ceil<Seconds>(*b.record.end - now).count())) : json(nullptr);
    list.push_back(j);
  }
  return list;
}

json Daemon::Status(const std::string& only) {
  json j;
  j["ok"] = true;
  j["version"] = kVersion;
  j["firewall"] = firewall_->Describe();
  j["health"] = degraded_ ? "degraded: " + degraded_why_ : "ok";
  const auto& s = engine_->stats();
  j["lines"] = s.lines;
  j["matched"] = s.matched;
  j["skipped"] = s.skipped;
  j["bans"] = bans_.size();
  j["jails"] = json::array();
  for (const auto& jail : config_.jails) {
    if (!only.empty() && jail.name != only) continue;
    json jj;
    jj["name"] = jail.name;
    jj["enabled"] = jail_why_[jail.name].rfind("on", 0) == 0;
    jj["why"] = jail_why_[jail.name];
    jj["logs"] = json::array();
    for (const auto& [path, src] : sources_)
      if (std::find(src.jails.begin(), src.jails.end(), jail.name) != src.jails.end())
        jj["logs"].push_back({{"path", path}, {"open", src.tail->is_open()}});
    for (const auto& [name, feed] : journals_)
      if (std::find(feed.jails.begin(), feed.jails.end(), jail.name) != feed.jails.end())
        jj["logs"].push_back({{"path", name}, {"open", true}});
    size_t n = 0;
    for (const auto& [p, b] : bans_) n += b.record.jail == jail.name;
    jj["bans"] = n;
    j["jails"].push_back(jj);
  }
  if (!only.empty() && j["jails"].empty()) return json{{"ok", false}, {"error", "no jail named '" + only + "'"}};
  return j;
}

json Daemon::Command(const json& req) {
  std::string cmd = req.value("cmd", "");
  if (cmd == "status") return Status(req.value("jail", ""));
  if (cmd == "list") return json{{"ok", true}, {"bans", ListBans()}};
  if (cmd == "accounts") {
    json a = json::array();
    for (const auto& v : engine_->accounts().Snapshot()) a.push_back(AccountJson(v));
    return json{{"ok", true}, {"accounts", a}};
  }
  if (cmd == "reload") {
    bool ok = LoadAndBuild(false);
    if (ok) return json{{"ok", true}};
    std::vector<Error> errors;
    LoadConfig(opt_.config, errors);
    json e = json::array();
    for (const auto& x : errors) e.push_back(x.ToString());
    return json{{"ok", false}, {"error", "the new configuration was rejected; the old one keeps running"}, {"errors", e}};
  }
  if (cmd == "ban") {
    auto target = Prefix::Parse(req.value("target", ""), false);
    if (!target) return json{{"ok", false}, {"error", "not an address or CIDR: " + req.value("target", "")}};
    auto d = ParseDuration(req.value("for", FormatDuration(config_.ban.default_duration)));
    if (!d) return json{{"ok", false}, {"error", "bad duration: " + req.value("for", "")}};
    bool ignored = engine_->policy().CoversIgnored(*target);
    if (ignored && !req.value("force", false))
      return json{{"ok", false}, {"error", target->ToString() + " is in the ignore list (or loopback); use --force to ban it anyway"}};
    Order o{Order::Action::kBan, Now(), req.value("jail", "manual"), "manual", *target, "", *d,
            req.value("reason", "manual ban")};
    ApplyOrders({o}, true);
    book_.Record(o);
    return json{{"ok", true}, {"target", target->ToString()}, {"duration_s", d->count()}};
  }
  if (cmd == "unban") {
    std::vector<Prefix> targets;
    if (req.value("all", false)) {
      for (const auto& [p, b] : bans_) targets.push_back(p);
    } else {
      auto target = Prefix::Parse(req.value("target", ""), false);
      if (!target) return json{{"ok", false}, {"error", "not an address or CIDR: " + req.value("target", "")}};
      targets.push_back(*target);
    }
    std::vector<FirewallOrder> fw;
    json removed = json::array();
    for (const auto& t : targets) {
      fw.push_back({FirewallOrder::Kind::kUnban, t, Seconds(0)});
      if (bans_.erase(t)) removed.push_back(t.ToString());
      (void)state_->EndBan(t, Now(), "unban");
      book_.Erase(t);
      Log(LOG_NOTICE, "unban " + t.ToString());
    }
    auto r = firewall_->Apply(fw);
    if (!r) return json{{"ok", false}, {"error", r.error().ToString()}};
    return json{{"ok", true}, {"removed", removed}};
  }
  return json{{"ok", false}, {"error", "unknown command '" + cmd + "'"}};
}

int Daemon::Run() {
  std::vector<Error> errors;
  auto c = LoadConfig(opt_.config, errors);
  if (!c) {
    for (const auto& e : errors) Log(LOG_ERR, e.ToString());
    return 78;
  }
  config_ = *c;
  std::error_code ec;
  std::filesystem::create_directories(config_.state_dir, ec);
  auto st = OpenSqliteStore(config_.state_dir + "/state.db");
  if (!st) {
    Log(LOG_ERR, st.error().ToString());
    return 73;
  }
  state_ = std::move(st.value());
  if (opt_.dry_run || config_.firewall.backend == "dry-run") {
    firewall_ = MakeDryRunFirewall([](const std::string& l) { Log(LOG_INFO, l); });
  } else {
    FirewallSpecOptions fo;
    fo.table = config_.firewall.table;
    fo.input = std::find(config_.firewall.hooks.begin(), config_.firewall.hooks.end(), "input") != config_.firewall.hooks.end();
    fo.forward = std::find(config_.firewall.hooks.begin(), config_.firewall.hooks.end(), "forward") != config_.firewall.hooks.end();
    fo.reject = config_.firewall.verdict == "reject";
    if (!config_.firewall.own_table) fo.ownership = FirewallSpecOptions::Ownership::kNone;
    auto fw = NftFirewall::Open(fo);
    if (!fw) {
      Log(LOG_ERR, "firewall: " + fw.error().ToString());
      return 71;
    }
    firewall_ = std::move(fw.value());
  }
  if (auto r = firewall_->EnsureTable(); !r) {
    Log(LOG_ERR, "firewall: " + r.error().ToString());
    return 71;
  }
  Reconcile();

  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGHUP, SIGTERM, SIGINT, SIGCHLD}) sigaddset(&mask, s);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  sigfd_ = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  inotify_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  timerfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  itimerspec its{{1, 0}, {1, 0}};
  timerfd_settime(timerfd_, 0, &its, nullptr);
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (!LoadAndBuild(true)) return 78;
  auto l = ListenControl(config_.control_socket, config_.control_group);
  if (!l) {
    Log(LOG_ERR, l.error().ToString());
    return 71;
  }
  listen_ = *l;
  for (int fd : {sigfd_, inotify_, timerfd_, listen_}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  }
  Log(LOG_INFO, std::string("relayban ") + kVersion + " running: " + firewall_->Describe() + ", " +
                    std::to_string(sources_.size()) + " log files, control socket " + config_.control_socket);
  sd_notify(0, "READY=1");
  PollSources(nullptr);
  epoll_event events[32];
  while (!stop_) {
    int n = epoll_wait(epfd_, events, 32, 1000);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == inotify_) HandleInotify();
      else if (fd == sigfd_) HandleSignal();
      else if (fd == listen_) AcceptClients();
      else if (fd == timerfd_) {
        uint64_t expirations;
        (void)!read(timerfd_, &expirations, sizeof expirations);
        Tick();
      } else if (clients_.count(fd)) {
        HandleClient(fd);
      } else {
        for (auto& [name, feed] : journals_)
          if (feed.journal->fd() == fd) {
            std::set<std::string> one{name};
            PollSources(&one);
          }
      }
    }
  }
  sd_notify(0, "STOPPING=1");
  PollSources(nullptr);
  SavePositions();
  if (opt_.flush_on_exit) {
    if (auto r = firewall_->Remove(); !r) Log(LOG_ERR, r.error().ToString());
    for (const auto& [p, b] : bans_) (void)state_->EndBan(p, Now(), "flushed on exit");
    Log(LOG_INFO, "stopped; the firewall table was removed (--flush-on-exit)");
  } else {
    Log(LOG_INFO, "stopped; " + std::to_string(bans_.size()) + " bans stay in the kernel and expire on their own");
  }
  unlink(config_.control_socket.c_str());
  return 0;
}

}  // namespace

int RunDaemon(const DaemonOptions& options) {
  Daemon d(options);
  return d.Run();
}

}  // namespace relayban
