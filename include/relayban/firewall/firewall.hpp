// Firewall: where ban orders end up. The product's implementation talks nftables over
// netlink (NftFirewall); DryRunFirewall only reports what it would do; tests use the
// recording fake in tests/fakes/. The interface exists so the engine and daemon can be
// tested without a kernel. Not thread-safe: the daemon's loop thread owns it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "relayban/core/duration.hpp"
#include "relayban/core/ip_address.hpp"
#include "relayban/core/result.hpp"

namespace relayban {

struct FirewallOrder {
  enum class Kind : uint8_t { kBan, kUnban };
  Kind kind = Kind::kBan;
  Prefix target;
  Seconds timeout{0};  // kBan: how long, counted by the kernel; 0 = permanent
};

struct FirewallElement {
  Prefix target;
  std::optional<Micros> remaining;  // nullopt = permanent
  std::optional<Seconds> timeout;   // as given when added; nullopt = permanent
};

struct ApplyReport {
  size_t added = 0;
  size_t removed = 0;
  // Orders not carried out, each with the address it concerns (e.g. covered by a wider ban).
  std::vector<std::pair<Prefix, std::string>> skipped;
};

struct FirewallSpecOptions {
  std::string table = "relayban";
  bool input = true;
  bool forward = false;  // for routers: the input hook never sees forwarded packets
  bool reject = false;   // reject (ICMP admin-prohibited / TCP reset) instead of drop
  // Table ownership (kernel >= 6.9: OWNER|PERSIST): nobody else may change the table while we
  // run, and bans stay and keep expiring if we die. kNone keeps a table anyone may change.
  enum class Ownership : uint8_t { kAuto, kNone } ownership = Ownership::kAuto;
};

// What Check found since the previous look.
enum class Integrity : uint8_t {
  kUnchanged,  // nobody committed anything to the ruleset
  kChanged,    // someone else committed something; table, sets, chains and rules are whole,
               // but elements may have been removed (list them to know). Never reported for
               // a table we own: nobody else can change its elements.
  kBroken,     // the table, a set, a chain or a rule is missing or different: rebuild
};

class Firewall {
 public:
  virtual ~Firewall() = default;
  // Creates the table, sets, chains and rules, idempotently (and re-adopts an orphaned
  // owned table). Leaves every other table alone.
  virtual Result<void> EnsureTable() = 0;
  // Applies the orders in one transaction. A ban of an address already banned replaces its
  // timeout; an unban of an address not banned succeeds. Errors name the address concerned.
  virtual Result<ApplyReport> Apply(const std::vector<FirewallOrder>& orders) = 0;
  // Current elements with their remaining time, read from the kernel. The kernel resumes a
  // set dump from its start for every message, so this costs time quadratic in the size of a
  // set (a million elements: tens of seconds): never on a path that could avoid it.
  virtual Result<std::vector<FirewallElement>> List() = 0;
  // The ruleset's generation, which rises with every commit by anyone (nullopt: none).
  virtual Result<std::optional<uint32_t>> Generation() = 0;
  // The caller knows that the kernel holds exactly `elements` (what it left there at a clean
  // exit, with the generation unchanged since): take them as read, without listing.
  virtual void Assume(const std::vector<FirewallElement>& elements) = 0;
  // Whether anyone else changed the ruleset since the last look (our own changes through
  // this object do not count), and whether our table is still whole.
  virtual Result<Integrity> Check() = 0;
  // Builds the table anew and adds `bans` in the same transaction.
  virtual Result<void> Rebuild(const std::vector<FirewallOrder>& bans) = 0;
  // Removes the table (for --flush-on-exit and package purge).
  virtual Result<void> Remove() = 0;
  virtual std::string Describe() const = 0;
};

// Reports every call through `log` and keeps the bans in memory; needs no privileges.
std::unique_ptr<Firewall> MakeDryRunFirewall(std::function<void(const std::string&)> log);

// The product's: nftables over netlink (libnftnl + libmnl), firewall/nft_firewall.hpp.
Result<std::unique_ptr<Firewall>> OpenNftFirewall(const FirewallSpecOptions& options);

}  // namespace relayban
