// The one place where a start method is turned into a launcher (Python: context._Popen).
#pragma once

#include <memory>

#include "popen_fork.hpp"
#include "process_state.hpp"

namespace multiprocessing::detail {

/// Starts `state`'s target with the given start method.
inline std::unique_ptr<Popen> launch(StartMethod method, ProcessState& state) {
    switch (method) {
        case StartMethod::fork: return std::make_unique<PopenFork>(state);
        case StartMethod::spawn:
        case StartMethod::forkserver: break;
    }
    throw ProcessError("multiprocessing: the '" + std::string(to_string(method)) +
                       "' start method is not available yet; use 'fork'");
}

}  // namespace multiprocessing::detail
