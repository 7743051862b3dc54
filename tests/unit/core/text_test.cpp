#include "relayban/core/text.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <unordered_set>

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

namespace {
std::string JsonOf(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}
}  // namespace

TEST_CASE("JSON strings are escaped as nlohmann::json writes them") {
  CHECK(JsonOf("") == "\"\"");
  CHECK(JsonOf("plain text") == "\"plain text\"");
  CHECK(JsonOf("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(JsonOf("\t\n\r\b\f") == "\"\\t\\n\\r\\b\\f\"");
  CHECK(JsonOf(std::string("\0\x01\x1f", 3)) == "\"\\u0000\\u0001\\u001f\"");
  CHECK(JsonOf("j\xC3\xBCrgen \xE2\x82\xAC \xF0\x9F\x98\x80") == "\"j\xC3\xBCrgen \xE2\x82\xAC \xF0\x9F\x98\x80\"");
}

TEST_CASE("invalid UTF-8 in a JSON string becomes U+FFFD and the record stays valid") {
  CHECK(JsonOf("a\xFF" "b") == "\"a\xEF\xBF\xBD" "b\"");
  CHECK(JsonOf("\xC0\xAF") == "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");  // overlong: two bad bytes
  CHECK(JsonOf("\xED\xA0\x80") == "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");  // a surrogate
  CHECK(JsonOf("end \xE2\x82") == "\"end \xEF\xBF\xBD\xEF\xBF\xBD\"");  // cut short
  // Random bytes, weighted towards the awkward ones: the output always parses back; valid
  // text comes back unchanged; all of it is written exactly as nlohmann::json writes it
  // (invalid bytes replaced).
  std::mt19937 rng(9);
  const std::vector<std::string> pieces = {"a", "Z", " ", "\"", "\\", "\n", "\t", std::string(1, '\0'), "\x1b", "\x7f",
                                           "\xC3\xBC", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xFF", "\xC3", "\x80",
                                           "\xED\xA0\x80", "\xF4\x90\x80\x80", "<user@example.com>"};
  for (int round = 0; round < 20000; ++round) {
    std::string s;
    for (int k = static_cast<int>(rng() % 12); k > 0; --k) s += pieces[rng() % pieces.size()];
    std::string out = JsonOf(s);
    nlohmann::json back;
    REQUIRE_NOTHROW(back = nlohmann::json::parse(out));
    REQUIRE(back.is_string());
    bool valid = true;
    try {
      (void)nlohmann::json(s).dump();
    } catch (const nlohmann::json::exception&) {
      valid = false;
    }
    if (valid) {
      CHECK(back.get<std::string>() == s);
      CHECK(out == nlohmann::json(s).dump());
    } else {
      CHECK(back.get<std::string>().find("\xEF\xBF\xBD") != std::string::npos);
      CHECK(out == nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
  }
}

TEST_CASE("LowerAsciiInto lowers ASCII letters only, at every position and length") {
  // Every byte value at every offset of an eight-byte word and in the tail, next to letters
  // and to the bytes just outside 'A'..'Z' ('@', '[') that a carry between bytes would hit.
  for (int b = 0; b < 256; ++b) {
    for (size_t len = 1; len <= 19; ++len) {
      for (size_t at = 0; at < len; ++at) {
        std::string in(len, 'Q');
        for (size_t i = 0; i < len; ++i) in[i] = "Z@[A`az{\xff"[i % 9];
        in[at] = static_cast<char>(b);
        std::string want = in;
        for (char& c : want)
          if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
        std::string got(len, '\0');
        LowerAsciiInto(in, got.data());
        REQUIRE(got == want);
      }
    }
  }
  CHECK(ToLowerAscii("Test@Example.COM") == "test@example.com");
  CHECK(ToLowerAscii("") == "");
}

TEST_CASE("HasUpperAscii finds a single capital at every position and length, and nothing else") {
  // Lower-case text with neighbours of 'A'..'Z' and high bytes, then one byte of every value
  // at every offset: only 'A'..'Z' count (a carry between bytes would make '@' or '[' count).
  for (size_t len = 0; len <= 27; ++len) {
    std::string base(len, 'q');
    for (size_t i = 0; i < len; ++i) base[i] = "@[`az{\x80\xc1\xff"[i % 9];
    REQUIRE_FALSE(HasUpperAscii(base));
    for (size_t at = 0; at < len; ++at)
      for (int b = 0; b < 256; ++b) {
        std::string in = base;
        in[at] = static_cast<char>(b);
        REQUIRE(HasUpperAscii(in) == (b >= 'A' && b <= 'Z'));
      }
  }
  CHECK(HasUpperAscii("user@example.coM"));
  CHECK_FALSE(HasUpperAscii("user@example.com"));
}

TEST_CASE("ShortTextHash tells apart texts that differ in any byte or in length, up to 16 bytes and past") {
  // Every text of up to 3 bytes over a small alphabet, then texts of every length to 40 that
  // differ from one another in a single byte at each position, or only in length.
  std::unordered_set<uint64_t> seen;
  size_t made = 0;
  auto add = [&](const std::string& t) {
    ++made;
    seen.insert(ShortTextHash(t));
  };
  const std::string alphabet = "09az.:[]\x01\xff";
  add("");
  for (char a : alphabet) {
    add(std::string(1, a));
    for (char b : alphabet) {
      add(std::string{a, b});
      for (char c : alphabet) add(std::string{a, b, c});
    }
  }
  for (size_t len = 4; len <= 40; ++len) {
    std::string base(len, 'x');
    add(base);
    for (size_t at = 0; at < len; ++at)
      for (char c : alphabet) {
        std::string t = base;
        t[at] = c;
        add(t);
      }
  }
  // Addresses as the tallies key them.
  for (uint32_t i = 0; i < 100000; ++i)
    add(std::to_string(i >> 16) + "." + std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255) + ".1");
  // And IPv6 addresses of 17 to 32 characters (four loads), one /64 apart.
  for (uint32_t i = 0; i < 100000; ++i) {
    char v6[48];
    std::snprintf(v6, sizeof v6, "2001:db8:%x:%x::1", i >> 16, i & 0xFFFF);
    add(v6);
  }
  CHECK(seen.size() == made);
  CHECK(ShortTextHash("1000") == ShortTextHash(std::string("1000")));  // a function of the bytes only
}
