// The store writer: jobs in order on a thread of their own, outcomes back on the caller's
// thread, every other store call after the writes handed over; and the ban ledger writing
// its slices through it (a refused slice is written again whole, before anything later).
#include "daemon/store_writer.hpp"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <thread>

#include "daemon/ban_ledger.hpp"
#include "daemon/job_thread.hpp"
#include "fakes/fake_clock.hpp"
#include "fakes/fake_firewall.hpp"
#include "fakes/fake_state_store.hpp"

using namespace relayban;
using testing::FakeClock;
using testing::FakeFirewall;
using testing::FakeStateStore;

namespace {

BanRecord Ban(const std::string& target) {
  BanRecord b;
  b.target = *Prefix::Parse(target);
  b.jail = "postfix";
  b.rule = "brute";
  b.reason = "brute: reason";
  b.start = Time(std::chrono::seconds(1'700'000'000));
  b.end = b.start + std::chrono::hours(1);
  return b;
}

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

}  // namespace

TEST_CASE("the store writer runs jobs in order on its own thread and hands their outcomes back in Poll") {
  FakeStateStore store;
  StoreWriter w(store);
  std::vector<int> ran;  // written by the writer's thread only, read after Wait
  std::vector<std::pair<int, bool>> outcomes;
  std::thread::id job_thread;
  for (int i = 0; i < 100; ++i)
    w.Submit(
        [&, i](StateStore&) -> Result<void> {
          ran.push_back(i);
          job_thread = std::this_thread::get_id();
          if (i == 42) return Fail("job 42 fails");
          return {};
        },
        [&, i](const Result<void>& r) { outcomes.emplace_back(i, static_cast<bool>(r)); });
  CHECK(w.outstanding() == 100);
  w.Wait();
  REQUIRE(ran.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(ran[static_cast<size_t>(i)] == i);
  CHECK(job_thread != std::this_thread::get_id());
  CHECK(outcomes.empty());  // outcomes wait for Poll, on this thread
  CHECK(Readable(w.fd()));
  CHECK(w.Poll() == 100);
  CHECK(w.outstanding() == 0);
  REQUIRE(outcomes.size() == 100);
  for (int i = 0; i < 100; ++i) {
    CHECK(outcomes[static_cast<size_t>(i)].first == i);
    CHECK(outcomes[static_cast<size_t>(i)].second == (i != 42));
  }
  CHECK_FALSE(Readable(w.fd()));
  CHECK(w.Poll() == 0);
}

TEST_CASE("every other store call waits for the writes handed over before it") {
  FakeStateStore store;
  StoreWriter w(store);
  for (int i = 0; i < 50; ++i) {
    BanRecord b = Ban("198.51.100." + std::to_string(i));
    w.Submit([b](StateStore& s) { return s.SaveBan(b); }, nullptr);
  }
  auto active = w.store().ActiveBans(Time(std::chrono::seconds(1'700'000'010)));
  REQUIRE(active);
  CHECK(active->size() == 50);
  w.Poll();
}

TEST_CASE("signals stay with the loop: the writer's thread blocks them all") {
  FakeStateStore store;
  StoreWriter w(store);
  sigset_t in_writer;
  sigemptyset(&in_writer);
  w.Submit(
      [&](StateStore&) -> Result<void> {
        pthread_sigmask(SIG_BLOCK, nullptr, &in_writer);
        return {};
      },
      nullptr);
  w.Wait();
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE}) CHECK(sigismember(&in_writer, s) == 1);
  sigset_t here;
  pthread_sigmask(SIG_BLOCK, nullptr, &here);
  CHECK(sigismember(&here, SIGTERM) == 0);  // the caller's own mask is left as it was
  w.Poll();
}

namespace {

// A ledger whose store writes (kStore) or kernel slices (kKernel) run on threads of their
// own, as RunDaemon runs them.
struct ThreadedRig {
  enum Threads { kStore = 1, kKernel = 2 };
  FakeFirewall fw;
  FakeStateStore store;
  FakeClock clock;
  StoreWriter writer{store};
  JobThread kernel;
  std::vector<std::pair<int, std::string>> logs;
  BanLedger ledger;
  explicit ThreadedRig(int threads, BanLedger::Options o = {})
      : ledger(fw, store, clock, [this](int p, const std::string& m) { logs.emplace_back(p, m); }, With(o, threads)) {}
  BanLedger::Options With(BanLedger::Options o, int threads) {
    if (threads & kStore) o.writer = &writer;
    if (threads & kKernel) o.kernel_thread = &kernel;
    return o;
  }
  Order Make(const std::string& target, int seconds) {
    return Order{Order::Action::kBan, clock.Now(), "postfix", "brute", *Prefix::Parse(target), "", Seconds(seconds), "brute: reason"};
  }
  // One loop turn's flush, then what the threads did comes back (the fakes are read by the
  // test only after this: the threads are idle).
  void Turn() {
    ledger.Flush();
    writer.Wait();
    writer.Poll();
    kernel.Wait();
    kernel.Poll();
  }
  void Settle() {
    for (int i = 0; i < 1000 && !(ledger.KernelSettled() && ledger.StoreSettled()); ++i) Turn();
  }
};

Prefix P(const char* s) { return *Prefix::Parse(s); }

}  // namespace

TEST_CASE("through the writer, a burst of bans reaches the store a slice at a time, one slice on its way at once") {
  BanLedger::Options o;
  o.store_slice = 500;
  ThreadedRig r(ThreadedRig::kStore, o);
  for (uint32_t i = 0; i < 5000; ++i) r.ledger.Record(r.Make(IpAddress::V4(0x0B000000u + i).ToString(), 3600));
  r.ledger.Flush();
  CHECK(r.writer.outstanding() == 1);
  CHECK(r.ledger.store_backlog() == 5000);  // queued, and the slice on its way
  r.ledger.Flush();
  CHECK(r.writer.outstanding() == 1);  // the next slice waits for the outcome of this one
  r.Settle();
  CHECK(r.ledger.StoreSettled());
  CHECK(r.store.rows.size() == 5000);
  CHECK(r.ledger.stats().store_writes == 5000);
  CHECK(r.store.Active("11.0.19.135") == 1);
}

TEST_CASE("at stop the ledger writes what it still owes the store on the calling thread, not the writer's") {
  BanLedger::Options o;
  o.store_slice = 500;
  ThreadedRig r(ThreadedRig::kStore, o);
  for (uint32_t i = 0; i < 5000; ++i) r.ledger.Record(r.Make(IpAddress::V4(0x0B000000u + i).ToString(), 3600));
  r.Turn();
  CHECK(r.store.rows.size() == 500);
  r.ledger.Flush();  // the next slice on its way
  CHECK(r.writer.outstanding() == 1);
  r.writer.Wait();
  r.writer.Poll();
  r.ledger.WriteStoreHere();
  r.ledger.Flush();  // written in the flush itself: nothing handed over
  CHECK(r.writer.outstanding() == 0);
  CHECK(r.store.rows.size() > 1000);
  r.ledger.Drain(r.clock.Monotonic() + Seconds(5));
  CHECK(r.writer.outstanding() == 0);
  CHECK(r.store.rows.size() == 5000);
  CHECK(r.ledger.StoreSettled());
}

TEST_CASE("through the writer, a refused slice is written again whole and before what came after it") {
  ThreadedRig r(ThreadedRig::kStore);
  r.store.fail_writes = true;
  for (int i = 0; i < 50; ++i) r.ledger.Record(r.Make("198.51.100." + std::to_string(i), 3600));
  r.Turn();
  CHECK(r.fw.bans.size() == 50);  // protection does not wait for the disk
  CHECK(r.ledger.store_problem() == "state database: database or disk is full");
  CHECK(r.ledger.store_backlog() == 50);
  CHECK_FALSE(r.ledger.StoreSettled());
  CHECK(r.store.rows.empty());
  // Lifted while its save is owed: the save goes first, then the end.
  r.ledger.Record(r.Make("198.51.100.99", 60));
  CHECK(r.ledger.Unban(P("198.51.100.7")));
  r.store.fail_writes = false;  // the writer is idle: nothing reads this meanwhile
  r.clock.Advance(Seconds(2));
  r.Settle();
  CHECK(r.ledger.store_problem().empty());
  CHECK(r.store.rows.size() == 51);
  CHECK(r.store.Active("198.51.100.8") == 1);
  CHECK(r.store.Active("198.51.100.7") == 0);
  CHECK(r.store.Last("198.51.100.7")->how == "unban");
  CHECK(r.ledger.StoreSettled());
}

TEST_CASE("through the writer, a ban lifted while its save is on its way is ended after it") {
  ThreadedRig r(ThreadedRig::kStore);
  r.ledger.Record(r.Make("203.0.113.9", 3600));
  r.ledger.Flush();  // the save is on its way
  CHECK(r.ledger.Unban(P("203.0.113.9")));
  r.Settle();
  REQUIRE(r.store.Last("203.0.113.9"));
  CHECK(r.store.Last("203.0.113.9")->how == "unban");
  CHECK(r.store.Active("203.0.113.9") == 0);
  CHECK(r.ledger.size() == 0);
  // Banned again: a new record, the old one stays ended.
  r.ledger.Record(r.Make("203.0.113.9", 600));
  r.Settle();
  CHECK(r.store.Active("203.0.113.9") == 1);
  CHECK(r.store.rows.size() == 2);
}

// The kernel's slices on a JobThread of their own (as RunDaemon runs them).

TEST_CASE("through the kernel thread, a burst of bans reaches the kernel a slice at a time, one slice on its way at once") {
  BanLedger::Options o;
  o.kernel_slice = 500;
  ThreadedRig r(ThreadedRig::kKernel, o);
  std::thread::id applied_on;
  r.fw.on_apply = [&] { applied_on = std::this_thread::get_id(); };
  for (uint32_t i = 0; i < 5000; ++i) r.ledger.Record(r.Make(IpAddress::V4(0x0B000000u + i).ToString(), 3600));
  r.ledger.Flush();
  CHECK(r.kernel.outstanding() == 1);
  CHECK(r.ledger.kernel_backlog() == 5000);  // queued, and the slice on its way
  CHECK_FALSE(r.ledger.KernelSettled());
  CHECK(r.ledger.KernelPending(P("11.0.0.0")));  // the first, on its way: not in force yet
  r.ledger.Flush();
  CHECK(r.kernel.outstanding() == 1);  // the next slice waits for the outcome of this one
  r.Settle();
  CHECK(r.ledger.KernelSettled());
  CHECK_FALSE(r.ledger.KernelPending(P("11.0.0.0")));
  CHECK(r.fw.bans.size() == 5000);
  CHECK(r.fw.applied.size() == 10);
  CHECK(r.ledger.stats().kernel_changes == 5000);
  CHECK(applied_on != std::this_thread::get_id());
}

TEST_CASE("through the kernel thread, a ban lifted while its slice is on its way is removed after it") {
  ThreadedRig r(ThreadedRig::kKernel);
  r.ledger.Record(r.Make("203.0.113.9", 3600));
  r.ledger.Record(r.Make("203.0.113.10", 3600));
  r.ledger.Flush();  // both on their way
  CHECK(r.ledger.Unban(P("203.0.113.9")));
  CHECK(r.ledger.size() == 1);
  CHECK(r.ledger.KernelPending(P("203.0.113.9")));  // the removal is owed
  r.Settle();
  CHECK_FALSE(r.fw.Has("203.0.113.9"));
  CHECK(r.fw.Touches("203.0.113.9") == 2);  // added by the slice on its way, then removed
  CHECK(r.fw.Has("203.0.113.10"));
  CHECK_FALSE(r.ledger.KernelPending(P("203.0.113.9")));
}

TEST_CASE("through the kernel thread, a lifted ban is forgotten once both mirrors have it, whichever is last") {
  ThreadedRig r(ThreadedRig::kKernel);  // the store's writes are made in the flush itself
  r.ledger.Record(r.Make("203.0.113.1", 3600));
  r.ledger.Record(r.Make("203.0.113.2", 3600));
  r.ledger.Record(r.Make("203.0.113.3", 3600));
  r.Settle();
  CHECK(r.ledger.tracked() == 3);
  // The store has the end while the removal is on its way to the kernel.
  CHECK(r.ledger.Unban(P("203.0.113.1")));
  r.ledger.Flush();  // the removal on its way; the end written
  CHECK(r.ledger.tracked() == 3);
  CHECK(r.ledger.KernelPending(P("203.0.113.1")));
  r.kernel.Wait();
  r.kernel.Poll();
  CHECK(r.ledger.tracked() == 2);
  // The store has the end before the removal leaves (a slice of another ban on its way).
  r.ledger.Record(r.Make("203.0.113.4", 3600));
  r.ledger.Flush();  // .4 on its way, and its save written
  CHECK(r.ledger.Unban(P("203.0.113.2")));
  r.ledger.Flush();  // the end written; the removal waits for the slice
  CHECK(r.store.Last("203.0.113.2")->how == "unban");
  CHECK(r.ledger.tracked() == 3);
  r.Settle();
  CHECK(r.ledger.tracked() == 2);
  CHECK_FALSE(r.fw.Has("203.0.113.2"));
  // A removal of what was never banned owes the store nothing; a refused one is kept.
  r.fw.fail_next = 1;
  CHECK_FALSE(r.ledger.Unban(P("198.51.100.5")));
  r.Turn();
  CHECK(r.ledger.tracked() == 3);
  CHECK(r.ledger.KernelPending(P("198.51.100.5")));
  r.clock.Advance(Seconds(2));
  r.Settle();
  CHECK_FALSE(r.ledger.KernelPending(P("198.51.100.5")));
  CHECK(r.ledger.tracked() == 2);
  CHECK(r.ledger.size() == 2);
}

TEST_CASE("through the kernel thread, a refused slice is sent again, with what changed meanwhile as it is by then") {
  ThreadedRig r(ThreadedRig::kKernel);
  r.fw.fail_next = 1;
  for (int i = 0; i < 50; ++i) r.ledger.Record(r.Make("198.51.100." + std::to_string(i), 3600));
  r.ledger.Flush();  // on its way, to be refused
  CHECK(r.ledger.Unban(P("198.51.100.7")));
  r.kernel.Wait();
  r.kernel.Poll();
  CHECK(r.ledger.firewall_problem() == "firewall: simulated failure");
  CHECK(r.fw.bans.empty());
  CHECK(r.ledger.kernel_backlog() >= 49);
  r.clock.Advance(Seconds(2));  // past the backoff (the thread is idle)
  r.Settle();
  CHECK(r.ledger.firewall_problem().empty());
  CHECK(r.fw.bans.size() == 49);
  CHECK_FALSE(r.fw.Has("198.51.100.7"));
  CHECK(r.fw.Has("198.51.100.8"));
}

TEST_CASE("through the kernel thread, every other firewall call waits for the slice on its way") {
  ThreadedRig r(ThreadedRig::kKernel);
  // A slow kernel: the slice is still in its Apply when the next calls come.
  r.fw.on_apply = [] { std::this_thread::sleep_for(std::chrono::milliseconds(30)); };
  for (int i = 0; i < 50; ++i) r.ledger.Record(r.Make("198.51.100." + std::to_string(i), 3600));
  r.ledger.Flush();
  // Emptying the sets must come after the slice, or its bans would be left in the kernel.
  CHECK(r.ledger.UnbanAll() == 50);
  CHECK(r.fw.rebuild_calls == 1);
  CHECK(r.fw.bans.empty());
  CHECK(r.fw.applied.size() == 1);
  // The same for a removal of the table at exit.
  r.ledger.Record(r.Make("203.0.113.9", 3600));
  r.ledger.Flush();
  REQUIRE(r.ledger.RemoveAll());
  CHECK(r.fw.bans.empty());
  CHECK(r.fw.applied.size() == 2);
  r.kernel.Poll();
}

TEST_CASE("a background JobThread runs its jobs at a niceness the given amount above the caller's") {
  int mine = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  auto niceness_in = [](JobThread& t) {
    int seen = -100;
    t.Submit(
        [&] {
          seen = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
          return Result<void>();
        },
        nullptr);
    t.Wait();
    t.Poll();
    return seen;
  };
  JobThread background("test-bg", JobThread::kBackground), plain("test-plain");
  CHECK(niceness_in(background) == std::min(19, mine + JobThread::kBackground));
  CHECK(niceness_in(plain) == mine);
  CHECK(getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())) == mine);  // the caller's is its own
}
