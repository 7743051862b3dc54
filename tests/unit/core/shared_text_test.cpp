#include "relayban/core/shared_text.hpp"

#include <catch2/catch.hpp>

#include <sstream>
#include <string>

using namespace relayban;

TEST_CASE("a shared text's copies share one string, and it reads and compares as that string") {
  std::string long_text(200, 'r');
  long_text[1] = '\0';  // bytes, not a C string
  SharedText a = long_text;
  SharedText b = a;
  CHECK(a.identity() == b.identity());
  CHECK(a.identity() != nullptr);
  CHECK(&a.str() == &b.str());  // the same string, not a copy
  CHECK(a.str() == long_text);
  CHECK(a.size() == 200);
  CHECK(a == b);
  // Equal text made apart: equal, not shared.
  SharedText c = std::string(long_text);
  CHECK(c.identity() != a.identity());
  CHECK(c == a);
  CHECK(SharedText("x") != a);
  CHECK(SharedText("x") < SharedText("y"));
  // Reads as the string where one is asked for.
  const std::string& as_string = a;
  CHECK(as_string == long_text);
  std::string_view as_view = a;
  CHECK(as_view.size() == 200);
  CHECK(a.find("rr", 2) == 2);
  CHECK(SharedText("jail") + "/x" == "jail/x");
  CHECK(std::string("a ") + SharedText("b") == "a b");
  std::ostringstream os;
  os << SharedText("shown");
  CHECK(os.str() == "shown");
}

TEST_CASE("an empty shared text holds nothing and equals every other empty one") {
  SharedText none;
  SharedText made = std::string();
  CHECK(none.empty());
  CHECK(made.empty());
  CHECK(none.identity() == nullptr);
  CHECK(made.identity() == nullptr);
  CHECK(none == made);
  CHECK(none.str().empty());
  CHECK(none == "");
  CHECK(none.c_str()[0] == '\0');
  CHECK_FALSE(SharedText("a").empty());
}

TEST_CASE("a lasting text is kept once per distinct text and its copies count nothing") {
  SharedText a = SharedText::Lasting("postfix-sasl: 5 auth_failure within 10m");
  SharedText b = a;
  SharedText c = SharedText::Lasting(std::string("postfix-sasl: 5 auth_failure within 10m"));
  CHECK(a == "postfix-sasl: 5 auth_failure within 10m");
  CHECK(a.identity() == b.identity());
  CHECK(c.identity() == a.identity());  // the kept copy, found again
  CHECK(SharedText::Lasting("postfix").identity() != a.identity());
  // No reference count: copies of it are plain pointers (a counted text's copies count).
  CHECK(a.counted_copies() == 0);
  CHECK(b.counted_copies() == 0);
  SharedText counted = std::string("postfix-sasl: 5 auth_failure within 10m");
  SharedText counted_copy = counted;
  CHECK(counted.counted_copies() == 2);
  CHECK(counted == a);
  CHECK(SharedText::Lasting("").empty());
}
