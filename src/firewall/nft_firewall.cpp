#include "nft_firewall.hpp"

#include <linux/netfilter/nf_tables.h>
#include <sys/utsname.h>

#include <algorithm>
#include <set>
#include <cstdio>
#include <cstring>
#include <libmnl/libmnl.h>

namespace relayban {
namespace {

std::string ErrnoText(int e) { return std::strerror(e); }
ErrorKind KindOf(int e) {
  return e == EPERM || e == EACCES ? ErrorKind::kPermission : e == ENOENT ? ErrorKind::kNotFound : ErrorKind::kOther;
}

bool Contains(const Prefix& wide, const Prefix& narrow) {
  return wide.length() < narrow.length() && wide.Contains(narrow.address());
}

}  // namespace

KernelCaps ProbeKernel() {
  KernelCaps c;
  utsname u{};
  if (uname(&u) != 0) return c;
  int major = 0, minor = 0;
  if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return c;
  auto at_least = [&](int M, int m) { return major > M || (major == M && minor >= m); };
  c.destroy = at_least(6, 3);
  c.persist = at_least(6, 9);
  c.end_ack = at_least(6, 10);
  c.timeout_update = at_least(6, 12);
  return c;
}

NftFirewall::NftFirewall(std::unique_ptr<nft::NetlinkSocket> sock, FirewallSpecOptions o, KernelCaps caps)
    : sock_(std::move(sock)), opt_(std::move(o)), caps_(caps) {
  table_flags_ = (opt_.ownership == FirewallSpecOptions::Ownership::kAuto && caps_.persist)
                     ? nft::kTableFlagOwner | nft::kTableFlagPersist
                     : 0;
}

Result<std::unique_ptr<NftFirewall>> NftFirewall::Open(const FirewallSpecOptions& options, std::optional<KernelCaps> caps) {
  auto sock = nft::NetlinkSocket::Open();
  if (!sock) return Fail(sock.error());
  return std::unique_ptr<NftFirewall>(new NftFirewall(std::move(sock.value()), options, caps.value_or(ProbeKernel())));
}

std::string NftFirewall::Describe() const {
  std::string s = "nftables table inet " + opt_.table;
  if (table_flags_ & nft::kTableFlagPersist) s += " (owner, persist)";
  return s;
}

nft::SchemaOptions NftFirewall::Schema() const {
  return {opt_.table, opt_.input, opt_.forward, opt_.reject, table_flags_};
}

Result<NftFirewall::Commit> NftFirewall::Send(nft::BatchBuilder& b, const std::vector<Prefix>& element_targets) {
  auto sent = sock_->SendBatch(b.bytes());
  if (!sent) return Fail(sent.error());
  Commit c;
  c.uncertain = sent->lost_acks;
  uint32_t end_seq = b.messages().back().seq;
  bool end_acked = false;
  for (const nft::Ack& a : sent->acks) {
    if (a.seq == end_seq && a.error == 0) end_acked = true;
    if (a.error == 0 || c.error != 0) continue;
    c.error = a.error;
    auto m = std::find_if(b.messages().begin(), b.messages().end(), [&](const nft::MsgInfo& mi) { return mi.seq == a.seq; });
    if (m == b.messages().end()) continue;
    switch (m->kind) {
      case nft::MsgKind::kBegin: c.where = "transaction"; break;
      case nft::MsgKind::kTable: c.where = "table"; break;
      case nft::MsgKind::kSet: c.where = "set"; break;
      case nft::MsgKind::kChain:
      case nft::MsgKind::kFlushChain: c.where = "chain"; break;
      case nft::MsgKind::kRule: c.where = "rule"; break;
      case nft::MsgKind::kDelTable: c.where = "table"; break;
      case nft::MsgKind::kEnd: c.where = "commit"; break;
      case nft::MsgKind::kAddElems:
      case nft::MsgKind::kDelElems: {
        // The extended ack's offset points at the failing element's nest, whose type is
        // its 1-based index within the message.
        size_t idx = m->first;
        if (a.offset >= sizeof(nlmsghdr) && m->offset + a.offset + sizeof(nlattr) <= b.bytes().size()) {
          auto* attr = reinterpret_cast<const nlattr*>(b.bytes().data() + m->offset + a.offset);
          uint16_t n = mnl_attr_get_type(attr);
          if (n >= 1 && n <= m->count) idx = m->first + n - 1;
        }
        c.where = idx < element_targets.size() ? "element " + element_targets[idx].ToString() : "elements";
        break;
      }
    }
  }
  if (c.error == 0 && caps_.end_ack && !end_acked) c.uncertain = true;
  return c;
}

Result<int> NftFirewall::Exists(uint16_t msg_type, const std::string& name) {
  return sock_->Request(nft::GetObjectRequest(msg_type, opt_.table, name, sock_->NextSeq()), [](const nlmsghdr*) {});
}

Result<std::optional<uint32_t>> NftFirewall::GenId() {
  std::optional<uint32_t> gen;
  auto r = sock_->Request(nft::GetGenRequest(sock_->NextSeq()), [&](const nlmsghdr* nlh) { gen = nft::ParseGenId(nlh); });
  if (!r) return Fail(r.error());
  return gen;
}

Result<void> NftFirewall::EnsureTable() {
  nft::BatchBuilder b(sock_->NextSeq());
  b.Begin();
  b.Schema(Schema());
  b.End(caps_.end_ack);
  auto c = Send(b, {});
  if (!c) return Fail(c.error());
  if (c->error == EOPNOTSUPP && c->where == "table") {
    // The table exists with other flags (made by an older relayban, or with ownership off):
    // build it anew in one transaction and keep its bans.
    auto old = List();
    std::vector<FirewallOrder> keep;
    if (old)
      for (const auto& e : *old)
        keep.push_back({FirewallOrder::Kind::kBan, e.target,
                        e.remaining ? std::chrono::duration_cast<Seconds>(*e.remaining) + Seconds(1) : Seconds(0)});
    return Rebuild(keep);
  }
  if (c->error == EPERM)
    return Fail(ErrorKind::kPermission, "cannot change table inet " + opt_.table + ": " + ErrnoText(EPERM) +
                                            " (not root / no CAP_NET_ADMIN, or another process owns the table)");
  if (c->error)
    return Fail(KindOf(c->error), "creating table inet " + opt_.table + " failed at " + c->where + ": " + ErrnoText(c->error));
  // The sets may hold elements from before: read (List) or assumed (Assume) before the first
  // transaction needs them.
  shadow_known_ = false;
  return {};
}

Result<void> NftFirewall::Resync() {
  auto elems = List();
  if (!elems) return Fail(elems.error());
  return {};
}

void NftFirewall::ShadowFrom(const std::vector<FirewallElement>& elements) {
  shadow_.Clear();
  Clock::time_point now = Clock::now();
  for (const auto& e : elements)
    shadow_.Set(e.target, e.remaining ? now + std::chrono::duration_cast<Clock::duration>(*e.remaining) : Clock::time_point::max());
  shadow_known_ = true;
}

void NftFirewall::Assume(const std::vector<FirewallElement>& elements) {
  ShadowFrom(elements);
  if (auto gen = GenId(); gen && *gen) gen_ = **gen;
}

void NftFirewall::AddElements(nft::BatchBuilder& b, bool add, const std::vector<std::pair<Prefix, Seconds>>& items,
                              std::vector<Prefix>& targets) {
  for (bool net : {false, true}) {
    for (bool v4 : {true, false}) {
      std::vector<nft::ElementKey> keys;
      std::vector<Prefix> key_targets;
      for (const auto& [p, timeout] : items) {
        if (p.address().is_v4() != v4 || nft::IsNet(p) != net) continue;
        std::optional<uint64_t> ms;
        if (add && timeout.count() > 0) ms = static_cast<uint64_t>(timeout.count()) * 1000;
        for (const auto& k : nft::ElementsFor(p, ms)) {
          keys.push_back(k);
          key_targets.push_back(p);
        }
      }
      if (keys.empty()) continue;
      // The batch numbers elements per call; offset them into `targets`, which spans the
      // whole transaction, so an error names the right address.
      size_t base = targets.size();
      targets.insert(targets.end(), key_targets.begin(), key_targets.end());
      size_t before = b.messages().size();
      uint16_t type = add ? uint16_t{NFT_MSG_NEWSETELEM}
                          : (caps_.destroy ? nft::kMsgDestroySetElem : uint16_t{NFT_MSG_DELSETELEM});
      b.Elements(type, opt_.table, v4, net, keys);
      b.ShiftElementIndexes(before, base);
    }
  }
}

Result<ApplyReport> NftFirewall::Apply(const std::vector<FirewallOrder>& orders) {
  auto r = ApplyOnce(orders);
  if (r) return r;
  // The kernel disagreed with what we believed (an element added or expired behind our
  // back, or acks lost): read the sets again and try once more.
  if (auto s = Resync(); !s) return Fail(s.error());
  return ApplyOnce(orders);
}

Result<ApplyReport> NftFirewall::ApplyOnce(const std::vector<FirewallOrder>& orders) {
  if (!shadow_known_)
    if (auto s = Resync(); !s) return Fail(s.error());
  ApplyReport report;
  Clock::time_point now = Clock::now();
  // Elements the kernel has expired: a bounded slice per call, so a transaction never pays
  // for a scan of a million entries.
  shadow_.Purge(now, 4096);
  // Last order per target wins; wider prefixes first so narrower ones can see them (of one
  // length, none is inside another: their order does not matter). Flat tables, not a node
  // per element: a botnet's bans come 10,000 to a transaction.
  // Orders come in the ban ledger's slot order at a restart: the shadow's hash, not the
  // ledger's, or they pile up in one run of these smaller tables.
  using Hash = ElementShadow::Hash;
  FlatMap<Prefix, uint32_t, Hash> last;
  last.Rehash(orders.size() * 10 / 7 + 16);  // sized at once, not grown ten times over
  for (uint32_t i = 0; i < orders.size(); ++i) last[orders[i].target] = i;
  std::vector<uint32_t> sorted;
  sorted.reserve(last.size());
  for (uint32_t i = 0; i < orders.size(); ++i)
    if (*last.Get(orders[i].target) == i) sorted.push_back(i);
  std::stable_sort(sorted.begin(), sorted.end(), [&](uint32_t a, uint32_t b) {
    return orders[a].target.length() < orders[b].target.length();
  });
  // What this transaction changes, applied to the shadow only once the kernel took it:
  // target -> new end, or removed.
  struct Change {
    Clock::time_point end{};
    bool present = false;
  };
  FlatMap<Prefix, Change, Hash> changes;
  changes.Rehash(orders.size() * 10 / 7 + 16);
  std::vector<std::pair<Prefix, Change>> in_order;  // the same, as made: the last one of a target counts
  auto change = [&](const Prefix& t, std::optional<Clock::time_point> end) {
    Change c{end.value_or(Clock::time_point{}), end.has_value()};
    changes[t] = c;
    in_order.emplace_back(t, c);
  };
  auto present = [&](const Prefix& t) -> bool {
    if (const Change* c = changes.Get(t)) return c->present;
    auto end = shadow_.Get(t);
    return end && *end > now;
  };
  std::array<std::array<uint32_t, 129>, 2> added_lengths{};
  // A wider ban that covers `t`: it can only have one of the lengths in use, so finding one
  // is a few lookups, not a scan.
  auto find_wider = [&](const Prefix& t) -> std::optional<Prefix> {
    bool v4 = t.address().is_v4();
    for (int l = 0; l < t.length(); ++l) {
      if (shadow_.Count(v4, l) == 0 && added_lengths[v4][static_cast<size_t>(l)] == 0) continue;
      Prefix wide(t.address(), l);
      if (present(wide)) return wide;
    }
    return std::nullopt;
  };
  std::vector<std::pair<Prefix, Seconds>> dels, adds;
  auto erase_narrower = [&](const Prefix& t) {
    shadow_.ForEachInside(t, [&](const Prefix& inside) {
      if (!present(inside)) return;
      dels.push_back({inside, Seconds(0)});
      change(inside, std::nullopt);
    });
  };
  constexpr size_t kAhead = 16;
  for (size_t k = 0; k < sorted.size(); ++k) {
    if (k + kAhead < sorted.size()) shadow_.Prefetch(orders[sorted[k + kAhead]].target);
    const FirewallOrder& o = orders[sorted[k]];
    const Prefix& t = o.target;
    auto wider = find_wider(t);
    if (o.kind == FirewallOrder::Kind::kUnban) {
      if (present(t) || caps_.destroy) {
        dels.push_back({t, Seconds(0)});
        change(t, std::nullopt);
      }
      if (wider) report.skipped.push_back({t, "inside the ban of " + wider->ToString()});
      continue;
    }
    if (wider) {
      report.skipped.push_back({t, "already covered by the ban of " + wider->ToString()});
      continue;
    }
    // Narrower bans inside this one would overlap its interval: replace them.
    if (!t.is_single()) erase_narrower(t);
    // Re-adding refreshes the timeout only on 6.12+; delete and add in one transaction.
    if (present(t)) dels.push_back({t, Seconds(0)});
    adds.push_back({t, o.timeout});
    change(t, o.timeout.count() > 0 ? now + o.timeout : Clock::time_point::max());
    ++added_lengths[t.address().is_v4()][static_cast<size_t>(t.length())];
  }
  if (dels.empty() && adds.empty()) return report;
  nft::BatchBuilder b(sock_->NextSeq());
  std::vector<Prefix> targets;
  b.Begin();
  AddElements(b, false, dels, targets);
  AddElements(b, true, adds, targets);
  b.End(caps_.end_ack);
  auto c = Send(b, targets);
  if (!c) return Fail(c.error());
  if (c->error) return Fail(KindOf(c->error), c->where + ": " + ErrnoText(c->error));
  if (c->uncertain) return Fail("the kernel's acks were lost (ENOBUFS) or incomplete");
  for (size_t k = 0; k < in_order.size(); ++k) {
    if (k + kAhead < in_order.size()) shadow_.Prefetch(in_order[k + kAhead].first);
    const auto& [p, c] = in_order[k];
    if (c.present) shadow_.Set(p, c.end);
    else shadow_.Erase(p);
  }
  // Our own commit moved the generation on: remember it, so Check tells others' changes apart.
  if (auto g = GenId(); g && *g) gen_ = **g;
  report.added = adds.size();
  // Deleted and not added again (a refreshed timeout is a delete and an add).
  report.removed = static_cast<size_t>(
      std::count_if(dels.begin(), dels.end(), [&](const auto& d) { return !changes.Get(d.first)->present; }));
  return report;
}

Result<std::vector<FirewallElement>> NftFirewall::List() {
  // The generation before the dump: a change made while it runs is seen by the next Check.
  auto gen = GenId();
  if (!gen) return Fail(gen.error());
  std::vector<FirewallElement> out;
  for (bool net : {false, true}) {
    for (bool v4 : {true, false}) {
      std::vector<nft::DumpedElement> raw;
      auto r = sock_->Request(nft::DumpElementsRequest(opt_.table, v4, net, sock_->NextSeq()), [&](const nlmsghdr* nlh) {
        auto e = nft::ParseSetElements(nlh);
        raw.insert(raw.end(), e.begin(), e.end());
      });
      if (!r) return Fail(r.error());
      if (*r < 0)
        return Fail(KindOf(-*r), "listing set " + std::string(nft::SetName(v4, net)) + " of table inet " + opt_.table + ": " +
                    ErrnoText(-*r));
      auto got = net ? nft::PairIntervals(std::move(raw), v4) : nft::Singles(raw, v4);
      out.insert(out.end(), got.begin(), got.end());
    }
  }
  // What was read is our picture now.
  ShadowFrom(out);
  if (*gen) gen_ = **gen;
  return out;
}

Result<Integrity> NftFirewall::Check() {
  // Called every few seconds: the shadow's upkeep goes on when no transaction comes.
  shadow_.Purge(Clock::now(), 4096);
  auto gen = GenId();
  if (!gen) return Fail(gen.error());
  if (*gen && gen_ && **gen == *gen_) return Integrity::kUnchanged;  // nothing committed anywhere
  // Something changed somewhere (any table): check that ours is still whole.
  auto table = Exists(NFT_MSG_GETTABLE, "");
  if (!table) return Fail(table.error());
  if (*table != 0) return Integrity::kBroken;
  for (const char* set : {"ban4", "ban6", "ban4_net", "ban6_net"}) {
    auto s = Exists(NFT_MSG_GETSET, set);
    if (!s) return Fail(s.error());
    if (*s != 0) return Integrity::kBroken;
  }
  std::vector<std::string> chains;
  if (opt_.input) chains.push_back("input");
  if (opt_.forward) chains.push_back("forward");
  for (const auto& ch : chains) {
    auto c = Exists(NFT_MSG_GETCHAIN, ch);
    if (!c) return Fail(c.error());
    if (*c != 0) return Integrity::kBroken;
  }
  size_t rules = 0;
  auto r = sock_->Request(nft::DumpRulesRequest(opt_.table, sock_->NextSeq()), [&](const nlmsghdr*) { ++rules; });
  if (!r) return Fail(r.error());
  if (rules != chains.size() * 4) return Integrity::kBroken;
  gen_ = *gen;
  // Nobody else can change the elements of a table we own: the commit was elsewhere.
  if (table_flags_ & nft::kTableFlagOwner) return Integrity::kUnchanged;
  // Our view of the sets may be stale: read them before the next transaction.
  shadow_known_ = false;
  return Integrity::kChanged;
}

Result<void> NftFirewall::Rebuild(const std::vector<FirewallOrder>& bans) {
  auto exists = Exists(NFT_MSG_GETTABLE, "");
  if (!exists) return Fail(exists.error());
  nft::BatchBuilder b(sock_->NextSeq());
  b.Begin();
  if (*exists == 0) b.DeleteTable(opt_.table);
  b.Schema(Schema());
  std::vector<std::pair<Prefix, Seconds>> adds;
  std::map<Prefix, Seconds> unique;
  for (const auto& o : bans)
    if (o.kind == FirewallOrder::Kind::kBan) unique[o.target] = o.timeout;
  // Drop bans covered by wider ones: overlapping intervals would abort the transaction.
  for (const auto& entry : unique) {
    const Prefix& p = entry.first;
    bool covered = std::any_of(unique.begin(), unique.end(), [&](const auto& kv) { return Contains(kv.first, p); });
    if (!covered) adds.push_back(entry);
  }
  std::vector<Prefix> targets;
  AddElements(b, true, adds, targets);
  b.End(caps_.end_ack);
  auto c = Send(b, targets);
  if (!c) return Fail(c.error());
  if (c->error) return Fail("rebuilding table inet " + opt_.table + " failed at " + c->where + ": " + ErrnoText(c->error));
  // The sets hold exactly what was just added.
  std::vector<FirewallElement> now;
  for (const auto& [p, t] : adds)
    now.push_back({p, t.count() ? std::optional<Micros>(t) : std::nullopt, t.count() ? std::optional<Seconds>(t) : std::nullopt});
  Assume(now);
  return {};
}

Result<void> NftFirewall::Remove() {
  nft::BatchBuilder b(sock_->NextSeq());
  b.Begin();
  b.DeleteTable(opt_.table);
  b.End(caps_.end_ack);
  auto c = Send(b, {});
  if (!c) return Fail(c.error());
  if (c->error && c->error != ENOENT) return Fail("removing table inet " + opt_.table + ": " + ErrnoText(c->error));
  shadow_.Clear();
  shadow_known_ = true;
  return {};
}

Result<std::unique_ptr<Firewall>> OpenNftFirewall(const FirewallSpecOptions& options) {
  auto fw = NftFirewall::Open(options);
  if (!fw) return Fail(fw.error());
  return std::unique_ptr<Firewall>(std::move(fw.value()));
}

}  // namespace relayban
