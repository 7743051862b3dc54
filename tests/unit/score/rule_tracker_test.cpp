#include "relayban/score/rule_tracker.hpp"

#include <catch2/catch.hpp>

using namespace relayban;

namespace {
Time T(int s) { return Time(Micros(int64_t{1764150000 + s} * 1000000)); }
const IpAddress kIp = *IpAddress::Parse("203.0.113.9");
}  // namespace

TEST_CASE("the threshold-th event inside the window is a verdict") {
  IpWindows w(5, Seconds(600), false, 1000);
  for (int i = 0; i < 4; ++i) CHECK_FALSE(w.Add(kIp, 0, 1, T(i * 10)));
  CHECK(w.Add(kIp, 0, 1, T(50)));
  CHECK(w.size() == 0);  // the count restarts after a verdict
}

TEST_CASE("events that left the window do not count") {
  IpWindows w(3, Seconds(60), false, 1000);
  CHECK_FALSE(w.Add(kIp, 0, 1, T(0)));
  CHECK_FALSE(w.Add(kIp, 0, 1, T(30)));
  CHECK_FALSE(w.Add(kIp, 0, 1, T(100)));  // the first two are gone
  CHECK_FALSE(w.Add(kIp, 0, 1, T(120)));
  CHECK(w.Add(kIp, 0, 1, T(130)));
}

TEST_CASE("a weighted event counts as many attempts, up to the threshold") {
  IpWindows w(5, Seconds(600), false, 1000);
  CHECK_FALSE(w.Add(kIp, 0, 3, T(0)));
  CHECK(w.Add(kIp, 0, 2, T(1)));
}

TEST_CASE("distinct counting ignores repeats of the same value") {
  AccountWindows w(3, Seconds(3600), true, 1000);
  CHECK_FALSE(w.Add(std::string("test"), 111, 1, T(0)));
  CHECK_FALSE(w.Add(std::string("test"), 111, 1, T(1)));
  CHECK_FALSE(w.Add(std::string("test"), 222, 1, T(2)));
  CHECK_FALSE(w.Add(std::string("test"), 222, 1, T(3)));
  CHECK(w.Add(std::string("test"), 333, 1, T(4)));
}

TEST_CASE("keys are counted separately") {
  AccountWindows w(2, Seconds(3600), false, 1000);
  CHECK_FALSE(w.Add(std::string("a"), 0, 1, T(0)));
  CHECK_FALSE(w.Add(std::string("b"), 0, 1, T(0)));
  CHECK(w.Add(std::string("a"), 0, 1, T(1)));
}

TEST_CASE("idle keys are swept and the key count is capped") {
  IpWindows w(10, Seconds(60), false, 100);
  for (uint32_t i = 0; i < 1000; ++i) w.Add(IpAddress::V4(0xC0000200u + i), 0, 1, T(static_cast<int>(i)));
  CHECK(w.size() <= 100);
  CHECK(w.evicted() >= 900);
  w.Sweep(T(5000));
  CHECK(w.size() == 0);
}

TEST_CASE("memory per key is bounded by the threshold") {
  WindowState s;
  for (uint32_t i = 0; i < 10000; ++i) CHECK(s.Add(i, 1, 1000, true, 50, 3600) <= 50);
}
