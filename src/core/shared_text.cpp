#include "relayban/core/shared_text.hpp"

#include <mutex>
#include <set>

namespace relayban {

SharedText SharedText::Lasting(std::string_view text) {
  if (text.empty()) return {};
  // Never freed: a set's elements stay where they are as it grows.
  static std::mutex mu;
  static auto* kept = new std::set<std::string, std::less<>>();
  std::lock_guard<std::mutex> lock(mu);
  auto it = kept->find(text);
  if (it == kept->end()) it = kept->emplace(text).first;
  SharedText t;
  // The aliasing constructor with no owner: a pointer that no copy counts.
  t.text_ = std::shared_ptr<const std::string>(std::shared_ptr<const std::string>(), &*it);
  return t;
}

}  // namespace relayban
