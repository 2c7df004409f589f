// What a child of this library does as it ends, beyond joining its own children: a hook that
// lower layers (the arena) set without depending on Process.
#pragma once

#include <atomic>

namespace multiprocessing::detail {

/// Run by a child as it ends, after exit_cleanup(): gives back what this process holds in shared
/// memory. Set once by the arena when this process first maps it (a forked child inherits it).
inline std::atomic<void (*)() noexcept>& before_child_exit() {
    static std::atomic<void (*)() noexcept> hook{nullptr};
    return hook;
}

}  // namespace multiprocessing::detail
