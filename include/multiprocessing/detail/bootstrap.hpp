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
};

/// Makes this (new) process's registry describe itself: no children, counter reset, the given
/// name, and the parent. Called with the registry mutex free (a forked child unlocks it first).
inline void become_child(const child_identity& who) {
    auto& g = globals();
    std::lock_guard lock(g.mutex);
    g.children.clear();
    g.counter = 0;
    g.current = std::make_shared<ProcessState>();
    g.current->kind = ProcessState::role::self;
    g.current->name = who.name;
    g.current->identity = who.identity;
    g.current->daemon = who.daemon;
    g.current->pid = ::getpid();
    g.parent = std::make_shared<ProcessState>();
    g.parent->kind = ProcessState::role::parent;
    g.parent->name = who.parent_name;
    g.parent->pid = who.parent_pid;
    g.parent->parent_pidfd = pidfd_open(who.parent_pid);
}

/// Process-level setup shared by every start method.
inline void prepare_child_process(const child_identity& who) {
    if (who.daemon) {
        // A daemonic child never outlives its parent, even when the parent is SIGKILLed.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != who.parent_pid) ::_exit(1);  // the parent died before prctl took effect
    }
    // As Python does: the child's stdin is /dev/null, so it never steals the parent's input.
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) {
        ::dup2(devnull, STDIN_FILENO);
        ::close(devnull);
    }
}

/// Runs a target the way Python's BaseProcess._bootstrap does and returns the exit code:
/// 0 on return, 1 (after printing the error to stderr) when it throws.
inline int run_target(Task& task) noexcept {
    int code = 0;
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
    flush_std_streams();
    return code;
}

}  // namespace multiprocessing::detail
