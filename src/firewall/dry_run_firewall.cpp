#include <map>

#include "relayban/firewall/firewall.hpp"

namespace relayban {
namespace {

class DryRunFirewall : public Firewall {
 public:
  explicit DryRunFirewall(std::function<void(const std::string&)> log) : log_(std::move(log)) {}

  Result<void> EnsureTable() override {
    log_("dry-run: would create table inet relayban");
    return {};
  }
  Result<ApplyReport> Apply(const std::vector<FirewallOrder>& orders) override {
    ApplyReport r;
    for (const auto& o : orders) {
      if (o.kind == FirewallOrder::Kind::kBan) {
        bans_[o.target] = o.timeout;
        ++r.added;
        log_("dry-run: would ban " + o.target.ToString() +
             (o.timeout.count() ? " for " + FormatDuration(o.timeout) : std::string(" permanently")));
      } else {
        r.removed += bans_.erase(o.target);
        log_("dry-run: would unban " + o.target.ToString());
      }
    }
    return r;
  }
  Result<std::vector<FirewallElement>> List() override {
    std::vector<FirewallElement> out;
    for (const auto& [p, t] : bans_)
      out.push_back({p, std::nullopt, t.count() ? std::optional<Seconds>(t) : std::nullopt});
    return out;
  }
  Result<Integrity> Check() override { return Integrity::kUnchanged; }
  Result<std::optional<uint32_t>> Generation() override { return std::optional<uint32_t>{}; }
  void Assume(const std::vector<FirewallElement>&) override {}
  Result<void> Rebuild(const std::vector<FirewallOrder>& bans) override {
    bans_.clear();
    if (auto r = Apply(bans); !r) return Fail(r.error());
    return {};
  }
  Result<void> Remove() override {
    bans_.clear();
    log_("dry-run: would remove table inet relayban");
    return {};
  }
  std::string Describe() const override { return "dry-run"; }

 private:
  std::function<void(const std::string&)> log_;
  std::map<Prefix, Seconds> bans_;
};

}  // namespace

std::unique_ptr<Firewall> MakeDryRunFirewall(std::function<void(const std::string&)> log) {
  return std::make_unique<DryRunFirewall>(std::move(log));
}

}  // namespace relayban
