#include "relayban/source/rotation.hpp"

namespace relayban {

TailAction DecideTail(const std::optional<FileIdentity>& open, uint64_t offset, const std::optional<FileIdentity>& at_path) {
  if (!at_path) return open ? TailAction::kKeepReading : TailAction::kWaitForFile;
  if (!open) return TailAction::kSwitchToNew;
  if (!(*open == *at_path)) return TailAction::kSwitchToNew;
  if (at_path->size < offset) return TailAction::kRewind;
  return TailAction::kKeepReading;
}

uint64_t StartOffset(const std::optional<FileIdentity>& saved, uint64_t saved_offset, const FileIdentity& now) {
  if (!saved) return now.size;
  if (!(*saved == now)) return 0;
  if (now.size < saved_offset) return 0;
  return saved_offset;
}

}  // namespace relayban
