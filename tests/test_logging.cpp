// mp::get_logger / mp::log_to_stderr: the records Python's multiprocessing logs, in the format it
// prints, from every process of a session, under every start method.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "helpers.hpp"

extern char** environ;

namespace {

struct session_output {
    std::string err;     // everything the program wrote to stderr
    int status = -1;     // its wait status
    bool timed_out = false;
};

/// Runs tests/logging_session.cpp with stderr into a pipe, reading it as it comes (bounded).
session_output run_session(const std::string& method, const std::string& what) {
    session_output out;
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
    std::string prog = MP_LOGGING_SESSION;
    std::vector<char*> argv{prog.data(), const_cast<char*>(method.c_str()), const_cast<char*>(what.c_str()), nullptr};
    // A process group of its own: a timeout kills the program and every child it has.
    posix_spawnattr_t attr;
    ::posix_spawnattr_init(&attr);
    ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    ::posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, prog.c_str(), &actions, &attr, argv.data(), environ);
    ::posix_spawnattr_destroy(&attr);
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    REQUIRE(rc == 0);
    const auto until = std::chrono::steady_clock::now() + mp_test::bound;
    char buf[65536];
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            out.timed_out = true;
            ::kill(-pid, SIGKILL);
            break;
        }
        pollfd p{fds[0], POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n <= 0) break;  // every writer (the program and its children) has closed it
        out.err.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    ::waitpid(pid, &out.status, 0);
    return out;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

bool has(const std::vector<std::string>& lines, const std::string& line) {
    return std::find(lines.begin(), lines.end(), line) != lines.end();
}

std::size_t index_of(const std::vector<std::string>& lines, const std::string& line) {
    return static_cast<std::size_t>(std::find(lines.begin(), lines.end(), line) - lines.begin());
}

/// Lines whose text matches `pattern` (a regex over the whole line).
std::vector<std::string> matching(const std::vector<std::string>& lines, const std::string& pattern) {
    std::regex re(pattern);
    std::vector<std::string> found;
    for (auto& l : lines)
        if (std::regex_match(l, re)) found.push_back(l);
    return found;
}

std::string worker_prefix(const std::string& method) {
    return method == "fork" ? "ForkPoolWorker" : method == "spawn" ? "SpawnPoolWorker" : "ForkServerPoolWorker";
}

}  // namespace

TEST_CASE("log_to_stderr(DEBUG): the records of Python's session, from every process, in order",
          "[logging]") {
    const std::string method = GENERATE("fork", "spawn", "forkserver");
    INFO("start method: " << method);
    auto out = run_session(method, "session");
    INFO("stderr:\n" << out.err);
    REQUIRE_FALSE(out.timed_out);
    REQUIRE(WIFEXITED(out.status));
    CHECK(WEXITSTATUS(out.status) == 0);
    auto lines = lines_of(out.err);
    // Every line is one whole record.
    CHECK(matching(lines, R"(\[(SUBDEBUG|DEBUG|INFO|SUBWARNING|WARNING|ERROR|CRITICAL)/[A-Za-z]+(-[0-9]+)?\] .+)").size() ==
          lines.size());
    CHECK(has(lines, "[WARNING/MainProcess] doomed"));
    // The child Process: Python's _bootstrap and _exit_function, in their order.
    const std::vector<std::string> child{
        "[INFO/Process-1] child process calling self.run()",
        "[INFO/Process-1] hello from Process-1",
        "[INFO/Process-1] process shutting down",
        "[DEBUG/Process-1] running all \"atexit\" finalizers with priority >= 0",
        "[DEBUG/Process-1] running the remaining \"atexit\" finalizers",
        "[INFO/Process-1] process exiting with exitcode 0",
    };
    for (std::size_t i = 0; i < child.size(); ++i) {
        INFO(child[i]);
        REQUIRE(has(lines, child[i]));
        if (i > 0) CHECK(index_of(lines, child[i - 1]) < index_of(lines, child[i]));
    }
    CHECK(index_of(lines, "[WARNING/MainProcess] doomed") < index_of(lines, child[0]));
    // The pool: workers added, five tasks two per worker (so at least three workers), each
    // worker's own records, then close and join.
    CHECK(matching(lines, R"(\[DEBUG/MainProcess\] added worker)").size() >= 3);
    const std::string w = worker_prefix(method);
    CHECK(matching(lines, "\\[INFO/" + w + "-[0-9]+\\] child process calling self\\.run\\(\\)").size() >= 3);
    CHECK(matching(lines, "\\[DEBUG/" + w + "-[0-9]+\\] worker exiting after 2 tasks").size() == 2);
    CHECK(matching(lines, "\\[DEBUG/" + w + "-[0-9]+\\] worker exiting after [01] tasks").size() >= 1);
    CHECK(matching(lines, "\\[DEBUG/" + w + "-[0-9]+\\] worker got sentinel -- exiting").size() >= 1);
    CHECK(matching(lines, "\\[INFO/" + w + "-[0-9]+\\] process exiting with exitcode 0").size() >= 3);
    CHECK(matching(lines, R"(\[DEBUG/MainProcess\] cleaning up worker [0-9]+)").size() >= 2);
    REQUIRE(has(lines, "[DEBUG/MainProcess] closing pool"));
    REQUIRE(has(lines, "[DEBUG/MainProcess] joining pool"));
    CHECK(index_of(lines, "[DEBUG/MainProcess] closing pool") < index_of(lines, "[DEBUG/MainProcess] joining pool"));
    CHECK(has(lines, "[INFO/MainProcess] squares: 5"));
    // The main process logs its own shutdown at exit, last.
    REQUIRE_FALSE(lines.empty());
    CHECK(lines.back() == "[DEBUG/MainProcess] running the remaining \"atexit\" finalizers");
    CHECK(has(lines, "[INFO/MainProcess] process shutting down"));
}

TEST_CASE("log_to_stderr(INFO): a child takes the level too: no DEBUG record anywhere", "[logging]") {
    const std::string method = GENERATE("fork", "spawn", "forkserver");
    INFO("start method: " << method);
    auto out = run_session(method, "info");
    INFO("stderr:\n" << out.err);
    REQUIRE_FALSE(out.timed_out);
    CHECK(WIFEXITED(out.status));
    auto lines = lines_of(out.err);
    CHECK(matching(lines, R"(\[(DEBUG|SUBDEBUG)/.*)").empty());
    CHECK(has(lines, "[INFO/Process-1] hello from Process-1"));
    CHECK(has(lines, "[INFO/Process-1] process exiting with exitcode 0"));
    CHECK(matching(lines, "\\[INFO/" + worker_prefix(method) + "-[0-9]+\\] child process calling self\\.run\\(\\)").size() >= 3);
}

TEST_CASE("logging is off by default: only a WARNING reaches stderr, bare, as Python's lastResort", "[logging]") {
    const std::string method = GENERATE("fork", "spawn", "forkserver");
    INFO("start method: " << method);
    auto out = run_session(method, "off");
    REQUIRE_FALSE(out.timed_out);
    CHECK(WIFEXITED(out.status));
    CHECK(out.err == "bare warning\n");
}

TEST_CASE("lines of processes logging at once are never cut by one another", "[logging]") {
    const std::string method = GENERATE("fork", "spawn", "forkserver");
    INFO("start method: " << method);
    auto out = run_session(method, "storm");
    REQUIRE_FALSE(out.timed_out);
    CHECK(WIFEXITED(out.status));
    const std::regex re(R"(\[INFO/Process-([1-4])\] line ([0-9]+) of ([0-3]) x{80})");
    std::map<int, int> next;  // per process: the line number expected next
    std::size_t bad = 0, records = 0;
    for (auto& l : lines_of(out.err)) {
        std::smatch m;
        if (!std::regex_match(l, m, re)) continue;  // the session's own INFO records
        ++records;
        const int n = std::stoi(m[3]);
        if (std::stoi(m[1]) != n + 1 || std::stoi(m[2]) != next[n]) ++bad;
        next[n] = std::stoi(m[2]) + 1;
    }
    CHECK(bad == 0);
    CHECK(records == 4 * 2000);
    CHECK(matching(lines_of(out.err), R"(\[INFO/[^\]]+\] .*)").size() == lines_of(out.err).size());
}

TEST_CASE("get_logger: level, handlers and the record they get", "[logging]") {
    auto log = mp::get_logger();
    CHECK(log.name() == "multiprocessing");
    CHECK(log.level() == mp::LogLevel::notset);
    CHECK(log.effective_level() == mp::LogLevel::warning);
    CHECK_FALSE(log.has_handlers());
    CHECK_FALSE(log.is_enabled_for(mp::LogLevel::info));  // no handler, below WARNING
    std::vector<std::string> seen;
    log.add_handler([&](const mp::LogRecord& r) {
        std::ostringstream s;
        s << r.levelname << '|' << r.process_name << '|' << r.process << '|' << r.message << '|'
          << static_cast<int>(r.level);
        seen.push_back(s.str());
    });
    CHECK(log.has_handlers());
    log.info("dropped: below WARNING");
    log.warning("kept ", 1, ' ', 2.5);
    log.set_level(mp::LogLevel::subdebug);
    CHECK(log.is_enabled_for(mp::LogLevel::subdebug));
    log.subdebug("fine");
    log.log(static_cast<mp::LogLevel>(15), "between");
    const std::string pid = std::to_string(::getpid());
    CHECK(seen == std::vector<std::string>{"WARNING|MainProcess|" + pid + "|kept 1 2.5|30",
                                           "SUBDEBUG|MainProcess|" + pid + "|fine|5",
                                           "Level 15|MainProcess|" + pid + "|between|15"});
    // A handler may log in turn without deadlocking the logger.
    log.clear_handlers();
    int depth = 0;
    log.add_handler([&](const mp::LogRecord& r) {
        if (depth++ == 0) mp::get_logger().debug("nested after ", r.message);
    });
    log.info("outer");
    CHECK(depth == 2);
    // ... but not change the handlers under itself.
    log.add_handler([](const mp::LogRecord&) { mp::get_logger().add_handler([](const mp::LogRecord&) {}); });
    CHECK_THROWS_AS(log.warning("adds a handler"), std::logic_error);
    log.clear_handlers();
    log.set_level(mp::LogLevel::notset);
    CHECK_FALSE(log.has_handlers());
    CHECK(mp::level_name(mp::LogLevel::subwarning) == "SUBWARNING");
    CHECK(mp::level_name(static_cast<mp::LogLevel>(42)) == "Level 42");
}
