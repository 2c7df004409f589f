// The "mpi" context (mpi.hpp): Pool and ProcessPoolExecutor over MPI ranks, against mpi4py.futures
// (benchmarks/python/bench_mpi.py) and raw MPI. Run under mpirun: benchmarks/run.py launches it as
// `mpirun --oversubscribe -n 3 bench_mpi` (rank 0 measures; ranks 1 and 2 serve the pools).
//   mpi_map_100k/mp              pool.map of x*x over 100k ints, default chunksize, 2 ranks
//   mpi_submit_roundtrip/mp      ProcessPoolExecutor submit(f, x).result() on a rank
//   (the raw baseline, MPI_Send/MPI_Recv ping-pong between two ranks: bench_mpi_raw.cpp)
//   mpi_apply_roundtrip/mp       pool.apply_async(f, x).get() on a rank
//   mpi_cpu_bound/mp             pool.map of 64 items of about 2 ms of arithmetic each, 2 ranks
//   mpi_cpu_bound/raw            the same map on a local process Pool (fork) of as many workers
#include "bench_common.hpp"

#include <multiprocessing/futures.hpp>
#include <multiprocessing/mpi.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <numeric>
#include <vector>

namespace mp = multiprocessing;

namespace {

long long sqr(long long x) { return x * x; }

using mp_bench::burn;
using mp_bench::iters_for_2ms;

/// What holds the serving ranks now: each rank serves one pool at a time, and the benchmarks run
/// interleaved, so each takes the ranks from the others (ended, not timed) as it starts.
struct holders {
    std::unique_ptr<mp::Pool> pool;
    std::unique_ptr<mp::futures::ProcessPoolExecutor> ex;
} held;
mp::Pool& pool() {
    if (!held.pool) {
        held.ex.reset();
        held.pool = std::make_unique<mp::Pool>(mp::PoolOptions{.context = mp::get_context("mpi")});
    }
    return *held.pool;
}
mp::futures::ProcessPoolExecutor& executor() {
    if (!held.ex) {
        held.pool.reset();
        held.ex = std::make_unique<mp::futures::ProcessPoolExecutor>(
            mp::futures::ProcessPoolExecutorOptions{.mp_context = mp::get_context("mpi")});
    }
    return *held.ex;
}
bool under_mpirun(benchmark::State& state) {
    if (mp::mpi::world_size() >= 3) return true;
    state.SkipWithError("run under mpirun -n 3 (benchmarks/run.py does)");
    return false;
}

void map_100k_mp(benchmark::State& state) {
    if (!under_mpirun(state)) return;
    std::vector<long long> xs(100000);
    std::iota(xs.begin(), xs.end(), 0LL);
    (void)pool().map(sqr, xs);
    for (auto _ : state) benchmark::DoNotOptimize(pool().map(sqr, xs));
    state.SetItemsProcessed(state.iterations() * 100000);
}

void apply_roundtrip_mp(benchmark::State& state) {
    if (!under_mpirun(state)) return;
    long long x = 0;
    for (auto _ : state) benchmark::DoNotOptimize(pool().apply_async(sqr, ++x).get());
}

void submit_roundtrip_mp(benchmark::State& state) {
    if (!under_mpirun(state)) return;
    auto& ex = executor();
    long long x = 0;
    (void)ex.submit(sqr, 1).result();
    for (auto _ : state) benchmark::DoNotOptimize(ex.submit(sqr, ++x).result());
}

/// The same map on a local process Pool of as many workers as serving ranks (fork; its workers
/// make no MPI call), in this program, so that both use the same items under the same load.
void cpu_bound_local(benchmark::State& state) {
    if (!under_mpirun(state)) return;
    static mp::Pool local(mp::mpi::world_size() - 1, {.context = mp::get_context("fork")});
    std::vector<std::uint64_t> items(64, iters_for_2ms());
    (void)local.map(burn, std::vector<std::uint64_t>(2, 1000));
    for (auto _ : state) benchmark::DoNotOptimize(local.map(burn, items));
}

void cpu_bound_mp(benchmark::State& state) {
    if (!under_mpirun(state)) return;
    std::vector<std::uint64_t> items(64, iters_for_2ms());
    (void)pool().map(burn, std::vector<std::uint64_t>(2, 1000));
    for (auto _ : state) benchmark::DoNotOptimize(pool().map(burn, items));
}

}  // namespace

BENCHMARK(map_100k_mp)->UseRealTime()->Unit(benchmark::kMillisecond)->Name("mpi_map_100k/mp");
BENCHMARK(apply_roundtrip_mp)->UseRealTime()->Unit(benchmark::kMicrosecond)->Name("mpi_apply_roundtrip/mp");
BENCHMARK(cpu_bound_mp)->UseRealTime()->Unit(benchmark::kMillisecond)->Name("mpi_cpu_bound/mp");
BENCHMARK(cpu_bound_local)->UseRealTime()->Unit(benchmark::kMillisecond)->Name("mpi_cpu_bound/raw");
BENCHMARK(submit_roundtrip_mp)->UseRealTime()->Unit(benchmark::kMicrosecond)->Name("mpi_submit_roundtrip/mp");

int main(int argc, char** argv) {
    mp::freeze_support();  // ranks 1..N-1 serve here
    const int rc = mp_bench::run_benchmarks(argc, argv);
    held = {};  // the pools end before MPI does (at exit)
    return rc;
}
