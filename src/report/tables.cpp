#include "tables.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <utility>

#include "relayban/core/text.hpp"

namespace relayban {

void AppendCell(std::string& out, std::string_view s, size_t width) {
  // Printable(s, 200), cut to width - 2 and a "~" when it does not leave a blank, padded.
  size_t n = std::min(s.size(), size_t{200});
  size_t len = n + (s.size() > 200 ? 3 : 0);  // with Printable's "..."
  size_t keep = len >= width ? width - 2 : n;  // bytes of `s` kept
  if (keep > n) {  // the cut falls inside the "...": only for cells wider than 202
    std::string p = Printable(s, 200).substr(0, width - 2) + "~";
    out += p;
    out.append(width - p.size(), ' ');
    return;
  }
  size_t start = out.size();
  out.resize(start + width);
  char* p = out.data() + start;
  for (size_t i = 0; i < keep; ++i) {  // Printable's mapping: one pass the compiler vectorises
    auto u = static_cast<unsigned char>(s[i]);
    p[i] = (u < 0x20 || u >= 0x7f) ? '?' : s[i];
  }
  size_t at = keep;
  if (len >= width) {
    p[at++] = '~';
  } else if (keep < len) {
    std::memcpy(p + at, "...", 3);
    at += 3;
  }
  std::memset(p + at, ' ', width - at);
}

std::string Cell(const std::string& s, size_t width) {
  std::string p;
  AppendCell(p, s, width);
  return p;
}

std::string AccountTableHeader() {
  return Cell("ACCOUNT", 28) + Cell("AUTH-OK", 8) + Cell("FAILED", 7) + Cell("RELAYED", 8) + Cell("RCPT-DOMAINS", 13) +
         Cell("IPS", 5) + Cell("LAST-IP", 18) + Cell("VERDICTS", 24) + "TARGETED-BY\n";
}

std::string AccountTableRow(const AccountRow& r) {
  std::string out;
  out.reserve(128);
  for (auto [text, width] : {std::pair<const std::string&, size_t>{r.account, 28}, {r.auth_success, 8},
                             {r.auth_failure, 7}, {r.relayed, 8}, {r.recipient_domains, 13}, {r.ips, 5},
                             {r.last_ip, 18}})
    AppendCell(out, text, width);
  AppendCell(out, r.verdicts.empty() ? "-" : std::string_view(r.verdicts), 24);
  out += r.targeted_by.empty() ? "-" : r.targeted_by;
  out += '\n';
  return out;
}

namespace {
void AppendNumberCell(std::string& out, uint64_t v, size_t width) {
  char buf[24];
  auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  AppendCell(out, std::string_view(buf, static_cast<size_t>(end - buf)), width);
}

void Join(std::string& out, const std::vector<std::string>& items) {
  out.clear();
  for (const auto& v : items) {
    if (!out.empty()) out += ',';
    out += v;
  }
}
}  // namespace

void AppendAccountTableRow(std::string& out, const AccountView& a, std::string& scratch) {
  AppendCell(out, a.account, 28);
  AppendNumberCell(out, a.auth_success, 8);
  AppendNumberCell(out, a.auth_failure, 7);
  AppendNumberCell(out, a.relayed, 8);
  AppendNumberCell(out, a.recipient_domains, 13);
  AppendNumberCell(out, a.ips, 5);
  if (a.last_ip) {
    char buf[IpAddress::kMaxText];
    AppendCell(out, std::string_view(buf, a.last_ip->WriteText(buf)), 18);
  } else {
    AppendCell(out, "-", 18);
  }
  Join(scratch, a.verdicts);
  AppendCell(out, scratch.empty() ? "-" : std::string_view(scratch), 24);
  Join(scratch, a.targeted_by);
  out += scratch.empty() ? "-" : std::string_view(scratch);
  out += '\n';
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
