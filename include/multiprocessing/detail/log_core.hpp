// The process-wide logger's state and its one output path, below everything that logs (the
// process registry, the launchers, the pool). The public face is logging.hpp.
#pragma once

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <functional>
#include <mutex>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "process_wide.hpp"

namespace multiprocessing {

/// A logging level, as Python's logging levels plus multiprocessing's SUBDEBUG and SUBWARNING.
/// Other values (static_cast<LogLevel>(15)) work as Python's integer levels do.
enum class LogLevel : int {
    notset = 0,
    subdebug = 5,
    debug = 10,
    info = 20,
    subwarning = 25,
    warning = 30,
    error = 40,
    critical = 50,
};

/// Python's logging.getLevelName: "DEBUG", "SUBWARNING", ..., or "Level N" for another number.
[[nodiscard]] inline std::string level_name(LogLevel level) {
    switch (level) {
        case LogLevel::notset: return "NOTSET";
        case LogLevel::subdebug: return "SUBDEBUG";
        case LogLevel::debug: return "DEBUG";
        case LogLevel::info: return "INFO";
        case LogLevel::subwarning: return "SUBWARNING";
        case LogLevel::warning: return "WARNING";
        case LogLevel::error: return "ERROR";
        case LogLevel::critical: return "CRITICAL";
    }
    return "Level " + std::to_string(static_cast<int>(level));
}

/// One message as a handler receives it (Python: logging.LogRecord, the fields it formats).
struct LogRecord {
    LogLevel level;                 // Python: record.levelno
    std::string_view levelname;     // "INFO"
    std::string_view process_name;  // Python: record.processName, current_process().name
    pid_t process;                  // Python: record.process
    std::string_view message;       // Python: record.getMessage()
};

/// What a handler is: called once per record that passes the logger's level, in the thread
/// that logged, one call at a time in a process.
using LogHandler = std::function<void(const LogRecord&)>;

namespace detail {

/// The logger of this process. Never destroyed: the library logs from atexit handlers and from
/// other threads while static objects are being destroyed.
class log_state {
public:
    /// One per process however the headers are compiled in (detail/process_wide.hpp).
    static log_state& get() noexcept {
        static log_state& self =
            process_wide<log_state>(process_wide_slot::logger, [] { return new log_state(); });
        return self;
    }

    [[nodiscard]] LogLevel level() const noexcept { return static_cast<LogLevel>(level_.load(std::memory_order_relaxed)); }
    void set_level(LogLevel l) noexcept { level_.store(static_cast<int>(l), std::memory_order_relaxed); }
    /// Python's getEffectiveLevel for a logger whose parent is the root logger at WARNING.
    [[nodiscard]] LogLevel effective_level() const noexcept {
        int l = level_.load(std::memory_order_relaxed);
        return static_cast<LogLevel>(l != 0 ? l : static_cast<int>(LogLevel::warning));
    }
    [[nodiscard]] bool to_stderr() const noexcept { return to_stderr_.load(std::memory_order_relaxed); }
    void set_to_stderr(bool on) noexcept { to_stderr_.store(on, std::memory_order_relaxed); }

    /// True when a record at `level` would reach some output: the one check the library's
    /// own calls pay when logging is off (one relaxed load and a compare).
    [[nodiscard]] bool enabled_for(LogLevel level) const noexcept {
        return static_cast<int>(level) >= static_cast<int>(effective_level()) &&
               (to_stderr() || has_handlers_.load(std::memory_order_relaxed) ||
                static_cast<int>(level) >= static_cast<int>(LogLevel::warning));
    }

    void add_handler(LogHandler h) {
        not_from_a_handler();
        std::lock_guard g(mutex_);
        handlers_.push_back(std::move(h));
        has_handlers_.store(true, std::memory_order_relaxed);
    }
    void clear_handlers() {
        not_from_a_handler();
        std::lock_guard g(mutex_);
        handlers_.clear();
        has_handlers_.store(false, std::memory_order_relaxed);
    }
    [[nodiscard]] std::size_t handler_count() {
        std::unique_lock g(mutex_, std::defer_lock);
        if (depth() == 0) g.lock();
        return handlers_.size();
    }

    /// Sends one record to the stderr handler and the other handlers. A record that no handler
    /// takes goes to stderr bare at WARNING and above, as Python's logging.lastResort does.
    void emit(LogLevel level, std::string_view process_name, std::string_view message) {
        const std::string name = level_name(level);
        const LogRecord record{level, name, process_name, ::getpid(), message};
        // A handler may log in turn: the thread already inside emit() does not lock again.
        // (Not a recursive mutex: a forked child could not unlock one its parent's thread held.)
        std::unique_lock g(mutex_, std::defer_lock);
        if (depth() == 0) g.lock();
        ++depth();
        struct leave {
            ~leave() { --depth(); }
        } on_exit;
        bool handled = false;
        if (to_stderr()) {
            // '[%(levelname)s/%(processName)s] %(message)s', as Python's DEFAULT_LOGGING_FORMAT
            std::string line;
            line.reserve(name.size() + process_name.size() + message.size() + 5);
            line.append("[").append(name).append("/").append(process_name).append("] ").append(message).append("\n");
            write_stderr(line);
            handled = true;
        }
        for (auto& h : handlers_) {
            h(record);
            handled = true;
        }
        if (!handled && static_cast<int>(level) >= static_cast<int>(LogLevel::warning))
            write_stderr(std::string(message) + "\n");
    }

private:
    log_state() noexcept {
        // A fork while another thread is inside emit() would leave the child's copy of the mutex
        // locked for good: the fork waits for it instead.
        ::pthread_atfork([] { get().mutex_.lock(); }, [] { get().mutex_.unlock(); },
                         [] { get().mutex_.unlock(); });
    }

    /// How deep this thread is in emit(): a handler that logs does not lock again.
    static int& depth() noexcept {
        thread_local int d = 0;
        return d;
    }

    static void not_from_a_handler() {
        if (depth() != 0)
            throw std::logic_error(
                "multiprocessing: a log handler cannot add or remove handlers while it handles a record; "
                "do it outside the handler");
    }

    /// One write(2) per line: lines of processes sharing a pipe or an O_APPEND file never mix
    /// (a pipe write of at most PIPE_BUF bytes is atomic).
    static void write_stderr(const std::string& line) noexcept {
        std::size_t done = 0;
        while (done < line.size()) {
            ssize_t r = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return;  // stderr closed or full: the record is dropped, as Python's handleError
            done += static_cast<std::size_t>(r);
        }
    }

    std::atomic<int> level_{0};
    std::atomic<bool> to_stderr_{false};
    std::atomic<bool> has_handlers_{false};
    std::mutex mutex_;
    std::vector<LogHandler> handlers_;
};

/// Joins values as `std::ostream <<` prints them: the message of one record.
template <class... A>
[[nodiscard]] std::string log_message(const A&... parts) {
    if constexpr (sizeof...(A) == 1 && (std::is_convertible_v<const A&, std::string_view> && ...)) {
        return std::string(std::string_view(parts...));
    } else {
        std::ostringstream out;
        (out << ... << parts);
        return std::move(out).str();
    }
}

}  // namespace detail
}  // namespace multiprocessing
