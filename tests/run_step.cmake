# step(<what> <command...>): runs one step of a cmake -P test script (tests/consumer,
# tests/clang); on failure prints its output and fails the test, naming the step. Its output is
# left in step_output. The caller sets STEP_PREFIX, the test's name in the messages.
function(step what)
  message(STATUS "${STEP_PREFIX}: ${what}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${STEP_PREFIX}: ${what} failed (${rc}):\n${out}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()
