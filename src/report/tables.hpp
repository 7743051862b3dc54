// Tables for people, shared by `relayban check` and the control clients (never in cli/, so
// the daemon's parts could print them too): fixed-width cells and the account table.
#pragma once

#include <string>
#include <string_view>

#include "relayban/score/account_book.hpp"

namespace relayban {

// A cell `width` wide: at least one blank after the text, longer text cut with "~",
// attacker-controlled bytes made printable.
std::string Cell(const std::string& text, size_t width);
// The same, appended to `out`.
void AppendCell(std::string& out, std::string_view text, size_t width);

// The account table's header and one row (values already as text).
struct AccountRow {
  std::string account, auth_success, auth_failure, relayed, recipient_domains, ips, last_ip, verdicts, targeted_by;
};
std::string AccountTableHeader();
std::string AccountTableRow(const AccountRow& row);
AccountRow RowOf(const AccountView& a);
// AccountTableRow(RowOf(a)) appended to `out` without building the row's texts (a replayed
// botnet leaves 200,000 invented accounts to list); `scratch` is reused between rows.
void AppendAccountTableRow(std::string& out, const AccountView& a, std::string& scratch);

}  // namespace relayban
