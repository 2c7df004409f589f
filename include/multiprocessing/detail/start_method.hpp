// The start methods' names (Python: the strings "fork", "spawn", "forkserver"): StartMethod,
// to_string, parse_start_method. Public names (namespace multiprocessing), included as
// <multiprocessing/context.hpp>; here so that the process state below the public headers can hold
// one (README: Layout). Which launcher each one uses is detail/launcher.hpp's business alone.
#pragma once

#include <ostream>
#include <string>
#include <string_view>

#include "errors.hpp"

namespace multiprocessing {

/// How a child process is started (Python: the start method names).
enum class StartMethod {
    fork,        ///< fork(2): the child is a copy of the parent; any callable works
    spawn,       ///< a fresh exec of this binary; target and arguments are pickled
    forkserver,  ///< forked from a clean server process started by exec at first use
};

/// The Python name of a start method: "fork", "spawn" or "forkserver".
[[nodiscard]] constexpr std::string_view to_string(StartMethod m) noexcept {
    switch (m) {
        case StartMethod::fork: return "fork";
        case StartMethod::spawn: return "spawn";
        case StartMethod::forkserver: return "forkserver";
    }
    return "?";
}

/// Compares a start method with its Python name, so `get_start_method() == "fork"` reads as in Python.
[[nodiscard]] constexpr bool operator==(StartMethod m, std::string_view name) noexcept {
    return to_string(m) == name;
}

inline std::ostream& operator<<(std::ostream& os, StartMethod m) { return os << to_string(m); }

/// Parses a Python start-method name; an unknown one raises mp::ValueError listing the valid ones.
[[nodiscard]] inline StartMethod parse_start_method(std::string_view name) {
    for (auto m : {StartMethod::fork, StartMethod::spawn, StartMethod::forkserver})
        if (to_string(m) == name) return m;
    throw ValueError("multiprocessing: cannot find context for '" + std::string(name) +
                     "'; valid start methods are 'fork', 'spawn' and 'forkserver'");
}

}  // namespace multiprocessing
