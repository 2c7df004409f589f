// Synchronisation primitives shared between processes (Python: synchronize.py):
// Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition, Barrier.
//
// Each is a cheap copyable handle to a small state object in the shared-memory arena (arena.hpp):
// copies, and pickled copies in other processes (a Process argument under fork, spawn or
// forkserver), are the same lock. The state is a few std::atomic<uint32_t> words, with no
// pointer, so every process may map it at its own address.
//
//     mp::Lock lock;
//     mp::Process p([](mp::Lock l) { std::lock_guard g(l); /* ... */ }, lock);
//
// Waiting: every wait here is one call of detail::wait_until (detail/wait.hpp): a short bounded
// spin for Event, Semaphore and Condition (a handoff between two running processes costs well
// under a microsecond; a contended Lock/RLock does not spin, see detail::spin_policy), then a
// futex wait (the process-shared variants), with timeouts measured on the steady clock. Nothing
// polls with a sleep. The lock word and the owner checks are detail/lock_word.hpp and
// detail/liveness.hpp.
//
// Owner death (Lock and RLock): the lock word holds the owner's pid. A waiter that has slept
// for a slice (detail::owner_check_interval, a futex timeout) checks whether that process still
// runs; if it has ended (SIGKILL, a crash, an exit without release), the waiter takes the lock
// over. What the user observes: the next acquirer gets the lock, as with a robust mutex, within
// about one slice of the owner's death; the data the lock protected may be half-updated by the
// dead owner, and nothing says so (Python's multiprocessing would deadlock instead). An RLock
// taken over is held once by its new owner, whatever the dead owner's recursion depth. A dead
// owner is seen as dead once it has exited, zombie included (a pidfd), so it need not be reaped
// first. A timed acquire also checks once when its timeout runs out, so a timeout shorter than
// a slice recovers too; try_lock() and acquire(0s) never wait and never check. Limits: a lock taken by a
// thread that then ends while its process lives is not recovered (as in Python); a pid reused by a new
// process before a waiter notices is taken as alive.
//
// Condition: a futex word `seq` that notify() bumps, and one 64-bit word holding two counts,
// "sleepers" (waiters not yet chosen by a notify) and "tokens" (wake-ups handed out and not yet
// taken). wait() registers as a sleeper under the lock; notify(n) moves min(n, sleepers) from
// sleepers to tokens in one atomic step and wakes as many; a waiter returns true only by taking a
// token, so notify(n) lets at most n waiters return true, and a waiter that starts waiting after
// a notify does not take that notify's wake-ups (it takes a token only once `seq` has moved past
// its registration, i.e. a later notify counted it, or when no sleeper is left, which means
// every registered waiter, itself included, was chosen). A waiter whose timeout runs
// out takes a token if one is there for it (returns true), else leaves the sleepers (returns
// false): a notification is never lost to a timeout while another waiter could have it.
// Waiter death: a waiter process killed (SIGKILL) while inside wait() does not hold the lock (it
// released it to sleep), so nothing deadlocks, and live waiters still get every notify (wake-ups
// are not addressed to one waiter). But it stays counted as waiting (n_waiting()): a notify may
// count it among those it wakes, and if no live waiter is left to take that wake-up, a later
// waiter may take it, i.e. one wait() may return true without a notify of its own (a spurious
// wake-up, which wait_for()'s predicate loop absorbs). A process killed while holding the lock
// (outside wait()): the lock is recovered as above.
//
// Barrier: Python's threading.Barrier (multiprocessing uses the same code) over a Condition and
// a small state in the arena; the action is stored as (module, offset), as a Process target
// crosses exec, and run by the last party to arrive, in its own process. Party death: each party
// inside wait() holds a slot recording its process as (pid, start time), so that a pid reused by
// a later process is not taken for it, and threads of one process are parties of their own. A
// recorded process is gone once /proc says it has ended, is a zombie, has another start time, or
// has a SIGKILL pending (kill(2) has returned: its death is decided, even if it has not run yet).
// The last party to arrive checks every recorded one before it releases the others, and the
// parties that wait check them at least every detail::barrier_check_interval (one check per
// interval for all of them: they sleep until the shared time of the next check). A party that
// dies holding the Barrier's lock (as it arrives or leaves, or in the action) is found once the
// lock is taken over from it: a party blocked on that lock checks its holder every
// detail::barrier_lock_check_interval (a Lock's waiters, every owner_check_interval). A party found
// dead while the barrier fills breaks it (every waiter and later arrival raises
// mp::BrokenBarrierError until reset()); one found dead while the barrier drains or resets is
// dropped, so neither wait() nor reset() hangs on it. The count of parties inside wait() is the
// number of occupied slots, each claimed or freed by one store, so a party killed at any point
// leaves no count out of step.
#pragma once

#include "detail/platform.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <ostream>
#include <string>
#include <type_traits>
#include <variant>

#include "arena.hpp"
#include "detail/function_id.hpp"
#include "detail/liveness.hpp"
#include "detail/lock_word.hpp"
#include "process.hpp"  // current_process()'s name, printed as a lock's owner (operator<<)
#include "detail/posix.hpp"
#include "detail/repr.hpp"
#include "detail/wait.hpp"
#include "errors.hpp"
#include "pickle.hpp"

namespace multiprocessing {

namespace detail {

/// The state of a Lock in the arena.
struct lock_state {
    std::atomic<std::uint32_t> word{0};
};

/// The state of an RLock: the word as a Lock's, plus the owning thread and its depth.
struct rlock_state {
    std::atomic<std::uint32_t> word{0};
    std::atomic<std::uint32_t> owner_tid{0};  // 0 when free; written by the owner only
    std::atomic<std::uint32_t> count{0};      // recursion depth; owner only
};

struct semaphore_state {
    semaphore_state(std::uint32_t v, std::uint32_t max, bool is_bounded)
        : value(v), bound(max), bounded(is_bounded) {}
    std::atomic<std::uint32_t> value;
    std::atomic<std::uint32_t> waiters{0};
    std::uint32_t bound;  // the highest value release() may reach
    bool bounded;         // a BoundedSemaphore (else bound is the largest value there is)
};

struct event_state {
    std::atomic<std::uint32_t> flag{0};
    std::atomic<std::uint32_t> waiters{0};
};

/// Takes one unit of a counter (a semaphore's value), waiting until `until`.
inline bool counter_acquire(futex_word& value, futex_word& waiters, const deadline& until) {
    auto try_take = [&value]() noexcept {
        // seq_cst: after the waiter's announcement, this look pairs with release()'s (see wait.hpp).
        std::uint32_t v = value.load(std::memory_order_seq_cst);
        while (v > 0)
            if (value.compare_exchange_weak(v, v - 1, std::memory_order_acquire, std::memory_order_relaxed))
                return true;
        return false;
    };
    return wait_until(value, try_take, spin_policy::event, until, counted_value_waiter{waiters, 0}) ==
           wait_result::ready;
}

}  // namespace detail

namespace detail {
template <class Primitive, class State>
struct sync_handle_pickler;
}  // namespace detail

class Lock;
class RLock;
template <class T, class L>
class Synchronized;
class Semaphore;
class BoundedSemaphore;
class Event;

/// A non-recursive lock shared between processes (Python: multiprocessing.Lock). Any thread of
/// any process may release it, as in Python; releasing it when it is not held raises
/// mp::ValueError. If the process holding it dies, the next acquirer takes it over (see the top
/// of this file). Lockable: std::lock_guard, std::unique_lock and std::scoped_lock work.
class Lock {
public:
    Lock() : state_(make_shared_object<detail::lock_state>()) {}

    /// Blocks until the lock is held by the caller.
    void acquire() {
        detail::lock_word_acquire(state_->word, detail::self_identity().pid, detail::deadline());
    }
    /// Waits at most `timeout` (zero or negative: does not wait); false if the lock was not taken.
    template <class Rep, class Period>
    bool acquire(std::chrono::duration<Rep, Period> timeout) {
        if (timeout <= timeout.zero()) return try_lock();
        return detail::lock_word_acquire(state_->word, detail::self_identity().pid,
                                         detail::deadline(timeout));
    }
    /// Releases the lock; mp::ValueError if it is not held.
    void release() {
        auto& w = state_->word;
        std::uint32_t c = w.load(std::memory_order_relaxed);
        do {  // of two racing releases of one hold, exactly one succeeds
            if (c == 0) throw ValueError("multiprocessing: release of an unlocked Lock (acquire it first)");
        } while (!w.compare_exchange_weak(c, 0, std::memory_order_release, std::memory_order_relaxed));
        if (c & detail::waiters_bit) detail::futex_wake(w, 1);
    }

    void lock() { acquire(); }
    void unlock() { release(); }
    bool try_lock() {
        std::uint32_t c = 0;
        return state_->word.compare_exchange_strong(c, detail::self_identity().pid, std::memory_order_acquire,
                                                    std::memory_order_relaxed);
    }

    /// The pid of the process holding the lock, or 0 when it is free (for diagnostics).
    [[nodiscard]] int owner_pid() const noexcept {
        return static_cast<int>(state_->word.load(std::memory_order_relaxed) & detail::pid_mask);
    }

    friend bool operator==(const Lock& a, const Lock& b) noexcept { return a.state_ == b.state_; }

private:
    friend struct detail::sync_handle_pickler<Lock, detail::lock_state>;
    friend class Condition;
    explicit Lock(shared_handle<detail::lock_state> s) : state_(std::move(s)) {}
    /// acquire(), checking for a dead owner every `every` instead of every owner_check_interval.
    void acquire_checking(detail::clock::duration every) {
        detail::lock_word_acquire(state_->word, detail::self_identity().pid, detail::deadline(), every);
    }
    shared_handle<detail::lock_state> state_;
};

/// Prints what Python's repr prints: <Lock(owner=None)>, <Lock(owner=MainProcess)> when this
/// process holds it (a Lock records its owner process, not its thread), else
/// <Lock(owner=SomeOtherProcess)>.
inline std::ostream& operator<<(std::ostream& os, const Lock& l) {
    const auto owner = static_cast<std::uint32_t>(l.owner_pid());
    os << "<Lock(owner=";
    if (owner == 0) os << "None";
    else if (owner == detail::self_identity().pid) os << detail::current_state()->name;
    else os << "SomeOtherProcess";
    return os << ")>";
}

/// A recursive lock shared between processes (Python: multiprocessing.RLock): owned by one
/// thread of one process, which may acquire it again; it is free after as many releases.
/// Release by any other thread or process raises mp::ValueError. Recovered from a dead owner
/// as Lock is.
class RLock {
public:
    RLock() : state_(make_shared_object<detail::rlock_state>()) {}

    void acquire() { acquire_until(detail::deadline()); }
    template <class Rep, class Period>
    bool acquire(std::chrono::duration<Rep, Period> timeout) {
        if (timeout <= timeout.zero()) return try_lock();
        return acquire_until(detail::deadline(timeout));
    }
    /// Releases one level; mp::ValueError if the caller does not hold it.
    void release() {
        auto me = detail::self_identity();
        auto& s = *state_;
        if ((s.word.load(std::memory_order_relaxed) & detail::pid_mask) != me.pid ||
            s.owner_tid.load(std::memory_order_relaxed) != me.tid)
            throw ValueError(
                "multiprocessing: cannot release un-acquired lock (an RLock is released by "
                "the thread that acquired it)");
        std::uint32_t n = s.count.load(std::memory_order_relaxed);
        if (n > 1) {
            s.count.store(n - 1, std::memory_order_relaxed);
            return;
        }
        s.count.store(0, std::memory_order_relaxed);
        s.owner_tid.store(0, std::memory_order_relaxed);
        detail::lock_word_release(s.word);
    }

    void lock() { acquire(); }
    void unlock() { release(); }
    bool try_lock() {
        auto me = detail::self_identity();
        if (owned_by(me)) return recurse();
        std::uint32_t c = 0;
        if (!state_->word.compare_exchange_strong(c, me.pid, std::memory_order_acquire,
                                                  std::memory_order_relaxed))
            return false;
        take(me);
        return true;
    }

    /// True if the calling thread holds the lock.
    [[nodiscard]] bool is_owned() const noexcept { return owned_by(detail::self_identity()); }
    /// The recursion depth of the holder (0 when free).
    [[nodiscard]] int count() const noexcept {
        return static_cast<int>(state_->count.load(std::memory_order_relaxed));
    }

    friend bool operator==(const RLock& a, const RLock& b) noexcept { return a.state_ == b.state_; }

    /// Prints what Python's repr prints: <RLock(None, 0)>; <RLock(MainProcess, 2)> when the caller
    /// holds it ("MainProcess|Thread-<tid>" outside the main thread); <RLock(SomeOtherThread,
    /// nonzero)> or <RLock(SomeOtherProcess, nonzero)> when another thread or process does.
    friend std::ostream& operator<<(std::ostream& os, const RLock& l) {
        const auto me = detail::self_identity();
        const std::uint32_t owner = l.state_->word.load(std::memory_order_relaxed) & detail::pid_mask;
        os << "<RLock(";
        if (owner == 0) {
            os << "None, 0";
        } else if (owner != me.pid) {
            os << "SomeOtherProcess, nonzero";
        } else if (l.state_->owner_tid.load(std::memory_order_relaxed) != me.tid) {
            os << "SomeOtherThread, nonzero";
        } else {
            detail::write_lock_owner(os, detail::current_state()->name);
            os << ", " << l.count();
        }
        return os << ")>";
    }

private:
    friend struct detail::sync_handle_pickler<RLock, detail::rlock_state>;
    friend class Condition;
    template <class T, class L>
    friend class Synchronized;  // a Value's own lock shares its block (one cache line for both)
    explicit RLock(shared_handle<detail::rlock_state> s) : state_(std::move(s)) {}

    [[nodiscard]] bool owned_by(detail::thread_identity me) const noexcept {
        // A stale owner_tid never equals ours unless we hold it: the owner clears it before the word.
        return (state_->word.load(std::memory_order_relaxed) & detail::pid_mask) == me.pid &&
               state_->owner_tid.load(std::memory_order_relaxed) == me.tid;
    }
    bool recurse() {
        std::uint32_t n = state_->count.load(std::memory_order_relaxed);
        if (n == UINT32_MAX) throw ValueError("multiprocessing: RLock recursion too deep");
        state_->count.store(n + 1, std::memory_order_relaxed);
        return true;
    }
    void take(detail::thread_identity me) {
        state_->owner_tid.store(me.tid, std::memory_order_relaxed);
        state_->count.store(1, std::memory_order_relaxed);
    }
    bool acquire_until(const detail::deadline& until,
                       detail::clock::duration check_every = detail::owner_check_interval) {
        auto me = detail::self_identity();
        if (owned_by(me)) return recurse();
        if (!detail::lock_word_acquire(state_->word, me.pid, until, check_every)) return false;
        take(me);
        return true;
    }

    shared_handle<detail::rlock_state> state_;
};

/// A counting semaphore shared between processes (Python: multiprocessing.Semaphore).
class Semaphore {
public:
    /// mp::ValueError if `value` is negative.
    explicit Semaphore(int value = 1) : Semaphore(value, INT_MAX, false) {}

    void acquire() { detail::counter_acquire(state_->value, state_->waiters, detail::deadline()); }
    /// Waits at most `timeout` (zero or negative: does not wait); false if nothing was taken.
    template <class Rep, class Period>
    bool acquire(std::chrono::duration<Rep, Period> timeout) {
        if (timeout <= timeout.zero()) return try_lock();
        return detail::counter_acquire(state_->value, state_->waiters, detail::deadline(timeout));
    }
    /// Adds one to the value and wakes a waiter. A BoundedSemaphore raises mp::ValueError instead
    /// of going above its initial value.
    void release() {
        auto& s = *state_;
        std::uint32_t v = s.value.load(std::memory_order_relaxed);
        do {
            if (v >= s.bound) {
                if (!s.bounded)
                    throw ValueError("multiprocessing: Semaphore value would overflow (at most " +
                                     std::to_string(s.bound) + ")");
                throw ValueError(
                    "multiprocessing: BoundedSemaphore released too many times (its value "
                    "cannot exceed its initial value " +
                    std::to_string(s.bound) + ")");
            }
        } while (
            !s.value.compare_exchange_weak(v, v + 1, std::memory_order_seq_cst, std::memory_order_relaxed));
        detail::notify(s.waiters, detail::published::by_seq_cst_rmw,
                       [&s]() noexcept { detail::futex_wake(s.value, 1); });
    }
    /// The current value (a snapshot).
    [[nodiscard]] int get_value() const noexcept {
        return static_cast<int>(state_->value.load(std::memory_order_relaxed));
    }

    void lock() { acquire(); }
    void unlock() { release(); }
    bool try_lock() {
        auto& v = state_->value;
        std::uint32_t c = v.load(std::memory_order_relaxed);
        while (c > 0)
            if (v.compare_exchange_weak(c, c - 1, std::memory_order_acquire, std::memory_order_relaxed))
                return true;
        return false;
    }

    friend bool operator==(const Semaphore& a, const Semaphore& b) noexcept { return a.state_ == b.state_; }

    /// Prints what Python's repr prints: <Semaphore(value=2)>, or for a BoundedSemaphore
    /// <BoundedSemaphore(value=1, maxvalue=2)>.
    friend std::ostream& operator<<(std::ostream& os, const Semaphore& s) {
        if (!s.state_->bounded) return os << "<Semaphore(value=" << s.get_value() << ")>";
        return os << "<BoundedSemaphore(value=" << s.get_value() << ", maxvalue=" << s.state_->bound << ")>";
    }

protected:
    Semaphore(int value, int bound, bool bounded) {
        if (value < 0)
            throw ValueError(std::string("multiprocessing: ") + (bounded ? "BoundedSemaphore" : "Semaphore") +
                             " initial value must be >= 0, got " + std::to_string(value));
        state_ = make_shared_object<detail::semaphore_state>(static_cast<std::uint32_t>(value),
                                                             static_cast<std::uint32_t>(bound), bounded);
    }
    explicit Semaphore(shared_handle<detail::semaphore_state> s) : state_(std::move(s)) {}

private:
    friend struct detail::sync_handle_pickler<Semaphore, detail::semaphore_state>;
    friend struct detail::sync_handle_pickler<BoundedSemaphore, detail::semaphore_state>;
    shared_handle<detail::semaphore_state> state_;
};

/// A semaphore whose value may not exceed its initial value (Python: BoundedSemaphore): a
/// release above it raises mp::ValueError.
class BoundedSemaphore : public Semaphore {
public:
    explicit BoundedSemaphore(int value = 1) : Semaphore(value, value, true) {}

private:
    friend struct detail::sync_handle_pickler<BoundedSemaphore, detail::semaphore_state>;
    explicit BoundedSemaphore(shared_handle<detail::semaphore_state> s) : Semaphore(std::move(s)) {}
};

/// A flag shared between processes (Python: multiprocessing.Event).
class Event {
public:
    Event() : state_(make_shared_object<detail::event_state>()) {}

    [[nodiscard]] bool is_set() const noexcept { return state_->flag.load(std::memory_order_acquire) != 0; }
    /// Sets the flag and wakes every waiter.
    void set() {
        auto& s = *state_;
        if (s.flag.exchange(1, std::memory_order_seq_cst) == 0)
            detail::notify(s.waiters, detail::published::by_seq_cst_rmw,
                           [&s]() noexcept { detail::futex_wake(s.flag, INT_MAX); });
    }
    void clear() noexcept { state_->flag.store(0, std::memory_order_release); }
    /// Blocks until the flag is set; returns true.
    bool wait() { return wait_until(detail::deadline()); }
    /// Waits at most `timeout`; returns whether the flag is set.
    template <class Rep, class Period>
    bool wait(std::chrono::duration<Rep, Period> timeout) {
        return wait_until(detail::deadline(timeout));
    }

    friend bool operator==(const Event& a, const Event& b) noexcept { return a.state_ == b.state_; }

    /// Prints what Python's repr prints: <Event at 0x... set> or <Event at 0x... unset>; the
    /// "address" is the event's offset in the shared arena, the same in every process.
    friend std::ostream& operator<<(std::ostream& os, const Event& e) {
        os << "<Event at ";
        detail::write_address(os, e.state_.offset());
        return os << (e.is_set() ? " set>" : " unset>");
    }

private:
    friend struct detail::sync_handle_pickler<Event, detail::event_state>;
    explicit Event(shared_handle<detail::event_state> s) : state_(std::move(s)) {}

    bool wait_until(const detail::deadline& until) {
        auto& s = *state_;
        // seq_cst: after the waiter's announcement, this look pairs with set()'s (see wait.hpp).
        auto set = [&s]() noexcept { return s.flag.load(std::memory_order_seq_cst) != 0; };
        return detail::wait_until(s.flag, set, detail::spin_policy::event, until,
                                  detail::counted_value_waiter{s.waiters, 0}) == detail::wait_result::ready;
    }

    shared_handle<detail::event_state> state_;
};

namespace detail {

/// Each primitive travels as a handle to its arena state (arena.hpp): the unpickled copy is the
/// same object.
template <class Primitive, class State>
struct sync_handle_pickler {
    static void dump(PickleWriter& w, const Primitive& x) { pickler<shared_handle<State>>::dump(w, x.state_); }
    static Primitive load(PickleReader& r) { return Primitive(pickler<shared_handle<State>>::load(r)); }
};

}  // namespace detail

template <>
struct pickler<Lock> : detail::sync_handle_pickler<Lock, detail::lock_state> {};
template <>
struct pickler<RLock> : detail::sync_handle_pickler<RLock, detail::rlock_state> {};
template <>
struct pickler<Semaphore> : detail::sync_handle_pickler<Semaphore, detail::semaphore_state> {};
template <>
struct pickler<BoundedSemaphore> : detail::sync_handle_pickler<BoundedSemaphore, detail::semaphore_state> {};
template <>
struct pickler<Event> : detail::sync_handle_pickler<Event, detail::event_state> {};

// ---- Condition, Barrier ------------------------------------------------------------------------

namespace detail {

/// The state of a Condition (its lock is a Lock or RLock of its own, see the top of this file).
struct condition_state {
    std::atomic<std::uint32_t> seq{0};     // futex word: bumped by every notify that chose waiters
    std::atomic<std::uint64_t> counts{0};  // (tokens << 32) | sleepers, changed together
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "multiprocessing: Condition needs lock-free 64-bit atomics");

inline constexpr std::uint64_t cond_sleeper = 1;
inline constexpr std::uint64_t cond_token = std::uint64_t{1} << 32;
[[nodiscard]] constexpr std::uint32_t cond_sleepers(std::uint64_t c) noexcept {
    return static_cast<std::uint32_t>(c);
}
[[nodiscard]] constexpr std::uint32_t cond_tokens(std::uint64_t c) noexcept {
    return static_cast<std::uint32_t>(c >> 32);
}

/// The longest module path a Barrier action may come from (the main program's is empty).
inline constexpr std::size_t barrier_module_max = 512;

/// The phases of a Barrier (Python's threading.Barrier _state).
enum class barrier_phase : std::int32_t { filling = 0, draining = 1, resetting = -1, broken = -2 };

/// How often the parties waiting on a Barrier check that the others still run, and how often one
/// blocked on the Barrier's lock checks that its holder still runs: a party that dies inside
/// wait() breaks the barrier within about their sum when it held the lock, and within the first
/// otherwise (documented: 100 ms).
inline constexpr std::chrono::milliseconds barrier_check_interval{50};
inline constexpr std::chrono::milliseconds barrier_lock_check_interval{25};

/// The state of a Barrier; changed under its Condition's lock, read without it for diagnostics.
struct barrier_state {
    std::int32_t parties = 0;
    std::atomic<std::int32_t> phase{0};
    std::atomic<std::int64_t> next_check_ns{0};  // steady clock (CLOCK_MONOTONIC, one for all processes)
    std::int64_t default_timeout_ns = -1;   // < 0: none
    bool has_action = false;
    std::uint64_t action_offset = 0;        // the action as detail::function_id: offset ...
    char action_module[barrier_module_max] = {};  // ... and module ("" = the main program)
};

/// One party inside a Barrier's wait(): its process, as (pid, start time). pid 0: a free slot.
/// The start time is written first and the pid last, so a slot is claimed by one store.
struct barrier_slot {
    std::atomic<std::uint64_t> start{0};  // /proc/<pid>/stat field 22; 0 if unknown (no /proc)
    std::atomic<std::uint32_t> pid{0};
};

template <class F>
inline constexpr bool is_duration_v = false;
template <class Rep, class Period>
inline constexpr bool is_duration_v<std::chrono::duration<Rep, Period>> = true;

struct condition_pickler;
struct barrier_pickler;

}  // namespace detail

/// A condition variable shared between processes and threads (Python: multiprocessing.Condition):
/// waiters sleep until notified, with the condition's lock released meanwhile. It uses its own
/// RLock, or the mp::Lock / mp::RLock it is given (shared with whoever else holds that lock).
/// Lockable: std::unique_lock<mp::Condition> works, as `with cond:` in Python. Over an mp::Lock,
/// "holding the lock" means held by this process (a Lock records no thread, as in Python).
///
///     mp::Condition cond;
///     { std::unique_lock g(cond); cond.wait_for([&] { return ready->load(); }); }
class Condition {
public:
    /// A condition with a new RLock of its own (as Python's Condition()).
    Condition() : Condition(RLock()) {}
    /// A condition over `lock`: acquiring the condition acquires `lock`.
    explicit Condition(RLock lock)
        : state_(make_shared_object<detail::condition_state>()), lock_(std::move(lock)) {}
    /// A condition over a non-recursive `lock`.
    explicit Condition(Lock lock)
        : state_(make_shared_object<detail::condition_state>()), lock_(std::move(lock)) {}

    /// Acquires the underlying lock.
    void acquire() {
        std::visit([](auto& l) { l.acquire(); }, lock_);
    }
    /// Acquires the underlying lock, waiting at most `timeout`; false if it was not taken.
    template <class Rep, class Period>
    bool acquire(std::chrono::duration<Rep, Period> timeout) {
        return std::visit([&](auto& l) { return l.acquire(timeout); }, lock_);
    }
    /// Releases the underlying lock (one level of an RLock).
    void release() {
        std::visit([](auto& l) { l.release(); }, lock_);
    }
    void lock() { acquire(); }
    void unlock() { release(); }
    bool try_lock() {
        return std::visit([](auto& l) { return l.try_lock(); }, lock_);
    }

    /// The underlying lock (an RLock unless the condition was made over a Lock).
    [[nodiscard]] const std::variant<RLock, Lock>& get_lock() const noexcept { return lock_; }

    /// Releases the lock (every level of an RLock), sleeps until notified, re-acquires it (to
    /// the same depth). The caller must hold the lock (else mp::ValueError). Returns true.
    bool wait() { return wait_until(detail::deadline()); }
    /// As wait(), for at most `timeout`: false if it ran out before a notify chose this waiter.
    template <class Rep, class Period>
    bool wait(std::chrono::duration<Rep, Period> timeout) {
        return wait_until(detail::deadline(timeout));
    }

    /// Waits until `pred()` is true (evaluated with the lock held); returns its last value.
    template <class Pred>
    auto wait_for(Pred pred) -> decltype(pred()) {
        auto result = pred();
        while (!result) {
            wait();
            result = pred();
        }
        return result;
    }
    /// As wait_for(pred), giving up after `timeout`; returns pred()'s last value (falsy on timeout).
    template <class Pred, class Rep, class Period>
    auto wait_for(Pred pred, std::chrono::duration<Rep, Period> timeout) -> decltype(pred()) {
        detail::deadline until(timeout);
        auto result = pred();
        while (!result) {
            if (until.expired()) break;
            wait_until(until);
            result = pred();
        }
        return result;
    }

    /// Wakes at most `n` of the waiters waiting now (none if n <= 0). The caller must hold the
    /// lock (else mp::ValueError).
    void notify(int n = 1) {
        check_owned("notify");
        if (n > 0) wake(static_cast<std::uint32_t>(n));
    }
    /// Wakes every waiter waiting now. The caller must hold the lock (else mp::ValueError).
    void notify_all() {
        check_owned("notify_all");
        wake(UINT32_MAX);
    }

    /// Waiters that have not yet returned from wait(), notified or not (a snapshot, for
    /// diagnostics, as Python's repr shows it).
    [[nodiscard]] int n_waiting() const noexcept {
        std::uint64_t c = state_->counts.load(std::memory_order_relaxed);
        return static_cast<int>(detail::cond_sleepers(c) + detail::cond_tokens(c));
    }

    friend bool operator==(const Condition& a, const Condition& b) noexcept { return a.state_ == b.state_; }

private:
    friend struct detail::condition_pickler;
    friend class Barrier;
    Condition(shared_handle<detail::condition_state> s, std::variant<RLock, Lock> l)
        : state_(std::move(s)), lock_(std::move(l)) {}

    /// acquire(), checking for a dead owner of the lock every `every` while it waits.
    void acquire_checking(detail::clock::duration every) {
        if (auto* r = std::get_if<RLock>(&lock_))
            (void)r->acquire_until(detail::deadline(), every);
        else
            std::get<Lock>(lock_).acquire_checking(every);
    }

    [[nodiscard]] bool owned() const noexcept {
        if (auto* r = std::get_if<RLock>(&lock_)) return r->is_owned();
        return static_cast<std::uint32_t>(std::get<Lock>(lock_).owner_pid()) == detail::self_identity().pid;
    }
    void check_owned(const char* what) const {
        if (!owned())
            throw ValueError(std::string("multiprocessing: Condition.") + what +
                             "() needs the condition's lock: acquire it first (cond.acquire(), or "
                             "std::unique_lock lock(cond))");
    }

    /// Moves min(n, sleepers) waiters to tokens and wakes that many.
    void wake(std::uint32_t n) {
        auto& s = *state_;
        std::uint64_t c = s.counts.load(std::memory_order_relaxed);
        std::uint32_t k = 0;
        do {
            k = std::min(n, detail::cond_sleepers(c));
            if (k == 0) return;
        } while (!s.counts.compare_exchange_weak(c, c - k * detail::cond_sleeper + k * detail::cond_token,
                                                 std::memory_order_seq_cst, std::memory_order_relaxed));
        // Its sleepers announce nothing (they registered in `counts`): the word is always woken.
        detail::wake_sequence(s.seq,
                              k >= static_cast<std::uint32_t>(INT_MAX) ? INT_MAX : static_cast<int>(k));
    }

    /// wait(), taking the lock back checking for a dead owner every `lock_check_every`.
    bool wait_until(const detail::deadline& until,
                    detail::clock::duration lock_check_every = detail::owner_check_interval) {
        check_owned("wait");
        auto& s = *state_;
        // Registered under the lock: notifies are serialised with it, so `reg` is the last one
        // this waiter must not take a wake-up from.
        s.counts.fetch_add(detail::cond_sleeper, std::memory_order_seq_cst);
        const std::uint32_t reg = s.seq.load(std::memory_order_seq_cst);
        int depth = 1;
        if (auto* r = std::get_if<RLock>(&lock_)) depth = r->count();
        for (int i = 0; i < depth; ++i) release();
        bool notified = sleep_until_notified(reg, until);
        for (int i = 0; i < depth; ++i) acquire_checking(lock_check_every);
        return notified;
    }

    /// What settle() did: took a token, left the sleepers without one, or neither.
    enum class settled { token_taken, left, still_waiting };

    /// Takes a token meant for this waiter; with `leaving`, leaves the sleepers otherwise.
    settled settle(std::uint32_t reg, bool leaving) noexcept {
        auto& s = *state_;
        std::uint64_t c = s.counts.load(std::memory_order_seq_cst);
        for (;;) {
            // A token is ours once a notify came after our registration, or when no sleeper is
            // left (then every registered waiter, us included, was chosen).
            bool eligible = s.seq.load(std::memory_order_seq_cst) != reg || detail::cond_sleepers(c) == 0;
            if (detail::cond_tokens(c) > 0 && eligible) {
                if (s.counts.compare_exchange_weak(c, c - detail::cond_token, std::memory_order_seq_cst,
                                                   std::memory_order_seq_cst))
                    return settled::token_taken;
                continue;
            }
            if (!leaving) return settled::still_waiting;
            // Registered, this waiter counts among the sleepers until it leaves (see eligible).
            if (detail::cond_sleepers(c) == 0) detail::assert_unreachable("a Condition waiter left twice");
            if (s.counts.compare_exchange_weak(c, c - detail::cond_sleeper, std::memory_order_seq_cst,
                                               std::memory_order_seq_cst))
                return settled::left;
        }
    }

    /// Waits for a token meant for this waiter (registered at `reg`); at the deadline, leaves the
    /// sleepers unless one is there for it. True if it took one.
    bool sleep_until_notified(std::uint32_t reg, const detail::deadline& until) noexcept {
        auto& s = *state_;
        auto token = [&]() noexcept { return settle(reg, false) == settled::token_taken; };
        // An unannounced waiter reads `seq` before looking for a token: a notify after that read
        // changes the word, so the futex wait returns at once instead of missing it.
        if (detail::wait_until(s.seq, token, detail::spin_policy::event, until,
                               detail::unannounced_waiter{}) == detail::wait_result::ready)
            return true;
        return settle(reg, true) == settled::token_taken;
    }

    shared_handle<detail::condition_state> state_;
    std::variant<RLock, Lock> lock_;
};

/// Prints what Python's repr prints: <Condition(<RLock(None, 0)>, 0)>, its lock and the number
/// of waiters.
inline std::ostream& operator<<(std::ostream& os, const Condition& c) {
    os << "<Condition(";
    std::visit([&](const auto& l) { os << l; }, c.get_lock());
    return os << ", " << c.n_waiting() << ")>";
}

/// A barrier for a fixed number of parties, processes or threads (Python: multiprocessing.Barrier,
/// i.e. threading.Barrier): wait() blocks until `parties` callers are waiting, then releases them
/// all; reusable cycle after cycle. A broken barrier (abort(), a timeout, a failed action, a
/// party that died waiting) raises mp::BrokenBarrierError in every wait() until reset().
///
///     mp::Barrier b(3, on_all_arrived);           // a function or captureless lambda: void()
///     int i = b.wait();                           // 0 .. 2, a different one for each party
class Barrier {
public:
    /// A barrier for `parties` (> 0, else mp::ValueError), without action or default timeout.
    explicit Barrier(int parties) : Barrier(parties, nullptr, std::nullopt) {}
    /// A barrier whose wait() gives up (and breaks it) after `timeout` unless told otherwise.
    template <class Rep, class Period>
    Barrier(int parties, std::chrono::duration<Rep, Period> timeout)
        : Barrier(parties, nullptr, std::optional<clock_duration>(to_clock(timeout))) {}
    /// A barrier whose `action` (a function or captureless lambda, `void()`) is run by the last
    /// party to arrive, in its own process, before any party is released.
    template <class Action>
        requires(!detail::is_duration_v<std::remove_cvref_t<Action>>)
    Barrier(int parties, Action&& action) : Barrier(parties, as_function<Action>(action), std::nullopt) {}
    /// Both: an action and a default timeout.
    template <class Action, class Rep, class Period>
    Barrier(int parties, Action&& action, std::chrono::duration<Rep, Period> timeout)
        : Barrier(parties, as_function<Action>(action), std::optional<clock_duration>(to_clock(timeout))) {}

    /// Waits for every party (with the default timeout, if any); returns this party's arrival
    /// index, 0 .. parties()-1. mp::BrokenBarrierError if the barrier is or becomes broken.
    int wait() {
        auto& s = *state_;
        return wait_until(s.default_timeout_ns < 0
                              ? detail::deadline()
                              : detail::deadline(std::chrono::nanoseconds(s.default_timeout_ns)));
    }
    /// As wait(), giving up after `timeout` (which breaks the barrier: mp::BrokenBarrierError).
    template <class Rep, class Period>
    int wait(std::chrono::duration<Rep, Period> timeout) {
        return wait_until(detail::deadline(timeout));
    }

    /// Breaks the barrier: every waiter, and every wait() until reset(), raises BrokenBarrierError.
    void abort() {
        std::unique_lock g(cond_);
        break_barrier();
    }
    /// Returns the barrier to its initial state; parties waiting now raise BrokenBarrierError.
    void reset() {
        std::unique_lock g(cond_);
        if (occupied() > 0) {
            auto p = phase();
            // Draining parties finish their cycle; the last one out makes it filling again.
            if (p == detail::barrier_phase::filling || p == detail::barrier_phase::broken)
                set_phase(detail::barrier_phase::resetting);
        } else {
            set_phase(detail::barrier_phase::filling);
        }
        cond_.notify_all();
    }

    /// The number of parties needed to pass the barrier.
    [[nodiscard]] int parties() const noexcept { return state_->parties; }
    /// The number of parties waiting now (a snapshot).
    [[nodiscard]] int n_waiting() const noexcept {
        return phase() == detail::barrier_phase::filling ? occupied() : 0;
    }
    /// True if the barrier is broken (until reset()).
    [[nodiscard]] bool broken() const noexcept { return phase() == detail::barrier_phase::broken; }

    friend bool operator==(const Barrier& a, const Barrier& b) noexcept { return a.state_ == b.state_; }

    /// Prints what Python's repr prints: <multiprocessing.synchronize.Barrier at 0x...:
    /// waiters=1/3>, or "...: broken>"; the "address" is its offset in the shared arena.
    friend std::ostream& operator<<(std::ostream& os, const Barrier& b) {
        os << "<multiprocessing.synchronize.Barrier at ";
        detail::write_address(os, b.state_.offset());
        if (b.broken()) return os << ": broken>";
        return os << ": waiters=" << b.n_waiting() << '/' << b.parties() << '>';
    }

private:
    friend struct detail::barrier_pickler;
    using clock_duration = detail::clock::duration;
    using action_fn = void (*)();

    template <class Rep, class Period>
    static clock_duration to_clock(std::chrono::duration<Rep, Period> t) {
        return std::chrono::duration_cast<clock_duration>(t < t.zero() ? t.zero() : t);
    }

    template <class Action>
    static action_fn as_function(Action& action) {
        static_assert(std::is_convertible_v<Action&, action_fn>,
                      "multiprocessing::Barrier: the action is run by whichever party arrives last, "
                      "in its own process, so it must cross processes: pass a function or "
                      "captureless lambda taking nothing and returning void (`void()`), not a "
                      "capturing lambda or a function object; reach shared state through arena "
                      "objects (mp::shared_handle, mp::Value) instead of captures");
        if constexpr (std::is_convertible_v<Action&, action_fn>)
            return static_cast<action_fn>(action);
        else
            return nullptr;  // not reached: the assertion above has failed
    }

    Barrier(int parties, action_fn action, std::optional<clock_duration> timeout) {
        if (parties <= 0)
            throw ValueError("multiprocessing: Barrier needs at least one party, got " + std::to_string(parties));
        detail::function_id id;
        if (action) {
            id = detail::identify(action);
            if (id.module.size() >= detail::barrier_module_max)
                throw ValueError("multiprocessing: the Barrier action's module path is longer than " +
                                 std::to_string(detail::barrier_module_max - 1) + " bytes: " + id.module);
        }
        auto st = make_shared_object<detail::barrier_state>();
        st->parties = parties;
        st->default_timeout_ns =
            timeout ? std::chrono::duration_cast<std::chrono::nanoseconds>(*timeout).count() : -1;
        st->has_action = action != nullptr;
        st->action_offset = id.offset;
        std::memcpy(st->action_module, id.module.c_str(), id.module.size() + 1);
        slots_ = make_shared_array<detail::barrier_slot>(static_cast<std::size_t>(parties));
        state_ = std::move(st);
    }
    Barrier(Condition c, shared_handle<detail::barrier_state> s, shared_handle<detail::barrier_slot[]> slots)
        : cond_(std::move(c)), state_(std::move(s)), slots_(std::move(slots)) {}

    [[nodiscard]] detail::barrier_phase phase() const noexcept {
        return static_cast<detail::barrier_phase>(state_->phase.load(std::memory_order_relaxed));
    }
    void set_phase(detail::barrier_phase p) noexcept {
        state_->phase.store(static_cast<std::int32_t>(p), std::memory_order_relaxed);
    }
    void break_barrier() {
        set_phase(detail::barrier_phase::broken);
        cond_.notify_all();
    }
    [[noreturn]] static void throw_broken() {
        throw BrokenBarrierError(
            "multiprocessing: the Barrier is broken (aborted, reset, timed out, its action failed or a "
            "party died while waiting); call reset() to use it again");
    }

    /// The parties inside wait() now: the occupied slots.
    [[nodiscard]] int occupied() const noexcept {
        int n = 0;
        for (std::size_t i = 0; i < slots_.size(); ++i)
            n += slots_[i].pid.load(std::memory_order_relaxed) != 0 ? 1 : 0;
        return n;
    }

    [[nodiscard]] static std::int64_t now_ns() noexcept {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(detail::clock::now().time_since_epoch()).count();
    }

    /// Sleeps on the condition until woken, `until`, or the next check of the parties is due (it
    /// runs that check first). False once `until` has passed.
    bool wait_slice(const detail::deadline& until) {
        const auto before = phase();
        if (now_ns() >= state_->next_check_ns.load(std::memory_order_relaxed)) {
            check_parties();
            if (phase() != before) return true;  // the callers look at the phase again
        }
        auto left = until.remaining();
        if (left && *left <= clock_duration::zero()) return false;
        // All waiters sleep until the same next check: one of them makes it for all.
        clock_duration slice = std::chrono::duration_cast<clock_duration>(
            std::chrono::nanoseconds(state_->next_check_ns.load(std::memory_order_relaxed) - now_ns()));
        if (slice < clock_duration::zero()) slice = clock_duration::zero();
        if (left && *left < slice) slice = *left;
        (void)cond_.wait_until(detail::deadline(slice), detail::barrier_lock_check_interval);
        return true;
    }

    /// Looks whether the parties inside wait() still run, and forgets those that do not: one that
    /// died while the barrier filled breaks it; once every party of a draining or resetting
    /// barrier is gone, it fills again. Under the lock.
    void check_parties() {
        auto& s = *state_;
        s.next_check_ns.store(now_ns() + std::chrono::nanoseconds(detail::barrier_check_interval).count(),
                              std::memory_order_relaxed);
        const std::uint32_t me = detail::self_identity().pid;
        bool dropped = false;
        for (std::size_t i = 0; i < slots_.size(); ++i) {
            auto& slot = slots_[i];
            const std::uint32_t pid = slot.pid.load(std::memory_order_relaxed);
            if (pid == 0 || pid == me) continue;  // free, or a thread of this (running) process
            if (!detail::barrier_party_gone(pid, slot.start.load(std::memory_order_relaxed))) continue;
            slot.pid.store(0, std::memory_order_relaxed);
            dropped = true;
        }
        if (!dropped) return;
        if (phase() == detail::barrier_phase::filling)
            break_barrier();
        else
            leave_check();
    }

    /// The last party out of a draining or resetting barrier makes it filling again.
    void leave_check() {
        auto p = phase();
        if (occupied() == 0 && (p == detail::barrier_phase::draining || p == detail::barrier_phase::resetting)) {
            set_phase(detail::barrier_phase::filling);
            cond_.notify_all();
        }
    }

    void run_action() {
        auto& s = *state_;
        if (!s.has_action) return;
        detail::function_id id{std::string(s.action_module), s.action_offset};
        detail::resolve<action_fn>(id)();
    }

    int wait_until(const detail::deadline& until) {
        auto& s = *state_;
        cond_.acquire_checking(detail::barrier_lock_check_interval);  // a dead holder is seen in time
        std::unique_lock g(cond_, std::adopt_lock);
        // Wait for the previous cycle to drain (or a reset to finish): bounded by the timeout
        // too, unlike Python, so that no wait() hangs on a party that never leaves.
        while (phase() == detail::barrier_phase::draining || phase() == detail::barrier_phase::resetting) {
            if (!wait_slice(until)) {
                break_barrier();
                throw_broken();
            }
        }
        // The last party would release the others: first it makes sure that every party counted
        // still runs. The others check when a check is due (they check again while they wait).
        if (occupied() + 1 >= s.parties || now_ns() >= s.next_check_ns.load(std::memory_order_relaxed))
            check_parties();
        if (phase() == detail::barrier_phase::broken) throw_broken();
        const int index = occupied();
        if (index >= s.parties) {  // full yet filling: its last party died before releasing the others
            break_barrier();
            throw_broken();
        }
        std::size_t mine = 0;  // the first free slot (in a filling barrier, slot `index`)
        while (slots_[mine].pid.load(std::memory_order_relaxed) != 0) ++mine;
        const detail::barrier_party me = detail::barrier_party_self();
        slots_[mine].start.store(me.start, std::memory_order_relaxed);
        slots_[mine].pid.store(me.pid, std::memory_order_relaxed);  // claimed: counted from now on
        auto leave = [&] {
            slots_[mine].pid.store(0, std::memory_order_relaxed);
            leave_check();
        };
        try {
            if (index + 1 == s.parties) {
                try {
                    run_action();
                } catch (...) {
                    break_barrier();
                    throw;
                }
                set_phase(detail::barrier_phase::draining);
                cond_.notify_all();
            } else {
                while (phase() == detail::barrier_phase::filling) {
                    if (!wait_slice(until)) {
                        break_barrier();
                        throw_broken();
                    }
                }
                if (phase() != detail::barrier_phase::draining) throw_broken();
            }
        } catch (...) {
            leave();
            throw;
        }
        leave();
        return index;
    }

    Condition cond_;
    shared_handle<detail::barrier_state> state_;
    shared_handle<detail::barrier_slot[]> slots_;  // the parties inside wait(), one slot each
};

namespace detail {

/// A Condition travels as its lock (which kind, then the lock) and its state.
struct condition_pickler {
    static void dump(PickleWriter& w, const Condition& c) {
        bool is_rlock = std::holds_alternative<RLock>(c.lock_);
        w.dump(is_rlock);
        if (is_rlock)
            w.dump(std::get<RLock>(c.lock_));
        else
            w.dump(std::get<Lock>(c.lock_));
        pickler<shared_handle<condition_state>>::dump(w, c.state_);
    }
    static Condition load(PickleReader& r) {
        std::variant<RLock, Lock> lock = r.load<bool>() ? std::variant<RLock, Lock>(r.load<RLock>())
                                                        : std::variant<RLock, Lock>(r.load<Lock>());
        auto state = pickler<shared_handle<condition_state>>::load(r);
        if (!state) throw PicklingError("multiprocessing: corrupt pickle: a Condition without its state");
        return Condition(std::move(state), std::move(lock));
    }
};

/// A Barrier travels as its Condition, its state and its party slots.
struct barrier_pickler {
    static void dump(PickleWriter& w, const Barrier& b) {
        condition_pickler::dump(w, b.cond_);
        pickler<shared_handle<barrier_state>>::dump(w, b.state_);
        pickler<shared_handle<barrier_slot[]>>::dump(w, b.slots_);
    }
    static Barrier load(PickleReader& r) {
        Condition c = condition_pickler::load(r);
        auto state = pickler<shared_handle<barrier_state>>::load(r);
        auto slots = pickler<shared_handle<barrier_slot[]>>::load(r);
        if (!state || !slots || slots.size() != static_cast<std::size_t>(state->parties))
            throw PicklingError("multiprocessing: corrupt pickle: a Barrier without its state");
        return Barrier(std::move(c), std::move(state), std::move(slots));
    }
};

}  // namespace detail

template <>
struct pickler<Condition> : detail::condition_pickler {};
template <>
struct pickler<Barrier> : detail::barrier_pickler {};

}  // namespace multiprocessing
