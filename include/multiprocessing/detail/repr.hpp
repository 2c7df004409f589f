// What the operator<< of the public types share to print what CPython's repr() prints: a
// string quoted as Python's repr quotes it, a signal's name for an exit code, the owner of a lock
// as Python names it, and an object's "address".
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <iterator>
#include <ostream>
#include <string>
#include <string_view>

namespace multiprocessing::detail {

/// Writes `s` as Python's repr() of a str: single quotes, or double quotes when it holds a single
/// quote and no double quote; backslash, the quote and control characters escaped.
inline void write_py_repr(std::ostream& os, std::string_view s) {
    const bool has_single = s.find('\'') != std::string_view::npos;
    const char quote = has_single && s.find('"') == std::string_view::npos ? '"' : '\'';
    os << quote;
    for (char c : s) {
        switch (c) {
            case '\\': os << "\\\\"; break;
            case '\n': os << "\\n"; break;
            case '\r': os << "\\r"; break;
            case '\t': os << "\\t"; break;
            default:
                if (c == quote) {
                    os << '\\' << c;
                } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
                    static constexpr char hex[] = "0123456789abcdef";
                    const auto u = static_cast<unsigned char>(c);
                    os << "\\x" << hex[u >> 4] << hex[u & 0xf];
                } else {
                    os << c;
                }
        }
    }
    os << quote;
}

/// Writes an exit code as Python's Process repr does: -N for signal N is "-SIGNAME".
inline void write_exitcode(std::ostream& os, int code) {
    if (code < 0) {
        // sigabbrev_np is glibc 2.32+; the names themselves are Linux's, fixed.
        static constexpr const char* names[] = {
            nullptr,   "SIGHUP",  "SIGINT",  "SIGQUIT", "SIGILL",    "SIGTRAP", "SIGABRT", "SIGBUS",
            "SIGFPE",  "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2",   "SIGPIPE", "SIGALRM", "SIGTERM",
            "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG",
            "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS"};
        const int sig = -code;
        if (sig < static_cast<int>(std::size(names)) && names[sig]) {
            os << '-' << names[sig];
            return;
        }
    }
    os << code;
}

/// Writes "0x..." for an object's identity: the arena offset of a shared object (the same in
/// every process, where Python prints id(), an address of one process), or an address.
inline void write_address(std::ostream& os, std::uintptr_t a) {
    const auto flags = os.flags();
    os << "0x" << std::hex << a;
    os.flags(flags);
}

/// The calling thread's kernel id; equal to the pid in the main thread.
[[nodiscard]] inline pid_t repr_thread_id() noexcept { return static_cast<pid_t>(::syscall(SYS_gettid)); }

/// Python's name for a lock's owner when the caller holds it: the process's name, and
/// "|Thread-<tid>" outside the main thread (Python adds the thread's name; C++ threads have
/// none, so the kernel thread id stands for it).
inline void write_lock_owner(std::ostream& os, const std::string& process_name) {
    os << process_name;
    if (const pid_t tid = repr_thread_id(); tid != ::getpid()) os << "|Thread-" << tid;
}

}  // namespace multiprocessing::detail
