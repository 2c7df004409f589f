// The one place where a start method is turned into a launcher (Python: context._Popen).
#pragma once

#include <memory>

#include "popen_fork.hpp"
#include "popen_forkserver.hpp"
#include "spawn.hpp"
#include "process_state.hpp"

namespace multiprocessing::detail {

/// Starts `state`'s target with the given start method.
inline std::unique_ptr<Popen> launch(StartMethod method, ProcessState& state) {
    // Before every start, whatever the method (a fork server's child writes to the same files
    // but is not our fork): the parent's lines printed before start() come before the child's,
    // and a forked child does not print the parent's buffered output again.
    flush_std_streams();
    switch (method) {
        case StartMethod::fork: return std::make_unique<PopenFork>(state);
        case StartMethod::spawn: return std::make_unique<PopenSpawn>(state);
        case StartMethod::forkserver: return std::make_unique<PopenForkserver>(state);
    }
    throw ValueError("multiprocessing: unknown start method");
}

}  // namespace multiprocessing::detail
