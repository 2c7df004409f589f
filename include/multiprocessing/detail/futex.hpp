// The kernel side of every wait: futex wait and wake on a 32-bit word in shared memory (the
// process-shared variants: the word may sit at a different address in each process), and the
// CPU's pause and yield for the spins before a wait. The waits themselves are written once, in
// wait.hpp, on top of these.
#pragma once

#include "platform.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>

#include "posix.hpp"

namespace multiprocessing::detail {

/// A word a process may sleep on until another changes it (FUTEX_WAIT / FUTEX_WAKE).
using futex_word = std::atomic<std::uint32_t>;

static_assert(sizeof(futex_word) == sizeof(std::uint32_t) && futex_word::is_always_lock_free,
              "multiprocessing: futex words must be plain lock-free 32-bit atomics");

/// One pause of a spin-wait: tells the CPU that this thread is busy-waiting (a hyperthread
/// sibling gets the core, and the loop does not flood the memory system).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();  // _mm_pause without <immintrin.h> (0.6 s and 120 MB of compile)
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

/// Gives this thread's CPU to another runnable thread, if any (a system call).
inline void cpu_yield() noexcept { ::sched_yield(); }

/// Sleeps while `word` holds `expected`, until woken or `until` (FUTEX_WAIT_BITSET with an
/// absolute CLOCK_MONOTONIC time, the clock of detail::clock). It may also return spuriously, on
/// a signal, or at once when the word no longer holds `expected`: the caller looks again anyway.
inline void futex_wait(futex_word& word, std::uint32_t expected, const deadline& until) noexcept {
    timespec at{};
    const timespec* timeout = nullptr;
    if (!until.forever()) {
        const auto ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(until.when().time_since_epoch()).count();
        at = timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
        timeout = &at;
    }
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_BITSET, expected, timeout,
              nullptr, FUTEX_BITSET_MATCH_ANY);
}

/// Wakes up to `n` sleepers of `word` (FUTEX_WAKE).
inline void futex_wake(futex_word& word, int n) noexcept {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, n, nullptr, nullptr, 0);
}

}  // namespace multiprocessing::detail
