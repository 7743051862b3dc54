// FilterSet: the compiled filters of one log source (the only RE2 user). It turns the text
// after a line's time stamp into pattern hits with their raw captured fields; turning those
// into events (address parsing, correlation) is the engine's job.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relayban/spec/spec.hpp"
#include "relayban/core/ip_address.hpp"
#include "relayban/core/result.hpp"

namespace relayban {

// Raw capture text of one hit; views into the matched line, valid until the next Match().
struct Captures {
  std::string_view ip, account, sender, recipient, id, session, count, conn;
};

struct PatternHit {
  int filter;   // index into the filter list given to Build
  int pattern;  // index within that filter's patterns
  Captures captures;
  // captures.ip parsed, by the engine (Engine::Parse, on the thread that matches, so that
  // the one that scores does not); nullopt while not parsed or not an address.
  std::optional<IpAddress> address;
  // Also made by Parse, for the scoring thread to take as they are: a hash of captures.conn
  // and captures.ip (0: no conn), and, when the account its filter's first jail keys is the
  // captured text itself (nothing to trim or lower, no domain to add), that account's hash.
  uint64_t tally_key = 0;
  size_t account_hash = 0;
  bool account_as_captured = false;
  // StringHash of captures.id as the correlation tables key it (its first 128 bytes); 0
  // without an id.
  size_t id_hash = 0;
  // And for `address`: whether the ignore list holds it, else the address of its ban target
  // (the key of per-address rules: an IPv6 client's /64) and that key's IpAddressHash.
  bool ignored = false;
  IpAddress key;
  size_t key_hash = 0;
};

// What a pattern's text turns into before RE2 sees it: "{host}" -> a host name token,
// "{pid}" -> an optional "[1234]", "{ip}" -> a named `ip` capture of address characters.
std::string ExpandPatternMacros(std::string_view regex);

// The literal a line must carry right after its host token for `regex` (macros expanded) to
// match: "postfix" for "{host} postfix(?:-[^/ ]+)?/...". Empty when the regex does not start
// with the {host} macro and a space, or no literal follows it.
std::string LiteralAfterHost(std::string_view regex);

class FilterSet {
 public:
  ~FilterSet();
  FilterSet(const FilterSet&) = delete;
  FilterSet& operator=(const FilterSet&) = delete;

  // Compiles the filters. Errors name the pattern's file:line:col and RE2's message.
  // `shortcuts` false sends every line through the RE2::Set alone, without the literal checks
  // that spare most lines from RE2 (the reference the tests compare those against).
  static Result<std::unique_ptr<FilterSet>> Build(const std::vector<const FilterSpec*>& filters,
                                                  bool shortcuts = true);
  // Checks one regex the way Build would (for config validation).
  static Result<void> CheckRegex(const PatternSpec& p, bool is_ignore);

  // Appends at most one hit per filter (its first matching pattern). `message` is the line
  // without its stamp. Returns the number of hits rejected by a `unique` rule (an
  // injection attempt or an ambiguous line).
  int Match(std::string_view message, std::vector<PatternHit>& hits) const;

  size_t pattern_count() const;

 private:
  struct Impl;
  explicit FilterSet(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace relayban
