// A serving rank that dies mid-task (SIGKILL on itself): Open MPI ends the whole job (its default
// error handler, MPI_ERRORS_ARE_FATAL, and mpirun's reaction to a rank lost without finalizing), so
// rank 0's wait ends with the job instead of hanging. Run by tests/mpi/mpi.cmake as
// `mpirun -n 3 mpi_rank_dies` under a bound; run.sh checks that mpirun exits non-zero, within the
// bound, and that no rank or orted is left.
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
    mp::Pool pool(2, {.context = mp::get_context("mpi")});
    auto r = pool.apply_async(die, 1);
    std::printf("rank 0: submitted the task that kills its rank\n");
    std::fflush(stdout);
    try {
        r.get(std::chrono::seconds(30));
        std::printf("rank 0: FAILED: the task returned\n");
    } catch (const std::exception& e) {
        std::printf("rank 0: the task failed: %s\n", e.what());
    }
    return 3;  // only reached if Open MPI did not end the job: exit non-zero either way
}
