#include "control_commands.hpp"

#include <iostream>
#include <nlohmann/json.hpp>

#include "control_socket.hpp"
#include "relayban/config/config_loader.hpp"
#include "relayban/core/duration.hpp"
#include "relayban/core/text.hpp"

namespace relayban {
namespace {

using nlohmann::json;

constexpr int kExitUnavailable = 69;  // EX_UNAVAILABLE: the daemon is not running
constexpr int kExitRefused = 77;      // EX_NOPERM

std::string Pad(const std::string& s, size_t w) {
  std::string p = Printable(s, 200);
  if (p.size() >= w) p = p.substr(0, w - 2) + "~";
  p.append(w - p.size(), ' ');
  return p;
}

std::string Str(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  if (j[key].is_string()) return j[key].get<std::string>();
  return j[key].dump();
}

// Sends the request; prints errors; returns the answer or nullopt with `rc` set.
std::optional<json> Send(const ClientOptions& o, const json& req, std::ostream& out, std::ostream& err, int& rc) {
  std::string path = o.socket;
  if (path.empty()) {
    std::vector<Error> errors;
    auto c = LoadConfig(o.config, errors);
    if (!c) {
      for (const auto& e : errors) err << e.ToString() << "\n";
      rc = 78;
      return std::nullopt;
    }
    path = c->control_socket;
  }
  auto r = ControlRequest(path, req);
  if (!r) {
    err << "relayban: " << r.error().message << "\n";
    rc = r.error().message.find("not running") != std::string::npos ? kExitUnavailable : 1;
    return std::nullopt;
  }
  if (o.json) out << r->dump(2) << "\n";
  if (!r->value("ok", false)) {
    if (!o.json) {
      err << "relayban: " << r->value("error", std::string("failed")) << "\n";
      if (r->contains("errors"))
        for (const auto& e : (*r)["errors"]) err << "  " << e.get<std::string>() << "\n";
    }
    rc = r->value("error", std::string()).rfind("permission denied", 0) == 0 ? kExitRefused : 1;
    return std::nullopt;
  }
  rc = 0;
  return std::move(r.value());
}

}  // namespace

int RunBan(const ClientOptions& o, const BanArgs& b, std::ostream& out, std::ostream& err) {
  json req{{"cmd", "ban"}, {"target", b.target}, {"jail", b.jail}, {"reason", b.reason}, {"force", b.force}};
  if (!b.duration.empty()) req["for"] = b.duration;
  int rc = 0;
  auto r = Send(o, req, out, err, rc);
  if (r && !o.json) {
    int64_t d = (*r)["duration_s"].get<int64_t>();
    out << "banned " << (*r)["target"].get<std::string>() << " for "
        << (d ? FormatDuration(Seconds(d)) : std::string("ever")) << "\n";
  }
  return rc;
}

int RunUnban(const ClientOptions& o, const std::string& target, bool all, std::ostream& out, std::ostream& err) {
  json req{{"cmd", "unban"}};
  if (all) req["all"] = true;
  else req["target"] = target;
  int rc = 0;
  auto r = Send(o, req, out, err, rc);
  if (r && !o.json) {
    auto removed = (*r)["removed"];
    if (removed.empty()) out << (all ? "no bans were active\n" : target + " was not banned (removed from the firewall anyway)\n");
    for (const auto& t : removed) out << "unbanned " << t.get<std::string>() << "\n";
  }
  return rc;
}

int RunSimple(const ClientOptions& o, const std::string& cmd, const std::string& jail, std::ostream& out, std::ostream& err) {
  json req{{"cmd", cmd}};
  if (!jail.empty()) req["jail"] = jail;
  int rc = 0;
  auto r = Send(o, req, out, err, rc);
  if (!r || o.json) return rc;
  const json& j = *r;
  if (cmd == "list") {
    out << Pad("TARGET", 20) << Pad("JAIL", 10) << Pad("RULE", 18) << Pad("ACCOUNT", 22) << Pad("REMAINING", 11) << "REASON\n";
    for (const auto& b : j["bans"]) {
      std::string rem = b["remaining_s"].is_null() ? "permanent" : FormatDuration(Seconds(b["remaining_s"].get<int64_t>()));
      out << Pad(Str(b, "target"), 20) << Pad(Str(b, "jail"), 10) << Pad(Str(b, "rule"), 18) << Pad(Str(b, "account"), 22)
          << Pad(rem, 11) << Printable(Str(b, "reason"), 120) << "\n";
    }
    out << j["bans"].size() << " active bans\n";
  } else if (cmd == "accounts") {
    out << Pad("ACCOUNT", 28) << Pad("AUTH-OK", 8) << Pad("FAILED", 7) << Pad("RELAYED", 8) << Pad("RCPT-DOMAINS", 13)
        << Pad("IPS", 5) << Pad("LAST-IP", 18) << "VERDICTS\n";
    for (const auto& a : j["accounts"]) {
      std::string v;
      for (const auto& x : a["verdicts"]) v += (v.empty() ? "" : ",") + x.get<std::string>();
      out << Pad(Str(a, "account"), 28) << Pad(Str(a, "auth_success"), 8) << Pad(Str(a, "auth_failure"), 7)
          << Pad(Str(a, "relayed"), 8) << Pad(Str(a, "recipient_domains"), 13) << Pad(Str(a, "ips"), 5)
          << Pad(Str(a, "last_ip"), 18) << (v.empty() ? "-" : v) << "\n";
    }
  } else if (cmd == "status") {
    out << "relayban " << Str(j, "version") << ", " << Str(j, "firewall") << ", health " << Str(j, "health") << "\n";
    out << "lines " << Str(j, "lines") << ", matched " << Str(j, "matched") << ", skipped " << Str(j, "skipped")
        << ", active bans " << Str(j, "bans") << "\n\n";
    for (const auto& jl : j["jails"]) {
      out << Pad(Str(jl, "name"), 12) << (jl["enabled"].get<bool>() ? "on " : "off") << "  bans " << Pad(Str(jl, "bans"), 6)
          << Str(jl, "why") << "\n";
      for (const auto& l : jl["logs"])
        out << "              " << Str(l, "path") << (l["open"].get<bool>() ? "" : " (not there yet)") << "\n";
    }
  } else if (cmd == "reload") {
    out << "configuration reloaded\n";
  }
  return rc;
}

}  // namespace relayban
