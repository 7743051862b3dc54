#include "relayban/core/key_string.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <map>
#include <string>
#include <utility>

#include "relayban/core/text.hpp"

using namespace relayban;

TEST_CASE("a key string holds 47 bytes in place and longer ones on the heap, and survives copies and moves") {
  for (size_t n : {0, 1, 15, 16, 46, 47, 48, 100, 300}) {
    INFO(n);
    std::string text;
    for (size_t i = 0; i < n; ++i) text += static_cast<char>('a' + i % 26);
    if (n > 2) text[1] = '\0';  // bytes, not a C string
    KeyString k(text);
    CHECK(k.view() == text);
    CHECK(k == text);
    CHECK(k.OnHeap() == (n > KeyString::kInline));
    KeyString copy(k);
    CHECK(copy == k);
    KeyString moved(std::move(copy));
    CHECK(moved.view() == text);
    CHECK(copy.view().empty());  // NOLINT: a moved-from key is empty
    KeyString assigned("something else, long enough to be kept on the heap by itself");
    assigned = std::move(moved);
    CHECK(assigned.view() == text);
    assigned = k;
    CHECK(assigned.view() == text);
    assigned = KeyString();
    CHECK(assigned.view().empty());
  }
  CHECK_FALSE(KeyString("alice@example.com") == std::string_view("alice@example.co"));
  CHECK_FALSE(KeyString("alice@example.com") == KeyString("alice@example.comm"));
}

TEST_CASE("all zero bytes are the empty key string") {
  alignas(KeyString) std::array<unsigned char, sizeof(KeyString)> zero{};
  const auto* k = reinterpret_cast<const KeyString*>(zero.data());
  CHECK(k->view().empty());
  CHECK_FALSE(k->OnHeap());
  CHECK(ZeroIsDefault<KeyString>::value);
}

TEST_CASE("a flat map keyed by key strings agrees with std::map, short and long names alike, through growth and erases") {
  FlatMap<KeyString, int, StringHash> m;
  static_assert(decltype(m)::kKeepsHash);
  std::map<std::string, int> ref;
  auto name = [](int i) {
    std::string s = "user" + std::to_string(i) + "@example.com";
    if (i % 3 == 0) s += std::string(60, 'x');  // past the place held inline
    return s;
  };
  for (int i = 0; i < 40000; ++i) {
    m[KeyString(name(i))] = i;
    ref[name(i)] = i;
  }
  for (int i = 0; i < 40000; i += 2) {
    REQUIRE(m.Erase(std::string_view(name(i))));
    ref.erase(name(i));
  }
  REQUIRE(m.size() == ref.size());
  for (const auto& [k, v] : ref) {
    const int* got = m.Get(std::string_view(k));
    REQUIRE(got);
    CHECK(*got == v);
  }
  for (int i = 0; i < 40000; i += 2) CHECK_FALSE(m.Get(std::string_view(name(i))));
}
