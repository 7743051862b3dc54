#include "relayban/core/prefaulter.hpp"

#include <catch2/catch.hpp>

#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "relayban/core/flat_map.hpp"

using namespace relayban;

namespace {

// Pages of [p, p + bytes) the kernel has resident.
size_t Resident(void* p, size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> in((bytes + page - 1) / page);
  REQUIRE(mincore(p, bytes, in.data()) == 0);
  size_t n = 0;
  for (unsigned char c : in) n += c & 1;
  return n;
}

struct Mapping {
  explicit Mapping(size_t n) : bytes(n) {
    p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
  }
  ~Mapping() {
    Prefaulter::Forget(p);
    munmap(p, bytes);
  }
  void* p;
  size_t bytes;
};

struct U64Hash {
  size_t operator()(uint64_t k) const { return static_cast<size_t>(k * 0x9E3779B97F4A7C15ull); }
};

}  // namespace

TEST_CASE("the prefaulter brings in the ranges asked for, and nothing else, without changing a byte") {
  const size_t mb = size_t{1} << 20;
  Mapping m(16 * mb);
  auto* bytes = static_cast<unsigned char*>(m.p);
  bytes[5 * mb] = 7;  // written before: kept as it is
  REQUIRE(Resident(m.p, 16 * mb) * static_cast<size_t>(sysconf(_SC_PAGESIZE)) <= 2 * mb);
  uint64_t before = Prefaulter::populated();
  Prefaulter::Ahead(m.p, 4 * mb, 10 * mb);
  Prefaulter::Settle();
  if (!Prefaulter::supported()) {
    WARN("this kernel has no MADV_POPULATE_WRITE (Linux < 5.14): nothing to check");
    return;
  }
  CHECK(Prefaulter::populated() - before == 6 * mb);
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  CHECK(Resident(bytes + 4 * mb, 6 * mb) == 6 * mb / page);
  // Outside the range: at most the huge page written before (THP may back it whole).
  CHECK(Resident(bytes + 12 * mb, 4 * mb) == 0);
  CHECK(bytes[5 * mb] == 7);
  CHECK(bytes[4 * mb] == 0);
  CHECK(bytes[10 * mb - 1] == 0);
}

TEST_CASE("the prefaulter's thread blocks every signal, and leaves the caller's mask as it was") {
  Mapping m(4 << 20);
  sigset_t before, after;
  pthread_sigmask(SIG_BLOCK, nullptr, &before);
  Prefaulter::Ahead(m.p, 0, 4 << 20);  // starts the thread if it is not running yet
  Prefaulter::Settle();
  pthread_sigmask(SIG_BLOCK, nullptr, &after);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) CHECK(sigismember(&before, s) == sigismember(&after, s));
  // The worker's own mask, read from /proc: every thread of the process but this one.
  int others = 0, blocking = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    if (task.path().filename() == std::to_string(gettid())) continue;
    std::ifstream status(task.path() / "status");
    std::string line;
    while (std::getline(status, line))
      if (line.rfind("SigBlk:", 0) == 0) {
        ++others;
        unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
        if ((mask & (1ull << (SIGTERM - 1))) && (mask & (1ull << (SIGHUP - 1)))) ++blocking;
      }
  }
  CHECK(others >= 1);
  CHECK(blocking == others);  // the test binary's other threads (if any) are JobThreads: they block too
}

TEST_CASE("a mapping forgotten before it is unmapped gets nothing populated after that") {
  const size_t mb = size_t{1} << 20;
  uint64_t after_forget = 0;
  {
    Mapping m(64 * mb);
    for (size_t at = 0; at < 64 * mb; at += 2 * mb) Prefaulter::Ahead(m.p, at, at + 2 * mb);
    Prefaulter::Forget(m.p);  // its queued ranges dropped, the one under way finished
    after_forget = Prefaulter::populated();
  }  // unmapped
  Prefaulter::Settle();
  CHECK(Prefaulter::populated() == after_forget);
}

TEST_CASE("a forked child starts a prefaulter of its own") {
  const size_t mb = size_t{1} << 20;
  {
    Mapping warm(4 * mb);  // the parent's worker is running
    Prefaulter::Ahead(warm.p, 0, 4 * mb);
    Prefaulter::Settle();
  }
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    void* p = mmap(nullptr, 8 * mb, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) _exit(3);
    uint64_t before = Prefaulter::populated();
    Prefaulter::Ahead(p, 0, 8 * mb);
    Prefaulter::Settle();  // would wait for ever on a worker the fork did not copy
    bool ok = !Prefaulter::supported() || Prefaulter::populated() - before == 8 * mb;
    Prefaulter::Forget(p);
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a big table growing asks for its new array ahead of its move, a few megabytes at a time") {
  using Map = FlatMap<uint64_t, uint64_t, U64Hash>;
  Map m;
  uint64_t k = 0;
  auto put = [&] {
    m[k] = k;
    ++k;
  };
  // Big enough that its next array is several times what is asked for ahead of the move.
  while (m.capacity() * 24 < 3 * Map::kPrefaultAhead || m.growing()) put();
  size_t cap = m.capacity();
  while ((m.size() + 1) * 100 <= cap * 70) put();
  Prefaulter::Settle();
  uint64_t before = Prefaulter::populated();
  put();  // grows
  REQUIRE(m.growing());
  Prefaulter::Settle();
  size_t new_bytes = m.capacity() * 24 - cap * 24;  // capacity() counts both arrays meanwhile
  if (!Prefaulter::supported()) {
    WARN("this kernel has no MADV_POPULATE_WRITE (Linux < 5.14): nothing to check");
    return;
  }
  uint64_t first = Prefaulter::populated() - before;
  CHECK(first > 0);
  CHECK(first <= 2 * Map::kPrefaultAhead + (size_t{2} << 20));  // ahead, not the whole array
  CHECK(first < new_bytes / 2);
  while (m.growing()) put();
  Prefaulter::Settle();
  uint64_t all = Prefaulter::populated() - before;
  CHECK(all >= new_bytes * 9 / 10);  // about all of it, in the end
  CHECK(all <= new_bytes + (size_t{2} << 20));
  for (uint64_t i = 0; i < k; ++i) REQUIRE(m[i] == i);
}
