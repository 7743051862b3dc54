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

TEST_CASE("a fan-out's copies of a text are counted at once, and what is not taken is given back") {
  SharedText reason = std::string("relay-flood: account sales reached 50 domains within 1h");
  REQUIRE(reason.counted_copies() == 1);
  {
    SharedTextCopies copies(reason, 3);
    CHECK(reason.counted_copies() == 5);  // its own copy, and three for the orders to come
    SharedText a = copies.Take();
    SharedText b = copies.Take();
    CHECK(reason.counted_copies() == 5);  // taking counts nothing more
    CHECK(a.identity() == reason.identity());
    CHECK(b == reason);
    {
      SharedText c = copies.Take();
      SharedText d = copies.Take();  // past the three asked for: counted as a copy is
      CHECK(reason.counted_copies() == 6);
      CHECK(d.identity() == reason.identity());
    }
    CHECK(reason.counted_copies() == 4);
  }
  CHECK(reason.counted_copies() == 1);  // every copy dropped, nothing left counted
  {
    SharedTextCopies copies(reason, 10);
    SharedText kept = copies.Take();
    CHECK(reason.counted_copies() == 12);
  }
  CHECK(reason.counted_copies() == 1);  // the nine not taken went back with the copies
  // A copy outlives its source and the batch it came from.
  SharedText survivor;
  {
    SharedText made = std::string("made here");
    SharedTextCopies copies(made, 2);
    survivor = copies.Take();
  }
  CHECK(survivor == "made here");
  CHECK(survivor.counted_copies() == 1);
  // Lasting and empty texts count nothing, in a batch too.
  SharedText name = SharedText::Lasting("postfix");
  SharedTextCopies names(name, 4);
  CHECK(names.Take().identity() == name.identity());
  CHECK(name.counted_copies() == 0);
  SharedTextCopies none(SharedText(), 2);
  CHECK(none.Take().empty());
}
