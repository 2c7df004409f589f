// The library's version (public macros, included as <multiprocessing/version.hpp>; here so that
// detail/process_wide.hpp can key its entries with it). CMakeLists.txt reads it from here for
// project(VERSION), so the CMake package, the pkg-config file and this header cannot disagree
// (tests/version_check.cpp checks).
#pragma once

/// Major version: changes that break users' code.
#define MULTIPROCESSING_VERSION_MAJOR 0
/// Minor version: additions.
#define MULTIPROCESSING_VERSION_MINOR 1
/// Patch version: fixes.
#define MULTIPROCESSING_VERSION_PATCH 0
/// One comparable number, MAJOR * 10000 + MINOR * 100 + PATCH (as FMT_VERSION): 0.1.0 is 100.
#define MULTIPROCESSING_VERSION                                                   \
    (MULTIPROCESSING_VERSION_MAJOR * 10000 + MULTIPROCESSING_VERSION_MINOR * 100 + \
     MULTIPROCESSING_VERSION_PATCH)
/// The version as "MAJOR.MINOR.PATCH".
#define MULTIPROCESSING_VERSION_STRING "0.1.0"
