// tour: the seeds' parallel mean and CPU-bound map over MPI ranks (mpi.hpp), as a singleton and under mpirun
// The same programs as s004_parallel_mean (a mean over data[i::5] in a Pool) and the CPU-bound map
// of the benchmarks, unchanged but for the context: `.context = mp::get_context("mpi")`. Run both
// ways (scripts/tour.sh does):
//     ./mpi_pool                                   a singleton: the pool spawns 2 ranks of ./mpi_pool
//     mpirun --oversubscribe -n 3 ./mpi_pool       rank 0 runs main; ranks 1 and 2 serve its pool
// (as root in a container, add --allow-run-as-root). Built only where MPI is found (target
// multiprocessing::mpi).
#include <multiprocessing.hpp>
#include <multiprocessing/mpi.hpp>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <set>
#include <vector>

namespace mp = multiprocessing;

double analyze(const std::vector<double>& data) {
    return std::accumulate(data.begin(), data.end(), 0.0) / static_cast<double>(data.size());
}

std::vector<double> uniform_data(std::size_t n) {
    std::vector<double> v(n);
    std::uint64_t s = 42;
    for (auto& x : v) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        x = static_cast<double>(s >> 11) / 9007199254740992.0;  // 2^53
    }
    return v;
}

/// A CPU-bound item: `iters` rounds of integer mixing the compiler cannot skip.
std::uint64_t burn(std::uint64_t iters) {
    std::uint64_t x = iters ^ 0x9E3779B97F4A7C15ull;
    for (std::uint64_t i = 0; i < iters; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

long where(int) { return static_cast<long>(::getpid()); }

int main() {
    mp::freeze_support();  // under mpirun, ranks 1..N-1 serve here until rank 0 is done
    const auto mpi = mp::get_context("mpi");

    // Seed 004: the parallel mean, in a pool of one worker per serving rank.
    mp::Pool pool({.context = mpi});
    std::printf("a pool of %zu MPI ranks (%s)\n", pool.processes(),
                mp::mpi::world_size() > 1 ? "started by mpirun" : "spawned by this singleton");
    std::vector<double> data = uniform_data(100000);
    std::vector<std::vector<double>> sub_datas(5);
    for (std::size_t i = 0; i < data.size(); ++i) sub_datas[i % 5].push_back(data[i]);
    std::vector<double> results = pool.map(analyze, sub_datas);
    for (std::size_t i = 0; i < results.size(); ++i) std::printf("mean of data[%zu::5] = %.6f\n", i, results[i]);
    const double mean = analyze(results);
    std::printf("mean of the means = %.6f\n", mean);
    const bool mean_ok = std::fabs(mean - analyze(data)) < 1e-9;

    // The CPU-bound map: 64 items, each a few ms, spread over the ranks.
    std::vector<std::uint64_t> items(64, 2'000'000);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::uint64_t> burnt = pool.map(burn, items);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::set<long> pids;
    for (long p : pool.map(where, std::vector<int>(16, 0), 1)) pids.insert(p);
    std::printf("CPU-bound map of %zu items: %.0f ms, on %zu ranks\n", burnt.size(), ms, pids.size());
    const bool burn_ok = burnt.size() == items.size() && burnt[0] == burn(items[0]);

    pool.close();
    pool.join();
    std::printf("results equal to the serial ones: %s\n", mean_ok && burn_ok ? "yes" : "no");
    return mean_ok && burn_ok ? 0 : 1;
}
