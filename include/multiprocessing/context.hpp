// Start methods and the process-wide facts: StartMethod, Context, get_context, set_start_method,
// freeze_support, cpu_count; current_process/parent_process/active_children come with process.hpp
// (Python: context.py re-exports them from process.py the same way).
#pragma once

#include "detail/platform.hpp"

#include <sched.h>
#include <unistd.h>

#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "detail/process_wide.hpp"
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

/// A start method to create processes with, as Python's get_context() returns
/// (use: `mp::Process p(ctx, f, args...)`, `mp::Pool pool(4, {.context = ctx})`).
class Context {
public:
    constexpr explicit Context(StartMethod method) noexcept : method_(method) {}
    /// The start method of this context.
    [[nodiscard]] constexpr StartMethod start_method() const noexcept { return method_; }
    /// The Python name of the start method.
    [[nodiscard]] constexpr std::string_view name() const noexcept { return to_string(method_); }
    friend constexpr bool operator==(const Context&, const Context&) noexcept = default;

private:
    StartMethod method_;
};

namespace detail {

/// The process-wide default start method, fixed by set_start_method or by first use.
struct start_method_setting {
    std::mutex mutex;
    std::optional<StartMethod> actual;
};

/// One per process however the headers are compiled in (detail/process_wide.hpp).
inline start_method_setting& start_method_state() {
    static start_method_setting& s =
        process_wide<start_method_setting>(process_wide_slot::start_method, [] { return new start_method_setting; });
    return s;
}

}  // namespace detail

/// The start method used when none is given; fixes it, as Python's get_start_method() does.
/// Linux default: fork.
[[nodiscard]] inline StartMethod get_start_method() {
    auto& s = detail::start_method_state();
    std::lock_guard lock(s.mutex);
    if (!s.actual) s.actual = StartMethod::fork;
    return *s.actual;
}

/// Sets the default start method once; setting it again raises mp::ProcessError unless `force`.
inline void set_start_method(StartMethod method, bool force = false) {
    auto& s = detail::start_method_state();
    std::lock_guard lock(s.mutex);
    if (s.actual && !force)
        throw ProcessError(
            "multiprocessing: context has already been set; call set_start_method once, first "
            "thing in main, or pass force=true");
    s.actual = method;
}

/// Sets the default start method by its Python name ("fork", "spawn", "forkserver").
inline void set_start_method(std::string_view method, bool force = false) {
    set_start_method(parse_start_method(method), force);
}

/// The context of the default start method.
[[nodiscard]] inline Context get_context() { return Context(get_start_method()); }
/// The context of a given start method.
[[nodiscard]] constexpr Context get_context(StartMethod method) noexcept { return Context(method); }
/// The context of a start method given by its Python name; unknown names raise mp::ValueError.
[[nodiscard]] inline Context get_context(std::string_view method) {
    return Context(parse_start_method(method));
}

/// Every start method this platform supports, default first.
[[nodiscard]] inline std::vector<StartMethod> get_all_start_methods() {
    return {StartMethod::fork, StartMethod::spawn, StartMethod::forkserver};
}

/// The number of CPUs this process may run on (its affinity mask), at least 1.
[[nodiscard]] inline int cpu_count() noexcept {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace multiprocessing

// current_process(), parent_process(), active_children() and freeze_support() need Process.
#include "process.hpp"
