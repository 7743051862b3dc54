#include "relayban/fleet/fleet_event.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>

namespace relayban {
namespace {

constexpr std::string_view kVersion = "1";

// What the MAC covers: every field by name and value, each framed by its length, so no two
// different events (or fleets) give the same bytes.
std::string Canonical(const FleetFields& fields, std::string_view fleet) {
  std::string s;
  auto put = [&s](std::string_view v) {
    s += std::to_string(v.size());
    s += ':';
    s += v;
    s += ',';
  };
  put("relayban-fleet");
  put(fleet);
  for (const auto& [k, v] : fields) {
    if (k == "mac") continue;
    put(k);
    put(v);
  }
  return s;
}

bool Printable(std::string_view v) {
  for (unsigned char c : v)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

std::optional<int64_t> Number(std::string_view v) {
  int64_t n = 0;
  if (v.empty() || v.size() > 19) return std::nullopt;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < 0) return std::nullopt;
  return n;
}

}  // namespace

std::string Sha1Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha1(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), md, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

FleetFields EncodeFleetEvent(const FleetEvent& e, std::string_view fleet, std::string_view key) {
  const char* type = e.kind == FleetEvent::Kind::kBan ? "ban" : e.kind == FleetEvent::Kind::kUnban ? "unban" : "verdict";
  FleetFields f{{"v", std::string(kVersion)}, {"type", type}, {"host", e.host}, {"id", e.id}};
  if (e.kind != FleetEvent::Kind::kVerdict) f.emplace_back("target", e.target.ToString());
  f.emplace_back("at", std::to_string(e.at_ms));
  if (e.kind != FleetEvent::Kind::kUnban) {
    f.emplace_back("until", std::to_string(e.until_ms));
    f.emplace_back("jail", e.jail);
    f.emplace_back("rule", e.rule);
    f.emplace_back("account", e.account);
    f.emplace_back("reason", e.reason);
    f.emplace_back("origin", e.origin);
  }
  f.emplace_back("mac", HmacSha256Hex(key, Canonical(f, fleet)));
  return f;
}

Result<FleetEvent> DecodeFleetEvent(const FleetFields& fields, std::string_view fleet, std::string_view key) {
  auto get = [&fields](std::string_view name) -> const std::string* {
    const std::string* found = nullptr;
    for (const auto& [k, v] : fields)
      if (k == name) {
        if (found) return nullptr;  // twice: refused as missing
        found = &v;
      }
    return found;
  };
  auto refuse = [](std::string why) { return Fail(std::move(why)); };
  if (fields.size() > 16) return refuse("too many fields");
  const std::string* mac = get("mac");
  if (!mac) return refuse("no mac");
  std::string want = HmacSha256Hex(key, Canonical(fields, fleet));
  if (mac->size() != want.size() || CRYPTO_memcmp(mac->data(), want.data(), want.size()) != 0)
    return refuse("bad mac");
  // Signed, so written by a holder of the key; still checked as if hostile.
  const std::string* v = get("v");
  if (!v || *v != kVersion) return refuse("unknown version");
  FleetEvent e;
  const std::string* type = get("type");
  if (!type) return refuse("no type");
  if (*type == "ban") e.kind = FleetEvent::Kind::kBan;
  else if (*type == "unban") e.kind = FleetEvent::Kind::kUnban;
  else if (*type == "verdict") e.kind = FleetEvent::Kind::kVerdict;
  else return refuse("unknown type");
  struct Text {
    const char* name;
    std::string* into;
    size_t max;
    bool required;
  };
  std::vector<Text> texts{{"host", &e.host, 64, true}, {"id", &e.id, 96, true}};
  if (e.kind != FleetEvent::Kind::kUnban) {
    texts.push_back({"jail", &e.jail, 64, true});
    texts.push_back({"rule", &e.rule, 64, true});
    texts.push_back({"account", &e.account, 320, e.kind == FleetEvent::Kind::kVerdict});
    texts.push_back({"reason", &e.reason, 512, false});
    texts.push_back({"origin", &e.origin, 16, true});
  }
  for (const Text& t : texts) {
    const std::string* s = get(t.name);
    if (!s) {
      if (t.required) return refuse(std::string("no ") + t.name);
      continue;
    }
    if (s->size() > t.max || !Printable(*s) || (t.required && s->empty())) return refuse(std::string("bad ") + t.name);
    *t.into = *s;
  }
  if (e.kind != FleetEvent::Kind::kUnban && e.origin != "rule" && e.origin != "manual") return refuse("bad origin");
  if (e.kind != FleetEvent::Kind::kVerdict) {
    const std::string* target = get("target");
    auto p = target ? Prefix::Parse(*target, false) : std::nullopt;
    if (!p) return refuse("bad target");
    e.target = *p;
  }
  const std::string* at = get("at");
  auto at_ms = at ? Number(*at) : std::nullopt;
  if (!at_ms) return refuse("bad at");
  e.at_ms = *at_ms;
  if (e.kind != FleetEvent::Kind::kUnban) {
    const std::string* until = get("until");
    auto u = until ? Number(*until) : std::nullopt;
    if (!u || (*u != 0 && *u < e.at_ms)) return refuse("bad until");
    e.until_ms = *u;
  }
  return e;
}

std::string PackFields(const FleetFields& fields) {
  std::string s;
  for (const auto& [k, v] : fields) {
    s += std::to_string(k.size()) + ":" + k + std::to_string(v.size()) + ":" + v;
  }
  return s;
}

std::optional<FleetFields> UnpackFields(std::string_view packed) {
  FleetFields out;
  auto next = [&packed]() -> std::optional<std::string> {
    size_t colon = packed.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 7) return std::nullopt;
    size_t n = 0;
    auto [p, ec] = std::from_chars(packed.data(), packed.data() + colon, n);
    if (ec != std::errc() || p != packed.data() + colon || n > packed.size() - colon - 1) return std::nullopt;
    std::string v(packed.substr(colon + 1, n));
    packed.remove_prefix(colon + 1 + n);
    return v;
  };
  while (!packed.empty()) {
    auto k = next();
    if (!k) return std::nullopt;
    auto v = next();
    if (!v) return std::nullopt;
    out.emplace_back(std::move(*k), std::move(*v));
  }
  return out;
}

std::optional<std::pair<uint64_t, uint64_t>> ParseStreamId(std::string_view id) {
  size_t dash = id.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  uint64_t a = 0, b = 0;
  auto r1 = std::from_chars(id.data(), id.data() + dash, a);
  auto r2 = std::from_chars(id.data() + dash + 1, id.data() + id.size(), b);
  if (r1.ec != std::errc() || r1.ptr != id.data() + dash || r2.ec != std::errc() || r2.ptr != id.data() + id.size() ||
      dash == 0 || dash + 1 == id.size())
    return std::nullopt;
  return std::make_pair(a, b);
}

}  // namespace relayban
