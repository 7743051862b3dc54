// The SQLite state store on a real file.
#include "relayban/state/state_store.hpp"

#include <catch2/catch.hpp>
#include <unistd.h>

#include <filesystem>

using namespace relayban;

namespace {
Time T(int64_t s) { return Time(Micros((1795000000 + s) * 1000000)); }
struct TempDb {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("relayban-db-" + std::to_string(getpid()));
  TempDb() { std::filesystem::create_directories(dir); }
  ~TempDb() { std::filesystem::remove_all(dir); }
  std::string path() const { return (dir / "state.db").string(); }
};
}  // namespace

TEST_CASE("bans survive reopening and end when told") {
  TempDb db;
  {
    auto s = OpenSqliteStore(db.path());
    REQUIRE(s);
    REQUIRE((*s)->SaveBan({*Prefix::Parse("203.0.113.9"), "postfix", "brute", "", "5 failures", T(0), T(3600)}));
    REQUIRE((*s)->SaveBan({*Prefix::Parse("2001:db8::/64"), "manual", "manual", "", "by hand", T(0), std::nullopt}));
    REQUIRE((*s)->SaveBan({*Prefix::Parse("198.51.100.1"), "qmail", "relay-flood", "test", "x", T(0), T(10)}));
  }
  auto s = OpenSqliteStore(db.path());
  REQUIRE(s);
  auto active = (*s)->ActiveBans(T(100));
  REQUIRE(active);
  REQUIRE(active->size() == 2);  // the 10-second one is over
  CHECK((*active)[0].target.ToString() == "203.0.113.9");
  CHECK((*active)[0].end == T(3600));
  CHECK_FALSE((*active)[1].end);
  REQUIRE((*s)->EndBan(*Prefix::Parse("203.0.113.9"), T(200), "unban"));
  CHECK((*s)->ActiveBans(T(201))->size() == 1);
}

TEST_CASE("a new ban of the same target replaces the active one and counts as an offence") {
  TempDb db;
  auto s = OpenSqliteStore(db.path());
  REQUIRE(s);
  auto p = *Prefix::Parse("203.0.113.9");
  REQUIRE((*s)->SaveBan({p, "postfix", "brute", "", "", T(0), T(3600)}));
  REQUIRE((*s)->SaveBan({p, "postfix", "spray", "", "", T(100), T(86400)}));
  auto active = (*s)->ActiveBans(T(200));
  REQUIRE(active->size() == 1);
  CHECK((*active)[0].rule == "spray");
  auto off = (*s)->Offences(T(-10));
  REQUIRE(off);
  CHECK(off->size() == 2);
}

TEST_CASE("read positions are stored per path") {
  TempDb db;
  auto s = OpenSqliteStore(db.path());
  REQUIRE(s);
  REQUIRE((*s)->SavePositions({{"/var/log/mail.log", 2049, 1234, 5678}, {"/var/log/a", 1, 2, 3}}));
  REQUIRE((*s)->SavePositions({{"/var/log/mail.log", 2049, 1234, 9999}}));
  auto p = (*s)->Positions();
  REQUIRE(p);
  REQUIRE(p->size() == 2);
  for (const auto& fp : *p)
    if (fp.path == "/var/log/mail.log") CHECK(fp.offset == 9999);
}

TEST_CASE("an unusable database path is a clear error") {
  auto s = OpenSqliteStore("/nonexistent-dir/state.db");
  REQUIRE_FALSE(s);
  CHECK(s.error().ToString().find("/nonexistent-dir/state.db: cannot open state database") == 0);
}
