// concurrent.futures: the executors' round trips, as_completed over many futures and map with
// chunks, with cpu_count() workers.
//
//   futures_submit_roundtrip/mp         ProcessPoolExecutor: ex.submit(sqr, x).result()
//                                       (raw: bench_sync's futex ping-pong, as pool_apply_roundtrip)
//   futures_as_completed_100k/mp        ProcessPoolExecutor: 100k ex.submit(sqr, x), then the sum of
//                                       f.result() over as_completed(futures) (one op = the whole pass)
//   futures_as_completed_100k/raw       the same 100k tasks, one at a time, through a std::thread pool of
//                                       cpu_count threads (bench_pool.cpp's thread_pool, chunks of 1),
//                                       sqr through a run-time pointer, then the same sum
//   futures_map_100k_chunksize1000/mp   ProcessPoolExecutor: range-for over ex.map(sqr, 100k ints,
//                                       {.chunksize = 1000}), summing the results (one op = the whole pass;
//                                       raw: bench_pool's pool_map_100k/raw; run.py also compares it with
//                                       pool_map_100k/mp of the same run)
//   threadpoolexecutor_submit_roundtrip/mp   ThreadPoolExecutor: ex.submit(sqr, x).result()
//   threadpoolexecutor_submit_roundtrip/raw  one task at a time through a std::thread pool of cpu_count
//                                       threads: a std::mutex / std::condition_variable one-task queue,
//                                       the caller waiting for its result on a condition variable
// The Python side is python/bench_futures.py.
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>
#include <vector>

#include "bench_common.hpp"

namespace mp = multiprocessing;
namespace cf = multiprocessing::futures;

namespace {

long long sqr(long long x) { return x * x; }

constexpr int big_n = 100000;

std::vector<long long> inputs(int n) {
    std::vector<long long> v(static_cast<std::size_t>(n));
    std::iota(v.begin(), v.end(), 0LL);
    return v;
}

long long sum_of_squares(int n) {
    long long s = 0;
    for (long long x = 0; x < n; ++x) s += sqr(x);
    return s;
}

using mp_bench::thread_pool;  // the raw side of pool_map_100k

/// The least a thread pool's round trip costs: a one-task queue under a std::mutex, a worker woken
/// by notify_one, the caller woken by the worker when the result is in.
class one_task_pool {
public:
    explicit one_task_pool(int n) {
        for (int i = 0; i < n; ++i) threads_.emplace_back([this] { loop(); });
    }
    ~one_task_pool() {
        {
            std::lock_guard g(m_);
            stop_ = true;
        }
        work_cv_.notify_all();
        for (auto& t : threads_) t.join();
    }
    /// Runs f(x) on a pool thread and returns its result.
    long long call(long long (*f)(long long), long long x) {
        std::unique_lock g(m_);
        f_ = f;
        x_ = x;
        has_task_ = true;
        has_result_ = false;
        work_cv_.notify_one();
        done_cv_.wait(g, [&] { return has_result_; });
        return result_;
    }

private:
    void loop() {
        std::unique_lock g(m_);
        for (;;) {
            work_cv_.wait(g, [&] { return stop_ || has_task_; });
            if (stop_) return;
            has_task_ = false;
            auto f = f_;
            auto x = x_;
            g.unlock();
            long long r = f(x);
            g.lock();
            result_ = r;
            has_result_ = true;
            done_cv_.notify_one();
        }
    }
    std::vector<std::thread> threads_;
    std::mutex m_;
    std::condition_variable work_cv_, done_cv_;
    long long (*f_)(long long) = nullptr;
    long long x_ = 0, result_ = 0;
    bool has_task_ = false, has_result_ = false, stop_ = false;
};

template <class Executor>
void submit_roundtrip_mp(benchmark::State& state) {
    try {
        Executor ex(mp::cpu_count());
        for (int i = 0; i < 4 * mp::cpu_count(); ++i) (void)ex.submit(sqr, 3LL).result();  // warm-up
        long long x = 0;
        for (auto _ : state) {
            if (ex.submit(sqr, x).result() != x * x) return state.SkipWithError("wrong result");
            ++x;
        }
        ex.shutdown();
    } catch (const std::exception& e) {
        return state.SkipWithError(e.what());
    }
}

void threadpool_roundtrip_raw(benchmark::State& state) {
    one_task_pool pool(mp::cpu_count());
    long long (*f)(long long) = sqr;
    benchmark::DoNotOptimize(f);
    long long x = 0;
    for (auto _ : state) {
        if (pool.call(f, x) != x * x) return state.SkipWithError("wrong result");
        ++x;
    }
}

void as_completed_mp(benchmark::State& state) {
    try {
        cf::ProcessPoolExecutor ex(mp::cpu_count());
        const long long want = sum_of_squares(big_n);
        for (int i = 0; i < 4 * mp::cpu_count(); ++i) (void)ex.submit(sqr, 3LL).result();  // warm-up
        for (auto _ : state) {
            std::vector<cf::Future<long long>> fs;
            fs.reserve(big_n);
            for (long long x = 0; x < big_n; ++x) fs.push_back(ex.submit(sqr, x));
            long long sum = 0;
            for (auto& f : cf::as_completed(fs)) sum += f.result();
            if (sum != want) return state.SkipWithError("wrong result");
        }
        ex.shutdown();
    } catch (const std::exception& e) {
        return state.SkipWithError(e.what());
    }
    state.SetItemsProcessed(state.iterations() * big_n);
}

/// The same tasks, one at a time, through the thread pool; then the same sum.
void as_completed_raw(benchmark::State& state) {
    thread_pool threads(mp::cpu_count());
    const auto xs = inputs(big_n);
    const long long want = sum_of_squares(big_n);
    long long (*f)(long long) = sqr;
    benchmark::DoNotOptimize(f);
    for (auto _ : state) {
        std::vector<long long> r(xs.size());
        threads.run(xs.size(), [&](std::size_t i) { r[i] = f(xs[i]); });
        long long sum = 0;
        for (long long v : r) sum += v;
        if (sum != want) return state.SkipWithError("wrong result");
    }
    state.SetItemsProcessed(state.iterations() * big_n);
}

void map_chunks_mp(benchmark::State& state) {
    try {
        cf::ProcessPoolExecutor ex(mp::cpu_count());
        const auto xs = inputs(big_n);
        const long long want = sum_of_squares(big_n);
        for (long long v : ex.map(sqr, xs, {.chunksize = 1000})) benchmark::DoNotOptimize(v);  // warm-up
        for (auto _ : state) {
            long long sum = 0;
            for (long long v : ex.map(sqr, xs, {.chunksize = 1000})) sum += v;
            if (sum != want) return state.SkipWithError("wrong result");
        }
        ex.shutdown();
    } catch (const std::exception& e) {
        return state.SkipWithError(e.what());
    }
    state.SetItemsProcessed(state.iterations() * big_n);
}

}  // namespace

BENCHMARK(submit_roundtrip_mp<cf::ProcessPoolExecutor>)->UseRealTime()->Name("futures_submit_roundtrip/mp");
BENCHMARK(as_completed_mp)->UseRealTime()->Unit(benchmark::kMillisecond)->Name("futures_as_completed_100k/mp");
BENCHMARK(as_completed_raw)->UseRealTime()->Unit(benchmark::kMillisecond)->Name("futures_as_completed_100k/raw");
BENCHMARK(map_chunks_mp)->UseRealTime()->Name("futures_map_100k_chunksize1000/mp");
BENCHMARK(submit_roundtrip_mp<cf::ThreadPoolExecutor>)->UseRealTime()->Name("threadpoolexecutor_submit_roundtrip/mp");
BENCHMARK(threadpool_roundtrip_raw)->UseRealTime()->Name("threadpoolexecutor_submit_roundtrip/raw");

int main(int argc, char** argv) {
    mp::freeze_support();
    return mp_bench::run_benchmarks(argc, argv);
}
