// Synchronisation primitives shared between processes (Python: synchronize.py):
// Lock, RLock, Semaphore, BoundedSemaphore, Event.
//
// Each is a cheap copyable handle to a small state object in the shared-memory arena (arena.hpp):
// copies, and pickled copies in other processes (a Process argument under fork, spawn or
// forkserver), are the same lock. The state is a few std::atomic<uint32_t> words, with no
// pointer, so every process may map it at its own address.
//
//     mp::Lock lock;
//     mp::Process p([](mp::Lock l) { std::lock_guard g(l); /* ... */ }, lock);
//
// Waiting: a short bounded spin (a handoff between two running processes costs well under a
// microsecond), then a futex wait (FUTEX_WAIT/FUTEX_WAKE, the process-shared variants), with
// timeouts measured on the steady clock. Nothing polls with a sleep.
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
#pragma once

#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <optional>
#include <string>

#include "arena.hpp"
#include "detail/posix.hpp"
#include "errors.hpp"
#include "pickle.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace multiprocessing {

namespace detail {

/// Spins before a futex wait: a handoff to a running process is caught without a syscall.
inline constexpr int sync_spin_count = 100;
/// How long a Lock/RLock waiter sleeps between checks that the owner is still alive.
inline constexpr std::chrono::milliseconds owner_check_interval{100};

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "multiprocessing: futex words must be plain lock-free 32-bit atomics");

/// FUTEX_WAIT (process-shared) while *word == expected, for at most `rel` (forever if null).
/// Returns 0 when woken (or spuriously), ETIMEDOUT, EAGAIN (the word changed) or EINTR.
inline int futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                      const timespec* rel) noexcept {
    long r =
        ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, expected, rel, nullptr, 0);
    return r == 0 ? 0 : errno;
}

/// FUTEX_WAKE (process-shared): wakes up to n waiters of the word.
inline void futex_wake(std::atomic<std::uint32_t>& word, int n) noexcept {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, n, nullptr, nullptr, 0);
}

/// The time to sleep next: what is left of the deadline, capped at `cap` (none: uncapped).
/// False when the deadline has passed.
inline bool next_slice(const deadline& until, std::optional<clock::duration> cap, timespec& ts, bool& timed) {
    std::optional<clock::duration> left = until.remaining();
    if (left && *left <= clock::duration::zero()) return false;
    if (cap && (!left || *cap < *left)) left = cap;
    timed = left.has_value();
    if (timed) {
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*left).count();
        ts = timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    }
    return true;
}

/// This thread's (pid, tid), cached; refreshed in a forked child.
struct thread_identity {
    std::uint32_t pid;
    std::uint32_t tid;
};

inline std::atomic<unsigned>& fork_generation() noexcept {
    static std::atomic<unsigned> g{0};
    return g;
}

inline thread_identity self_identity() noexcept {
    static const bool registered = [] {
        ::pthread_atfork(nullptr, nullptr, [] { fork_generation().fetch_add(1, std::memory_order_relaxed); });
        return true;
    }();
    (void)registered;
    thread_local unsigned generation = ~0u;
    thread_local thread_identity id{};
    unsigned g = fork_generation().load(std::memory_order_relaxed);
    if (generation != g) {
        id.pid = static_cast<std::uint32_t>(::getpid());
        id.tid = static_cast<std::uint32_t>(::syscall(SYS_gettid));
        generation = g;
    }
    return id;
}

/// True when process `pid` has ended (zombie included: a pidfd of an exited process is readable).
inline bool process_dead(std::uint32_t pid) noexcept {
    int saved = errno;
    bool dead = false;
    unique_fd fd = pidfd_open(static_cast<pid_t>(pid));
    if (fd) {
        pollfd p{fd.get(), POLLIN, 0};
        dead = ::poll(&p, 1, 0) > 0;
    } else if (errno == ESRCH) {
        dead = true;
    } else {
        dead = ::kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH;
    }
    errno = saved;
    return dead;
}

/// A lock word: 0 when free, else the owner's pid, with `waiters_bit` set while someone may sleep.
inline constexpr std::uint32_t waiters_bit = 0x80000000u;
inline constexpr std::uint32_t pid_mask = ~waiters_bit;

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

/// Takes `word` for `me`, waiting until `until`. Returns false on timeout. Recovers the lock
/// from an owner that has died.
inline bool lock_word_acquire(std::atomic<std::uint32_t>& word, std::uint32_t me, const deadline& until) {
    std::uint32_t c = 0;
    if (word.compare_exchange_strong(c, me, std::memory_order_acquire, std::memory_order_relaxed))
        return true;
    for (int i = 0; i < sync_spin_count; ++i) {
        cpu_relax();
        c = word.load(std::memory_order_relaxed);
        if (c == 0 && word.compare_exchange_weak(c, me, std::memory_order_acquire, std::memory_order_relaxed))
            return true;
    }
    auto next_owner_check = clock::now() + owner_check_interval;
    for (;;) {
        c = word.load(std::memory_order_relaxed);
        if (c == 0) {
            // Others may sleep: keep the bit so our release wakes one of them.
            if (word.compare_exchange_weak(c, me | waiters_bit, std::memory_order_acquire,
                                           std::memory_order_relaxed))
                return true;
            continue;
        }
        if (!(c & waiters_bit)) {
            if (!word.compare_exchange_weak(c, c | waiters_bit, std::memory_order_relaxed,
                                            std::memory_order_relaxed))
                continue;
            c |= waiters_bit;
        }
        const bool expired = until.expired();
        if (expired || clock::now() >= next_owner_check) {
            // Checked each slice, and once more before a timed acquire gives up.
            if (process_dead(c & pid_mask)) {
                // The owner is gone: take the lock over (unless someone else just did).
                if (word.compare_exchange_strong(c, me | waiters_bit, std::memory_order_acquire,
                                                 std::memory_order_relaxed))
                    return true;
                continue;
            }
            if (expired) return false;
            next_owner_check = clock::now() + owner_check_interval;
        }
        auto to_check = next_owner_check - clock::now();
        if (to_check < clock::duration::zero()) to_check = clock::duration::zero();
        timespec ts{};
        bool timed = false;
        if (!next_slice(until, to_check, ts, timed)) return false;
        futex_wait(word, c, timed ? &ts : nullptr);  // any result: look at the word again
    }
}

/// Frees `word`, waking a sleeper if there may be one. Returns the word it held.
inline std::uint32_t lock_word_release(std::atomic<std::uint32_t>& word) noexcept {
    std::uint32_t old = word.exchange(0, std::memory_order_release);
    if (old & waiters_bit) futex_wake(word, 1);
    return old;
}

/// Takes one unit of a counter (a semaphore's value), waiting until `until`.
inline bool counter_acquire(std::atomic<std::uint32_t>& value, std::atomic<std::uint32_t>& waiters,
                            const deadline& until) {
    auto try_take = [&value] {
        std::uint32_t v = value.load(std::memory_order_relaxed);
        while (v > 0)
            if (value.compare_exchange_weak(v, v - 1, std::memory_order_acquire, std::memory_order_relaxed))
                return true;
        return false;
    };
    if (try_take()) return true;
    for (int i = 0; i < sync_spin_count; ++i) {
        cpu_relax();
        if (value.load(std::memory_order_relaxed) > 0 && try_take()) return true;
    }
    for (;;) {
        timespec ts{};
        bool timed = false;
        if (!next_slice(until, std::nullopt, ts, timed)) return try_take();
        waiters.fetch_add(1, std::memory_order_seq_cst);
        if (value.load(std::memory_order_seq_cst) == 0) futex_wait(value, 0, timed ? &ts : nullptr);
        waiters.fetch_sub(1, std::memory_order_relaxed);
        if (try_take()) return true;
    }
}

}  // namespace detail

namespace detail {
template <class Primitive, class State>
struct sync_handle_pickler;
}  // namespace detail

class Lock;
class RLock;
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
    explicit Lock(shared_handle<detail::lock_state> s) : state_(std::move(s)) {}
    shared_handle<detail::lock_state> state_;
};

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

private:
    friend struct detail::sync_handle_pickler<RLock, detail::rlock_state>;
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
    bool acquire_until(const detail::deadline& until) {
        auto me = detail::self_identity();
        if (owned_by(me)) return recurse();
        if (!detail::lock_word_acquire(state_->word, me.pid, until)) return false;
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
        if (s.waiters.load(std::memory_order_seq_cst) > 0) detail::futex_wake(s.value, 1);
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
        if (s.flag.exchange(1, std::memory_order_seq_cst) == 0 &&
            s.waiters.load(std::memory_order_seq_cst) > 0)
            detail::futex_wake(s.flag, INT_MAX);
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

private:
    friend struct detail::sync_handle_pickler<Event, detail::event_state>;
    explicit Event(shared_handle<detail::event_state> s) : state_(std::move(s)) {}

    bool wait_until(const detail::deadline& until) {
        auto& s = *state_;
        if (is_set()) return true;
        for (int i = 0; i < detail::sync_spin_count; ++i) {
            detail::cpu_relax();
            if (is_set()) return true;
        }
        for (;;) {
            timespec ts{};
            bool timed = false;
            if (!detail::next_slice(until, std::nullopt, ts, timed)) return is_set();
            s.waiters.fetch_add(1, std::memory_order_seq_cst);
            if (s.flag.load(std::memory_order_seq_cst) == 0)
                detail::futex_wait(s.flag, 0, timed ? &ts : nullptr);
            s.waiters.fetch_sub(1, std::memory_order_relaxed);
            if (is_set()) return true;
        }
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

}  // namespace multiprocessing
