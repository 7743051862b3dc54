#include "relayban/core/shared_text.hpp"

#include <map>
#include <mutex>

namespace relayban {

SharedText SharedText::Lasting(std::string_view text) {
  if (text.empty()) return {};
  // Never freed: the blocks are made once per distinct text and stay where they are.
  static std::mutex mu;
  static auto* kept = new std::map<std::string, Block*, std::less<>>();
  std::lock_guard<std::mutex> lock(mu);
  auto it = kept->find(text);
  if (it == kept->end()) it = kept->emplace(std::string(text), new Block(std::string(text), true)).first;
  SharedText t;
  t.block_ = it->second;
  return t;
}

}  // namespace relayban
