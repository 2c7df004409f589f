// How a process tree's arena is sized, in a program of its own: a process tree has one arena,
// so sizing it must happen before the first shared object or child of the tree, which a test
// process (with arenas from earlier cases) cannot promise.
//   1. MULTIPROCESSING_ARENA_SIZE sizes the arena, and spawn children share it (one arena).
//   2. An arena larger than the address space fails with an error that says what to do.
//   3. mp::set_arena_size() overrides the environment; a full arena says how to get more room;
//      resizing after the arena exists is refused.
// Prints one line per check and exits with the number of failures.
#include <multiprocessing.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
    std::printf("%s %s\n", ok ? "ok" : "FAIL", what.c_str());
    failures += !ok;
}

bool says_how_to_resize(const std::string& what) {
    return what.find("mp::set_arena_size") != std::string::npos &&
           what.find("MULTIPROCESSING_ARENA_SIZE") != std::string::npos;
}

// A spawn child: the arena it has is the parent's, whatever its own environment says.
void report_arena(mp::Connection out) {
    auto h = mp::make_shared_object<int>(1);
    out.send(std::pair<std::uint64_t, std::uint64_t>{mp::get_arena_size(), mp::detail::arena::current()->id()});
}

// Runs `f` in a forked child of a process that has no arena yet; its exit code is 0 on success.
template <class F>
bool in_fresh_child(F f) {
    std::fflush(stdout);
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(f() ? 0 : 1);
    int status = 0;
    return ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

int main() {
    mp::freeze_support();
    if (mp::detail::arena::current()) {
        std::puts("FAIL the arena exists before main created anything");
        return 1;
    }

    check(in_fresh_child([] {
              ::setenv("MULTIPROCESSING_ARENA_SIZE", "3M", 1);
              auto h = mp::make_shared_object<int>(1);
              bool sized = mp::get_arena_size() == 3u * 1024 * 1024;
              auto [r, w] = mp::Pipe(false);
              mp::Process p(mp::Context(mp::StartMethod::spawn), report_arena, w);
              p.start();
              bool same = r.poll(20s) && r.recv<std::pair<std::uint64_t, std::uint64_t>>() ==
                                             std::pair<std::uint64_t, std::uint64_t>{
                                                 3u * 1024 * 1024, mp::detail::arena::current()->id()};
              return p.join(20s) && p.exitcode() == 0 && sized && same;
          }),
          "MULTIPROCESSING_ARENA_SIZE=3M sizes the arena, and a spawn child shares that arena");

    check(in_fresh_child([] {
              ::setenv("MULTIPROCESSING_ARENA_SIZE", "three", 1);
              try {
                  auto h = mp::make_shared_object<int>(1);
              } catch (const mp::ValueError& e) {
                  return std::string(e.what()).find("not a size in bytes") != std::string::npos;
              }
              return false;
          }),
          "a malformed MULTIPROCESSING_ARENA_SIZE is a ValueError that shows the expected form");

    check(in_fresh_child([] {
              mp::set_arena_size(std::size_t{1} << 50);
              try {
                  auto h = mp::make_shared_object<int>(1);
              } catch (const mp::ProcessError& e) {
                  std::string what = e.what();
                  return what.find("cannot reserve a shared-memory arena") != std::string::npos &&
                         what.find("mp::set_arena_size") != std::string::npos;
              }
              return false;
          }),
          "an arena larger than the address space is a ProcessError that says how to choose a size");

    ::setenv("MULTIPROCESSING_ARENA_SIZE", "64M", 1);
    mp::set_arena_size(256 * 1024);  // overrides the environment
    std::string report;
    try {
        std::vector<mp::shared_handle<std::array<char, 1024>>> kept;
        for (int i = 0; i < 100000; ++i) kept.push_back(mp::make_shared_object<std::array<char, 1024>>());
        report = "never full";
    } catch (const mp::ProcessError& e) {
        report = e.what();
    }
    check(mp::get_arena_size() == 256 * 1024, "mp::set_arena_size() overrides the environment");
    check(says_how_to_resize(report), "a full arena says how to raise its size: " + report);
    try {
        mp::set_arena_size(std::size_t{1} << 20);
        check(false, "set_arena_size() after the arena exists is refused");
    } catch (const mp::ValueError& e) {
        check(std::string(e.what()).find("before the first shared object") != std::string::npos,
              "set_arena_size() after the arena exists is refused: " + std::string(e.what()));
    }
    // Nothing was lost: the arena still serves objects once the filler is gone.
    auto after = mp::make_shared_object<int>(42);
    check(*after == 42, "the arena is usable after it was full");
    std::printf("%d failed\n", failures);
    return failures;
}
