#include "parsed_reader.hpp"

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "log_reader.hpp"
#include "relayban/engine/parsed_lines.hpp"
#include "relayban/filter/filter_set.hpp"

namespace relayban {
namespace {

// Lines read and matched by the reading thread, on their way to the scoring one.
struct ParsedBatch {
  static constexpr size_t kLines = 2048;             // a batch is handed over at this many lines
  static constexpr size_t kBytes = size_t{1} << 20;  // or this much text
  ParsedLines lines{kLines, kBytes};
  std::optional<Error> error;  // the reading ended here with this
  bool last = false;
  void Clear() {
    lines.Clear();
    error.reset();
    last = false;
  }
};

// Batches go back and forth between the two threads: three of them, so that one is read
// while another is scored.
class BatchQueue {
 public:
  explicit BatchQueue(size_t batches) {
    for (size_t i = 0; i < batches; ++i) empty_.push_back(std::make_unique<ParsedBatch>());
  }
  // nullptr once stopped.
  std::unique_ptr<ParsedBatch> TakeEmpty() { return Take(empty_); }
  std::unique_ptr<ParsedBatch> TakeFull() { return Take(full_); }
  void GiveEmpty(std::unique_ptr<ParsedBatch> b) { Give(empty_, std::move(b)); }
  void GiveFull(std::unique_ptr<ParsedBatch> b) { Give(full_, std::move(b)); }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopped_ = true;
    }
    changed_.notify_all();
  }

 private:
  std::unique_ptr<ParsedBatch> Take(std::deque<std::unique_ptr<ParsedBatch>>& from) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [&] { return stopped_ || !from.empty(); });
    if (stopped_) return nullptr;
    auto b = std::move(from.front());
    from.pop_front();
    return b;
  }
  void Give(std::deque<std::unique_ptr<ParsedBatch>>& to, std::unique_ptr<ParsedBatch> b) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      to.push_back(std::move(b));
    }
    changed_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<std::unique_ptr<ParsedBatch>> empty_, full_;
  bool stopped_ = false;
};

}  // namespace

Result<void> ReadParsedLines(const Engine& engine, int source, const std::vector<std::string>& paths, size_t max_line,
                             Time now, const OnParsedLine& on_line) {
  BatchQueue queue(3);
  std::thread reader([&] {
    std::unique_ptr<ParsedBatch> batch = queue.TakeEmpty();
    auto hand_over = [&] {
      batch->lines.Parse(engine, now);
      queue.GiveFull(std::move(batch));
      batch = queue.TakeEmpty();
    };
    for (const std::string& path : paths) {
      if (!batch) return;
      auto r = ReadLogLines(path, max_line, [&](std::string_view line, uint64_t) {
        if (!batch) return;  // stopped: the rest of the file goes by unread
        if (batch->lines.Full(line.size())) {
          hand_over();
          if (!batch) return;
        }
        batch->lines.Add(source, line);
      });
      if (!batch) return;
      if (!r) {
        batch->error = r.error();
        break;
      }
    }
    batch->last = true;
    hand_over();
  });
  Result<void> result;
  for (;;) {
    std::unique_ptr<ParsedBatch> batch = queue.TakeFull();
    batch->lines.ForEach(
        [&](int, std::string_view line, const Engine::ParsedLine& parsed, const PatternHit* hits) {
          on_line(line, parsed, hits);
        },
        &engine);
    if (batch->error) result = Fail(*batch->error);
    bool last = batch->last;
    batch->Clear();
    queue.GiveEmpty(std::move(batch));
    if (last) break;
  }
  queue.Stop();
  reader.join();
  return result;
}

}  // namespace relayban
