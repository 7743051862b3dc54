// NftFirewall: the Firewall on nftables through netlink (libnftnl + libmnl), the product's
// backend. Builds `table inet <name>` with interval+timeout sets ban4/ban6 and base chains
// that drop (or reject) their members; each ban is an element with a kernel timeout, so bans
// expire even if relayban is gone. Never runs nft and never touches another table.
#pragma once

#include <chrono>
#include <array>
#include <map>
#include <memory>

#include "netlink_socket.hpp"
#include "nft_codec.hpp"
#include "element_shadow.hpp"
#include "relayban/firewall/firewall.hpp"

namespace relayban {

struct KernelCaps {
  bool end_ack = false;      // ack on BATCH_END (6.10)
  bool destroy = false;      // DESTROYSETELEM, absent keys are no error (6.3)
  bool persist = false;      // NFT_TABLE_F_PERSIST (6.9)
  bool timeout_update = false;  // re-adding an element refreshes its timeout (6.12)
};

// Reads the running kernel's version and what it implies.
KernelCaps ProbeKernel();

class NftFirewall : public Firewall {
 public:
  // `caps` overrides what the running kernel is taken to support (tests use it to run the
  // fallbacks of older kernels on a new one).
  static Result<std::unique_ptr<NftFirewall>> Open(const FirewallSpecOptions& options,
                                                  std::optional<KernelCaps> caps = std::nullopt);

  Result<void> EnsureTable() override;
  Result<ApplyReport> Apply(const std::vector<FirewallOrder>& orders) override;
  Result<std::vector<FirewallElement>> List() override;
  Result<std::optional<uint32_t>> Generation() override { return GenId(); }
  void Assume(const std::vector<FirewallElement>& elements) override;
  Result<Integrity> Check() override;
  Result<void> Rebuild(const std::vector<FirewallOrder>& bans) override;
  Result<void> Remove() override;
  std::string Describe() const override;

  const KernelCaps& caps() const { return caps_; }
  uint32_t table_flags() const { return table_flags_; }

 private:
  using Clock = std::chrono::steady_clock;
  NftFirewall(std::unique_ptr<nft::NetlinkSocket> sock, FirewallSpecOptions o, KernelCaps caps);

  struct Commit {
    int error = 0;           // first errno reported, 0 if none
    std::string where;       // what it concerned ("element 192.0.2.1", "table", ...)
    bool uncertain = false;  // acks were lost or the END ack is missing: re-read the kernel
  };
  Result<Commit> Send(nft::BatchBuilder& b, const std::vector<Prefix>& element_targets);
  nft::SchemaOptions Schema() const;
  void AddElements(nft::BatchBuilder& b, bool add, const std::vector<std::pair<Prefix, Seconds>>& items,
                   std::vector<Prefix>& targets);
  Result<ApplyReport> ApplyOnce(const std::vector<FirewallOrder>& orders);
  Result<void> Resync();
  Result<std::optional<uint32_t>> GenId();
  Result<int> Exists(uint16_t msg_type, const std::string& name);

  std::unique_ptr<nft::NetlinkSocket> sock_;
  FirewallSpecOptions opt_;
  KernelCaps caps_;
  uint32_t table_flags_ = 0;
  std::optional<uint32_t> gen_;
  // The adapter's picture of its sets, to order a transaction (a prefix ban replaces the
  // narrower ones inside it; delete before add where re-adding does not refresh the timeout;
  // no delete of what is not there on kernels without DESTROY). Not an owner of what is
  // banned - the daemon's ban ledger is; this is re-read from the kernel whenever the two
  // may disagree. An entry whose end has passed counts as gone and is purged a slice at a
  // time.
  ElementShadow shadow_;
  bool shadow_known_ = false;  // false: read the sets before the next transaction
  void ShadowFrom(const std::vector<FirewallElement>& elements);
};

}  // namespace relayban
