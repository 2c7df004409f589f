// The spawn start method (Python: popen_spawn_posix.py + spawn.py): a fresh exec of this binary
// (/proc/self/exe) that finds its work through inherited file descriptors and runs it from
// mp::freeze_support(). Also the child-side code that spawn and forkserver share.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "arena.hpp"
#include "bootstrap.hpp"
#include "popen_fork.hpp"
#include "posix.hpp"
#include "process_state.hpp"
#include "shm.hpp"
#include "task.hpp"

extern char** environ;

namespace multiprocessing::detail {

/// Set in a spawned child's environment: "<first fd>:<fd count>" of what the parent passed.
inline constexpr const char* spawn_env = "MULTIPROCESSING_CPP_SPAWN";
/// Set in a fork server's environment: "<control fd>:<parent pid>".
inline constexpr const char* forkserver_env = "MULTIPROCESSING_CPP_FORKSERVER";

/// How long start() waits for a fresh process to reach mp::freeze_support().
inline constexpr auto bootstrap_timeout = std::chrono::seconds(60);

/// Raises a clear error if this process was started by spawn or forkserver and its main did
/// not call mp::freeze_support() first: starting children from there would recurse.
inline void check_bootstrapped() {
    if (std::getenv(spawn_env) || std::getenv(forkserver_env))
        throw ProcessError(
            "multiprocessing: this process was started by the spawn or forkserver start method but "
            "its main() has not called mp::freeze_support(); put `mp::freeze_support();` first in "
            "main, before anything else");
}

/// Who the child is and what it runs, pickled into a memfd (nothing on disk, no size limit).
struct child_payload {
    unique_fd memfd;
    std::vector<int> fds;  // descriptors the pickled arguments refer to (not owned)
};

inline child_payload make_child_payload(const ProcessState& state) {
    const child_identity who = identity_of(state);
    const Task& task = *state.target;
    child_payload p;
    std::string bytes;
    PickleWriter w(bytes, &p.fds);
    // The authkey travels in the payload (a memfd only this child gets), never on a command line.
    w(who.name, who.identity, who.daemon, who.parent_name, who.parent_pid, who.authkey);
    // The logger's settings, as Python's spawn.get_preparation_data passes log_to_stderr and
    // log_level (a forked child inherits them; handlers, being functions, stay behind).
    auto& logger = log_state::get();
    w(logger.to_stderr(), static_cast<int>(logger.level()));
    // The child joins the parent's arena before anything else, so a tree has one arena even
    // if the child creates shared objects without having received any.
    arena& shared = arena::instance();
    w.write_raw(shared.id());
    w.write_raw(w.add_fd(shared.fd()));
    // The shared memory tracker of this tree, if one runs: the child's segments are tracked by
    // it, and it lives as long as the child does (Python's spawn passes resource_tracker's fd).
    const int tracker = shm_tracker_fd();
    w.dump(tracker >= 0);
    if (tracker >= 0) w.write_raw(w.add_fd(tracker));
    // The parent keeps the target (and the shared objects in it) until the child has ended, so
    // the child takes references of its own as it unpickles them: a child killed before that
    // leaves nothing behind (a reference carried by the payload would be lost with it).
    w.set_sender_holds_objects(true);
    task.pickle(w);  // raises PicklingError, naming what cannot cross exec, before anything starts
    p.memfd = unique_fd(::memfd_create("multiprocessing-child", MFD_CLOEXEC));
    if (!p.memfd) throw_errno("memfd_create");
    for (std::size_t done = 0; done < bytes.size();) {
        ssize_t r = ::write(p.memfd.get(), bytes.data() + done, bytes.size() - done);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) throw_errno("write(memfd)");
        done += static_cast<std::size_t>(r);
    }
    return p;
}

/// The child's side, after spawn's exec or the fork server's fork: reads the payload, becomes
/// the child, runs the target; returns the exit code. `os_parent` is the process that really
/// started us (the fork server for forkserver children).
inline int run_child_payload(int payload_fd, const std::vector<int>& fds, pid_t os_parent) noexcept {
    try {
        struct stat st {};
        if (::fstat(payload_fd, &st) != 0) throw_errno("fstat(payload)");
        std::string bytes(static_cast<std::size_t>(st.st_size), '\0');
        for (std::size_t done = 0; done < bytes.size();) {
            ssize_t r = ::pread(payload_fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) throw_errno("pread(payload)");
            done += static_cast<std::size_t>(r);
        }
        ::close(payload_fd);
        PickleReader r(bytes, &fds);
        child_identity who;
        r(who.name, who.identity, who.daemon, who.parent_name, who.parent_pid, who.authkey);
        bool log_to_stderr = false;
        int log_level = 0;
        r(log_to_stderr, log_level);
        log_state::get().set_to_stderr(log_to_stderr);
        log_state::get().set_level(static_cast<LogLevel>(log_level));
        auto arena_id = r.read_raw<std::uint64_t>();
        arena::adopt(r.fd(r.read_raw<std::uint32_t>()), arena_id);
        if (r.load<bool>()) shm_tracker_adopt(r.fd(r.read_raw<std::uint32_t>()));
        prepare_child_process(who, os_parent);
        child_view view = make_child_view(who);
        become_child(view);
        auto task = unpickle_task(r);
        return run_target(*task);
    } catch (...) {
        auto info = describe(std::current_exception());
        flush_std_streams();
        std::fprintf(stderr, "multiprocessing: a child could not start: %s: %s\n", info.type_name.c_str(),
                     info.message.c_str());
        return 1;
    }
}

/// The program's argv[0], for the child's command line (ps shows the same program). Read once:
/// spawning must not re-read files.
inline const std::string& program_argv0() {
    static const std::string arg0 = [] {
        // Plain read(2), not std::ifstream: <fstream> costs every program's compile.
        std::string a;
        unique_fd in(::open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC));
        char buf[512];
        while (in) {
            ssize_t n = ::read(in.get(), buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            const void* nul = std::memchr(buf, '\0', static_cast<std::size_t>(n));
            a.append(buf, nul ? static_cast<const char*>(nul) - buf : n);
            if (nul) break;
        }
        return a.empty() ? std::string("multiprocessing-child") : a;
    }();
    return arg0;
}

/// Starts /proc/self/exe with `fds` at consecutive descriptors (all others closed) and
/// `env_name`="<first fd>:<count>[:extra]" in its environment; returns its pid.
inline pid_t exec_self(const std::vector<int>& fds, const char* env_name, const std::string& extra = {}) {
    int base = 10;
    for (int fd : fds) base = std::max(base, fd + 1);  // targets never collide with sources
    posix_spawn_file_actions_t actions;
    if (::posix_spawn_file_actions_init(&actions) != 0) throw_errno("posix_spawn_file_actions_init");
    struct guard {
        posix_spawn_file_actions_t* a;
        ~guard() { ::posix_spawn_file_actions_destroy(a); }
    } g{&actions};
    for (std::size_t i = 0; i < fds.size(); ++i) {
        const int target = base + static_cast<int>(i);
        // EBADF here means `target` is at or above RLIMIT_NOFILE: unchecked, the child would start
        // without its descriptors and be taken for one that never reached mp::freeze_support().
        if (int err = ::posix_spawn_file_actions_adddup2(&actions, fds[i], target); err == EBADF) {
            rlimit limit{};
            ::getrlimit(RLIMIT_NOFILE, &limit);
            throw std::system_error(EMFILE, std::generic_category(),
                                    "multiprocessing: posix_spawn: the child's descriptor " + std::to_string(target) +
                                        " would be at or above the open-file limit (RLIMIT_NOFILE " +
                                        std::to_string(limit.rlim_cur) +
                                        "); raise it (ulimit -n) or close descriptors this process does not need");
        } else if (err != 0) {
            errno = err;
            throw_errno("posix_spawn_file_actions_adddup2");
        }
    }
    // EBADF: the start is at the limit, so no descriptor can be open from there on but those
    // opened before the limit was lowered (and close-on-exec ones go anyway).
    if (int err = ::posix_spawn_file_actions_addclosefrom_np(&actions, base + static_cast<int>(fds.size()));
        err != 0 && err != EBADF) {
        errno = err;
        throw_errno("posix_spawn_file_actions_addclosefrom_np");
    }

    std::string var = std::string(env_name) + "=" + std::to_string(base) + ":" + std::to_string(fds.size());
    if (!extra.empty()) var += ":" + extra;
    std::vector<char*> envp;
    for (char** e = environ; e && *e; ++e)
        if (std::strncmp(*e, env_name, std::strlen(env_name)) != 0) envp.push_back(*e);
    envp.push_back(var.data());
    envp.push_back(nullptr);
    std::string arg0 = program_argv0();  // a copy: argv is char* const*
    char* argv[] = {arg0.data(), nullptr};

    flush_std_streams();
    pid_t pid = 0;
    int err = ::posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv, envp.data());
    if (err != 0) {
        errno = err;
        throw_errno("posix_spawn(/proc/self/exe)");
    }
    return pid;
}

/// Parses "<a>:<b>[:<c>]" from an environment variable.
inline std::vector<long> parse_env_numbers(const char* v) {
    std::vector<long> out;
    while (v && *v) {
        char* end = nullptr;
        out.push_back(std::strtol(v, &end, 10));
        if (end == v) break;
        v = *end == ':' ? end + 1 : end;
    }
    return out;
}

/// A pipe whose ends are closed on exec: [read end, write end].
inline std::pair<unique_fd, unique_fd> make_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
    return {unique_fd(fds[0]), unique_fd(fds[1])};
}

/// Waits for the one byte a fresh process sends from mp::freeze_support(); false if the process
/// behind `sentinel` ends first or the bootstrap timeout passes.
inline bool reached_freeze_support(int fd, int sentinel) {
    pollfd p[2] = {{fd, POLLIN, 0}, {sentinel, POLLIN, 0}};
    char byte = 0;
    return poll_until(p, 2, deadline(bootstrap_timeout)) > 0 && (p[0].revents & POLLIN) &&
           ::read(fd, &byte, 1) == 1;
}

/// A fresh process of this program (`who`) did not reach mp::freeze_support(): ends it and
/// returns the error, which says how it ended (an exit code, a signal, or the timeout), since a
/// missing freeze_support() is only one of the reasons.
inline ProcessError bootstrap_failed(Popen& child, const std::string& who) {
    // Gone, or going: it closed its end of the pipe without the byte, or its sentinel fired.
    std::optional<int> ended = child.wait(deadline(std::chrono::seconds(1)));
    child.send_signal(SIGKILL);
    (void)child.wait(deadline());
    std::string how = !ended      ? "did not reach mp::freeze_support() within " +
                                        std::to_string(bootstrap_timeout.count()) + " s"
                      : *ended < 0 ? "was killed by signal " + std::to_string(-*ended) +
                                        " before it reached mp::freeze_support()"
                                   : "exited with code " + std::to_string(*ended) +
                                        " before it reached mp::freeze_support()";
    return ProcessError("multiprocessing: " + who + " (pid " + std::to_string(child.pid()) + ") " + how +
                        ". If main() does not call it first, put `mp::freeze_support();` first in main, so a "
                        "fresh process of this program runs its task there instead of running main; if it "
                        "does, the process failed before main (its standard error says why)");
}

/// A spawned child: started by exec, then our child like a forked one.
class PopenSpawn : public PopenFork {
public:
    explicit PopenSpawn(ProcessState& state) {
        child_payload payload = make_child_payload(state);
        auto [ack_r, ack_w] = make_pipe();
        std::vector<int> fds{payload.memfd.get(), ack_w.get()};
        fds.insert(fds.end(), payload.fds.begin(), payload.fds.end());
        adopt(exec_self(fds, spawn_env));
        ack_w.reset();
        // The child acknowledges from mp::freeze_support(); without it, say so instead of
        // letting a copy of the parent's main run on unnoticed.
        if (reached_freeze_support(ack_r.get(), sentinel_.get())) return;
        throw bootstrap_failed(*this, "the spawned child");
    }
};

/// In a spawned child: acknowledge, run the task, exit. Elsewhere: return at once.
inline void spawn_main_if_requested() {
    const char* v = std::getenv(spawn_env);
    if (!v) return;
    auto n = parse_env_numbers(v);
    ::unsetenv(spawn_env);
    if (n.size() < 2 || n[1] < 2) {
        std::fprintf(stderr, "multiprocessing: malformed %s; exiting\n", spawn_env);
        ::_exit(1);
    }
    int base = static_cast<int>(n[0]);
    std::vector<int> fds;
    for (long i = 2; i < n[1]; ++i) fds.push_back(base + static_cast<int>(i));
    for (int fd : fds) ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // never leak into the child's own children
    char one = 1;
    (void)!::write(base + 1, &one, 1);
    ::close(base + 1);
    int code = run_child_payload(base, fds, ::getppid());
    ::_exit(code);
}

}  // namespace multiprocessing::detail
