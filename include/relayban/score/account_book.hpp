// AccountBook: the per-account view that fail2ban lacks. For every account seen in an event
// it keeps counters, the recent client addresses (for the fan-out of an account verdict) and
// the rules that fired. Bounded: addresses per account, distinct sets, and accounts overall.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "relayban/core/duration.hpp"
#include "relayban/core/flat_map.hpp"
#include "relayban/core/hash_set64.hpp"
#include "relayban/core/ip_address.hpp"
#include "relayban/core/text.hpp"
#include "relayban/score/eviction.hpp"

namespace relayban {

struct AccountView {
  std::string account;
  uint64_t auth_success = 0;
  uint64_t auth_failure = 0;
  uint64_t relayed = 0;
  size_t recipient_domains = 0;  // distinct, saturates at AccountBook::kMaxDistinct
  size_t ips = 0;                // distinct, saturates likewise
  std::optional<IpAddress> last_ip;
  Time last_seen{};
  // What the account did: account-keyed rules that reached a verdict on it (likely stolen).
  std::vector<std::string> verdicts;
  // What was done to it: address-keyed rules that banned clients trying it (a victim of
  // guessing, not a thief), in the order they fired.
  std::vector<std::string> targeted_by;
};

class AccountBook {
 public:
  static constexpr size_t kMaxDistinct = 4096;
  static constexpr size_t kMaxRecentIps = 256;

  explicit AccountBook(size_t max_accounts) : max_accounts_(max_accounts) {}

  enum class Outcome : uint8_t { kOther, kAuthSuccess, kAuthFailure, kRelay };
  // `kind_bit` is 1 << (event kind id); it marks which kinds an address was seen with.
  void Record(std::string_view account, Outcome outcome, uint64_t kind_bit, const std::optional<IpAddress>& ip,
              std::string_view recipient_domain, Time t);
  // The same, given StringHash{}(account) (the engine hashes an event's account once).
  void Record(std::string_view account, size_t account_hash, Outcome outcome, uint64_t kind_bit,
              const std::optional<IpAddress>& ip, std::string_view recipient_domain, Time t);
  void AddVerdict(std::string_view account, std::string_view rule);
  // An address-keyed rule banned a client whose attempt named the account.
  void AddTargeted(std::string_view account, std::string_view rule);
  // An admin forgave the account: its verdicts and their history go.
  void ClearVerdicts(std::string_view account);
  // A verdict's moment: its log time, and the book's count of events recorded by then (log
  // times are whole seconds: many events share one).
  struct Fired {
    Time at;
    uint32_t seq;
  };
  // Notes that the rule numbered `rule_id` reached a verdict on the account at `t` (after
  // the event last recorded); returns when it last did before, if the account was known and
  // it had.
  std::optional<Fired> MarkFired(std::string_view account, uint32_t rule_id, Time t);
  // Addresses seen with the account at or after `since` in events whose kind bit is in
  // `kinds`; with `after`, of those seen at `since` itself only the ones used after that
  // verdict (its fan-out reached the others).
  std::vector<IpAddress> IpsSince(std::string_view account, Time since, uint64_t kinds,
                                  std::optional<uint32_t> after = std::nullopt) const;
  // Sorted by account name.
  std::vector<AccountView> Snapshot() const;
  // Calls f(view) for every account in name order, making one view at a time: a book of
  // 200,000 accounts is not copied whole to be printed.
  void ForEachSorted(const std::function<void(const AccountView&)>& f) const;
  // The accounts in the same order, as positions for ViewAt (valid while the book is not
  // changed): for a caller that shares the walk among threads.
  std::vector<uint32_t> Sorted() const;
  AccountView ViewAt(uint32_t position) const { return ViewOf(At(position)); }
  // One account's view, if the book has it.
  std::optional<AccountView> View(std::string_view account) const;
  size_t size() const { return index_.size(); }
  // The chunks of entries mapped so far (taken, or the next one waiting), and the bytes of
  // one: for tests.
  size_t chunks_mapped() const { return chunks_.size() + (next_chunk_ ? 1 : 0); }
  static size_t chunk_bytes();
  // Starts loading where a lookup of `account` begins (see FlatMap::Prefetch).
  void Prefetch(std::string_view account) const { index_.Prefetch(account); }
  // The same, given StringHash{}(account).
  void PrefetchHashed(size_t account_hash) const { index_.PrefetchHashed(account_hash); }
  // Once the book is full, each new name takes the last free position (see Get): starts
  // loading the entry the `ahead`-th new name from now will take, and the name and address
  // buffers of the (ahead/2)-th, whose entry was loaded ahead/2 names ago. Under a flood of
  // invented names every line is one, and each of those reads was a miss in memory.
  void PrefetchSpare(size_t ahead) const;
  // Accounts with at least one verdict (what they did), counted now: a pass over the book.
  size_t CountWithVerdict() const;
  size_t evicted() const { return cost_.evicted; }
  // Eviction runs and positions visited, for tests that check the work is amortised.
  uint64_t eviction_runs() const { return runs_; }
  uint64_t positions_visited() const { return cost_.positions_visited; }

 private:
  struct IpUse {
    IpAddress ip;
    bool again = false;  // used again since it was added or last passed over (see AddRecent)
    uint32_t seq = 0;    // the event that used it last (in the padding after the address)
    Time last{};
    uint64_t kinds = 0;
  };
  static_assert(sizeof(IpUse) <= 40, "the flag sits in the address's padding");
  // Ten bits of an address's hash other than its tag's (Rare::present).
  static constexpr size_t kPresence = 1024;
  static size_t PresenceOf(size_t ip_hash) { return (static_cast<uint64_t>(ip_hash) >> 40) % kPresence; }
  // What few accounts ever need, allocated on first use: a flood of invented names costs
  // an Entry each, not these too.
  struct Rare {
    std::vector<std::string> verdicts;     // AccountView::verdicts
    std::vector<std::string> targeted_by;  // AccountView::targeted_by, past Entry::targeted
    std::vector<std::pair<uint32_t, Fired>> fired;  // rule id, its last verdict
    // Once recent outgrows a short linear scan: a byte of each address's hash by position,
    // compared sixteen at a time (a fraction of the work of a hash index's upkeep), and the
    // position the next new address may take once recent is full.
    std::array<uint8_t, kMaxRecentIps> recent_tags{};
    // And the second of each address's last use (SecondsOf(IpUse::last)): a verdict's
    // fan-out asks for the addresses used since a time, and compares these four at a time
    // instead of reading every IpUse.
    std::array<uint32_t, kMaxRecentIps> recent_secs{};
    uint16_t hand = 0;
    // How many addresses held have each value of ten other bits of their hash (PresenceOf),
    // saturating at 255 (then never lowered: "maybe" for good). An address whose count is 0
    // is not held: under a flood of new addresses that answers most lookups without a scan.
    std::array<uint8_t, kPresence> present{};
    void Present(size_t ip_hash) {
      uint8_t& c = present[PresenceOf(ip_hash)];
      if (c < 255) ++c;
    }
    void Absent(size_t ip_hash) {
      uint8_t& c = present[PresenceOf(ip_hash)];
      if (c > 0 && c < 255) --c;
    }
  };
  struct Entry {
    std::string account;
    uint64_t auth_success = 0;
    uint64_t auth_failure = 0;
    uint64_t relayed = 0;
    Time last_seen{};
    std::optional<IpAddress> last_ip;
    HashSet64 domains;
    HashSet64 ip_hashes;
    std::vector<IpUse> recent;
    std::unique_ptr<Rare> rare;
    // The first rules that targeted it (AccountView::targeted_by), as numbers in
    // rule_names_: a botnet guessing invented names has every one of them targeted by the
    // ban of its address, and that must not cost a Rare block and a string per name.
    uint8_t targeted[6] = {};
    uint8_t n_targeted = 0;
    Rare& rare_made() {
      if (!rare) rare = std::make_unique<Rare>();
      return *rare;
    }
  };
  static constexpr size_t kLinearScan = 16;
  void EvictOldestAccounts();
  // Empties a freed entry for the next account at its position, keeping the small
  // allocations (name, recent addresses) that the next one would make again. Done when the
  // position is taken again, not at eviction: evicting reads no entry, only the arrays below.
  static void Recycle(Entry& e);
  // The number of a rule's name in rule_names_ (added on first use), or kNoRule once 255
  // names are known (such a rule is kept by name in Rare).
  uint8_t RuleNumber(std::string_view rule);
  static constexpr uint8_t kNoRule = 255;
  // `ip_hash` is IpAddressHash{}(ip), computed once per event.
  static IpUse* FindRecent(Entry& e, const IpAddress& ip, size_t ip_hash);
  static void AddRecent(Entry& e, const IpAddress& ip, size_t ip_hash, uint32_t seq, Time t, uint64_t kind_bit);
  Entry& Get(std::string_view account, size_t hash, Time t);
  Entry* Find(std::string_view account);
  const Entry* Find(std::string_view account) const;

  size_t max_accounts_;
  // Accounts live in a pool of fixed chunks (freed positions reused; growing never moves
  // or copies an entry) indexed by name; their last-seen seconds sit in a parallel array,
  // so eviction scans four bytes an account, not an entry.
  static constexpr size_t kChunk = 1024;
  // A chunk's entries in a mapping of their own, mapped a chunk ahead: while one fills, the
  // Prefaulter populates the next on its own thread. A flood of invented names takes a new
  // chunk every 1,024 names, and zeroing its pages on first write cost the scoring thread
  // 2-3 % of its time in page faults.
  class MappedChunk {
   public:
    MappedChunk();  // maps it and asks the Prefaulter for its pages; constructs nothing
    ~MappedChunk();
    MappedChunk(MappedChunk&& o) noexcept : entries_(std::exchange(o.entries_, nullptr)), built_(o.built_) {}
    MappedChunk& operator=(MappedChunk&& o) noexcept {
      std::swap(entries_, o.entries_);
      std::swap(built_, o.built_);
      return *this;
    }
    void Build();  // constructs its entries
    Entry& operator[](size_t i) const { return entries_[i]; }

   private:
    Entry* entries_ = nullptr;
    bool built_ = false;
  };
  Entry& At(size_t i) { return chunks_[i / kChunk][i % kChunk]; }
  const Entry& At(size_t i) const { return chunks_[i / kChunk][i % kChunk]; }
  AccountView ViewOf(const Entry& e) const;
  // Keyed by views of the entries' own names: an entry never moves (its chunk stays put) and
  // leaves the index before its name changes, so each name is held once.
  FlatMap<std::string_view, uint32_t, StringHash> index_;
  std::vector<MappedChunk> chunks_;
  std::optional<MappedChunk> next_chunk_;  // mapped, being populated, not built
  std::vector<uint32_t> seen_sec_;  // per position; kFree when the position is free
  std::vector<uint64_t> name_hash_;  // per position: StringHash of its account
  std::vector<uint32_t> free_;
  std::vector<std::string> rule_names_;  // rules that targeted accounts, by number
  uint32_t newest_ = 0;
  uint32_t seq_ = 0;  // events recorded (wraps; compared only within a second's events)
  uint64_t runs_ = 0;
  EvictionCost cost_;
  static constexpr uint32_t kFree = ~uint32_t{0};
};

}  // namespace relayban
