// The per-account history: distinct outside domains per day, the usual day, new networks,
// and the bytes it is kept in across restarts.
#include "relayban/score/account_history.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace relayban;

namespace {
Time Day(int d, int hour = 12) { return Time(Seconds(int64_t{1795000000} / 86400 * 86400 + d * 86400 + hour * 3600)); }
}  // namespace

TEST_CASE("the usual day is the upper quartile of the account's active days, today apart") {
  AccountHistory h(100);
  // 10, 20, 30, 40, 50 distinct domains on five days; the same domain twice counts once.
  for (int d = 0; d < 5; ++d)
    for (int i = 0; i < 10 * (d + 1); ++i) {
      h.Relayed("sales@example.org", static_cast<uint64_t>(1000 + i), Day(d));
      h.Relayed("sales@example.org", static_cast<uint64_t>(1000 + i), Day(d, 13));
    }
  h.Relayed("sales@example.org", 7, Day(6));
  auto u = h.UsualDay("sales@example.org", Day(6));
  CHECK(u.days == 6);
  CHECK(u.usual == 40);  // of 10, 20, 30, 40, 50
  CHECK(u.today == 1);
  CHECK(h.UsualDay("nobody@example.org", Day(6)).days == 0);
  // Four weeks later the old days are gone.
  CHECK(h.UsualDay("sales@example.org", Day(40)).usual == 0);
}

TEST_CASE("a login from a network the account never used is new only once it has a history") {
  AccountHistory h(100);
  const Seconds warmup = std::chrono::hours(24 * 7);
  CHECK_FALSE(h.LoggedIn("roamer@example.org", 1, Day(0), warmup));   // first sight: nothing to compare
  CHECK_FALSE(h.LoggedIn("roamer@example.org", 2, Day(3), warmup));   // still warming up
  CHECK_FALSE(h.LoggedIn("roamer@example.org", 1, Day(8), warmup));   // a network it used
  CHECK(h.LoggedIn("roamer@example.org", 3, Day(8), warmup));         // new, with a week behind it
  CHECK_FALSE(h.LoggedIn("roamer@example.org", 3, Day(8, 14), warmup));  // and then known
}

TEST_CASE("the history survives serialization, and replaying the same day counts nothing twice") {
  AccountHistory h(100);
  for (int i = 0; i < 12; ++i) h.Relayed("a@example.org", static_cast<uint64_t>(i), Day(0));
  for (int i = 0; i < 5; ++i) h.Relayed("a@example.org", static_cast<uint64_t>(i), Day(1));
  (void)h.LoggedIn("a@example.org", 42, Day(1), Seconds(0));
  auto changed = h.TakeChanged(10);
  REQUIRE(changed.size() == 1);
  CHECK(h.TakeChanged(10).empty());  // nothing changed since
  AccountHistory restored(100);
  REQUIRE(restored.Restore(changed[0].first, changed[0].second));
  for (int i = 0; i < 5; ++i) restored.Relayed("a@example.org", static_cast<uint64_t>(i), Day(1));  // the journal again
  auto u = restored.UsualDay("a@example.org", Day(1));
  CHECK(u.today == 5);
  CHECK(u.usual == 12);
  CHECK_FALSE(restored.LoggedIn("a@example.org", 42, Day(9), Seconds(0)));  // known network
  // Damaged bytes are refused whole.
  CHECK_FALSE(restored.Restore("b@example.org", changed[0].second.substr(0, changed[0].second.size() - 1)));
  CHECK_FALSE(restored.Restore("b@example.org", "\x02garbage"));
  CHECK(restored.size() == 1);
}

TEST_CASE("a full history refuses new accounts, and makes room from those idle for four weeks") {
  AccountHistory h(2);
  h.Relayed("a@example.org", 1, Day(0));
  h.Relayed("b@example.org", 1, Day(0));
  h.Relayed("c@example.org", 1, Day(1));
  CHECK(h.refused() == 1);
  CHECK(h.UsualDay("c@example.org", Day(1)).days == 0);
  h.Relayed("b@example.org", 1, Day(30));
  h.Relayed("c@example.org", 1, Day(31));  // a is idle since day 0: it goes
  CHECK(h.size() == 2);
  CHECK(h.UsualDay("c@example.org", Day(31)).today == 1);
}

TEST_CASE("merging history read from old logs keeps each day's larger count, the earlier start and every network") {
  AccountHistory old_logs(100), daemon(100);
  for (int d = 0; d < 8; ++d)  // a week of history in mail.log.1
    for (int i = 0; i < 30; ++i) old_logs.Relayed("sales@example.org", static_cast<uint64_t>(d * 100 + i), Day(d));
  (void)old_logs.LoggedIn("sales@example.org", 7, Day(3), Seconds(0));
  // The daemon, installed on day 7, saw part of that day and a new network.
  for (int i = 0; i < 5; ++i) daemon.Relayed("sales@example.org", static_cast<uint64_t>(700 + i), Day(7));
  (void)daemon.LoggedIn("sales@example.org", 9, Day(7), Seconds(0));
  auto kept = daemon.TakeChanged(10);
  REQUIRE(kept.size() == 1);
  REQUIRE(old_logs.Merge(kept[0].first, kept[0].second));
  auto u = old_logs.UsualDay("sales@example.org", Day(8));
  CHECK(u.days == 8);       // history starts at the old logs' first day: no warm-up left
  CHECK(u.usual == 30);
  CHECK_FALSE(old_logs.LoggedIn("sales@example.org", 7, Day(9), Seconds(0)));  // both networks known
  CHECK_FALSE(old_logs.LoggedIn("sales@example.org", 9, Day(9), Seconds(0)));
  CHECK(old_logs.TakeChanged(10).size() == 1);  // to be written back
  CHECK_FALSE(old_logs.Merge("sales@example.org", "not history"));
}

TEST_CASE("the history keeps the account's volume and login hours, counting a replayed event once") {
  AccountHistory h(100);
  auto at = [](int d, int hour, int sec) { return Day(d, hour) + Seconds(sec); };
  // Five days of 10, 20, 30, 40, 50 recipients, logins at 8 and 9 UTC (and once at 3).
  for (int d = 0; d < 5; ++d) {
    for (int i = 0; i < 10 * (d + 1); ++i) h.RelayCounted("sales@example.org", at(d, 10, i));
    (void)h.LoggedIn("sales@example.org", 1, at(d, 8, 0), Seconds(0));
    (void)h.LoggedIn("sales@example.org", 1, at(d, 9, 0), Seconds(0));
  }
  (void)h.LoggedIn("sales@example.org", 1, at(4, 3, 0), Seconds(0));
  h.RelayCounted("sales@example.org", at(6, 10, 0));
  auto u = h.UsualDay("sales@example.org", Day(6));
  CHECK(u.usual_relays == 40);
  CHECK(u.relays_today == 1);
  CHECK(u.login_hours == std::vector<int>{8, 9});  // 3 is once of 11: not usual
  // Kept across a restart; the journal replayed over it counts nothing twice.
  auto changed = h.TakeChanged(10);
  REQUIRE(changed.size() == 1);
  AccountHistory restored(100);
  REQUIRE(restored.Restore(changed[0].first, changed[0].second));
  restored.RelayCounted("sales@example.org", at(6, 10, 0));      // replayed
  (void)restored.LoggedIn("sales@example.org", 1, at(4, 9, 0), Seconds(0));  // replayed
  u = restored.UsualDay("sales@example.org", Day(6));
  CHECK(u.relays_today == 1);
  CHECK(u.usual_relays == 40);
  restored.RelayCounted("sales@example.org", at(6, 10, 1));      // new
  CHECK(restored.UsualDay("sales@example.org", Day(6)).relays_today == 2);
}

TEST_CASE("a history written before volume and hours were kept (format 1) still loads") {
  // Format 1: version, first and last day, 28 (day, domains) pairs, today's domains, networks.
  std::string v1;
  v1 += '\x01';
  v1 += '\x05';  // first day 5
  v1 += '\x06';  // last day 6
  for (int s = 0; s < AccountHistory::kDays; ++s) {
    v1 += static_cast<char>(s == 5 ? 5 : s == 6 ? 6 : 0);
    v1 += static_cast<char>(s == 5 ? 9 : 0);
  }
  v1 += '\x00';  // no domains today
  v1 += '\x00';  // no networks
  AccountHistory h(10);
  REQUIRE(h.Restore("old@example.org", v1));
  h.RelayCounted("old@example.org", Time(Seconds(6 * 86400 + 100)));
  CHECK(h.UsualDay("old@example.org", Time(Seconds(6 * 86400 + 200))).relays_today == 1);
}

TEST_CASE("recipients logged in the same second all count, and a replay of them after a restore counts none") {
  AccountHistory h(100);
  for (int i = 0; i < 25; ++i) h.RelayCounted("test@example.org", Day(3, 10));
  CHECK(h.UsualDay("test@example.org", Day(3)).relays_today == 25);
  auto changed = h.TakeChanged(10);
  REQUIRE(changed.size() == 1);
  AccountHistory restored(100);
  REQUIRE(restored.Restore(changed[0].first, changed[0].second));
  for (int i = 0; i < 25; ++i) restored.RelayCounted("test@example.org", Day(3, 10));  // the journal again
  CHECK(restored.UsualDay("test@example.org", Day(3)).relays_today == 25);
  for (int i = 0; i < 3; ++i) restored.RelayCounted("test@example.org", Day(3, 10));  // new, same second
  CHECK(restored.UsualDay("test@example.org", Day(3)).relays_today == 28);
}

TEST_CASE("the history keeps each day's busiest hour, and its upper quartile is the usual one") {
  AccountHistory h(100);
  // Day d: 2 domains at 9h and 4*(d+1) at 10h (busiest), 3 of them the 9h ones again.
  for (int d = 0; d < 4; ++d) {
    for (int i = 0; i < 2; ++i) h.Relayed("s@example.org", static_cast<uint64_t>(i), Day(d, 9));
    for (int i = 0; i < 4 * (d + 1); ++i) h.Relayed("s@example.org", static_cast<uint64_t>(i), Day(d, 10));
  }
  auto u = h.UsualDay("s@example.org", Day(5));
  CHECK(u.usual_hour == 16);  // of 4, 8, 12, 16: the upper quartile of four is the largest
  CHECK(u.usual == 16);       // the day's distinct domains: the 10h ones include the 9h ones
  // Survives serialization; a replayed hour counts nothing twice.
  auto changed = h.TakeChanged(10);
  AccountHistory restored(100);
  REQUIRE(restored.Restore(changed[0].first, changed[0].second));
  for (int i = 0; i < 16; ++i) restored.Relayed("s@example.org", static_cast<uint64_t>(i), Day(3, 10));
  CHECK(restored.UsualDay("s@example.org", Day(5)).usual_hour == 16);
  for (int i = 0; i < 20; ++i) restored.Relayed("s@example.org", static_cast<uint64_t>(100 + i), Day(3, 10));
  CHECK(restored.UsualDay("s@example.org", Day(5)).usual_hour == 36);  // day 3's busiest hour now has 36
}

TEST_CASE("once taken, an account is handed out again only when it changes, or every one when all are marked") {
  AccountHistory h(100);
  const Seconds warmup = std::chrono::hours(24 * 7);
  for (const char* a : {"a@example.org", "b@example.org", "c@example.org"}) (void)h.LoggedIn(a, 1, Day(0), warmup);
  CHECK(h.TakeChanged(10).size() == 3);
  CHECK(h.TakeChanged(10).empty());
  (void)h.LoggedIn("b@example.org", 2, Day(0), warmup);
  auto one = h.TakeChanged(10);
  REQUIRE(one.size() == 1);
  CHECK(one[0].first == "b@example.org");
  // A new database: every account once, each under its own name, whatever was taken before.
  (void)h.LoggedIn("a@example.org", 3, Day(0), warmup);  // changed already: not twice
  h.MarkAllChanged();
  auto all = h.TakeChanged(10);
  std::vector<std::string> names;
  for (const auto& [name, bytes] : all) names.push_back(name);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"a@example.org", "b@example.org", "c@example.org"});
  CHECK(h.TakeChanged(10).empty());
}
