// The bytes of our nftables transactions, parsed back with libnftnl. No socket, no root.
#include "firewall/nft_codec.hpp"

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <set>

using namespace relayban;
using namespace relayban::nft;

namespace {

const nlmsghdr* At(const BatchBuilder& b, size_t i) {
  return reinterpret_cast<const nlmsghdr*>(b.bytes().data() + b.messages()[i].offset);
}

std::vector<std::string> ExprNames(nftnl_rule* r) {
  std::vector<std::string> names;
  nftnl_expr_iter* it = nftnl_expr_iter_create(r);
  for (nftnl_expr* e = nftnl_expr_iter_next(it); e; e = nftnl_expr_iter_next(it))
    names.push_back(nftnl_expr_get_str(e, NFTNL_EXPR_NAME));
  nftnl_expr_iter_destroy(it);
  return names;
}

// We number element nests 1, 2, 3... as libnftnl's own builder does, so an extended ack's
// offset names the element; dumps (and libnftnl's parser) use NFTA_LIST_ELEM for each. Parse
// a copy renumbered the dump's way.
std::vector<char> AsDump(const nlmsghdr* nlh) {
  std::vector<char> copy(reinterpret_cast<const char*>(nlh), reinterpret_cast<const char*>(nlh) + nlh->nlmsg_len);
  auto* c = reinterpret_cast<nlmsghdr*>(copy.data());
  ForEachAttr(c, sizeof(nfgenmsg), [&](const nlattr* attr) {
    if (mnl_attr_get_type(attr) != NFTA_SET_ELEM_LIST_ELEMENTS) return;
    ForEachNested(attr, [&](const nlattr* el) { const_cast<nlattr*>(el)->nla_type = NFTA_LIST_ELEM; });
  });
  return copy;
}

int CountElems(const nlmsghdr* nlh, std::vector<nftnl_set_elem*>* keep = nullptr, nftnl_set** out = nullptr) {
  nftnl_set* s = nftnl_set_alloc();
  auto copy = AsDump(nlh);
  REQUIRE(nftnl_set_elems_nlmsg_parse(reinterpret_cast<const nlmsghdr*>(copy.data()), s) >= 0);
  int n = 0;
  nftnl_set_elems_iter* it = nftnl_set_elems_iter_create(s);
  for (nftnl_set_elem* e = nftnl_set_elems_iter_next(it); e; e = nftnl_set_elems_iter_next(it)) {
    ++n;
    if (keep) keep->push_back(e);
  }
  nftnl_set_elems_iter_destroy(it);
  if (out) *out = s;
  else nftnl_set_free(s);
  return n;
}

}  // namespace

TEST_CASE("a schema transaction frames table, sets, chain, flush and rules between BEGIN and END") {
  BatchBuilder b(100);
  b.Begin();
  b.Schema({"relayban", true, false, false, kTableFlagOwner | kTableFlagPersist});
  b.End(true);
  const auto& m = b.messages();
  std::vector<MsgKind> kinds;
  for (const auto& mi : m) kinds.push_back(mi.kind);
  CHECK(kinds == std::vector<MsgKind>{MsgKind::kBegin, MsgKind::kTable, MsgKind::kSet, MsgKind::kSet, MsgKind::kSet,
                                      MsgKind::kSet, MsgKind::kChain, MsgKind::kFlushChain, MsgKind::kRule,
                                      MsgKind::kRule, MsgKind::kRule, MsgKind::kRule, MsgKind::kEnd});
  for (size_t i = 0; i < m.size(); ++i) CHECK(m[i].seq == 100 + i);  // unique, increasing
  // BEGIN addresses the nftables subsystem; END carries the ack request only when asked.
  auto* begin = At(b, 0);
  CHECK(begin->nlmsg_type == NFNL_MSG_BATCH_BEGIN);
  auto* gen = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(begin));
  CHECK(ntohs(gen->res_id) == NFNL_SUBSYS_NFTABLES);
  CHECK((At(b, m.size() - 1)->nlmsg_flags & NLM_F_ACK) != 0);
  // No message asks for EXCL: re-sending the schema must not fail on what exists.
  for (size_t i = 1; i + 1 < m.size(); ++i) {
    CHECK((At(b, i)->nlmsg_flags & NLM_F_EXCL) == 0);
    CHECK((At(b, i)->nlmsg_flags & NLM_F_ACK) != 0);
  }

  nftnl_table* t = nftnl_table_alloc();
  REQUIRE(nftnl_table_nlmsg_parse(At(b, 1), t) >= 0);
  CHECK(std::string(nftnl_table_get_str(t, NFTNL_TABLE_NAME)) == "relayban");
  CHECK(nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS) == (kTableFlagOwner | kTableFlagPersist));
  nftnl_table_free(t);

  const char* names[] = {"ban4", "ban6", "ban4_net", "ban6_net"};
  for (int i = 0; i < 4; ++i) {
    nftnl_set* s = nftnl_set_alloc();
    REQUIRE(nftnl_set_nlmsg_parse(At(b, static_cast<size_t>(2 + i)), s) >= 0);
    CHECK(std::string(nftnl_set_get_str(s, NFTNL_SET_NAME)) == names[i]);
    // Single addresses in hash sets, prefixes in interval sets.
    CHECK(nftnl_set_get_u32(s, NFTNL_SET_FLAGS) == (i >= 2 ? NFT_SET_INTERVAL | NFT_SET_TIMEOUT : NFT_SET_TIMEOUT));
    CHECK(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN) == (i % 2 == 0 ? 4u : 16u));
    nftnl_set_free(s);
  }

  for (int i : {8, 9, 10, 11}) {
    bool v4 = i % 2 == 0;
    nftnl_rule* r = nftnl_rule_alloc();
    REQUIRE(nftnl_rule_nlmsg_parse(At(b, static_cast<size_t>(i)), r) >= 0);
    CHECK(std::string(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN)) == "input");
    // The nfproto guard comes before the address is loaded (an inet table sees both families).
    CHECK(ExprNames(r) == std::vector<std::string>{"meta", "cmp", "payload", "lookup", "counter", "immediate"});
    nftnl_expr_iter* it = nftnl_expr_iter_create(r);
    nftnl_expr_iter_next(it);
    nftnl_expr* cmp = nftnl_expr_iter_next(it);
    uint32_t len = 0;
    auto* proto = static_cast<const uint8_t*>(nftnl_expr_get(cmp, NFTNL_EXPR_CMP_DATA, &len));
    CHECK(len == 1);
    CHECK(*proto == (v4 ? NFPROTO_IPV4 : NFPROTO_IPV6));
    nftnl_expr* payload = nftnl_expr_iter_next(it);
    CHECK(nftnl_expr_get_u32(payload, NFTNL_EXPR_PAYLOAD_OFFSET) == (v4 ? 12u : 8u));
    nftnl_expr* lookup = nftnl_expr_iter_next(it);
    CHECK(std::string(nftnl_expr_get_str(lookup, NFTNL_EXPR_LOOKUP_SET)) == names[i - 8]);
    nftnl_expr_iter_next(it);
    nftnl_expr* verdict = nftnl_expr_iter_next(it);
    CHECK(static_cast<int>(nftnl_expr_get_u32(verdict, NFTNL_EXPR_IMM_VERDICT)) == NF_DROP);
    nftnl_expr_iter_destroy(it);
    nftnl_rule_free(r);
  }
}

TEST_CASE("forward chains and reject are built when asked") {
  BatchBuilder b(1);
  b.Begin();
  b.Schema({"rb", true, true, true, 0});
  b.End(false);
  int chains = 0, rules = 0;
  for (size_t i = 0; i < b.messages().size(); ++i) {
    if (b.messages()[i].kind == MsgKind::kChain) ++chains;
    if (b.messages()[i].kind != MsgKind::kRule) continue;
    ++rules;
    nftnl_rule* r = nftnl_rule_alloc();
    REQUIRE(nftnl_rule_nlmsg_parse(At(b, i), r) >= 0);
    CHECK(ExprNames(r).back() == "reject");
    nftnl_rule_free(r);
  }
  CHECK(chains == 2);
  CHECK(rules == 8);
  CHECK((At(b, b.messages().size() - 1)->nlmsg_flags & NLM_F_ACK) == 0);
}

TEST_CASE("a single address is one hash-set key, a prefix an interval") {
  auto one = ElementsFor(*Prefix::Parse("192.0.2.9"), 1000);
  REQUIRE(one.size() == 1);
  CHECK_FALSE(one[0].interval_end);
  CHECK(one[0].timeout_ms == 1000u);
  CHECK(ElementsFor(*Prefix::Parse("192.0.2.8/31"), 1000).size() == 2);
  CHECK(std::string(SetName(true, false)) == "ban4");
  CHECK(std::string(SetName(false, true)) == "ban6_net");
}

TEST_CASE("an interval ban is a start with its timeout and an end without") {
  auto els = IntervalElements(*Prefix::Parse("203.0.113.0/24"), 600000);
  REQUIRE(els.size() == 2);
  CHECK(els[0].key[0] == 203);
  CHECK(els[0].key[2] == 113);
  CHECK(els[0].key[3] == 0);
  CHECK(els[0].timeout_ms == 600000u);
  CHECK_FALSE(els[0].interval_end);
  CHECK(els[1].interval_end);
  CHECK(els[1].key[2] == 114);
  CHECK(els[1].key[3] == 0);
  CHECK_FALSE(els[1].timeout_ms);
  auto single = IntervalElements(*Prefix::Parse("192.0.2.255"), std::nullopt);
  REQUIRE(single.size() == 2);
  CHECK(single[1].key[2] == 3);
  CHECK(single[1].key[3] == 0);
  // The top of the address space has no end element.
  CHECK(IntervalElements(*Prefix::Parse("255.255.255.255"), 1000).size() == 1);
  auto v6 = IntervalElements(*Prefix::Parse("2001:db8::/64"), 1000);
  REQUIRE(v6.size() == 2);
  CHECK(v6[1].len == 16);
  CHECK(v6[1].key[7] == 1);  // 2001:db8:0:1::
}

TEST_CASE("element messages parse back with libnftnl: keys, end flags, timeouts in ms") {
  std::vector<ElementKey> keys;
  for (const char* p : {"192.0.2.1", "198.51.100.0/24"})
    for (auto& k : IntervalElements(*Prefix::Parse(p), 90000)) keys.push_back(k);
  BatchBuilder b(7);
  b.Elements(NFT_MSG_NEWSETELEM, "relayban", true, true, keys);
  REQUIRE(b.messages().size() == 1);
  auto* nlh = At(b, 0);
  CHECK((nlh->nlmsg_flags & NLM_F_CREATE) != 0);
  CHECK((nlh->nlmsg_flags & NLM_F_EXCL) == 0);
  std::vector<nftnl_set_elem*> elems;
  nftnl_set* s = nullptr;
  REQUIRE(CountElems(nlh, &elems, &s) == 4);
  CHECK(std::string(nftnl_set_get_str(s, NFTNL_SET_NAME)) == "ban4_net");
  CHECK(std::string(nftnl_set_get_str(s, NFTNL_SET_TABLE)) == "relayban");
  uint32_t len = 0;
  auto* key = static_cast<const uint8_t*>(nftnl_set_elem_get(elems[0], NFTNL_SET_ELEM_KEY, &len));
  CHECK(len == 4);
  CHECK(key[3] == 1);
  CHECK(nftnl_set_elem_get_u64(elems[0], NFTNL_SET_ELEM_TIMEOUT) == 90000u);
  CHECK(nftnl_set_elem_get_u32(elems[1], NFTNL_SET_ELEM_FLAGS) == NFT_SET_ELEM_INTERVAL_END);
  CHECK_FALSE(nftnl_set_elem_is_set(elems[1], NFTNL_SET_ELEM_TIMEOUT));
  nftnl_set_free(s);
}

TEST_CASE("100,000 elements split into messages under 64 KiB, each element exactly once") {
  std::vector<ElementKey> keys;
  for (uint32_t i = 0; i < 100000; ++i) {
    ElementKey k;
    k.len = 4;
    uint32_t a = 0x0A000000u + i;
    k.key = {static_cast<uint8_t>(a >> 24), static_cast<uint8_t>(a >> 16), static_cast<uint8_t>(a >> 8), static_cast<uint8_t>(a)};
    k.timeout_ms = 600000;
    keys.push_back(k);
  }
  BatchBuilder b(1);
  b.Begin();
  b.Elements(NFT_MSG_NEWSETELEM, "relayban", true, false, keys);
  b.End(false);
  size_t total = 0, next_first = 0;
  std::set<uint32_t> seen;
  for (size_t i = 1; i + 1 < b.messages().size(); ++i) {
    const auto& mi = b.messages()[i];
    CHECK(At(b, i)->nlmsg_len < 65536);
    CHECK(mi.first == next_first);
    next_first += mi.count;
    std::vector<nftnl_set_elem*> elems;
    nftnl_set* s = nullptr;
    CHECK(CountElems(At(b, i), &elems, &s) == static_cast<int>(mi.count));
    for (auto* e : elems) {
      uint32_t len = 0;
      auto* k = static_cast<const uint8_t*>(nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len));
      seen.insert(uint32_t{k[0]} << 24 | uint32_t{k[1]} << 16 | uint32_t{k[2]} << 8 | k[3]);
    }
    nftnl_set_free(s);
    total += mi.count;
  }
  CHECK(total == 100000);
  CHECK(seen.size() == 100000);
  CHECK(b.messages().size() > 30);
}

TEST_CASE("delete messages carry no timeout and use the requested message type") {
  auto keys = IntervalElements(*Prefix::Parse("2001:db8::/64"), 5000);
  BatchBuilder b(1);
  b.Elements(kMsgDestroySetElem, "relayban", false, true, keys);
  auto* nlh = At(b, 0);
  CHECK((nlh->nlmsg_type & 0xff) == kMsgDestroySetElem);
  CHECK((nlh->nlmsg_type >> 8) == NFNL_SUBSYS_NFTABLES);
  CHECK((nlh->nlmsg_flags & NLM_F_CREATE) == 0);
  std::vector<nftnl_set_elem*> elems;
  nftnl_set* s = nullptr;
  REQUIRE(CountElems(nlh, &elems, &s) == 2);
  CHECK_FALSE(nftnl_set_elem_is_set(elems[0], NFTNL_SET_ELEM_TIMEOUT));
  nftnl_set_free(s);
}

TEST_CASE("dumped intervals pair into prefixes, orphan ends and odd ranges are dropped") {
  auto dump = [](const char* prefix, std::optional<uint64_t> timeout, std::optional<uint64_t> exp) {
    std::vector<DumpedElement> out;
    for (const auto& k : IntervalElements(*Prefix::Parse(prefix), timeout)) {
      DumpedElement d;
      d.key = k.key;
      d.len = k.len;
      d.interval_end = k.interval_end;
      d.timeout_ms = k.timeout_ms;
      if (!k.interval_end) d.expiration_ms = exp;
      out.push_back(d);
    }
    return out;
  };
  std::vector<DumpedElement> all;
  for (auto* p : {"198.51.100.0/24", "192.0.2.7", "255.255.255.255", "198.51.101.0"}) {
    auto d = dump(p, 600000, 599000);
    all.insert(all.end(), d.begin(), d.end());
  }
  // The kernel dumps in descending order and keeps an end whose start expired.
  std::reverse(all.begin(), all.end());
  auto orphan = dump("203.0.113.0/24", 1000, 0);
  all.push_back(orphan[1]);
  auto out = PairIntervals(all, true);
  std::vector<std::string> got;
  for (const auto& e : out) got.push_back(e.target.ToString());
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<std::string>{"192.0.2.7", "198.51.100.0/24", "198.51.101.0", "255.255.255.255"});
  for (const auto& e : out) {
    REQUIRE(e.timeout);
    CHECK(*e.timeout == Seconds(600));
    REQUIRE(e.remaining);
    CHECK(*e.remaining == Micros(599000000));
  }
  auto v6 = dump("2001:db8:1::/64", std::nullopt, std::nullopt);
  auto out6 = PairIntervals(v6, false);
  REQUIRE(out6.size() == 1);
  CHECK(out6[0].target.ToString() == "2001:db8:1::/64");
  CHECK_FALSE(out6[0].timeout);
  CHECK_FALSE(out6[0].remaining);
  CHECK(PairIntervals(v6, true).empty());  // wrong family for the set
  DumpedElement single;
  single.len = 4;
  single.key = {192, 0, 2, 5};
  single.timeout_ms = 60000;
  auto singles = Singles({single}, true);
  REQUIRE(singles.size() == 1);
  CHECK(singles[0].target.ToString() == "192.0.2.5");
  CHECK(*singles[0].timeout == Seconds(60));
}
