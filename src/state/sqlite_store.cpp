#include <sqlite3.h>

#include <chrono>
#include <thread>

#include "relayban/state/state_store.hpp"

namespace relayban {
namespace {

int64_t Us(Time t) { return t.time_since_epoch().count(); }
Time FromUs(int64_t v) { return Time(Micros(v)); }

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  sqlite3_stmt* get() { return s_; }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& BindNull(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }
  // Steps once, retrying while another connection holds the lock.
  int Step() {
    for (int tries = 0;; ++tries) {
      int rc = sqlite3_step(s_);
      if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || tries > 50) return rc;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  std::string Text(int c) {
    auto* t = sqlite3_column_text(s_, c);
    return t ? reinterpret_cast<const char*>(t) : "";
  }
  int64_t Int(int c) { return sqlite3_column_int64(s_, c); }
  bool Null(int c) { return sqlite3_column_type(s_, c) == SQLITE_NULL; }

 private:
  sqlite3_stmt* s_ = nullptr;
};

class SqliteStore : public StateStore {
 public:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  ~SqliteStore() override { sqlite3_close(db_); }

  Result<void> Init() {
    const char* schema = R"(
      PRAGMA journal_mode=WAL;
      PRAGMA synchronous=NORMAL;
      PRAGMA busy_timeout=2000;
      CREATE TABLE IF NOT EXISTS bans (
        id INTEGER PRIMARY KEY, target TEXT NOT NULL, jail TEXT NOT NULL, rule TEXT NOT NULL,
        account TEXT NOT NULL, reason TEXT NOT NULL, start_us INTEGER NOT NULL, end_us INTEGER,
        ended_us INTEGER, how_ended TEXT);
      CREATE INDEX IF NOT EXISTS bans_active ON bans(ended_us, target);
      CREATE INDEX IF NOT EXISTS bans_start ON bans(start_us);
      CREATE TABLE IF NOT EXISTS cursors (source TEXT PRIMARY KEY, cursor TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS positions (
        path TEXT PRIMARY KEY, dev INTEGER NOT NULL, ino INTEGER NOT NULL, offset INTEGER NOT NULL);
    )";
    char* err = nullptr;
    if (sqlite3_exec(db_, schema, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string e = err ? err : "unknown error";
      sqlite3_free(err);
      return Fail("state database: " + e);
    }
    return {};
  }

  Result<void> SaveBan(const BanRecord& b) override {
    Exec("BEGIN IMMEDIATE");
    Stmt end(db_, "UPDATE bans SET ended_us=?1, how_ended='replaced' WHERE target=?2 AND ended_us IS NULL");
    end.Bind(1, Us(b.start)).Bind(2, b.target.ToString());
    end.Step();
    Stmt ins(db_, "INSERT INTO bans(target,jail,rule,account,reason,start_us,end_us) VALUES(?1,?2,?3,?4,?5,?6,?7)");
    ins.Bind(1, b.target.ToString()).Bind(2, b.jail).Bind(3, b.rule).Bind(4, b.account).Bind(5, b.reason).Bind(6, Us(b.start));
    if (b.end) ins.Bind(7, Us(*b.end));
    else ins.BindNull(7);
    int rc = ins.Step();
    Exec("COMMIT");
    if (rc != SQLITE_DONE) return Fail(std::string("state database: ") + sqlite3_errmsg(db_));
    return {};
  }

  Result<void> EndBan(const Prefix& target, Time at, const std::string& how) override {
    Stmt s(db_, "UPDATE bans SET ended_us=?1, how_ended=?2 WHERE target=?3 AND ended_us IS NULL");
    s.Bind(1, Us(at)).Bind(2, how).Bind(3, target.ToString());
    if (s.Step() != SQLITE_DONE) return Fail(std::string("state database: ") + sqlite3_errmsg(db_));
    return {};
  }

  Result<std::vector<BanRecord>> ActiveBans(Time now) override {
    std::vector<BanRecord> out;
    Stmt s(db_,
           "SELECT target,jail,rule,account,reason,start_us,end_us FROM bans "
           "WHERE ended_us IS NULL AND (end_us IS NULL OR end_us > ?1) ORDER BY start_us, id");
    s.Bind(1, Us(now));
    while (s.Step() == SQLITE_ROW) {
      auto p = Prefix::Parse(s.Text(0));
      if (!p) continue;
      BanRecord b{*p, s.Text(1), s.Text(2), s.Text(3), s.Text(4), FromUs(s.Int(5)), std::nullopt};
      if (!s.Null(6)) b.end = FromUs(s.Int(6));
      out.push_back(std::move(b));
    }
    return out;
  }

  Result<std::vector<std::pair<Prefix, Time>>> Offences(Time since) override {
    std::vector<std::pair<Prefix, Time>> out;
    Stmt s(db_, "SELECT target,start_us FROM bans WHERE start_us >= ?1 AND jail != 'manual' ORDER BY start_us");
    s.Bind(1, Us(since));
    while (s.Step() == SQLITE_ROW)
      if (auto p = Prefix::Parse(s.Text(0))) out.emplace_back(*p, FromUs(s.Int(1)));
    return out;
  }

  Result<void> SavePositions(const std::vector<FilePosition>& positions) override {
    Exec("BEGIN IMMEDIATE");
    for (const auto& p : positions) {
      Stmt s(db_, "INSERT OR REPLACE INTO positions(path,dev,ino,offset) VALUES(?1,?2,?3,?4)");
      s.Bind(1, p.path).Bind(2, static_cast<int64_t>(p.dev)).Bind(3, static_cast<int64_t>(p.ino)).Bind(4, static_cast<int64_t>(p.offset));
      s.Step();
    }
    Exec("COMMIT");
    return {};
  }

  Result<std::vector<FilePosition>> Positions() override {
    std::vector<FilePosition> out;
    Stmt s(db_, "SELECT path,dev,ino,offset FROM positions");
    while (s.Step() == SQLITE_ROW)
      out.push_back({s.Text(0), static_cast<uint64_t>(s.Int(1)), static_cast<uint64_t>(s.Int(2)), static_cast<uint64_t>(s.Int(3))});
    return out;
  }

  Result<void> SaveCursor(const std::string& source, const std::string& cursor) override {
    Stmt s(db_, "INSERT OR REPLACE INTO cursors(source,cursor) VALUES(?1,?2)");
    s.Bind(1, source).Bind(2, cursor);
    if (s.Step() != SQLITE_DONE) return Fail(std::string("state database: ") + sqlite3_errmsg(db_));
    return {};
  }

  Result<std::optional<std::string>> Cursor(const std::string& source) override {
    Stmt s(db_, "SELECT cursor FROM cursors WHERE source=?1");
    s.Bind(1, source);
    if (s.Step() == SQLITE_ROW) return std::optional<std::string>(s.Text(0));
    return std::optional<std::string>();
  }

 private:
  void Exec(const char* sql) { sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }
  sqlite3* db_;
};

}  // namespace

Result<std::unique_ptr<StateStore>> OpenSqliteStore(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string e = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Fail(path + ": cannot open state database: " + e);
  }
  auto store = std::make_unique<SqliteStore>(db);
  if (auto r = store->Init(); !r) return Fail(Error{r.error().message, {path, 0, 0}});
  return std::unique_ptr<StateStore>(std::move(store));
}

}  // namespace relayban
