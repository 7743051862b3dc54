#include "relayban/score/account_book.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <new>
#include <utility>

#if defined(__SSE2__) && !defined(RELAYBAN_NO_SIMD)
#include <emmintrin.h>
#endif

#include "relayban/core/prefaulter.hpp"
#include "relayban/core/text.hpp"

namespace relayban {

AccountView AccountBook::ViewOf(const Entry& e) const {
  AccountView v;
  v.account = e.account;
  v.auth_success = e.auth_success;
  v.auth_failure = e.auth_failure;
  v.relayed = e.relayed;
  v.recipient_domains = e.domains.size();
  v.ips = e.ip_hashes.size();
  v.last_ip = e.last_ip;
  v.last_seen = e.last_seen;
  for (uint8_t i = 0; i < e.n_targeted; ++i) v.targeted_by.push_back(rule_names_[e.targeted[i]]);
  if (e.rare) {
    v.verdicts = e.rare->verdicts;
    v.targeted_by.insert(v.targeted_by.end(), e.rare->targeted_by.begin(), e.rare->targeted_by.end());
  }
  return v;
}

void AccountBook::PrefetchSpare(size_t ahead) const {
  const size_t n = free_.size();
  if (n > ahead) {
    const char* e = reinterpret_cast<const char*>(&At(free_[n - 1 - ahead]));
    for (size_t line = 0; line < sizeof(Entry); line += 64) __builtin_prefetch(e + line);
  }
  if (n > ahead / 2) {
    const Entry& e = At(free_[n - 1 - ahead / 2]);
    __builtin_prefetch(e.account.data());
    if (e.recent.capacity() > 0) __builtin_prefetch(e.recent.data());
  }
  asm volatile("");  // kept: see FlatMap::PrefetchHashed
}

AccountBook::Entry* AccountBook::Find(std::string_view account) {
  uint32_t* at = index_.Get(account);
  return at ? &At(*at) : nullptr;
}

const AccountBook::Entry* AccountBook::Find(std::string_view account) const {
  const uint32_t* at = index_.Get(account);
  return at ? &At(*at) : nullptr;
}

AccountBook::Entry& AccountBook::Get(std::string_view account, size_t hash, Time t) {
  uint32_t sec = SecondsOf(t);
  newest_ = std::max(newest_, sec);
  if (size_t slot = index_.Find(account, hash); slot != index_.kNone) {
    uint32_t at = index_.ValueAt(slot);
    seen_sec_[at] = std::max(seen_sec_[at], sec);
    return At(at);
  }
  if (index_.size() >= max_accounts_) EvictOldestAccounts();
  uint32_t at;
  if (!free_.empty()) {
    at = free_.back();
    free_.pop_back();
    Recycle(At(at));
  } else {
    at = static_cast<uint32_t>(seen_sec_.size());
    if (at % kChunk == 0) {
      if (!next_chunk_) next_chunk_.emplace();
      chunks_.push_back(std::move(*next_chunk_));
      chunks_.back().Build();
      // The next one while this one fills, if the book may grow into it.
      if (chunks_.size() * kChunk < max_accounts_) next_chunk_.emplace();
      else next_chunk_.reset();
    }
    seen_sec_.push_back(kFree);
    name_hash_.push_back(0);
  }
  seen_sec_[at] = sec;
  name_hash_[at] = hash;
  Entry& e = At(at);
  e.account.assign(account);
  e.last_seen = t;
  index_.ValueAt(index_.Insert(std::string_view(e.account), hash)) = at;
  return e;
}

size_t AccountBook::chunk_bytes() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (kChunk * sizeof(Entry) + page - 1) & ~(page - 1);
}

AccountBook::MappedChunk::MappedChunk() {
  void* p = mmap(nullptr, chunk_bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  entries_ = static_cast<Entry*>(p);
  Prefaulter::Ahead(p, 0, chunk_bytes());
}

AccountBook::MappedChunk::~MappedChunk() {
  if (!entries_) return;
  if (built_) std::destroy_n(entries_, kChunk);
  Prefaulter::Forget(entries_);
  munmap(entries_, chunk_bytes());
}

void AccountBook::MappedChunk::Build() {
  std::uninitialized_value_construct_n(entries_, kChunk);
  built_ = true;
}

void AccountBook::EvictOldestAccounts() {
  // Failed logins can name any account, so a flood of invented names must neither grow memory
  // nor cost a scan of every account per name: the least recently seen eighth goes at once.
  ++runs_;
  size_t keep = max_accounts_ - max_accounts_ / 8;
  if (index_.size() <= keep) return;
  // An evicted name leaves the index some positions later than the pass finds it: its index
  // slot, somewhere at random, is asked for when found and read when kAhead more were found
  // (one cache miss an eviction otherwise, after the other).
  constexpr size_t kAhead = 16;
  std::array<uint32_t, kAhead> pending;
  size_t found = 0;
  auto unindex = [&](uint32_t i) {
    // Found by its position among the entries of its name's hash: the entry is not read.
    size_t slot = index_.FindWhere(static_cast<size_t>(name_hash_[i]),
                                   [i](std::string_view, uint32_t at) { return at == i; });
    if (slot != index_.kNone) index_.EraseAt(slot);
  };
  auto cost = EvictOldest(
      seen_sec_.size(), index_.size() - keep, newest_, 86400, runs_, [&](size_t i) { return seen_sec_[i] != kFree; },
      [&](size_t i) { return seen_sec_[i]; }, [&](size_t i) { return name_hash_[i]; },
      [&](size_t i) {
        uint32_t& next = pending[found++ % kAhead];
        if (found > kAhead) unindex(next);
        next = static_cast<uint32_t>(i);
        index_.PrefetchHashed(static_cast<size_t>(name_hash_[i]));
        seen_sec_[i] = kFree;
        free_.push_back(static_cast<uint32_t>(i));
        return false;
      });
  for (size_t k = found > kAhead ? found - kAhead : 0; k < found; ++k) unindex(pending[k % kAhead]);
  cost_.evicted += cost.evicted;
  cost_.positions_visited += cost.positions_visited;
}

void AccountBook::Recycle(Entry& e) {
  // Kept only when small: a free position holds no more than a live entry of a flood does.
  constexpr size_t kKeptName = 64, kKeptRecent = 4;
  if (e.account.capacity() <= kKeptName) e.account.clear();
  else std::string().swap(e.account);
  e.auth_success = e.auth_failure = e.relayed = 0;
  e.last_seen = Time{};
  e.last_ip.reset();
  e.domains = HashSet64();
  e.ip_hashes = HashSet64();
  if (e.recent.capacity() <= kKeptRecent) e.recent.clear();
  else std::vector<IpUse>().swap(e.recent);
  e.rare.reset();
  e.n_targeted = 0;
}

uint8_t AccountBook::RuleNumber(std::string_view rule) {
  for (size_t i = 0; i < rule_names_.size(); ++i)
    if (rule_names_[i] == rule) return static_cast<uint8_t>(i);
  if (rule_names_.size() >= kNoRule) return kNoRule;
  rule_names_.emplace_back(rule);
  return static_cast<uint8_t>(rule_names_.size() - 1);
}

namespace {

uint8_t TagOf(size_t ip_hash) { return static_cast<uint8_t>(static_cast<uint64_t>(ip_hash) >> 56); }

// Bit i set where tags[i] == tag, for the sixteen tags from `tags`.
unsigned MatchingTags(const uint8_t* tags, uint8_t tag) {
#if defined(__SSE2__) && !defined(RELAYBAN_NO_SIMD)
  __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(tags));
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(static_cast<char>(tag)))));
#else
  unsigned bits = 0;
  for (unsigned i = 0; i < 16; ++i) bits |= static_cast<unsigned>(tags[i] == tag) << i;
  return bits;
#endif
}

// Bit i set where secs[i] >= since, for the sixteen seconds from `secs`.
unsigned SecondsFrom(const uint32_t* secs, uint32_t since) {
  if (since == 0) return 0xFFFF;
#if defined(__SSE2__) && !defined(RELAYBAN_NO_SIMD)
  // Unsigned x >= since as signed (x ^ 2^31) > ((since - 1) ^ 2^31); the four masks of four
  // packed (saturating, so -1 and 0 stay) into sixteen bytes, one bit each.
  const __m128i bias = _mm_set1_epi32(INT32_MIN);
  const __m128i floor = _mm_set1_epi32(static_cast<int>((since - 1) ^ 0x80000000u));
  auto four = [&](size_t at) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(secs + at));
    return _mm_cmpgt_epi32(_mm_xor_si128(v, bias), floor);
  };
  __m128i lo = _mm_packs_epi32(four(0), four(4)), hi = _mm_packs_epi32(four(8), four(12));
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_packs_epi16(lo, hi)));
#else
  unsigned bits = 0;
  for (unsigned i = 0; i < 16; ++i) bits |= static_cast<unsigned>(secs[i] >= since) << i;
  return bits;
#endif
}

}  // namespace

AccountBook::IpUse* AccountBook::FindRecent(Entry& e, const IpAddress& ip, size_t ip_hash) {
  size_t n = e.recent.size();
  if (n <= kLinearScan) {
    for (IpUse& u : e.recent)
      if (u.ip == ip) return &u;
    return nullptr;
  }
  // Most addresses of a flood are new: no address held has their presence bits, and the tags
  // are not even scanned.
  if (e.rare->present[PresenceOf(ip_hash)] == 0) return nullptr;
  // About one address in 256 shares a tag: the addresses themselves are compared only then.
  const uint8_t* tags = e.rare->recent_tags.data();
  uint8_t tag = TagOf(ip_hash);
  static_assert(kMaxRecentIps % 16 == 0);
  for (size_t base = 0; base < n; base += 16) {
    for (unsigned bits = MatchingTags(tags + base, tag); bits != 0; bits &= bits - 1) {
      size_t i = base + static_cast<size_t>(__builtin_ctz(bits));
      if (i < n && e.recent[i].ip == ip) return &e.recent[i];
    }
  }
  return nullptr;
}

void AccountBook::AddRecent(Entry& e, const IpAddress& ip, size_t ip_hash, uint32_t seq, Time t, uint64_t kind_bit) {
  IpUse use{ip, false, seq, t, kind_bit};
  if (e.recent.size() < kMaxRecentIps) {
    e.recent.push_back(use);
    size_t n = e.recent.size();
    if (n <= kLinearScan) return;
    Rare& rare = e.rare_made();
    if (n == kLinearScan + 1)  // outgrew the scan: tag the others too
      for (size_t i = 0; i + 1 < n; ++i) {
        size_t h = IpAddressHash{}(e.recent[i].ip);
        rare.recent_tags[i] = TagOf(h);
        rare.recent_secs[i] = SecondsOf(e.recent[i].last);
        rare.Present(h);
      }
    rare.recent_tags[n - 1] = TagOf(ip_hash);
    rare.recent_secs[n - 1] = SecondsOf(t);
    rare.Present(ip_hash);
    return;
  }
  // Full: the new address takes the place of the oldest one not used again since it was
  // added or last passed over (a clock sweep: with no address used twice, the least recently
  // added goes; one in use survives a round). Each step past an address clears what a use
  // set, so a new address costs O(1) amortised, and nothing moves.
  Rare& rare = *e.rare;  // made when recent outgrew the scan
  size_t at = rare.hand;
  while (e.recent[at].again) {
    e.recent[at].again = false;
    at = at + 1 == kMaxRecentIps ? 0 : at + 1;
  }
  rare.Absent(IpAddressHash{}(e.recent[at].ip));
  e.recent[at] = use;
  rare.recent_tags[at] = TagOf(ip_hash);
  rare.recent_secs[at] = SecondsOf(t);
  rare.Present(ip_hash);
  rare.hand = static_cast<uint16_t>(at + 1 == kMaxRecentIps ? 0 : at + 1);
}

void AccountBook::Record(std::string_view account, Outcome outcome, uint64_t kind_bit,
                         const std::optional<IpAddress>& ip, std::string_view recipient_domain, Time t) {
  Record(account, StringHash{}(account), outcome, kind_bit, ip, recipient_domain, t);
}

void AccountBook::Record(std::string_view account, size_t account_hash, Outcome outcome, uint64_t kind_bit,
                         const std::optional<IpAddress>& ip, std::string_view recipient_domain, Time t) {
  Entry& e = Get(account, account_hash, t);  // hashed once, for the lookup and the insert
  ++seq_;
  e.last_seen = std::max(e.last_seen, t);
  switch (outcome) {
    case Outcome::kAuthSuccess: ++e.auth_success; break;
    case Outcome::kAuthFailure: ++e.auth_failure; break;
    case Outcome::kRelay: ++e.relayed; break;
    case Outcome::kOther: break;
  }
  if (!recipient_domain.empty() && e.domains.size() < kMaxDistinct) e.domains.Insert(Hash64(recipient_domain));
  if (ip) {
    // Only addresses that really used the account become its last_ip; a failure does not.
    if (outcome != Outcome::kAuthFailure) e.last_ip = *ip;
    size_t ip_hash = IpAddressHash{}(*ip);
    if (e.ip_hashes.size() < kMaxDistinct) e.ip_hashes.Insert(ip_hash);
    if (IpUse* u = FindRecent(e, *ip, ip_hash)) {
      u->last = std::max(u->last, t);
      if (e.recent.size() > kLinearScan) e.rare->recent_secs[static_cast<size_t>(u - e.recent.data())] = SecondsOf(u->last);
      u->seq = seq_;
      u->kinds |= kind_bit;
      u->again = true;
    } else {
      AddRecent(e, *ip, ip_hash, seq_, t, kind_bit);
    }
  }
}

void AccountBook::AddVerdict(std::string_view account, std::string_view rule) {
  Entry* e = Find(account);
  if (!e) return;
  auto& v = e->rare_made().verdicts;
  if (std::find(v.begin(), v.end(), rule) == v.end()) v.emplace_back(rule);
}

void AccountBook::AddTargeted(std::string_view account, std::string_view rule) {
  Entry* e = Find(account);
  if (!e) return;
  uint8_t number = RuleNumber(rule);
  for (uint8_t i = 0; i < e->n_targeted; ++i)
    if (e->targeted[i] == number) return;
  if (e->rare && std::find(e->rare->targeted_by.begin(), e->rare->targeted_by.end(), rule) != e->rare->targeted_by.end())
    return;
  // In order: the first few inline, the rest (or a rule past the numbered ones) in Rare.
  if (number != kNoRule && e->n_targeted < sizeof(e->targeted) && !(e->rare && !e->rare->targeted_by.empty())) {
    e->targeted[e->n_targeted++] = number;
    return;
  }
  e->rare_made().targeted_by.emplace_back(rule);
}

void AccountBook::ClearVerdicts(std::string_view account) {
  Entry* e = Find(account);
  if (!e) return;
  e->n_targeted = 0;
  if (!e->rare) return;
  e->rare->verdicts.clear();
  e->rare->targeted_by.clear();
  e->rare->fired.clear();
}

std::optional<AccountBook::Fired> AccountBook::MarkFired(std::string_view account, uint32_t rule_id, Time t) {
  Entry* e = Find(account);
  if (!e) return std::nullopt;
  for (auto& [id, fired] : e->rare_made().fired) {
    if (id == rule_id) {
      Fired previous = fired;
      fired = {t, seq_};
      return previous;
    }
  }
  e->rare->fired.emplace_back(rule_id, Fired{t, seq_});
  return std::nullopt;
}

std::vector<IpAddress> AccountBook::IpsSince(std::string_view account, Time since, uint64_t kinds,
                                             std::optional<uint32_t> after) const {
  std::vector<IpAddress> out;
  const Entry* e = Find(account);
  if (!e) return out;
  auto take = [&](const IpUse& u) {
    if (u.last < since || (u.kinds & kinds) == 0) return;
    // Used in that verdict's second, but before it: its fan-out reached the address.
    if (after && u.last == since && static_cast<int32_t>(u.seq - *after) <= 0) return;
    if (out.empty()) out.reserve(16);
    out.push_back(u.ip);
  };
  size_t n = e->recent.size();
  if (n <= kLinearScan) {
    for (const IpUse& u : e->recent) take(u);
    return out;
  }
  // Only the addresses used in `since`'s second or later can be: found sixteen at a time by
  // their seconds, then looked at (in position order, as a plain scan would give them).
  const uint32_t* secs = e->rare->recent_secs.data();
  uint32_t since_sec = SecondsOf(since);
  for (size_t base = 0; base < n; base += 16)
    for (unsigned bits = SecondsFrom(secs + base, since_sec); bits != 0; bits &= bits - 1) {
      size_t i = base + static_cast<size_t>(__builtin_ctz(bits));
      if (i < n) take(e->recent[i]);
    }
  return out;
}

std::vector<AccountView> AccountBook::Snapshot() const {
  std::vector<AccountView> out;
  out.reserve(index_.size());
  ForEachSorted([&](const AccountView& v) { out.push_back(v); });
  return out;
}

void AccountBook::ForEachSorted(const std::function<void(const AccountView&)>& f) const {
  for (uint32_t position : Sorted()) f(ViewAt(position));
}

std::vector<uint32_t> AccountBook::Sorted() const {
  // Sorted by the eight bytes after the names' common prefix, as one big-endian number
  // (zero-padded), and by the whole names only where those agree: a botnet's 200,000
  // invented names ("invented123@...") differ just there, and comparing the names
  // themselves went to memory and to memcmp some 3.5 million times.
  struct Key {
    uint64_t head;
    uint32_t pos;
  };
  std::vector<Key> order;
  order.reserve(index_.size());
  std::string_view first;
  size_t common = 0;
  for (size_t i = 0; i < seen_sec_.size(); ++i) {
    if (seen_sec_[i] == kFree) continue;
    std::string_view name = At(i).account;
    if (order.empty()) {
      first = name;
      common = name.size();
    } else {
      size_t n = std::min(common, name.size()), k = 0;
      while (k < n && name[k] == first[k]) ++k;
      common = k;
    }
    order.push_back({0, static_cast<uint32_t>(i)});
  }
  for (Key& k : order) {
    std::string_view name = std::string_view(At(k.pos).account).substr(common);
    unsigned char head[8] = {};
    std::memcpy(head, name.data(), std::min(name.size(), sizeof head));
    for (unsigned char b : head) k.head = k.head << 8 | b;
  }
  // By head a byte at a time, least significant first (each pass keeps the order of equal
  // bytes), passing over bytes every name shares: a few sequential passes, where comparing
  // 200,000 keys took some 3.5 million calls of the comparison.
  std::vector<Key> spare(order.size());
  for (int shift = 0; shift < 64 && order.size() > 1; shift += 8) {
    uint32_t count[256] = {};
    for (const Key& k : order) ++count[(k.head >> shift) & 0xFF];
    if (count[(order.front().head >> shift) & 0xFF] == order.size()) continue;
    uint32_t at = 0;
    for (uint32_t& c : count) at += std::exchange(c, at);
    for (const Key& k : order) spare[count[(k.head >> shift) & 0xFF]++] = k;
    order.swap(spare);
  }
  // Names whose heads agree, by the whole names.
  for (size_t i = 0; i < order.size();) {
    size_t j = i + 1;
    while (j < order.size() && order[j].head == order[i].head) ++j;
    if (j - i > 1)
      std::sort(order.begin() + static_cast<std::ptrdiff_t>(i), order.begin() + static_cast<std::ptrdiff_t>(j),
                [&](const Key& a, const Key& b) { return At(a.pos).account < At(b.pos).account; });
    i = j;
  }
  std::vector<uint32_t> positions;
  positions.reserve(order.size());
  for (const Key& k : order) positions.push_back(k.pos);
  return positions;
}

std::optional<AccountView> AccountBook::View(std::string_view account) const {
  const Entry* e = Find(account);
  if (!e) return std::nullopt;
  return ViewOf(*e);
}

size_t AccountBook::CountWithVerdict() const {
  size_t n = 0;
  for (size_t i = 0; i < seen_sec_.size(); ++i)
    if (seen_sec_[i] != kFree && At(i).rare && !At(i).rare->verdicts.empty()) ++n;
  return n;
}

}  // namespace relayban
