// Who is waiting, and whether a process that holds something is still alive: the identity of
// the calling thread (pid, tid, kept across fork), and the checks a waiter makes on the process
// it waits for. A Lock's owner is a pid (process_dead, posix.hpp: ended, zombie included); a
// Barrier's party is a (pid, start time) pair read from /proc, so that a pid reused by a later
// process is not taken for it, and a process counts as gone from the moment kill(2) returns for
// a SIGKILL (see barrier_party_gone).
#pragma once

#include "platform.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>

#include "posix.hpp"

namespace multiprocessing::detail {

/// This thread's (pid, tid), cached; refreshed in a forked child.
struct thread_identity {
    std::uint32_t pid;
    std::uint32_t tid;
};

/// Counts the forks this process came out of (an atfork handler bumps it in the child): what is
/// cached per process is refreshed when it moves.
inline std::atomic<unsigned>& fork_generation() noexcept {
    static std::atomic<unsigned> g{0};
    return g;
}

/// The calling thread's (pid, tid).
inline thread_identity self_identity() noexcept {
    static const bool registered = [] {
        ::pthread_atfork(nullptr, nullptr, [] { fork_generation().fetch_add(1, std::memory_order_relaxed); });
        return true;
    }();
    (void)registered;
    thread_local unsigned generation = ~0u;
    thread_local thread_identity id{};
    unsigned g = fork_generation().load(std::memory_order_relaxed);
    if (generation != g) {
        id.pid = static_cast<std::uint32_t>(::getpid());
        id.tid = static_cast<std::uint32_t>(::syscall(SYS_gettid));
        generation = g;
    }
    return id;
}

/// What /proc/<pid>/stat (or /proc/<pid>/task/<tid>/stat) says of a process (or thread).
struct proc_stat {
    char state = 0;             // R, S, D, Z (zombie), X (dead), ...
    std::uint64_t flags = 0;    // the kernel's PF_* flags (field 9)
    std::uint64_t start = 0;    // start time, clock ticks since boot (field 22)
    std::uint64_t pending = 0;  // signals pending for this thread, the main one for a process (field 31)

    /// This thread is ending: it has exited (a zombie), is exiting (PF_EXITING, set when
    /// do_exit starts), was ended by a signal (PF_SIGNALED), or has a SIGKILL pending, which
    /// the kernel puts in every thread of a process that a fatal signal ends as kill(2) is
    /// called. A thread that has just taken its SIGKILL out of this set but not yet set a flag
    /// looks alive here for a few instructions: kill_pending() covers that gap.
    [[nodiscard]] bool ending() const noexcept {
        constexpr std::uint64_t pf_exiting = 0x4;     // include/linux/sched.h, unchanged since 2.6
        constexpr std::uint64_t pf_signaled = 0x400;  // likewise
        return state == 'Z' || state == 'X' || state == 'x' || (flags & (pf_exiting | pf_signaled)) != 0 ||
               (pending & (std::uint64_t{1} << (SIGKILL - 1))) != 0;
    }
};

/// Reads a small file of /proc into buf (size > 0) as a C string; false if it cannot be opened.
inline bool read_proc_file(const char* path, char* buf, std::size_t size) noexcept {
    unique_fd fd(::open(path, O_RDONLY | O_CLOEXEC));
    if (!fd) return false;
    std::size_t n = 0;
    while (n < size - 1) {
        ssize_t r = ::read(fd.get(), buf + n, size - 1 - n);
        if (r > 0)
            n += static_cast<std::size_t>(r);
        else if (r == 0 || errno != EINTR)
            break;
    }
    buf[n] = '\0';
    return true;
}

/// Reads a stat file of /proc; empty if it cannot (no such process, hidden, or no /proc).
inline std::optional<proc_stat> read_proc_stat(const char* path) noexcept {
    char buf[1024];
    if (!read_proc_file(path, buf, sizeof buf)) return std::nullopt;
    const char* p = std::strrchr(buf, ')');  // the end of the name, which may hold ") "
    if (!p) return std::nullopt;
    ++p;
    proc_stat st;
    for (int field = 3; field <= 31; ++field) {
        while (*p == ' ') ++p;
        if (*p == '\0') return std::nullopt;
        if (field == 3) st.state = *p;
        if (field == 9) st.flags = std::strtoull(p, nullptr, 10);
        if (field == 22) st.start = std::strtoull(p, nullptr, 10);
        if (field == 31) st.pending = std::strtoull(p, nullptr, 10);
        while (*p != '\0' && *p != ' ') ++p;
    }
    return st;
}

inline std::optional<proc_stat> read_proc_stat(std::uint32_t pid) noexcept {
    char path[32];
    std::snprintf(path, sizeof path, "/proc/%u/stat", pid);
    return read_proc_stat(path);
}

/// True when a SIGKILL sent to the whole process `pid` (kill(2), the OOM killer) is pending in
/// its shared set (ShdPnd of /proc/<pid>/status). The kernel never takes it out of that set
/// while the process lives on as a zombie, so unlike a thread's own set it says "dying" without
/// a gap from the moment kill(2) returns until the process is reaped.
inline bool kill_pending(std::uint32_t pid) noexcept {
    char path[32];
    std::snprintf(path, sizeof path, "/proc/%u/status", pid);
    char buf[4096];
    if (!read_proc_file(path, buf, sizeof buf)) return false;
    const char* line = std::strstr(buf, "\nShdPnd:");
    if (!line) return false;
    const std::uint64_t set = std::strtoull(line + 9, nullptr, 16);
    return (set & (std::uint64_t{1} << (SIGKILL - 1))) != 0;
}

/// True when every thread of process `pid` is ending (or none is left): the process is ending.
inline bool all_threads_ending(std::uint32_t pid) noexcept {
    char dir_path[40];
    std::snprintf(dir_path, sizeof dir_path, "/proc/%u/task", pid);
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(dir_path), &::closedir);
    if (!dir) return process_dead(pid);
    while (const dirent* e = ::readdir(dir.get())) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[80];
        std::snprintf(path, sizeof path, "/proc/%u/task/%.20s/stat", pid, e->d_name);
        auto st = read_proc_stat(path);
        if (st && !st->ending()) return false;  // a thread that is not ending: the process lives
    }
    return true;
}

/// A Barrier party's identity: the calling process's (pid, start time). The start time is read
/// once per process (again after a fork).
struct barrier_party {
    std::uint32_t pid;
    std::uint64_t start;
};
[[nodiscard]] inline barrier_party barrier_party_self() noexcept {
    const std::uint32_t pid = self_identity().pid;  // also registers the fork counter
    thread_local unsigned generation = ~0u;
    thread_local std::uint64_t start = 0;
    unsigned g = fork_generation().load(std::memory_order_relaxed);
    if (generation != g) {
        int saved = errno;
        auto st = read_proc_stat(pid);
        start = st ? st->start : 0;
        errno = saved;
        generation = g;
    }
    return {pid, start};
}

/// True when the process recorded as (pid, start) has ended or is ending: gone from /proc, its
/// pid now another process's (another start time), or every thread of it ending (see
/// proc_stat::ending: from the moment kill(2) returns for a fatal signal, before the process has
/// run again). Threads are looked at one by one only when the main thread is ending, which it
/// may do alone (pthread_exit) while the process lives on.
[[nodiscard]] inline bool barrier_party_gone(std::uint32_t pid, std::uint64_t start) noexcept {
    int saved = errno;
    bool gone = false;
    auto st = read_proc_stat(pid);
    if (!st)
        gone = process_dead(pid);  // no /proc, or hidden from us: ask the pid itself
    else if (start != 0 && st->start != start)
        gone = true;  // the pid was reused
    else if (kill_pending(pid))
        gone = true;  // SIGKILLed: no thread of it runs user code again
    else if (st->ending())
        gone = process_dead(pid) || all_threads_ending(pid);
    errno = saved;
    return gone;
}

}  // namespace multiprocessing::detail
