#include "relayban/core/text.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace relayban;

TEST_CASE("plain ASCII and UTF-8 log text is clean") {
  CHECK(IsCleanText("Nov 26 10:00:00 mx1 postfix/smtpd[1]: connect from unknown[192.0.2.1]"));
  CHECK(IsCleanText("user=<j\xC3\xBCrgen@example.com>\tok"));
  CHECK(IsCleanText(""));
}

TEST_CASE("NUL, control bytes and invalid UTF-8 are not clean") {
  CHECK_FALSE(IsCleanText(std::string("abc\0def", 7)));
  CHECK_FALSE(IsCleanText("abc\x1b[31mred"));
  CHECK_FALSE(IsCleanText("\x7f"));
  CHECK_FALSE(IsCleanText("\xff\xfe"));
  CHECK_FALSE(IsCleanText("\xC0\xAF"));          // overlong
  CHECK_FALSE(IsCleanText("\xED\xA0\x80"));      // surrogate
  CHECK_FALSE(IsCleanText("abc\xE2\x82"));       // truncated sequence
  CHECK_FALSE(IsCleanText("line\rinjected"));
}

TEST_CASE("a bad byte is found at any place in a long line (the vector path and its tail)") {
  for (size_t len : {16u, 17u, 31u, 64u, 100u}) {
    const std::string clean(len, 'a');
    CHECK(IsCleanText(clean));
    for (size_t at = 0; at < len; ++at) {
      for (char bad : {'\0', '\x01', '\n', '\x1f', '\x7f', '\x80', '\xff'}) {
        std::string line = clean;
        line[at] = bad;
        INFO("length " << len << " byte " << int(static_cast<unsigned char>(bad)) << " at " << at);
        CHECK_FALSE(IsCleanText(line));
      }
      std::string tab = clean;
      tab[at] = '\t';
      CHECK(IsCleanText(tab));
      std::string utf8 = clean + "\xC3\xA9";  // é, valid
      CHECK(IsCleanText(utf8));
    }
  }
}

TEST_CASE("printable replaces control bytes and caps length") {
  CHECK(Printable("a\nb\x01", 10) == "a?b?");
  CHECK(Printable(std::string(300, 'x'), 10) == std::string(10, 'x') + "...");
}
