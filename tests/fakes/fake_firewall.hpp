// FakeFirewall: a Firewall for unit tests. Records every call, keeps the bans in a map, and
// can be told to fail the next calls. Not for production: the daemon uses NftFirewall or
// the dry-run firewall.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "relayban/firewall/firewall.hpp"

namespace relayban::testing {

class FakeFirewall : public Firewall {
 public:
  std::vector<std::vector<FirewallOrder>> applied;  // every Apply call, in order
  std::map<Prefix, Seconds> bans;
  int ensure_calls = 0, rebuild_calls = 0;
  int fail_next = 0;          // how many of the next calls fail
  std::string fail_message = "simulated failure";
  bool intact = true;

  Result<void> EnsureTable() override {
    ++ensure_calls;
    if (Failing()) return Fail(fail_message);
    return {};
  }
  Result<ApplyReport> Apply(const std::vector<FirewallOrder>& orders) override {
    applied.push_back(orders);
    if (Failing()) return Fail(fail_message);
    ApplyReport r;
    for (const auto& o : orders) {
      if (o.kind == FirewallOrder::Kind::kBan) {
        bans[o.target] = o.timeout;
        ++r.added;
      } else {
        r.removed += bans.erase(o.target);
      }
    }
    return r;
  }
  Result<std::vector<FirewallElement>> List() override {
    if (Failing()) return Fail(fail_message);
    std::vector<FirewallElement> out;
    for (const auto& [p, t] : bans) out.push_back({p, std::nullopt, t.count() ? std::optional<Seconds>(t) : std::nullopt});
    return out;
  }
  Result<bool> Intact() override {
    if (Failing()) return Fail(fail_message);
    return intact;
  }
  Result<void> Rebuild(const std::vector<FirewallOrder>& b) override {
    ++rebuild_calls;
    if (Failing()) return Fail(fail_message);
    bans.clear();
    for (const auto& o : b) bans[o.target] = o.timeout;
    intact = true;
    return {};
  }
  Result<void> Remove() override {
    bans.clear();
    return {};
  }
  std::string Describe() const override { return "fake"; }

 private:
  bool Failing() {
    if (fail_next <= 0) return false;
    --fail_next;
    return true;
  }
};

}  // namespace relayban::testing
