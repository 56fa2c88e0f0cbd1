# Builds a consumer that pulls rtpush in with add_subdirectory.
file(REMOVE_RECURSE ${WORK_DIR})
function(run)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "failed: ${ARGN}\n${out}")
    endif()
endfunction()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/test/cmake_subdir/consumer -B ${WORK_DIR} -G ${GENERATOR}
    -DRTPUSH_SOURCE_DIR=${SOURCE_DIR} -DCMAKE_CXX_FLAGS=-O0)
run(${CMAKE_COMMAND} --build ${WORK_DIR})
run(${WORK_DIR}/consumer)
message(STATUS "add_subdirectory(rtpush) consumer built and ran")
