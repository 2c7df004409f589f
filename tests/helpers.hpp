// Shared test helpers: the start methods to run under, and bounded waits.
#pragma once

#include <catch2/catch.hpp>

#include <multiprocessing.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

namespace mp_test {

/// Every wait in a test is bounded by this, so a bug fails fast instead of hanging CI.
inline constexpr auto bound = std::chrono::seconds(20);

/// The start methods every process-level test runs under.
inline std::vector<mp::StartMethod> start_methods() { return mp::get_all_start_methods(); }

/// Joins with a bound; fails the test (after killing the child) if it does not end.
inline void join(mp::Process& p) {
    bool ended = p.join(bound);
    if (!ended) p.kill();
    REQUIRE(ended);
}

/// Waits (bounded) for a process that is not our child to end, such as an orphaned grandchild
/// re-parented to this test process (a subreaper), and reaps it if it is ours now.
inline bool wait_gone(pid_t pid) {
    auto fd = mp::detail::pidfd_open(pid);
    if (!fd) return errno == ESRCH;
    bool ended = mp::detail::wait_readable(fd.get(), mp::detail::deadline(bound));
    ::waitpid(pid, nullptr, WNOHANG);
    return ended;
}

/// The machine's Python 3 (MP_TEST_PYTHON overrides), or empty: those tests are skipped.
std::optional<std::string> python3() {
    if (const char* p = std::getenv("MP_TEST_PYTHON"); p && *p) return std::string(p);
    for (const char* p : {"/usr/bin/python3", "/usr/local/bin/python3"})
        if (::access(p, X_OK) == 0) return std::string(p);
    return std::nullopt;
}

}  // namespace mp_test

/// Runs the enclosing test case once per start method, each as its own section.
#define MP_FOR_EACH_START_METHOD(ctx)                                        \
    auto mp_method_ = GENERATE(from_range(mp_test::start_methods()));      \
    const mp::Context ctx(mp_method_);                                      \
    INFO("start method: " << ctx.name())
