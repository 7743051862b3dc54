// The SQLite state store on a real file.
#include "relayban/state/state_store.hpp"

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdio>
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
  // Streamed a row at a time (a restart after a botnet): the same bans, in the same order,
  // a permanent one's missing end not carried over from the row before.
  std::vector<BanRecord> streamed;
  auto n = (*s)->EachActiveBan(T(100), [&](const BanRecord& b) { streamed.push_back(b); });
  REQUIRE(n);
  CHECK(*n == 2);
  REQUIRE(streamed.size() == 2);
  CHECK(streamed[0].target.ToString() == "203.0.113.9");
  CHECK(streamed[0].reason == "5 failures");
  CHECK(streamed[0].end == T(3600));
  CHECK(streamed[1].target.ToString() == "2001:db8::/64");
  CHECK(streamed[1].jail == "manual");
  CHECK_FALSE(streamed[1].end);
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

TEST_CASE("read positions and journal cursors are stored per source") {
  TempDb db;
  auto s = OpenSqliteStore(db.path());
  REQUIRE(s);
  REQUIRE((*s)->SaveProgress({{{"/var/log/mail.log", 2049, 1234, 5678}, {"/var/log/a", 1, 2, 3}}, {{"journal:x", "c1"}}}));
  REQUIRE((*s)->SaveProgress({{{"/var/log/mail.log", 2049, 1234, 9999}}, {{"journal:x", "c2"}}}));
  auto p = (*s)->LoadProgress();
  REQUIRE(p);
  REQUIRE(p->files.size() == 2);
  for (const auto& fp : p->files)
    if (fp.path == "/var/log/mail.log") CHECK(fp.offset == 9999);
  REQUIRE(p->cursors.size() == 1);
  CHECK(p->cursors[0].second == "c2");
}

TEST_CASE("several writes are one transaction, and where a ban came from is kept") {
  TempDb db;
  auto s = OpenSqliteStore(db.path());
  REQUIRE(s);
  auto a = *Prefix::Parse("203.0.113.1"), b = *Prefix::Parse("203.0.113.2");
  REQUIRE((*s)->WriteBans({{BanWrite::Kind::kSave, {a, "manual", "manual", "", "by hand", T(0), T(600), "manual"}, {}, {}, {}},
                           {BanWrite::Kind::kSave, {b, "adopted", "adopted", "", "kernel", T(0), std::nullopt, "adopted"}, {}, {}, {}},
                           {BanWrite::Kind::kEnd, {}, a, T(10), "unban"}}));
  auto active = (*s)->ActiveBans(T(20));
  REQUIRE(active);
  REQUIRE(active->size() == 1);
  CHECK((*active)[0].origin == "adopted");
  auto lifted = (*s)->LiftedTargets();
  REQUIRE(lifted);
  REQUIRE(lifted->size() == 1);
  CHECK((*lifted)[0] == a);
  // Banned again: no longer "lifted".
  REQUIRE((*s)->SaveBan({a, "postfix", "brute", "", "", T(30), T(90), "rule"}));
  CHECK((*s)->LiftedTargets()->empty());
  // Only bans made by rules count for escalation.
  auto off = (*s)->Offences(T(-10));
  REQUIRE(off);
  CHECK(off->size() == 1);
}

TEST_CASE("a damaged database is reported as such, and can be moved aside for a fresh one") {
  TempDb db;
  {
    auto s = OpenSqliteStore(db.path());
    REQUIRE(s);
    REQUIRE((*s)->SaveBan({*Prefix::Parse("203.0.113.9"), "j", "r", "", "", T(0), T(3600), "rule"}));
  }
  // Scribble over the middle of the file, past its header.
  {
    FILE* f = std::fopen(db.path().c_str(), "r+b");
    REQUIRE(f);
    std::fseek(f, 0, SEEK_END);
    long size = std::ftell(f);
    std::fseek(f, 0, SEEK_SET);
    std::string junk(static_cast<size_t>(size), '\x5a');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  auto s = OpenSqliteStore(db.path());
  REQUIRE_FALSE(s);
  CHECK(s.error().kind == ErrorKind::kCorrupt);
  auto aside = MoveAsideCorrupt(db.path(), T(0));
  REQUIRE(aside);
  CHECK(aside->find(".corrupt-") != std::string::npos);
  CHECK(std::filesystem::exists(*aside));
  auto fresh = OpenSqliteStore(db.path());
  REQUIRE(fresh);
  CHECK((*fresh)->ActiveBans(T(1))->empty());
}

TEST_CASE("an unusable database path is a clear error") {
  auto s = OpenSqliteStore("/nonexistent-dir/state.db");
  REQUIRE_FALSE(s);
  CHECK(s.error().ToString().find("/nonexistent-dir/state.db: cannot open state database") == 0);
  CHECK(s.error().kind == ErrorKind::kNotFound);
}

TEST_CASE("the journal is written with the read positions, read back in order, and pruned by age and count") {
  TempDb db;
  auto s = OpenSqliteStore(db.path());
  REQUIRE(s);
  JournalBatch batch;
  for (int i = 0; i < 10; ++i) batch.Add(T(i * 60), std::string("rec\0", 4) + std::to_string(i));
  REQUIRE((*s)->Checkpoint(batch, {{{"/var/log/mail.log", 1, 2, 300}}, {}}));
  auto all = (*s)->LoadJournal(0, T(0), 100);
  REQUIRE(all);
  REQUIRE(all->size() == 10);
  CHECK((*all)[3].second == std::string("rec\0", 4) + "3");  // binary-safe
  auto page = (*s)->LoadJournal((*all)[4].first, T(0), 3);
  REQUIRE(page->size() == 3);
  CHECK(page->front().second.back() == '5');
  CHECK((*s)->LoadJournal(0, T(8 * 60), 100)->size() == 2);  // only what the window needs
  CHECK((*s)->LoadProgress()->files[0].offset == 300);
  auto gone = (*s)->PruneJournal(T(3 * 60), 1000, 1000);
  REQUIRE(gone);
  CHECK(*gone == 3);
  CHECK(*(*s)->PruneJournal(T(0), 4, 1000) == 3);  // the oldest beyond 4 records
  auto left = (*s)->LoadJournal(0, T(0), 100);
  REQUIRE(left->size() == 4);
  CHECK(left->front().second.back() == '6');
}

TEST_CASE("pruning by age looks no further while the oldest record is recent, and takes older ones behind an old first") {
  TempDb db;
  auto s = OpenSqliteStore(db.path());
  REQUIRE(s);
  // Several logs interleave: records are nearly, not exactly, in time order.
  JournalBatch batch;
  for (auto [t, d] : {std::pair{T(10 * 60), "a"}, {T(1 * 60), "b"}, {T(2 * 60), "c"}, {T(20 * 60), "d"}}) batch.Add(t, d);
  REQUIRE((*s)->Checkpoint(batch, {}));
  CHECK(*(*s)->PruneJournal(T(5 * 60), 1000, 1000) == 0);  // the first (10 min) is recent: nothing scanned
  CHECK((*s)->LoadJournal(0, T(0), 100)->size() == 4);
  CHECK(*(*s)->PruneJournal(T(15 * 60), 1000, 1000) == 3);  // now it is old: the old ones behind it go too
  auto left = (*s)->LoadJournal(0, T(0), 100);
  REQUIRE(left->size() == 1);
  CHECK(left->front().second == "d");
}

TEST_CASE("a database of an earlier version is migrated with its bans, positions and history") {
  TempDb db;
  {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(db.path().c_str(), &raw) == SQLITE_OK);
    const char* v2 = R"(
      CREATE TABLE bans (id INTEGER PRIMARY KEY, target TEXT NOT NULL, jail TEXT NOT NULL, rule TEXT NOT NULL,
        account TEXT NOT NULL, reason TEXT NOT NULL, start_us INTEGER NOT NULL, end_us INTEGER,
        ended_us INTEGER, how_ended TEXT, origin TEXT NOT NULL DEFAULT 'rule');
      CREATE TABLE positions (path TEXT PRIMARY KEY, dev INTEGER NOT NULL, ino INTEGER NOT NULL, offset INTEGER NOT NULL);
      INSERT INTO positions VALUES('/var/log/mail.log', 1, 2, 300);
      INSERT INTO bans(target,jail,rule,account,reason,start_us,end_us,ended_us,how_ended,origin) VALUES
        ('203.0.113.1','postfix','brute','','5 failures',1795000000000000,1795003600000000,NULL,NULL,'rule'),
        ('203.0.113.2','manual','manual','','by hand',1795000000000000,NULL,NULL,NULL,'manual'),
        ('203.0.113.3','postfix','brute','','5 failures',1795000000000000,1795003600000000,1795000100000000,'unban','rule');
    )";
    REQUIRE(sqlite3_exec(raw, v2, nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(raw);
  }
  auto s = OpenSqliteStore(db.path());
  REQUIRE(s);
  auto active = (*s)->ActiveBans(T(10));
  REQUIRE(active);
  REQUIRE(active->size() == 2);
  CHECK((*active)[0].reason == "5 failures");
  CHECK((*active)[1].origin == "manual");
  CHECK((*s)->LiftedTargets()->size() == 1);
  CHECK((*s)->LoadProgress()->files.at(0).offset == 300);
  CHECK((*s)->Offences(T(-100))->size() == 2);  // the rule's bans, not the hand's
  // And it goes on being written.
  REQUIRE((*s)->SaveBan({*Prefix::Parse("203.0.113.1"), "postfix", "spray", "", "4 accounts", T(20), T(99999), "rule"}));
  CHECK((*s)->ActiveBans(T(30))->size() == 2);
}

TEST_CASE("decisions are found by target or account, newest first, survive reopening, and only the newest are kept") {
  TempDb db;
  {
    auto s = OpenSqliteStore(db.path());
    REQUIRE(s);
    // The first row's record in two parts (a head and the rest its verdict's records share).
  auto rest = std::make_shared<const std::string>(R"(,"n":1})");
  REQUIRE((*s)->SaveDecisions({{T(1), "203.0.113.9", "", R"({"action":"ban")", rest},
                                 {T(2), "198.51.100.1", "test", R"({"action":"ban","n":2})"},
                                 {T(3), "", "test", R"({"action":"account_verdict","n":3})"}},
                                100));
  }
  auto s = OpenSqliteStore(db.path());
  REQUIRE(s);
  auto by_ip = (*s)->FindDecisions({"203.0.113.9"}, "", 10);
  REQUIRE(by_ip);
  REQUIRE(by_ip->size() == 1);
  CHECK(by_ip->front().record == R"({"action":"ban","n":1})");
  CHECK(by_ip->front().time == T(1));
  auto by_account = (*s)->FindDecisions({}, "test", 10);
  REQUIRE(by_account);
  REQUIRE(by_account->size() == 2);
  CHECK(by_account->front().record == R"({"action":"account_verdict","n":3})");  // newest first
  // Found by its target and by its account: listed once.
  auto both = (*s)->FindDecisions({"198.51.100.1"}, "test", 10);
  REQUIRE(both);
  CHECK(both->size() == 2);
  CHECK((*s)->FindDecisions({"192.0.2.1"}, "nobody", 10)->empty());
  // Past `keep`, the oldest go.
  std::vector<DecisionRow> many;
  for (int i = 0; i < 50; ++i) many.push_back({T(10 + i), "203.0.113.9", "", "{\"n\":" + std::to_string(10 + i) + "}"});
  REQUIRE((*s)->SaveDecisions(many, 20));
  auto kept = (*s)->FindDecisions({"203.0.113.9"}, "", 100);
  REQUIRE(kept);
  CHECK(kept->size() == 20);
  CHECK(kept->front().record == "{\"n\":59}");
  CHECK(kept->back().record == "{\"n\":40}");
  CHECK((*s)->FindDecisions({}, "test", 10)->empty());
}

TEST_CASE("what is committed reaches the database file in the background, not in the committing call") {
  TempDb db;
  auto s = OpenSqliteStore(db.path());
  REQUIRE(s);
  auto size = [&] { return std::filesystem::file_size(db.path()); };
  auto before = size();
  // About 70 pages: SQLite's own checkpoint at commit (every 1000 pages) would not run yet.
  std::vector<BanWrite> writes;
  for (int i = 0; i < 2000; ++i) {
    BanRecord b{Prefix(IpAddress::V4(0x0A000000u + static_cast<uint32_t>(i)), 32), "postfix", "brute", "", "x", T(0), T(3600), "rule"};
    writes.push_back({BanWrite::Kind::kSave, b, {}, {}, {}, false});
  }
  REQUIRE((*s)->WriteBans(writes));
  CHECK(std::filesystem::file_size(db.path() + "-wal") > 100000);
  // The store stays open and writes nothing more: only its checkpointer can move the pages.
  for (int i = 0; i < 500 && size() <= before + 100000; ++i) usleep(20000);
  CHECK(size() > before + 100000);
  CHECK((*s)->ActiveBans(T(1))->size() == 2000);
}

TEST_CASE("a journal batch keeps each record's time and bytes in one buffer, and a refused batch goes back in front") {
  JournalBatch older, newer;
  older.Add(T(1), std::string("a\0b", 3));
  older.Add(T(2), "");
  older.Add(T(3), std::string(5000, 'x'));
  newer.Add(T(4), "newer");
  REQUIRE(older.size() == 3);
  CHECK(older.data(0) == std::string("a\0b", 3));
  CHECK(older.data(1).empty());
  CHECK(older.data(2) == std::string(5000, 'x'));
  newer.Prepend(std::move(older));
  REQUIRE(newer.size() == 4);
  std::vector<std::string> data;
  for (size_t i = 0; i < newer.size(); ++i) {
    CHECK(newer.time(i) == T(static_cast<int>(i) + 1));
    data.emplace_back(newer.data(i));
  }
  CHECK(data == std::vector<std::string>{std::string("a\0b", 3), "", std::string(5000, 'x'), "newer"});
  newer.clear();
  CHECK(newer.empty());
  newer.Add(T(9), "again");
  CHECK(newer.data(0) == "again");
}

TEST_CASE("bans written with a shared info are saved with its values, one info row for the bans that share them") {
  TempDb db;
  auto s = OpenSqliteStore(db.path());
  REQUIRE(s);
  auto one = std::make_shared<const BanInfo>(BanInfo{"postfix", "account-bruteforce", "user1@example.com", "reason one", "rule"});
  auto two = std::make_shared<const BanInfo>(BanInfo{"dovecot", "auth-bruteforce", "", "reason two", "fleet"});
  // The same values again in another object, and in a plain record.
  auto one_again = std::make_shared<const BanInfo>(*one);
  std::vector<BanWrite> writes;
  auto save = [&](uint32_t i, std::shared_ptr<const BanInfo> info) {
    BanWrite w;
    w.record.target = Prefix(IpAddress::V4(0x0B000000u + i), 32);
    w.record.start = T(0);
    w.record.end = T(3600);
    w.replaces = false;
    w.info = std::move(info);
    writes.push_back(w);
  };
  for (uint32_t i = 0; i < 10; ++i) save(i, i < 4 ? one : i < 7 ? two : one_again);
  BanRecord plain{Prefix(IpAddress::V4(0x0C000000u), 32), "postfix", "account-bruteforce", "user1@example.com", "reason one",
                  T(0), T(3600), "rule"};
  writes.push_back({BanWrite::Kind::kSave, plain, {}, {}, {}, false});
  REQUIRE((*s)->WriteBans(writes));
  auto active = (*s)->ActiveBans(T(1));
  REQUIRE(active);
  REQUIRE(active->size() == 11);
  for (size_t i = 0; i < 11; ++i) {
    const BanRecord& b = (*active)[i];
    const BanInfo& want = i >= 4 && i < 7 ? *two : *one;
    CHECK(b.jail == want.jail);
    CHECK(b.rule == want.rule);
    CHECK(b.account == want.account);
    CHECK(b.reason == want.reason);
    CHECK(b.origin == want.origin);
  }
  // Whole records as a reader of the write would see them.
  CHECK(writes[5].Record().jail == "dovecot");
  CHECK(writes[5].Record().target.ToString() == "11.0.0.5");
  CHECK(writes[10].Record().reason == "reason one");
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.path().c_str(), &raw) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(raw, "SELECT count(*) FROM ban_info", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(sqlite3_column_int(st, 0) == 2);
  sqlite3_finalize(st);
  sqlite3_close(raw);
}
