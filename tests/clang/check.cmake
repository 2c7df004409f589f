# The Clang checks (CTest label `clang`): the library and its examples must build with Clang as
# well as GCC, under the project's -Wall -Wextra -Wpedantic -Wshadow -Werror, and values pickled
# by a GCC-built program must load in a Clang-built one and back (issue 14, bugs 6 and 8).
#   cmake -DCLANG=<clang++> -DMP_SOURCE_DIR=<repo> -DWORK_DIR=<scratch> -DGCC_EXCHANGE=<gcc-built
#         pickle_exchange> [-DGENERATOR=...] [-DMAKE_PROGRAM=...] [-DBoost_DIR=...] -P check.cmake
# Kept small for CI's time: the examples parsed and instantiated only (-fsyntax-only; codegen
# is not what is checked; project/),
# test_pickle.cpp parsed only, and one small program built and run both ways.
cmake_minimum_required(VERSION 3.25)
foreach(var CLANG MP_SOURCE_DIR WORK_DIR GCC_EXCHANGE)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "check.cmake: -D${var}=... is required")
  endif()
endforeach()

set(STEP_PREFIX "clang")
include("${CMAKE_CURRENT_LIST_DIR}/../run_step.cmake")

set(build "${WORK_DIR}/build")
set(common -DCMAKE_BUILD_TYPE= "-DCMAKE_CXX_COMPILER=${CLANG}")
if(GENERATOR)
  list(APPEND common -G "${GENERATOR}")
endif()
if(MAKE_PROGRAM)
  list(APPEND common "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
if(Boost_DIR)
  list(APPEND common "-DBoost_DIR=${Boost_DIR}")
endif()
file(MAKE_DIRECTORY "${WORK_DIR}")

step("configure tests/clang/project with ${CLANG}" "${CMAKE_COMMAND}" -S "${CMAKE_CURRENT_LIST_DIR}/project"
     -B "${build}" ${common} "-DMP_SOURCE_DIR=${MP_SOURCE_DIR}")
message(STATUS "${step_output}")
cmake_host_system_information(RESULT cores QUERY NUMBER_OF_LOGICAL_CORES)
step("build the examples and pickle_exchange with -Werror" "${CMAKE_COMMAND}" --build "${build}" -j ${cores})

set(flags -std=c++20 -Wall -Wextra -Wpedantic -Wshadow -Werror "-I${MP_SOURCE_DIR}/include")
step("parse tests/test_pickle.cpp with -Werror" "${CLANG}" ${flags} -fsyntax-only "${MP_SOURCE_DIR}/tests/test_pickle.cpp")
set(exchange "${build}/pickle_exchange")

# GCC writes, Clang reads; Clang writes, GCC reads.
step("GCC-built pickle_exchange writes" "${GCC_EXCHANGE}" write "${WORK_DIR}/from_gcc.bin")
step("Clang-built pickle_exchange reads GCC's values" "${exchange}" read "${WORK_DIR}/from_gcc.bin")
message(STATUS "${step_output}")
step("Clang-built pickle_exchange writes" "${exchange}" write "${WORK_DIR}/from_clang.bin")
step("GCC-built pickle_exchange reads Clang's values" "${GCC_EXCHANGE}" read "${WORK_DIR}/from_clang.bin")
message(STATUS "${step_output}")
message(STATUS "clang: OK")
