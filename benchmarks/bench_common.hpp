// Shared by the benchmark programs: the Google Benchmark main, raw-syscall helpers for the
// baselines, and the guard that runs an mp benchmark next to its child process.
//
// Conventions every benchmark here follows (benchmarks/run.py relies on them):
//   - a benchmark is named "<workload>/<variant>", variant "mp" (this library) or "raw" (the
//     baseline that shows the limit); the workload name is the key of the Python figure too;
//   - wall-clock time (UseRealTime): the work happens in two processes;
//   - a failure is reported with SkipWithError, never by throwing out of the benchmark; a message
//     starting with "n/a:" means "not available yet" (a start method the library lacks, ...);
//   - a child process never returns into Google Benchmark: mp::Process children end with _exit
//     by themselves, raw fork() children call _exit.
#pragma once

#include <benchmark/benchmark.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>
#include <cstddef>
#include <exception>
#include <optional>
#include <string>

#include <multiprocessing.hpp>

namespace mp_bench {

/// What BENCHMARK_MAIN() does; each program's main calls multiprocessing::freeze_support() first.
inline int run_benchmarks(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

/// Writes all n bytes (retrying short writes and EINTR); false on error or a closed peer.
inline bool write_full(int fd, const void* p, std::size_t n) noexcept {
    auto* c = static_cast<const char*>(p);
    while (n > 0) {
        ssize_t r = ::write(fd, c, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        c += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

/// Reads exactly n bytes (retrying short reads and EINTR); false on error or end of file.
inline bool read_full(int fd, void* p, std::size_t n) noexcept {
    auto* c = static_cast<char*>(p);
    while (n > 0) {
        ssize_t r = ::read(fd, c, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        if (r == 0) return false;
        c += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

/// waitpid that retries EINTR; returns the raw status, or -1 on error.
inline int wait_child(pid_t pid) noexcept {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return status;
}

/// True if a waitpid status says "exited with 0".
inline bool exited_cleanly(int status) noexcept {
    return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/// Starts `child`, runs `body` (the timed loop) and joins the child. An exception from either
/// side becomes SkipWithError, and a child that would otherwise be left blocked is killed, so a
/// failing benchmark neither aborts the program nor hangs it at exit. A child that ends with a
/// non-zero exit code fails the benchmark too.
template <class Body>
void with_child(benchmark::State& state, multiprocessing::Process& child, Body&& body) {
    try {
        child.start();
    } catch (const multiprocessing::ValueError& e) {
        state.SkipWithError((std::string("cannot start the child: ") + e.what()).c_str());
        return;
    } catch (const multiprocessing::ProcessError& e) {
        // What start() raises for a start method the library does not provide (yet).
        state.SkipWithError((std::string("n/a: ") + e.what()).c_str());
        return;
    } catch (const std::exception& e) {
        state.SkipWithError((std::string("cannot start the child: ") + e.what()).c_str());
        return;
    }
    std::string error;
    try {
        body();
    } catch (const std::exception& e) {
        error = e.what();
    }
    if (!error.empty()) {
        child.kill();
        child.join();
        state.SkipWithError(error.c_str());
        return;
    }
    child.join();
    if (auto code = child.exitcode(); code != 0)
        state.SkipWithError(
            ("the child ended with exit code " + std::to_string(code.value_or(-999))).c_str());
}

/// A fixed set of threads that run the chunks of one job at a time: the in-process limit (the raw
/// side of pool_map_100k and of the futures rows).
class thread_pool {
public:
    explicit thread_pool(int n) {
        for (int i = 0; i < n; ++i) threads_.emplace_back([this] { loop(); });
    }
    ~thread_pool() {
        {
            std::lock_guard g(m_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_) t.join();
    }
    /// Runs body(c) for c in [0, chunks) on the threads; returns when all are done.
    void run(std::size_t chunks, std::function<void(std::size_t)> body) {
        std::unique_lock g(m_);
        body_ = std::move(body);
        chunks_ = chunks;
        next_ = 0;
        done_ = 0;
        ++generation_;
        cv_.notify_all();
        done_cv_.wait(g, [&] { return done_ == chunks_; });
    }

private:
    void loop() {
        std::uint64_t seen = 0;
        std::unique_lock g(m_);
        for (;;) {
            cv_.wait(g, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            while (next_ < chunks_) {
                std::size_t c = next_++;
                g.unlock();
                body_(c);
                g.lock();
                if (++done_ == chunks_) done_cv_.notify_all();
            }
        }
    }
    std::vector<std::thread> threads_;
    std::mutex m_;
    std::condition_variable cv_, done_cv_;
    std::function<void(std::size_t)> body_;
    std::size_t chunks_ = 0, next_ = 0, done_ = 0;
    std::uint64_t generation_ = 0;
    bool stop_ = false;
};

/// The CPU-bound item: `iters` rounds of integer mixing that the compiler cannot skip.
inline std::uint64_t burn(std::uint64_t iters) {
    std::uint64_t x = iters ^ 0x9E3779B97F4A7C15ull;
    for (std::uint64_t i = 0; i < iters; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

/// Rounds of burn() that take about 2 ms here, measured once per program.
inline std::uint64_t iters_for_2ms() {
    static const std::uint64_t n = [] {
        std::uint64_t iters = 100000;
        for (;;) {
            auto t0 = std::chrono::steady_clock::now();
            benchmark::DoNotOptimize(burn(iters));
            auto dt = std::chrono::steady_clock::now() - t0;
            if (dt > std::chrono::milliseconds(20)) return static_cast<std::uint64_t>(iters * 2e-3 / std::chrono::duration<double>(dt).count());
            iters *= 2;
        }
    }();
    return n;
}

}  // namespace mp_bench
