// The digest: what the decision log says happened over a period (`relayban digest`) - new
// bans by rule, accounts with verdicts and their evidence, the networks most banned, the
// busiest jails, admins' actions. Pure: decision-log lines in, a summary out, as text for a
// person (or a daily mail) or as JSON. Lines that are not decision records are counted, not
// trusted: every string from them is made printable before it is shown.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "relayban/core/duration.hpp"

namespace relayban {

struct Digest {
  Time from{}, to{};
  uint64_t bans = 0, manual_bans = 0, unbans = 0, bad_lines = 0;
  std::map<std::string, uint64_t> bans_by_rule;  // "jail/rule" -> bans
  std::map<std::string, uint64_t> bans_by_jail;
  std::vector<std::pair<std::string, uint64_t>> top_networks;  // /24 and /48, most banned first
  struct Verdict {
    std::string time, account, jail, rule, reason;
    uint64_t addresses = 0;
    std::vector<std::string> evidence;
  };
  std::vector<Verdict> verdicts;
  std::vector<std::string> admin_actions;  // "2026-12-01T10:00:00Z unban 192.0.2.7 (uid 0 pid 12)"
};

class DigestBuilder {
 public:
  DigestBuilder(Time from, Time to);
  // One line of the decision log (without its newline). Records outside [from, to] are left out.
  void Add(std::string_view line);
  Digest Finish(size_t top = 10) const;

 private:
  Digest d_;
  std::map<std::string, uint64_t> networks_;
};

// "2026-12-01T09:00:00Z" (what FormatIso8601 writes); nullopt for anything else.
std::optional<Time> ParseIso8601(std::string_view text);
std::string DigestText(const Digest& d, const std::string& host);
nlohmann::json DigestJson(const Digest& d);

}  // namespace relayban
