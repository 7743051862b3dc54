// BanLedger: the one owner of what is banned, why and until when. Every ban and unban goes
// through it - the policy's (as the engine's BanBook), an admin's, and at start-up what the
// state store and the kernel hold. The kernel set and the SQLite history are its mirrors:
// changes are queued and pushed in bounded slices on later loop turns (a botnet's million
// bans never stalls the loop), a mirror that fails is retried with backoff until it holds and
// shows as degraded meanwhile, and the kernel is checked for tampering and repaired.
// Time comes from the injected Clock; single-threaded (the loop thread: a StoreWriter runs
// only the store's calls on its own, a JobThread only the firewall's Apply, and each hands
// the outcomes back to this thread).
#pragma once

#include <array>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "relayban/core/clock.hpp"
#include "relayban/core/flat_map.hpp"
#include "relayban/firewall/firewall.hpp"
#include "relayban/policy/ban_book.hpp"
#include "relayban/state/state_store.hpp"

namespace relayban {

class JobThread;
class StoreWriter;

enum class BanOrigin : uint8_t { kRule, kManual, kAdopted, kFleet };
const char* OriginName(BanOrigin o);

class BanLedger : public BanBook {
 public:
  using Log = std::function<void(int priority, const std::string&)>;
  struct Options {
    size_t kernel_slice = 10000;  // elements per firewall transaction
    size_t store_slice = 2000;    // ban writes per SQLite transaction
    // Per Flush (one loop turn), each mirror gets transactions until this much time went
    // (at least one): the kernel first, as bans only protect once there.
    std::chrono::milliseconds kernel_budget{15}, store_budget{15};
    Seconds max_backoff{30};  // longest wait between retries of a failing mirror
    Seconds check_every{5};   // how often the kernel table is checked for tampering
    // Above this many bans the kernel's sets are never listed (the kernel resumes a set dump
    // from its start for every message: 50,000 take ~0.1 s, a million ~40 s, past the
    // watchdog): where a list would be needed, every ban is added again instead (adding
    // what is there is harmless), a slice per turn, and elements only the kernel holds
    // expire on their own.
    size_t list_at_most = 50000;
    // Slots of the table UnbanAll's sweep looks at per Flush step (steps go on within
    // kernel_budget).
    size_t lift_slice = 32768;
    // When set, the store's slices are written on its thread (one at a time, in order)
    // while the loop goes on; their outcomes come back through its Poll. Else they are
    // written in Flush.
    StoreWriter* writer = nullptr;
    // When set, the kernel's slices (Apply) run on this thread, one at a time, while the
    // loop goes on; every other firewall call first waits for the slice on its way.
    JobThread* kernel_thread = nullptr;
  };
  // Why a ban exists; shared by every ban with the same values.
  struct Info {
    std::string jail, rule, account, reason;
    BanOrigin origin = BanOrigin::kRule;
    // The same for the store's writes, made at the first one (shared with the writer's
    // thread, immutable).
    mutable std::shared_ptr<const BanInfo> saved;
  };
  // An active ban as `list` shows it.
  struct ActiveBan {
    Prefix target;
    const Info* info;
    Time start;
    Time end;  // Time::max() = permanent
    Seconds duration;
  };
  // `ban` as `list` answers it: {"ban":{...}} with the keys in order, written field by field
  // (a million bans are listed; a json object each cost as much as the rest), the same text
  // as nlohmann::json's dump(-1) with invalid UTF-8 replaced (a unit test holds them equal).
  static std::string ListItem(const ActiveBan& ban, Time now);
  struct RestoreReport {
    size_t restored = 0;  // active in the store, put back
    size_t adopted = 0;   // in the kernel only: the store had lost them
    size_t lifted = 0;    // in the kernel though lifted by hand: removed
    size_t missing = 0;   // in the store but not the kernel: added again
    std::vector<std::pair<Prefix, Time>> offences;  // escalation history, for the policy
  };
  struct Stats {
    uint64_t bans = 0, unbans = 0, expired = 0;
    uint64_t kernel_changes = 0, kernel_errors = 0;
    uint64_t store_writes = 0, store_errors = 0;
    uint64_t repaired = 0;  // bans put back after someone removed them from the kernel
    double kernel_seconds = 0, store_seconds = 0;  // time spent in the mirrors' calls
  };

  // The mirrors and the clock must outlive the ledger.
  BanLedger(Firewall& firewall, StateStore& store, const Clock& clock, Log log, Options options);
  BanLedger(Firewall& firewall, StateStore& store, const Clock& clock, Log log)
      : BanLedger(firewall, store, clock, std::move(log), Options{}) {}

  // At start-up: puts back the bans the store has in force, adopts kernel elements it does
  // not know (a full disk or a fresh database lost them), removes those an admin had lifted,
  // and queues whatever the kernel lacks. A store that cannot be read is logged, and then
  // everything in the kernel is adopted.
  // With `kernel_as_left` the caller knows the kernel holds exactly the store's bans in force
  // (nothing was committed to the ruleset since a clean exit left them there): they are
  // taken as read, not listed (a list costs the kernel time quadratic in the set's size).
  RestoreReport Restore(bool kernel_as_left = false);

  // BanBook: the policy's bans (origin rule).
  // A ban in force, whether or not its end has come (Tick ends it); the policy's bans that
  // are not permanent are offences, reported when they end, are lifted or replaced.
  std::optional<BanTerm> Held(const Prefix& target) const override;
  void Record(const Order& order) override;
  void Prefetch(const Prefix& target) const override { entries_.Prefetch(target); }

  // A ban from elsewhere: by hand, or from the fleet. `urgent` puts it at the head of the
  // kernel queue (an admin waits for it), ahead of a botnet's backlog.
  void Ban(const Order& order, BanOrigin origin, bool urgent = false);
  // Lifts the ban of exactly `target`; false if there is none. The kernel removal is queued
  // and retried until it holds.
  bool Unban(const Prefix& target, bool urgent = false);
  // Lifts every ban; returns how many. The kernel's sets are emptied at once, and from
  // then on no ban of before is held, listed or counted; but each one's end (its record
  // in the store, its offence for the escalation history) is done over the next loop turns
  // (Flush, a slice of the table each), not in this one: a million bans took 50-70 ms to
  // end in one go. A ban made meanwhile stands, whatever it replaces.
  size_t UnbanAll();
  // Bans lifted by UnbanAll whose end is still to be done.
  size_t LiftPending() const { return lifting_ ? lift_left_ : 0; }
  // Ended offences still on their way to the escalation history (see UnbanAll).
  size_t OffencesPending() const { return ended_.size() - ended_head_ + ended_after_lift_.size(); }

  // Housekeeping, once a second: ends expired bans, checks the kernel table every
  // check_every, re-queues work whose backoff is over.
  void Tick();
  // Pushes at most one slice to the kernel and one to the store. Returns true while work
  // is left that could be done now (the loop should turn again without waiting).
  bool Flush();
  // Nothing is waiting for the kernel (every ban and unban ordered so far is in force there).
  bool KernelSettled() const { return kernel_queue_.empty() && kernel_in_flight_ == 0; }
  // The last ban or unban of `target` still waits for the kernel.
  bool KernelPending(const Prefix& target) const {
    const Entry* e = entries_.Get(target);
    return e && !Lifted(*e) && (e->kernel_pending || e->kernel_in_flight);
  }
  // The store lost its database (a damaged one was moved aside): write every ban in force
  // again.
  void ResaveAll();
  bool StoreSettled() const {
    return store_queue_.empty() && store_failed_.empty() && !store_in_flight_ && !lifting_;
  }
  // From now on the store's slices are written in Flush, on the calling thread (at stop).
  // The writer must be idle: every slice handed to it has come back through its Poll.
  void WriteStoreHere() { options_.writer = nullptr; }
  // At stop: flushes what it can until `deadline`.
  void Drain(Clock::Steady deadline);
  // --flush-on-exit: removes the table and ends every ban in the store.
  Result<void> RemoveAll();

  std::optional<ActiveBan> Get(const Prefix& target) const;
  // Active bans, in no particular order.
  template <class F>
  void ForEach(F&& f) const {
    entries_.ForEach([&](const Prefix& p, const Entry& e) {
      if (Live(e)) f(MakeBan(p, e));
    });
  }
  std::vector<Prefix> Targets() const;
  size_t size() const { return active_; }
  // Targets it keeps: bans in force, and ended ones still owing a mirror something.
  size_t tracked() const { return entries_.size(); }
  size_t CountInJail(const std::string& jail) const;
  // Empty when the mirror is fine, else why it is not ("firewall: ...", "state database: ...").
  const std::string& firewall_problem() const { return firewall_problem_; }
  const std::string& store_problem() const { return store_problem_; }
  size_t kernel_backlog() const { return kernel_queue_.size() + kernel_in_flight_; }
  // (With the ends of bans lifted by UnbanAll not settled yet: the store is owed those too.)
  size_t store_backlog() const { return store_queue_.size() + store_failed_.size() + store_in_flight_ + LiftPending(); }
  const Stats& stats() const { return stats_; }

 private:
  enum class State : uint8_t { kActive, kLifting, kEnded };
  enum class How : uint8_t { kNone, kUnban, kExpired, kFlushed };
  // 40 bytes, the 64-bit fields first (a slot of a million-ban table is 64 bytes, not 72).
  struct Entry {
    int64_t start_us = 0;
    int64_t end_us = 0;  // kForever = permanent
    int64_t ended_us = 0;
    uint32_t info = 0;
    uint32_t duration_s = 0;
    State state = State::kActive;
    How how = How::kNone;
    bool kernel_pending = false;  // queued for the kernel
    bool kernel_in_flight = false;  // in the slice on its way to the kernel
    bool save_pending = false;    // its record is owed to the store
    bool end_pending = false;     // its end is owed to the store
    bool in_store = false;        // the store may hold an active record of this target
    uint8_t gen = 0;              // the ledger's gen_ when it was made or last settled (see Lifted)
  };
  static_assert(sizeof(Entry) == 40);
  // Tells the firewall its sets hold every ban in force (settled: and that they do not need
  // to be sent again).
  void AssumeKernelHoldsAll(bool settled);
  static constexpr int64_t kForever = INT64_MAX;
  // An entry that UnbanAll lifted and that is not settled yet: whatever it says, it is no
  // ban (its kernel element is gone) and owes nothing to the kernel. Settled (its end done,
  // see Settle) by the sweep, or first whenever it is touched.
  bool Lifted(const Entry& e) const { return lifting_ && e.gen != gen_; }
  // A ban in force.
  bool Live(const Entry& e) const { return e.state == State::kActive && !Lifted(e); }
  // A new entry for `target` (which must be missing), of the current generation.
  size_t InsertEntry(const Prefix& target);
  // Does what UnbanAll left to do for a lifted entry: it ends it (the ban was counted out
  // already) and forgets what it owed the kernel. The entry stays (the caller may erase it).
  void Settle(const Prefix& target, Entry& e);
  // Settles the entry of `target` if it is a lifted one.
  void SettleIfLifted(const Prefix& target);
  // Settles the lifted entries of up to `slots` more slots; false once none is left.
  bool SweepLifted(size_t slots);
  // Settles every lifted entry that is left.
  void FinishLift();

  struct Retry {
    Clock::Steady at{};
    Seconds backoff{0};
  };

  // The id of an Info with these values, its count of bans one more; a new one if none has
  // them. A verdict's bans share one: looked up without building the Info or a key.
  uint32_t Intern(std::string_view jail, std::string_view rule, std::string_view account, std::string_view reason,
                  BanOrigin origin);
  uint32_t Intern(const Info& info);
  static uint64_t InfoHash(std::string_view jail, std::string_view rule, std::string_view account,
                           std::string_view reason, BanOrigin origin);
  void Release(uint32_t info);
  void SetInfo(Entry& e, uint32_t info);
  ActiveBan MakeBan(const Prefix& p, const Entry& e) const;
  void Activate(const Prefix& target, Entry& e);
  void Deactivate(Entry& e);
  // Ends an active ban here (lifted or ended, how and when) and owes its end to the store.
  void End(const Prefix& target, Entry& e, State state, How how, int64_t at_us, bool offence_later = false);
  // End without counting the ban out of active_ and its jail (done already).
  void Close(const Prefix& target, Entry& e, State state, How how, int64_t at_us, bool offence_later);
  void QueueKernel(const Prefix& target, Entry& e, bool urgent = false);
  void QueueStore(const Prefix& target, Entry& e);
  // A ban the policy ordered, not permanent: an escalation offence.
  bool Offence(const Entry& e) const { return infos_[e.info].origin == BanOrigin::kRule && e.duration_s != 0; }
  // An entry that is no ban any more and owes neither mirror anything: it goes.
  static bool Spent(const Entry& e) {
    return e.state != State::kActive && !e.kernel_pending && !e.kernel_in_flight && !e.save_pending && !e.end_pending;
  }
  void MaybeErase(const Prefix& target);
  // Erases the entry in slot i if it is spent; true if another entry moved into slot i.
  bool EraseIfSpent(size_t i);
  // Hands an ended offence to the book's listener, or queues it behind those waiting
  // (`later`, or some wait already: the history learns them in the order they ended).
  void OffenceEnded(const Prefix& target, int64_t start_us, bool later = false);
  // Hands over up to `n` queued offences; true while some are left.
  bool FlushOffences(size_t n);
  bool FlushKernel();
  // The outcome of a slice of kernel orders for `taken`: a failed one goes back to be sent
  // again (what changed meanwhile is queued already, and sent as it is by then).
  void KernelApplied(const std::vector<Prefix>& taken, const Result<ApplyReport>& r, double took);
  // With a kernel thread: waits for the slice on its way and takes its outcome, before any
  // other firewall call (the firewall is never used by two threads at once).
  void WaitKernel();
  bool FlushStore();
  // The outcome of a slice of writes; a failed one is kept to be written again, whole and
  // before anything else (later writes of its targets must follow it).
  void StoreWritten(std::vector<BanWrite> writes, const Result<void>& r, Clock::Steady started);
  void CheckKernel();
  void Failed(Retry& retry, std::string& problem, const std::string& what, const Error& error, uint64_t& counter);
  void Recovered(Retry& retry, std::string& problem, const std::string& what);
  // The store's write saving the ban of `p`.
  BanWrite SaveOf(const Prefix& p, const Entry& e) const;

  Firewall& firewall_;
  StateStore& store_;
  const Clock& clock_;
  Log log_;
  Options options_;

  FlatMap<Prefix, Entry, PrefixHash> entries_;
  static_assert(decltype(entries_)::PlainSlots(), "a million bans must grow without holding two tables at once");
  size_t active_ = 0;
  // Bans in force per jail; an Info points at its jail's count (a flood's bans count
  // without hashing the jail's name), so a jail's count stays while any Info names it.
  std::unordered_map<std::string, size_t> per_jail_;
  std::vector<size_t*> info_jail_active_;  // per Info: its jail's count in per_jail_
  // Interned Infos: shared by bans with the same values, freed when the last one goes.
  std::vector<Info> infos_;
  std::vector<uint32_t> info_refs_;
  std::vector<uint32_t> info_free_;
  // By InfoHash of their values (already mixed: FlatMap's hash of it is the hash itself).
  struct HashIsKey {
    size_t operator()(uint64_t h) const { return static_cast<size_t>(h); }
  };
  FlatMap<uint64_t, uint32_t, HashIsKey> info_index_;
  uint32_t last_info_ = UINT32_MAX;  // the Info the last ban interned (a verdict's next ban shares it)
  // The texts of the order that made or matched last_info_: a verdict's next ban names the
  // very same ones (SharedText), known equal without comparing a byte. Held, so no other
  // text can take their identity.
  std::array<SharedText, 4> last_texts_;

  // Expiry order: (end, target); an item whose entry has since changed is skipped. A heap in
  // a deque: a million bans grow it without copying it or asking for twice its memory at
  // once (fresh memory costs more than the heap's work here: its items mostly come in order).
  std::deque<std::pair<int64_t, Prefix>> expiry_;
  std::deque<Prefix> kernel_queue_, store_queue_;
  std::vector<std::pair<Prefix, int64_t>> ended_;  // offences (target, start) for the listener
  size_t ended_head_ = 0;                          // the first not handed over yet
  // Offences that ended while lifted ones were still being settled: they go behind those.
  std::vector<std::pair<Prefix, int64_t>> ended_after_lift_;
  // UnbanAll's sweep: entries of another generation than gen_ are lifted (Lifted). Every
  // entry has gen_'s value when no sweep runs, so one bit of it is enough.
  uint8_t gen_ = 0;
  bool lifting_ = false;
  size_t lift_cursor_ = 0;     // the next slot the sweep looks at
  size_t lift_left_ = 0;       // lifted entries not settled yet
  bool lift_pass_found_ = false;  // the sweep's pass over the table settled at least one
  int64_t lift_at_us_ = 0;     // when UnbanAll lifted them
  std::vector<BanWrite> store_failed_;  // a slice the store refused, to be written again first
  size_t store_in_flight_ = 0;          // writes of the slice on the writer's thread
  size_t kernel_in_flight_ = 0;         // orders of the slice on the kernel thread
  // Halved after a failure, so one bad element cannot hold the rest; fitted to the budget
  // after a slow transaction, never below kMinKernelSlice for that (a transaction has a cost
  // of its own).
  size_t kernel_slice_;
  static constexpr size_t kMinKernelSlice = 500;
  Retry kernel_retry_, store_retry_;
  std::string firewall_problem_, store_problem_;
  Clock::Steady next_check_{};
  Stats stats_;
};

}  // namespace relayban
