#include "json_report.hpp"

namespace relayban {

nlohmann::json OrderJson(const Order& o) {
  nlohmann::json j;
  j["at"] = FormatIso8601(o.at);
  j["action"] = o.action == Order::Action::kBan ? "ban" : "unban";
  j["jail"] = o.jail.str();
  j["rule"] = o.rule.str();
  j["target"] = o.target.ToString();
  j["account"] = o.account.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.account.str());
  j["duration_s"] = o.duration.count();
  j["reason"] = o.reason.str();
  j["evidence"] = nlohmann::json::array();
  for (const Evidence& e : o.evidence) j["evidence"].push_back(e.line);
  return j;
}

nlohmann::json AccountJson(const AccountView& a) {
  nlohmann::json j;
  j["account"] = a.account;
  j["auth_success"] = a.auth_success;
  j["auth_failure"] = a.auth_failure;
  j["relayed"] = a.relayed;
  j["recipient_domains"] = a.recipient_domains;
  j["ips"] = a.ips;
  j["last_ip"] = a.last_ip ? nlohmann::json(a.last_ip->ToString()) : nlohmann::json(nullptr);
  j["last_seen"] = FormatIso8601(a.last_seen);
  j["verdicts"] = a.verdicts;        // what the account did: likely stolen
  j["targeted_by"] = a.targeted_by;  // what was done to it: clients guessing its password were banned
  return j;
}

nlohmann::json EventJson(const Engine& engine, const Event& e) {
  auto opt = [](const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); };
  nlohmann::json j;
  j["at"] = FormatIso8601(e.time);
  j["jail"] = engine.jail_names()[static_cast<size_t>(e.jail)];
  j["filter"] = engine.filter_names()[static_cast<size_t>(e.filter)];
  j["pattern"] = e.pattern;
  j["kind"] = engine.kind_names()[static_cast<size_t>(e.kind)];
  j["ip"] = e.ip ? nlohmann::json(e.ip->ToString()) : nlohmann::json(nullptr);
  j["account"] = opt(e.account);
  j["sender"] = opt(e.sender);
  j["recipient"] = opt(e.recipient);
  j["id"] = opt(e.id);
  j["count"] = e.count;
  return j;
}

}  // namespace relayban
