// NftCodec: the bytes of nftables netlink transactions, built and parsed without a socket
// (the only libnftnl user besides nothing else; libmnl for the per-element hot path).
// Unit tests parse the built messages back with libnftnl.
#pragma once

#include <libmnl/libmnl.h>
#include <linux/netlink.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "relayban/core/ip_address.hpp"
#include "relayban/firewall/firewall.hpp"

namespace relayban::nft {

// libmnl's iteration macros rely on C's implicit void* conversions; these are their C++ form.
template <class F>
void ForEachAttr(const nlmsghdr* nlh, size_t offset, F f) {
  auto* a = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, offset));
  auto* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
  while (mnl_attr_ok(a, static_cast<int>(tail - reinterpret_cast<const char*>(a)))) {
    f(a);
    a = mnl_attr_next(a);
  }
}
template <class F>
void ForEachNested(const nlattr* nest, F f) {
  auto* a = static_cast<const nlattr*>(mnl_attr_get_payload(nest));
  auto* tail = reinterpret_cast<const char*>(nest) + nest->nla_len;
  while (mnl_attr_ok(a, static_cast<int>(tail - reinterpret_cast<const char*>(a)))) {
    f(a);
    a = mnl_attr_next(a);
  }
}

// Newer than Debian 12's uapi headers (linux-libc-dev 6.1).
inline constexpr uint16_t kMsgDestroySetElem = 30;  // NFT_MSG_DESTROYSETELEM, kernel 6.3
inline constexpr uint32_t kTableFlagOwner = 0x2;    // NFT_TABLE_F_OWNER, 5.12
inline constexpr uint32_t kTableFlagPersist = 0x4;  // NFT_TABLE_F_PERSIST, 6.9
// Largest nf_tables message we build; element lists are split below it.
inline constexpr size_t kMaxMessage = 60 * 1024;

// One set element as sent: an interval start (with its timeout) or end.
struct ElementKey {
  std::array<uint8_t, 16> key{};
  uint8_t len = 4;  // 4 or 16
  bool interval_end = false;
  std::optional<uint64_t> timeout_ms;
};

// Single addresses live in hash sets ban4/ban6 (flags timeout), the cheaper structure for
// the common case; prefixes in interval sets ban4_net/ban6_net (flags interval,timeout),
// whose start/end pairs and overlap rules only prefixes need.
const char* SetName(bool v4, bool net);
inline bool IsNet(const Prefix& p) { return !p.is_single(); }

// The start and, unless the prefix reaches the top of the address space, the end element
// of an interval covering `p`.
std::vector<ElementKey> IntervalElements(const Prefix& p, std::optional<uint64_t> timeout_ms);
// The elements of `p` in the set it belongs to: one key for a single address, an interval
// for a prefix.
std::vector<ElementKey> ElementsFor(const Prefix& p, std::optional<uint64_t> timeout_ms);

enum class MsgKind : uint8_t { kBegin, kEnd, kTable, kSet, kChain, kFlushChain, kRule, kAddElems, kDelElems, kDelTable };

struct MsgInfo {
  uint32_t seq;
  MsgKind kind;
  size_t offset;       // where the message starts in bytes()
  size_t first = 0;    // for element messages: index of the first element (into the caller's list)
  size_t count = 0;    // number of elements
};

struct SchemaOptions {
  std::string table;
  bool input = true;
  bool forward = false;
  bool reject = false;
  uint32_t table_flags = 0;
};

// Builds one transaction: BEGIN, messages, END, into one contiguous buffer.
class BatchBuilder {
 public:
  explicit BatchBuilder(uint32_t first_seq) : seq_(first_seq) {}

  void Begin();
  void End(bool ack);
  // Table, sets ban4/ban6 (interval, timeout), base chains and their rules; idempotent when
  // sent again (chains are flushed and their rules re-added in the same transaction).
  void Schema(const SchemaOptions& o);
  void DeleteTable(const std::string& table);
  // NEWSETELEM (or DESTROY/DELSETELEM) messages for `elems`, split at kMaxMessage; element
  // indexes in MsgInfo refer to `elems`.
  void Elements(uint16_t msg_type, const std::string& table, bool v4, bool net, const std::vector<ElementKey>& elems);

  // Adds `base` to the element indexes of the messages from `from_message` on.
  void ShiftElementIndexes(size_t from_message, size_t base) {
    for (size_t i = from_message; i < msgs_.size(); ++i) msgs_[i].first += base;
  }

  const std::vector<char>& bytes() const { return buf_; }
  const std::vector<MsgInfo>& messages() const { return msgs_; }
  uint32_t next_seq() const { return seq_; }

 private:
  char* Reserve(size_t n);
  void Commit(char* start, MsgKind kind, size_t first = 0, size_t count = 0);

  std::vector<char> buf_;
  std::vector<MsgInfo> msgs_;
  uint32_t seq_;
};

// One element as a dump reports it.
struct DumpedElement {
  std::array<uint8_t, 16> key{};
  uint8_t len = 0;
  bool interval_end = false;
  std::optional<uint64_t> timeout_ms;
  std::optional<uint64_t> expiration_ms;
};

// Parses one NEWSETELEM message of a dump. Malformed input yields what could be read.
std::vector<DumpedElement> ParseSetElements(const nlmsghdr* nlh);
// Pairs interval starts with their ends (the kernel dumps them in any order, and keeps
// orphan ends after expiry) and turns them into prefixes.
std::vector<FirewallElement> PairIntervals(std::vector<DumpedElement> elems, bool v4);
// The elements of a hash set: single addresses.
std::vector<FirewallElement> Singles(const std::vector<DumpedElement>& elems, bool v4);

// A GETGEN request and the generation id of its reply.
std::vector<char> GetGenRequest(uint32_t seq);
std::optional<uint32_t> ParseGenId(const nlmsghdr* nlh);
// A dump request for the elements of one set, or a GET of a table, set or chain.
std::vector<char> DumpElementsRequest(const std::string& table, bool v4, bool net, uint32_t seq);
std::vector<char> GetObjectRequest(uint16_t msg_type, const std::string& table, const std::string& name, uint32_t seq);
std::vector<char> DumpRulesRequest(const std::string& table, uint32_t seq);

}  // namespace relayban::nft
