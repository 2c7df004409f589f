// What a child of this library does as it ends, beyond joining its own children: a hook that
// lower layers (the arena) set without depending on Process.
#pragma once

#include <sys/types.h>

#include <atomic>

#include "process_wide.hpp"

namespace multiprocessing::detail {

/// The hooks below, one set per process (detail/process_wide.hpp): the arena sets them in the
/// module that maps it, a child may end in another module's code.
struct exit_hook_set {
    std::atomic<void (*)() noexcept> before_child_exit{nullptr};
    std::atomic<void (*)(pid_t, bool) noexcept> child_ended{nullptr};
    std::atomic<void (*)(pid_t) noexcept> child_forked{nullptr};
};

inline exit_hook_set& exit_hooks() {
    static exit_hook_set& hooks =
        process_wide<exit_hook_set>(process_wide_slot::exit_hooks, [] { return new exit_hook_set; });
    return hooks;
}

/// Run by a child as it ends, after exit_cleanup(): gives back what this process holds in shared
/// memory. Set once by the arena when this process first maps it (a forked child inherits it).
inline std::atomic<void (*)() noexcept>& before_child_exit() { return exit_hooks().before_child_exit; }

/// Run when a child of this process is seen to have ended, before it is reaped (`known_dead`:
/// its pid cannot have been reused yet) or after another process reaped it: gives back what it
/// held in shared memory. Set by the arena when this process first maps it.
inline std::atomic<void (*)(pid_t, bool) noexcept>& child_ended() { return exit_hooks().child_ended; }

/// Run in the parent right after fork(2) returns `pid` (negative if it failed), so that the row
/// of shared references reserved for the child names it. Set by the arena.
inline std::atomic<void (*)(pid_t) noexcept>& child_forked() { return exit_hooks().child_forked; }

}  // namespace multiprocessing::detail
