# Provides the target benchmark::benchmark (Google Benchmark) for bench/.
#
# An installed copy wins (Debian/Ubuntu: apt-get install libbenchmark-dev; or any prefix on
# CMAKE_PREFIX_PATH), so the usual build needs no network. Otherwise a pinned release is
# downloaded and built with the project, with its own tests switched off.
include_guard(GLOBAL)

set(FASTSOFTMAX_BENCHMARK_TAG v1.8.3)

find_package(benchmark CONFIG QUIET)
if(benchmark_FOUND)
  message(STATUS "fastsoftmax: Google Benchmark ${benchmark_VERSION} found at ${benchmark_DIR}")
else()
  message(STATUS "fastsoftmax: Google Benchmark not found; fetching ${FASTSOFTMAX_BENCHMARK_TAG}")
  include(FetchContent)
  FetchContent_Declare(googlebenchmark
    GIT_REPOSITORY https://github.com/google/benchmark.git
    GIT_TAG ${FASTSOFTMAX_BENCHMARK_TAG}
    GIT_SHALLOW TRUE)
  set(BENCHMARK_ENABLE_TESTING OFF CACHE BOOL "" FORCE)
  set(BENCHMARK_ENABLE_GTEST_TESTS OFF CACHE BOOL "" FORCE)
  # Not part of fastsoftmax's install, and newer compilers' new warnings must not break the build.
  set(BENCHMARK_ENABLE_INSTALL OFF CACHE BOOL "" FORCE)
  set(BENCHMARK_ENABLE_WERROR OFF CACHE BOOL "" FORCE)
  FetchContent_MakeAvailable(googlebenchmark)
endif()

if(NOT TARGET benchmark::benchmark)
  message(FATAL_ERROR "fastsoftmax: Google Benchmark provides no benchmark::benchmark target")
endif()
