# Builds and runs the consumer project (tests/consumer/project) the way a user would use the library.
#   cmake -DMODE=find_package|add_subdirectory -DMP_SOURCE_DIR=<repo> -DCONSUMER_DIR=<consumer project>
#         -DWORK_DIR=<scratch dir> [-DGENERATOR=...] [-DMAKE_PROGRAM=...] [-DCXX_COMPILER=...]
#         [-DBoost_DIR=...] -P run_consumer.cmake
# find_package:     configure + build + install multiprocessing into WORK_DIR/prefix, then build the
#                   consumer with CMAKE_PREFIX_PATH=WORK_DIR/prefix and find_package(multiprocessing CONFIG).
# add_subdirectory: build the consumer with -DMP_SOURCE_DIR=<repo>, so it does add_subdirectory(<repo>).
cmake_minimum_required(VERSION 3.25)

foreach(var MODE MP_SOURCE_DIR CONSUMER_DIR WORK_DIR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT MODE MATCHES "^(find_package|add_subdirectory)$")
  message(FATAL_ERROR "run_consumer.cmake: MODE must be find_package or add_subdirectory, not '${MODE}'")
endif()

# The same toolchain as the build that runs this test, and a fresh scratch directory every time.
set(common -DCMAKE_BUILD_TYPE=Release)
if(GENERATOR)
  list(APPEND common -G "${GENERATOR}")
endif()
foreach(pair "MAKE_PROGRAM;CMAKE_MAKE_PROGRAM" "CXX_COMPILER;CMAKE_CXX_COMPILER" "Boost_DIR;Boost_DIR")
  list(GET pair 0 from)
  list(GET pair 1 to)
  if(${from})
    list(APPEND common "-D${to}=${${from}}")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(STEP_PREFIX "consumer.${MODE}")
include("${CMAKE_CURRENT_LIST_DIR}/../run_step.cmake")

set(consumer_build "${WORK_DIR}/consumer-build")
if(MODE STREQUAL "find_package")
  set(mp_build "${WORK_DIR}/multiprocessing-build")
  set(prefix "${WORK_DIR}/prefix")
  # BUILD_TESTING=OFF, CTest's standard switch, must be enough to leave the tests (and Catch2) out.
  step("configure multiprocessing" "${CMAKE_COMMAND}" -S "${MP_SOURCE_DIR}" -B "${mp_build}" ${common}
       -DBUILD_TESTING=OFF -DMP_BUILD_EXAMPLES=OFF -DMP_BUILD_BENCHMARKS=OFF "-DCMAKE_INSTALL_PREFIX=${prefix}")
  if(EXISTS "${mp_build}/tests")
    message(FATAL_ERROR "consumer.${MODE}: -DBUILD_TESTING=OFF still configured the tests (${mp_build}/tests)")
  endif()
  step("build multiprocessing" "${CMAKE_COMMAND}" --build "${mp_build}")
  # Installed somewhere else than CMAKE_INSTALL_PREFIX said, as packagers do: nothing may point back.
  step("install multiprocessing into ${prefix}" "${CMAKE_COMMAND}" --install "${mp_build}" --prefix "${prefix}")
  file(READ "${MP_SOURCE_DIR}/include/multiprocessing/detail/version.hpp" version_header)
  string(REGEX MATCH "MULTIPROCESSING_VERSION_STRING \"([0-9.]+)\"" _ "${version_header}")
  set(header_version "${CMAKE_MATCH_1}")
  foreach(file share/doc/multiprocessing/LICENSE share/pkgconfig/multiprocessing.pc
               include/multiprocessing/version.hpp include/multiprocessing/detail/version.hpp)
    if(NOT EXISTS "${prefix}/${file}")
      message(FATAL_ERROR "consumer.${MODE}: the install has no ${file}")
    endif()
  endforeach()

  # pkg-config, for builds without CMake: its flags alone must build and run the consumer.
  find_program(PKG_CONFIG_EXECUTABLE NAMES pkg-config pkgconf)
  if(PKG_CONFIG_EXECUTABLE AND CXX_COMPILER)
    set(ENV{PKG_CONFIG_PATH} "${prefix}/share/pkgconfig")
    step("pkg-config --modversion multiprocessing" "${PKG_CONFIG_EXECUTABLE}" --modversion multiprocessing)
    string(STRIP "${step_output}" pc_version)
    if(NOT pc_version STREQUAL header_version)
      message(FATAL_ERROR "consumer.${MODE}: pkg-config says ${pc_version}, version.hpp says ${header_version}")
    endif()
    step("pkg-config --cflags --libs multiprocessing" "${PKG_CONFIG_EXECUTABLE}" --cflags --libs multiprocessing)
    string(STRIP "${step_output}" pc_flags)
    separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
    if(NOT pc_flags MATCHES "-I${prefix}/share/pkgconfig/../../include")
      message(FATAL_ERROR "consumer.${MODE}: pkg-config's flags do not name the installed headers: ${pc_flags}")
    endif()
    step("build the consumer with pkg-config's flags" "${CXX_COMPILER}" -std=c++20 -O1 -Wall -Wextra -Werror
         "-DMP_EXPECTED_VERSION=\"${header_version}\"" ${pc_flags} "${CONSUMER_DIR}/main.cpp"
         -o "${WORK_DIR}/consumer-pkg-config" ${pc_flags})
    step("run the pkg-config consumer" "${WORK_DIR}/consumer-pkg-config")
    message(STATUS "${step_output}")
  else()
    message(STATUS "consumer.${MODE}: no pkg-config found; the pkg-config check is skipped")
  endif()
  step("configure the consumer with find_package" "${CMAKE_COMMAND}" -S "${CONSUMER_DIR}" -B "${consumer_build}"
       ${common} "-DCMAKE_PREFIX_PATH=${prefix}" "-DMP_EXPECTED_PREFIX=${prefix}"
       -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
else()
  step("configure the consumer with add_subdirectory" "${CMAKE_COMMAND}" -S "${CONSUMER_DIR}"
       -B "${consumer_build}" ${common} "-DMP_SOURCE_DIR=${MP_SOURCE_DIR}")
endif()
step("build the consumer" "${CMAKE_COMMAND}" --build "${consumer_build}")
step("run the consumer" "${consumer_build}/consumer")
message(STATUS "${step_output}")
