#include "nft_codec.hpp"

#include <arpa/inet.h>
#include <endian.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <algorithm>
#include <cstring>
#include <map>

namespace relayban::nft {
namespace {

// Transaction-local ids, so rules can refer to sets created in the same batch.
uint32_t SetId(bool v4, bool net) { return (v4 ? 1u : 2u) + (net ? 2u : 0u); }
constexpr int32_t kChainPriority = -5;  // "filter - 5": before ordinary filter chains

// Adds 1 to a big-endian number of `len` bytes; false on overflow (top of the space).
bool Increment(std::array<uint8_t, 16>& key, uint8_t len) {
  for (int i = len - 1; i >= 0; --i) {
    if (++key[static_cast<size_t>(i)] != 0) return true;
  }
  return false;
}

struct TableDeleter { void operator()(nftnl_table* t) const { nftnl_table_free(t); } };
struct ChainDeleter { void operator()(nftnl_chain* c) const { nftnl_chain_free(c); } };
struct SetDeleter { void operator()(nftnl_set* s) const { nftnl_set_free(s); } };
struct RuleDeleter { void operator()(nftnl_rule* r) const { nftnl_rule_free(r); } };

void AddExpr(nftnl_rule* r, nftnl_expr* e) { nftnl_rule_add_expr(r, e); }

}  // namespace

const char* SetName(bool v4, bool net) {
  if (net) return v4 ? "ban4_net" : "ban6_net";
  return v4 ? "ban4" : "ban6";
}

std::vector<ElementKey> ElementsFor(const Prefix& p, std::optional<uint64_t> timeout_ms) {
  if (IsNet(p)) return IntervalElements(p, timeout_ms);
  ElementKey k;
  k.len = p.address().is_v4() ? 4 : 16;
  std::copy_n(p.address().bytes().begin(), k.len, k.key.begin());
  k.timeout_ms = timeout_ms;
  return {k};
}

std::vector<ElementKey> IntervalElements(const Prefix& p, std::optional<uint64_t> timeout_ms) {
  std::vector<ElementKey> out;
  ElementKey start;
  start.len = p.address().is_v4() ? 4 : 16;
  std::copy_n(p.address().bytes().begin(), start.len, start.key.begin());
  start.timeout_ms = timeout_ms;
  // The end of [start, end) is the first address after the prefix.
  ElementKey end = start;
  end.timeout_ms.reset();
  end.interval_end = true;
  int host_bits = p.address().max_prefix() - p.length();
  for (int bit = 0; bit < host_bits; ++bit) end.key[static_cast<size_t>((start.len * 8 - 1 - bit) / 8)] |=
      static_cast<uint8_t>(1u << (bit % 8));
  bool has_end = Increment(end.key, end.len);
  out.push_back(start);
  if (has_end) out.push_back(end);
  return out;
}

char* BatchBuilder::Reserve(size_t n) {
  size_t at = buf_.size();
  buf_.resize(at + n);
  return buf_.data() + at;
}

void BatchBuilder::Commit(char* start, MsgKind kind, size_t first, size_t count) {
  auto* nlh = reinterpret_cast<nlmsghdr*>(start);
  size_t offset = static_cast<size_t>(start - buf_.data());
  buf_.resize(offset + NLMSG_ALIGN(nlh->nlmsg_len));
  msgs_.push_back({nlh->nlmsg_seq, kind, offset, first, count});
}

void BatchBuilder::Begin() {
  char* p = Reserve(MNL_SOCKET_BUFFER_SIZE);
  nftnl_batch_begin(p, seq_++);
  Commit(p, MsgKind::kBegin);
}

void BatchBuilder::End(bool ack) {
  char* p = Reserve(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = nftnl_batch_end(p, seq_++);
  // Kernels before 6.10 ignore the flag; the caller knows whether an ack will come.
  if (ack) nlh->nlmsg_flags |= NLM_F_ACK;
  Commit(p, MsgKind::kEnd);
}

void BatchBuilder::Schema(const SchemaOptions& o) {
  {
    std::unique_ptr<nftnl_table, TableDeleter> t(nftnl_table_alloc());
    nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, o.table.c_str());
    nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, NFPROTO_INET);
    nftnl_table_set_u32(t.get(), NFTNL_TABLE_FLAGS, o.table_flags);  // explicit 0 also wakes a dormant table
    char* p = Reserve(MNL_SOCKET_BUFFER_SIZE);
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(p, NFT_MSG_NEWTABLE, NFPROTO_INET, NLM_F_CREATE | NLM_F_ACK, seq_++);
    nftnl_table_nlmsg_build_payload(nlh, t.get());
    Commit(p, MsgKind::kTable);
  }
  for (bool net : {false, true}) {
    for (bool v4 : {true, false}) {
      std::unique_ptr<nftnl_set, SetDeleter> s(nftnl_set_alloc());
      nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, o.table.c_str());
      nftnl_set_set_str(s.get(), NFTNL_SET_NAME, SetName(v4, net));
      nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, NFPROTO_INET);
      nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, v4 ? 4 : 16);
      nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, v4 ? 7 : 8);  // nft's ipv4_addr / ipv6_addr
      nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, net ? NFT_SET_INTERVAL | NFT_SET_TIMEOUT : NFT_SET_TIMEOUT);
      nftnl_set_set_u32(s.get(), NFTNL_SET_ID, SetId(v4, net));
      char* p = Reserve(MNL_SOCKET_BUFFER_SIZE);
      nlmsghdr* nlh = nftnl_nlmsg_build_hdr(p, NFT_MSG_NEWSET, NFPROTO_INET, NLM_F_CREATE | NLM_F_ACK, seq_++);
      nftnl_set_nlmsg_build_payload(nlh, s.get());
      Commit(p, MsgKind::kSet);
    }
  }
  std::vector<std::pair<const char*, uint32_t>> chains;
  if (o.input) chains.emplace_back("input", NF_INET_LOCAL_IN);
  if (o.forward) chains.emplace_back("forward", NF_INET_FORWARD);
  for (auto [name, hook] : chains) {
    std::unique_ptr<nftnl_chain, ChainDeleter> c(nftnl_chain_alloc());
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, o.table.c_str());
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, name);
    nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, NFPROTO_INET);
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, "filter");
    nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, hook);
    nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, kChainPriority);
    nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
    char* p = Reserve(MNL_SOCKET_BUFFER_SIZE);
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(p, NFT_MSG_NEWCHAIN, NFPROTO_INET, NLM_F_CREATE | NLM_F_ACK, seq_++);
    nftnl_chain_nlmsg_build_payload(nlh, c.get());
    Commit(p, MsgKind::kChain);

    // Rules are not idempotent: flush the chain and add them again in this transaction.
    std::unique_ptr<nftnl_rule, RuleDeleter> flush(nftnl_rule_alloc());
    nftnl_rule_set_str(flush.get(), NFTNL_RULE_TABLE, o.table.c_str());
    nftnl_rule_set_str(flush.get(), NFTNL_RULE_CHAIN, name);
    nftnl_rule_set_u32(flush.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
    p = Reserve(MNL_SOCKET_BUFFER_SIZE);
    nlh = nftnl_nlmsg_build_hdr(p, NFT_MSG_DELRULE, NFPROTO_INET, NLM_F_ACK, seq_++);
    nftnl_rule_nlmsg_build_payload(nlh, flush.get());
    Commit(p, MsgKind::kFlushChain);

    for (int set = 0; set < 4; ++set) {
      bool v4 = set % 2 == 0, net = set >= 2;
      std::unique_ptr<nftnl_rule, RuleDeleter> r(nftnl_rule_alloc());
      nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, o.table.c_str());
      nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, name);
      nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
      // meta nfproto ipv4|ipv6: without it an IPv6 packet's bytes would be looked up in ban4.
      nftnl_expr* meta = nftnl_expr_alloc("meta");
      nftnl_expr_set_u32(meta, NFTNL_EXPR_META_KEY, NFT_META_NFPROTO);
      nftnl_expr_set_u32(meta, NFTNL_EXPR_META_DREG, NFT_REG_1);
      AddExpr(r.get(), meta);
      nftnl_expr* cmp = nftnl_expr_alloc("cmp");
      uint8_t proto = v4 ? NFPROTO_IPV4 : NFPROTO_IPV6;
      nftnl_expr_set_u32(cmp, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
      nftnl_expr_set_u32(cmp, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
      nftnl_expr_set(cmp, NFTNL_EXPR_CMP_DATA, &proto, sizeof proto);
      AddExpr(r.get(), cmp);
      nftnl_expr* payload = nftnl_expr_alloc("payload");
      nftnl_expr_set_u32(payload, NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
      nftnl_expr_set_u32(payload, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
      nftnl_expr_set_u32(payload, NFTNL_EXPR_PAYLOAD_OFFSET, v4 ? 12 : 8);  // source address
      nftnl_expr_set_u32(payload, NFTNL_EXPR_PAYLOAD_LEN, v4 ? 4 : 16);
      AddExpr(r.get(), payload);
      nftnl_expr* lookup = nftnl_expr_alloc("lookup");
      nftnl_expr_set_u32(lookup, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
      nftnl_expr_set_str(lookup, NFTNL_EXPR_LOOKUP_SET, SetName(v4, net));
      nftnl_expr_set_u32(lookup, NFTNL_EXPR_LOOKUP_SET_ID, SetId(v4, net));
      AddExpr(r.get(), lookup);
      AddExpr(r.get(), nftnl_expr_alloc("counter"));
      if (o.reject) {
        nftnl_expr* rej = nftnl_expr_alloc("reject");
        nftnl_expr_set_u32(rej, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_ICMPX_UNREACH);
        nftnl_expr_set_u8(rej, NFTNL_EXPR_REJECT_CODE, NFT_REJECT_ICMPX_ADMIN_PROHIBITED);
        AddExpr(r.get(), rej);
      } else {
        nftnl_expr* imm = nftnl_expr_alloc("immediate");
        nftnl_expr_set_u32(imm, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
        nftnl_expr_set_u32(imm, NFTNL_EXPR_IMM_VERDICT, NF_DROP);
        AddExpr(r.get(), imm);
      }
      p = Reserve(MNL_SOCKET_BUFFER_SIZE);
      nlh = nftnl_nlmsg_build_hdr(p, NFT_MSG_NEWRULE, NFPROTO_INET, NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK, seq_++);
      nftnl_rule_nlmsg_build_payload(nlh, r.get());
      Commit(p, MsgKind::kRule);
    }
  }
}

void BatchBuilder::DeleteTable(const std::string& table) {
  std::unique_ptr<nftnl_table, TableDeleter> t(nftnl_table_alloc());
  nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, table.c_str());
  nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, NFPROTO_INET);
  char* p = Reserve(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(p, NFT_MSG_DELTABLE, NFPROTO_INET, NLM_F_ACK, seq_++);
  nftnl_table_nlmsg_build_payload(nlh, t.get());
  Commit(p, MsgKind::kDelTable);
}

void BatchBuilder::Elements(uint16_t msg_type, const std::string& table, bool v4, bool net,
                            const std::vector<ElementKey>& elems) {
  MsgKind kind = msg_type == NFT_MSG_NEWSETELEM ? MsgKind::kAddElems : MsgKind::kDelElems;
  uint16_t flags = NLM_F_ACK | (kind == MsgKind::kAddElems ? NLM_F_CREATE : 0);
  size_t i = 0;
  while (i < elems.size()) {
    // Encoded by hand with libmnl: one libnftnl object per element costs more than the
    // kernel's own work for it.
    char* p = Reserve(kMaxMessage + 1024);
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(p, msg_type, NFPROTO_INET, flags, seq_++);
    mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, table.c_str());
    mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, SetName(v4, net));
    nlattr* list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
    size_t first = i;
    for (uint16_t n = 1; i < elems.size() && nlh->nlmsg_len + 64 < kMaxMessage; ++i, ++n) {
      const ElementKey& e = elems[i];
      nlattr* el = mnl_attr_nest_start(nlh, n);
      nlattr* key = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);
      mnl_attr_put(nlh, NFTA_DATA_VALUE, e.len, e.key.data());
      mnl_attr_nest_end(nlh, key);
      if (e.interval_end) mnl_attr_put_u32(nlh, NFTA_SET_ELEM_FLAGS, htonl(NFT_SET_ELEM_INTERVAL_END));
      if (e.timeout_ms && kind == MsgKind::kAddElems) mnl_attr_put_u64(nlh, NFTA_SET_ELEM_TIMEOUT, htobe64(*e.timeout_ms));
      mnl_attr_nest_end(nlh, el);
    }
    mnl_attr_nest_end(nlh, list);
    Commit(p, kind, first, i - first);
  }
}

std::vector<DumpedElement> ParseSetElements(const nlmsghdr* nlh) {
  std::vector<DumpedElement> out;
  if (nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(nfgenmsg)) return out;
  ForEachAttr(nlh, sizeof(nfgenmsg), [&](const nlattr* attr) {
    if (mnl_attr_get_type(attr) != NFTA_SET_ELEM_LIST_ELEMENTS) return;
    ForEachNested(attr, [&](const nlattr* el) {
      DumpedElement d;
      bool have_key = false;
      ForEachNested(el, [&](const nlattr* f) {
        switch (mnl_attr_get_type(f)) {
          case NFTA_SET_ELEM_KEY:
            ForEachNested(f, [&](const nlattr* v) {
              uint16_t len = mnl_attr_get_payload_len(v);
              if (mnl_attr_get_type(v) == NFTA_DATA_VALUE && (len == 4 || len == 16)) {
                std::memcpy(d.key.data(), mnl_attr_get_payload(v), len);
                d.len = static_cast<uint8_t>(len);
                have_key = true;
              }
            });
            break;
          case NFTA_SET_ELEM_FLAGS:
            if (mnl_attr_get_payload_len(f) == 4) d.interval_end = ntohl(mnl_attr_get_u32(f)) & NFT_SET_ELEM_INTERVAL_END;
            break;
          case NFTA_SET_ELEM_TIMEOUT:
            if (mnl_attr_get_payload_len(f) == 8) d.timeout_ms = be64toh(mnl_attr_get_u64(f));
            break;
          case NFTA_SET_ELEM_EXPIRATION:
            if (mnl_attr_get_payload_len(f) == 8) d.expiration_ms = be64toh(mnl_attr_get_u64(f));
            break;
          default: break;
        }
      });
      if (have_key) out.push_back(d);
    });
  });
  return out;
}

namespace {

IpAddress ToAddress(const std::array<uint8_t, 16>& key, bool v4) {
  if (v4) return IpAddress::V4(static_cast<uint32_t>(key[0]) << 24 | static_cast<uint32_t>(key[1]) << 16 |
                               static_cast<uint32_t>(key[2]) << 8 | key[3]);
  return IpAddress::V6(key);
}

__extension__ typedef unsigned __int128 U128;

U128 ToNumber(const std::array<uint8_t, 16>& key, uint8_t len) {
  U128 v = 0;
  for (uint8_t i = 0; i < len; ++i) v = (v << 8) | key[i];
  return v;
}

// The prefix length of [start, end) if it is exactly one CIDR block, else -1. Without an
// end the interval runs to the top of the address space.
int CidrLength(const std::array<uint8_t, 16>& start, const std::array<uint8_t, 16>& end, uint8_t len, bool has_end) {
  int bits = len * 8;
  U128 s = ToNumber(start, len);
  U128 size;
  if (has_end) {
    U128 e = ToNumber(end, len);
    if (e <= s) return -1;
    size = e - s;
  } else {
    // [s, 2^bits): 2^bits - s, computed without overflowing 128 bits.
    U128 top = bits == 128 ? ~static_cast<U128>(0) : (static_cast<U128>(1) << bits) - 1;
    size = top - s + 1;
    if (size == 0) return 0;  // the whole IPv6 space
  }
  if ((size & (size - 1)) != 0) return -1;  // not a power of two
  int host_bits = 0;
  while ((static_cast<U128>(1) << host_bits) != size) ++host_bits;
  if ((s & (size - 1)) != 0) return -1;  // start not aligned to the block
  return bits - host_bits;
}

}  // namespace

std::vector<FirewallElement> PairIntervals(std::vector<DumpedElement> elems, bool v4) {
  uint8_t len = v4 ? 4 : 16;
  elems.erase(std::remove_if(elems.begin(), elems.end(), [&](const DumpedElement& e) { return e.len != len; }),
              elems.end());
  // Sort by key; at equal keys an end comes first (it closes the interval before, which
  // starts where this one starts when two intervals touch).
  std::sort(elems.begin(), elems.end(), [](const DumpedElement& a, const DumpedElement& b) {
    if (a.key != b.key) return a.key < b.key;
    return a.interval_end && !b.interval_end;
  });
  std::vector<FirewallElement> out;
  for (size_t i = 0; i < elems.size(); ++i) {
    const DumpedElement& s = elems[i];
    if (s.interval_end) continue;  // an orphan end (its start expired)
    bool has_end = i + 1 < elems.size() && elems[i + 1].interval_end;
    int l = CidrLength(s.key, has_end ? elems[i + 1].key : std::array<uint8_t, 16>{}, len, has_end);
    if (has_end) ++i;
    if (l < 0) continue;  // not one of ours: a range that is not a CIDR block
    FirewallElement fe;
    fe.target = Prefix(ToAddress(s.key, v4), l);
    if (s.timeout_ms) fe.timeout = Seconds(static_cast<int64_t>(*s.timeout_ms / 1000));
    if (s.expiration_ms) fe.remaining = Micros(static_cast<int64_t>(*s.expiration_ms) * 1000);
    out.push_back(fe);
  }
  return out;
}

std::vector<FirewallElement> Singles(const std::vector<DumpedElement>& elems, bool v4) {
  std::vector<FirewallElement> out;
  for (const auto& d : elems) {
    if (d.len != (v4 ? 4 : 16) || d.interval_end) continue;
    FirewallElement fe;
    fe.target = Prefix(ToAddress(d.key, v4));
    if (d.timeout_ms) fe.timeout = Seconds(static_cast<int64_t>(*d.timeout_ms / 1000));
    if (d.expiration_ms) fe.remaining = Micros(static_cast<int64_t>(*d.expiration_ms) * 1000);
    out.push_back(fe);
  }
  return out;
}

std::vector<char> GetGenRequest(uint32_t seq) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETGEN, AF_UNSPEC, 0, seq);
  buf.resize(nlh->nlmsg_len);
  return buf;
}

std::optional<uint32_t> ParseGenId(const nlmsghdr* nlh) {
  if ((nlh->nlmsg_type & 0xff) != NFT_MSG_NEWGEN) return std::nullopt;
  std::optional<uint32_t> id;
  ForEachAttr(nlh, sizeof(nfgenmsg), [&](const nlattr* attr) {
    if (mnl_attr_get_type(attr) == NFTA_GEN_ID && mnl_attr_get_payload_len(attr) == 4) id = ntohl(mnl_attr_get_u32(attr));
  });
  return id;
}

std::vector<char> DumpElementsRequest(const std::string& table, bool v4, bool net, uint32_t seq) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP, seq);
  mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, table.c_str());
  mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, SetName(v4, net));
  buf.resize(nlh->nlmsg_len);
  return buf;
}

std::vector<char> GetObjectRequest(uint16_t msg_type, const std::string& table, const std::string& name, uint32_t seq) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), msg_type, NFPROTO_INET, NLM_F_ACK, seq);
  switch (msg_type) {
    case NFT_MSG_GETTABLE: mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, table.c_str()); break;
    case NFT_MSG_GETSET:
      mnl_attr_put_strz(nlh, NFTA_SET_TABLE, table.c_str());
      mnl_attr_put_strz(nlh, NFTA_SET_NAME, name.c_str());
      break;
    case NFT_MSG_GETCHAIN:
      mnl_attr_put_strz(nlh, NFTA_CHAIN_TABLE, table.c_str());
      mnl_attr_put_strz(nlh, NFTA_CHAIN_NAME, name.c_str());
      break;
    default: break;
  }
  buf.resize(nlh->nlmsg_len);
  return buf;
}

std::vector<char> DumpRulesRequest(const std::string& table, uint32_t seq) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, seq);
  mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, table.c_str());
  buf.resize(nlh->nlmsg_len);
  return buf;
}

}  // namespace relayban::nft
