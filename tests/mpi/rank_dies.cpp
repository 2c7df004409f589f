// A serving rank that dies mid-task (SIGKILL on itself) never leaves rank 0 waiting.
//   - under `mpirun -n 3 mpi_rank_dies`: Open MPI ends the whole job (its default error handler,
//     MPI_ERRORS_ARE_FATAL, and mpirun's reaction to a rank lost without finalizing), rank 0
//     included; run.sh checks that mpirun exits non-zero within the bound;
//   - as a singleton `./mpi_rank_dies`: Open MPI aborts the spawned job but not its parent, so the
//     pool finds its ranks gone (their pids, on this host): the task fails with
//     mp::WorkerLostError, a later task fails saying no worker runs, and the program exits 0.
// Either way run.sh checks that no rank or orted is left.
#include <multiprocessing.hpp>
#include <multiprocessing/mpi.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace mp = multiprocessing;

int die(int x) {
    if (x == 1) ::kill(::getpid(), SIGKILL);
    return x;
}

int main() {
    mp::freeze_support();
    const bool singleton = mp::mpi::world_size() == 1;
    {
        mp::Pool pool(2, {.context = mp::get_context("mpi")});
        auto r = pool.apply_async(die, 1);
        std::printf("rank 0: submitted the task that kills its rank\n");
        std::fflush(stdout);
        try {
            (void)r.get(std::chrono::seconds(30));
            std::printf("rank 0: FAILED: the task returned\n");
            return 4;
        } catch (const mp::WorkerLostError& e) {
            std::printf("rank 0: the task failed with WorkerLostError: %s\n", e.what());
        } catch (const std::exception& e) {
            std::printf("rank 0: FAILED: the task failed otherwise: %s\n", e.what());
            return 5;
        }
        // The other rank died with it (Open MPI aborted the spawned job): no worker is left.
        try {
            (void)pool.apply_async(die, 2).get(std::chrono::seconds(30));
            std::printf("rank 0: a later task ran\n");
        } catch (const std::exception& e) {
            std::printf("rank 0: a later task failed: %s\n", e.what());
        }
        std::fflush(stdout);
    }
    std::printf("rank 0: the pool ended\n");
    std::fflush(stdout);
    return singleton ? 0 : 3;  // under mpirun, only reached if Open MPI did not end the job
}
