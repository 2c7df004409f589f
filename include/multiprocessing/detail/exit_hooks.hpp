// What a child of this library does as it ends, beyond joining its own children: a hook that
// lower layers (the arena) set without depending on Process.
#pragma once

#include <sys/types.h>

#include <atomic>

namespace multiprocessing::detail {

/// Run by a child as it ends, after exit_cleanup(): gives back what this process holds in shared
/// memory. Set once by the arena when this process first maps it (a forked child inherits it).
inline std::atomic<void (*)() noexcept>& before_child_exit() {
    static std::atomic<void (*)() noexcept> hook{nullptr};
    return hook;
}

/// Run when a child of this process is seen to have ended, before it is reaped (`known_dead`:
/// its pid cannot have been reused yet) or after another process reaped it: gives back what it
/// held in shared memory. Set by the arena when this process first maps it.
inline std::atomic<void (*)(pid_t, bool) noexcept>& child_ended() {
    static std::atomic<void (*)(pid_t, bool) noexcept> hook{nullptr};
    return hook;
}

/// Run in the parent right after fork(2) returns `pid` (negative if it failed), so that the row
/// of shared references reserved for the child names it. Set by the arena.
inline std::atomic<void (*)(pid_t) noexcept>& child_forked() {
    static std::atomic<void (*)(pid_t) noexcept> hook{nullptr};
    return hook;
}

}  // namespace multiprocessing::detail
