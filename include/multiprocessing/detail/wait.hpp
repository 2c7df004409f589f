// The one wait layer: how a process waits for another to make progress in shared memory, and how
// the other wakes it. Every blocking wait on shared memory (Lock, RLock, Semaphore, Event,
// Condition, the queues' rings, a pool worker's channel) is one call of wait_until(), and every
// "progress made: wake whoever sleeps on it" one call of notify(). The spin settings are the
// named spin_policy constants below, nowhere else.
//
// wait_until(word, ready, policy, until, waiter[, gate]):
//   1. looks at ready(); a deadline already passed (a zero timeout) ends the wait there, unspun;
//   2. spins: policy.pauses more looks, one CPU pause apart (a hand-off between two running
//      processes is caught without a system call);
//   3. calls gate.idle(), then keeps looking for policy.budget while gate.may_spin();
//   4. sleeps: announces itself (waiter.arm(), which also says what value of the futex word to
//      sleep on), looks at ready() once more, sleeps on the word (at most policy.slice at a time),
//      takes the announcement back (waiter.disarm()); again until ready() or the deadline.
//
// Why no wake-up is lost: the sleeper announces itself and then looks at the progress; the
// notifier publishes the progress and then looks at the announcement (notify()). Each side's
// write is ordered before its read by a seq_cst read-modify-write or a full fence, so at least
// one of them sees the other's write: either the sleeper's last look finds the progress, or the
// notifier finds the announcement and wakes the word. A wake that comes between the last look and
// the futex call is not lost either: the kernel sleeps only while the word holds the value that
// arm() named, and the progress itself (a flag, a count, a lock word) or the notifier (a sequence
// word, wake_sequence()) has changed the word before the wake.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <optional>

#include "futex.hpp"
#include "posix.hpp"

namespace multiprocessing::detail {

/// How a waiter spins before it sleeps; the named policies below are the only spin settings.
struct spin_policy {
    unsigned pauses;                   // looks, one CPU pause apart, before the waiter is idle
    std::chrono::microseconds budget;  // then, how long it keeps looking while its gate lets it
    unsigned yield_after;              // pauses after which every 16th is a yield (no_yield: none)
    std::chrono::milliseconds slice;   // the longest one futex sleep (zero: up to the deadline)

    /// A yield_after that never yields.
    static constexpr unsigned no_yield = UINT_MAX;

    static const spin_policy lock;     // Lock, RLock, a ring's producer and consumer locks
    static const spin_policy event;    // Event, Semaphore, Condition
    static const spin_policy ring;     // the queues' rings (Queue, SimpleQueue, JoinableQueue)
    static const spin_policy pool;     // both sides of a pool's channels (pool_channel.hpp, pool.hpp)
    static const spin_policy manager;  // both sides of a manager's channel (manager_channel.hpp)
    static const spin_policy mpi;      // probing for an MPI message (mpi_world.hpp)
};

/// A contended Lock/RLock waiter does not spin but sleeps at once, as glibc's default mutex does:
/// a spinning waiter pulls the lock's cache line away on every acquisition, so a lock taken in a
/// loop by two processes cost 2.4x a raw pthread mutex per acquisition with 100 spins, ~1x with
/// none (bench_sync value_increment).
inline constexpr spin_policy spin_policy::lock{
    .pauses = 0, .budget = {}, .yield_after = spin_policy::no_yield, .slice = {}};

/// A short bounded spin before a futex wait: a handoff to a running process (well under a
/// microsecond) is caught without a system call.
inline constexpr spin_policy spin_policy::event{
    .pauses = 100, .budget = {}, .yield_after = spin_policy::no_yield, .slice = {}};

/// 2000 looks before a waiter sleeps (~80 us on a 2 GHz Xeon VM). A futex wake that must rouse an
/// idle CPU costs 5-25 us there, and once both sides of a ping-pong sleep before the other
/// answers, every hand-off pays one: the spin must outlast a wake for a ping-pong to get back to
/// spinning (with 500 looks, ~20 us, it stayed at ~30 us per round trip). The cost: on a machine
/// so loaded that both sides share one CPU, each spins its budget before the other runs.
/// A sleep lasts at most 100 ms: a woken waiter killed before it could pass the wake on (a
/// consumer passes it to the next when more is there) delays the others by one slice, never
/// forever.
inline constexpr spin_policy spin_policy::ring{.pauses = 2000,
                                               .budget = {},
                                               .yield_after = spin_policy::no_yield,
                                               .slice = std::chrono::milliseconds(100)};

/// A pool side keeps looking for the other's next move for 50 us before it sleeps: a wake-up from
/// sleep costs 5-25 us, a message caught awake well under one. The first 64 looks (a round trip's
/// next task) leave the worker counted busy (gate.idle() comes after them): changing the count is
/// a write to a line every side reads. After 128 pauses (a few microseconds: a hand-off between
/// two threads running on their own CPUs is caught in well under one, and each yield is a system
/// call), every 16th pause is a yield, so that on a machine with more runnable threads than CPUs
/// the spinner gives its CPU to the side it waits for.
inline constexpr spin_policy spin_policy::pool{
    .pauses = 64, .budget = std::chrono::microseconds(50), .yield_after = 128, .slice = {}};

/// A manager's channel spins as a pool's: a proxy call in a loop finds the server still looking
/// for the next request (a call on a running server takes about a microsecond, a wake-up from
/// sleep 5-25 us here), and past 128 pauses a spinner yields, as its server's other clients'
/// threads may need the CPU. A side that sleeps does so in poll(2), not on a futex
/// (manager_channel.hpp says why).
inline constexpr spin_policy spin_policy::manager{
    .pauses = 64, .budget = std::chrono::microseconds(50), .yield_after = 128, .slice = {}};

/// An MPI rank or a caller probing for a message (mpi_world.hpp's prober): probes back to back,
/// a CPU pause apart, without yielding for `budget` (the answering rank runs on its own CPU: a
/// yield is a system call, and in a VM a hypervisor exit), then yields every 16th pause.
inline constexpr spin_policy spin_policy::mpi{
    .pauses = 0, .budget = std::chrono::microseconds(50), .yield_after = 0, .slice = {}};

/// The pacing of one spin-wait: CPU pauses, and past `yield_after` of them every 16th a yield.
class spinner {
public:
    explicit spinner(unsigned yield_after = spin_policy::pool.yield_after) noexcept
        : yield_after_(yield_after) {}
    void pause() noexcept {
        if (++n_ > yield_after_ && n_ % 16 == 0)
            cpu_yield();
        else
            cpu_relax();
    }

private:
    unsigned n_ = 0;
    unsigned yield_after_;
};

/// The gate of a wait that does nothing as it turns idle and may spin all its budget.
struct free_spin {
    void idle() noexcept {}
    [[nodiscard]] bool may_spin() const noexcept { return true; }
};

/// A sleeper announced in a count that notifiers read, sleeping until a sequence word moves from
/// the value it held once announced (a queue ring's data_seq / space_seq).
struct counted_waiter {
    futex_word& count;
    [[nodiscard]] std::optional<std::uint32_t> arm(futex_word& word) noexcept {
        count.fetch_add(1, std::memory_order_seq_cst);
        return word.load(std::memory_order_seq_cst);
    }
    void disarm() noexcept { count.fetch_sub(1, std::memory_order_relaxed); }
};

/// A sleeper announced in a count, sleeping while the word holds `value`: for a word that is the
/// state itself (a flag, a counter) and may come back to a value it held, where a snapshot could
/// miss a change and its change back.
struct counted_value_waiter {
    futex_word& count;
    std::uint32_t value;
    [[nodiscard]] std::optional<std::uint32_t> arm(futex_word&) noexcept {
        count.fetch_add(1, std::memory_order_seq_cst);
        return value;
    }
    void disarm() noexcept { count.fetch_sub(1, std::memory_order_relaxed); }
};

/// The one sleeper of a sequence word, announced by a flag (a side of a pool channel): a store
/// and a full fence instead of a read-modify-write.
struct flag_waiter {
    futex_word& flag;
    [[nodiscard]] std::optional<std::uint32_t> arm(futex_word& word) noexcept {
        flag.store(1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        return word.load(std::memory_order_acquire);
    }
    void disarm() noexcept { flag.store(0, std::memory_order_relaxed); }
};

/// A sleeper whose notifiers always wake the word (a Condition's notify), so it announces nothing;
/// it sleeps until the sequence word moves from the value it read before its last look.
struct unannounced_waiter {
    [[nodiscard]] std::optional<std::uint32_t> arm(futex_word& word) noexcept {
        return word.load(std::memory_order_seq_cst);
    }
    void disarm() noexcept {}
};

/// How a wait_until() ended.
enum class wait_result : bool { timed_out = false, ready = true };

/// Steps 2 and 3 at the top of the file, the spin: true if ready() came true. Also for a waiter
/// that sleeps elsewhere than on a futex (a manager's channel sleeps in poll(2) on the socket that
/// also tells it of its peer's death).
template <class Ready, class Gate = free_spin>
[[nodiscard]] bool spin_until(Ready& ready, const spin_policy& policy,
                              Gate&& gate = {}) noexcept(noexcept(ready())) {
    spinner spin(policy.yield_after);
    for (unsigned i = 0; i < policy.pauses; ++i) {
        spin.pause();
        if (ready()) return true;
    }
    gate.idle();
    if (policy.budget > policy.budget.zero()) {
        const deadline spin_end(policy.budget);
        while (gate.may_spin() && !spin_end.expired()) {
            spin.pause();
            if (ready()) return true;
        }
    }
    return false;
}

/// wait_until() after its first look at ready() found nothing (steps 1-4 at the top of the file).
template <class Ready, class Waiter, class Gate>
[[nodiscard]] wait_result wait_after_first_look(futex_word& word, Ready& ready, const spin_policy& policy,
                                                const deadline& until, Waiter& waiter,
                                                Gate& gate) noexcept(noexcept(ready())) {
    if (until.expired()) return wait_result::timed_out;  // a zero timeout (try-once): no spin either
    if (spin_until(ready, policy, gate)) return wait_result::ready;
    for (;;) {
        if (until.expired()) return ready() ? wait_result::ready : wait_result::timed_out;
        const std::optional<std::uint32_t> sleep_on = waiter.arm(word);
        const bool now = ready();
        if (!now && sleep_on)
            futex_wait(word, *sleep_on,
                       policy.slice > policy.slice.zero() ? until.earlier(deadline(policy.slice)) : until);
        waiter.disarm();
        if (now || ready()) return wait_result::ready;
    }
}

/// The one spin-then-sleep wait (see the top of this file): until `ready()` (which may also take
/// what it finds, e.g. a semaphore unit) or `until`, spinning as `policy` says, then sleeping on
/// futex `word` as `waiter` announces. On timeout ready() has been looked at once more. The first
/// look is all a caller inlines: a wait that finds its condition true costs no call.
template <class Ready, class Waiter, class Gate = free_spin>
[[nodiscard]] inline wait_result wait_until(futex_word& word, Ready&& ready, const spin_policy& policy,
                                            const deadline& until, Waiter&& waiter,
                                            Gate&& gate = {}) noexcept(noexcept(ready())) {
    if (ready()) [[likely]]
        return wait_result::ready;
    return wait_after_first_look(word, ready, policy, until, waiter, gate);
}

/// How the progress a notify() tells of was published: it decides the fence between that and the
/// look at the waiters' announcement (the notifier's half of the pairing at the top of the file).
enum class published {
    by_store,        // by plain or release stores: a full fence
    by_release_rmw,  // last by a release read-modify-write (a ring's lock word release, an
                     // exchange): on x86 that already is a full fence, which saves one atomic
                     // operation per message there (only the compiler is held back); elsewhere a fence
    by_seq_cst_rmw,  // by a seq_cst read-modify-write: ordered before the seq_cst look as it is
    fenced,          // just after another notify(), whose fence serves this one too
};

/// The one notify: after publishing progress (`how`), calls `wake()` if a waiter has announced
/// itself in `waiting` (a count or a flag; wake_sequence() for a sequence word, futex_wake() for
/// a word that is the state itself, or a doorbell). Returns whether it called it.
template <class Wake>
bool notify(const futex_word& waiting, published how, Wake&& wake) noexcept(noexcept(wake())) {
    switch (how) {
        case published::by_store:
            std::atomic_thread_fence(std::memory_order_seq_cst);
            break;
        case published::by_release_rmw:
#if defined(__x86_64__) || defined(__i386__)
            std::atomic_signal_fence(std::memory_order_seq_cst);
#else
            std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
            break;
        case published::by_seq_cst_rmw:
        case published::fenced:
            break;
    }
    if (waiting.load(std::memory_order_seq_cst) == 0) return false;
    wake();
    return true;
}

/// Moves sequence word `seq` on (a sleeper about to sleep on its old value then does not) and
/// wakes up to `n` of its sleepers.
inline void wake_sequence(futex_word& seq, int n) noexcept {
    seq.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(seq, n);
}

}  // namespace multiprocessing::detail
