// The fork start method: fork(2), the child runs the target from its copy of the parent's memory.
#pragma once

#include <sys/wait.h>
#include <unistd.h>
// After a libc header: __GLIBC__ is defined by <features.h>, which they include.
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <csignal>
#include <mutex>
#include <optional>

#include "bootstrap.hpp"
#include "exit_hooks.hpp"
#include "posix.hpp"
#include "process_state.hpp"

namespace multiprocessing::detail {

/// Converts a waitpid status to Python's exitcode: the exit status, or -N for signal N.
[[nodiscard]] constexpr int exitcode_from_status(int status) noexcept {
    if (WIFSIGNALED(status)) return -WTERMSIG(status);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 255;
}

/// A child of this process: reaped with waitpid, watched through a pidfd.
class PopenFork : public Popen {
public:
    /// Forks and runs `state.target` in the child (Python: popen_fork.Popen).
    explicit PopenFork(ProcessState& state) { launch(state); }
    ~PopenFork() override = default;

    [[nodiscard]] pid_t pid() const noexcept override { return pid_; }
    [[nodiscard]] int sentinel() const noexcept override { return sentinel_.get(); }

    std::optional<int> poll() override { return reap(WNOHANG); }

    std::optional<int> wait(const deadline& until) override {
        if (auto code = poll()) return code;
        if (!wait_readable(sentinel_.get(), until)) return std::nullopt;
        return reap(0);  // the pidfd is readable: the child has ended, waitpid returns at once
    }

    void send_signal(int sig) override {
        std::lock_guard lock(mutex_);
        // Never signal a reaped pid: it may already belong to someone else.
        if (!returncode_ && ::kill(pid_, sig) != 0 && errno != ESRCH) throw_errno("kill");
    }

protected:
    PopenFork() = default;

    /// Takes over a child that some other launcher created.
    void adopt(pid_t pid) {
        pid_ = pid;
        sentinel_ = pidfd_open(pid);
        if (!sentinel_) {
            int err = errno;
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            errno = err;
            throw_errno(err == ENOSYS ? "pidfd_open (Linux 5.3 or later is needed)" : "pidfd_open");
        }
    }

    std::optional<int> reap(int flags) {
        std::lock_guard lock(mutex_);
        if (returncode_) return returncode_;
        int status = 0;
        // Look before reaping: while the child is a zombie its pid cannot be reused, so what it
        // held in shared memory can be given back by pid alone.
        if (auto hook = child_ended().load(std::memory_order_acquire)) {
            siginfo_t info{};
            int r;
            while ((r = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT | flags)) < 0 &&
                   errno == EINTR) {
            }
            if (r == 0 && info.si_pid == pid_) hook(pid_, true);
            else if (r == 0 && (flags & WNOHANG)) return std::nullopt;  // still running
        }
        for (;;) {
            pid_t r = ::waitpid(pid_, &status, flags);
            if (r == pid_) {
                returncode_ = exitcode_from_status(status);
                break;
            }
            if (r == 0) return std::nullopt;
            if (errno == EINTR) continue;
            if (errno == ECHILD) {
                // Someone else reaped it (a user's waitpid(-1)); its status is lost.
                returncode_ = 255;
                break;
            }
            throw_errno("waitpid");
        }
        return returncode_;
    }

    std::mutex mutex_;
    pid_t pid_ = 0;
    unique_fd sentinel_;
    std::optional<int> returncode_;

private:
    /// Returns the heap's free pages to the kernel before forking. After fork() every page the
    /// parent has is shared copy-on-write with the child, free heap pages too, so the parent's
    /// next allocations fault each one in with a copy and a TLB shootdown across its threads. A
    /// pool made after a big pass freed its memory had its next 100k submits 2.5x slower (830 ms
    /// against 340 ms: the same 10.5k page faults, as copies). Trimmed, they are fresh zero pages.
    static void give_back_free_heap() noexcept {
#if defined(__GLIBC__)
        (void)::malloc_trim(0);
#endif
    }

    void launch(ProcessState& state) {
        child_identity who = identity_of(state);
        child_view view = make_child_view(who);
        const auto& calls = resolved_child_calls();
        // The standard streams were flushed by detail::launch() (launcher.hpp), or the child
        // would print the parent's buffered output again.
        auto& g = globals();
        give_back_free_heap();
        std::unique_lock registry(g.mutex);  // held across fork: the child's copy is consistent
        pid_t pid = ::fork();
        if (pid != 0) {
            const int err = errno;
            if (auto hook = child_forked().load(std::memory_order_acquire)) hook(pid);
            errno = err;
        }
        if (pid < 0) throw_errno("fork");
        if (pid == 0) {
            registry.unlock();
            prepare_child_process(who, who.parent_pid);
            become_child(view);
            calls.exit(run_target(*state.target));
        }
        registry.unlock();
        adopt(pid);
    }
};

}  // namespace multiprocessing::detail
