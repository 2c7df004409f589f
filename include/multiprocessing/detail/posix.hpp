// RAII file descriptors, errno -> std::system_error, EINTR-safe waits with deadlines.
#pragma once

#include "platform.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace multiprocessing::detail {

/// What cannot happen, said as an assertion that stays in release builds: a bug in this
/// library, never a user's error, so the process stops with the reason instead of going on wrong.
[[noreturn]] inline void assert_unreachable(const char* what) noexcept {
    std::fprintf(stderr, "multiprocessing: internal error: %s\n", what);
    std::abort();
}

/// Throws std::system_error for the current errno, naming the failed call.
[[noreturn]] inline void throw_errno(const char* call) {
    throw std::system_error(errno, std::generic_category(), std::string("multiprocessing: ") + call);
}

/// The symbolic name of an errno value ("EAGAIN"), so that a message names its cause in the
/// words the manual pages use.
[[nodiscard]] inline std::string errno_name(int e) {
    switch (e) {
        case EPERM: return "EPERM";
        case ENOENT: return "ENOENT";
        case ESRCH: return "ESRCH";
        case EINTR: return "EINTR";
        case EIO: return "EIO";
        case E2BIG: return "E2BIG";
        case ENOEXEC: return "ENOEXEC";
        case EBADF: return "EBADF";
        case ECHILD: return "ECHILD";
        case EAGAIN: return "EAGAIN";
        case ENOMEM: return "ENOMEM";
        case EACCES: return "EACCES";
        case EFAULT: return "EFAULT";
        case EINVAL: return "EINVAL";
        case ENFILE: return "ENFILE";
        case EMFILE: return "EMFILE";
        case ETXTBSY: return "ETXTBSY";
        case ENOSPC: return "ENOSPC";
        case EPIPE: return "EPIPE";
        case ENOSYS: return "ENOSYS";
        case ETIMEDOUT: return "ETIMEDOUT";
        default: return "errno " + std::to_string(e);
    }
}

/// Owns one file descriptor; closes it exactly once.
class unique_fd {
public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] explicit operator bool() const noexcept { return fd_ >= 0; }
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        // close() must not be retried on EINTR on Linux: the fd is gone either way.
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

using clock = std::chrono::steady_clock;

/// An absolute point to stop waiting at, or none (wait forever).
class deadline {
public:
    deadline() noexcept = default;  // forever
    template <class Rep, class Period>
    explicit deadline(std::chrono::duration<Rep, Period> timeout)
        : at_(clock::now() + std::chrono::duration_cast<clock::duration>(
                                 timeout < timeout.zero() ? timeout.zero() : timeout)),
          forever_(false) {}
    static deadline from(const std::optional<clock::duration>& t) {
        return t ? deadline(*t) : deadline();
    }
    /// The deadline at time point `t`.
    [[nodiscard]] static deadline at(clock::time_point t) noexcept {
        deadline d;
        d.at_ = t;
        d.forever_ = false;
        return d;
    }
    /// Whichever of this and `other` comes first.
    [[nodiscard]] deadline earlier(const deadline& other) const noexcept {
        if (forever_) return other;
        if (other.forever_) return *this;
        return at_ <= other.at_ ? *this : other;
    }
    [[nodiscard]] bool forever() const noexcept { return forever_; }
    /// The time point (meaningless when forever()).
    [[nodiscard]] clock::time_point when() const noexcept { return at_; }
    [[nodiscard]] bool expired() const noexcept { return !forever_ && clock::now() >= at_; }
    /// Time left, clamped at zero; empty when waiting forever.
    [[nodiscard]] std::optional<clock::duration> remaining() const noexcept {
        if (forever_) return std::nullopt;
        auto left = at_ - clock::now();
        return left < clock::duration::zero() ? clock::duration::zero() : left;
    }
    [[nodiscard]] std::optional<timespec> remaining_timespec() const noexcept {
        auto left = remaining();
        if (!left) return std::nullopt;
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*left).count();
        return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    }

private:
    // Not an optional<time_point>: GCC 12 at -O3 warns (-Wmaybe-uninitialized) about the
    // disengaged optional's payload when an acquire-forever is inlined into a loop.
    clock::time_point at_{};
    bool forever_ = true;
};

/// ppoll() that retries on EINTR with the time left; returns the number of ready fds (0 = timeout).
inline int poll_until(pollfd* fds, nfds_t n, const deadline& until) {
    for (;;) {
        auto ts = until.remaining_timespec();
        int r = ::ppoll(fds, n, ts ? &*ts : nullptr, nullptr);
        if (r >= 0) return r;
        if (errno != EINTR) throw_errno("ppoll");
    }
}

/// True when fd is readable (or hung up) before the deadline.
inline bool wait_readable(int fd, const deadline& until) {
    pollfd p{fd, POLLIN, 0};
    return poll_until(&p, 1, until) > 0;
}

/// pidfd_open(2): a pollable handle that becomes readable when the process exits.
inline unique_fd pidfd_open(pid_t pid) noexcept {
#ifdef SYS_pidfd_open
    return unique_fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
#else
    (void)pid;
    return unique_fd();
#endif
}

/// True when process `pid` has ended (a zombie too: a pidfd of an exited process is readable).
/// A pid reused by another process reads as alive: what the dead one held then stays with it,
/// never the other way round.
[[nodiscard]] inline bool process_dead(std::uint32_t pid) noexcept {
    if (pid == 0 || pid > static_cast<std::uint32_t>(INT32_MAX)) return false;
    int saved = errno;
    bool dead = false;
    unique_fd fd = pidfd_open(static_cast<pid_t>(pid));
    if (fd) {
        pollfd p{fd.get(), POLLIN, 0};
        dead = ::poll(&p, 1, 0) > 0;
    } else {
        dead = errno == ESRCH || (::kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH);
    }
    errno = saved;
    return dead;
}

/// `n` bytes from the kernel's random source (getrandom(2), Python's os.urandom): authentication
/// keys and challenges.
[[nodiscard]] inline std::string random_bytes(std::size_t n) {
    std::string out(n, '\0');
    for (std::size_t done = 0; done < n;) {
        ssize_t r = ::getrandom(out.data() + done, n - done, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            throw_errno("getrandom");
        }
        done += static_cast<std::size_t>(r);
    }
    return out;
}

/// Sends `n` bytes in one sendmsg(2) with descriptors attached (SCM_RIGHTS): the fork server's
/// requests, a manager's channel.
inline void send_with_fds(int sock, const void* data, std::size_t n, const std::vector<int>& fds) {
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    iovec iov{const_cast<void*>(data), n};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (!fds.empty()) {
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    for (;;) {
        if (::sendmsg(sock, &msg, MSG_NOSIGNAL) >= 0) return;
        if (errno != EINTR) throw_errno("sendmsg(SCM_RIGHTS)");
    }
}

/// Receives up to `n` bytes and the descriptors sent with them (owned by the caller, CLOEXEC);
/// 0 bytes means the peer is gone.
inline ssize_t recv_with_fds(int sock, void* data, std::size_t n, std::vector<int>& fds,
                             std::size_t max_fds = 250) {
    std::vector<char> control(CMSG_SPACE(sizeof(int) * max_fds));
    iovec iov{data, n};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    ssize_t r;
    do r = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    if (r < 0) return r;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        std::vector<int> got(count);
        std::memcpy(got.data(), CMSG_DATA(c), count * sizeof(int));
        fds.insert(fds.end(), got.begin(), got.end());
    }
    return r;
}

}  // namespace multiprocessing::detail
