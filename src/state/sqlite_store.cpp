#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

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

// Copies what the write-ahead log holds into the database file, on a thread of its own with
// a connection of its own. SQLite's default does it inside a commit every 1000 pages: under a
// botnet's burst one such commit held the daemon's loop (and every `relayban status`) for a
// third of a second. A PASSIVE checkpoint waits for nobody and is safe beside the writer;
// the writer's commits then only append, and the log starts over once it was copied.
class Checkpointer {
 public:
  // Takes over `db` (opened by the caller for this use only).
  explicit Checkpointer(sqlite3* db) : db_(db) {
    // Signals are the daemon's (read from a signalfd, blocked in its thread): this thread
    // must never take one, or a SIGTERM would end the process unhandled. It starts with all
    // blocked (a new thread inherits the mask), the caller's mask is put back after.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    thread_ = std::thread([this] { Run(); });
    pthread_setname_np(thread_.native_handle(), "relayban-wal");
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  ~Checkpointer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
    sqlite3_close(db_);
  }
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

 private:
  static constexpr auto kEvery = std::chrono::milliseconds(200);
  void Run() {
    // Copying the log into the database may lag the loop's work: like the daemon's other
    // background threads (JobThread::kBackground), it yields a contended core to the loop.
    auto self = static_cast<id_t>(gettid());
    (void)setpriority(PRIO_PROCESS, self, getpriority(PRIO_PROCESS, self) + 10);
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, kEvery, [this] { return stop_; });
      if (stop_) break;
      lock.unlock();
      // A failure (a full disk, a lock held by an admin's shell) is tried again next time;
      // what is not copied stays in the log, which is as durable.
      (void)sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      lock.lock();
    }
  }
  sqlite3* db_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

class SqliteStore : public StateStore {
 public:
  SqliteStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteStore() override {
    checkpointer_.reset();  // before the last connection closes (which checkpoints and removes the log)
    cache_.clear();
    sqlite3_close(db_);
  }

  // Hands WAL checkpoints to a thread of their own (see Checkpointer). Without one (the
  // second connection cannot be opened) SQLite's own checkpoints at commit stay on.
  void StartCheckpointer() {
    if (path_.empty() || path_ == ":memory:") return;
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
      sqlite3_close(db);
      return;
    }
    // A connection that has read nothing has not opened the log yet: its checkpoints would
    // be no-ops (the database looks as if not in WAL mode).
    if (sqlite3_exec(db, "PRAGMA busy_timeout=100; SELECT count(*) FROM sqlite_master;", nullptr, nullptr, nullptr) ==
            SQLITE_OK &&
        Exec("PRAGMA wal_autocheckpoint=0;"))
      checkpointer_ = std::make_unique<Checkpointer>(db);
    else
      sqlite3_close(db);
  }

  Result<void> Init() {
    // The loop must not wait long for a lock: another process (an admin's sqlite3 shell)
    // holding one makes a write fail with kBusy, and the caller retries on a later turn.
    // A file that is not a database fails here already (kCorrupt); damage deeper in it is
    // found by the statement that meets it, and the daemon then starts afresh.
    const char* setup = R"(
      PRAGMA busy_timeout=100;
      PRAGMA journal_mode=WAL;
      PRAGMA synchronous=NORMAL;
      PRAGMA journal_size_limit=67108864;
      PRAGMA cache_size=-32768;
      CREATE TABLE IF NOT EXISTS ban_info (
        id INTEGER PRIMARY KEY, jail TEXT NOT NULL, rule TEXT NOT NULL, account TEXT NOT NULL,
        reason TEXT NOT NULL, origin TEXT NOT NULL, UNIQUE (jail, rule, account, reason, origin));
      CREATE TABLE IF NOT EXISTS ban_history (
        id INTEGER PRIMARY KEY, target TEXT NOT NULL, info INTEGER NOT NULL, start_us INTEGER NOT NULL,
        end_us INTEGER, ended_us INTEGER, how_ended TEXT);
      CREATE INDEX IF NOT EXISTS ban_open ON ban_history(target) WHERE ended_us IS NULL;
      CREATE INDEX IF NOT EXISTS ban_lifted ON ban_history(target) WHERE how_ended = 'unban';
      CREATE TABLE IF NOT EXISTS cursors (source TEXT PRIMARY KEY, cursor TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS file_positions (
        path TEXT NOT NULL, dev INTEGER NOT NULL, ino INTEGER NOT NULL, offset INTEGER NOT NULL,
        PRIMARY KEY (path, dev, ino));
      CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY, t_us INTEGER NOT NULL, data BLOB NOT NULL);
      DROP INDEX IF EXISTS journal_t;
      CREATE TABLE IF NOT EXISTS notes (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS decisions (
        seq INTEGER PRIMARY KEY, t_us INTEGER NOT NULL, target TEXT NOT NULL, account TEXT NOT NULL, record TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS decisions_target ON decisions(target) WHERE target != '';
      CREATE INDEX IF NOT EXISTS decisions_account ON decisions(account) WHERE account != '';
      CREATE TABLE IF NOT EXISTS account_history (account TEXT PRIMARY KEY, t_us INTEGER NOT NULL, data BLOB NOT NULL);
      CREATE TABLE IF NOT EXISTS fleet_outbox (seq INTEGER PRIMARY KEY, data BLOB NOT NULL);
    )";
    if (auto r = Exec(setup); !r) return r;
    auto exists = [&](const char* table) -> Result<bool> {
      auto s = Prepare("SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?1");
      if (!s) return Fail(s.error());
      (*s)->Bind(1, std::string(table));
      bool found = (*s)->Step() == SQLITE_ROW && (*s)->Int(0) > 0;
      (*s)->Reset();
      return found;
    };
    // Version 1 kept one position per path; a path now has one per open generation.
    auto old_positions = exists("positions");
    if (!old_positions) return Fail(old_positions.error());
    if (*old_positions)
      if (auto r = Exec("INSERT OR IGNORE INTO file_positions SELECT path,dev,ino,offset FROM positions;"
                        "DROP TABLE positions;");
          !r)
        return r;
    // Versions 1 and 2 kept every ban's jail, rule, account and reason in its row; version 3
    // shares them (ban_info), which makes a botnet's million rows a fraction of the size.
    auto old_bans = exists("bans");
    if (!old_bans) return Fail(old_bans.error());
    if (*old_bans) {
      bool has_origin = false;
      auto s = Prepare("SELECT name FROM pragma_table_info('bans')");
      if (!s) return Fail(s.error());
      while ((*s)->Step() == SQLITE_ROW) has_origin = has_origin || (*s)->Text(0) == "origin";
      (*s)->Reset();
      std::string origin = has_origin ? "origin" : "CASE WHEN jail='manual' THEN 'manual' ELSE 'rule' END";
      std::string migrate =
          "BEGIN;"
          "INSERT OR IGNORE INTO ban_info(jail,rule,account,reason,origin) SELECT DISTINCT jail,rule,account,reason," +
          origin +
          " FROM bans;"
          "INSERT INTO ban_history(id,target,info,start_us,end_us,ended_us,how_ended) "
          "SELECT b.id,b.target,i.id,b.start_us,b.end_us,b.ended_us,b.how_ended FROM bans b JOIN ban_info i "
          "ON i.jail=b.jail AND i.rule=b.rule AND i.account=b.account AND i.reason=b.reason AND i.origin=" +
          (has_origin ? std::string("b.origin") : "CASE WHEN b.jail='manual' THEN 'manual' ELSE 'rule' END") +
          ";"
          "DROP TABLE bans;"
          "COMMIT;";
      if (auto r = Exec(migrate.c_str()); !r) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        return r;
      }
    }
    return Exec("PRAGMA user_version=3;");
  }

  Result<void> WriteBans(const std::vector<BanWrite>& writes) override {
    if (writes.empty()) return {};
    auto r = Transaction([&]() -> Result<void> {
      for (const BanWrite& w : writes) {
        if (w.kind == BanWrite::Kind::kSave) {
          const BanRecord& b = w.record;
          if (w.replaces) {
            auto end = Prepare("UPDATE ban_history SET ended_us=?1, how_ended='replaced' WHERE target=?2 AND ended_us IS NULL");
            if (!end) return Fail(end.error());
            (*end)->Bind(1, Us(b.start)).Bind(2, b.target.ToString());
            if (auto r = Done(**end, "saving a ban"); !r) return r;
          }
          auto info = InfoId(w);
          if (!info) return Fail(info.error());
          auto ins = Prepare("INSERT INTO ban_history(target,info,start_us,end_us) VALUES(?1,?2,?3,?4)");
          if (!ins) return Fail(ins.error());
          (*ins)->Bind(1, b.target.ToString()).Bind(2, *info).Bind(3, Us(b.start));
          if (b.end) (*ins)->Bind(4, Us(*b.end));
          else (*ins)->BindNull(4);
          if (auto r = Done(**ins, "saving a ban"); !r) return r;
        } else {
          auto s = Prepare("UPDATE ban_history SET ended_us=?1, how_ended=?2 WHERE target=?3 AND ended_us IS NULL");
          if (!s) return Fail(s.error());
          (*s)->Bind(1, Us(w.at)).Bind(2, w.how).Bind(3, w.target.ToString());
          if (auto r = Done(**s, "ending a ban"); !r) return r;
        }
      }
      return {};
    });
    // Rows of ban_info made in a transaction that was rolled back are gone: forget their ids.
    if (!r) {
      info_ids_.clear();
      last_info_id_ = 0;
      last_shared_.reset();
    }
    return r;
  }

  Result<std::vector<BanRecord>> ActiveBans(Time now) override {
    std::vector<BanRecord> out;
    auto n = EachActiveBan(now, [&](const BanRecord& b) { out.push_back(b); });
    if (!n) return Fail(n.error());
    return out;
  }

  Result<size_t> EachActiveBan(Time now, const std::function<void(const BanRecord&)>& each) override {
    auto s = Prepare(
        "SELECT h.target,i.jail,i.rule,i.account,i.reason,h.start_us,h.end_us,i.origin FROM ban_history h "
        "JOIN ban_info i ON i.id=h.info WHERE h.ended_us IS NULL AND (h.end_us IS NULL OR h.end_us > ?1) ORDER BY h.id");
    if (!s) return Fail(s.error());
    (*s)->Bind(1, Us(now));
    int rc;
    size_t n = 0;
    BanRecord b;  // one reused: its strings keep their buffers from row to row
    while ((rc = (*s)->Step()) == SQLITE_ROW) {
      auto p = Prefix::Parse((*s)->Text(0));
      if (!p) continue;
      b.target = *p;
      b.jail = (*s)->Text(1);
      b.rule = (*s)->Text(2);
      b.account = (*s)->Text(3);
      b.reason = (*s)->Text(4);
      b.start = FromUs((*s)->Int(5));
      b.end = (*s)->Null(6) ? std::nullopt : std::optional<Time>(FromUs((*s)->Int(6)));
      b.origin = (*s)->Text(7);
      each(b);
      ++n;
    }
    (*s)->Reset();
    if (rc != SQLITE_DONE) return Error(rc, "reading active bans");
    return n;
  }

  Result<std::vector<Prefix>> LiftedTargets() override {
    std::vector<Prefix> out;
    // Lifted by hand, and not banned since (an active ban would be in ban_open).
    auto s = Prepare(
        "SELECT DISTINCT target FROM ban_history WHERE how_ended='unban' "
        "AND target NOT IN (SELECT target FROM ban_history WHERE ended_us IS NULL)");
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
    // Newest first, until the rows are older than `since` (rows are written in the order
    // the bans were made, give or take a loop turn): no scan of years of history.
    auto s = Prepare(
        "SELECT h.target,h.start_us,i.origin FROM ban_history h JOIN ban_info i ON i.id=h.info ORDER BY h.id DESC");
    if (!s) return Fail(s.error());
    int rc;
    int64_t older_in_a_row = 0;
    while ((rc = (*s)->Step()) == SQLITE_ROW) {
      if ((*s)->Int(1) < Us(since)) {
        if (++older_in_a_row > 10000) break;
        continue;
      }
      older_in_a_row = 0;
      if ((*s)->Text(2) != "rule") continue;
      if (auto p = Prefix::Parse((*s)->Text(0))) out.emplace_back(*p, FromUs((*s)->Int(1)));
    }
    (*s)->Reset();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return Error(rc, "reading offences");
    std::reverse(out.begin(), out.end());
    return out;
  }

  Result<void> Checkpoint(const JournalBatch& records, const Progress& progress) override {
    if (records.empty() && progress.files.empty() && progress.cursors.empty()) return {};
    return Transaction([&]() -> Result<void> {
      for (size_t i = 0; i < records.size(); ++i) {
        auto s = Prepare("INSERT INTO journal(t_us,data) VALUES(?1,?2)");
        if (!s) return Fail(s.error());
        (*s)->Bind(1, Us(records.time(i)));
        std::string_view data = records.data(i);
        sqlite3_bind_blob((*s)->get(), 2, data.data(), static_cast<int>(data.size()), SQLITE_STATIC);
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
      // Records are written in time order (nearly: several logs), so the oldest are at the
      // start of the sequence; those of them older than `before` go. When the very first is
      // not old (a burst's records are minutes old for a day) nothing is looked at: the scan
      // of `limit` records held the daemon's loop for 40-90 ms every five seconds.
      auto first = Prepare("SELECT t_us FROM journal ORDER BY seq LIMIT 1");
      if (!first) return Fail(first.error());
      bool any_old = (*first)->Step() == SQLITE_ROW && (*first)->Int(0) < Us(before);
      (*first)->Reset();
      if (any_old) {
        auto old = Prepare(
            "DELETE FROM journal WHERE seq IN (SELECT seq FROM (SELECT seq, t_us FROM journal ORDER BY seq LIMIT ?2) "
            "WHERE t_us < ?1)");
        if (!old) return Fail(old.error());
        (*old)->Bind(1, Us(before)).Bind(2, static_cast<int64_t>(limit));
        if (auto d = Done(**old, "pruning the journal"); !d) return d;
        gone += static_cast<size_t>(sqlite3_changes(db_));
      }
      // Beyond `keep` records the oldest go too: a flood must not make the journal (and the
      // replay at start) grow without bound. Records are only ever deleted from the oldest
      // end, so the span of sequence numbers is their count (and costs no scan: max and
      // min in two queries, since SQLite reads one of them off the index only when alone,
      // and scanned the whole journal for both at once).
      auto over = Prepare(
          "DELETE FROM journal WHERE seq IN (SELECT seq FROM journal ORDER BY seq LIMIT "
          "max(0, min(?2, (SELECT max(seq) FROM journal) - (SELECT min(seq) FROM journal) + 1 - ?1)))");
      if (!over) return Fail(over.error());
      (*over)->Bind(1, static_cast<int64_t>(keep)).Bind(2, static_cast<int64_t>(limit));
      if (auto d = Done(**over, "pruning the journal"); !d) return d;
      gone += static_cast<size_t>(sqlite3_changes(db_));
      return {};
    });
    if (!r) return Fail(r.error());
    return gone;
  }

  Result<void> SaveDecisions(const std::vector<DecisionRow>& rows, size_t keep) override {
    if (rows.empty()) return {};
    return Transaction([&]() -> Result<void> {
      for (const auto& d : rows) {
        auto s = Prepare("INSERT INTO decisions(t_us,target,account,record) VALUES(?1,?2,?3,?4)");
        if (!s) return Fail(s.error());
        std::string whole;
        if (d.tail) whole = d.Whole();
        (*s)->Bind(1, Us(d.time)).Bind(2, d.target).Bind(3, d.account).Bind(4, d.tail ? whole : d.record);
        if (auto r = Done(**s, "saving decisions"); !r) return r;
      }
      // Deleted only from the oldest end: the span of sequence numbers is the count.
      auto over = Prepare("DELETE FROM decisions WHERE seq < (SELECT max(seq) FROM decisions) - ?1 + 1");
      if (!over) return Fail(over.error());
      (*over)->Bind(1, static_cast<int64_t>(keep));
      return Done(**over, "pruning decisions");
    });
  }

  Result<std::vector<DecisionRow>> FindDecisions(const std::vector<std::string>& targets, const std::string& account,
                                                 size_t limit) override {
    std::vector<DecisionRow> out;
    auto read = [&](const char* sql, const std::string& key) -> Result<void> {
      auto s = Prepare(sql);
      if (!s) return Fail(s.error());
      (*s)->Bind(1, key).Bind(2, static_cast<int64_t>(limit));
      int rc;
      while ((rc = (*s)->Step()) == SQLITE_ROW)
        out.push_back(DecisionRow{FromUs((*s)->Int(0)), (*s)->Text(1), (*s)->Text(2), (*s)->Text(3)});
      (*s)->Reset();
      if (rc != SQLITE_DONE) return Error(rc, "reading decisions");
      return {};
    };
    for (const auto& t : targets)
      if (!t.empty())
        if (auto r = read("SELECT t_us,target,account,record FROM decisions WHERE target=?1 ORDER BY seq DESC LIMIT ?2", t); !r)
          return Fail(r.error());
    if (!account.empty())
      if (auto r = read("SELECT t_us,target,account,record FROM decisions WHERE account=?1 ORDER BY seq DESC LIMIT ?2", account);
          !r)
        return Fail(r.error());
    std::stable_sort(out.begin(), out.end(), [](const DecisionRow& a, const DecisionRow& b) { return a.time > b.time; });
    // A ban found by its target and by its account is one decision.
    out.erase(std::unique(out.begin(), out.end(),
                          [](const DecisionRow& a, const DecisionRow& b) { return a.record == b.record; }),
              out.end());
    if (out.size() > limit) out.resize(limit);
    return out;
  }

  Result<void> SaveAccountHistory(const std::vector<std::pair<std::string, std::string>>& rows, Time now,
                                  Time forget_before) override {
    return Transaction([&]() -> Result<void> {
      for (const auto& [account, data] : rows) {
        auto s = Prepare("INSERT OR REPLACE INTO account_history(account,t_us,data) VALUES(?1,?2,?3)");
        if (!s) return Fail(s.error());
        (*s)->Bind(1, account).Bind(2, Us(now));
        sqlite3_bind_blob((*s)->get(), 3, data.data(), static_cast<int>(data.size()), SQLITE_STATIC);
        if (auto r = Done(**s, "saving account history"); !r) return r;
      }
      auto old = Prepare("DELETE FROM account_history WHERE t_us < ?1");
      if (!old) return Fail(old.error());
      (*old)->Bind(1, Us(forget_before));
      return Done(**old, "pruning account history");
    });
  }

  Result<std::vector<std::pair<std::string, std::string>>> LoadAccountHistory() override {
    std::vector<std::pair<std::string, std::string>> out;
    auto s = Prepare("SELECT account,data FROM account_history");
    if (!s) return Fail(s.error());
    int rc;
    while ((rc = (*s)->Step()) == SQLITE_ROW) {
      const void* blob = sqlite3_column_blob((*s)->get(), 1);
      int n = sqlite3_column_bytes((*s)->get(), 1);
      out.emplace_back((*s)->Text(0), std::string(static_cast<const char*>(blob), static_cast<size_t>(n)));
    }
    (*s)->Reset();
    if (rc != SQLITE_DONE) return Error(rc, "reading account history");
    return out;
  }

  Result<void> SaveOutbox(const std::vector<std::pair<uint64_t, std::string>>& add, const std::vector<uint64_t>& remove,
                          size_t keep) override {
    return Transaction([&]() -> Result<void> {
      for (const auto& [seq, data] : add) {
        auto s = Prepare("INSERT OR REPLACE INTO fleet_outbox(seq,data) VALUES(?1,?2)");
        if (!s) return Fail(s.error());
        (*s)->Bind(1, static_cast<int64_t>(seq));
        sqlite3_bind_blob((*s)->get(), 2, data.data(), static_cast<int>(data.size()), SQLITE_STATIC);
        if (auto r = Done(**s, "saving the fleet outbox"); !r) return r;
      }
      for (uint64_t seq : remove) {
        auto s = Prepare("DELETE FROM fleet_outbox WHERE seq=?1");
        if (!s) return Fail(s.error());
        (*s)->Bind(1, static_cast<int64_t>(seq));
        if (auto r = Done(**s, "removing sent events from the fleet outbox"); !r) return r;
      }
      auto over = Prepare(
          "DELETE FROM fleet_outbox WHERE seq IN (SELECT seq FROM fleet_outbox ORDER BY seq DESC LIMIT -1 OFFSET ?1)");
      if (!over) return Fail(over.error());
      (*over)->Bind(1, static_cast<int64_t>(keep));
      return Done(**over, "bounding the fleet outbox");
    });
  }

  Result<std::vector<std::pair<uint64_t, std::string>>> LoadOutbox() override {
    std::vector<std::pair<uint64_t, std::string>> out;
    auto s = Prepare("SELECT seq,data FROM fleet_outbox ORDER BY seq");
    if (!s) return Fail(s.error());
    int rc;
    while ((rc = (*s)->Step()) == SQLITE_ROW) {
      const void* blob = sqlite3_column_blob((*s)->get(), 1);
      int n = sqlite3_column_bytes((*s)->get(), 1);
      out.emplace_back(static_cast<uint64_t>((*s)->Int(0)),
                       std::string(static_cast<const char*>(blob), static_cast<size_t>(n)));
    }
    (*s)->Reset();
    if (rc != SQLITE_DONE) return Error(rc, "reading the fleet outbox");
    return out;
  }

  Result<std::optional<std::string>> GetNote(const std::string& key) override {
    auto s = Prepare("SELECT value FROM notes WHERE key=?1");
    if (!s) return Fail(s.error());
    (*s)->Bind(1, key);
    std::optional<std::string> out;
    int rc = (*s)->Step();
    if (rc == SQLITE_ROW) out = (*s)->Text(0);
    (*s)->Reset();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error(rc, "reading note " + key);
    return out;
  }

  Result<void> SetNote(const std::string& key, const std::optional<std::string>& value) override {
    auto s = Prepare(value ? "INSERT OR REPLACE INTO notes(key,value) VALUES(?1,?2)" : "DELETE FROM notes WHERE key=?1");
    if (!s) return Fail(s.error());
    (*s)->Bind(1, key);
    if (value) (*s)->Bind(2, *value);
    return Done(**s, "writing note " + key);
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
  // The id of the ban_info row of b's jail, rule, account, reason and origin (made if new).
  Result<int64_t> InfoId(const BanWrite& w) {
    // A verdict's bans share their values (most often one BanInfo, kept alive here so its
    // address is never another's): a botnet's million bans look up one row, and build no
    // key for it.
    if (last_info_id_ && w.info && w.info == last_shared_) return last_info_id_;
    BanInfo own;
    if (!w.info) own = {w.record.jail, w.record.rule, w.record.account, w.record.reason, w.record.origin};
    const BanInfo& b = w.info ? *w.info : own;
    if (last_info_id_ && b.jail == last_info_[0] && b.rule == last_info_[1] && b.account == last_info_[2] &&
        b.reason == last_info_[3] && b.origin == last_info_[4]) {
      last_shared_ = w.info;
      return last_info_id_;
    }
    auto id = LookUpInfoId(b);
    if (id) {
      last_info_ = {b.jail, b.rule, b.account, b.reason, b.origin};
      last_info_id_ = *id;
      last_shared_ = w.info;
    }
    return id;
  }
  Result<int64_t> LookUpInfoId(const BanInfo& b) {
    std::string key = b.jail + '\0' + b.rule + '\0' + b.account + '\0' + b.reason + '\0' + b.origin;
    if (auto it = info_ids_.find(key); it != info_ids_.end()) return it->second;
    auto ins = Prepare("INSERT OR IGNORE INTO ban_info(jail,rule,account,reason,origin) VALUES(?1,?2,?3,?4,?5)");
    if (!ins) return Fail(ins.error());
    (*ins)->Bind(1, b.jail).Bind(2, b.rule).Bind(3, b.account).Bind(4, b.reason).Bind(5, b.origin);
    if (auto r = Done(**ins, "saving a ban"); !r) return Fail(r.error());
    auto sel = Prepare("SELECT id FROM ban_info WHERE jail=?1 AND rule=?2 AND account=?3 AND reason=?4 AND origin=?5");
    if (!sel) return Fail(sel.error());
    (*sel)->Bind(1, b.jail).Bind(2, b.rule).Bind(3, b.account).Bind(4, b.reason).Bind(5, b.origin);
    int rc = (*sel)->Step();
    int64_t id = rc == SQLITE_ROW ? (*sel)->Int(0) : 0;
    (*sel)->Reset();
    if (rc != SQLITE_ROW) return Error(rc, "saving a ban");
    if (info_ids_.size() > 100000) info_ids_.clear();
    info_ids_.emplace(std::move(key), id);
    return id;
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
  std::unique_ptr<Checkpointer> checkpointer_;
  std::map<const char*, std::unique_ptr<Stmt>> cache_;  // by the SQL literal's address
  std::unordered_map<std::string, int64_t> info_ids_;    // ban_info ids by their values
  std::array<std::string, 5> last_info_;                 // the values InfoId found last ...
  std::shared_ptr<const BanInfo> last_shared_;           // ... given as this (if shared) ...
  int64_t last_info_id_ = 0;                             // ... and their id (0: none)
};

}  // namespace

Result<std::unique_ptr<StateStore>> OpenSqliteStore(const std::string& path) {
  // SQLite counts its memory under a global mutex by default: every allocation of a row
  // written took and gave it, 9% of the store writer's time in a botnet's burst. Nothing
  // here reads those counts. Only possible before SQLite starts (later it is refused,
  // harmlessly: the counting stays on).
  static const bool configured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
  (void)configured;
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string e = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Fail(Error{path + ": cannot open state database: " + e, {}, KindOf(rc)});
  }
  auto store = std::make_unique<SqliteStore>(db, path);
  if (auto r = store->Init(); !r) return Fail(r.error());
  store->StartCheckpointer();
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
