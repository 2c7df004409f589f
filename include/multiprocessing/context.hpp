// Start methods and the process-wide facts: StartMethod (detail/start_method.hpp), Context,
// get_context, set_start_method, get_all_start_methods, cpu_count. Light on purpose: no launcher,
// no Process. Process, current_process, parent_process, active_children and freeze_support come
// with process.hpp (Python's context.py re-exports them from process.py; here, include
// process.hpp or the umbrella header).
#pragma once

#include "detail/platform.hpp"

#include <sched.h>
#include <unistd.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "detail/context_extension.hpp"
#include "detail/process_wide.hpp"
#include "detail/start_method.hpp"
#include "errors.hpp"

namespace multiprocessing {

/// A start method to create processes with, as Python's get_context() returns
/// (use: `mp::Process p(ctx, f, args...)`, `mp::Pool pool(4, {.context = ctx})`); or a context
/// an optional header adds (mpi.hpp's "mpi"), which only Pool and ProcessPoolExecutor take.
class Context {
public:
    constexpr explicit Context(StartMethod method) noexcept : method_(method) {}
    /// A context of an optional header (see detail::context_extension).
    constexpr explicit Context(const detail::context_extension& e) noexcept : method_(StartMethod::spawn), ext_(&e) {}
    /// The start method of this context; mp::ValueError for a context that is not one (the
    /// "mpi" context's workers are ranks: Process, Queue, Value, locks stay on one machine).
    [[nodiscard]] constexpr StartMethod start_method() const {
        if (ext_) throw ValueError(std::string(ext_->local_only));
        return method_;
    }
    /// The Python name of the start method (or of the context: "mpi").
    [[nodiscard]] constexpr std::string_view name() const noexcept { return ext_ ? ext_->name : to_string(method_); }
    /// The optional header's context this is, or null for a start method.
    [[nodiscard]] constexpr const detail::context_extension* extension() const noexcept { return ext_; }
    friend constexpr bool operator==(const Context&, const Context&) noexcept = default;

private:
    StartMethod method_;
    const detail::context_extension* ext_ = nullptr;
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
/// The context of a start method given by its Python name, or of a registered context ("mpi");
/// unknown names raise mp::ValueError.
[[nodiscard]] inline Context get_context(std::string_view method) {
    // "mpi" exists once <multiprocessing/mpi.hpp> is included.
    if (const auto* e = detail::find_context_extension(method)) return Context(*e);
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
