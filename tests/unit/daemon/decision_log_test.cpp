// The decision log on real files: appended a line per record, reopened after logrotate moves
// it, and a path that cannot be written keeps records (bounded) until it can.
#include "daemon/decision_log.hpp"
#include "relayban/state/state_store.hpp"

#include <catch2/catch.hpp>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

using namespace relayban;

namespace {

std::string Read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Dir {
  std::filesystem::path path;
  Dir() {
    static int n = 0;
    path = std::filesystem::temp_directory_path() / ("relayban-decisions-" + std::to_string(getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(path);
  }
  ~Dir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("records are appended one a line, in a file created 0640 with its folder") {
  Dir d;
  std::vector<std::string> logged;
  DecisionLog log([&](int, const std::string& m) { logged.push_back(m); });
  auto file = d.path / "sub" / "decisions.log";
  log.SetPath(file.string());
  log.Add(R"({"action":"ban"})");
  log.Add(R"({"action":"unban"})");
  CHECK(Read(file).empty());  // buffered until the turn ends
  log.Flush();
  CHECK(Read(file) == "{\"action\":\"ban\"}\n{\"action\":\"unban\"}\n");
  CHECK((std::filesystem::status(file).permissions() & std::filesystem::perms::others_read) == std::filesystem::perms::none);
  CHECK(log.stats().lines == 2);
  CHECK(logged.empty());
}

TEST_CASE("after logrotate moves the file away, the next tick starts a new one") {
  Dir d;
  DecisionLog log([](int, const std::string&) {});
  auto file = d.path / "decisions.log";
  log.SetPath(file.string());
  log.Add("1");
  log.Flush();
  std::filesystem::rename(file, d.path / "decisions.log.1");
  log.Add("2");  // queued before the tick notices: goes to the file it was meant for
  log.Tick();
  log.Add("3");
  log.Flush();
  CHECK(Read(d.path / "decisions.log.1") == "1\n2\n");
  CHECK(Read(file) == "3\n");
  CHECK(log.stats().reopened == 1);
}

TEST_CASE("a path that cannot be opened is logged once, records wait, and are written once it can") {
  Dir d;
  std::vector<std::string> logged;
  DecisionLog log([&](int, const std::string& m) { logged.push_back(m); });
  std::filesystem::create_directories(d.path);
  auto file = d.path / "decisions.log";
  std::filesystem::create_directory(file);  // a folder where the file should be
  log.SetPath(file.string());
  log.Add("a");
  log.Flush();
  log.Tick();
  log.Flush();
  CHECK(log.stats().errors >= 1);
  CHECK(logged.size() == 1);
  CHECK(log.buffered() == 2);
  std::filesystem::remove(file);
  log.Tick();
  CHECK(Read(file) == "a\n");
  CHECK(log.buffered() == 0);
}

TEST_CASE("past its bound, records are dropped and counted, never held without limit") {
  Dir d;
  DecisionLog log([](int, const std::string&) {});
  std::filesystem::create_directories(d.path / "decisions.log");
  log.SetPath((d.path / "decisions.log").string());
  std::string big(1 << 20, 'x');
  for (int i = 0; i < 20; ++i) log.Add(big);
  CHECK(log.buffered() <= DecisionLog::kMaxBuffered);
  CHECK(log.stats().dropped >= 4);
}

TEST_CASE("a record written field by field reads as the ordered json object of the same fields") {
  const std::string hostile = "user\"\\\n\x01\xFF\xC3\xBC\x1b[31m";
  DecisionRecord w;
  w.Str("time", "2026-12-01T10:00:00Z").Str("action", "ban").Str("target", "203.0.113.7").StrOrNull("account", "")
      .Str("reason", hostile).Int("duration_s", 3600).Int("negative", -5).Raw("evidence", "[]");
  std::string text = w.Take();
  nlohmann::ordered_json j{{"time", "2026-12-01T10:00:00Z"}, {"action", "ban"}, {"target", "203.0.113.7"},
                           {"account", nullptr}, {"reason", hostile}, {"duration_s", 3600}, {"negative", -5},
                           {"evidence", nlohmann::ordered_json::array()}};
  CHECK(text == j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
  auto back = nlohmann::json::parse(text);
  CHECK(back["account"].is_null());
  CHECK(back["duration_s"] == 3600);
  CHECK(DecisionRecord().Take() == "{}");
  CHECK(DecisionRecord().StrOrNull("account", "a@b").Take() == "{\"account\":\"a@b\"}");
}

TEST_CASE("a record in two parts, its head and a shared rest, reads as the whole record, in the log and in a row") {
  const std::string hostile = "acct\"}{\n";
  std::string whole =
      DecisionRecord().Str("time", "t1").Str("action", "ban").Str("target", "203.0.113.7").Str("jail", "j")
          .Str("account", hostile).Int("duration_s", 60).Take();
  DecisionRecord rest;
  rest.Str("jail", "j").Str("account", hostile).Int("duration_s", 60);
  auto shared = std::make_shared<const std::string>(rest.TakeTail());
  DecisionRecord head;
  head.Reuse(std::string(500, 'x'));  // a used buffer: its old bytes do not show
  head.Str("time", "t1").Str("action", "ban").Str("target", "203.0.113.7");
  CHECK(head.Head() + *shared == whole);
  DecisionRow row{Time{}, "203.0.113.7", hostile, head.Head(), shared};
  CHECK(row.Whole() == whole);
  CHECK(row.size() == whole.size());
  CHECK(nlohmann::json::parse(row.Whole())["account"] == hostile);
  CHECK(DecisionRecord().TakeTail() == "}");
  std::string taken = head.TakeBuffer();
  CHECK(taken.capacity() >= 500);  // the buffer came back for the next record

  Dir d;
  DecisionLog log([](int, const std::string&) {});
  auto file = d.path / "decisions.log";
  log.SetPath(file.string());
  log.Add("{\"a\":1", ",\"b\":2}");
  log.Add(whole);
  log.Flush();
  CHECK(Read(file) == "{\"a\":1,\"b\":2}\n" + whole + "\n");
}

TEST_CASE("with a thread of its own, records are written there in order, one write at a time, and all by Drain") {
  Dir d;
  std::vector<std::string> logged;
  DecisionLog log([&](int, const std::string& m) { logged.push_back(m); }, true);
  REQUIRE(log.fd() >= 0);
  auto file = d.path / "decisions.log";
  log.SetPath(file.string());
  std::string want;
  for (int i = 0; i < 2000; ++i) {
    std::string r = R"({"n":)" + std::to_string(i) + "}";
    log.Add(r);
    want += r + "\n";
    if (i % 100 == 99) log.Flush();  // a turn's end: handed over unless a write is on its way
  }
  log.Drain();
  CHECK(Read(file) == want);
  CHECK(log.buffered() == 0);
  CHECK(log.stats().lines == 2000);
  // Rotated: what was queued before the tick goes to the old file, after it to the new one.
  log.Add("before");
  log.Flush();
  std::filesystem::rename(file, d.path / "decisions.log.1");
  log.Add("queued");
  log.Tick();
  log.Add("after");
  log.Drain();
  CHECK(Read(d.path / "decisions.log.1") == want + "before\nqueued\n");
  CHECK(Read(file) == "after\n");
  CHECK(logged.empty());
}

TEST_CASE("with a thread of its own, a write the disk refuses is logged and its records are written later") {
  Dir d;
  std::vector<std::string> logged;
  DecisionLog log([&](int, const std::string& m) { logged.push_back(m); }, true);
  auto file = d.path / "decisions.log";
  log.SetPath(file.string());
  // The file may not grow past 8 bytes (the signal ignored: a write fails with EFBIG, as a
  // full disk's with ENOSPC).
  rlimit old{};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 8;
  REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
  log.Add("1234567");
  log.Add("abc");
  log.Flush();  // one write on the log's thread: the first record fits, the second does not
  pollfd p{log.fd(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 10000) == 1);  // its outcome is in
  log.Poll();
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, old_handler);
  CHECK(log.stats().errors == 1);
  CHECK(log.buffered() == 4);  // "abc" kept
  REQUIRE(logged.size() == 1);
  CHECK(logged[0] == "decision log " + file.string() + ": File too large (decisions are kept in memory and retried)");
  log.Drain();
  CHECK(Read(file) == "1234567\nabc\n");
  CHECK(log.buffered() == 0);
}
