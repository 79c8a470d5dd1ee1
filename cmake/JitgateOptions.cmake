# Build options: warnings, sanitizers, fuzzing.
option(JITGATE_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(JITGATE_FUZZ "Build libFuzzer targets (requires clang)" OFF)
option(JITGATE_BUILD_BENCH "Build the benchmark programs in bench/" ON)
option(JITGATE_WERROR "Treat warnings as errors" OFF)
option(JITGATE_BUILD_TESTS "Build unit tests and fuzz corpus replays" ON)

set(JITGATE_WARNINGS -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wcast-align
    -Wunused -Woverloaded-virtual -Wformat=2 -Wimplicit-fallthrough)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  list(APPEND JITGATE_WARNINGS -Wthread-safety)
endif()
if(JITGATE_WERROR)
  list(APPEND JITGATE_WARNINGS -Werror)
endif()
add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${JITGATE_WARNINGS}>")
add_compile_options(-fno-omit-frame-pointer)

if(JITGATE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(JITGATE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "JITGATE_FUZZ=ON needs clang (CXX=clang++)")
  endif()
  # Instrument everything for coverage; the fuzz targets add -fsanitize=fuzzer at link.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# jitgate_add_test(NAME SOURCES... LIBS ... [TEST_PREFIX P]): a GoogleTest binary
# registered with ctest; TEST_PREFIX is put before each discovered test's name
# (e.g. "pam_jitgate_test." so that `ctest -R pam` selects them).
function(jitgate_add_test name)
  if(NOT JITGATE_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(T "" "TEST_PREFIX" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} jitgate_testing GTest::gtest GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 TEST_PREFIX "${T_TEST_PREFIX}"
    PROPERTIES ENVIRONMENT "JITGATE_TESTDATA=${JITGATE_TESTDATA}")
endfunction()

# jitgate_add_fuzzer(NAME SOURCES... LIBS...): a libFuzzer target whose corpus
# lives in tests/fuzz/corpus/NAME. With JITGATE_FUZZ=ON it links libFuzzer;
# otherwise it links a stub main() that runs every corpus file once, and ctest
# replays the corpus (sudo's fuzzstub.c model).
function(jitgate_add_fuzzer name)
  if(NOT JITGATE_BUILD_TESTS AND NOT JITGATE_FUZZ)
    return()
  endif()
  cmake_parse_arguments(F "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${F_SOURCES})
  target_link_libraries(${name} PRIVATE ${F_LIBS})
  if(JITGATE_FUZZ)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  else()
    target_link_libraries(${name} PRIVATE jitgate_fuzz_stub)
  endif()
  set(corpus ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${name})
  add_test(NAME ${name}_corpus COMMAND ${name} ${corpus})
  set_tests_properties(${name}_corpus PROPERTIES LABELS fuzz)
endfunction()
