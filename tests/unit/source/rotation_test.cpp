#include "relayban/source/rotation.hpp"

#include <catch2/catch.hpp>

using namespace relayban;

namespace {
FileIdentity F(uint64_t ino, uint64_t size) { return {1, ino, size}; }
}  // namespace

TEST_CASE("the same file grows: keep reading from our offset") {
  CHECK(DecideTail(F(10, 100), 100, F(10, 150)) == TailAction::kKeepReading);
}

TEST_CASE("copytruncate: the same file got shorter, read it again from the start") {
  CHECK(DecideTail(F(10, 100), 100, F(10, 20)) == TailAction::kRewind);
}

TEST_CASE("rename and create, or delete and recreate: switch to the new file") {
  CHECK(DecideTail(F(10, 100), 100, F(11, 0)) == TailAction::kSwitchToNew);
}

TEST_CASE("the path names nothing: finish the open file, then wait") {
  CHECK(DecideTail(F(10, 100), 100, std::nullopt) == TailAction::kKeepReading);
  CHECK(DecideTail(std::nullopt, 0, std::nullopt) == TailAction::kWaitForFile);
  CHECK(DecideTail(std::nullopt, 0, F(12, 5)) == TailAction::kSwitchToNew);  // it appeared
}

TEST_CASE("at start-up: resume the same file, restart a rotated one, skip history otherwise") {
  CHECK(StartOffset(F(10, 0), 500, F(10, 800)) == 500);
  CHECK(StartOffset(F(10, 0), 500, F(11, 800)) == 0);  // rotated while we were down
  CHECK(StartOffset(F(10, 0), 500, F(10, 100)) == 0);  // truncated while we were down
  CHECK(StartOffset(std::nullopt, 0, F(10, 800)) == 800);  // first start: begin at the end
}
