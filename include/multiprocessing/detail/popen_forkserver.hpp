// The forkserver start method (Python: forkserver.py + popen_forkserver.py): a clean server
// process, started by exec at first use, forks every child. Requests travel over a SOCK_SEQPACKET
// socket with their descriptors (SCM_RIGHTS); the server reports each child's pid and exit code
// through a pipe that is the child's sentinel in the parent.
#pragma once

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "popen_fork.hpp"
#include "exit_hooks.hpp"
#include "posix.hpp"
#include "process_state.hpp"
#include "process_wide.hpp"
#include "spawn.hpp"

namespace multiprocessing::detail {

inline constexpr std::size_t forkserver_max_fds = 250;

/// This process's connection to its fork server, started at first use.
class forkserver_client {
public:
    /// Sends a request: [payload memfd, status pipe write end, argument fds...].
    void request(const std::vector<int>& fds) {
        std::lock_guard lock(mutex_);
        ensure_running();
        std::uint32_t count = static_cast<std::uint32_t>(fds.size());
        send_with_fds(control_.get(), &count, sizeof count, fds);
    }

    std::mutex& mutex() noexcept { return mutex_; }

private:
    void ensure_running() {
        if (control_ && server_ && !server_->poll()) return;
        if (server_) (void)server_->wait(deadline());  // reap a server that died
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) throw_errno("socketpair");
        unique_fd mine(sv[0]), theirs(sv[1]);
        auto server = std::make_unique<server_process>(exec_self({theirs.get()}, forkserver_env, std::to_string(::getpid())));
        theirs.reset();
        // The server says "ready" from mp::freeze_support(); without it, tell the user.
        if (!reached_freeze_support(mine.get(), server->sentinel())) throw bootstrap_failed(*server, "the fork server");
        control_ = std::move(mine);
        server_ = std::move(server);
    }

    /// The server is our child: reaped like a forked one.
    struct server_process : PopenFork {
        explicit server_process(pid_t pid) { adopt(pid); }
    };

    std::mutex mutex_;
    unique_fd control_;
    std::unique_ptr<server_process> server_;
};

/// One per process however the headers are compiled in (detail/process_wide.hpp).
inline forkserver_client& forkserver() {
    static forkserver_client& client = process_wide<forkserver_client>(process_wide_slot::forkserver, [] {
        auto* c = new forkserver_client;
        // A fork while another thread sends a request must not leave the child a locked mutex.
        // Registered by the module that makes the client, once per process.
        ::pthread_atfork([] { forkserver().mutex().lock(); }, [] { forkserver().mutex().unlock(); },
                         [] { forkserver().mutex().unlock(); });
        return c;
    });
    return client;
}

/// A child forked by the fork server: not our child, so its pid and exit code come from the
/// server through a pipe, which is also its sentinel.
class PopenForkserver : public Popen {
public:
    explicit PopenForkserver(ProcessState& state) {
        child_payload payload = make_child_payload(state);
        auto [status_r, status_w] = make_pipe();
        status_ = std::move(status_r);
        std::vector<int> fds{payload.memfd.get(), status_w.get()};
        fds.insert(fds.end(), payload.fds.begin(), payload.fds.end());
        if (fds.size() > forkserver_max_fds)
            throw ValueError("multiprocessing: too many connections passed to one forkserver child");
        forkserver().request(fds);
        status_w.reset();
        std::int64_t pid = 0;
        if (!read_exact(&pid, sizeof pid) || pid == 0)
            throw ProcessError("multiprocessing: the fork server ended before it started the child");
        if (pid < 0)  // the server's fork(2) failed: -errno
            throw std::system_error(static_cast<int>(-pid), std::generic_category(), "multiprocessing: fork (in the fork server)");
        pid_ = static_cast<pid_t>(pid);
    }

    [[nodiscard]] pid_t pid() const noexcept override { return pid_; }
    [[nodiscard]] int sentinel() const noexcept override { return status_.get(); }

    std::optional<int> poll() override { return wait(deadline(std::chrono::seconds(0))); }

    std::optional<int> wait(const deadline& until) override {
        std::lock_guard lock(mutex_);
        if (returncode_) return returncode_;
        if (!wait_readable(status_.get(), until)) return std::nullopt;
        std::int32_t code = 255;  // the server died: the status is lost
        if (!read_exact(&code, sizeof code)) code = 255;
        // The server closes the pipe right after writing the code; wait for that, so the
        // sentinel stays readable (at end of file) for mp::wait() once the child has ended.
        for (char extra;;) {
            ssize_t r = ::read(status_.get(), &extra, 1);
            if (r == 0 || (r < 0 && errno != EINTR)) break;
        }
        returncode_ = code;
        // The server reaped it: give back what it held in shared memory, unless its pid is
        // already someone else's (then it is kept: never freed under a live process).
        if (auto hook = child_ended().load(std::memory_order_acquire)) hook(pid_, false);
        return returncode_;
    }

    void send_signal(int sig) override {
        std::lock_guard lock(mutex_);
        if (!returncode_ && ::kill(pid_, sig) != 0 && errno != ESRCH) throw_errno("kill");
    }

private:
    bool read_exact(void* dst, std::size_t n) {
        auto* p = static_cast<char*>(dst);
        for (std::size_t got = 0; got < n;) {
            ssize_t r = ::read(status_.get(), p + got, n - got);
            if (r > 0) {
                got += static_cast<std::size_t>(r);
                continue;
            }
            if (r < 0 && errno == EINTR) continue;
            return false;
        }
        return true;
    }

    std::mutex mutex_;
    pid_t pid_ = 0;
    unique_fd status_;
    std::optional<int> returncode_;
};

/// The fork server's loop: fork a child per request, report pids and exit codes, exit with the
/// parent. Never returns.
[[noreturn]] inline void forkserver_main(int control, pid_t parent) {
    // Never outlive the parent process. PR_SET_PDEATHSIG would act on the end of the thread that
    // started the server (a Pool's result thread, say), so the server watches the parent's pidfd,
    // which says when the whole process has ended; without pidfds, PR_SET_PDEATHSIG it is.
    unique_fd parent_fd = pidfd_open(parent);
    if (!parent_fd) ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(0);  // after pidfd_open: the pidfd is the parent's
    // A Ctrl-C reaches every process of the terminal's foreground group, the server too: were it
    // to die of it, its children's exit codes would be lost (Python's server ignores SIGINT too).
    // Its children get back the disposition it started with (default, or ignored if the user's
    // program ignored SIGINT), the one a spawned child would have.
    struct sigaction sigint_at_start{};
    struct sigaction ignore{};
    ignore.sa_handler = SIG_IGN;
    ::sigemptyset(&ignore.sa_mask);
    ::sigaction(SIGINT, &ignore, &sigint_at_start);
    sigset_t sigint_only;
    sigset_t mask_at_start;
    ::sigemptyset(&sigint_only);
    ::sigaddset(&sigint_only, SIGINT);
    char ready = 1;
    (void)::send(control, &ready, 1, MSG_NOSIGNAL);
    struct child {
        unique_fd pidfd;
        unique_fd status;
    };
    std::map<pid_t, child> children;
    for (;;) {
        std::vector<pollfd> fds{{control, POLLIN, 0}, {parent_fd.get(), POLLIN, 0}};
        std::vector<pid_t> pids;
        for (auto& [pid, c] : children) {
            fds.push_back({c.pidfd.get(), POLLIN, 0});
            pids.push_back(pid);
        }
        poll_until(fds.data(), fds.size(), deadline());
        if (fds[1].revents) ::_exit(0);  // the parent process has ended
        for (std::size_t i = 2; i < fds.size(); ++i) {
            if (!fds[i].revents) continue;
            int status = 0;
            while (::waitpid(pids[i - 2], &status, 0) < 0 && errno == EINTR) {
            }
            std::int32_t code = exitcode_from_status(status);
            (void)!::write(children[pids[i - 2]].status.get(), &code, sizeof code);
            children.erase(pids[i - 2]);
        }
        if (!fds[0].revents) continue;
        std::uint32_t count = 0;
        std::vector<int> got;
        ssize_t r = recv_with_fds(control, &count, sizeof count, got, forkserver_max_fds);
        if (r <= 0) ::_exit(0);  // the parent is gone; our children live on, as in Python
        if (got.size() < 2) {
            for (int fd : got) ::close(fd);
            continue;
        }
        flush_std_streams();
        // SIGINT blocked across fork: one that comes before the child has its own disposition
        // back stays pending (a blocked signal is never discarded) instead of being ignored.
        ::pthread_sigmask(SIG_BLOCK, &sigint_only, &mask_at_start);
        pid_t pid = ::fork();
        const int fork_error = errno;
        if (pid == 0) {
            ::close(control);
            parent_fd.reset();
            children.clear();  // closes the other children's pidfds and status pipes
            ::close(got[1]);
            ::sigaction(SIGINT, &sigint_at_start, nullptr);
            ::pthread_sigmask(SIG_SETMASK, &mask_at_start, nullptr);
            std::vector<int> args(got.begin() + 2, got.end());
            ::_exit(run_child_payload(got[0], args, ::getppid()));
        }
        ::pthread_sigmask(SIG_SETMASK, &mask_at_start, nullptr);
        std::int64_t reply = pid > 0 ? pid : -static_cast<std::int64_t>(fork_error);  // the client names the cause
        (void)!::write(got[1], &reply, sizeof reply);
        if (pid > 0)
            children.emplace(pid, child{pidfd_open(pid), unique_fd(got[1])});
        else
            ::close(got[1]);
        ::close(got[0]);
        for (std::size_t i = 2; i < got.size(); ++i) ::close(got[i]);
    }
}

/// In a fork server started by exec: serve forever. Elsewhere: return at once.
inline void forkserver_main_if_requested() {
    const char* v = std::getenv(forkserver_env);
    if (!v) return;
    auto n = parse_env_numbers(v);
    ::unsetenv(forkserver_env);
    if (n.size() < 3) ::_exit(1);
    forkserver_main(static_cast<int>(n[0]), static_cast<pid_t>(n[2]));
}

}  // namespace multiprocessing::detail
