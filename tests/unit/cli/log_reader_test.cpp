#include "cli/log_reader.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

using namespace relayban;

namespace {
std::vector<std::string> ReadAll(const std::string& content, size_t max_line) {
  char path[] = "/tmp/relayban-reader-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
  close(fd);
  std::vector<std::string> lines;
  uint64_t expect_number = 0;
  auto r = ReadLogLines(path, max_line, [&](std::string_view line, uint64_t number) {
    CHECK(number == ++expect_number);
    lines.emplace_back(line);
  });
  unlink(path);
  REQUIRE(r);
  return lines;
}
}  // namespace

TEST_CASE("the reader hands out every line of a mapped file, whatever the lengths") {
  // Lengths around the 16- and 64-byte blocks the newline scan works in, empty lines too.
  std::vector<std::string> want;
  std::string content;
  for (size_t len : {0u, 1u, 15u, 16u, 17u, 63u, 64u, 65u, 0u, 127u, 128u, 129u, 200u, 3u}) {
    std::string line;
    for (size_t i = 0; i < len; ++i) line += static_cast<char>('a' + (i + want.size()) % 26);
    want.push_back(line);
    content += line + "\n";
  }
  CHECK(ReadAll(content, 1000) == want);
  // Without the final newline the last line still comes out, once.
  content.pop_back();
  CHECK(ReadAll(content, 1000) == want);
}

TEST_CASE("the reader cuts an overlong line to one byte past the limit") {
  std::string content = std::string(300, 'x') + "\nshort\n";
  auto lines = ReadAll(content, 100);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].size() == 101);
  CHECK(lines[1] == "short");
}
