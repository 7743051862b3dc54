// Helpers of the validated configuration types; no YAML here (config/ is the yaml-cpp side).
#include "relayban/spec/spec.hpp"

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

}  // namespace relayban
