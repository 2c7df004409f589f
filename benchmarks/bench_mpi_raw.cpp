// The raw baseline of bench_mpi's round trips: an MPI_Send/MPI_Recv ping-pong of an int between
// rank 0 and rank 1, nothing of the library. Run as `mpirun --oversubscribe -n 2 bench_mpi_raw`
// (benchmarks/run.py): rank 0 runs the benchmark, rank 1 echoes until told to stop.
//   mpi_pingpong/raw     one round trip
#include <benchmark/benchmark.h>
#include <mpi.h>

namespace {

constexpr int tag = 1, stop_tag = 2;

void pingpong(benchmark::State& state) {
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size < 2) return state.SkipWithError("run under mpirun -n 2");
    int v = 0;
    for (auto _ : state) {
        MPI_Send(&v, 1, MPI_INT, 1, tag, MPI_COMM_WORLD);
        MPI_Recv(&v, 1, MPI_INT, 1, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        ++v;
    }
}

}  // namespace

BENCHMARK(pingpong)->UseRealTime()->Unit(benchmark::kMicrosecond)->Name("mpi_pingpong/raw");

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (rank == 0) {
        benchmark::Initialize(&argc, argv);
        benchmark::RunSpecifiedBenchmarks();
        benchmark::Shutdown();
        for (int r = 1; r < size; ++r) MPI_Send(&rank, 1, MPI_INT, r, stop_tag, MPI_COMM_WORLD);
    } else {
        for (;;) {
            int v = 0;
            MPI_Status st;
            MPI_Recv(&v, 1, MPI_INT, 0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
            if (st.MPI_TAG == stop_tag) break;
            MPI_Send(&v, 1, MPI_INT, 0, tag, MPI_COMM_WORLD);
        }
    }
    MPI_Finalize();
    return 0;
}
