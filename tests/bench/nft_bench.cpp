// Bulk ban cost through NftFirewall: N bans in one Apply, then listed back. Run it inside a
// private network namespace (nft_bench.sh does). Prints seconds and microseconds per ban.
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
  auto fw = NftFirewall::Open({});
  if (!fw || !(*fw)->EnsureTable()) {
    std::fprintf(stderr, "cannot create the table\n");
    return 1;
  }
  std::vector<FirewallOrder> orders;
  orders.reserve(n);
  for (uint32_t i = 0; i < n; ++i)
    orders.push_back({FirewallOrder::Kind::kBan, Prefix(IpAddress::V4(0x0A000000u + i * 2)), Seconds(600)});
  auto t0 = std::chrono::steady_clock::now();
  auto r = (*fw)->Apply(orders);
  auto t1 = std::chrono::steady_clock::now();
  if (!r) {
    std::fprintf(stderr, "apply: %s\n", r.error().ToString().c_str());
    return 1;
  }
  auto l = (*fw)->List();
  auto t2 = std::chrono::steady_clock::now();
  double add = std::chrono::duration<double>(t1 - t0).count();
  double list = std::chrono::duration<double>(t2 - t1).count();
  std::printf("%zu bans in one transaction: %.3f s (%.2f us/ban); listed %zu back in %.3f s\n", n, add, add * 1e6 / n,
              l ? l->size() : 0, list);
  (void)(*fw)->Remove();
  return 0;
}
