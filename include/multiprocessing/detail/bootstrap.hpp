// The child's side of every start method: become the new process, run the target, _exit.
// A child never returns into the caller's code (or a test framework would go on running there).
#pragma once

#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <string>

#include "process_state.hpp"
#include "remote_exception.hpp"

namespace multiprocessing::detail {

/// Who the child is, as the parent decided: enough to rebuild current_process() and
/// parent_process() in it, whatever the start method.
struct child_identity {
    std::string name;
    std::vector<int> identity;
    bool daemon = false;
    std::string parent_name;
    pid_t parent_pid = 0;
    std::string authkey;  // the Process object's, as Python's child takes its Process's _config
};

/// Who a child of this process, described by `state`, will be.
inline child_identity identity_of(const ProcessState& state) {
    return {state.name, state.identity, state.daemon, current_state()->name, ::getpid(), state.authkey};
}

/// The registry entries a child installs for itself and its parent. Built in the parent before
/// fork, so the child allocates nothing (every page a forked child writes is a page copied).
struct child_view {
    std::shared_ptr<ProcessState> self;
    std::shared_ptr<ProcessState> parent;
};

inline child_view make_child_view(const child_identity& who) {
    child_view v{std::make_shared<ProcessState>(), std::make_shared<ProcessState>()};
    v.self->kind = ProcessState::role::self;
    v.self->name = who.name;
    v.self->identity = who.identity;
    v.self->daemon = who.daemon;
    v.self->authkey = who.authkey;
    v.parent->kind = ProcessState::role::parent;
    v.parent->name = who.parent_name;
    v.parent->pid = who.parent_pid;
    return v;
}

/// Makes this (new) process's registry describe itself: no children, counter reset, itself and
/// its parent. The old entries are parked in `view`, not freed: a forked child exits without
/// ever touching them. Called with the registry mutex free.
inline void become_child(child_view& view) {
    auto& g = globals();
    std::lock_guard lock(g.mutex);
    g.children.clear();
    g.counter = 0;
    view.self->pid = ::getpid();
    std::swap(g.current, view.self);
    std::swap(g.parent, view.parent);
}

/// /dev/null, opened once by the parent so a forked child need not open it.
inline int devnull_fd() noexcept {
    static const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd;
}

/// Calls a forked child makes, resolved by the parent once: with lazy binding, the first call of
/// a function in each child would otherwise cost the dynamic linker's lookup and its page faults.
struct child_calls {
    void (*exit)(int);
    child_calls() noexcept {
        void (*volatile exit_fn)(int) = ::_exit;  // volatile: take the GOT address, not a PLT call
        exit = exit_fn;
        int fd = devnull_fd();
        if (fd >= 0) (void)::dup2(fd, fd);
        (void)::prctl(PR_GET_PDEATHSIG, 0);
        (void)::getppid();
    }
};

inline const child_calls& resolved_child_calls() noexcept {
    static const child_calls calls;
    return calls;
}

/// Process-level setup shared by every start method. `os_parent` is the process that really
/// started this one: the parent itself, or the fork server.
inline void prepare_child_process(const child_identity& who, pid_t os_parent) {
    if (who.daemon) {
        // A daemonic child never outlives its parent, even when the parent is SIGKILLed (with
        // forkserver, the server dies with the parent, and its children with it).
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != os_parent) resolved_child_calls().exit(1);  // the parent is already gone
    }
    // As Python does: the child's stdin is /dev/null, so it never steals the parent's input.
    int devnull = devnull_fd();
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
}

/// Runs a target the way Python's BaseProcess._bootstrap does and returns the exit code:
/// 0 on return, 1 (after printing the error to stderr) when it throws.
inline int run_target(Task& task) noexcept {
    int code = 0;
    log_event(LogLevel::info, "child process calling self.run()");
    try {
        task.run();
    } catch (...) {
        auto info = describe(std::current_exception());
        std::string name;
        try {
            name = current_state()->name;
        } catch (...) {
        }
        flush_std_streams();
        std::fprintf(stderr, "Process %s:\nTraceback: uncaught exception in the target\n%s: %s\n",
                     name.c_str(), info.type_name.c_str(), info.message.c_str());
        code = 1;
    }
    exit_cleanup();  // join our own children, terminate our daemonic ones
    log_event(LogLevel::info, "process exiting with exitcode ", code);
    if (auto hook = before_child_exit().load()) hook();
    flush_std_streams();
    return code;
}

}  // namespace multiprocessing::detail
