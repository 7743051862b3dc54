// BanBook: what is banned now. The ban policy reads it before it bans (already banned? for
// longer?) and records in it every ban it orders, so the fact has one owner per process: the
// daemon's BanLedger (daemon/, which mirrors the book into the kernel and the state store),
// or, for `relayban check` and tests, MemoryBanBook. Single-threaded, like the engine.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "relayban/core/duration.hpp"
#include "relayban/core/flat_map.hpp"
#include "relayban/core/ip_address.hpp"
#include "relayban/core/shared_text.hpp"

namespace relayban {

// A log line that led to a decision: the engine source that read it and its text.
struct Evidence {
  int source = -1;
  std::string line;
};

// The lines behind a decision, oldest first. Shared, not copied: one verdict on an account
// bans every address that used it, and each of those bans carries the same lines (a
// botnet's burst makes a million of them). Reads like a const vector.
class EvidenceLines {
 public:
  EvidenceLines() = default;
  EvidenceLines(std::vector<Evidence> lines)  // NOLINT: implicit, as a vector would take it
      : lines_(lines.empty() ? nullptr : std::make_shared<const std::vector<Evidence>>(std::move(lines))) {}
  // Only how many lines there were, not the lines: what a record past a flood's share of
  // records with their lines says (the lines were never copied).
  static EvidenceLines Counted(size_t n) {
    EvidenceLines e;
    e.counted_ = n;
    return e;
  }
  // Lines held.
  size_t size() const { return lines_ ? lines_->size() : 0; }
  bool empty() const { return size() == 0; }
  // Lines the decision had, held or only counted.
  size_t count() const { return lines_ ? lines_->size() : counted_; }
  const Evidence& operator[](size_t i) const { return (*lines_)[i]; }
  const Evidence& back() const { return lines_->back(); }
  const Evidence* begin() const { return lines_ ? lines_->data() : nullptr; }
  const Evidence* end() const { return lines_ ? lines_->data() + lines_->size() : nullptr; }
  // The same list (not merely equal lines): a formatted copy can be reused.
  const void* identity() const { return lines_.get(); }

 private:
  std::shared_ptr<const std::vector<Evidence>> lines_;
  size_t counted_ = 0;
};

struct Order {
  enum class Action : uint8_t { kBan, kUnban };
  Action action = Action::kBan;
  Time at{};  // the log time of the line that decided it (replays decide as live reading did)
  // Shared with the verdict's other orders (SharedText): a fan-out's bans name the same.
  SharedText jail;
  SharedText rule;
  Prefix target;
  SharedText account;  // empty unless the verdict was about an account
  Seconds duration{0};  // 0 with kBan = permanent
  SharedText reason;
  // The last lines (at most Engine's kEvidenceLines, oldest first) of the key that decided
  // it, of the rule's event kinds: what an admin reads to see why.
  EvidenceLines evidence;
};

// Whether `b` is `a` but for its target and its evidence's lines: what a report that leaves
// the lines out (past a flood's share, saying only how many there were) shares.
inline bool SameButTargetAndLines(const Order& a, const Order& b) {
  return a.action == b.action && a.at == b.at && a.duration == b.duration && a.jail == b.jail && a.rule == b.rule &&
         a.account == b.account && a.reason == b.reason;
}
// Whether `b` is `a` but for its target: two bans of one verdict, whose reports can share
// everything they say besides the address (the same lines, not merely equal ones).
inline bool SameButTarget(const Order& a, const Order& b) {
  return SameButTargetAndLines(a, b) && a.evidence.identity() == b.evidence.identity() &&
         a.evidence.count() == b.evidence.count();
}

// A ban the book holds: from `start` until `end` (Time::max() = permanent), ordered for
// `duration` (0 = permanent).
struct BanTerm {
  Time start;
  Time end;
  Seconds duration;
  // A ban the policy ordered, not permanent: an offence the book will report to its
  // listener when the ban ends (expired, lifted, or replaced by another ban of the target).
  bool offence = false;
};

// Told by a book when an offence it holds ends: from then on it is the listener's to
// remember (the policy's escalation history). A running ban is an offence the book holds
// itself, so a first ban - what a botnet's burst is made of - costs no history entry.
class BanEndListener {
 public:
  virtual void BanEnded(const Prefix& target, Time start) = 0;

 protected:
  ~BanEndListener() = default;
};

class BanBook {
 public:
  virtual ~BanBook() = default;
  // The ban of exactly `target` the book holds, running or ended, as long as it has not
  // reported its end.
  virtual std::optional<BanTerm> Held(const Prefix& target) const = 0;
  // The ban of exactly `target` in force at `now`, if any.
  std::optional<BanTerm> Find(const Prefix& target, Time now) const {
    auto held = Held(target);
    if (!held || held->end <= now) return std::nullopt;
    return held;
  }
  // Records a ban the policy has just ordered (replacing the target's previous one).
  virtual void Record(const Order& order) = 0;
  // A hint that `target` is about to be looked up (see FlatMap::Prefetch).
  virtual void Prefetch(const Prefix& target) const { (void)target; }
  // Who is told when an offence ends (one at a time; the latest wins). Unlisten forgets
  // `l` only if it is still the one: an engine built at a reload listens before the old
  // one is gone.
  void Listen(BanEndListener* l) { listener_ = l; }
  void Unlisten(const BanEndListener* l) {
    if (listener_ == l) listener_ = nullptr;
  }

 protected:
  void ReportEnded(const Prefix& target, Time start) const {
    if (listener_) listener_->BanEnded(target, start);
  }

 private:
  BanEndListener* listener_ = nullptr;
};

// The book of `relayban check` and of tests: terms only, counted on the log's time (a ban
// ends at order.at + duration). About 40 bytes a ban, so a replayed botnet of a million
// addresses fits. Ended bans are dropped by Expire, a bounded slice at a time.
class MemoryBanBook : public BanBook {
 public:
  std::optional<BanTerm> Held(const Prefix& target) const override;
  void Record(const Order& order) override;
  // Drops bans ended before `now` (reporting the offences), visiting at most `max_slots`
  // slots (0 = all).
  void Expire(Time now, size_t max_slots = 0);
  void Prefetch(const Prefix& target) const override { terms_.Prefetch(target); }
  // Lifts the ban of `target` (as an admin's unban), reporting its offence; false if none.
  bool Lift(const Prefix& target);
  size_t size() const { return terms_.size(); }

 private:
  struct Term {
    uint32_t start_sec = 0;
    uint32_t duration_s = 0;  // 0 = permanent
    uint64_t end_sec() const { return uint64_t{start_sec} + duration_s; }
  };
  // Drops the term at `i`, reporting its offence; true when another entry moved into `i`.
  bool Drop(size_t i);
  // The last Held lookup, for the Record that BanPolicy::Ban makes right after it (a flood's
  // every ban): its target's hash and slot (or kNone), until the table next changes.
  struct LastLookup {
    bool valid = false;
    Prefix target;
    size_t hash = 0, slot = 0;
  };
  mutable LastLookup last_;
  FlatMap<Prefix, Term, PrefixHash> terms_;
  static_assert(decltype(terms_)::PlainSlots(), "a million bans must grow without holding two tables at once");
  size_t expire_at_ = 0;
};

}  // namespace relayban
