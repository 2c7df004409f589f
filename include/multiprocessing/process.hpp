// Process: run a callable in a child process (Python: process.py), plus current_process(),
// parent_process() and active_children().
#pragma once

#include "detail/platform.hpp"

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <concepts>
#include <csignal>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <tuple>
#include <typeinfo>
#include <type_traits>
#include <utility>
#include <vector>

#include "context.hpp"
#include "detail/launcher.hpp"
#include "detail/process_state.hpp"
#include "detail/repr.hpp"
#include "detail/task.hpp"
#include "errors.hpp"
#include "pickle.hpp"

namespace multiprocessing {

class Process;

namespace detail {

/// What `Process(this)` records about a subclass: how start() makes the task that calls its run().
struct subclass_ops {
    /// `fresh`: for a spawn or forkserver child, which rebuilds the object from its pickled form.
    std::unique_ptr<Task> (*make_task)(Process& self, bool fresh);
};

/// Set while a spawn or forkserver child (or the parent, for the copy it holds) rebuilds a
/// subclass object: its Process(this) then takes no name or number of its own.
inline thread_local bool rebuilding_subclass = false;

/// A class's name without its namespaces, as Python's type(self).__name__ ("Worker").
inline std::string short_class_name(std::string_view full) {
    std::size_t start = 0;
    int depth = 0;
    for (std::size_t i = 0; i < full.size(); ++i) {
        char c = full[i];
        if (c == '<' || c == '(') ++depth;
        else if (c == '>' || c == ')') --depth;
        else if (depth == 0 && c == ':' && i + 1 < full.size() && full[i + 1] == ':') start = i + 2;
    }
    std::string name(full.substr(start));
    return name.empty() ? std::string("Process") : name;
}

template <class T>
inline constexpr bool dependent_false = false;


/// Python's BaseProcess.__repr__: <Process name='Process-1' pid=1234 parent=1233 started>, with
/// the status initial, started, stopped exitcode=N (-SIGNAME when killed), closed or unknown (a
/// Process object inherited from the process that made it), and "daemon" last. The class name is
/// Python's: Process, or ForkProcess / SpawnProcess / ForkServerProcess for one made with a
/// Context; _MainProcess and _ParentProcess for current_process() in the main process and
/// parent_process().
inline void write_process(std::ostream& os, ProcessState* s) {
    if (!s) {
        os << "<Process moved-from>";
        return;
    }
    using role = ProcessState::role;
    std::string type = "Process";
    std::string parent = "None";
    std::string status;
    std::optional<int> exitcode;
    pid_t pid = 0;
    switch (s->kind) {
        case role::self: {
            std::shared_ptr<ProcessState> p;
            {
                std::lock_guard lock(globals().mutex);
                p = globals().parent;
            }
            if (p) parent = std::to_string(p->pid);
            else type = "_MainProcess";
            status = "started";
            break;
        }
        case role::parent:
            type = "_ParentProcess";
            status = "unknown";
            break;
        case role::child:
            type = process_class_name(s->method);
            parent = std::to_string(s->creator);
            if (s->popen) pid = s->popen->pid();
            if (s->closed) {
                status = "closed";
            } else if (s->creator != ::getpid()) {
                status = "unknown";
            } else if (!s->popen) {
                status = "initial";
            } else {
                exitcode = s->popen->poll();
                status = exitcode ? "stopped" : "started";
            }
            break;
    }
    os << '<' << type << " name=";
    write_py_repr(os, s->name);
    if (pid) os << " pid=" << pid;
    os << " parent=" << parent << ' ' << status;
    if (exitcode) {
        os << " exitcode=";
        write_exitcode(os, *exitcode);
    }
    if (s->daemon) os << " daemon";
    os << '>';
}

}  // namespace detail

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

    /// The authentication key (Python: authkey), bytes: 32 random ones in the main process; a
    /// Process takes its creator's key when made, and its child runs with it under every start
    /// method. A Manager authenticates with it (Listener and Client only with a key given).
    [[nodiscard]] std::string authkey() const { return state().authkey; }
    /// Sets the key (Python: `p.authkey = key`): current_process().set_authkey(k) for the
    /// children made afterwards; on a Process before start(), for that child.
    void set_authkey(std::string key) { state().authkey = std::move(key); }

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

    /// Prints what Python's repr prints: <Process name='Process-1' pid=1234 parent=1233 started>.
    friend std::ostream& operator<<(std::ostream& os, const BaseProcess& p) {
        detail::write_process(os, p.state_.get());
        return os;
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
///
/// Or derive from it, as Python's `class Worker(Process)`, and override run(): the constructor
/// calls `Process(this)` (Python: super().__init__()), and the members that a spawn or forkserver
/// child needs are named by a `serialize(Ar&)` member (fork copies the whole object anyway):
///
///     class Worker : public mp::Process {
///     public:
///         Worker() : Process(this) {}                   // a spawned child rebuilds it from this
///         explicit Worker(int n) : Process(this), n_(n) {}
///         void run() override { std::cout << name() << " got " << n_ << "\n"; }  // Worker-1 got 7
///         template <class Ar> void serialize(Ar& ar) { ar(n_); }
///     private:
///         int n_ = 0;
///     };
///     Worker w(7);
///     w.start();
///     w.join();
class Process : public BaseProcess {
    struct construct_tag;
    struct subclass_tag;

    template <class F>
    static constexpr bool is_subclass_pointer_v =
        std::is_pointer_v<std::remove_cvref_t<F>> &&
        std::is_base_of_v<Process, std::remove_cv_t<std::remove_pointer_t<std::remove_cvref_t<F>>>>;

public:
    /// Runs `target(args...)` in a child, with the default start method. Arguments are kept as
    /// the target's parameter types, as std::thread decays them ("bob" for a std::string).
    template <class F, class... Args>
        requires(!std::same_as<std::remove_cvref_t<F>, Context> &&
                 !std::same_as<std::remove_cvref_t<F>, construct_tag> &&
                 !std::same_as<std::remove_cvref_t<F>, subclass_tag> && !is_subclass_pointer_v<F>)
    explicit Process(F&& target, Args&&... args)
        : Process(construct_tag{}, std::nullopt, std::forward<F>(target), std::forward<Args>(args)...) {}

    /// Runs `target(args...)` in a child started with `ctx`'s start method.
    template <class F, class... Args>
        requires(!is_subclass_pointer_v<F>)
    Process(const Context& ctx, F&& target, Args&&... args)
        : Process(construct_tag{}, ctx.start_method(), std::forward<F>(target), std::forward<Args>(args)...) {}

    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    Process(Process&&) noexcept = default;
    Process& operator=(Process&&) noexcept = default;

    /// Reaps the child if it has ended; a running child keeps running (see the class comment).
    virtual ~Process() {
        if (state_ && !state_->closed && state_->popen) {
            try {
                if (state_->popen->poll()) detail::reap_finished_children();
            } catch (...) {
            }
        }
    }

    /// The process's activity (Python: run()): calls the target with its arguments. start()
    /// calls it in the child; a subclass overrides it. Called directly, it runs here, as in
    /// Python; after start() the target is the child's, and run() does nothing.
    virtual void run() {
        auto& s = state();
        if (!subclass_ && s.target && !s.popen) s.target->run();
    }

    /// Starts the child, which calls run(). Starting twice, or from a daemonic process, raises
    /// mp::ValueError.
    void start() {
        auto& s = state();
        std::lock_guard lock(s.mutex);
        if (s.popen) throw ValueError("multiprocessing: cannot start a process twice");
        if (detail::current_state()->daemon)
            throw ValueError("multiprocessing: daemonic processes are not allowed to have children");
        detail::check_bootstrapped();
        detail::reap_finished_children();
        const StartMethod method = s.method.value_or(get_start_method());
        // A subclass's run(): on this very object in a forked child, on a copy rebuilt from its
        // pickled members in a spawn or forkserver child.
        if (subclass_) s.target = subclass_->make_task(*this, !detail::child_shares_memory(method));
        s.popen = detail::launch(method, s);
        // A forked child has its own copy: the parent drops target and arguments, as Python does.
        // A spawn or forkserver child takes its own references to the shared objects in them as it
        // unpickles them, so the parent holds them until the child has ended (see spawn.hpp).
        if (detail::child_shares_memory(method)) s.target.reset();
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

protected:
    /// For a subclass (Python: `class Worker(Process)` calling `super().__init__()`): call
    /// `Process(this)` in every constructor, the default one too, which a spawn or forkserver
    /// child uses to rebuild the object before its members are unpickled into it. The process is
    /// named after the class ("Worker-1"), as in Python.
    template <class D>
        requires std::is_base_of_v<Process, D>
    explicit Process(D* self) : Process(subclass_tag{}, std::nullopt, self) {}
    /// As Process(this), with `ctx`'s start method.
    template <class D>
        requires std::is_base_of_v<Process, D>
    Process(const Context& ctx, D* self) : Process(subclass_tag{}, ctx.start_method(), self) {}

    /// Not to be used: a subclass's constructors call Process(this) (see above).
    template <class T = void>
    Process() : BaseProcess(nullptr) {
        static_assert(detail::dependent_false<T>,
                      "mp::Process: a class derived from mp::Process must call `Process(this)` in each of its "
                      "constructors (as Python's super().__init__()): `Worker() : Process(this) {}`");
    }

private:
    struct construct_tag {};
    struct subclass_tag {};

    template <class D>
    Process(subclass_tag, std::optional<StartMethod> method, D*) : BaseProcess(nullptr) {
        static constexpr detail::subclass_ops ops{&make_subclass_task<D>};
        subclass_ = &ops;
        if (detail::rebuilding_subclass) {
            // A copy rebuilt from the pickled members: the rebuilder gives it its state.
            detail::rebuilding_subclass = false;
            return;
        }
        state_ = make_state(method, detail::short_class_name(detail::type_name<D>()));
    }

    template <class F, class... Args>
    Process(construct_tag, std::optional<StartMethod> method, F&& target, Args&&... args)
        : BaseProcess(nullptr) {
        // Arguments are kept as the target's parameter types (as std::thread decays them), so
        // `mp::Process p(greet, "bob")` sends a std::string under every start method.
        constexpr bool converts = detail::check_arguments<std::decay_t<F>, Args...>();
        using task = detail::bound_task_for<std::decay_t<F>, Args...>;
        static_assert(!converts || task::invocable, "mp::Process: the target cannot be called with these arguments");
        // As Python: mp.Process(...) is "Process-N"; ctx.Process(...) is "ForkProcess-N",
        // "SpawnProcess-N" or "ForkServerProcess-N".
        auto s = make_state(method, detail::process_class_name(method));
        s->target = std::make_unique<task>(std::in_place, std::forward<F>(target), std::forward<Args>(args)...);
        state_ = std::move(s);
    }

    /// A new process's state: its start method, its number, and its name `prefix`-N (-N:M ...).
    static std::shared_ptr<detail::ProcessState> make_state(std::optional<StartMethod> method, std::string prefix) {
        auto s = std::make_shared<detail::ProcessState>();
        s->method = method;
        auto self = detail::current_state();
        s->daemon = self->daemon;  // Python: a child inherits daemon from its creator
        s->authkey = self->authkey;  // and its authkey (Python copies the creator's _config)
        auto& g = detail::globals();
        {
            std::lock_guard registry(g.mutex);
            s->identity = self->identity;
            s->identity.push_back(++g.counter);
        }
        s->name = std::move(prefix);
        for (std::size_t i = 0; i < s->identity.size(); ++i) {
            s->name += i == 0 ? '-' : ':';
            s->name += std::to_string(s->identity[i]);
        }
        return s;
    }

    // ---- subclasses: run() in the child -------------------------------------------------------

    /// In a forked child: this object is the child's copy, and now describes this process (as
    /// in Python, where the Process object is current_process() in its child).
    class forked_run final : public detail::Task {
    public:
        explicit forked_run(Process& self) noexcept : self_(&self) {}
        void run() override {
            auto& s = *self_->state_;
            s.kind = detail::ProcessState::role::self;
            s.pid = ::getpid();
            self_->run();  // virtual: the subclass's
        }
        void pickle(PickleWriter&) const override {
            throw PicklingError("multiprocessing: internal error: a forked subclass task was pickled");
        }

    private:
        Process* self_;
    };

    /// A subclass object rebuilt from its pickled members: in the parent, the copy pickled for a
    /// spawn or forkserver child (kept until the child has ended, so the shared objects and
    /// descriptors it holds outlive the child's unpickling, as a target's arguments are); in the
    /// child, the object whose run() it runs.
    template <class D>
    class rebuilt_run final : public detail::Task {
    public:
        explicit rebuilt_run(std::unique_ptr<D> obj) noexcept : obj_(std::move(obj)) {}
        void run() override {
            obj_->state_ = detail::current_state();
            static_cast<Process&>(*obj_).run();  // virtual: the subclass's, even if it declared it private
        }
        void pickle(PickleWriter& w) const override {
            w.dump(detail::identify(&load_subclass<D>));
            w.dump(*obj_);
        }

    private:
        std::unique_ptr<D> obj_;
    };

    template <class D>
    static constexpr bool rebuildable_v =
        picklable<D> && std::is_default_constructible_v<D> && std::is_move_constructible_v<D>;

    /// Rebuilds a D from its pickled members (its default constructor first, as the pickle does).
    template <class D>
    static std::unique_ptr<D> rebuild(PickleReader& r) {
        struct guard {
            guard() noexcept { detail::rebuilding_subclass = true; }
            ~guard() { detail::rebuilding_subclass = false; }
        } g;
        return std::make_unique<D>(r.load<D>());
    }

    /// The task loader a spawn or forkserver child finds by identity (see detail/task.hpp).
    template <class D>
    static std::unique_ptr<detail::Task> load_subclass(PickleReader& r) {
        if constexpr (rebuildable_v<D>)
            return std::make_unique<rebuilt_run<D>>(rebuild<D>(r));
        else
            throw PicklingError("multiprocessing: internal error: a subclass that cannot be rebuilt was loaded");
    }

    template <class D>
    static std::unique_ptr<detail::Task> make_subclass_task(Process& self, bool fresh) {
        if (!fresh) return std::make_unique<forked_run>(self);
        const std::string name = detail::short_class_name(detail::type_name<D>());
        if constexpr (!rebuildable_v<D>) {
            throw PicklingError(
                "multiprocessing: under the spawn and forkserver start methods a child rebuilds " + name +
                " from its pickled members, so " + name +
                " needs a default constructor calling Process(this), a move constructor, and a `template "
                "<class Ar> void serialize(Ar& ar) { ar(members...); }` member naming the members the child "
                "needs (or an mp::pickler specialization); or use the fork start method");
        } else {
            if (typeid(self) != typeid(D))
                throw PicklingError("multiprocessing: the object started is derived from " + name +
                                    ", which called Process(this): a spawn or forkserver child would rebuild a " +
                                    name + ", not the class started; derive from mp::Process directly, or use the "
                                           "fork start method");
            std::string bytes;
            std::vector<int> fds;
            PickleWriter w(bytes, &fds);
            w.set_sender_holds_objects(true);  // `self` holds them while the copy takes its own
            w.dump(static_cast<const D&>(self));
            PickleReader r(bytes, &fds);
            return std::make_unique<rebuilt_run<D>>(rebuild<D>(r));
        }
    }

    const detail::subclass_ops* subclass_ = nullptr;  // set by Process(this)
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
inline void freeze_support() { detail::run_child_main_if_requested(); }

}  // namespace multiprocessing
