// FakeFirewall: a Firewall for unit tests. Records every call, keeps the bans in a map, and
// can be told to fail the next calls, to fail for good, or that someone else flushed or
// deleted its table. Not for production: the daemon uses NftFirewall or the dry-run firewall.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "relayban/firewall/firewall.hpp"

namespace relayban::testing {

class FakeFirewall : public Firewall {
 public:
  std::vector<std::vector<FirewallOrder>> applied;  // every successful Apply call, in order
  std::map<Prefix, Seconds> bans;
  int ensure_calls = 0, rebuild_calls = 0, apply_calls = 0, list_calls = 0;
  int fail_next = 0;       // how many of the next calls fail
  bool fail_all = false;   // every call fails until cleared
  Error failure{"simulated failure", {}, ErrorKind::kOther};
  Integrity integrity = Integrity::kUnchanged;  // what the next Check reports (then kUnchanged)
  bool table = true;       // false: deleted by someone else; Apply fails until Rebuild
  std::set<Prefix> refuse;  // a transaction touching one of these fails (the kernel refuses it)
  std::function<void()> on_apply;  // called by every Apply (a test advancing its clock)
  size_t applying = 0;             // orders of the Apply under way, for on_apply
  uint32_t generation = 1;         // rises with every change (ours or someone else's)
  int assume_calls = 0;
  std::vector<FirewallElement> assumed;

  // What someone else could do to the kernel behind the daemon's back.
  void FlushElements() {
    ++generation;
    bans.clear();
    integrity = Integrity::kChanged;
  }
  void DeleteTable() {
    ++generation;
    bans.clear();
    table = false;
    integrity = Integrity::kBroken;
  }

  Result<void> EnsureTable() override {
    ++ensure_calls;
    if (Failing()) return Fail(failure);
    table = true;
    ++generation;
    return {};
  }
  Result<ApplyReport> Apply(const std::vector<FirewallOrder>& orders) override {
    ++apply_calls;
    applying = orders.size();
    if (on_apply) on_apply();
    if (Failing()) return Fail(failure);
    if (!table) return Fail(ErrorKind::kNotFound, "set ban4: No such file or directory");
    for (const auto& o : orders)
      if (refuse.count(o.target)) return Fail("element " + o.target.ToString() + ": Invalid argument");
    applied.push_back(orders);
    ++generation;
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
    ++list_calls;
    if (Failing()) return Fail(failure);
    std::vector<FirewallElement> out;
    for (const auto& [p, t] : bans)
      out.push_back({p, t.count() ? std::optional<Micros>(t) : std::nullopt, t.count() ? std::optional<Seconds>(t) : std::nullopt});
    return out;
  }
  Result<std::optional<uint32_t>> Generation() override {
    if (Failing()) return Fail(failure);
    return std::optional<uint32_t>{generation};
  }
  void Assume(const std::vector<FirewallElement>& elements) override {
    ++assume_calls;
    assumed = elements;
  }
  Result<Integrity> Check() override {
    if (Failing()) return Fail(failure);
    Integrity i = integrity;
    integrity = Integrity::kUnchanged;
    return i;
  }
  Result<void> Rebuild(const std::vector<FirewallOrder>& b) override {
    ++rebuild_calls;
    if (Failing()) return Fail(failure);
    bans.clear();
    for (const auto& o : b) bans[o.target] = o.timeout;
    table = true;
    ++generation;
    return {};
  }
  Result<void> Remove() override {
    if (Failing()) return Fail(failure);
    bans.clear();
    return {};
  }
  std::string Describe() const override { return "fake"; }

  // How many Apply calls carried a ban or an unban of `target`.
  size_t Touches(const std::string& target) const {
    size_t n = 0;
    for (const auto& call : applied)
      for (const auto& o : call) n += o.target.ToString() == target;
    return n;
  }
  bool Has(const std::string& target) const { return bans.count(*Prefix::Parse(target)) > 0; }

 private:
  bool Failing() {
    if (fail_all) return true;
    if (fail_next <= 0) return false;
    --fail_next;
    return true;
  }
};

}  // namespace relayban::testing
