// The library's logger (Python: multiprocessing.get_logger, log_to_stderr in util.py): off by
// default; log_to_stderr() prints its records, and the library's own, as
// "[LEVEL/ProcessName] message", one line per write so that processes never mix their lines.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "detail/log_core.hpp"
#include "process.hpp"  // current_process(), whose name each record carries

namespace multiprocessing {

/// A handle to this process's one logger (Python: the logger named 'multiprocessing'); every
/// copy is the same logger. Records at or above its level go to its handlers; with none, those
/// at WARNING and above go to stderr bare, as Python's logging.lastResort does.
///
///     auto log = mp::log_to_stderr(mp::LogLevel::info);
///     log.warning("doomed");          // [WARNING/MainProcess] doomed
///     log.info("worker ", n, " done"); // parts are joined as std::ostream prints them
class Logger {
public:
    /// "multiprocessing", as Python's logger name.
    [[nodiscard]] std::string_view name() const noexcept { return "multiprocessing"; }
    /// Sets the level below which records are dropped (Python: logger.setLevel).
    void set_level(LogLevel level) noexcept { detail::log_state::get().set_level(level); }
    /// The level set, LogLevel::notset if none (Python: logger.level).
    [[nodiscard]] LogLevel level() const noexcept { return detail::log_state::get().level(); }
    /// The level in force: the one set, or WARNING, the root logger's (Python: getEffectiveLevel).
    [[nodiscard]] LogLevel effective_level() const noexcept { return detail::log_state::get().effective_level(); }
    /// True when a record at `level` would be output (Python: isEnabledFor).
    [[nodiscard]] bool is_enabled_for(LogLevel level) const noexcept { return detail::log_state::get().enabled_for(level); }

    /// Logs one record made of `parts` joined as std::ostream prints them (Python: logger.log).
    template <class... A>
    void log(LogLevel level, const A&... parts) const {
        auto& s = detail::log_state::get();
        if (!s.enabled_for(level)) return;
        const std::string process_name = detail::current_state()->name;
        s.emit(level, process_name, detail::log_message(parts...));
    }
    /// At SUBDEBUG (5), below DEBUG (Python: multiprocessing.util.sub_debug).
    template <class... A>
    void subdebug(const A&... parts) const { log(LogLevel::subdebug, parts...); }
    /// At DEBUG (Python: logger.debug).
    template <class... A>
    void debug(const A&... parts) const { log(LogLevel::debug, parts...); }
    /// At INFO (Python: logger.info).
    template <class... A>
    void info(const A&... parts) const { log(LogLevel::info, parts...); }
    /// At SUBWARNING (25), between INFO and WARNING (Python: multiprocessing.util.sub_warning).
    template <class... A>
    void subwarning(const A&... parts) const { log(LogLevel::subwarning, parts...); }
    /// At WARNING (Python: logger.warning).
    template <class... A>
    void warning(const A&... parts) const { log(LogLevel::warning, parts...); }
    /// At ERROR (Python: logger.error).
    template <class... A>
    void error(const A&... parts) const { log(LogLevel::error, parts...); }
    /// At CRITICAL (Python: logger.critical).
    template <class... A>
    void critical(const A&... parts) const { log(LogLevel::critical, parts...); }

    /// Adds a handler called with every record that passes the level (Python: addHandler).
    /// Handlers are functions of this process: a forked child inherits them, a spawn or
    /// forkserver child does not (it gets the level and log_to_stderr's handler, as in Python).
    void add_handler(LogHandler handler) const { detail::log_state::get().add_handler(std::move(handler)); }
    /// Removes every handler added by add_handler and the stderr handler of log_to_stderr.
    void clear_handlers() const {
        detail::log_state::get().clear_handlers();
        detail::log_state::get().set_to_stderr(false);
    }
    /// True when some handler (or log_to_stderr's) is installed (Python: hasHandlers, without
    /// the root logger's).
    [[nodiscard]] bool has_handlers() const {
        auto& s = detail::log_state::get();
        return s.to_stderr() || s.handler_count() != 0;
    }
};

/// The library's logger (Python: multiprocessing.get_logger()). Off until it is given a handler
/// or log_to_stderr() is called.
[[nodiscard]] inline Logger get_logger() noexcept { return Logger{}; }

/// Makes the logger print its records to stderr as "[LEVEL/ProcessName] message" and sets its
/// level if one is given (Python: multiprocessing.log_to_stderr(level)). Children started
/// afterwards log the same way under every start method. Calling it again adds no second
/// handler (Python's would print each line twice). The process logs its shutdown at exit.
inline Logger log_to_stderr(std::optional<LogLevel> level = std::nullopt) {
    auto& s = detail::log_state::get();
    if (level) s.set_level(*level);
    s.set_to_stderr(true);
    detail::register_exit_handler();  // "process shutting down", as Python's util._exit_function
    return Logger{};
}

}  // namespace multiprocessing
