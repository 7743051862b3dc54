// ByteWriter and ByteReader: the compact binary form relayban keeps state in (the event
// journal). Unsigned integers as LEB128 varints, strings length-first. The reader never reads
// past its input: a truncated or damaged record makes it fail, and the caller skips it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace relayban {

class ByteWriter {
 public:
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_ += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out_ += static_cast<char>(v);
  }
  void Bytes(std::string_view s) {
    Varint(s.size());
    out_.append(s);
  }
  void Byte(uint8_t b) { out_ += static_cast<char>(b); }
  std::string& str() { return out_; }
  void clear() { out_.clear(); }

 private:
  std::string out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  std::optional<uint64_t> Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at_ >= in_.size()) return std::nullopt;
      auto b = static_cast<uint8_t>(in_[at_++]);
      v |= uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) return v;
    }
    return std::nullopt;
  }
  std::optional<std::string_view> Bytes(size_t max = 65536) {
    auto n = Varint();
    if (!n || *n > max || *n > in_.size() - at_) return std::nullopt;
    std::string_view s = in_.substr(at_, *n);
    at_ += *n;
    return s;
  }
  std::optional<uint8_t> Byte() {
    if (at_ >= in_.size()) return std::nullopt;
    return static_cast<uint8_t>(in_[at_++]);
  }
  bool done() const { return at_ == in_.size(); }

 private:
  std::string_view in_;
  size_t at_ = 0;
};

}  // namespace relayban
