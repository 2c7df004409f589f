// Pool: throughput of map, latency of apply_async, and the speedup of CPU-bound work, with
// cpu_count() workers.
//
//   pool_map_100k/mp            pool.map(sqr, 100k ints), default chunksize (one op = one map)
//   pool_map_100k/raw           the same map on a std::thread pool of cpu_count threads, same chunks,
//                               calling sqr through a function pointer as the pool's workers must
//   pool_map_100k_lambda/{mp,raw} the same with a captureless lambda, which both inline
//   threadpool_map_100k/mp      the same map on an mp::ThreadPool of cpu_count threads (raw:
//                               pool_map_100k/raw; Python: multiprocessing.pool.ThreadPool)
//   pool_map_chunksize1_20k/mp  pool.map(sqr, 20k ints, 1)
//   pool_map_chunksize1_20k/raw the same on the std::thread pool, chunks of 1
//   pool_apply_roundtrip/mp     pool.apply_async(sqr, x).get()   (raw: bench_sync's futex ping-pong)
//   pool_imap_100k_chunksize1000/mp, pool_imap_unordered_100k_chunksize1000/mp
//                               range-for over pool.imap / imap_unordered(sqr, 100k ints, 1000),
//                               summing the results (one op = the whole iteration)
//   pool_imap_chunksize1_20k/mp, pool_imap_unordered_chunksize1_20k/mp   the same, 20k ints, chunksize 1
//   pool_imap*/raw              the std::thread pool map with the same chunks, then the same sum
//   pool_cpu_bound/mp           pool.map of 64 items of about 2 ms of arithmetic each
//   pool_cpu_bound/raw          the same items split evenly over cpu_count raw forked processes
//   pool_cpu_bound/serial       the same items in this process, one after the other
//   pool_speedup/{mp,raw}/N     the CPU-bound map with N workers (N = 1..cpu_count), for the
//                               speedup-against-workers plot (run.py: results/speedup.png)
//   pool_start/mp               mp::Pool() with cpu_count() workers, until the constructor returns
//   pool_start/raw              cpu_count() fork()s of children waiting on a pipe (the forks alone)
//   pool_map_100k_first/mp      the first pool.map(sqr, 100k ints) of a fresh pool
//   pool_map_100k_first5/mp     the median of a fresh pool's first five such maps
//   pool_map_100k_first*/raw    the same on a fresh std::thread pool (pool_map_100k/raw's map)
//   pool_apply_roundtrip_first/mp, pool_apply_roundtrip_first5/mp   the same for
//                               apply_async(sqr, x).get()
//   pool_apply_roundtrip_first*/raw   one task through a fresh std::thread pool, its result read
//                               The *_first rows are a user's first calls on a pool it has just
//                               made, where the rows above (a warm-up, then thousands of back-to-
//                               back calls, the median kept) show the pool at its best. New pools
//                               for each measurement (the median over three), in this process (a
//                               fresh pool, not a fresh process); making and ending them are not
//                               timed (pool_start times the making). run.py's target: the first
//                               five's median within 2x of the steady-state row.
//   pool_memory/mp/N            one pool.map(sqr, N ints) in a fresh Pool, N = 100k and 1M: the
//                               parent's peak RSS growth and the workers' peak RSS, as counters
//                               (run.py: results/memory.csv; flat = the same at 100k and 1M, less
//                               the data the parent must hold)
// The Python side is python/bench_pool.py.
#include <sys/mman.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <numeric>
#include <thread>
#include <vector>

#include "bench_common.hpp"

namespace mp = multiprocessing;

namespace {

long long sqr(long long x) { return x * x; }

std::vector<long long> inputs(int n) {
    std::vector<long long> v(static_cast<std::size_t>(n));
    std::iota(v.begin(), v.end(), 0LL);
    return v;
}

using mp_bench::burn;
using mp_bench::iters_for_2ms;

constexpr int cpu_items = 64;

using mp_bench::thread_pool;

std::size_t default_chunksize(std::size_t n, int workers) {
    std::size_t per = static_cast<std::size_t>(workers) * 4;
    return std::max<std::size_t>(1, n / per + (n % per ? 1 : 0));
}

/// x*x as a captureless lambda: its type names it, so a pool's worker (and a thread) inline it.
constexpr auto sqr_lambda = [](long long x) { return x * x; };

template <class F = long long (*)(long long), class PoolType = mp::Pool>
void map_mp(benchmark::State& state, int n, std::optional<std::size_t> chunksize, F f = sqr) {
    try {
        PoolType pool;
        auto xs = inputs(n);
        (void)pool.map(f, xs, chunksize);  // warm-up: workers started and running
        for (auto _ : state) {
            auto r = pool.map(f, xs, chunksize);
            if (r.size() != xs.size() || r.back() != sqr(xs.back())) return state.SkipWithError("wrong result");
            benchmark::DoNotOptimize(r.data());
        }
    } catch (const std::exception& e) {
        return state.SkipWithError(e.what());
    }
    state.SetItemsProcessed(state.iterations() * n);
}

/// The same map on an mp::ThreadPool.
void threadpool_map_mp(benchmark::State& state, int n) {
    map_mp<long long (*)(long long), mp::ThreadPool>(state, n, std::nullopt);
}

/// The same map on threads. A function is called through a pointer known only at run time, as
/// a generic map(f, xs) receives it and as the pool's workers must; a lambda is inlined.
template <class F = long long (*)(long long)>
void map_raw(benchmark::State& state, int n, std::optional<std::size_t> chunksize, F f = sqr) {
    thread_pool threads(mp::cpu_count());
    auto xs = inputs(n);
    std::size_t cs = chunksize.value_or(default_chunksize(xs.size(), mp::cpu_count()));
    std::size_t chunks = (xs.size() + cs - 1) / cs;
    benchmark::DoNotOptimize(f);
    for (auto _ : state) {
        std::vector<long long> r(xs.size());
        threads.run(chunks, [&](std::size_t c) {
            for (std::size_t i = c * cs; i < std::min(xs.size(), (c + 1) * cs); ++i) r[i] = f(xs[i]);
        });
        benchmark::DoNotOptimize(r.data());
    }
    state.SetItemsProcessed(state.iterations() * n);
}

/// imap / imap_unordered, consumed by range-for as a caller would.
void imap_mp(benchmark::State& state, int n, std::size_t chunksize, bool ordered) {
    try {
        mp::Pool pool;
        auto xs = inputs(n);
        long long want = 0;
        for (auto x : xs) want += sqr(x);
        (void)pool.map(sqr, xs);  // warm-up: workers started and running
        for (auto _ : state) {
            long long sum = 0;
            if (ordered)
                for (long long v : pool.imap(sqr, xs, chunksize)) sum += v;
            else
                for (long long v : pool.imap_unordered(sqr, xs, chunksize)) sum += v;
            if (sum != want) return state.SkipWithError("wrong result");
        }
    } catch (const std::exception& e) {
        return state.SkipWithError(e.what());
    }
    state.SetItemsProcessed(state.iterations() * n);
}

/// The thread pool's map with the same chunks, then the same pass over the results.
void imap_raw(benchmark::State& state, int n, std::size_t chunksize) {
    thread_pool threads(mp::cpu_count());
    auto xs = inputs(n);
    long long (*f)(long long) = sqr;
    benchmark::DoNotOptimize(f);
    const std::size_t chunks = (xs.size() + chunksize - 1) / chunksize;
    for (auto _ : state) {
        std::vector<long long> r(xs.size());
        threads.run(chunks, [&](std::size_t c) {
            for (std::size_t i = c * chunksize; i < std::min(xs.size(), (c + 1) * chunksize); ++i) r[i] = f(xs[i]);
        });
        long long sum = 0;
        for (long long v : r) sum += v;
        benchmark::DoNotOptimize(sum);
    }
    state.SetItemsProcessed(state.iterations() * n);
}

void apply_roundtrip_mp(benchmark::State& state) {
    try {
        mp::Pool pool;
        (void)pool.apply(sqr, 3);
        long long x = 0;
        for (auto _ : state) {
            if (pool.apply_async(sqr, x).get() != x * x) return state.SkipWithError("wrong result");
            ++x;
        }
    } catch (const std::exception& e) {
        return state.SkipWithError(e.what());
    }
}

std::uint64_t burn_item(std::uint64_t iters) { return burn(iters); }

void cpu_bound_mp(benchmark::State& state) {
    try {
        mp::Pool pool(state.range(0) > 0 ? static_cast<int>(state.range(0)) : mp::cpu_count());
        std::vector<std::uint64_t> items(cpu_items, iters_for_2ms());
        (void)pool.map(burn_item, std::vector<std::uint64_t>(2, 1000));
        for (auto _ : state) benchmark::DoNotOptimize(pool.map(burn_item, items));
    } catch (const std::exception& e) {
        return state.SkipWithError(e.what());
    }
}

void cpu_bound_raw(benchmark::State& state) {
    const int workers = state.range(0) > 0 ? static_cast<int>(state.range(0)) : mp::cpu_count();
    const std::uint64_t iters = iters_for_2ms();
    for (auto _ : state) {
        std::vector<pid_t> pids;
        for (int w = 0; w < workers; ++w) {
            pid_t pid = ::fork();
            if (pid == 0) {
                std::uint64_t acc = 0;
                for (int i = w; i < cpu_items; i += workers) acc += burn(iters);
                benchmark::DoNotOptimize(acc);
                ::_exit(0);
            }
            pids.push_back(pid);
        }
        for (pid_t p : pids)
            if (!mp_bench::exited_cleanly(mp_bench::wait_child(p))) return state.SkipWithError("a raw worker failed");
    }
}

void cpu_bound_serial(benchmark::State& state) {
    const std::uint64_t iters = iters_for_2ms();
    for (auto _ : state)
        for (int i = 0; i < cpu_items; ++i) benchmark::DoNotOptimize(burn(iters));
}

// ---- fresh pools: a user's first calls ------------------------------------------------------

/// Fresh pools per measurement: one measurement (a Google Benchmark iteration) is the median of
/// their figures, so that one pool hit by another process's burst on a shared machine moves it
/// less than a mean would; the repetitions come from the command line.
constexpr int fresh_pools = 3;

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// For each of fresh_pools pools: `make()` it (not timed), time its first `calls` calls of
/// `call(pool, i)` and take their median (calls == 1: the first call's time), then end it (not
/// timed). The measurement is the median over the pools. `call` returns false on a wrong result.
template <class Make, class Call>
void first_calls(benchmark::State& state, int calls, Make&& make, Call&& call) {
    try {
        for (auto _ : state) {
            std::vector<double> per_pool;
            for (int p = 0; p < fresh_pools; ++p) {
                auto pool = make();
                std::vector<double> t;
                for (int i = 0; i < calls; ++i) {
                    const auto t0 = std::chrono::steady_clock::now();
                    const bool ok = call(*pool, i);
                    t.push_back(seconds_since(t0));
                    if (!ok) return state.SkipWithError("wrong result");
                }
                per_pool.push_back(median_of(std::move(t)));
            }
            state.SetIterationTime(median_of(std::move(per_pool)));
        }
    } catch (const std::exception& e) {
        return state.SkipWithError(e.what());
    }
}

void map_first_mp(benchmark::State& state, int calls) {
    const auto xs = inputs(100000);
    first_calls(
        state, calls, [] { return std::make_unique<mp::Pool>(); },
        [&](mp::Pool& pool, int) {
            auto r = pool.map(sqr, xs);
            benchmark::DoNotOptimize(r.data());
            return r.size() == xs.size() && r.back() == sqr(xs.back());
        });
}

/// pool_map_100k/raw's map on a fresh thread pool: the same chunks, sqr through a run-time
/// pointer, a new result vector per call.
void map_first_raw(benchmark::State& state, int calls) {
    const auto xs = inputs(100000);
    const std::size_t cs = default_chunksize(xs.size(), mp::cpu_count());
    const std::size_t chunks = (xs.size() + cs - 1) / cs;
    long long (*f)(long long) = sqr;
    benchmark::DoNotOptimize(f);
    first_calls(
        state, calls, [] { return std::make_unique<thread_pool>(mp::cpu_count()); },
        [&](thread_pool& threads, int) {
            std::vector<long long> r(xs.size());
            threads.run(chunks, [&](std::size_t c) {
                for (std::size_t i = c * cs; i < std::min(xs.size(), (c + 1) * cs); ++i) r[i] = f(xs[i]);
            });
            benchmark::DoNotOptimize(r.data());
            return r.back() == sqr(xs.back());
        });
}

void apply_first_mp(benchmark::State& state, int calls) {
    first_calls(
        state, calls, [] { return std::make_unique<mp::Pool>(); },
        [](mp::Pool& pool, int i) { return pool.apply_async(sqr, static_cast<long long>(i)).get() == sqr(i); });
}

/// One task through a fresh thread pool, its result read back.
void apply_first_raw(benchmark::State& state, int calls) {
    long long (*f)(long long) = sqr;
    benchmark::DoNotOptimize(f);
    first_calls(
        state, calls, [] { return std::make_unique<thread_pool>(mp::cpu_count()); },
        [&](thread_pool& threads, int i) {
            long long r = 0;
            threads.run(1, [&](std::size_t) { r = f(i); });
            return r == sqr(i);
        });
}

void start_mp(benchmark::State& state) {
    try {
        for (auto _ : state) {
            std::vector<double> t;
            for (int p = 0; p < fresh_pools; ++p) {
                const auto t0 = std::chrono::steady_clock::now();
                mp::Pool pool;
                t.push_back(seconds_since(t0));
            }  // its end is not timed
            state.SetIterationTime(median_of(std::move(t)));
        }
    } catch (const std::exception& e) {
        return state.SkipWithError(e.what());
    }
}

/// What mp::Pool() must do at the least: cpu_count() fork()s, timed until the last returns; the
/// children wait on a pipe until released (not timed).
void start_raw(benchmark::State& state) {
    const int n = mp::cpu_count();
    for (auto _ : state) {
        std::vector<double> t;
        for (int p = 0; p < fresh_pools; ++p) {
            int gate[2];
            if (::pipe(gate) != 0) return state.SkipWithError("pipe failed");
            std::vector<pid_t> pids;
            const auto t0 = std::chrono::steady_clock::now();
            for (int w = 0; w < n; ++w) {
                pid_t pid = ::fork();
                if (pid == 0) {
                    ::close(gate[1]);
                    char c;
                    (void)!::read(gate[0], &c, 1);  // end of file: released
                    ::_exit(0);
                }
                if (pid > 0) pids.push_back(pid);
            }
            t.push_back(seconds_since(t0));
            ::close(gate[0]);
            ::close(gate[1]);
            bool ok = static_cast<int>(pids.size()) == n;
            for (pid_t c : pids) ok &= mp_bench::exited_cleanly(mp_bench::wait_child(c));
            if (!ok) return state.SkipWithError("a raw child failed");
        }
        state.SetIterationTime(median_of(std::move(t)));
    }
}

/// A field of /proc/<pid>/status in MiB ("VmRSS", "VmHWM"); 0 if the process is gone.
double status_mib(pid_t pid, const std::string& field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;
    return 0;
}

/// Makes VmHWM (the peak RSS) start again from the current RSS (Linux >= 4.0).
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

void memory_mp(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    double parent_growth = 0, workers_peak = 0;
    try {
        for (auto _ : state) {
            reset_peak_rss();
            const double before = status_mib(::getpid(), "VmRSS");
            mp::Pool pool;
            auto r = pool.map(sqr, inputs(n));
            if (r.size() != static_cast<std::size_t>(n) || r.back() != sqr(n - 1)) return state.SkipWithError("wrong result");
            for (auto& c : mp::active_children())
                if (c.name().find("PoolWorker") != std::string::npos)
                    workers_peak = std::max(workers_peak, status_mib(c.pid(), "VmHWM"));
            parent_growth = status_mib(::getpid(), "VmHWM") - before;
            pool.close();
            pool.join();
        }
    } catch (const std::exception& e) {
        return state.SkipWithError(e.what());
    }
    state.counters["parent_peak_growth_mib"] = parent_growth;
    state.counters["workers_peak_rss_mib"] = workers_peak;
    state.counters["data_mib"] = 2.0 * n * sizeof(long long) / (1024.0 * 1024.0);  // inputs + results
}

}  // namespace

BENCHMARK_CAPTURE(map_mp, pool_map_100k/mp, 100000, std::nullopt)->UseRealTime()->Name("pool_map_100k/mp");
BENCHMARK_CAPTURE(map_raw, pool_map_100k/raw, 100000, std::nullopt)->UseRealTime()->Name("pool_map_100k/raw");
BENCHMARK_CAPTURE(map_mp, pool_map_100k_lambda/mp, 100000, std::nullopt, sqr_lambda)
    ->UseRealTime()
    ->Name("pool_map_100k_lambda/mp");
BENCHMARK_CAPTURE(map_raw, pool_map_100k_lambda/raw, 100000, std::nullopt, sqr_lambda)
    ->UseRealTime()
    ->Name("pool_map_100k_lambda/raw");
BENCHMARK_CAPTURE(threadpool_map_mp, threadpool_map_100k/mp, 100000)->UseRealTime()->Name("threadpool_map_100k/mp");
BENCHMARK_CAPTURE(map_mp, pool_map_chunksize1_20k/mp, 20000, 1)->UseRealTime()->Name("pool_map_chunksize1_20k/mp");
BENCHMARK_CAPTURE(map_raw, pool_map_chunksize1_20k/raw, 20000, 1)->UseRealTime()->Name("pool_map_chunksize1_20k/raw");
BENCHMARK(apply_roundtrip_mp)->UseRealTime()->Name("pool_apply_roundtrip/mp");
BENCHMARK_CAPTURE(imap_mp, ordered, 100000, 1000, true)->UseRealTime()->Name("pool_imap_100k_chunksize1000/mp");
BENCHMARK_CAPTURE(imap_raw, ordered, 100000, 1000)->UseRealTime()->Name("pool_imap_100k_chunksize1000/raw");
BENCHMARK_CAPTURE(imap_mp, unordered, 100000, 1000, false)->UseRealTime()->Name("pool_imap_unordered_100k_chunksize1000/mp");
BENCHMARK_CAPTURE(imap_raw, unordered, 100000, 1000)->UseRealTime()->Name("pool_imap_unordered_100k_chunksize1000/raw");
BENCHMARK_CAPTURE(imap_mp, ordered1, 20000, 1, true)->UseRealTime()->Name("pool_imap_chunksize1_20k/mp");
BENCHMARK_CAPTURE(imap_raw, ordered1, 20000, 1)->UseRealTime()->Name("pool_imap_chunksize1_20k/raw");
BENCHMARK_CAPTURE(imap_mp, unordered1, 20000, 1, false)->UseRealTime()->Name("pool_imap_unordered_chunksize1_20k/mp");
BENCHMARK_CAPTURE(imap_raw, unordered1, 20000, 1)->UseRealTime()->Name("pool_imap_unordered_chunksize1_20k/raw");
BENCHMARK(cpu_bound_mp)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond)->Name("pool_cpu_bound/mp");
BENCHMARK(cpu_bound_raw)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond)->Name("pool_cpu_bound/raw");
BENCHMARK(cpu_bound_mp)->DenseRange(1, mp::cpu_count())->UseRealTime()->Unit(benchmark::kMillisecond)->Name("pool_speedup/mp");
BENCHMARK(cpu_bound_raw)->DenseRange(1, mp::cpu_count())->UseRealTime()->Unit(benchmark::kMillisecond)->Name("pool_speedup/raw");
BENCHMARK(start_mp)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond)->Name("pool_start/mp");
BENCHMARK(start_raw)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond)->Name("pool_start/raw");
BENCHMARK_CAPTURE(map_first_mp, first, 1)->Iterations(1)->UseManualTime()->Name("pool_map_100k_first/mp");
BENCHMARK_CAPTURE(map_first_raw, first, 1)->Iterations(1)->UseManualTime()->Name("pool_map_100k_first/raw");
BENCHMARK_CAPTURE(map_first_mp, first5, 5)->Iterations(1)->UseManualTime()->Name("pool_map_100k_first5/mp");
BENCHMARK_CAPTURE(map_first_raw, first5, 5)->Iterations(1)->UseManualTime()->Name("pool_map_100k_first5/raw");
BENCHMARK_CAPTURE(apply_first_mp, first, 1)->Iterations(1)->UseManualTime()->Name("pool_apply_roundtrip_first/mp");
BENCHMARK_CAPTURE(apply_first_raw, first, 1)->Iterations(1)->UseManualTime()->Name("pool_apply_roundtrip_first/raw");
BENCHMARK_CAPTURE(apply_first_mp, first5, 5)->Iterations(1)->UseManualTime()->Name("pool_apply_roundtrip_first5/mp");
BENCHMARK_CAPTURE(apply_first_raw, first5, 5)->Iterations(1)->UseManualTime()->Name("pool_apply_roundtrip_first5/raw");
BENCHMARK(memory_mp)->Arg(100000)->Arg(1000000)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond)->Name("pool_memory/mp");
BENCHMARK(cpu_bound_serial)->UseRealTime()->Unit(benchmark::kMillisecond)->Name("pool_cpu_bound/serial");

int main(int argc, char** argv) {
    mp::freeze_support();
    return mp_bench::run_benchmarks(argc, argv);
}
