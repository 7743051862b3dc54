// LiteralGate: does a line contain any of a few literals? Each filter pattern requires one
// (RequiredLiteral); a line that contains none of them cannot match, and RE2 is not asked.
// The scan compares sixteen positions at a time against one rare byte pair of each literal
// and checks the whole literal only where a pair is found.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relayban {

class LiteralGate {
 public:
  // At most kMaxLiterals literals of at least two bytes each; nullopt otherwise (then every
  // line must go to RE2).
  static constexpr size_t kMaxLiterals = 12;
  static std::optional<LiteralGate> Build(std::vector<std::string> literals);

  bool MayMatch(std::string_view text) const;
  const std::vector<std::string>& literals() const { return literals_; }

 private:
  struct Pair {
    unsigned char a, b;  // the two bytes
    uint32_t offset;     // where they sit in the literal
  };
  std::vector<std::string> literals_;
  std::vector<Pair> pairs_;
  bool Verify(std::string_view text, size_t at) const;
};

}  // namespace relayban
