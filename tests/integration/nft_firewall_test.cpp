// NftFirewall against the real kernel, inside a private network namespace created by
// netns_run.sh. Every test checks it is not in the host's namespace before touching
// anything, builds its table from scratch and leaves other tables alone.
#include <catch2/catch.hpp>

#include "skip.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <signal.h>
#include <string>
#include <thread>

#include "firewall/nft_firewall.hpp"

using namespace relayban;

namespace {

// Refuses to run in the host's network namespace.
void RequirePrivateNetns() {
  struct stat self {}, init {};
  REQUIRE(std::getenv("RELAYBAN_TEST_NETNS") != nullptr);
  REQUIRE(stat("/proc/self/ns/net", &self) == 0);
  if (stat("/proc/1/ns/net", &init) == 0) REQUIRE(self.st_ino != init.st_ino);
}

std::string Sh(const std::string& cmd, int* rc = nullptr) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  if (rc) *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

std::unique_ptr<NftFirewall> Fresh(FirewallSpecOptions o = {}) {
  RequirePrivateNetns();
  Sh("nft delete table inet " + o.table);
  auto fw = NftFirewall::Open(o);
  REQUIRE(fw);
  auto r = (*fw)->EnsureTable();
  INFO((r ? "" : r.error().ToString()));
  REQUIRE(r);
  return std::move(fw.value());
}

FirewallOrder Ban(const char* p, int secs) {
  return {FirewallOrder::Kind::kBan, *Prefix::Parse(p), Seconds(secs)};
}
FirewallOrder Unban(const char* p) { return {FirewallOrder::Kind::kUnban, *Prefix::Parse(p), Seconds(0)}; }

std::map<std::string, FirewallElement> Listed(NftFirewall& fw) {
  auto l = fw.List();
  INFO((l ? "" : l.error().ToString()));
  REQUIRE(l);
  std::map<std::string, FirewallElement> m;
  for (const auto& e : *l) m[e.target.ToString()] = e;
  return m;
}

bool InSet(const std::string& set, const std::string& addr) {
  int rc = 0;
  Sh("nft get element inet relayban " + set + " '{ " + addr + " }'", &rc);
  return rc == 0;
}

}  // namespace

TEST_CASE("the table, chains and sets are created, twice without error, and other tables are left alone") {
  RequirePrivateNetns();
  Sh("nft add table inet other; nft add chain inet other c '{ type filter hook input priority 0; }'; "
     "nft add rule inet other c counter accept");
  auto fw = Fresh();
  REQUIRE(fw->EnsureTable());
  auto table = Sh("nft list table inet relayban");
  INFO(table);
  for (const char* set : {"set ban4 {", "set ban6 {", "set ban4_net {", "set ban6_net {"})
    CHECK(table.find(set) != std::string::npos);
  CHECK(table.find("flags interval,timeout") != std::string::npos);
  CHECK(table.find("flags timeout") != std::string::npos);
  CHECK(table.find("hook input priority filter - 5; policy accept;") != std::string::npos);
  CHECK(table.find("ip saddr @ban4 counter packets 0 bytes 0 drop") != std::string::npos);
  CHECK(table.find("ip6 saddr @ban6 counter packets 0 bytes 0 drop") != std::string::npos);
  CHECK(table.find("ip saddr @ban4_net counter packets 0 bytes 0 drop") != std::string::npos);
  CHECK(table.find("ip6 saddr @ban6_net counter packets 0 bytes 0 drop") != std::string::npos);
  // Exactly four rules, not eight, after the second EnsureTable.
  size_t rules = 0;
  for (size_t pos = 0; (pos = table.find(" drop", pos)) != std::string::npos; ++pos) ++rules;
  CHECK(rules == 4);
  auto other = Sh("nft list table inet other");
  CHECK(other.find("counter") != std::string::npos);
  REQUIRE(fw->Remove());
  CHECK(Sh("nft list tables").find("inet other") != std::string::npos);
  CHECK(Sh("nft list tables").find("relayban") == std::string::npos);
  Sh("nft delete table inet other");
}

TEST_CASE("10,000 bans are added in one call and listed back with their timeouts") {
  auto fw = Fresh();
  std::vector<FirewallOrder> orders;
  for (uint32_t i = 0; i < 10000; ++i) {
    IpAddress ip = IpAddress::V4(0x0A000000u + i * 3);  // not adjacent: 10,000 separate intervals
    orders.push_back({FirewallOrder::Kind::kBan, Prefix(ip), Seconds(600)});
  }
  auto r = fw->Apply(orders);
  INFO((r ? "" : r.error().ToString()));
  REQUIRE(r);
  CHECK(r->added == 10000);
  auto listed = Listed(*fw);
  CHECK(listed.size() == 10000);
  for (const auto& [k, e] : listed) {
    REQUIRE(e.timeout);
    CHECK(*e.timeout == Seconds(600));
    REQUIRE(e.remaining);
    CHECK(*e.remaining <= Micros(600'000'000));
    CHECK(*e.remaining > Micros(590'000'000));
  }
  CHECK(InSet("ban4", "10.0.117.45"));  // the last one: 10.0.0.0 + 3 * 9999
  CHECK_FALSE(InSet("ban4", "10.0.117.46"));
  CHECK(fw->Remove());
}

TEST_CASE("a 2-second ban expires on its own, a permanent one does not") {
  auto fw = Fresh();
  REQUIRE(fw->Apply({Ban("192.0.2.10", 2), Ban("192.0.2.11", 0)}));
  auto before = Listed(*fw);
  CHECK(before.count("192.0.2.10"));
  REQUIRE(before.count("192.0.2.11"));
  CHECK_FALSE(before["192.0.2.11"].remaining);
  // Wait for the kernel to expire it (polling, with a generous bound; nothing is timed).
  auto after = Listed(*fw);
  for (int i = 0; i < 200 && after.count("192.0.2.10"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    after = Listed(*fw);
  }
  CHECK_FALSE(after.count("192.0.2.10"));
  CHECK(after.count("192.0.2.11"));
  CHECK_FALSE(InSet("ban4", "192.0.2.10"));
  CHECK(fw->Remove());
}

TEST_CASE("unban removes, unbanning what is not banned succeeds, banning twice refreshes") {
  auto fw = Fresh();
  REQUIRE(fw->Apply({Ban("192.0.2.20", 60), Ban("2001:db8::20", 60)}));
  REQUIRE(fw->Apply({Ban("192.0.2.20", 3600)}));
  auto l = Listed(*fw);
  REQUIRE(l.count("192.0.2.20"));
  CHECK(*l["192.0.2.20"].timeout == Seconds(3600));
  auto r = fw->Apply({Unban("192.0.2.20"), Unban("2001:db8::20"), Unban("198.51.100.99")});
  INFO((r ? "" : r.error().ToString()));
  REQUIRE(r);
  CHECK(Listed(*fw).empty());
  CHECK_FALSE(InSet("ban4", "192.0.2.20"));
  CHECK(fw->Remove());
}

TEST_CASE("a /24 ban covers the addresses inside it, overlapping bans never abort a batch") {
  auto fw = Fresh();
  REQUIRE(fw->Apply({Ban("203.0.113.7", 600)}));
  auto r = fw->Apply({Ban("203.0.113.0/24", 600), Ban("203.0.113.9", 600)});
  INFO((r ? "" : r.error().ToString()));
  REQUIRE(r);
  REQUIRE(r->skipped.size() == 1);
  CHECK(r->skipped[0].first.ToString() == "203.0.113.9");
  auto l = Listed(*fw);
  CHECK(l.size() == 1);
  CHECK(l.count("203.0.113.0/24"));
  CHECK(InSet("ban4_net", "203.0.113.200"));
  CHECK_FALSE(InSet("ban4_net", "203.0.114.1"));
  CHECK_FALSE(InSet("ban4", "203.0.113.7"));  // replaced by the /24
  // The same in one batch, narrow first.
  REQUIRE(fw->Apply({Ban("198.51.100.5", 600), Ban("198.51.100.0/25", 600)}));
  CHECK(Listed(*fw).count("198.51.100.0/25"));
  CHECK_FALSE(Listed(*fw).count("198.51.100.5"));
  CHECK(fw->Remove());
}

TEST_CASE("IPv6 single addresses and /64 prefixes") {
  auto fw = Fresh();
  REQUIRE(fw->Apply({Ban("2001:db8:1::7", 600), Ban("2001:db8:2::/64", 600)}));
  auto l = Listed(*fw);
  CHECK(l.count("2001:db8:1::7"));
  CHECK(l.count("2001:db8:2::/64"));
  CHECK(InSet("ban6_net", "2001:db8:2::ffff:1"));
  CHECK(InSet("ban6", "2001:db8:1::7"));
  CHECK_FALSE(InSet("ban6", "2001:db8:1::8"));
  CHECK_FALSE(InSet("ban4", "32.1.13.184"));  // v4 set untouched
  CHECK(fw->Remove());
}

TEST_CASE("an external nft flush ruleset is detected and the table rebuilt with its bans") {
  FirewallSpecOptions o;
  o.ownership = FirewallSpecOptions::Ownership::kNone;
  auto fw = Fresh(o);
  std::vector<FirewallOrder> bans = {Ban("192.0.2.30", 600), Ban("2001:db8::30", 600)};
  REQUIRE(fw->Apply(bans));
  // Our own changes are not someone else's.
  auto check = fw->Check();
  REQUIRE(check);
  CHECK(*check == Integrity::kUnchanged);
  REQUIRE(fw->Apply({Ban("192.0.2.31", 600)}));
  CHECK(*fw->Check() == Integrity::kUnchanged);
  Sh("nft flush ruleset");
  check = fw->Check();
  REQUIRE(check);
  CHECK(*check == Integrity::kBroken);
  REQUIRE(fw->Rebuild(bans));
  CHECK(*fw->Check() == Integrity::kUnchanged);
  CHECK(Listed(*fw).size() == 2);
  // A deleted rule is noticed as well.
  Sh("nft delete rule inet relayban input handle $(nft -a list chain inet relayban input | awk '/@ban4 / {print $NF}')");
  CHECK(*fw->Check() == Integrity::kBroken);
  REQUIRE(fw->Rebuild(bans));
  CHECK(*fw->Check() == Integrity::kUnchanged);
  // A flushed set leaves the table whole, but is a change by someone else.
  Sh("nft flush set inet relayban ban4");
  CHECK(*fw->Check() == Integrity::kChanged);
  CHECK(Listed(*fw).size() == 1);
  CHECK(*fw->Check() == Integrity::kUnchanged);
  // A change to another table alone does not disturb ours, though it is a change.
  Sh("nft add table inet unrelated");
  CHECK(*fw->Check() == Integrity::kChanged);
  Sh("nft delete table inet unrelated");
  CHECK(fw->Remove());
}

TEST_CASE("the fallbacks for kernels before 6.3 work: DELSETELEM, no END ack, no persistent table") {
  RequirePrivateNetns();
  Sh("nft delete table inet relayban");
  KernelCaps old;  // everything off, as on Debian 12's 6.1
  auto fw = NftFirewall::Open({}, old);
  REQUIRE(fw);
  REQUIRE((*fw)->EnsureTable());
  CHECK((*fw)->table_flags() == 0);
  REQUIRE((*fw)->Apply({Ban("192.0.2.60", 600), Ban("203.0.113.0/24", 600), Ban("2001:db8:60::/64", 600)}));
  REQUIRE((*fw)->Apply({Ban("192.0.2.60", 1200)}));  // refresh: delete and add
  auto l = Listed(**fw);
  REQUIRE(l.count("192.0.2.60"));
  CHECK(*l["192.0.2.60"].timeout == Seconds(1200));
  // Unbanning what is not there must not abort the transaction with ENOENT.
  auto r = (*fw)->Apply({Unban("192.0.2.60"), Unban("198.51.100.1"), Unban("203.0.113.0/24")});
  INFO((r ? "" : r.error().ToString()));
  REQUIRE(r);
  // An element that expired or was removed behind our back: the retry after re-reading works.
  Sh("nft delete element inet relayban ban6_net '{ 2001:db8:60::/64 }'");
  r = (*fw)->Apply({Unban("2001:db8:60::/64")});
  INFO((r ? "" : r.error().ToString()));
  REQUIRE(r);
  CHECK(Listed(**fw).empty());
  CHECK((*fw)->Remove());
}

TEST_CASE("a ban into a table someone deleted fails with a clear error") {
  FirewallSpecOptions o;
  o.ownership = FirewallSpecOptions::Ownership::kNone;
  auto fw = Fresh(o);
  Sh("nft delete table inet relayban");
  auto r = fw->Apply({Ban("192.0.2.50", 60)});
  REQUIRE_FALSE(r);
  INFO(r.error().ToString());
  CHECK(r.error().ToString().find("No such file or directory") != std::string::npos);
  CHECK(r.error().kind == ErrorKind::kNotFound);
  CHECK(*fw->Check() == Integrity::kBroken);
}

TEST_CASE("an owned table cannot be changed or flushed by others and outlives its process") {
  if (!ProbeKernel().persist) {
    RELAYBAN_SKIP("kernel before 6.9: no persistent owned tables");
  }
  auto fw = Fresh();
  CHECK((fw->table_flags() & nft::kTableFlagPersist) != 0);
  REQUIRE(fw->Apply({Ban("192.0.2.40", 600)}));
  int rc = 0;
  Sh("nft add element inet relayban ban4 '{ 192.0.2.41 }'", &rc);
  CHECK(rc != 0);  // EPERM: we own it
  Sh("nft flush ruleset");
  CHECK(InSet("ban4", "192.0.2.40"));
  fw.reset();  // our socket closes, as when the daemon dies
  CHECK(InSet("ban4", "192.0.2.40"));
  // A new instance re-adopts the orphaned table and finds the ban.
  auto again = NftFirewall::Open({});
  REQUIRE(again);
  REQUIRE((*again)->EnsureTable());
  CHECK(Listed(**again).count("192.0.2.40"));
  CHECK((*again)->Remove());
}

TEST_CASE("an owned table is unchanged by others' commits elsewhere, and a restart takes its elements as left without a list") {
  if (!ProbeKernel().persist) {
    RELAYBAN_SKIP("kernel before 6.9: no persistent owned tables");
  }
  auto fw = Fresh();
  REQUIRE(fw->Apply({Ban("192.0.2.70", 600), Ban("198.51.100.0/24", 600)}));
  Sh("nft add table inet unrelated");
  CHECK(*fw->Check() == Integrity::kUnchanged);  // nobody else can touch our elements
  Sh("nft delete table inet unrelated");
  CHECK(*fw->Check() == Integrity::kUnchanged);
  auto gen = fw->Generation();
  REQUIRE(gen);
  REQUIRE(*gen);
  fw.reset();  // a clean exit: the table stays, orphaned
  auto again = NftFirewall::Open({});
  REQUIRE(again);
  auto now = (*again)->Generation();
  REQUIRE(now);
  CHECK(*now == *gen);  // the process going away committed nothing
  REQUIRE((*again)->EnsureTable());
  (*again)->Assume({{*Prefix::Parse("192.0.2.70"), Micros(Seconds(590)), Seconds(600)},
                    {*Prefix::Parse("198.51.100.0/24"), Micros(Seconds(590)), Seconds(600)}});
  // Transactions built on the assumed picture work: refresh, a wider ban over a narrower one, unban.
  auto r = (*again)->Apply({Ban("192.0.2.70", 1200), Ban("198.51.0.0/16", 600)});
  INFO((r ? "" : r.error().ToString()));
  REQUIRE(r);
  REQUIRE((*again)->Apply({Unban("192.0.2.70")}));
  auto l = Listed(**again);
  CHECK(l.count("192.0.2.70") == 0);
  CHECK(l.count("198.51.0.0/16") == 1);
  CHECK(l.count("198.51.100.0/24") == 0);
  CHECK((*again)->Remove());
}

TEST_CASE("packets from a banned address are dropped and counted, and pass after unban (IPv4 and IPv6)") {
  RequirePrivateNetns();
  int rc = 0;
  Sh("command -v ping && command -v nsenter && command -v ip", &rc);
  if (rc != 0) {
    RELAYBAN_SKIP("ping, nsenter or ip missing");
  }
  // A second namespace held by a sleeping child, joined to ours by a veth pair.
  pid_t peer = fork();
  REQUIRE(peer >= 0);
  if (peer == 0) {
    if (unshare(CLONE_NEWNET) != 0) _exit(1);
    execlp("sleep", "sleep", "60", nullptr);
    _exit(1);
  }
  // Wait until the child is in its own namespace.
  auto own_ns = [](const std::string& pid) {
    struct stat st {};
    return stat(("/proc/" + pid + "/ns/net").c_str(), &st) == 0 ? st.st_ino : 0;
  };
  for (int i = 0; i < 1000 && own_ns(std::to_string(peer)) == own_ns("self"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(own_ns(std::to_string(peer)) != own_ns("self"));
  std::string p = std::to_string(peer);
  std::string in_peer = "nsenter -t " + p + " -n ";
  Sh("ip link set lo up; ip link add rb0 type veth peer name rb1 netns " + p +
     "; ip addr add 10.99.0.1/24 dev rb0; ip -6 addr add 2001:db8:99::1/64 dev rb0 nodad; ip link set rb0 up");
  Sh(in_peer + "ip link set lo up; " + in_peer + "ip addr add 10.99.0.2/24 dev rb1; " + in_peer +
     "ip -6 addr add 2001:db8:99::2/64 dev rb1 nodad; " + in_peer + "ip link set rb1 up");
  auto ping = [&](const char* addr) {
    int r = 0;
    Sh(in_peer + "ping -c 2 -i 0.2 -W 1 " + std::string(addr), &r);
    return r == 0;
  };
  auto fw = Fresh();
  CHECK(ping("10.99.0.1"));
  CHECK(ping("2001:db8:99::1"));
  REQUIRE(fw->Apply({Ban("10.99.0.2", 600), Ban("2001:db8:99::/64", 600)}));
  CHECK_FALSE(ping("10.99.0.1"));
  CHECK_FALSE(ping("2001:db8:99::1"));
  auto table = Sh("nft list chain inet relayban input");
  CHECK(table.find("@ban4 counter packets 0 ") == std::string::npos);  // the counters grew
  CHECK(table.find("@ban6_net counter packets 0 ") == std::string::npos);
  REQUIRE(fw->Apply({Unban("10.99.0.2"), Unban("2001:db8:99::/64")}));
  CHECK(ping("10.99.0.1"));
  CHECK(ping("2001:db8:99::1"));
  CHECK(fw->Remove());
  kill(peer, SIGKILL);
  waitpid(peer, nullptr, 0);
  Sh("ip link del rb0");
}
