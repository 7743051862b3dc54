// JournaldLosses: journald's own reports of log lines that no reader ever got. Its rate
// limit (by default 10,000 lines per unit in 30 s) drops what a unit logs beyond it and says
// so afterwards ("Suppressed 52311 messages from postfix@-.service"); and when rsyslog does
// not keep up, the lines journald could not hand it are missing from /var/log/mail.log
// ("Forwarding to syslog missed 34 messages."). A botnet's burst can cause either, and a log
// reader cannot see what is missing: these reports are the only trace. Only journald's own
// entries are read (_TRANSPORT=driver, a field no client can set, with the two reports'
// MESSAGE_IDs), so a process cannot forge a loss.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "relayban/core/result.hpp"
#include "relayban/source/journal_source.hpp"

namespace relayban {

struct JournaldLoss {
  enum class Kind { kRateLimit, kSyslogForward };
  Kind kind = Kind::kRateLimit;
  std::string unit;    // kRateLimit: the unit whose lines were dropped
  uint64_t lines = 0;  // how many
};

class JournaldLosses {
 public:
  // The system journal, or the journal files in `directory`.
  static Result<std::unique_ptr<JournaldLosses>> Open(const std::string& directory);
  // From the end: losses before the start are history.
  void Start() { reader_->Start(std::nullopt); }
  int fd() const { return reader_->fd(); }
  const std::string& directory() const { return directory_; }
  // Hands out the reports that arrived, at most `max`. Returns the count.
  size_t Poll(const std::function<void(const JournaldLoss&)>& on_loss, size_t max = 256);
  // One of journald's report texts (its MESSAGE), or nothing.
  static std::optional<JournaldLoss> Parse(std::string_view message);

 private:
  JournaldLosses(std::unique_ptr<JournalSource> reader, std::string directory)
      : reader_(std::move(reader)), directory_(std::move(directory)) {}
  std::unique_ptr<JournalSource> reader_;
  std::string directory_;
};

}  // namespace relayban
