// The daemon wired to fakes - firewall, state store, clock, spawner - with a real log file
// and a real control socket in a temporary folder: its failure paths, turn by turn.
#include "daemon/daemon.hpp"

#include <catch2/catch.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "fakes/fake_clock.hpp"
#include "fakes/fake_firewall.hpp"
#include "fakes/fake_spawner.hpp"
#include "fakes/fake_state_store.hpp"
#include "journal_files.hpp"
#include "skip.hpp"

using namespace relayban;
using nlohmann::json;

namespace {

std::string Iso(Time t) {
  std::string s = FormatIso8601(t);  // ...Z
  return s;
}

struct Rig {
  std::filesystem::path dir;
  testing::FakeFirewall* fw;
  testing::FakeStateStore* store;
  testing::FakeClock* clock;
  testing::FakeSpawner* spawner;
  std::vector<std::string> logs, notes;
  std::unique_ptr<Daemon> daemon;

  // `threads`: the store's writes and the kernel's slices on threads of their own, as
  // RunDaemon runs them (then the fakes are read only while the daemon says both settled).
  explicit Rig(const std::string& extra_rules = "", bool threads = false, size_t decisions_kept = 50000) {
    static int n = 0;
    dir = std::filesystem::temp_directory_path() / ("relayban-daemon-" + std::to_string(getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir / "log");
    std::ofstream(dir / "log" / "mail.log").close();
    std::ofstream(dir / "relayban.yaml") << "state_dir: " << (dir / "state").string() << "\n"
                                          << "control_socket: " << (dir / "control.sock").string() << "\n"
                                          << R"(ignore: [192.0.2.0/24]
filters:
  t:
    patterns:
      - {event: auth_failure, regex: 'fail user=(?P<account>\S*) ip={ip}$'}
jails:
  j:
    enabled: true
    logs: [)" << (dir / "log" / "mail.log").string()
                                          << R"(]
    filters: [t]
    on_ban: [/usr/local/bin/notify, "{ip}"]
    rules:
      - {name: brute, key: ip, events: [auth_failure], threshold: 3, window: 10m, ban: 1h}
)" << extra_rules;
    auto fw_ = std::make_unique<testing::FakeFirewall>();
    auto store_ = std::make_unique<testing::FakeStateStore>();
    auto clock_ = std::make_unique<testing::FakeClock>(Time(Seconds(1795000000)));
    auto spawner_ = std::make_unique<testing::FakeSpawner>();
    fw = fw_.get();
    store = store_.get();
    clock = clock_.get();
    spawner = spawner_.get();
    DaemonParts parts;
    parts.firewall = std::move(fw_);
    parts.store = std::move(store_);
    parts.clock = std::move(clock_);
    parts.spawner = std::move(spawner_);
    parts.notify = [this](const std::string& s) { notes.push_back(s); };
    parts.log = [this](int, const std::string& m) { logs.push_back(m); };
    parts.store_thread = parts.kernel_thread = threads;
    DaemonOptions o;
    o.config = (dir / "relayban.yaml").string();
    o.handle_signals = false;
    o.decisions_kept = decisions_kept;
    daemon = std::make_unique<Daemon>(o, std::move(parts));
  }
  ~Rig() {
    daemon.reset();
    std::filesystem::remove_all(dir);
  }
  void Append(const std::string& text) {
    std::ofstream f(dir / "log" / "mail.log", std::ios::app);
    f << text;
  }
  void Failures(const std::string& ip, int count) {
    for (int i = 0; i < count; ++i) Append(Iso(clock->Now()) + " fail user=u" + std::to_string(i) + " ip=" + ip + "\n");
  }
  // Turns until `done` (a generous bound; nothing is timed).
  template <class F>
  bool TurnUntil(F done, int turns = 2000) {
    for (int i = 0; i < turns && !done(); ++i) daemon->Turn(5);
    return done();
  }
  // A command's whole answer.
  std::vector<json> Ask(const std::string& request) {
    std::vector<json> lines;
    bool done = false;
    daemon->Command(request, [&](std::string_view l) {
      lines.push_back(json::parse(l));
      done = done || lines.back().contains("ok");
    });
    TurnUntil([&] { return done; });
    return lines;
  }
  json Status() { return Ask(R"({"cmd":"status"})").back(); }
  bool Logged(const std::string& part) const {
    return std::any_of(logs.begin(), logs.end(), [&](const std::string& l) { return l.find(part) != std::string::npos; });
  }
};

}  // namespace

TEST_CASE("lines appended to a log are banned through the ledger into the firewall, and the hook runs") {
  Rig r;
  REQUIRE(r.daemon->Start() == 0);
  CHECK(r.notes == std::vector<std::string>{"READY=1"});
  r.Failures("203.0.113.5", 3);
  REQUIRE(r.TurnUntil([&] { return r.fw->Has("203.0.113.5"); }));
  CHECK(r.fw->bans[*Prefix::Parse("203.0.113.5")] == Seconds(3600));
  REQUIRE(r.TurnUntil([&] { return r.store->Active("203.0.113.5") == 1; }));
  REQUIRE(r.spawner->started.size() == 1);
  CHECK(r.spawner->started[0] == std::vector<std::string>{"/usr/local/bin/notify", "203.0.113.5"});
  CHECK(r.Logged("ban 203.0.113.5 for 1h jail=j rule=brute"));
  auto s = r.Status();
  CHECK(s["health"] == "ok");
  CHECK(s["bans"] == 1);
  CHECK(s["jails"][0]["bans"] == 1);
}

TEST_CASE("a refusing firewall makes the daemon degraded, logged once, the bans arrive when it works again") {
  Rig r;
  REQUIRE(r.daemon->Start() == 0);
  r.fw->fail_all = true;
  r.fw->failure = Error{"Operation not permitted", {}, ErrorKind::kPermission};
  r.Failures("203.0.113.6", 3);
  REQUIRE(r.TurnUntil([&] { return r.fw->apply_calls > 0; }));
  auto s = r.Status();
  CHECK(s["health"] == "degraded: firewall: Operation not permitted");
  CHECK(s["bans"] == 1);  // banned in relayban, owed to the kernel
  CHECK(s["backlog"]["kernel"] == 1);
  for (int i = 0; i < 5; ++i) {
    r.clock->Advance(Seconds(1));
    r.daemon->Tick();
    r.daemon->Turn(0);
  }
  CHECK(std::count_if(r.logs.begin(), r.logs.end(), [](const std::string& l) { return l.find("firewall: Operation not permitted") == 0; }) == 1);
  r.fw->fail_all = false;
  r.clock->Advance(Seconds(30));
  REQUIRE(r.TurnUntil([&] { return r.fw->Has("203.0.113.6"); }));
  CHECK(r.Status()["health"] == "ok");
}

TEST_CASE("a full state disk is shown and logged, bans still reach the kernel and are written later") {
  Rig r;
  REQUIRE(r.daemon->Start() == 0);
  r.store->fail_writes = true;
  r.Failures("203.0.113.7", 3);
  REQUIRE(r.TurnUntil([&] { return r.fw->Has("203.0.113.7"); }));
  r.clock->Advance(Seconds(1));
  r.daemon->Tick();
  CHECK(r.Status()["health"] == "degraded: state database: database or disk is full");
  CHECK(r.Logged("state database: database or disk is full (retrying)"));
  r.store->fail_writes = false;
  r.clock->Advance(Seconds(30));
  r.daemon->Tick();
  REQUIRE(r.TurnUntil([&] { return r.store->Active("203.0.113.7") == 1; }));
  CHECK(r.Status()["health"] == "ok");
}

TEST_CASE("a hook that hangs is killed with its group at the time limit, and the daemon goes on") {
  Rig r;
  REQUIRE(r.daemon->Start() == 0);
  r.Failures("203.0.113.8", 3);
  REQUIRE(r.TurnUntil([&] { return r.spawner->started.size() == 1; }));
  r.clock->Advance(Seconds(11));
  r.daemon->Tick();
  CHECK(r.spawner->killed.size() == 1);
  CHECK(r.Status()["hooks"]["killed"] == 1);
}

TEST_CASE("a burst of bans reaches the kernel in slices while status answers at once") {
  Rig r;
  REQUIRE(r.daemon->Start() == 0);
  std::string burst;
  for (uint32_t i = 0; i < 30000; ++i) {
    std::string ip = IpAddress::V4(0x0B000000u + i).ToString();
    for (int k = 0; k < 3; ++k) burst += Iso(r.clock->Now()) + " fail user=x ip=" + ip + "\n";
  }
  r.Append(burst);
  // Status is answered from within the same turn, whatever the backlog.
  bool saw_backlog = false;
  for (int i = 0; i < 200 && r.fw->bans.size() < 30000; ++i) {
    r.daemon->Turn(0);
    std::optional<json> s;
    r.daemon->Command(R"({"cmd":"status"})", [&](std::string_view l) { s = json::parse(l); });
    REQUIRE(s);  // no turn needed
    saw_backlog = saw_backlog || (*s)["backlog"]["kernel"].get<size_t>() > 0 || (*s)["backlog"]["lines"].get<bool>();
    for (const auto& call : r.fw->applied) REQUIRE(call.size() <= 20000);
  }
  CHECK(r.fw->bans.size() == 30000);
  CHECK(saw_backlog);
  CHECK(r.fw->applied.size() >= 2);
}

TEST_CASE("with the kernel's slices and the store's writes on threads of their own, a burst is banned and saved") {
  Rig r("", true);
  REQUIRE(r.daemon->Start() == 0);
  std::string burst;
  for (uint32_t i = 0; i < 3000; ++i) {
    std::string ip = IpAddress::V4(0x0B000000u + i).ToString();
    for (int k = 0; k < 3; ++k) burst += Iso(r.clock->Now()) + " fail user=x ip=" + ip + "\n";
  }
  r.Append(burst);
  auto settled = [&] {
    json s = r.Status();
    return s["bans"] == 3000 && s["backlog"]["kernel"] == 0 && s["backlog"]["state_database"] == 0 &&
           !s["backlog"]["lines"].get<bool>();
  };
  REQUIRE(r.TurnUntil(settled, 100000));
  // Both threads are idle now, and their outcomes were taken on this one.
  CHECK(r.fw->bans.size() == 3000);
  CHECK(r.store->rows.size() == 3000);
  // By hand: answered once the kernel holds the change, which the kernel's thread made.
  auto ban = r.Ask(R"({"cmd":"ban","target":"198.51.100.7","for":"10m","reason":"web log"})");
  CHECK(ban.back()["ok"] == true);
  CHECK(r.fw->Has("198.51.100.7"));
  CHECK(r.Ask(R"({"cmd":"unban","target":"198.51.100.7"})").back()["ok"] == true);
  CHECK_FALSE(r.fw->Has("198.51.100.7"));
  CHECK(r.Ask(R"({"cmd":"unban","all":true})").back()["ok"] == true);
  CHECK(r.fw->bans.empty());
  CHECK(r.Status()["bans"] == 0);
}

TEST_CASE("ban and unban by hand answer once the kernel holds the change, and say so when it refuses") {
  Rig r;
  REQUIRE(r.daemon->Start() == 0);
  auto ban = r.Ask(R"({"cmd":"ban","target":"198.51.100.7","for":"10m","reason":"web log"})");
  CHECK(ban.back()["ok"] == true);
  CHECK(r.fw->Has("198.51.100.7"));  // already there when the answer came
  CHECK(r.Ask(R"({"cmd":"ban","target":"192.0.2.9"})").back()["error"] ==
        "192.0.2.9 is in the ignore list (or loopback); use --force to ban it anyway");
  r.fw->fail_all = true;
  auto refused = r.Ask(R"({"cmd":"ban","target":"198.51.100.8"})");
  CHECK(refused.back()["error"].get<std::string>().find("banned in relayban, but the firewall refused it") == 0);
  CHECK_FALSE(r.fw->Has("198.51.100.8"));
  auto unban = r.Ask(R"({"cmd":"unban","target":"198.51.100.7"})");
  CHECK(unban.back()["ok"] == false);
  CHECK(unban.back()["error"].get<std::string>().find("lifted in relayban, but the firewall refused the removal") == 0);
  CHECK(r.fw->Has("198.51.100.7"));
  r.fw->fail_all = false;
  r.clock->Advance(Seconds(2));
  REQUIRE(r.TurnUntil([&] { return !r.fw->Has("198.51.100.7"); }));  // retried until it holds
  REQUIRE(r.TurnUntil([&] { return r.fw->Has("198.51.100.8"); }));
  auto list = r.Ask(R"({"cmd":"list"})");
  CHECK(list.back()["count"] == 1);
}

TEST_CASE("list streams every ban, one a line, and ends with the count") {
  Rig r;
  REQUIRE(r.daemon->Start() == 0);
  for (int i = 1; i <= 5000; ++i) r.Ask(R"({"cmd":"ban","target":")" + IpAddress::V4(0x0C000000u + static_cast<uint32_t>(i)).ToString() + R"("})");
  auto list = r.Ask(R"({"cmd":"list"})");
  REQUIRE(list.size() == 5001);
  CHECK(list[0]["ban"]["rule"] == "manual");
  CHECK(list[0]["ban"]["origin"] == "manual");
  CHECK(list[0]["ban"]["remaining_s"] == 3600);
  CHECK(list.back()["count"] == 5000);
}

TEST_CASE("a reload with a bad file keeps the running configuration and names the errors") {
  Rig r;
  REQUIRE(r.daemon->Start() == 0);
  std::ofstream(r.dir / "relayban.yaml", std::ios::app) << "bogus_key: 1\n";
  auto answer = r.Ask(R"({"cmd":"reload"})");
  CHECK(answer.back()["ok"] == false);
  CHECK(answer.back()["errors"][0].get<std::string>().find("unknown key 'bogus_key'") != std::string::npos);
  r.Failures("203.0.113.9", 3);
  CHECK(r.TurnUntil([&] { return r.fw->Has("203.0.113.9"); }));
}

TEST_CASE("escalation counts the store's history and the restored ban each once, and goes on across a reload") {
  Rig r;
  Time now = r.clock->Now();
  Prefix earlier = *Prefix::Parse("203.0.113.9"), running = *Prefix::Parse("203.0.113.8");
  // .9 was banned yesterday for an hour; .8's ban began 10 minutes ago and runs 50 more.
  r.store->rows.push_back({BanRecord{earlier, "j", "brute", "", "brute", now - Seconds(86400), now - Seconds(86400 - 3600)},
                           now - Seconds(86400 - 3600), "expired"});
  r.store->rows.push_back({BanRecord{running, "j", "brute", "", "brute", now - Seconds(600), now + Seconds(3000)},
                           std::nullopt, ""});
  REQUIRE(r.daemon->Start() == 0);
  auto last_duration = [&](const std::string& ip) {
    const auto* row = r.store->Last(ip);
    return row && row->record.end ? std::chrono::duration_cast<Seconds>(*row->record.end - row->record.start).count()
                                  : int64_t{-1};
  };
  auto banned_since = [&](const std::string& ip, Time t) {
    const auto* row = r.store->Last(ip);
    return row && !row->ended && row->record.start >= t;
  };
  r.Failures("203.0.113.9", 3);
  REQUIRE(r.TurnUntil([&] { return banned_since("203.0.113.9", now); }));
  CHECK(last_duration("203.0.113.9") == 7200);  // its second offence
  // .8's restored ban ends: its next is its second offence (the store's row of the ban that
  // ran and the ban the ledger held are one), not its third.
  r.clock->Advance(Seconds(3001));
  r.daemon->Tick();  // the loop's second
  REQUIRE(r.TurnUntil([&] { return r.store->Active("203.0.113.8") == 0; }));
  Time later = r.clock->Now();
  r.Failures("203.0.113.8", 3);
  REQUIRE(r.TurnUntil([&] { return banned_since("203.0.113.8", later); }));
  CHECK(last_duration("203.0.113.8") == 7200);
  // A reload builds a new engine; .9's second ban, still running then, ends after it and is
  // heard by the new one: the next is the third offence.
  REQUIRE(r.Ask(R"({"cmd":"reload"})").back()["ok"] == true);
  r.clock->Advance(Seconds(7200));
  r.daemon->Tick();
  REQUIRE(r.TurnUntil([&] { return r.store->Active("203.0.113.9") == 0; }));
  later = r.clock->Now();
  r.Failures("203.0.113.9", 3);
  REQUIRE(r.TurnUntil([&] { return banned_since("203.0.113.9", later); }));
  CHECK(last_duration("203.0.113.9") == 14400);
}

TEST_CASE("a malformed control request gets an error answer") {
  Rig r;
  REQUIRE(r.daemon->Start() == 0);
  CHECK(r.Ask("not json").back()["error"] == "the request is not a JSON object");
  CHECK(r.Ask(R"({"cmd":"ban","target":5})").back()["error"] == "\"target\" must be a string");
  CHECK(r.Status()["ok"] == true);
}

TEST_CASE("stopping reads what was written before, writes what is owed, and leaves the bans") {
  Rig r;
  REQUIRE(r.daemon->Start() == 0);
  std::string burst;  // more than one turn's reading
  for (uint32_t i = 0; i < 20000; ++i)
    for (int k = 0; k < 3; ++k) burst += Iso(r.clock->Now()) + " fail user=x ip=" + IpAddress::V4(0x0B000000u + i).ToString() + "\n";
  r.Append(burst);
  CHECK(r.daemon->Stop() == 0);  // no turn in between: Stop itself reads and decides
  CHECK(r.fw->bans.size() == 20000);
  CHECK(r.store->Active("11.0.78.31") == 1);
  CHECK_FALSE(r.store->progress.files.empty());
  CHECK(r.notes.back() == "STOPPING=1");
}

TEST_CASE("a clean stop notes the firewall generation, and a start with nothing committed since takes the kernel as left") {
  {
    Rig r;
    REQUIRE(r.daemon->Start() == 0);
    r.Failures("203.0.113.5", 3);
    REQUIRE(r.TurnUntil([&] { return r.store->Active("203.0.113.5") == 1; }));
    CHECK(r.daemon->Stop() == 0);
    CHECK(r.store->notes["kernel_as_left"] == std::to_string(r.fw->generation) + " relayban");
  }
  SECTION("unchanged: the store's bans are assumed, the kernel is not listed, nothing is added again") {
    Rig r;
    REQUIRE(r.store->SaveBan({*Prefix::Parse("203.0.113.5"), "j", "brute", "", "r", r.clock->Now() - Seconds(10),
                              r.clock->Now() + Seconds(3590), "rule"}));
    r.fw->bans[*Prefix::Parse("203.0.113.5")] = Seconds(3600);
    r.store->notes["kernel_as_left"] = std::to_string(r.fw->generation) + " relayban";
    REQUIRE(r.daemon->Start() == 0);
    CHECK(r.fw->list_calls == 0);
    REQUIRE(r.fw->assume_calls == 1);
    REQUIRE(r.fw->assumed.size() == 1);
    CHECK(r.fw->assumed[0].target.ToString() == "203.0.113.5");
    CHECK(*r.fw->assumed[0].remaining == Seconds(3590));
    CHECK(r.fw->apply_calls == 0);
    CHECK(r.store->notes.count("kernel_as_left") == 0);  // used once
    CHECK(r.Status()["bans"] == 1);
  }
  SECTION("someone committed since (or another table): the kernel is listed and what it lacks is added") {
    for (std::string note : {"0 relayban", "1 othertable"}) {
      Rig r;
      REQUIRE(r.store->SaveBan({*Prefix::Parse("203.0.113.5"), "j", "brute", "", "r", r.clock->Now() - Seconds(10),
                                r.clock->Now() + Seconds(3590), "rule"}));
      r.fw->generation = 1;
      r.store->notes["kernel_as_left"] = note;
      REQUIRE(r.daemon->Start() == 0);
      CHECK(r.fw->list_calls == 1);
      CHECK(r.fw->assume_calls == 0);
      REQUIRE(r.TurnUntil([&] { return r.fw->Has("203.0.113.5"); }));
    }
  }
}

TEST_CASE("a reload that changes a rule says so and recounts its events under the new definition") {
  Rig r;
  REQUIRE(r.daemon->Start() == 0);
  r.Failures("203.0.113.9", 2);  // 2 of 3
  REQUIRE(r.TurnUntil([&] { return r.Status()["lines"] == 2; }));
  // The threshold goes up to 4, and a second rule arrives.
  std::string text;
  {
    std::ifstream in(r.dir / "relayban.yaml");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto at = text.find("threshold: 3");
  REQUIRE(at != std::string::npos);
  text.replace(at, 12, "threshold: 4");
  text += "      - {name: slow, key: ip, events: [auth_failure], threshold: 10, window: 1h, ban: 1h}\n";
  std::ofstream(r.dir / "relayban.yaml") << text;
  auto answer = r.Ask(R"({"cmd":"reload"})");
  REQUIRE(answer.back()["ok"] == true);
  CHECK(r.Logged("jail j: rule brute changed from key ip, events auth_failure, threshold 3, window 10m to key ip, "
                 "events auth_failure, threshold 4, window 10m; its counts are rebuilt from the journal"));
  CHECK(r.Logged("jail j: new rule slow (key ip, events auth_failure, threshold 10, window 1h)"));
  REQUIRE(r.TurnUntil([&] { return r.Logged("replayed"); }));
  r.Failures("203.0.113.9", 1);  // 3 of 4: not yet
  auto read_all = [&] {
    auto log = r.Status()["jails"][0]["logs"][0];
    return log.contains("read") && log["read"] == log["size"];
  };
  REQUIRE(r.TurnUntil(read_all));
  CHECK_FALSE(r.fw->Has("203.0.113.9"));
  r.Failures("203.0.113.9", 1);  // 4 of 4: the two before the reload counted
  CHECK(r.TurnUntil([&] { return r.fw->Has("203.0.113.9"); }));
}

TEST_CASE("forgive clears what an account is marked with, says who asked, and holds across a reload that replays the journal") {
  Rig r("      - {name: acct, key: account, events: [auth_failure], threshold: 3, window: 10m, ban: 1h}\n");
  REQUIRE(r.daemon->Start() == 0);
  for (int i = 1; i <= 3; ++i) r.Append(Iso(r.clock->Now()) + " fail user=alice ip=203.0.113." + std::to_string(i) + "\n");
  auto verdicts = [&]() -> json {
    for (const auto& l : r.Ask(R"({"cmd":"accounts"})"))
      if (l.contains("account") && l["account"]["account"] == "alice") return l["account"]["targeted_by"];
    return json();
  };
  REQUIRE(r.TurnUntil([&] { return verdicts() == json::array({"acct"}); }));
  r.clock->Advance(Seconds(1));
  auto answer = r.Ask(R"({"cmd":"forgive","target":"alice"})");
  REQUIRE(answer.back()["ok"] == true);
  CHECK(answer.back()["verdicts_lifted"] == json::array({"acct"}));
  CHECK(r.Logged("forgive account alice (asked by a local call): verdicts acct lifted; its counts restart"));
  CHECK(verdicts() == json::array());
  CHECK(r.store->notes["forgiven_accounts"].find("\"alice\"") != std::string::npos);
  // A reload builds a new engine that replays the journal: the verdict does not come back.
  REQUIRE(r.TurnUntil([&] { return r.store->journal.size() >= 3; }));
  REQUIRE(r.Ask(R"({"cmd":"reload"})").back()["ok"] == true);
  REQUIRE(r.TurnUntil([&] { return r.Logged("replayed"); }));
  CHECK(verdicts() == json::array());
  // Unbanning an address by hand exempts it from standing verdicts, and is kept too.
  r.Failures("203.0.113.9", 3);
  REQUIRE(r.TurnUntil([&] { return r.fw->Has("203.0.113.9"); }));
  REQUIRE(r.Ask(R"({"cmd":"unban","target":"203.0.113.9"})").back()["ok"] == true);
  CHECK(r.store->notes["exempted_addresses"].find("\"203.0.113.9\"") != std::string::npos);
  CHECK(r.Logged("unban 203.0.113.9 (asked by a local call)"));
  CHECK(r.Ask(R"({"cmd":"forgive"})").back()["ok"] == false);  // an account is needed
}

TEST_CASE("damaged admin notes in the state database are ignored, the daemon starts and counts") {
  Rig r;
  r.store->notes["forgiven_accounts"] = "not json";
  r.store->notes["exempted_addresses"] = R"({"not an address": 5, "203.0.113.9": "later"})";
  REQUIRE(r.daemon->Start() == 0);
  r.Failures("203.0.113.9", 3);
  CHECK(r.TurnUntil([&] { return r.fw->Has("203.0.113.9"); }));
}

TEST_CASE("a burst of decisions beyond those kept keeps the newest for explain, and counts the older as unsaved") {
  // 40 bans, 10 decisions kept: the 30 oldest never wait for the store.
  Rig r("", false, 10);
  REQUIRE(r.daemon->Start() == 0);
  auto ip = [](int i) { return "203.0.113." + std::to_string(10 + i); };
  for (int i = 0; i < 40; ++i) r.Failures(ip(i), 3);
  REQUIRE(r.TurnUntil([&] { return r.fw->Has(ip(39)); }));
  json newest = r.Ask(R"({"cmd":"explain","target":")" + ip(39) + R"("})").back();
  REQUIRE(newest["decisions"].size() == 1);
  CHECK(newest["decisions"][0]["action"] == "ban");
  json last_kept = r.Ask(R"({"cmd":"explain","target":")" + ip(30) + R"("})").back();
  CHECK(last_kept["decisions"].size() == 1);
  json gone = r.Ask(R"({"cmd":"explain","target":")" + ip(29) + R"("})").back();
  CHECK(gone["decisions"].empty());
  CHECK(gone["active_bans"].size() == 1);  // the ban itself is in force all the same
  REQUIRE(r.store->decisions.size() == 10);
  CHECK(r.store->decisions.front().target == ip(30));
  CHECK(r.store->decisions.back().target == ip(39));
  CHECK(r.daemon->RenderMetrics().find("\nrelayban_decisions_unsaved_total 30\n") != std::string::npos);
}

TEST_CASE("metrics count what the daemon read and decided, and keep counting across a reload") {
  Rig r;
  REQUIRE(r.daemon->Start() == 0);
  auto has = [&](const std::string& sample) { return r.daemon->RenderMetrics().find("\n" + sample + "\n") != std::string::npos; };
  // Every rule's counter exists before its first ban (a series born at 1 shows no increase).
  CHECK(has("relayban_bans_total{jail=\"j\",rule=\"brute\",origin=\"rule\"} 0"));
  r.Failures("203.0.113.5", 3);
  REQUIRE(r.TurnUntil([&] { return r.fw->Has("203.0.113.5"); }));
  std::string log = (r.dir / "log" / "mail.log").string();
  CHECK(has("relayban_log_lines_read_total{log=\"" + log + "\"} 3"));
  CHECK(has("relayban_events_total{jail=\"j\",kind=\"auth_failure\"} 3"));
  CHECK(has("relayban_verdicts_total{jail=\"j\",rule=\"brute\",key=\"ip\"} 1"));
  CHECK(has("relayban_bans_total{jail=\"j\",rule=\"brute\",origin=\"rule\"} 1"));
  CHECK(has("relayban_active_bans{family=\"ipv4\",origin=\"rule\"} 1"));
  CHECK(has("relayban_jail_enabled{jail=\"j\"} 1"));
  CHECK(has("relayban_degraded 0"));
  CHECK(has("relayban_jail_log_lag_seconds{jail=\"j\"} 0"));  // read to its end
  REQUIRE(r.daemon->Reload());
  r.daemon->Turn(0);
  // The new engine replayed the journal, which counts nowhere: the totals stay as they were.
  CHECK(has("relayban_events_total{jail=\"j\",kind=\"auth_failure\"} 3"));
  CHECK(has("relayban_config_reloads_total{result=\"ok\"} 1"));
  r.Failures("203.0.113.6", 3);
  REQUIRE(r.TurnUntil([&] { return r.fw->Has("203.0.113.6"); }));
  CHECK(has("relayban_log_lines_read_total{log=\"" + log + "\"} 6"));
  CHECK(has("relayban_events_total{jail=\"j\",kind=\"auth_failure\"} 6"));
  CHECK(has("relayban_verdicts_total{jail=\"j\",rule=\"brute\",key=\"ip\"} 2"));
  CHECK(has("relayban_bans_total{jail=\"j\",rule=\"brute\",origin=\"rule\"} 2"));
  r.fw->fail_all = true;
  r.fw->failure = Error{"Operation not permitted", {}, ErrorKind::kPermission};
  r.Failures("203.0.113.7", 3);
  REQUIRE(r.TurnUntil([&] { return has("relayban_degraded 1"); }));
  CHECK(has("relayban_mirror_failing{mirror=\"firewall\"} 1"));
}

TEST_CASE("a slow turn is measured: status names its length and part, metrics count it in a histogram") {
  Rig r;
  REQUIRE(r.daemon->Start() == 0);
  r.TurnUntil([] { return false; }, 5);
  json s = r.Status();
  REQUIRE(s.contains("loop"));
  CHECK(s["loop"]["turns"].get<uint64_t>() >= 5);
  CHECK(s["loop"]["turns_over_100ms"] == 0);
  CHECK(s["loop"]["longest_turn_ms"].get<double>() < 100);
  // The kernel takes 180 ms over the next transaction (a fake clock moved by the firewall).
  r.fw->on_apply = [&] { r.clock->Advance(std::chrono::milliseconds(180)); };
  r.Failures("203.0.113.5", 3);
  REQUIRE(r.TurnUntil([&] { return r.fw->Has("203.0.113.5"); }));
  r.fw->on_apply = nullptr;
  s = r.Status();
  CHECK(s["loop"]["turns_over_100ms"] == 1);
  CHECK(s["loop"]["longest_turn_ms"].get<double>() >= 180);
  CHECK(s["loop"]["longest_turn_part"] == "flushing");
  std::string m = r.daemon->RenderMetrics();
  CHECK(m.find("# TYPE relayban_loop_turn_seconds histogram") != std::string::npos);
  // Every turn up to 0.1 s but the slow one; the slow one in the 0.25 s bucket.
  auto bucket = [&](const std::string& le) {
    auto at = m.find("\nrelayban_loop_turn_seconds_bucket{le=\"" + le + "\"} ");
    REQUIRE(at != std::string::npos);
    return std::stoull(m.substr(m.find("} ", at) + 2));
  };
  CHECK(bucket("0.25") == bucket("0.1") + 1);
  CHECK(bucket("+Inf") == bucket("0.25"));
}

TEST_CASE("past 200 ban lines a second, bans are summed up per rule, and every ban is counted once") {
  Rig r;
  REQUIRE(r.daemon->Start() == 0);
  auto counted = [&] {
    size_t lines = 0, summed = 0;
    for (const auto& l : r.logs) {
      if (l.rfind("ban ", 0) == 0) ++lines;
      if (auto at = l.find(" more bans not logged one by one: jail=j rule=brute"); at != std::string::npos)
        summed += std::stoul(l.substr(4, at - 4));  // "and N more ..."
    }
    return std::make_pair(lines, summed);
  };
  for (int round = 1; round <= 2; ++round) {  // the second after the summary cleared the first's
    std::string burst;
    for (uint32_t i = 0; i < 300; ++i) {
      std::string ip = IpAddress::V4(0x0B000000u + static_cast<uint32_t>(round) * 1000 + i).ToString();
      for (int k = 0; k < 3; ++k) burst += Iso(r.clock->Now()) + " fail user=x ip=" + ip + "\n";
    }
    r.Append(burst);
    REQUIRE(r.TurnUntil([&] { return r.fw->bans.size() == 300u * static_cast<size_t>(round); }));
    r.daemon->Tick();
    auto [lines, summed] = counted();
    CHECK(lines + summed == 300u * static_cast<size_t>(round));
    CHECK(summed >= 100u * static_cast<size_t>(round));  // at most 200 lines a second
  }
  CHECK(r.daemon->RenderMetrics().find("\nrelayban_bans_total{jail=\"j\",rule=\"brute\",origin=\"rule\"} 600\n") !=
        std::string::npos);
}

TEST_CASE("past a flood's share of records with lines, each record still counts the lines of its own verdict") {
  Rig r;
  REQUIRE(r.daemon->Start() == 0);
  // 3,000 addresses banned in one burst (3 failures each; the first thousand records of a
  // second carry their lines). Every third has a line stamped 20 minutes earlier (outside
  // the window) just before: its verdict's evidence is 4 lines, the others' 3 - records
  // that leave the lines out must each say their own count, though all else after the
  // address is alike.
  const int n = 3000;
  auto ip = [](int i) { return IpAddress::V4(0x0B000000u + static_cast<uint32_t>(i)).ToString(); };
  std::string text;
  for (int i = 0; i < n; ++i) {
    if (i % 3 == 0) text += Iso(r.clock->Now() - std::chrono::minutes(20)) + " fail user=x ip=" + ip(i) + "\n";
    for (int k = 0; k < 3; ++k) text += Iso(r.clock->Now()) + " fail user=x" + std::to_string(k) + " ip=" + ip(i) + "\n";
  }
  r.Append(text);
  REQUIRE(r.TurnUntil([&] { return r.fw->bans.size() == static_cast<size_t>(n); }));
  // The records reach the store 2,000 at a checkpoint, one every 200 ms at most.
  REQUIRE(r.TurnUntil([&] {
    r.clock->Advance(std::chrono::milliseconds(250));
    return r.store->decisions.size() >= static_cast<size_t>(n);
  }));
  int omitted[2] = {0, 0}, with_lines = 0;
  for (const auto& d : r.store->decisions) {
    json j = json::parse(d.record);
    if (j["action"] != "ban") continue;
    IpAddress a = *IpAddress::Parse(d.target);
    const auto& b = a.bytes();
    uint32_t host = (uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3]);
    size_t lines = host % 3 == 0 ? 4 : 3;
    CHECK(j["target"] == d.target);
    CHECK(j["rule"] == "brute");
    if (j.contains("evidence_omitted")) {
      CHECK(j["evidence"].empty());
      CHECK(j["evidence_omitted"] == lines);
      ++omitted[lines == 4 ? 1 : 0];
    } else {
      CHECK(j["evidence"].size() == lines);
      ++with_lines;
    }
  }
  CHECK(with_lines >= 1000);
  CHECK(omitted[0] > 0);  // both kinds past the share (unless a tick came in between)
  CHECK(omitted[1] > 0);
}

TEST_CASE("a verdict's bans share their records' fields but each names its own address, as JSON written in order") {
  Rig r("      - {name: acct, key: account, events: [auth_failure], distinct: ip, threshold: 3, window: 10m, ban: 2h}\n");
  REQUIRE(r.daemon->Start() == 0);
  std::string lines;
  for (const char* account : {"victim", "other"})
    for (int i = 1; i <= 3; ++i)
      lines += Iso(r.clock->Now()) + " fail user=" + account + " ip=203.0.113." + std::to_string(i + (account[0] == 'o' ? 10 : 0)) + "\n";
  r.Append(lines);
  REQUIRE(r.TurnUntil([&] { return r.fw->bans.size() == 6 && r.store->decisions.size() >= 6; }));
  std::map<std::string, json> by_target;
  for (const auto& d : r.store->decisions) {
    json j = json::parse(d.record);
    if (j["action"] != "ban") continue;
    // Written field by field in the order nlohmann's ordered_json keeps: the same text.
    CHECK(nlohmann::ordered_json::parse(d.record).dump() == d.record);
    CHECK(j["target"] == d.target);
    by_target[d.target] = j;
  }
  REQUIRE(by_target.size() == 6);
  for (int i = 1; i <= 3; ++i) {
    const json& v = by_target["203.0.113." + std::to_string(i)];
    const json& o = by_target["203.0.113." + std::to_string(i + 10)];
    CHECK(v["account"] == "victim");
    CHECK(o["account"] == "other");
    CHECK(v["rule"] == "acct");
    CHECK(v["duration_s"] == 7200);
    CHECK(v["reason"].get<std::string>().find("account victim reached 3 distinct ip") != std::string::npos);
    CHECK(o["reason"].get<std::string>().find("account other reached 3 distinct ip") != std::string::npos);
    CHECK(v["evidence"].size() == 3);
    CHECK(o["evidence"].size() == 3);
    CHECK(o["evidence"][0]["line"].get<std::string>().find("user=other") != std::string::npos);
  }
}

TEST_CASE("explain shows an address's ban with the lines that led to it, from the state database") {
  Rig r;
  REQUIRE(r.daemon->Start() == 0);
  r.Failures("203.0.113.5", 3);
  REQUIRE(r.TurnUntil([&] { return r.fw->Has("203.0.113.5"); }));
  json a = r.Ask(R"({"cmd":"explain","target":"203.0.113.5"})").back();
  REQUIRE(a["ok"] == true);
  CHECK(a["kind"] == "address");
  REQUIRE(a["active_bans"].size() == 1);
  CHECK(a["active_bans"][0]["rule"] == "brute");
  REQUIRE(a["decisions"].size() == 1);
  const json& d = a["decisions"][0];
  CHECK(d["action"] == "ban");
  CHECK(d["reason"] == "brute: 3 events within 10m");
  REQUIRE(d["evidence"].size() == 3);
  CHECK(d["evidence"][2]["line"].get<std::string>().find("fail user=u2 ip=203.0.113.5") != std::string::npos);
  CHECK(d["evidence"][0]["log"] == (r.dir / "log" / "mail.log").string());
  CHECK(r.store->decisions.size() == 1);  // written to the store, not only held
  json none = r.Ask(R"({"cmd":"explain","target":"198.51.100.77"})").back();
  CHECK(none["active_bans"].empty());
  CHECK(none["decisions"].empty());
  json account = r.Ask(R"({"cmd":"explain","target":"Nobody@Example.com"})").back();
  CHECK(account["kind"] == "account");
  CHECK(account["account"].is_null());
}

TEST_CASE("journald's reports of lines it dropped are counted for the jails' units, shown in status and metrics, kept across a reload") {
  if (!testing::CanWriteJournals()) {
    RELAYBAN_SKIP("systemd-journal-remote is not installed");
  }
  testing::JournalDir scratch("daemon-journal");
  const auto& journal = scratch.path;
  // A second jail reads the journal of postfix@-.service (jail j reads a log file).
  Rig r(R"(  k:
    enabled: true
    logs: [{journal: {match: ["_SYSTEMD_UNIT=postfix@-.service"], directory: )" + journal.string() + R"(}}]
    filters: [t]
    rules:
      - {name: brute, key: ip, events: [auth_failure], threshold: 3, window: 10m, ban: 1h}
)");
  REQUIRE(r.daemon->Start() == 0);
  uint64_t usec = 1795000000ULL * 1000000;
  REQUIRE(testing::WriteJournal(
      journal, "a",
      testing::JournaldReport(testing::kJournalDroppedId, "Suppressed 52311 messages from postfix@-.service", usec) +
          testing::JournaldReport(testing::kJournalDroppedId, "Suppressed 40 messages from cron.service", usec + 1) +
          testing::JournaldReport(testing::kJournalDroppedId, "Suppressed 7 messages from postfix@-.service", usec + 2,
                                  "syslog") +  // forged
          testing::JournaldReport(testing::kForwardMissedId, "Forwarding to syslog missed 34 messages.", usec + 3)));
  auto lost = [&] { return r.Status()["lost_before_reading"]; };
  REQUIRE(r.TurnUntil([&] { return lost()["syslog_forward"] == 34; }, 200));
  json l = lost();
  CHECK(l["journald_rate_limit"] == json{{"postfix@-.service", 52311}});  // cron is not a jail's unit
  CHECK(r.Logged("journald dropped 52311 lines of postfix@-.service (its rate limit)"));
  CHECK(r.Logged("journald could not hand 34 lines to the syslog daemon"));
  CHECK_FALSE(r.Logged("cron.service"));
  std::string m = r.daemon->RenderMetrics();
  CHECK(m.find("\nrelayban_lost_before_reading_lines_total{reason=\"rate_limit\",unit=\"postfix@-.service\"} 52311\n") !=
        std::string::npos);
  CHECK(m.find("\nrelayban_lost_before_reading_lines_total{reason=\"syslog_forward\",unit=\"\"} 34\n") != std::string::npos);

  REQUIRE(r.daemon->Reload());
  REQUIRE(testing::WriteJournal(
      journal, "b", testing::JournaldReport(testing::kJournalDroppedId, "Suppressed 9 messages from postfix@-.service", usec + 10)));
  REQUIRE(r.TurnUntil([&] { return lost()["journald_rate_limit"]["postfix@-.service"] == 52320; }, 200));
  CHECK(lost()["syslog_forward"] == 34);  // the earlier report was not read again
}
