#include "report/digest.hpp"

#include <algorithm>
#include <ctime>

#include "relayban/core/ip_address.hpp"
#include "relayban/core/text.hpp"

namespace relayban {
namespace {

using nlohmann::json;

std::string Field(const json& j, const char* key, size_t max = 200) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return Printable(it->get<std::string>(), max);
}

uint64_t Number(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) return 0;
  return it->get<uint64_t>();
}

}  // namespace

std::optional<Time> ParseIso8601(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SSZ
  if (s.size() != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z')
    return std::nullopt;
  auto num = [&](size_t at, size_t n, int& out) {
    out = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, se;
  if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) || !num(17, 2, se))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  time_t t = timegm(&tm);
  return Time(std::chrono::duration_cast<Micros>(Seconds(t)));
}

DigestBuilder::DigestBuilder(Time from, Time to) {
  d_.from = from;
  d_.to = to;
}

void DigestBuilder::Add(std::string_view line) {
  if (line.empty()) return;
  json j = json::parse(line.begin(), line.end(), nullptr, false);
  auto time = j.is_object() && j.contains("time") && j["time"].is_string() ? ParseIso8601(j["time"].get<std::string>())
                                                                           : std::nullopt;
  if (!time || !j.contains("action") || !j["action"].is_string()) {
    ++d_.bad_lines;
    return;
  }
  if (*time < d_.from || *time > d_.to) return;
  std::string action = j["action"].get<std::string>();
  std::string when = FormatIso8601(*time);
  if (action == "ban") {
    ++d_.bans;
    std::string jail = Field(j, "jail", 64), rule = Field(j, "rule", 64);
    ++d_.bans_by_rule[jail + "/" + rule];
    ++d_.bans_by_jail[jail];
    if (Field(j, "origin") == "manual") {
      ++d_.manual_bans;
      d_.admin_actions.push_back(when + " ban " + Field(j, "target", 50) + " (" + Field(j, "by", 60) + "): " +
                                 Field(j, "reason", 120));
    }
    if (auto p = Prefix::Parse(Field(j, "target", 50), false)) {
      IpAddress a = p->address();
      int len = a.is_v4() ? 24 : 48;
      if (p->length() < len) len = p->length();
      ++networks_[Prefix::Parse(a.Masked(len).ToString() + "/" + std::to_string(len), false)->ToString()];
    }
  } else if (action == "unban" || action == "unban_all") {
    ++d_.unbans;
    d_.admin_actions.push_back(when + " " + (action == "unban" ? "unban " + Field(j, "target", 50)
                                                              : "unban --all (" + std::to_string(Number(j, "count")) + " bans)") +
                               " (" + Field(j, "by", 60) + ")");
  } else if (action == "forgive") {
    d_.admin_actions.push_back(when + " forgive " + Field(j, "account", 100) + " (" + Field(j, "by", 60) + ")");
  } else if (action == "account_verdict") {
    Digest::Verdict v{when, Field(j, "account", 100), Field(j, "jail", 64), Field(j, "rule", 64), Field(j, "reason", 200),
                      Number(j, "addresses"), {}};
    if (j.contains("evidence") && j["evidence"].is_array())
      for (const auto& e : j["evidence"])
        if (e.is_object()) v.evidence.push_back(Field(e, "line", 300));
    d_.verdicts.push_back(std::move(v));
  } else {
    ++d_.bad_lines;
  }
}

Digest DigestBuilder::Finish(size_t top) const {
  Digest d = d_;
  std::vector<std::pair<std::string, uint64_t>> nets(networks_.begin(), networks_.end());
  std::stable_sort(nets.begin(), nets.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (nets.size() > top) nets.resize(top);
  d.top_networks = std::move(nets);
  return d;
}

std::string DigestText(const Digest& d, const std::string& host) {
  std::string s = "relayban digest for " + host + ", " + FormatIso8601(d.from) + " to " + FormatIso8601(d.to) + "\n\n";
  s += std::to_string(d.bans) + " bans (" + std::to_string(d.manual_bans) + " by hand), " + std::to_string(d.unbans) +
       " unbans, " + std::to_string(d.verdicts.size()) + " account verdicts\n";
  if (!d.verdicts.empty()) {
    s += "\nAccounts that are very likely stolen (change their passwords, then `relayban forgive ACCOUNT`):\n";
    for (const auto& v : d.verdicts) {
      s += "  " + v.time + "  " + v.account + "  jail " + v.jail + ", rule " + v.rule + ", " + std::to_string(v.addresses) +
           (v.addresses == 1 ? " address" : " addresses") + " banned at the verdict\n    " + v.reason + "\n";
      size_t from = v.evidence.size() > 5 ? v.evidence.size() - 5 : 0;
      for (size_t i = from; i < v.evidence.size(); ++i) s += "    | " + v.evidence[i] + "\n";
    }
  }
  auto table = [&](const char* title, std::vector<std::pair<std::string, uint64_t>> rows) {
    if (rows.empty()) return;
    std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    s += std::string("\n") + title + ":\n";
    for (const auto& [k, n] : rows) {
      std::string count = std::to_string(n);
      s += "  " + std::string(count.size() < 8 ? 8 - count.size() : 0, ' ') + count + "  " + k + "\n";
    }
  };
  table("New bans by rule (jail/rule)", {d.bans_by_rule.begin(), d.bans_by_rule.end()});
  table("Busiest jails (bans)", {d.bans_by_jail.begin(), d.bans_by_jail.end()});
  table("Most banned networks", d.top_networks);
  if (!d.admin_actions.empty()) {
    s += "\nBy hand:\n";
    for (const auto& a : d.admin_actions) s += "  " + a + "\n";
  }
  if (d.bad_lines) s += "\n" + std::to_string(d.bad_lines) + " lines of the decision log were not decision records\n";
  return s;
}

json DigestJson(const Digest& d) {
  json j;
  j["from"] = FormatIso8601(d.from);
  j["to"] = FormatIso8601(d.to);
  j["bans"] = d.bans;
  j["manual_bans"] = d.manual_bans;
  j["unbans"] = d.unbans;
  j["bans_by_rule"] = d.bans_by_rule;
  j["bans_by_jail"] = d.bans_by_jail;
  j["top_networks"] = json::array();
  for (const auto& [net, n] : d.top_networks) j["top_networks"].push_back({{"network", net}, {"bans", n}});
  j["account_verdicts"] = json::array();
  for (const auto& v : d.verdicts)
    j["account_verdicts"].push_back({{"time", v.time}, {"account", v.account}, {"jail", v.jail}, {"rule", v.rule},
                                     {"reason", v.reason}, {"addresses", v.addresses}, {"evidence", v.evidence}});
  j["by_hand"] = d.admin_actions;
  j["bad_lines"] = d.bad_lines;
  return j;
}

}  // namespace relayban
