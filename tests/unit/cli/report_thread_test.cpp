// ReportThread: what `check` writes is formatted on a thread of its own from chunks handed
// over and recycled. Every item must come out once, in the order it went in, with the items
// handed back empty, however far the formatter lags behind.
#include "cli/report_thread.hpp"

#include <catch2/catch.hpp>

#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

using namespace relayban;

namespace {
// An item as EngineOutput is one: a vector that keeps its storage when cleared.
using Item = std::vector<int>;
}  // namespace

TEST_CASE("a report thread formats every item once, in order, and hands the storage back empty") {
  for (size_t chunk : {1u, 3u, 64u}) {
    std::vector<int> seen;
    {
      ReportThread<Item> t([&](Item& item) { seen.insert(seen.end(), item.begin(), item.end()); }, chunk, 3);
      Item item;
      int next = 0;
      for (int i = 0; i < 5000; ++i) {
        REQUIRE(item.empty());  // what Add leaves: an item the thread emptied, or a new one
        for (int k = i % 3; k >= 0; --k) item.push_back(next++);
        t.Add(item);
      }
      t.Finish();
      std::vector<int> want(static_cast<size_t>(next));
      for (int k = 0; k < next; ++k) want[static_cast<size_t>(k)] = k;
      CHECK(seen == want);
    }
  }
}

TEST_CASE("a report thread that lags takes the queued chunks first in, first out, and holds the adder back") {
  // The formatter waits at the first item until the adder has queued every chunk it may:
  // the order must survive a queue that is full, and the adder must stop there.
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  int added = 0;
  std::vector<int> seen;
  constexpr size_t kChunk = 4, kChunks = 3;
  ReportThread<Item> t(
      [&](Item& item) {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return release; });
        seen.push_back(item.at(0));
      },
      kChunk, kChunks);
  std::thread adder([&] {
    for (int i = 0; i < 200; ++i) {
      Item item{i};
      t.Add(item);
      std::lock_guard<std::mutex> lock(mu);
      added = i + 1;
      cv.notify_all();
    }
  });
  {
    // One chunk is being formatted, the others full or filling: the adder gets no further
    // than those hold (it blocks taking a free one).
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return added >= static_cast<int>(kChunk * kChunks) - 1; });
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    CHECK(added <= static_cast<int>(kChunk * kChunks));
    release = true;
  }
  cv.notify_all();
  adder.join();
  t.Finish();
  std::vector<int> want;
  for (int i = 0; i < 200; ++i) want.push_back(i);
  CHECK(seen == want);
}

TEST_CASE("a report thread hands on what formatting threw, and formats nothing after it") {
  int formatted = 0;
  ReportThread<Item> t(
      [&](Item& item) {
        ++formatted;
        if (item.at(0) == 7) throw std::runtime_error("disk full");
      },
      2, 2);
  for (int i = 0; i < 20; ++i) {
    Item item{i};
    t.Add(item);
  }
  CHECK_THROWS_WITH(t.Finish(), "disk full");
  CHECK(formatted == 8);
}

TEST_CASE("blocks formatted two at a time are written once each, in order, whatever their number") {
  for (size_t count : {0u, 1u, 2u, 3u, 17u, 400u}) {
    std::vector<std::string> written;
    FormatInPairs(
        count, [](size_t k, std::string& text) { text = "block " + std::to_string(k); },
        [&](const std::string& text) { written.push_back(text); });
    std::vector<std::string> want;
    for (size_t k = 0; k < count; ++k) want.push_back("block " + std::to_string(k));
    CHECK(written == want);
  }
}

TEST_CASE("a block that fails to format stops the report after the blocks before it, on either thread") {
  for (size_t bad : {6u, 7u}) {  // an even block (this thread's) and an odd one (the helper's)
    std::vector<size_t> written;
    CHECK_THROWS_WITH(FormatInPairs(
                          40,
                          [&](size_t k, std::string& text) {
                            if (k == bad) throw std::runtime_error("no room");
                            text = std::to_string(k);
                          },
                          [&](const std::string& text) { written.push_back(std::stoul(text)); }),
                      "no room");
    std::vector<size_t> want;
    for (size_t k = 0; k < bad; ++k) want.push_back(k);
    CHECK(written == want);
  }
}
