# The "mpi" context's tests (included by tests/CMakeLists.txt), where MPI is found:
#   mpi.pool_mpirun      tests/test_mpi.cpp under `mpirun -n 3` (rank 0 runs Catch2, 2 ranks serve)
#   mpi.pool_singleton   the same cases as a singleton: each pool spawns its 2 ranks
#   mpi.mismatched_build a rank running another build of the program is refused, never called
#   mpi.rank_dies        a rank that dies mid-task ends the job within a bound (Open MPI aborts it)
# Each is run by tests/mpi/run.sh, which bounds it and checks that no rank, orted or spawned
# process is left behind. Label `mpi`. Not under the sanitizers: Open MPI's own leaks and its
# uninstrumented libraries make ASan's and TSan's reports about it, not about the library.
if(NOT TARGET multiprocessing::mpi)
  message(STATUS "MPI not found: the `mpi` tests are left out (Debian: apt-get install openmpi-bin libopenmpi-dev)")
  return()
endif()
if(MP_SANITIZE)
  message(STATUS "the `mpi` tests are left out of the sanitizer builds (Open MPI leaks, uninstrumented)")
  return()
endif()

add_executable(test_mpi test_mpi.cpp)
target_link_libraries(test_mpi PRIVATE mp_test_main multiprocessing::mpi)

# Two builds of one program that differ in their code, hence in their build-id.
foreach(build a b)
  add_executable(mpi_identity_${build} mpi/identity.cpp)
  target_compile_definitions(mpi_identity_${build} PRIVATE MP_BUILD_NAME="${build}")
  target_link_libraries(mpi_identity_${build} PRIVATE multiprocessing::mpi mp_project_options)
endforeach()
add_executable(mpi_rank_dies mpi/rank_dies.cpp)
target_link_libraries(mpi_rank_dies PRIVATE multiprocessing::mpi mp_project_options)

set(_mp_mpirun "${MPIEXEC_EXECUTABLE}" --allow-run-as-root --oversubscribe)
set(_mp_run bash ${CMAKE_CURRENT_SOURCE_DIR}/mpi/run.sh)
add_test(NAME mpi.pool_mpirun COMMAND ${_mp_run} 0 120 ${_mp_mpirun} -n 3 $<TARGET_FILE:test_mpi>)
add_test(NAME mpi.pool_singleton COMMAND ${_mp_run} 0 120 $<TARGET_FILE:test_mpi>)
add_test(NAME mpi.mismatched_build
  COMMAND ${_mp_run} --expect "rank 0: the pool was refused as expected" --expect "is refused: it runs another build"
    nonzero 60 ${_mp_mpirun} -n 1 $<TARGET_FILE:mpi_identity_a> : -n 1 $<TARGET_FILE:mpi_identity_b>)
add_test(NAME mpi.rank_dies
  COMMAND ${_mp_run} --expect "rank 0: submitted the task that kills its rank" nonzero 60 ${_mp_mpirun} -n 3
    $<TARGET_FILE:mpi_rank_dies>)
set_tests_properties(mpi.pool_mpirun mpi.pool_singleton mpi.mismatched_build mpi.rank_dies PROPERTIES
  TIMEOUT 180 LABELS mpi ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
