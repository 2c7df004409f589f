// The test runner's main: freeze_support() first, so the test binary itself can be spawned
// (a spawned child runs its task there and exits instead of running the suite).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <multiprocessing.hpp>

int main(int argc, char* argv[]) {
    multiprocessing::freeze_support();
    return Catch::Session().run(argc, argv);
}
