#include "relayban/control/protocol.hpp"

#include <nlohmann/json.hpp>

namespace relayban {
namespace {

using nlohmann::json;

// A string member, or an error naming it when present with another type.
Result<std::string> Text(const json& j, const char* key, const std::string& fallback = "") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_string()) return Fail(std::string("\"") + key + "\" must be a string");
  return it->get<std::string>();
}
Result<bool> Flag(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean()) return Fail(std::string("\"") + key + "\" must be true or false");
  return it->get<bool>();
}

}  // namespace

Result<ControlRequest> ParseControlRequest(std::string_view line) {
  if (line.size() > 65536) return Fail("the request is too long");
  json j = json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Fail("the request is not a JSON object");
  auto cmd = Text(j, "cmd");
  if (!cmd) return Fail(cmd.error());
  ControlRequest r;
  using C = ControlRequest::Command;
  if (*cmd == "status") r.command = C::kStatus;
  else if (*cmd == "list") r.command = C::kList;
  else if (*cmd == "accounts") r.command = C::kAccounts;
  else if (*cmd == "reload") r.command = C::kReload;
  else if (*cmd == "ban") r.command = C::kBan;
  else if (*cmd == "unban") r.command = C::kUnban;
  else if (*cmd == "forgive") r.command = C::kForgive;
  else if (*cmd == "metrics") r.command = C::kMetrics;
  else if (*cmd == "explain") r.command = C::kExplain;
  else return Fail("unknown command '" + cmd->substr(0, 64) + "'");
  auto jail = Text(j, "jail", r.command == C::kBan ? "manual" : "");
  auto target = Text(j, "target");
  auto reason = Text(j, "reason", "manual ban");
  auto force = Flag(j, "force");
  auto all = Flag(j, "all");
  for (const Result<std::string>* t : {&jail, &target, &reason})
    if (!*t) return Fail(t->error());
  for (const Result<bool>* f : {&force, &all})
    if (!*f) return Fail(f->error());
  r.jail = *jail;
  r.target = *target;
  r.reason = *reason;
  r.force = *force;
  r.all = *all;
  if (j.contains("for") && !j["for"].is_null()) {
    auto d = Text(j, "for");
    if (!d) return Fail(d.error());
    r.duration = *d;
  }
  if (r.command == C::kBan && r.target.empty()) return Fail("ban needs a target");
  if (r.command == C::kUnban && r.target.empty() && !r.all) return Fail("unban needs a target or all");
  if (r.command == C::kForgive && r.target.empty()) return Fail("forgive needs an account");
  if (r.command == C::kExplain && r.target.empty()) return Fail("explain needs an address or an account");
  if (r.target.size() > 1024) return Fail("the target is too long");
  if (r.jail.size() > 64) return Fail("the jail name is too long");
  if (r.reason.size() > 1024) return Fail("the reason is too long");
  return r;
}

std::string FormatControlRequest(const ControlRequest& r) {
  using C = ControlRequest::Command;
  json j;
  switch (r.command) {
    case C::kStatus: j["cmd"] = "status"; break;
    case C::kList: j["cmd"] = "list"; break;
    case C::kAccounts: j["cmd"] = "accounts"; break;
    case C::kReload: j["cmd"] = "reload"; break;
    case C::kBan: j["cmd"] = "ban"; break;
    case C::kUnban: j["cmd"] = "unban"; break;
    case C::kForgive: j["cmd"] = "forgive"; break;
    case C::kMetrics: j["cmd"] = "metrics"; break;
    case C::kExplain: j["cmd"] = "explain"; break;
  }
  if (!r.jail.empty()) j["jail"] = r.jail;
  if (!r.target.empty()) j["target"] = r.target;
  if (r.duration) j["for"] = *r.duration;
  if (r.command == C::kBan) {
    j["reason"] = r.reason;
    j["force"] = r.force;
  }
  if (r.all) j["all"] = true;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string ErrorAnswer(std::string_view message) {
  return json{{"ok", false}, {"error", std::string(message)}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace relayban
