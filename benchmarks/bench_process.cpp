// Process start+join: the cost of running an empty target in a child and waiting for it.
//
//   process_start_join_<method>/mp  mp::Process(mp::get_context(method), noop).start(); join()
//   process_start_join_fork/raw     fork(); the child _exit(0)s; waitpid
//   process_start_join_spawn/raw    posix_spawn of this same binary, which exits at once; waitpid
//
// Every start method has its mp row; a start method the library does not provide yet makes
// mp::Process::start() raise mp::ProcessError, and the row is reported as "n/a".
// The Python side of the same workloads is python/bench_process.py.
#include <spawn.h>
#include <sys/types.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <string>

#include "bench_common.hpp"

namespace mp = multiprocessing;

extern char** environ;

namespace {

/// argv[1] that makes this program exit at once: the child of the raw spawn baseline.
constexpr const char* kExitAtOnce = "--mp-bench-exit-at-once";

/// This program's path, for the raw spawn baseline.
std::string self_exe;

void noop() {}

void start_join_mp(benchmark::State& state, mp::StartMethod method) {
    const auto ctx = mp::get_context(method);
    {
        // Warm-up outside the timing, and the check that this start method works at all
        // (forkserver also starts its server here, as Python's does at first use).
        mp::Process first(ctx, noop);
        mp_bench::with_child(state, first, [] {});
        if (state.error_occurred()) return;
    }
    try {
        for (auto _ : state) {
            mp::Process p(ctx, noop);
            p.start();
            p.join();
        }
    } catch (const std::exception& e) {
        return state.SkipWithError(e.what());
    }
    state.SetItemsProcessed(state.iterations());
}

void start_join_fork_raw(benchmark::State& state) {
    for (auto _ : state) {
        pid_t pid = ::fork();
        if (pid == 0) ::_exit(0);  // never return into Google Benchmark
        if (pid < 0 || !mp_bench::exited_cleanly(mp_bench::wait_child(pid)))
            return state.SkipWithError("fork + waitpid failed");
    }
    state.SetItemsProcessed(state.iterations());
}

void start_join_spawn_raw(benchmark::State& state) {
    std::string arg0 = self_exe, arg1 = kExitAtOnce;
    char* argv[] = {arg0.data(), arg1.data(), nullptr};
    for (auto _ : state) {
        pid_t pid = 0;
        if (::posix_spawn(&pid, self_exe.c_str(), nullptr, nullptr, argv, environ) != 0 ||
            !mp_bench::exited_cleanly(mp_bench::wait_child(pid)))
            return state.SkipWithError("posix_spawn + waitpid failed");
    }
    state.SetItemsProcessed(state.iterations());
}

void register_all() {
    // One mp row per start method: the workload name is process_start_join_<method>.
    for (auto method : {mp::StartMethod::fork, mp::StartMethod::spawn, mp::StartMethod::forkserver}) {
        auto name = "process_start_join_" + std::string(mp::to_string(method)) + "/mp";
        benchmark::RegisterBenchmark(name.c_str(), start_join_mp, method)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
    }
    benchmark::RegisterBenchmark("process_start_join_fork/raw", start_join_fork_raw)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("process_start_join_spawn/raw", start_join_spawn_raw)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
}

}  // namespace

int main(int argc, char** argv) {
    mp::freeze_support();
    if (argc > 1 && std::strcmp(argv[1], kExitAtOnce) == 0) return 0;
    char path[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
    self_exe = n > 0 ? std::string(path, static_cast<std::size_t>(n)) : std::string(argv[0]);
    register_all();
    return mp_bench::run_benchmarks(argc, argv);
}
