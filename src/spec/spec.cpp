// Helpers of the validated configuration types; no YAML here (config/ is the yaml-cpp side).
#include "relayban/spec/spec.hpp"

#include <cctype>

namespace relayban {

const char* FieldName(Field f) {
  switch (f) {
    case Field::kNone: return "none";
    case Field::kIp: return "ip";
    case Field::kIpPrefix: return "ip_prefix";
    case Field::kAccount: return "account";
    case Field::kSender: return "sender";
    case Field::kRecipient: return "recipient";
    case Field::kRecipientDomain: return "recipient_domain";
    case Field::kSenderDomain: return "sender_domain";
  }
  return "?";
}

const JailSpec* Config::FindJail(const std::string& name) const {
  for (const auto& j : jails)
    if (j.name == name) return &j;
  return nullptr;
}

std::optional<std::pair<IpAddress, uint16_t>> ParseListenAddress(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= text.size() || colon + 6 < text.size()) return std::nullopt;
  std::string_view host = text.substr(0, colon), port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  else if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs brackets
  auto ip = IpAddress::Parse(host);
  if (!ip) return std::nullopt;
  unsigned n = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  if (n == 0 || n > 65535) return std::nullopt;
  return std::make_pair(*ip, static_cast<uint16_t>(n));
}

bool MailAddressOk(std::string_view a) {
  if (a.empty() || a.size() > 254 || a.front() == '-' || a.front() == '.' || a.front() == '@') return false;
  size_t ats = 0;
  for (char c : a) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '+' || c == '-';
    if (c == '@') ++ats;
    else if (!ok) return false;
  }
  return ats == 0 || (ats == 1 && a.back() != '@');
}

bool FleetRedisAddressOk(std::string_view text) {
  if (!text.empty() && text.front() == '/') return text.size() < 100;
  if (ParseListenAddress(text)) return true;
  // A host name and a port: letters, digits, '-' and '.', resolved when the daemon starts.
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 253) return false;
  std::string_view host = text.substr(0, colon), port = text.substr(colon + 1);
  for (char c : host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) return false;
  if (host.front() == '-' || host.front() == '.' || port.empty() || port.size() > 5) return false;
  unsigned p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    p = p * 10 + static_cast<unsigned>(c - '0');
  }
  return p >= 1 && p <= 65535;
}

bool FleetNameOk(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

}  // namespace relayban
