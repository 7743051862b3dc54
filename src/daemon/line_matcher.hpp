// LineMatcher: the daemon's lines are matched on a thread of its own while the loop scores
// the lines before them. The loop reads a turn's lines and hands them over one by one; a
// full batch goes to the matching thread, and the loop scores the batch before it meanwhile.
// Finish scores what is left, so every line read in a turn is scored in that turn (the saved
// read positions never run ahead of what was scored). A turn of fewer lines than a batch is
// matched on the loop thread itself, as before: a trickle of lines costs no thread hand-off.
// A batch the thread has not started by the time the loop needs it (the thread waiting for
// a core) is taken back and matched by the loop. Only one thread matches at a time, in the
// order the lines came (the filters learn from the lines they see).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "relayban/engine/engine.hpp"
#include "relayban/engine/parsed_lines.hpp"

namespace relayban {

class LineMatcher {
 public:
  using Score = std::function<void(int source, std::string_view line, const Engine::ParsedLine& parsed,
                                   const PatternHit* hits)>;
  static constexpr size_t kBatchLines = 256;
  static constexpr size_t kBatchBytes = size_t{256} << 10;

  // Starts the matching thread (every signal blocked in it: they are the loop's).
  explicit LineMatcher(size_t batch_lines = kBatchLines, size_t batch_bytes = kBatchBytes);
  ~LineMatcher();
  LineMatcher(const LineMatcher&) = delete;
  LineMatcher& operator=(const LineMatcher&) = delete;

  // A turn: lines read at `now` for `engine` (which lives until Finish returns), each scored
  // by `score` on the calling thread, in the order they were added.
  void Begin(const Engine& engine, Time now, Score score);
  void Add(int source, std::string_view line);
  void Finish();

  // Batches matched since the start: on the matching thread; handed over but taken back by
  // the loop, the thread not having started them when they were due; and matched on the
  // loop's thread (a turn's last partial batch).
  uint64_t batches_on_thread() const { return on_thread_; }
  uint64_t batches_taken_back() const { return taken_back_; }
  uint64_t batches_inline() const { return inline_; }

  // For tests: a held thread starts no batch (the loop takes every one back).
  void Hold(bool held);

 private:
  void Run();
  std::unique_ptr<ParsedLines> TakeFree();
  void ScoreOldest();
  void ScoreAndFree(std::unique_ptr<ParsedLines> batch);

  size_t batch_lines_, batch_bytes_;
  const Engine* engine_ = nullptr;
  Time now_{};
  Score score_;
  std::unique_ptr<ParsedLines> filling_;
  std::vector<std::unique_ptr<ParsedLines>> free_;
  std::deque<std::unique_ptr<ParsedLines>> in_flight_;  // handed over, in order
  uint64_t submitted_ = 0, on_thread_ = 0, taken_back_ = 0, inline_ = 0;

  // Shared with the matching thread.
  struct Job {
    ParsedLines* batch;
    const Engine* engine;
    Time now;
  };
  std::mutex mu_;
  std::condition_variable work_, done_;
  std::deque<Job> todo_;
  // Batches matched so far, by either thread: one matches at a time, in the order handed
  // over, so the first matched_ batches are the ones done.
  uint64_t matched_ = 0;
  bool thread_matching_ = false, loop_matching_ = false, held_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace relayban
