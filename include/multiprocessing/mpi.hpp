// The "mpi" context (optional: not in the umbrella header; CMake target multiprocessing::mpi):
// a Pool's or a ProcessPoolExecutor's workers are MPI ranks (Open MPI), as mpi4py.futures'
// MPIPoolExecutor. The same code runs on one machine or a cluster:
//
//     #include <multiprocessing.hpp>
//     #include <multiprocessing/mpi.hpp>
//     namespace mp = multiprocessing;
//     int main() {
//         mp::freeze_support();                      // ranks 1..N-1 serve here and never return
//         mp::Pool pool({.context = mp::get_context("mpi")});   // one worker per serving rank
//         auto squares = pool.map(square, xs);
//     }
//
//     mpirun -n 5 ./app      # rank 0 runs main, 4 ranks serve its pools
//     ./app                  # a singleton: the pool spawns its ranks (MPI_Comm_spawn of ./app)
//
// Tasks travel as in a spawn pool (functions by module + offset), so every rank must run the same
// binary: each one's build-id is checked against rank 0's at start, and a rank of another build
// is refused (it exits 1 saying why; a pool then has fewer ranks, or raises mp::ValueError).
// Process, Queue, Value, locks and the arena stay on one machine: Process(mp::get_context("mpi"),
// ...) raises mp::ValueError, and so does a shared object sent to a rank as a task's argument.
// A rank that dies ends the job (Open MPI aborts it: mpirun kills every rank and exits non-zero).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "context.hpp"
#include "detail/context_extension.hpp"
#include "detail/mpi_workers.hpp"
#include "detail/mpi_world.hpp"

namespace multiprocessing::mpi {

namespace detail_ {
inline int default_processes() { return multiprocessing::detail::mpi::default_processes_for(cpu_count()); }
}  // namespace detail_

/// The "mpi" context's definition (see detail::context_extension).
inline constexpr detail::context_extension extension{
    "mpi",
    "multiprocessing: the \"mpi\" context runs the workers of Pool and ProcessPoolExecutor on MPI ranks; "
    "Process, Queue, Value, locks, managers and the arena stay on one machine: use a start method's context "
    "(\"fork\", \"spawn\" or \"forkserver\") for them",
    &detail_::default_processes,
    &detail::mpi::make_pool_workers,
    &detail::mpi::child_main,
};

/// Registered when this header is included: get_context("mpi") finds it, and freeze_support()
/// makes ranks 1..N-1 (or spawned ranks) serve.
inline const bool registered = detail::register_context_extension(extension);

/// The "mpi" context: `mp::Pool pool(4, {.context = mp::mpi::context()})`.
[[nodiscard]] inline Context context() noexcept {
    (void)registered;
    return Context(extension);
}

/// This process's rank in MPI_COMM_WORLD (0 before MPI is initialised).
[[nodiscard]] inline int rank() noexcept { return detail::mpi::the_world().rank; }

/// The number of ranks in MPI_COMM_WORLD (1 before MPI is initialised, or for a singleton).
[[nodiscard]] inline int world_size() noexcept { return detail::mpi::the_world().size; }

}  // namespace multiprocessing::mpi
