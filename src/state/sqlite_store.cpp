#include <sqlite3.h>

#include <cstdio>
#include <ctime>
#include <map>

#include "relayban/state/state_store.hpp"

namespace relayban {
namespace {

int64_t Us(Time t) { return t.time_since_epoch().count(); }
Time FromUs(int64_t v) { return Time(Micros(v)); }

ErrorKind KindOf(int rc) {
  switch (rc & 0xff) {
    case SQLITE_FULL: return ErrorKind::kNoSpace;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return ErrorKind::kCorrupt;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return ErrorKind::kBusy;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH: return ErrorKind::kPermission;
    case SQLITE_CANTOPEN: return ErrorKind::kNotFound;
    default: return ErrorKind::kOther;
  }
}

// A prepared statement, reset for reuse by the store's cache.
class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  sqlite3_stmt* get() { return s_; }
  void Reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
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
  // One step; the busy timeout of the connection is the only waiting (no retry loop here).
  int Step() { return sqlite3_step(s_); }
  std::string Text(int c) {
    auto* t = sqlite3_column_text(s_, c);
    return t ? reinterpret_cast<const char*>(t) : "";
  }
  int64_t Int(int c) { return sqlite3_column_int64(s_, c); }
  bool Null(int c) { return sqlite3_column_type(s_, c) == SQLITE_NULL; }

 private:
  sqlite3_stmt* s_;
};

class SqliteStore : public StateStore {
 public:
  SqliteStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteStore() override {
    cache_.clear();
    sqlite3_close(db_);
  }

  Result<void> Init() {
    // The loop must not wait long for a lock: another process (an admin's sqlite3 shell)
    // holding one makes a write fail with kBusy, and the caller retries on a later turn.
    const char* setup = R"(
      PRAGMA busy_timeout=100;
      PRAGMA journal_mode=WAL;
      PRAGMA synchronous=NORMAL;
      CREATE TABLE IF NOT EXISTS bans (
        id INTEGER PRIMARY KEY, target TEXT NOT NULL, jail TEXT NOT NULL, rule TEXT NOT NULL,
        account TEXT NOT NULL, reason TEXT NOT NULL, start_us INTEGER NOT NULL, end_us INTEGER,
        ended_us INTEGER, how_ended TEXT);
      CREATE INDEX IF NOT EXISTS bans_active ON bans(ended_us, target);
      CREATE INDEX IF NOT EXISTS bans_start ON bans(start_us);
      CREATE INDEX IF NOT EXISTS bans_target ON bans(target, id);
      CREATE TABLE IF NOT EXISTS cursors (source TEXT PRIMARY KEY, cursor TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS file_positions (
        path TEXT NOT NULL, dev INTEGER NOT NULL, ino INTEGER NOT NULL, offset INTEGER NOT NULL,
        PRIMARY KEY (path, dev, ino));
      CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY, t_us INTEGER NOT NULL, data BLOB NOT NULL);
      CREATE INDEX IF NOT EXISTS journal_t ON journal(t_us);
    )";
    if (auto r = Exec(setup); !r) return r;
    // Version 1 kept one position per path; a path now has one per open generation.
    {
      auto s = Prepare("SELECT count(*) FROM sqlite_master WHERE type='table' AND name='positions'");
      if (!s) return Fail(s.error());
      bool old = (*s)->Step() == SQLITE_ROW && (*s)->Int(0) > 0;
      (*s)->Reset();
      if (old)
        if (auto r = Exec("INSERT OR IGNORE INTO file_positions SELECT path,dev,ino,offset FROM positions;"
                          "DROP TABLE positions;");
            !r)
          return r;
    }
    // Version 2 records where a ban came from (a rule, by hand, adopted from the kernel).
    bool has_origin = false;
    {
      auto s = Prepare("SELECT name FROM pragma_table_info('bans')");
      if (!s) return Fail(s.error());
      while ((*s)->Step() == SQLITE_ROW) has_origin = has_origin || (*s)->Text(0) == "origin";
      (*s)->Reset();
    }
    if (!has_origin)
      if (auto r = Exec("ALTER TABLE bans ADD COLUMN origin TEXT NOT NULL DEFAULT 'rule';"
                        "UPDATE bans SET origin='manual' WHERE jail='manual';"
                        "PRAGMA user_version=2;");
          !r)
        return r;
    // A damaged file is found now, not at the first write under attack.
    auto check = Prepare("PRAGMA quick_check");
    if (!check) return Fail(check.error());
    int rc = (*check)->Step();
    std::string verdict = rc == SQLITE_ROW ? (*check)->Text(0) : std::string();
    (*check)->Reset();
    if (rc != SQLITE_ROW) return Error(rc, "checking the database");
    if (verdict != "ok") return Fail(ErrorKind::kCorrupt, path_ + ": state database is damaged: " + verdict);
    return {};
  }

  Result<void> WriteBans(const std::vector<BanWrite>& writes) override {
    if (writes.empty()) return {};
    return Transaction([&]() -> Result<void> {
      for (const BanWrite& w : writes) {
        if (w.kind == BanWrite::Kind::kSave) {
          const BanRecord& b = w.record;
          auto end = Prepare("UPDATE bans SET ended_us=?1, how_ended='replaced' WHERE target=?2 AND ended_us IS NULL");
          if (!end) return Fail(end.error());
          (*end)->Bind(1, Us(b.start)).Bind(2, b.target.ToString());
          if (auto r = Done(**end, "saving a ban"); !r) return r;
          auto ins = Prepare(
              "INSERT INTO bans(target,jail,rule,account,reason,start_us,end_us,origin) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)");
          if (!ins) return Fail(ins.error());
          (*ins)->Bind(1, b.target.ToString()).Bind(2, b.jail).Bind(3, b.rule).Bind(4, b.account).Bind(5, b.reason);
          (*ins)->Bind(6, Us(b.start)).Bind(8, b.origin);
          if (b.end) (*ins)->Bind(7, Us(*b.end));
          else (*ins)->BindNull(7);
          if (auto r = Done(**ins, "saving a ban"); !r) return r;
        } else {
          auto s = Prepare("UPDATE bans SET ended_us=?1, how_ended=?2 WHERE target=?3 AND ended_us IS NULL");
          if (!s) return Fail(s.error());
          (*s)->Bind(1, Us(w.at)).Bind(2, w.how).Bind(3, w.target.ToString());
          if (auto r = Done(**s, "ending a ban"); !r) return r;
        }
      }
      return {};
    });
  }

  Result<std::vector<BanRecord>> ActiveBans(Time now) override {
    std::vector<BanRecord> out;
    auto s = Prepare(
        "SELECT target,jail,rule,account,reason,start_us,end_us,origin FROM bans "
        "WHERE ended_us IS NULL AND (end_us IS NULL OR end_us > ?1) ORDER BY start_us, id");
    if (!s) return Fail(s.error());
    (*s)->Bind(1, Us(now));
    int rc;
    while ((rc = (*s)->Step()) == SQLITE_ROW) {
      auto p = Prefix::Parse((*s)->Text(0));
      if (!p) continue;
      BanRecord b{*p, (*s)->Text(1), (*s)->Text(2), (*s)->Text(3), (*s)->Text(4), FromUs((*s)->Int(5)), std::nullopt,
                  (*s)->Text(7)};
      if (!(*s)->Null(6)) b.end = FromUs((*s)->Int(6));
      out.push_back(std::move(b));
    }
    (*s)->Reset();
    if (rc != SQLITE_DONE) return Error(rc, "reading active bans");
    return out;
  }

  Result<std::vector<Prefix>> LiftedTargets() override {
    std::vector<Prefix> out;
    auto s = Prepare(
        "SELECT b.target FROM bans b WHERE b.how_ended='unban' "
        "AND b.id = (SELECT max(id) FROM bans c WHERE c.target=b.target)");
    if (!s) return Fail(s.error());
    int rc;
    while ((rc = (*s)->Step()) == SQLITE_ROW)
      if (auto p = Prefix::Parse((*s)->Text(0))) out.push_back(*p);
    (*s)->Reset();
    if (rc != SQLITE_DONE) return Error(rc, "reading lifted bans");
    return out;
  }

  Result<std::vector<std::pair<Prefix, Time>>> Offences(Time since) override {
    std::vector<std::pair<Prefix, Time>> out;
    auto s = Prepare("SELECT target,start_us FROM bans WHERE start_us >= ?1 AND origin = 'rule' ORDER BY start_us");
    if (!s) return Fail(s.error());
    (*s)->Bind(1, Us(since));
    int rc;
    while ((rc = (*s)->Step()) == SQLITE_ROW)
      if (auto p = Prefix::Parse((*s)->Text(0))) out.emplace_back(*p, FromUs((*s)->Int(1)));
    (*s)->Reset();
    if (rc != SQLITE_DONE) return Error(rc, "reading offences");
    return out;
  }

  Result<void> Checkpoint(const std::vector<JournalRecord>& records, const Progress& progress) override {
    if (records.empty() && progress.files.empty() && progress.cursors.empty()) return {};
    return Transaction([&]() -> Result<void> {
      for (const auto& rec : records) {
        auto s = Prepare("INSERT INTO journal(t_us,data) VALUES(?1,?2)");
        if (!s) return Fail(s.error());
        (*s)->Bind(1, Us(rec.time));
        sqlite3_bind_blob((*s)->get(), 2, rec.data.data(), static_cast<int>(rec.data.size()), SQLITE_STATIC);
        if (auto r = Done(**s, "writing the journal"); !r) return r;
      }
      // Each path named is replaced whole: the generations it no longer has open go.
      std::string last;
      for (const auto& p : progress.files) {
        if (p.path == last) continue;
        last = p.path;
        auto del = Prepare("DELETE FROM file_positions WHERE path=?1");
        if (!del) return Fail(del.error());
        (*del)->Bind(1, p.path);
        if (auto r = Done(**del, "saving read positions"); !r) return r;
      }
      for (const auto& p : progress.files) {
        auto s = Prepare("INSERT OR REPLACE INTO file_positions(path,dev,ino,offset) VALUES(?1,?2,?3,?4)");
        if (!s) return Fail(s.error());
        (*s)->Bind(1, p.path).Bind(2, static_cast<int64_t>(p.dev)).Bind(3, static_cast<int64_t>(p.ino));
        (*s)->Bind(4, static_cast<int64_t>(p.offset));
        if (auto r = Done(**s, "saving read positions"); !r) return r;
      }
      for (const auto& [source, cursor] : progress.cursors) {
        auto s = Prepare("INSERT OR REPLACE INTO cursors(source,cursor) VALUES(?1,?2)");
        if (!s) return Fail(s.error());
        (*s)->Bind(1, source).Bind(2, cursor);
        if (auto r = Done(**s, "saving journal cursors"); !r) return r;
      }
      return {};
    });
  }

  Result<std::vector<std::pair<uint64_t, std::string>>> LoadJournal(uint64_t after, Time since, size_t limit) override {
    std::vector<std::pair<uint64_t, std::string>> out;
    auto s = Prepare("SELECT seq,data FROM journal WHERE seq > ?1 AND t_us >= ?2 ORDER BY seq LIMIT ?3");
    if (!s) return Fail(s.error());
    (*s)->Bind(1, static_cast<int64_t>(after)).Bind(2, Us(since)).Bind(3, static_cast<int64_t>(limit));
    int rc;
    while ((rc = (*s)->Step()) == SQLITE_ROW) {
      const void* blob = sqlite3_column_blob((*s)->get(), 1);
      int n = sqlite3_column_bytes((*s)->get(), 1);
      out.emplace_back(static_cast<uint64_t>((*s)->Int(0)), std::string(static_cast<const char*>(blob), static_cast<size_t>(n)));
    }
    (*s)->Reset();
    if (rc != SQLITE_DONE) return Error(rc, "reading the journal");
    return out;
  }

  Result<size_t> PruneJournal(Time before, size_t keep, size_t limit) override {
    size_t gone = 0;
    auto r = Transaction([&]() -> Result<void> {
      auto old = Prepare("DELETE FROM journal WHERE seq IN (SELECT seq FROM journal WHERE t_us < ?1 ORDER BY seq LIMIT ?2)");
      if (!old) return Fail(old.error());
      (*old)->Bind(1, Us(before)).Bind(2, static_cast<int64_t>(limit));
      if (auto d = Done(**old, "pruning the journal"); !d) return d;
      gone += static_cast<size_t>(sqlite3_changes(db_));
      // Beyond `keep` records the oldest go too: a flood must not make the journal (and the
      // replay at start) grow without bound. Records are only ever deleted from the oldest
      // end, so the span of sequence numbers is their count (and costs no scan).
      auto over = Prepare(
          "DELETE FROM journal WHERE seq IN (SELECT seq FROM journal ORDER BY seq LIMIT "
          "max(0, min(?2, (SELECT max(seq) - min(seq) + 1 FROM journal) - ?1)))");
      if (!over) return Fail(over.error());
      (*over)->Bind(1, static_cast<int64_t>(keep)).Bind(2, static_cast<int64_t>(limit));
      if (auto d = Done(**over, "pruning the journal"); !d) return d;
      gone += static_cast<size_t>(sqlite3_changes(db_));
      return {};
    });
    if (!r) return Fail(r.error());
    return gone;
  }

  Result<Progress> LoadProgress() override {
    Progress out;
    auto s = Prepare("SELECT path,dev,ino,offset FROM file_positions ORDER BY rowid");
    if (!s) return Fail(s.error());
    int rc;
    while ((rc = (*s)->Step()) == SQLITE_ROW)
      out.files.push_back({(*s)->Text(0), static_cast<uint64_t>((*s)->Int(1)), static_cast<uint64_t>((*s)->Int(2)),
                           static_cast<uint64_t>((*s)->Int(3))});
    (*s)->Reset();
    if (rc != SQLITE_DONE) return Error(rc, "reading read positions");
    auto c = Prepare("SELECT source,cursor FROM cursors");
    if (!c) return Fail(c.error());
    while ((rc = (*c)->Step()) == SQLITE_ROW) out.cursors.emplace_back((*c)->Text(0), (*c)->Text(1));
    (*c)->Reset();
    if (rc != SQLITE_DONE) return Error(rc, "reading journal cursors");
    return out;
  }

 private:
  Unexpected Error(int rc, const std::string& doing) {
    return Fail(KindOf(rc), "state database " + path_ + ": " + doing + ": " + sqlite3_errmsg(db_));
  }
  Result<void> Exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc == SQLITE_OK) return {};
    std::string e = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return Fail(KindOf(rc), "state database " + path_ + ": " + e);
  }
  // A cached prepared statement, reset and ready to bind.
  Result<Stmt*> Prepare(const char* sql) {
    auto it = cache_.find(sql);
    if (it != cache_.end()) {
      it->second->Reset();
      return it->second.get();
    }
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(raw);
      return Error(rc, "preparing a statement");
    }
    auto& slot = cache_[sql];
    slot = std::make_unique<Stmt>(raw);
    return slot.get();
  }
  Result<void> Done(Stmt& s, const std::string& doing) {
    int rc = s.Step();
    s.Reset();
    if (rc != SQLITE_DONE) return Error(rc, doing);
    return {};
  }
  // Runs `body` between BEGIN IMMEDIATE and COMMIT; rolls back on any error, so a failed
  // write leaves nothing half done.
  template <class F>
  Result<void> Transaction(F&& body) {
    if (auto r = Exec("BEGIN IMMEDIATE"); !r) return r;
    auto r = body();
    if (r) {
      int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
      if (rc == SQLITE_OK) return {};
      r = Error(rc, "committing");
    }
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return r;
  }

  sqlite3* db_;
  std::string path_;
  std::map<const char*, std::unique_ptr<Stmt>> cache_;  // by the SQL literal's address
};

}  // namespace

Result<std::unique_ptr<StateStore>> OpenSqliteStore(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string e = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Fail(Error{path + ": cannot open state database: " + e, {}, KindOf(rc)});
  }
  auto store = std::make_unique<SqliteStore>(db, path);
  if (auto r = store->Init(); !r) return Fail(r.error());
  return std::unique_ptr<StateStore>(std::move(store));
}

Result<std::string> MoveAsideCorrupt(const std::string& path, Time now) {
  std::time_t secs = std::chrono::duration_cast<Seconds>(now.time_since_epoch()).count();
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  std::string aside = path + ".corrupt-" + stamp;
  if (std::rename(path.c_str(), aside.c_str()) != 0)
    return Fail("cannot move the damaged state database " + path + " aside to " + aside);
  for (const char* ext : {"-wal", "-shm"}) std::rename((path + ext).c_str(), (aside + ext).c_str());
  return aside;
}

}  // namespace relayban
