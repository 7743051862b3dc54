#include "control_commands.hpp"

#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "relayban/config/config_loader.hpp"
#include "relayban/control/control_client.hpp"
#include "relayban/control/protocol.hpp"
#include "relayban/core/duration.hpp"
#include "relayban/core/text.hpp"
#include "report/tables.hpp"

namespace relayban {
namespace {

using nlohmann::json;

constexpr int kExitUnavailable = 69;  // EX_UNAVAILABLE: the daemon is not running
constexpr int kExitRefused = 77;      // EX_NOPERM

std::string Pad(const std::string& s, size_t w) { return Cell(s, w); }

std::string Str(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  if (j[key].is_string()) return j[key].get<std::string>();
  return j[key].dump();
}

// The socket's path: given, or from the main configuration file alone - but for `reload`,
// which reads the whole configuration first and shows its errors here as well.
std::optional<std::string> SocketPath(const ClientOptions& o, std::ostream& err, int& rc, bool whole = false) {
  if (!o.socket.empty()) return o.socket;
  std::vector<Error> errors;
  std::optional<std::string> socket;
  if (whole) {
    if (auto c = LoadConfig(o.config, errors)) socket = c->control_socket;
  } else {
    socket = LoadControlSocket(o.config, errors);
  }
  if (!socket) {
    for (const auto& e : errors) err << e.ToString() << "\n";
    rc = 78;
    return std::nullopt;
  }
  return socket;
}

// Sends the request and passes every answer line (parsed) to `on_item`, but the last, which
// is returned: {"ok": ...}. A line `on_raw` takes (returns true for) is not parsed. Prints
// errors; returns nullopt with `rc` set on failure.
std::optional<json> Exchange(const ClientOptions& o, const ControlRequest& req, std::ostream& err, int& rc,
                             const std::function<void(const json&)>& on_item = nullptr,
                             const std::function<bool(std::string_view)>& on_raw = nullptr) {
  auto path = SocketPath(o, err, rc, req.command == ControlRequest::Command::kReload);
  if (!path) return std::nullopt;
  std::optional<json> last;
  bool bad = false;
  auto r = ControlExchange(*path, FormatControlRequest(req), [&](std::string_view line) {
    if (on_raw && on_raw(line)) return;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      bad = true;
      return;
    }
    if (j.contains("ok")) last = std::move(j);
    else if (on_item) on_item(j);
  });
  if (!r) {
    err << "relayban: " << r.error().message << "\n";
    rc = r.error().kind == ErrorKind::kUnavailable ? kExitUnavailable : r.error().kind == ErrorKind::kPermission ? kExitRefused : 1;
    return std::nullopt;
  }
  if (bad || !last) {
    err << "relayban: the daemon's answer is not JSON\n";
    rc = 1;
    return std::nullopt;
  }
  if (!last->value("ok", false)) {
    if (!o.json) {
      err << "relayban: " << last->value("error", std::string("failed")) << "\n";
      if (last->contains("errors"))
        for (const auto& e : (*last)["errors"]) err << "  " << e.get<std::string>() << "\n";
    } else {
      std::cout << last->dump(2) << "\n";
    }
    rc = last->value("error", std::string()).rfind("permission denied", 0) == 0 ? kExitRefused : 1;
    return std::nullopt;
  }
  rc = 0;
  return last;
}

// Sends `req`; prints the daemon's JSON answer with --json, else what `print` makes of it.
int Answer(const ClientOptions& o, const ControlRequest& req, std::ostream& out, std::ostream& err,
           const std::function<void(const json&)>& print) {
  int rc = 0;
  auto r = Exchange(o, req, err, rc);
  if (!r) return rc;
  if (o.json) out << r->dump(2) << "\n";
  else print(*r);
  return 0;
}

// The strings of a JSON array, joined with `sep` ("" for anything else).
std::string Joined(const json& list, const char* sep) {
  std::string s;
  if (list.is_array())
    for (const auto& x : list)
      if (x.is_string()) s += (s.empty() ? "" : sep) + x.get<std::string>();
  return s;
}

}  // namespace

int RunBan(const ClientOptions& o, const BanArgs& b, std::ostream& out, std::ostream& err) {
  ControlRequest req;
  req.command = ControlRequest::Command::kBan;
  req.target = b.target;
  req.jail = b.jail;
  req.reason = b.reason;
  req.force = b.force;
  if (!b.duration.empty()) req.duration = b.duration;
  return Answer(o, req, out, err, [&](const json& r) {
    int64_t d = r["duration_s"].get<int64_t>();
    out << "banned " << r["target"].get<std::string>() << " for " << (d ? FormatDuration(Seconds(d)) : std::string("ever"))
        << "\n";
  });
}

int RunUnban(const ClientOptions& o, const std::string& target, bool all, std::ostream& out, std::ostream& err) {
  ControlRequest req;
  req.command = ControlRequest::Command::kUnban;
  req.target = target;
  req.all = all;
  return Answer(o, req, out, err, [&](const json& r) {
    if (all) {
      size_t n = r.value("removed_count", size_t{0});
      out << (n ? "unbanned " + std::to_string(n) + (n == 1 ? " ban" : " bans") + "\n" : std::string("no bans were active\n"));
      return;
    }
    const json& removed = r["removed"];
    if (removed.empty()) out << target << " was not banned (removed from the firewall anyway)\n";
    for (const auto& t : removed) out << "unbanned " << t.get<std::string>() << "\n";
  });
}

int RunForgive(const ClientOptions& o, const std::string& account, std::ostream& out, std::ostream& err) {
  ControlRequest req;
  req.command = ControlRequest::Command::kForgive;
  req.target = account;
  return Answer(o, req, out, err, [&](const json& r) {
    std::string lifted = Joined(r["verdicts_lifted"], ", ");
    out << "forgave " << Printable(account, 200) << ": "
        << (lifted.empty() ? std::string("it had no verdict") : "lifted " + lifted) << "; its counts start afresh\n";
  });
}

int RunExplain(const ClientOptions& o, const std::string& subject, std::ostream& out, std::ostream& err) {
  ControlRequest req;
  req.command = ControlRequest::Command::kExplain;
  req.target = subject;
  return Answer(o, req, out, err, [&](const json& r) {
    std::string who = Printable(Str(r, "subject"), 100);
    bool is_account = Str(r, "kind") == "account";
    if (is_account) {
      const json& a = r["account"];
      if (a.is_null()) {
        out << "account " << who << ": not in the account book (not seen lately, or evicted)\n";
      } else {
        auto n = [&](const char* key, const char* one, const char* many) {
          std::string v = Str(a, key);
          return v + " " + (v == "1" ? one : many);
        };
        out << "account " << who << ": " << n("auth_success", "login", "logins") << ", " << n("auth_failure", "failure", "failures")
            << ", " << Str(a, "relayed") << " relayed to " << n("recipient_domains", "outside domain", "outside domains")
            << ", from " << n("ips", "address", "addresses") << " (last " << Str(a, "last_ip") << ")\n";
        std::string v = Joined(a["verdicts"], ", "), t = Joined(a["targeted_by"], ", ");
        out << "  verdicts (what it did): " << (v.empty() ? "none" : v) << "\n";
        out << "  targeted by (what was done to it): " << (t.empty() ? "none" : t) << "\n";
      }
      if (r.contains("habits") && r["habits"].is_object()) {
        const json& h = r["habits"];
        std::string hours;
        for (const auto& x : h["login_hours_utc"]) hours += (hours.empty() ? "" : ",") + x.dump();
        out << "  usually (history of " << Str(h, "days") << " days): " << Str(h, "usual_outside_domains")
            << " outside domains (" << Str(h, "usual_busiest_hour_domains") << " in its busiest hour) and "
            << Str(h, "usual_recipients") << " recipients on a busy day (today "
            << Str(h, "outside_domains_today") << " and " << Str(h, "recipients_today") << "), logs in at "
            << (hours.empty() ? std::string("no usual hour yet") : "hours " + hours + " UTC") << "\n";
      }
    }
    const json& bans = r["active_bans"];
    if (bans.empty()) out << (is_account ? "no address is banned for it now\n" : who + ": not banned now\n");
    for (const auto& b : bans) {
      std::string rem = b["remaining_s"].is_null() ? "permanent" : FormatDuration(Seconds(b["remaining_s"].get<int64_t>())) + " left";
      std::string origin = Str(b, "origin");
      out << Str(b, "target") << ": banned, " << rem << " (jail " << Str(b, "jail") << ", rule " << Str(b, "rule")
          << (origin == "manual" ? ", by hand" : origin == "adopted" ? ", found in the kernel" : "") << ", since "
          << Str(b, "since") << ")\n";
    }
    const json& ds = r["decisions"];
    if (r.contains("decisions_error")) out << "the state database could not be read: " << Str(r, "decisions_error") << "\n";
    if (ds.empty()) {
      out << "no decision about it is kept (the newest 50,000 are)\n";
      return;
    }
    out << "\ndecisions, newest first:\n";
    json previous_evidence;
    for (const auto& d : ds) {
      std::string action = Str(d, "action");
      out << "  " << Str(d, "time") << "  " << action;
      if (action == "ban") {
        int64_t secs = d.value("duration_s", int64_t{0});
        out << " " << Str(d, "target") << " for " << (secs ? FormatDuration(Seconds(secs)) : std::string("ever")) << "  "
            << Str(d, "jail") << "/" << Str(d, "rule");
        if (!d["account"].is_null()) out << "  account " << Printable(Str(d, "account"), 80);
      } else if (action == "account_verdict") {
        out << " " << Printable(Str(d, "account"), 80) << "  " << Str(d, "jail") << "/" << Str(d, "rule") << ", "
            << Str(d, "addresses") << (Str(d, "addresses") == "1" ? " address" : " addresses") << " banned";
      } else if (action == "unban") {
        out << " " << Str(d, "target");
      } else if (action == "forgive") {
        out << " " << Printable(Str(d, "account"), 80);
      }
      if (d.contains("by")) out << "  (by " << Str(d, "by") << ")";
      out << "\n";
      if (d.contains("reason")) out << "      why: " << Printable(Str(d, "reason"), 300) << "\n";
      if (d.contains("evidence") && d["evidence"].is_array() && !d["evidence"].empty()) {
        if (d["evidence"] == previous_evidence) {
          out << "      the same " << d["evidence"].size() << " lines as above\n";
        } else {
          out << "      the " << d["evidence"].size() << " lines that led to it, oldest first:\n";
          for (const auto& e : d["evidence"]) out << "        > " << Printable(Str(e, "line"), 400) << "\n";
        }
        previous_evidence = d["evidence"];
      }
    }
  });
}

int RunMetrics(const ClientOptions& o, std::ostream& out, std::ostream& err) {
  ControlRequest req;
  req.command = ControlRequest::Command::kMetrics;
  return Answer(o, req, out, err, [&](const json& r) { out << r.value("metrics", std::string()); });
}

int RunSimple(const ClientOptions& o, const std::string& cmd, const std::string& jail, std::ostream& out, std::ostream& err) {
  ControlRequest req;
  using C = ControlRequest::Command;
  req.command = cmd == "list" ? C::kList : cmd == "accounts" ? C::kAccounts : cmd == "reload" ? C::kReload : C::kStatus;
  req.jail = jail;
  int rc = 0;
  if (req.command == C::kList || req.command == C::kAccounts) {
    // Streamed: one item a line, printed as it comes.
    const char* key = req.command == C::kList ? "ban" : "account";
    size_t n = 0;
    if (o.json) {
      out << "{\n  \"" << (req.command == C::kList ? "bans" : "accounts") << "\": [";
    } else if (req.command == C::kList) {
      out << Pad("TARGET", 20) << Pad("JAIL", 10) << Pad("RULE", 18) << Pad("ACCOUNT", 22) << Pad("REMAINING", 11) << "REASON\n";
    } else {
      out << AccountTableHeader();
    }
    auto on_item = [&](const json& item) {
      if (!item.contains(key)) return;
      const json& b = item[key];
      if (o.json) {
        out << (n ? ",\n    " : "\n    ") << b.dump(-1, ' ', false, json::error_handler_t::replace);
      } else if (req.command == C::kList) {
        std::string rem = b["remaining_s"].is_null() ? "permanent" : FormatDuration(Seconds(b["remaining_s"].get<int64_t>()));
        out << Pad(Str(b, "target"), 20) << Pad(Str(b, "jail"), 10) << Pad(Str(b, "rule"), 18) << Pad(Str(b, "account"), 22)
            << Pad(rem, 11) << Printable(Str(b, "reason"), 120) << "\n";
      } else {
        auto joined = [&](const char* key) { return b.contains(key) ? Joined(b[key], ",") : std::string(); };
        out << AccountTableRow({Str(b, "account"), Str(b, "auth_success"), Str(b, "auth_failure"), Str(b, "relayed"),
                                Str(b, "recipient_domains"), Str(b, "ips"), Str(b, "last_ip"), joined("verdicts"),
                                joined("targeted_by")});
      }
      ++n;
    };
    // With --json an item is printed as the daemon wrote it, {"ban":ITEM} or
    // {"account":ITEM} (nlohmann::json's own text: parsing and dumping it again gave the same
    // bytes, and cost most of listing a million bans); anything else is parsed.
    const std::string head = std::string("{\"") + key + "\":{";
    auto raw = [&](std::string_view line) {
      if (!o.json || line.size() < head.size() + 2 || line.compare(0, head.size(), head) != 0 || line.back() != '}' ||
          line[line.size() - 2] != '}')
        return false;
      out << (n ? ",\n    " : "\n    ") << line.substr(head.size() - 1, line.size() - head.size());
      ++n;
      return true;
    };
    auto r = Exchange(o, req, err, rc, on_item, raw);
    if (o.json) out << (n ? "\n  ]" : "]") << ",\n  \"ok\": " << (r ? "true" : "false") << "\n}\n";
    else if (r && req.command == C::kList) out << n << " active bans\n";
    return rc;
  }
  auto r = Exchange(o, req, err, rc);
  if (!r) return rc;
  if (o.json) {
    out << r->dump(2) << "\n";
    return 0;
  }
  const json& j = *r;
  if (cmd == "status") {
    out << "relayban " << Str(j, "version") << ", " << Str(j, "firewall") << ", health " << Str(j, "health") << "\n";
    out << "lines " << Str(j, "lines") << ", matched " << Str(j, "matched") << ", skipped " << Str(j, "skipped")
        << ", active bans " << Str(j, "bans") << "\n";
    if (j.contains("evicted")) {
      const json& e = j["evicted"];
      uint64_t total = 0;
      for (const auto& [k, v] : e.items()) total += v.get<uint64_t>();
      if (total)
        out << "evicted (tables full): " << Str(e, "windows") << " rule keys, " << Str(e, "accounts") << " accounts, "
            << Str(e, "correlation") << " correlation entries, " << Str(e, "offences") << " offence histories\n";
    }
    if (j.contains("lost_before_reading")) {
      const json& l = j["lost_before_reading"];
      std::string parts;
      if (l.contains("journald_rate_limit"))
        for (const auto& [unit, n] : l["journald_rate_limit"].items())
          parts += (parts.empty() ? "" : ", ") + n.dump() + " lines of " + unit + " (journald's rate limit)";
      if (l.value("syslog_forward", uint64_t{0}))
        parts += (parts.empty() ? "" : ", ") + Str(l, "syslog_forward") + " lines journald could not hand to syslog";
      if (!parts.empty()) out << "LOST before relayban could read them: " << parts << "\n";
    }
    if (j.contains("backlog")) {
      const json& b = j["backlog"];
      if (b.value("kernel", 0) || b.value("state_database", 0))
        out << "backlog: " << Str(b, "kernel") << " changes for the kernel, " << Str(b, "state_database")
            << " for the state database\n";
    }
    // Only when it matters: a turn that kept control requests waiting.
    if (j.contains("loop") && j["loop"].value("turns_over_100ms", 0))
      out << "slow loop turns: " << Str(j["loop"], "turns_over_100ms") << " over 100 ms, the longest "
          << Str(j["loop"], "longest_turn_ms") << " ms (" << Str(j["loop"], "longest_turn_part") << ")\n";
    if (j.contains("decision_log") && !Str(j["decision_log"], "path").empty() && Str(j["decision_log"], "path") != "-") {
      const json& d = j["decision_log"];
      out << "decision log " << Str(d, "path") << ": " << Str(d, "lines") << " records"
          << (d.value("errors", 0) ? ", " + Str(d, "errors") + " errors" : std::string())
          << (d.value("dropped", 0) ? ", " + Str(d, "dropped") + " dropped" : std::string()) << "\n";
    }
    if (j.contains("metrics")) {
      const json& m = j["metrics"];
      std::string tf = Str(m, "textfile"), listen = Str(m, "listen");
      if (!tf.empty() || !listen.empty())
        out << "metrics:" << (tf.empty() ? "" : " textfile " + tf) << (listen.empty() ? "" : " http://" + listen + "/metrics")
            << (m.value("textfile_errors", 0) ? " (" + Str(m, "textfile_errors") + " failed writes)" : std::string()) << "\n";
    }
    if (j.contains("fleet")) {
      const json& f = j["fleet"];
      std::string peers;
      if (f.contains("peers"))
        for (const auto& [h, at] : f["peers"].items()) peers += (peers.empty() ? "" : ", ") + h;
      out << "fleet " << Str(f, "name") << " as " << Str(f, "host") << " via Redis " << Str(f, "redis") << ": "
          << (f.value("connected", false) ? (f.value("in_step", false) ? "connected" : "connected, catching up")
                                          : "NOT connected (" + Str(f, "last_error") + ")")
          << "; peers " << (peers.empty() ? std::string("none seen") : peers) << "\n";
      const json& r = f["refused"];
      uint64_t refused = 0;
      for (const auto& [k, v] : r.items()) refused += v.get<uint64_t>();
      out << "  sent " << Str(f, "sent") << ", received " << Str(f, "received") << " (applied " << Str(f, "applied")
          << ", refused " << refused << "), outbox " << Str(f, "outbox")
          << (f.value("outbox_dropped", 0) ? " (" + Str(f, "outbox_dropped") + " dropped when full)" : std::string())
          << "\n";
      if (refused)
        out << "  refused: " << Str(r, "forged") << " forged or malformed, " << Str(r, "too_wide") << " too wide, "
            << Str(r, "ignored") << " in the ignore list, " << Str(r, "rate") << " over the rate, " << Str(r, "lifted")
            << " already lifted\n";
    }
    out << "\n";
    for (const auto& jl : j["jails"]) {
      out << Pad(Str(jl, "name"), 12) << (jl["enabled"].get<bool>() ? "on " : "off") << "  bans " << Pad(Str(jl, "bans"), 6)
          << Str(jl, "why") << "\n";
      for (const auto& l : jl["logs"])
        out << "              " << Str(l, "path") << (l["open"].get<bool>() ? "" : " (not there yet)") << "\n";
    }
  } else if (cmd == "reload") {
    out << "configuration reloaded\n";
  }
  return 0;
}

}  // namespace relayban
