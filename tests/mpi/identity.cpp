// Built twice (mpi_identity_a, mpi_identity_b: MP_BUILD_NAME differs, so do the build-ids) and run
// as `mpirun -n 1 mpi_identity_a : -n 1 mpi_identity_b` (tests/mpi/mpi.cmake): rank 1 runs another
// build, so rank 0 refuses it (it exits 1 saying why) and a pool of the "mpi" context has no rank:
// it raises mp::ValueError naming the refusal. No task ever reaches the other build.
#include <multiprocessing.hpp>
#include <multiprocessing/mpi.hpp>

#include <cstdio>
#include <string>

namespace mp = multiprocessing;

int build_square(int x) { return x * x + static_cast<int>(sizeof(MP_BUILD_NAME)); }

int main() {
    mp::freeze_support();
    std::printf("rank 0 (build %s): world of %d\n", MP_BUILD_NAME, mp::mpi::world_size());
    try {
        mp::Pool pool(1, {.context = mp::get_context("mpi")});
        std::printf("rank 0: FAILED: a pool was made over a refused rank (%d)\n", pool.apply(build_square, 2));
        return 1;
    } catch (const mp::ValueError& e) {
        const bool named = std::string(e.what()).find("another build") != std::string::npos;
        std::printf("rank 0: %s: %s\n", named ? "the pool was refused as expected" : "FAILED: refused without the cause",
                    e.what());
        return named ? 0 : 1;
    }
}
