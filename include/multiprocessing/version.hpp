// The library's version: MULTIPROCESSING_VERSION_MAJOR, _MINOR, _PATCH, MULTIPROCESSING_VERSION
// and MULTIPROCESSING_VERSION_STRING. Defined in detail/version.hpp, which the process-wide
// state keys its entries with (detail/process_wide.hpp) and CMakeLists.txt reads.
#pragma once

#include "detail/version.hpp"
