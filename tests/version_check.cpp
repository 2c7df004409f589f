// The version macros agree with the CMake project's version (given as MP_CMAKE_VERSION*), and
// the umbrella header brings them.
#include <multiprocessing.hpp>

#include <cstdio>
#include <cstring>

static_assert(MULTIPROCESSING_VERSION_MAJOR == MP_CMAKE_VERSION_MAJOR, "version.hpp: MAJOR differs from CMake's");
static_assert(MULTIPROCESSING_VERSION_MINOR == MP_CMAKE_VERSION_MINOR, "version.hpp: MINOR differs from CMake's");
static_assert(MULTIPROCESSING_VERSION_PATCH == MP_CMAKE_VERSION_PATCH, "version.hpp: PATCH differs from CMake's");
static_assert(MULTIPROCESSING_VERSION ==
                  MP_CMAKE_VERSION_MAJOR * 10000 + MP_CMAKE_VERSION_MINOR * 100 + MP_CMAKE_VERSION_PATCH,
              "version.hpp: MULTIPROCESSING_VERSION is not MAJOR * 10000 + MINOR * 100 + PATCH");

int main() {
    if (std::strcmp(MULTIPROCESSING_VERSION_STRING, MP_CMAKE_VERSION) != 0) {
        std::printf("version.hpp says %s, CMake says %s\n", MULTIPROCESSING_VERSION_STRING, MP_CMAKE_VERSION);
        return 1;
    }
    std::printf("version %s (%d)\n", MULTIPROCESSING_VERSION_STRING, MULTIPROCESSING_VERSION);
    return 0;
}
