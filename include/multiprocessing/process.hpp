// Process: run a callable in a child process (Python: process.py), plus current_process(),
// parent_process() and active_children().
#pragma once

#include "detail/platform.hpp"

#include <sys/types.h>

#include <chrono>
#include <concepts>
#include <csignal>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "context.hpp"
#include "detail/launcher.hpp"
#include "detail/process_state.hpp"
#include "detail/task.hpp"
#include "errors.hpp"

namespace multiprocessing {


/// A handle to a process: a child, this process (current_process()), or our parent
/// (parent_process()). Copies refer to the same process (Python: BaseProcess).
class BaseProcess {
public:
    /// The name: "MainProcess", "Process-N" (or "Process-N:M" in a child), or what set_name gave.
    [[nodiscard]] std::string name() const { return state().name; }
    /// The OS process id; 0 for a child that has not been started.
    [[nodiscard]] pid_t pid() const {
        const auto& s = state();
        if (s.kind != detail::ProcessState::role::child) return s.pid;
        return s.popen ? s.popen->pid() : 0;
    }
    /// Same as pid() (Python: ident).
    [[nodiscard]] pid_t ident() const { return pid(); }
    /// Whether the process is daemonic: terminated at its parent's exit, never outliving it.
    [[nodiscard]] bool daemon() const { return state().daemon; }

    /// Empty while running (or not started); the exit status when ended, -N if killed by signal N.
    [[nodiscard]] std::optional<int> exitcode() const {
        const auto& s = state();
        if (s.kind != detail::ProcessState::role::child || !s.popen) return std::nullopt;
        return s.popen->poll();
    }

    /// True from start() until the process ends.
    [[nodiscard]] bool is_alive() const {
        auto& s = state();
        switch (s.kind) {
            case detail::ProcessState::role::self: return true;
            case detail::ProcessState::role::parent: {
                int fd = s.parent_sentinel();
                return fd >= 0 && !detail::wait_readable(fd, detail::deadline(std::chrono::seconds(0)));
            }
            case detail::ProcessState::role::child: break;
        }
        return s.popen && !s.popen->poll();
    }

    /// Blocks until the process ends.
    void join() { (void)join_until(detail::deadline()); }

    /// Blocks until the process ends or the timeout passes (a zero or negative timeout returns
    /// at once); returns true if it ended. Check exitcode() afterwards, as in Python.
    template <class Rep, class Period>
    bool join(std::chrono::duration<Rep, Period> timeout) {
        return join_until(detail::deadline(timeout));
    }

    /// Sends SIGTERM (no effect once the process has ended).
    void terminate() { signal(SIGTERM); }
    /// Sends SIGKILL (no effect once the process has ended).
    void kill() { signal(SIGKILL); }

    /// A file descriptor that becomes readable when the process ends, for mp::wait() or poll(2).
    [[nodiscard]] int sentinel() const {
        auto& s = state();
        if (s.kind == detail::ProcessState::role::parent) return s.parent_sentinel();
        if (!s.popen) throw ValueError("multiprocessing: process not started; call start() first");
        return s.popen->sentinel();
    }

protected:
    explicit BaseProcess(std::shared_ptr<detail::ProcessState> s) noexcept : state_(std::move(s)) {}

    detail::ProcessState& state() const {
        if (!state_) throw ValueError("multiprocessing: this Process was moved from");
        if (state_->closed)
            throw ValueError("multiprocessing: process object is closed; it cannot be used after close()");
        return *state_;
    }

    std::shared_ptr<detail::ProcessState> state_;

private:
    friend BaseProcess current_process();
    friend std::optional<BaseProcess> parent_process();
    friend std::vector<BaseProcess> active_children();

    bool join_until(const detail::deadline& until) {
        auto& s = state();
        switch (s.kind) {
            case detail::ProcessState::role::self:
                throw ValueError("multiprocessing: a process cannot join itself");
            case detail::ProcessState::role::parent: {
                int fd = s.parent_sentinel();
                return fd < 0 || detail::wait_readable(fd, until);
            }
            case detail::ProcessState::role::child: break;
        }
        if (!s.popen) throw ValueError("multiprocessing: can only join a started process; call start() first");
        if (!s.popen->wait(until)) return false;
        {
            std::lock_guard lock(s.mutex);
            s.target.reset();  // a spawn or forkserver child's shared objects: it is done with them
        }
        detail::reap_finished_children();
        return true;
    }

    void signal(int sig) {
        auto& s = state();
        if (s.kind != detail::ProcessState::role::child)
            throw ValueError("multiprocessing: only child processes can be terminated or killed");
        if (s.popen) s.popen->send_signal(sig);
    }
};

/// A child process running `target(args...)` (Python: multiprocessing.Process).
///
///     void worker(int n) { std::cout << "worker " << n << "\n"; }
///     mp::Process p(worker, 1);
///     p.start();
///     p.join();
///
/// Movable, not copyable. Dropping a running Process does not stop it: it stays in
/// active_children() and is joined (or, if daemonic, terminated) when this process exits.
class Process : public BaseProcess {
    struct construct_tag;

public:
    /// Runs `target(args...)` in a child, with the default start method.
    template <class F, class... Args>
        requires(!std::same_as<std::remove_cvref_t<F>, Context> &&
                 !std::same_as<std::remove_cvref_t<F>, construct_tag>)
    explicit Process(F&& target, Args&&... args)
        : Process(construct_tag{}, std::nullopt, std::forward<F>(target), std::forward<Args>(args)...) {}

    /// Runs `target(args...)` in a child started with `ctx`'s start method.
    template <class F, class... Args>
    Process(const Context& ctx, F&& target, Args&&... args)
        : Process(construct_tag{}, ctx.start_method(), std::forward<F>(target), std::forward<Args>(args)...) {}

    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    Process(Process&&) noexcept = default;
    Process& operator=(Process&&) noexcept = default;

    /// Reaps the child if it has ended; a running child keeps running (see the class comment).
    ~Process() {
        if (state_ && !state_->closed && state_->popen) {
            try {
                if (state_->popen->poll()) detail::reap_finished_children();
            } catch (...) {
            }
        }
    }

    /// Starts the child. Starting twice, or from a daemonic process, raises mp::ValueError.
    void start() {
        auto& s = state();
        std::lock_guard lock(s.mutex);
        if (s.popen) throw ValueError("multiprocessing: cannot start a process twice");
        if (detail::current_state()->daemon)
            throw ValueError("multiprocessing: daemonic processes are not allowed to have children");
        detail::check_bootstrapped();
        detail::reap_finished_children();
        const StartMethod method = s.method.value_or(get_start_method());
        s.popen = detail::launch(method, s);
        // A forked child has its own copy: the parent drops target and arguments, as Python does.
        // A spawn or forkserver child takes its own references to the shared objects in them as it
        // unpickles them, so the parent holds them until the child has ended (see spawn.hpp).
        if (method == StartMethod::fork) s.target.reset();
        detail::register_exit_handler();
        auto& g = detail::globals();
        std::lock_guard registry(g.mutex);
        g.children.push_back(state_);
    }

    /// Releases the process's resources; raises mp::ValueError if it is still running.
    /// Afterwards every method but close() raises mp::ValueError.
    void close() {
        if (!state_) throw ValueError("multiprocessing: this Process was moved from");
        if (state_->closed) return;
        auto& s = *state_;
        if (s.popen && !s.popen->poll())
            throw ValueError(
                "multiprocessing: cannot close a process while it is still running; call join() "
                "or terminate() first");
        {
            auto& g = detail::globals();
            std::lock_guard registry(g.mutex);
            std::erase(g.children, state_);
        }
        s.popen.reset();
        s.target.reset();
        s.closed = true;
    }

    /// Renames the process (its child sees the new name if set before start()).
    void set_name(std::string name) { state().name = std::move(name); }
    /// Makes the process daemonic or not; only before start().
    void set_daemon(bool daemonic) {
        auto& s = state();
        if (s.popen) throw ValueError("multiprocessing: process has already started; set_daemon() must come before start()");
        s.daemon = daemonic;
    }

private:
    struct construct_tag {};

    template <class F, class... Args>
    Process(construct_tag, std::optional<StartMethod> method, F&& target, Args&&... args)
        : BaseProcess(nullptr) {
        static_assert(std::is_invocable_v<std::decay_t<F>&, std::decay_t<Args>&...>,
                      "mp::Process: the target cannot be called with these arguments");
        auto s = std::make_shared<detail::ProcessState>();
        s->method = method;
        s->target = std::make_unique<detail::bound_task<std::decay_t<F>, std::decay_t<Args>...>>(
            std::in_place, std::forward<F>(target), std::forward<Args>(args)...);
        auto self = detail::current_state();
        s->daemon = self->daemon;  // Python: a child inherits daemon from its creator
        auto& g = detail::globals();
        {
            std::lock_guard registry(g.mutex);
            s->identity = self->identity;
            s->identity.push_back(++g.counter);
        }
        // As Python: mp.Process(...) is "Process-N"; ctx.Process(...) is "ForkProcess-N",
        // "SpawnProcess-N" or "ForkServerProcess-N".
        s->name = !method                                ? "Process"
                  : *method == StartMethod::fork         ? "ForkProcess"
                  : *method == StartMethod::spawn        ? "SpawnProcess"
                                                         : "ForkServerProcess";
        for (std::size_t i = 0; i < s->identity.size(); ++i) {
            s->name += i == 0 ? '-' : ':';
            s->name += std::to_string(s->identity[i]);
        }
        state_ = std::move(s);
    }
};

/// This process (Python: current_process()).
[[nodiscard]] inline BaseProcess current_process() { return BaseProcess(detail::current_state()); }

/// The process that started this one, or empty in the main process (Python: parent_process()).
[[nodiscard]] inline std::optional<BaseProcess> parent_process() {
    auto& g = detail::globals();
    std::lock_guard lock(g.mutex);
    if (!g.parent) return std::nullopt;
    return BaseProcess(g.parent);
}

/// The children of this process still running; reaps the ones that have ended.
[[nodiscard]] inline std::vector<BaseProcess> active_children() {
    detail::reap_finished_children();
    auto& g = detail::globals();
    std::lock_guard lock(g.mutex);
    std::vector<BaseProcess> out;
    out.reserve(g.children.size());
    for (auto& c : g.children) out.push_back(BaseProcess(c));
    return out;
}

/// Call first thing in main: in a child started by spawn or forkserver it runs the child's
/// task and exits; in any other process it returns at once (Python: freeze_support() plus
/// the `if __name__ == '__main__':` guard).
inline void freeze_support() {
    detail::spawn_main_if_requested();
    detail::forkserver_main_if_requested();
}

}  // namespace multiprocessing
