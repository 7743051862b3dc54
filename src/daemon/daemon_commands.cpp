// The daemon's answers to control requests. Short answers are sent at once; `list` and
// `accounts` stream a slice per loop turn while the peer reads; `ban` and `unban` answer once
// the kernel holds the change (or the firewall refused it, and it is being retried).
#include <syslog.h>

#include <cmath>
#include <numeric>

#include <nlohmann/json.hpp>

#include "daemon.hpp"
#include "relayban/config/config_loader.hpp"
#include "relayban/core/text.hpp"
#include "relayban/version.hpp"
#include "report/json_report.hpp"

namespace relayban {
namespace {

using nlohmann::json;

constexpr size_t kItemsPerSlice = 2000;
constexpr size_t kMaxPending = size_t{1} << 20;  // stop producing while this much waits

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
// A decision record: its fields in the order written, "time" first.
using Record = nlohmann::ordered_json;
std::string Dump(const Record& j) { return j.dump(-1, ' ', false, Record::error_handler_t::replace); }

}  // namespace

void Daemon::Reply(ClientId client, std::string_view line) {
  if (client >= kDirect) {
    // One answer a call, as a peer reads them: `line` may hold several (JSON text never
    // holds a raw newline).
    auto it = direct_.find(client);
    if (it == direct_.end()) return;
    for (size_t start = 0;;) {
      size_t nl = line.find('\n', start);
      it->second(line.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
      if (nl == std::string_view::npos) return;
      start = nl + 1;
    }
  }
  std::string s(line);
  s += '\n';
  server_->Send(client, s);
}

void Daemon::Finish(ClientId client) {
  if (client >= kDirect) direct_.erase(client);
  else server_->Finish(client);
}

size_t Daemon::Pending(ClientId client) const { return client >= kDirect ? 0 : server_->Pending(client); }
bool Daemon::Connected(ClientId client) const { return client >= kDirect ? direct_.count(client) > 0 : server_->Connected(client); }

void Daemon::Command(std::string_view request, std::function<void(std::string_view line)> on_line) {
  ClientId id = next_direct_++;
  direct_[id] = std::move(on_line);
  OnRequest(id, request);
}

void Daemon::OnRequest(ClientId client, std::string_view line) {
  auto req = ParseControlRequest(line);
  if (!req) {
    Reply(client, ErrorAnswer(req.error().message));
    Finish(client);
    return;
  }
  using C = ControlRequest::Command;
  switch (req->command) {
    case C::kStatus: {
      Reply(client, Status(req->jail));
      Finish(client);
      return;
    }
    case C::kReload: {
      std::vector<Error> errors;
      if (Reload(&errors)) {
        Reply(client, Dump(json{{"ok", true}}));
      } else {
        json e = json::array();
        for (const auto& x : errors) e.push_back(x.ToString());
        Reply(client, Dump(json{{"ok", false},
                                {"error", "the new configuration was rejected; the old one keeps running"},
                                {"errors", e}}));
      }
      Finish(client);
      return;
    }
    case C::kList: StartList(client); return;
    case C::kAccounts: StartAccounts(client); return;
    case C::kBan: Ban(client, *req); return;
    case C::kUnban: Unban(client, *req); return;
    case C::kForgive: Forgive(client, *req); return;
    case C::kExplain: Explain(client, *req); return;
    case C::kMetrics: {
      Reply(client, Dump(json{{"ok", true}, {"metrics", RenderMetrics()}}));
      Finish(client);
      return;
    }
  }
}

std::string Daemon::Requester(ClientId client) const {
  return client >= kDirect ? std::string("a local call") : server_->Describe(client);
}

std::string Daemon::Status(const std::string& only) const {
  json j;
  j["ok"] = true;
  j["version"] = kVersion;
  j["firewall"] = parts_.firewall->Describe();
  j["health"] = Health();
  const EngineStats& s = engine_->stats();
  j["lines"] = s.lines;
  j["matched"] = s.matched;
  j["skipped"] = s.skipped;
  j["ambiguous"] = s.ambiguous;
  j["outages"] = {{"tripped", s.outages}, {"events_held", s.outage_suppressed}};
  j["relay_repeats"] = s.relay_repeats;  // delivery retries of a message already counted
  j["bans"] = ledger_->size();
  EngineEvictions ev = engine_->evictions();
  j["evicted"] = {{"windows", ev.windows}, {"accounts", ev.accounts}, {"correlation", ev.correlation}, {"offences", ev.offences}};
  json suppressed = json::object();
  for (const auto& [unit, n] : journald_suppressed_) suppressed[unit] = n;
  j["lost_before_reading"] = {{"journald_rate_limit", suppressed}, {"syslog_forward", syslog_forward_missed_}};
  j["backlog"] = {{"kernel", ledger_->kernel_backlog()}, {"state_database", ledger_->store_backlog()},
                  {"lines", sources_->Pending()}};
  const auto& ls = ledger_->stats();
  j["work_seconds"] = {{"reading", reading_seconds_}, {"kernel", ls.kernel_seconds}, {"bans_written", ls.store_seconds},
                       {"journal_written", journal_seconds_}};
  // The loop's longest turn: what a control request (this one too) may have waited for.
  auto over_100ms = std::upper_bound(std::begin(kTurnBounds), std::end(kTurnBounds), 0.1) - std::begin(kTurnBounds);
  j["loop"] = {{"turns", turn_stats_.turns},
               {"longest_turn_ms", std::round(turn_stats_.longest * 10000) / 10},
               {"longest_turn_part", turn_stats_.longest_part},
               {"turns_over_100ms", std::accumulate(turn_stats_.buckets.begin() + over_100ms, turn_stats_.buckets.end(), uint64_t{0})}};
  const auto& hs = hooks_->stats();
  j["hooks"] = {{"running", hooks_->running()}, {"queued", hooks_->queued()}, {"started", hs.started},
                {"failed", hs.failed},          {"killed", hs.killed},         {"dropped", hs.dropped}};
  const auto& ds = decisions_->stats();
  j["decision_log"] = {{"path", config_.decision_log}, {"lines", ds.lines}, {"errors", ds.errors}, {"dropped", ds.dropped},
                       {"evidence_omitted", evidence_omitted_}};
  j["metrics"] = {{"textfile", config_.metrics.on ? config_.metrics.textfile : ""},
                  {"listen", metrics_listen_},
                  {"textfile_errors", textfile_errors_}};
  if (fleet_) {
    const FleetStats& fs = fleet_->stats();
    json peers = json::object();
    for (const auto& [h, at] : fleet_->peers()) peers[h] = FormatIso8601(Time(std::chrono::milliseconds(at)));
    j["fleet"] = {{"name", fleet_->options().name},
                  {"host", fleet_->options().host},
                  {"redis", fleet_->options().address.ToString()},
                  {"connected", fleet_->connected()},
                  {"in_step", fleet_->synced()},
                  {"peers", peers},
                  {"outbox", fleet_->outbox()},
                  {"position", fleet_->position()},
                  {"last_error", fleet_->last_error()},
                  {"sent", fs.sent},
                  {"received", fs.received},
                  {"applied", fs.applied},
                  {"unchanged", fs.unchanged},
                  {"refused", {{"forged", fs.refused_forged}, {"too_wide", fs.refused_bounds},
                               {"ignored", fs.refused_ignored}, {"rate", fs.refused_rate},
                               {"lifted", fs.refused_lifted}}},
                  {"outbox_dropped", fs.outbox_dropped},
                  {"send_errors", fs.send_errors},
                  {"resyncs", fs.resyncs},
                  {"republished", fs.republished},
                  {"connects", fs.connects},
                  {"counted", fs.counted},
                  {"verdicts_won", fs.fleet_verdicts},
                  {"count_errors", fs.count_errors},
                  {"counts_dropped", fs.counts_dropped},
                  {"congested", fleet_->congested()}};
  }
  j["jails"] = json::array();
  auto sources = sources_->Describe();
  for (const auto& state : plan_.jails) {
    if (!only.empty() && state.name != only) continue;
    json jj;
    jj["name"] = state.name;
    jj["enabled"] = state.on;
    jj["why"] = state.why;
    jj["logs"] = json::array();
    for (const auto& src : sources) {
      if (std::find(src.jails.begin(), src.jails.end(), state.name) == src.jails.end()) continue;
      json l{{"path", src.name}, {"open", src.open}};
      if (src.read) l["read"] = *src.read;
      if (src.size) l["size"] = *src.size;
      if (src.generations > 1) l["generations"] = src.generations;
      if (src.dropped) l["dropped_generations"] = src.dropped;
      jj["logs"].push_back(l);
    }
    jj["bans"] = ledger_->CountInJail(state.name);
    j["jails"].push_back(jj);
  }
  if (!only.empty() && j["jails"].empty()) return ErrorAnswer("no jail named '" + only + "'");
  return Dump(j);
}

void Daemon::StartList(ClientId client) {
  // The bans of this moment; each is looked up again when its turn comes (one lifted or
  // expired meanwhile is left out).
  auto targets = std::make_shared<std::vector<Prefix>>(ledger_->Targets());
  auto next = std::make_shared<size_t>(0), sent = std::make_shared<size_t>(0);
  auto job = std::make_unique<Job>();
  job->client = client;
  job->streaming = true;
  job->step = [this, client, targets, next, sent]() {
    Time now = parts_.clock->Now();
    // A slice's lines go out in one send (one each made a million sends and wake-ups of the
    // client for a million bans).
    std::string lines;
    for (size_t produced = 0; *next < targets->size() && produced < kItemsPerSlice && Pending(client) < kMaxPending;) {
      auto b = ledger_->Get((*targets)[(*next)++]);
      if (!b) continue;
      if (!lines.empty()) lines += '\n';
      lines += BanLedger::ListItem(*b, now);
      ++produced;
      ++*sent;
    }
    if (!lines.empty()) Reply(client, lines);
    if (*next < targets->size()) return false;
    Reply(client, Dump(json{{"ok", true}, {"count", *sent}}));
    return true;
  };
  jobs_.push_back(std::move(job));
  more_work_ = true;
}

json Daemon::HabitsJson(const std::string& account) const {
  auto u = engine_->AccountHabits(account, parts_.clock->Now());
  if (!u) return nullptr;
  return json{{"days", u->days},
              {"usual_outside_domains", u->usual},
              {"outside_domains_today", u->today},
              {"usual_busiest_hour_domains", u->usual_hour},
              {"usual_recipients", u->usual_relays},
              {"recipients_today", u->relays_today},
              {"login_hours_utc", u->login_hours}};
}

void Daemon::StartAccounts(ClientId client) {
  auto accounts = std::make_shared<std::vector<AccountView>>(engine_->accounts().Snapshot());
  auto next = std::make_shared<size_t>(0);
  auto job = std::make_unique<Job>();
  job->client = client;
  job->streaming = true;
  job->step = [this, client, accounts, next]() {
    std::string lines;
    for (size_t produced = 0; *next < accounts->size() && produced < kItemsPerSlice && Pending(client) < kMaxPending; ++produced)
    {
      const AccountView& v = (*accounts)[(*next)++];
      json a = AccountJson(v);
      if (json h = HabitsJson(v.account); !h.is_null()) a["habits"] = std::move(h);
      if (!lines.empty()) lines += '\n';
      lines += Dump(json{{"account", std::move(a)}});
    }
    if (!lines.empty()) Reply(client, lines);
    if (*next < accounts->size()) return false;
    Reply(client, Dump(json{{"ok", true}, {"count", accounts->size()}}));
    return true;
  };
  jobs_.push_back(std::move(job));
  more_work_ = true;
}

// Answers once `answer` has one.
void Daemon::WaitFor(ClientId client, std::function<std::optional<std::string>()> answer) {
  auto job = std::make_unique<Job>();
  job->client = client;
  job->step = [this, client, answer = std::move(answer)]() {
    auto a = answer();
    if (!a) return false;
    Reply(client, *a);
    return true;
  };
  jobs_.push_back(std::move(job));
  more_work_ = true;
}

void Daemon::Ban(ClientId client, const ControlRequest& r) {
  auto target = Prefix::Parse(r.target, false);
  if (!target) {
    Reply(client, ErrorAnswer("not an address or CIDR: " + Printable(r.target, 80)));
    return Finish(client);
  }
  std::string for_text = r.duration.value_or(FormatDuration(config_.ban.default_duration));
  auto d = ParseDuration(for_text);
  if (!d) {
    Reply(client, ErrorAnswer("bad duration: " + Printable(for_text, 40)));
    return Finish(client);
  }
  if (engine_->policy().CoversIgnored(*target) && !r.force) {
    Reply(client, ErrorAnswer(target->ToString() + " is in the ignore list (or loopback); use --force to ban it anyway"));
    return Finish(client);
  }
  Order o{Order::Action::kBan, parts_.clock->Now(), r.jail, "manual", *target, "", *d, r.reason};
  ledger_->Ban(o, BanOrigin::kManual, true);
  PublishBan(*target, *d, r.jail, "manual", "", r.reason, true);
  ++bans_by_[{r.jail, "manual", "manual"}];
  Decision(Dump(Record{{"time", FormatIso8601(o.at)}, {"action", "ban"}, {"target", target->ToString()}, {"jail", r.jail},
                     {"rule", "manual"}, {"account", nullptr}, {"reason", r.reason}, {"duration_s", d->count()},
                     {"origin", "manual"}, {"by", Requester(client)}}),
           o.at, target->ToString(), "");
  Log(LOG_NOTICE, "manual ban " + target->ToString() + " for " + (d->count() ? FormatDuration(*d) : std::string("ever")) +
                      " jail=" + Printable(r.jail, 64) + " rule=manual reason=\"" + Printable(r.reason, 200) + "\"");
  Prefix t = *target;
  int64_t secs = d->count();
  WaitFor(client, [this, t, secs]() -> std::optional<std::string> {
    if (!ledger_->KernelPending(t))
      return Dump(json{{"ok", true}, {"target", t.ToString()}, {"duration_s", secs}});
    if (!ledger_->firewall_problem().empty())
      return ErrorAnswer("banned in relayban, but the firewall refused it: " + ledger_->firewall_problem() +
                         "; it is retried until it holds");
    return std::nullopt;
  });
}

void Daemon::Unban(ClientId client, const ControlRequest& r) {
  std::vector<Prefix> targets;
  size_t removed = 0;
  json names = json::array();
  if (r.all) {
    removed = ledger_->UnbanAll();
    Log(LOG_NOTICE, "unban --all: " + std::to_string(removed) + " bans lifted (asked by " + Requester(client) + ")");
    Decision(Dump(Record{{"time", FormatIso8601(parts_.clock->Now())}, {"action", "unban_all"}, {"count", removed},
                         {"origin", "manual"}, {"by", Requester(client)}}),
             parts_.clock->Now(), "", "");
  } else {
    auto target = Prefix::Parse(r.target, false);
    if (!target) {
      Reply(client, ErrorAnswer("not an address or CIDR: " + Printable(r.target, 80)));
      return Finish(client);
    }
    if (ledger_->Unban(*target, true)) {
      ++removed;
      names.push_back(target->ToString());
    }
    targets.push_back(*target);
    PublishUnban(*target);
    // An account verdict that stood must not ban the address again at its next login.
    Time now = parts_.clock->Now();
    if (target->is_single()) {
      engine_->Exempt(target->address(), now);
      SaveAdminNote(kExemptedNote, target->address().ToString(), now);
    }
    Log(LOG_NOTICE, "unban " + target->ToString() + " (asked by " + Requester(client) + ")");
    Decision(Dump(Record{{"time", FormatIso8601(now)}, {"action", "unban"}, {"target", target->ToString()},
                         {"lifted", removed > 0}, {"origin", "manual"}, {"by", Requester(client)}}),
             now, target->ToString(), "");
  }
  bool all = r.all;
  WaitFor(client, [this, targets, removed, names, all]() -> std::optional<std::string> {
    bool settled = all ? ledger_->KernelSettled()
                       : std::none_of(targets.begin(), targets.end(), [&](const Prefix& p) { return ledger_->KernelPending(p); });
    if (settled) {
      json a{{"ok", true}, {"removed", names}};
      if (all) a["removed_count"] = removed;
      return Dump(a);
    }
    if (!ledger_->firewall_problem().empty())
      return ErrorAnswer("lifted in relayban, but the firewall refused the removal: " + ledger_->firewall_problem() +
                         "; it is retried until it holds");
    return std::nullopt;
  });
}

void Daemon::Forgive(ClientId client, const ControlRequest& r) {
  std::vector<std::string> had;
  for (const auto& a : engine_->accounts().Snapshot())
    if (a.account == r.target) {
      had = a.verdicts;
      had.insert(had.end(), a.targeted_by.begin(), a.targeted_by.end());
    }
  Time now = parts_.clock->Now();
  engine_->Forgive(r.target, now);
  SaveAdminNote(kForgivenNote, r.target, now);
  std::string list;
  for (const auto& v : had) list += (list.empty() ? "" : ",") + v;
  Decision(Dump(Record{{"time", FormatIso8601(now)}, {"action", "forgive"}, {"account", r.target}, {"verdicts_lifted", had},
                       {"origin", "manual"}, {"by", Requester(client)}}),
           now, "", r.target);
  Log(LOG_NOTICE, "forgive account " + Printable(r.target, 200) + " (asked by " + Requester(client) +
                      "): " + (had.empty() ? "it had no verdict" : "verdicts " + list + " lifted") +
                      "; its counts restart");
  Reply(client, Dump(json{{"ok", true}, {"account", r.target}, {"verdicts_lifted", had}}));
  Finish(client);
}

// What relayban knows of an address or an account: the ban in force, the account's view, and
// the newest decisions about it with the log lines behind each (from the state database).
void Daemon::Explain(ClientId client, const ControlRequest& r) {
  constexpr size_t kMaxDecisions = 20;
  SaveDecisions(true);  // what was just decided is there too
  Time now = parts_.clock->Now();
  json a{{"ok", true}, {"subject", r.target}};
  std::vector<std::string> targets;
  std::string account;
  auto ban_json = [&](const BanLedger::ActiveBan& b) {
    return json{{"target", b.target.ToString()}, {"jail", b.info->jail}, {"rule", b.info->rule},
                {"account", b.info->account.empty() ? json(nullptr) : json(b.info->account)},
                {"reason", b.info->reason}, {"origin", OriginName(b.info->origin)}, {"since", FormatIso8601(b.start)},
                {"remaining_s", b.end == Time::max() ? json(nullptr)
                                                     : json(std::max<int64_t>(0, std::chrono::ceil<Seconds>(b.end - now).count()))}};
  };
  a["active_bans"] = json::array();
  if (auto p = Prefix::Parse(r.target, false)) {
    a["kind"] = "address";
    std::vector<Prefix> candidates{*p};
    // An address is banned as its ban target (its /64, for IPv6 by default).
    if (p->is_single()) candidates.push_back(engine_->policy().TargetFor(p->address()));
    for (const Prefix& c : candidates) {
      std::string t = c.ToString();
      if (std::find(targets.begin(), targets.end(), t) != targets.end()) continue;
      targets.push_back(t);
      if (auto b = ledger_->Get(c)) a["active_bans"].push_back(ban_json(*b));
    }
  } else {
    a["kind"] = "account";
    account = ToLowerAscii(r.target);
    if (auto v = engine_->accounts().View(account)) a["account"] = AccountJson(*v);
    else a["account"] = nullptr;
    a["habits"] = HabitsJson(account);
    size_t shown = 0;
    ledger_->ForEach([&](const BanLedger::ActiveBan& b) {
      if (b.info->account == account && shown++ < kMaxDecisions) a["active_bans"].push_back(ban_json(b));
    });
  }
  a["decisions"] = json::array();
  auto rows = Store().FindDecisions(targets, account, kMaxDecisions);
  if (!rows) {
    a["decisions_error"] = rows.error().message;
  } else {
    for (const auto& row : *rows) {
      json d = json::parse(row.record, nullptr, false);
      if (!d.is_discarded()) a["decisions"].push_back(std::move(d));
    }
  }
  Reply(client, Dump(a));
  Finish(client);
}

bool Daemon::RunJobs() {
  bool more = false;
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    Job& job = **it;
    bool finished = !Connected(job.client) || job.step();  // a peer that left needs no answer
    if (finished) {
      if (Connected(job.client)) Finish(job.client);
      it = jobs_.erase(it);
      continue;
    }
    more = more || (job.streaming && Pending(job.client) < kMaxPending);
    ++it;
  }
  return more;
}

}  // namespace relayban
