// Shared memory workloads (shared_memory.hpp, mp::SharedSpan): a Pool summing slices of a 1 GiB
// array in place, and the cost of a 1 GiB segment's life.
//
//   shm_sum_1gib/mp          the sum of a 1 GiB segment of doubles (2^27 of them), split into
//                            cpu_count x 4 slices: pool.map(sum, views) on an mp::Pool of
//                            cpu_count workers, each view a SharedMemory::view<double> (a
//                            SharedSpan: the segment's name, offset and count, 61 bytes pickled);
//                            the worker sums its slice in place (eight running sums, at memory speed, as
//                            numpy's sum) and returns a double. The pool is made once per program run and
//                            warmed by an untimed map (each worker maps the segment once and keeps it:
//                            detail/shm.hpp), then each op is one map
//   shm_sum_1gib_array/mp    the same over an mp::Array<double> of 1 GiB (in the arena, sized up
//                            for it) and its slice(begin, end)s
//   shm_sum_1gib/raw         the same slices summed by cpu_count std::threads of this process over
//   shm_sum_1gib_array/raw   the same memory (the segment's, the Array's), taking slices from an
//                            atomic counter (threads made per op: 0.1 ms of a ~100 ms op)
//   shm_create_attach_1gib/mp    SharedMemory(nullopt, true, 1 GiB), then SharedMemory(name),
//                            close both, unlink: a segment's whole life with one attach (the attach
//                            in the same process shares the creator's mapping, as this library
//                            does; nothing is touched, so no page is allocated)
//   shm_create_attach_1gib/raw   shm_open(O_CREAT|O_EXCL) + ftruncate + fstat + mmap, shm_open +
//                            fstat + mmap, two munmap, shm_unlink: the system calls alone
//
// The Python side of the same workloads is python/bench_shared_memory.py (Pool over a
// SharedMemory viewed with numpy; SharedMemory(create=True, size=1 GiB) and SharedMemory(name)).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <multiprocessing.hpp>

#include "bench_common.hpp"

namespace mp = multiprocessing;

namespace {

constexpr std::size_t kBytes = std::size_t{1} << 30;
constexpr std::size_t kCount = kBytes / sizeof(double);

std::size_t slice_count() { return static_cast<std::size_t>(mp::cpu_count()) * 4; }

/// The 1 GiB segment, made and filled once per program run (untimed), unlinked at exit.
mp::shared_memory::SharedMemory& segment() {
    static mp::shared_memory::SharedMemory* s = [] {
        auto* p = new mp::shared_memory::SharedMemory(std::nullopt, true, static_cast<std::int64_t>(kBytes));
        auto xs = p->as_span<double>();
        for (std::size_t i = 0; i < kCount; ++i) xs[i] = static_cast<double>(i % 1024);
        std::atexit([] { segment().unlink(); });
        return p;
    }();
    return *s;
}

/// The 1 GiB mp::Array, made and filled once per program run.
mp::Array<double>& array() {
    static mp::Array<double>* a = [] {
        auto* p = new mp::Array<double>(kCount);
        for (std::size_t i = 0; i < kCount; ++i) (*p)[i] = static_cast<double>(i % 1024);
        return p;
    }();
    return *a;
}

double expected_sum() {
    // i % 1024 summed over 2^27 elements: 2^17 runs of 0..1023.
    return static_cast<double>(kCount / 1024) * (1023.0 * 1024.0 / 2);
}

/// The sum of [from, to): eight running sums, so that the adds pipeline and vectorise (as numpy's
/// pairwise sum does) and the loop runs at memory speed, not at one add's latency per element.
double sum_of(const double* from, const double* to) {
    double acc[8] = {};
    for (; to - from >= 8; from += 8)
        for (int j = 0; j < 8; ++j) acc[j] += from[j];
    double total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; from != to; ++from) total += *from;
    return total;
}

double sum(mp::SharedSpan<double> s) { return sum_of(s.begin(), s.end()); }

template <class MakeSlices>
void sum_mp(benchmark::State& state, MakeSlices make_slices) {
    try {
        std::vector<mp::SharedSpan<double>> slices = make_slices();
        // One pool for the program's run, as the steady state of pool_map_100k: a fresh pool's
        // workers would first fault in the page tables of the whole GiB, each in its process.
        static mp::Pool& pool = *new mp::Pool(mp::cpu_count());
        auto check = [&](const std::vector<double>& parts) {
            return std::accumulate(parts.begin(), parts.end(), 0.0) == expected_sum();
        };
        if (!check(pool.map(sum, slices, 1))) return state.SkipWithError("wrong sum");  // warm-up
        for (auto _ : state) {
            auto parts = pool.map(sum, slices, 1);
            benchmark::DoNotOptimize(parts.data());
            if (parts.size() != slices.size()) return state.SkipWithError("lost a slice");
        }
        if (!check(pool.map(sum, slices, 1))) return state.SkipWithError("wrong sum");
        state.counters["bytes_per_task"] = static_cast<double>(mp::dumps(slices[0]).size());
    } catch (const std::exception& e) {
        return state.SkipWithError(e.what());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBytes));
}

void shm_sum_mp(benchmark::State& state) {
    sum_mp(state, [] {
        auto& s = segment();
        const std::size_t n = slice_count(), step = kCount / n;
        std::vector<mp::SharedSpan<double>> v;
        for (std::size_t k = 0; k < n; ++k)
            v.push_back(s.view<double>(k * step * sizeof(double), k + 1 == n ? kCount - k * step : step));
        return v;
    });
}

void array_sum_mp(benchmark::State& state) {
    sum_mp(state, [] {
        auto& a = array();
        const std::size_t n = slice_count(), step = kCount / n;
        std::vector<mp::SharedSpan<double>> v;
        for (std::size_t k = 0; k < n; ++k)
            v.push_back(a.slice(k * step, k + 1 == n ? kCount : (k + 1) * step));
        return v;
    });
}

void sum_raw(benchmark::State& state, const double* xs) {
    const std::size_t n = slice_count(), step = kCount / n;
    const auto threads = static_cast<std::size_t>(mp::cpu_count());
    std::vector<double> parts(n);
    auto run = [&] {
        std::atomic<std::size_t> next{0};
        std::vector<std::thread> pool;
        for (std::size_t t = 0; t < threads; ++t)
            pool.emplace_back([&] {
                for (std::size_t k; (k = next.fetch_add(1)) < n;) {
                    const double* from = xs + k * step;
                    const double* to = k + 1 == n ? xs + kCount : from + step;
                    parts[k] = sum_of(from, to);
                }
            });
        for (auto& t : pool) t.join();
    };
    run();  // warm-up, as mp's
    for (auto _ : state) {
        run();
        benchmark::DoNotOptimize(parts.data());
    }
    if (std::accumulate(parts.begin(), parts.end(), 0.0) != expected_sum())
        return state.SkipWithError("wrong sum");
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBytes));
}

void shm_sum_raw(benchmark::State& state) { sum_raw(state, segment().as_span<double>().data()); }
void array_sum_raw(benchmark::State& state) { sum_raw(state, array().data()); }

void create_attach_mp(benchmark::State& state) {
    try {
        for (auto _ : state) {
            mp::shared_memory::SharedMemory a(std::nullopt, true, static_cast<std::int64_t>(kBytes));
            mp::shared_memory::SharedMemory b(a.name());
            if (b.size() != kBytes) return state.SkipWithError("wrong size");
            b.close();
            a.close();
            a.unlink();
        }
    } catch (const std::exception& e) {
        return state.SkipWithError(e.what());
    }
}

void create_attach_raw(benchmark::State& state) {
    int i = 0;
    const std::string base = "/mp_bench_raw_" + std::to_string(::getpid()) + "_";
    for (auto _ : state) {
        const std::string name = base + std::to_string(i++);
        int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        struct stat st {};
        if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(kBytes)) != 0 || ::fstat(fd, &st) != 0)
            return state.SkipWithError("shm_open/ftruncate failed");
        void* a = ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ::close(fd);
        int fd2 = ::shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0600);
        if (fd2 < 0 || ::fstat(fd2, &st) != 0) return state.SkipWithError("attach failed");
        void* b =
            ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
        ::close(fd2);
        if (a == MAP_FAILED || b == MAP_FAILED) return state.SkipWithError("mmap failed");
        ::munmap(b, kBytes);
        ::munmap(a, kBytes);
        ::shm_unlink(name.c_str());
    }
}

}  // namespace

BENCHMARK(shm_sum_mp)->UseRealTime()->Unit(benchmark::kMillisecond)->Name("shm_sum_1gib/mp");
BENCHMARK(array_sum_mp)->UseRealTime()->Unit(benchmark::kMillisecond)->Name("shm_sum_1gib_array/mp");
BENCHMARK(shm_sum_raw)->UseRealTime()->Unit(benchmark::kMillisecond)->Name("shm_sum_1gib/raw");
BENCHMARK(array_sum_raw)->UseRealTime()->Unit(benchmark::kMillisecond)->Name("shm_sum_1gib_array/raw");
BENCHMARK(create_attach_mp)->UseRealTime()->Name("shm_create_attach_1gib/mp");
BENCHMARK(create_attach_raw)->UseRealTime()->Name("shm_create_attach_1gib/raw");

int main(int argc, char** argv) {
    mp::freeze_support();
    mp::set_arena_size(std::size_t{3} << 30);  // room for shm_sum_1gib_array's 1 GiB Array
    return mp_bench::run_benchmarks(argc, argv);
}
