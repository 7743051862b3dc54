// Bulk ban cost through NftFirewall: N bans in Applies of SLICE (default: all in one, the
// daemon's ledger sends 10,000 per transaction), then listed back unless SLICE is given.
// Run it inside a private network namespace (nft_bench.sh does). Prints seconds and
// microseconds per ban, and the process's user and system CPU time.
// usage: nft_bench [N] [SLICE]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "firewall/nft_firewall.hpp"

using namespace relayban;

int main(int argc, char** argv) {
  if (!std::getenv("RELAYBAN_TEST_NETNS")) {
    std::fprintf(stderr, "run me through tests/bench/nft_bench.sh (a private network namespace)\n");
    return 2;
  }
  size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000;
  size_t slice = argc > 2 ? std::max<size_t>(1, std::strtoul(argv[2], nullptr, 10)) : n;
  auto fw = NftFirewall::Open({});
  if (!fw || !(*fw)->EnsureTable()) {
    std::fprintf(stderr, "cannot create the table\n");
    return 1;
  }
  std::vector<FirewallOrder> orders;
  orders.reserve(n);
  for (uint32_t i = 0; i < n; ++i)
    orders.push_back({FirewallOrder::Kind::kBan, Prefix(IpAddress::V4(0x0A000000u + i * 2)), Seconds(600)});
  auto cpu = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return std::pair<double, double>{sec(u.ru_utime), sec(u.ru_stime)};
  };
  auto c0 = cpu();
  auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; i += slice) {
    std::vector<FirewallOrder> part(orders.begin() + static_cast<std::ptrdiff_t>(i),
                                    orders.begin() + static_cast<std::ptrdiff_t>(std::min(n, i + slice)));
    auto r = (*fw)->Apply(part);
    if (!r) {
      std::fprintf(stderr, "apply: %s\n", r.error().ToString().c_str());
      return 1;
    }
  }
  auto t1 = std::chrono::steady_clock::now();
  auto c1 = cpu();
  double add = std::chrono::duration<double>(t1 - t0).count();
  std::printf("%zu bans in %s: %.3f s (%.2f us/ban; user %.2f s, system %.2f s)", n,
              slice >= n ? "one transaction" : (std::to_string(slice) + "-ban transactions").c_str(), add, add * 1e6 / n,
              c1.first - c0.first, c1.second - c0.second);
  if (slice >= n) {
    auto l = (*fw)->List();
    auto t2 = std::chrono::steady_clock::now();
    std::printf("; listed %zu back in %.3f s", l ? l->size() : 0, std::chrono::duration<double>(t2 - t1).count());
  }
  std::printf("\n");
  (void)(*fw)->Remove();
  return 0;
}
