#include "tables.hpp"

#include "relayban/core/text.hpp"

namespace relayban {

std::string Cell(const std::string& s, size_t width) {
  std::string p = Printable(s, 200);
  if (p.size() >= width) p = p.substr(0, width - 2) + "~";
  p.append(width - p.size(), ' ');
  return p;
}

std::string AccountTableHeader() {
  return Cell("ACCOUNT", 28) + Cell("AUTH-OK", 8) + Cell("FAILED", 7) + Cell("RELAYED", 8) + Cell("RCPT-DOMAINS", 13) +
         Cell("IPS", 5) + Cell("LAST-IP", 18) + Cell("VERDICTS", 24) + "TARGETED-BY\n";
}

std::string AccountTableRow(const AccountRow& r) {
  return Cell(r.account, 28) + Cell(r.auth_success, 8) + Cell(r.auth_failure, 7) + Cell(r.relayed, 8) +
         Cell(r.recipient_domains, 13) + Cell(r.ips, 5) + Cell(r.last_ip, 18) + Cell(r.verdicts.empty() ? "-" : r.verdicts, 24) +
         (r.targeted_by.empty() ? "-" : r.targeted_by) + "\n";
}

AccountRow RowOf(const AccountView& a) {
  std::string verdicts, targeted;
  for (const auto& v : a.verdicts) verdicts += (verdicts.empty() ? "" : ",") + v;
  for (const auto& v : a.targeted_by) targeted += (targeted.empty() ? "" : ",") + v;
  return {a.account,
          std::to_string(a.auth_success),
          std::to_string(a.auth_failure),
          std::to_string(a.relayed),
          std::to_string(a.recipient_domains),
          std::to_string(a.ips),
          a.last_ip ? a.last_ip->ToString() : "-",
          verdicts,
          targeted};
}

}  // namespace relayban
