// Skipping a test that cannot run here (a missing tool, an old kernel): it prints "SKIP:" and
// the reason, and ctest reports the test as skipped (SKIP_REGULAR_EXPRESSION), never passed.
#pragma once

#include <iostream>

#define RELAYBAN_SKIP(reason)                           \
  do {                                                  \
    std::cout << "SKIP: " << reason << std::endl;       \
    return;                                             \
  } while (0)
