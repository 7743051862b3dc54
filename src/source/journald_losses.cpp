#include "relayban/source/journald_losses.hpp"

#include <limits>
#include <vector>

namespace relayban {
namespace {

// sd-messages.h: SD_MESSAGE_JOURNAL_DROPPED and SD_MESSAGE_FORWARD_SYSLOG_MISSED.
constexpr const char* kDropped = "MESSAGE_ID=a596d6fe7bfa4994828e72309e95d61e";
constexpr const char* kForwardMissed = "MESSAGE_ID=0027229ca0644181a76c4e92458afa2e";

// A count of digits only; a count too big for 64 bits is the largest there is.
std::optional<uint64_t> Count(std::string_view s) {
  if (s.empty() || s.size() > 40) return std::nullopt;
  uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    n = n > (std::numeric_limits<uint64_t>::max() - d) / 10 ? std::numeric_limits<uint64_t>::max() : n * 10 + d;
  }
  return n;
}

bool Consume(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

}  // namespace

Result<std::unique_ptr<JournaldLosses>> JournaldLosses::Open(const std::string& directory) {
  auto reader = JournalSource::Open({"_TRANSPORT=driver", kDropped, kForwardMissed}, directory);
  if (!reader) return Fail(reader.error().message);
  return std::unique_ptr<JournaldLosses>(new JournaldLosses(std::move(reader.value()), directory));
}

std::optional<JournaldLoss> JournaldLosses::Parse(std::string_view m) {
  JournaldLoss loss;
  if (Consume(m, "Suppressed ")) {
    size_t sp = m.find(' ');
    auto n = Count(m.substr(0, sp));
    if (!n || sp == std::string_view::npos) return std::nullopt;
    m.remove_prefix(sp);
    if (!Consume(m, " messages from ")) return std::nullopt;
    // Before systemd 236 the unit was given as its control group's path.
    if (size_t slash = m.rfind('/'); slash != std::string_view::npos) m.remove_prefix(slash + 1);
    if (m.empty() || m.find_first_of(" \t\r\n") != std::string_view::npos) return std::nullopt;
    loss.kind = JournaldLoss::Kind::kRateLimit;
    loss.unit = std::string(m);
    loss.lines = *n;
    return loss;
  }
  if (Consume(m, "Forwarding to syslog missed ")) {
    size_t sp = m.find(' ');
    auto n = Count(m.substr(0, sp));
    if (!n || sp == std::string_view::npos || m.substr(sp) != " messages.") return std::nullopt;
    loss.kind = JournaldLoss::Kind::kSyslogForward;
    loss.lines = *n;
    return loss;
  }
  return std::nullopt;
}

size_t JournaldLosses::Poll(const std::function<void(const JournaldLoss&)>& on_loss, size_t max) {
  size_t n = 0;
  reader_->Poll(
      [&](std::string_view line) {
        // "<stamp> <host> <identifier>[<pid>]: <message>": none of the first three holds ": ".
        size_t at = line.find(": ");
        if (at == std::string_view::npos) return;
        if (auto loss = Parse(line.substr(at + 2))) {
          on_loss(*loss);
          ++n;
        }
      },
      max);
  return n;
}

}  // namespace relayban
