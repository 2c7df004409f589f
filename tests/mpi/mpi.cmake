# The "mpi" context's tests (included by tests/CMakeLists.txt), where MPI is found:
#   mpi.pool_mpirun      tests/test_mpi.cpp under `mpirun -n 3` (rank 0 runs Catch2, 2 ranks serve)
#   mpi.pool_singleton   the same cases as a singleton: each pool spawns its 2 ranks
#   mpi.mismatched_build a rank running another build of the program is refused, never called
#   mpi.rank_dies        a rank that dies mid-task ends the job within a bound (Open MPI aborts it)
# Each is run by tests/mpi/run.sh, which bounds it and checks that no rank, orted or spawned
# process is left behind. Label `mpi`; RUN_SERIAL: three ranks probing for messages on a 2-core
# machine would slow the timing-sensitive tests beside them, and be slowed by them.
# Under ASan + UBSan they run with LeakSanitizer off: Open MPI leaks at exit by design (about 120 KB
# in 3400 blocks of libopen-pal, hwloc and libmpi, each run); nothing else is reported. Not under
# TSan: Open MPI's uninstrumented progress threads make its reports about Open MPI.
if(NOT TARGET multiprocessing::mpi)
  message(STATUS "MPI not found: the `mpi` tests are left out (Debian: apt-get install openmpi-bin libopenmpi-dev)")
  return()
endif()
if(_mp_sanitize STREQUAL "thread")
  message(STATUS "the `mpi` tests are left out of the TSan build (Open MPI is not instrumented)")
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
add_test(NAME mpi.rank_dies_singleton
  COMMAND ${_mp_run} --expect "rank 0: the task failed with WorkerLostError: .*MPI rank .* is gone"
    --expect "rank 0: the pool ended" 0 60 $<TARGET_FILE:mpi_rank_dies>)
set_tests_properties(mpi.pool_mpirun mpi.pool_singleton mpi.mismatched_build mpi.rank_dies mpi.rank_dies_singleton PROPERTIES
  TIMEOUT 180 LABELS mpi RUN_SERIAL TRUE
  ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;ASAN_OPTIONS=detect_leaks=0")
