# Fails when any C++ file differs from what clang-format would make of it.
file(GLOB_RECURSE files ${SOURCE_DIR}/include/*.hpp ${SOURCE_DIR}/tools/*.hpp ${SOURCE_DIR}/tools/*.cpp
     ${SOURCE_DIR}/test/*.cpp ${SOURCE_DIR}/test/*.hpp ${SOURCE_DIR}/examples/*.cpp ${SOURCE_DIR}/bench/*.cpp)
list(FILTER files EXCLUDE REGEX "/build[^/]*/")
execute_process(COMMAND ${CLANG_FORMAT} --dry-run --Werror ${files} RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "clang-format: files need formatting (run clang-format -i):\n${err}")
endif()
list(LENGTH files n)
message(STATUS "clang-format: ${n} files clean")
