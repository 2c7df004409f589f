// What a process object is underneath: the launcher seam (Popen), the type-erased target (Task),
// the shared state behind Process handles, and the per-process registry of children.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "exit_hooks.hpp"
#include "log_core.hpp"
#include "pickle.hpp"
#include "posix.hpp"
#include "process_wide.hpp"
#include "start_method.hpp"

namespace multiprocessing::detail {

/// One started child, as launched by a start method (Python: the popen_* classes).
/// Everything above this seam is written once for every start method.
class Popen {
public:
    virtual ~Popen() = default;
    [[nodiscard]] virtual pid_t pid() const noexcept = 0;
    /// A pollable fd that becomes readable when the child ends.
    [[nodiscard]] virtual int sentinel() const noexcept = 0;
    /// The exit code (-N for signal N) once the child has ended, else empty. Never blocks.
    virtual std::optional<int> poll() = 0;
    /// Waits for the child to end until the deadline; returns the exit code if it ended.
    virtual std::optional<int> wait(const deadline& until) = 0;
    /// Sends a signal unless the child has already been reaped.
    virtual void send_signal(int sig) = 0;
};

/// What a child runs: the target with its arguments.
class Task {
public:
    virtual ~Task() = default;
    virtual void run() = 0;
    /// Writes what a fresh process of this program needs to rebuild the task (see task.hpp);
    /// raises mp::PicklingError saying why when the target or an argument cannot cross exec.
    virtual void pickle(PickleWriter& w) const = 0;
};

/// The state behind every handle to one process (a child, this process, or our parent).
struct ProcessState {
    enum class role { child, self, parent };

    role kind = role::child;
    std::string name;
    bool daemon = false;
    std::vector<int> identity;          // Python's _identity: (1,), (1, 2) for a grandchild ...
    std::string authkey;                // Python's authkey: the main process's 32 random bytes, inherited
    std::optional<StartMethod> method;  // empty: the default start method at start()
    std::unique_ptr<Task> target;       // dropped by the parent once started, as Python does
    std::unique_ptr<Popen> popen;       // set by start()
    bool closed = false;
    pid_t pid = 0;                      // role::self and role::parent
    pid_t creator = ::getpid();         // role::child: the process that made it (Python's _parent_pid)
    unique_fd parent_pidfd;             // role::parent: opened on first use (see parent_sentinel)
    std::mutex mutex;                   // serializes start/close on one process

    /// role::parent: a pidfd of the parent, opened on first use so starting a child costs nothing
    /// for it; -1 if the parent has already gone.
    int parent_sentinel() {
        std::lock_guard lock(mutex);
        if (!parent_pidfd) parent_pidfd = pidfd_open(pid);
        return parent_pidfd.get();
    }
};

/// The registry of this process: who we are, our parent, our children. A forked child rebuilds it
/// (become_child) and the fork happens with `mutex` held, so no copy is ever half-updated.
struct process_globals {
    std::mutex mutex;
    std::vector<std::shared_ptr<ProcessState>> children;
    std::shared_ptr<ProcessState> current;
    std::shared_ptr<ProcessState> parent;
    int counter = 0;  // processes created here, for "Process-N" names
    bool exit_handler_registered = false;
    // Run by run_finalizers() in the process that registered each (Python: util.Finalize with an
    // exit priority), last registered first: a forked child's copy holds its parent's, which it
    // skips. Keyed by registration order, so that cancel_finalizer() can drop one.
    std::map<std::uint64_t, std::pair<pid_t, std::function<void()>>> finalizers;
    std::uint64_t finalizer_count = 0;
    pid_t finalizers_at_exit = 0;  // the process that made std::exit() run them (atexit)
};

/// One per process however the headers are compiled in (detail/process_wide.hpp).
inline process_globals& globals() {
    static process_globals& g =
        process_wide<process_globals>(process_wide_slot::process_registry, [] { return new process_globals; });
    return g;
}

/// This process's own state, created on first use ("MainProcess" in the main process).
inline std::shared_ptr<ProcessState> current_state() {
    auto& g = globals();
    std::lock_guard lock(g.mutex);
    if (!g.current) {
        g.current = std::make_shared<ProcessState>();
        g.current->kind = ProcessState::role::self;
        g.current->name = "MainProcess";
        g.current->pid = ::getpid();
        // Python: os.urandom(32) at import. A child's key comes from its parent instead (become_child).
        g.current->authkey = random_bytes(32);
    }
    return g.current;
}

/// Logs one of the library's own records from this process (named as current_process() is), if
/// the logger takes its level: a single relaxed load when logging is off. Never throws.
template <class... A>
void log_event(LogLevel level, const A&... parts) noexcept {
    auto& logger = log_state::get();
    if (!logger.enabled_for(level)) return;
    try {
        const std::string name = current_state()->name;
        logger.emit(level, name, log_message(parts...));
    } catch (...) {
        // A record that cannot be built or written is dropped, as Python's Handler.handleError does.
    }
}

/// Reaps children that have ended and drops them from the registry (Python: process._cleanup).
inline void reap_finished_children() {
    auto& g = globals();
    std::lock_guard lock(g.mutex);
    std::erase_if(g.children, [](const std::shared_ptr<ProcessState>& p) {
        return !p->popen || p->popen->poll().has_value();
    });
}

/// Runs the finalizers this process registered, last first, once (the others are dropped: they
/// are a forked parent's). An exception from one is dropped and the others still run.
inline void run_finalizers() noexcept {
    auto& g = globals();
    std::map<std::uint64_t, std::pair<pid_t, std::function<void()>>> finalizers;
    {
        std::lock_guard lock(g.mutex);
        finalizers.swap(g.finalizers);
    }
    const pid_t me = ::getpid();
    for (auto it = finalizers.rbegin(); it != finalizers.rend(); ++it) {
        if (it->second.first != me) continue;
        try {
            it->second.second();
        } catch (...) {
        }
    }
}

/// At exit, as Python's util._exit_function: terminate daemonic children, join all the others.
/// `finalize`: run the finalizers too. From the atexit handler of register_exit_handler() it does
/// not: they run from their own (run_finalizers_at_exit()), registered once the libraries they
/// use were initialised, so that it runs before those libraries' own atexit teardown.
inline void exit_cleanup(bool finalize = true) noexcept {
    try {
        auto& g = globals();
        std::vector<std::shared_ptr<ProcessState>> kids;
        {
            std::lock_guard lock(g.mutex);
            kids.swap(g.children);
        }
        // The records (and their order) of Python's util._exit_function.
        log_event(LogLevel::info, "process shutting down");
        log_event(LogLevel::debug, "running all \"atexit\" finalizers with priority >= 0");
        if (finalize) run_finalizers();
        for (auto& p : kids)
            if (p->daemon && p->popen && !p->popen->poll()) {
                log_event(LogLevel::info, "calling terminate() for daemon ", p->name);
                p->popen->send_signal(SIGTERM);
            }
        for (auto& p : kids)
            if (p->popen) {
                if (!p->popen->poll()) log_event(LogLevel::info, "calling join() for process ", p->name);
                (void)p->popen->wait(deadline());
            }
        log_event(LogLevel::debug, "running the remaining \"atexit\" finalizers");
    } catch (...) {
        // Exiting anyway: nothing useful can be done with an error here.
    }
}

/// Runs `fn` as this process ends (last registered first): as a child's target returns, and from
/// std::exit() (or main's return) once run_finalizers_at_exit() was called in this process.
/// Returns the key that cancel_finalizer() takes.
inline std::uint64_t register_finalizer(std::function<void()> fn) {
    auto& g = globals();
    std::lock_guard lock(g.mutex);
    const std::uint64_t key = ++g.finalizer_count;
    g.finalizers.emplace(key, std::make_pair(::getpid(), std::move(fn)));
    return key;
}

/// Drops a finalizer that is no longer needed (what it releases was released already).
inline void cancel_finalizer(std::uint64_t key) noexcept {
    auto& g = globals();
    std::lock_guard lock(g.mutex);
    g.finalizers.erase(key);
}

/// Makes this process's exit (std::exit(), main's return) run its finalizers, once per process.
/// Call it after initialising what they use: atexit handlers run last registered first, so a
/// library initialised before this call (OpenSSL registers its teardown as it initialises) is
/// still there when they run.
inline void run_finalizers_at_exit() {
    auto& g = globals();
    std::lock_guard lock(g.mutex);
    const pid_t me = ::getpid();
    if (g.finalizers_at_exit == me) return;
    g.finalizers_at_exit = me;  // a forked child has its parent's handler, and gets its own
    std::atexit([] { run_finalizers(); });
}

/// Registers exit_cleanup() to run when this process exits normally (once per process).
inline void register_exit_handler() {
    auto& g = globals();
    std::lock_guard lock(g.mutex);
    if (!g.exit_handler_registered) {
        g.exit_handler_registered = true;
        std::atexit([] { exit_cleanup(false); });
    }
}

/// Flushes the standard streams, C++ (std::cout, std::cerr, std::clog) and C (stdout, stderr), as
/// Python flushes sys.stdout/sys.stderr: before every start, so the parent's earlier lines come
/// before the child's whatever the start method, and as a child ends, so none is lost. The C++
/// streams have buffers of their own after std::ios::sync_with_stdio(false). Other FILEs are the
/// program's own, as in Python; flushing them all would also cost every forked child several page
/// faults.
inline void flush_std_streams() noexcept {
    try {
        std::cout.flush();  // synced with stdio by default: this is fflush(stdout)
        std::cerr.flush();
        std::clog.flush();
    } catch (...) {
    }
    std::fflush(stdout);
    std::fflush(stderr);
}

}  // namespace multiprocessing::detail
