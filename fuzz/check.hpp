// Invariant checks for the fuzz targets. A broken invariant aborts, which libFuzzer
// reports as a crash and saves the input that caused it.
#pragma once

#include <cstdio>
#include <cstdlib>

#define SHOAL_FUZZ_STR2(x) #x
#define SHOAL_FUZZ_STR(x) SHOAL_FUZZ_STR2(x)

// Unlike assert(), active in every build type (the fuzz build is RelWithDebInfo).
#define FUZZ_CHECK(cond)                                                                                     \
  do {                                                                                                       \
    if (!(cond)) {                                                                                           \
      std::fprintf(stderr, "%s\n", "invariant broken at " __FILE__ ":" SHOAL_FUZZ_STR(__LINE__) ": " #cond); \
      std::abort();                                                                                          \
    }                                                                                                        \
  } while (0)
