// A robust lock word: 0 when free, else the owner's pid, with waiters_bit set while someone may
// sleep on it. Lock and RLock (synchronize.hpp) and a queue ring's producer and consumer locks
// (ring.hpp) are one such word each. A waiter sleeps in slices of a check interval; after each
// (and once more before a timed acquire gives up) it checks whether the owner still runs, and
// takes over the lock of one that has died.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

#include "futex.hpp"
#include "posix.hpp"
#include "wait.hpp"

namespace multiprocessing::detail {

/// Set in a lock word while someone may sleep on it: its release then wakes one.
inline constexpr std::uint32_t waiters_bit = 0x80000000u;
/// The owner's pid in a lock word.
inline constexpr std::uint32_t pid_mask = ~waiters_bit;
/// How long a Lock/RLock waiter sleeps between checks that the owner is still alive.
inline constexpr std::chrono::milliseconds owner_check_interval{100};

/// A lock word's sleeper: it announces itself by the waiters bit in the word, and sleeps while
/// the word holds what it saw with the bit set; it does not sleep on a free word (it looks again).
struct lock_waiter {
    [[nodiscard]] std::optional<std::uint32_t> arm(futex_word& word) noexcept {
        std::uint32_t c = word.load(std::memory_order_relaxed);
        for (;;) {
            if (c == 0) return std::nullopt;
            if (c & waiters_bit) return c;
            if (word.compare_exchange_weak(c, c | waiters_bit, std::memory_order_relaxed,
                                           std::memory_order_relaxed))
                return c | waiters_bit;
        }
    }
    void disarm() noexcept {}  // the bit stays: the release that sees it wakes a sleeper
};

/// Takes `word` for `me`, waiting until `until`. Returns false on timeout. Recovers the lock
/// from an owner that has died, checked every `check_every` while it waits.
inline bool lock_word_acquire(futex_word& word, std::uint32_t me, const deadline& until,
                              clock::duration check_every = owner_check_interval) {
    std::uint32_t c = 0;
    if (word.compare_exchange_strong(c, me, std::memory_order_acquire, std::memory_order_relaxed))
        return true;
    // Others may sleep: a waiter takes the word with the bit kept, so that its release wakes one.
    auto take = [&word, me]() noexcept {
        std::uint32_t free = 0;
        return word.load(std::memory_order_relaxed) == 0 &&
               word.compare_exchange_strong(free, me | waiters_bit, std::memory_order_acquire,
                                            std::memory_order_relaxed);
    };
    for (;;) {
        const deadline slice = until.earlier(deadline(check_every));
        if (wait_until(word, take, spin_policy::lock, slice, lock_waiter{}) == wait_result::ready)
            return true;
        // Checked each slice, and once more before a timed acquire gives up.
        c = word.load(std::memory_order_relaxed);
        while (c != 0 && process_dead(c & pid_mask)) {
            // The owner is gone: take the lock over (unless someone else just did: look again).
            if (word.compare_exchange_strong(c, me | waiters_bit, std::memory_order_acquire,
                                             std::memory_order_relaxed))
                return true;
        }
        if (until.expired()) return false;
    }
}

/// Frees `word`, waking a sleeper if there may be one. Returns the word it held.
inline std::uint32_t lock_word_release(futex_word& word) noexcept {
    std::uint32_t old = word.exchange(0, std::memory_order_release);
    if (old & waiters_bit) futex_wake(word, 1);
    return old;
}

}  // namespace multiprocessing::detail
