#include "relayban/config/config_loader.hpp"

#include <glob.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <cerrno>
#include <cstring>

#include "relayban/core/text.hpp"
#include "relayban/filter/filter_set.hpp"

namespace relayban {

std::optional<StampFormat> ParseStampFormat(const std::string& name) {
  if (name == "auto") return StampFormat::kAuto;
  if (name == "syslog") return StampFormat::kSyslog;
  if (name == "rfc3339") return StampFormat::kRfc3339;
  if (name == "exim") return StampFormat::kExim;
  if (name == "tai64n") return StampFormat::kTai64n;
  if (name == "rfc5424") return StampFormat::kRfc5424;
  if (name == "none") return StampFormat::kNone;
  return std::nullopt;
}

namespace {

// Reads one YAML file into a Config, collecting errors with their positions.
class Reader {
 public:
  using FilterRefs = std::vector<std::pair<std::string, std::vector<std::pair<std::string, SourceLocation>>>>;
  Reader(std::string file, std::vector<Error>& errors, FilterRefs& refs)
      : file_(std::move(file)), errors_(errors), filter_refs_(refs) {}

  SourceLocation At(const YAML::Node& n) const {
    const YAML::Mark m = n.Mark();
    if (m.line < 0) return {file_, 0, 0};
    return {file_, m.line + 1, m.column + 1};
  }
  void Err(const YAML::Node& n, const std::string& msg) { errors_.push_back(Error{msg, At(n)}); }

  // Checks that `map` is a mapping whose keys are all in `allowed`.
  bool Keys(const YAML::Node& map, const std::string& what, std::initializer_list<const char*> allowed) {
    if (!map.IsMap()) {
      Err(map, what + " must be a mapping");
      return false;
    }
    std::map<std::string, int> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      std::string key = it->first.Scalar();
      // YAML forbids repeated keys, and yaml-cpp would silently use the first one.
      if (auto [prev, fresh] = seen.emplace(key, At(it->first).line); !fresh)
        Err(it->first, "duplicate key '" + key + "' (first at line " + std::to_string(prev->second) + ")");
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; })) {
        std::string list;
        for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
        Err(it->first, "unknown key '" + key + "' in " + what + " (expected one of: " + list + ")");
      }
    }
    return true;
  }

  std::optional<std::string> Str(const YAML::Node& n, const std::string& what) {
    if (!n.IsScalar()) {
      Err(n, what + " must be a string");
      return std::nullopt;
    }
    return n.Scalar();
  }
  std::optional<std::vector<std::string>> StrList(const YAML::Node& n, const std::string& what) {
    std::vector<std::string> out;
    if (n.IsScalar()) {
      out.push_back(n.Scalar());
      return out;
    }
    if (!n.IsSequence()) {
      Err(n, what + " must be a list of strings");
      return std::nullopt;
    }
    for (const auto& e : n) {
      if (!e.IsScalar()) {
        Err(e, what + " must be a list of strings");
        return std::nullopt;
      }
      out.push_back(e.Scalar());
    }
    return out;
  }
  std::optional<Seconds> Dur(const YAML::Node& n, const std::string& what) {
    if (!n.IsScalar()) {
      Err(n, what + " must be a duration such as 10m, 1h or 30d");
      return std::nullopt;
    }
    auto d = ParseDuration(n.Scalar());
    if (!d) Err(n, "bad duration '" + n.Scalar() + "' for " + what + " (use a number with s, m, h, d or w: 10m, 1h30m)");
    return d;
  }
  std::optional<long long> Int(const YAML::Node& n, const std::string& what, long long lo, long long hi) {
    long long v = 0;
    if (!n.IsScalar() || !YAML::convert<long long>::decode(n, v)) {
      Err(n, what + " must be a whole number");
      return std::nullopt;
    }
    if (v < lo || v > hi) {
      Err(n, what + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", not " + n.Scalar());
      return std::nullopt;
    }
    return v;
  }

  void Global(const YAML::Node& root, Config& c, std::vector<std::pair<std::string, YAML::Node>>& includes);
  void Metrics(const YAML::Node& n, MetricsSpec& m);
  void Fleet(const YAML::Node& n, FleetSpec& f);
  void Jails(const YAML::Node& n, Config& c);
  void Filters(const YAML::Node& n, Config& c);
  std::optional<RuleSpec> Rule(const YAML::Node& n);
  void RuleSets(const YAML::Node& n, Config& c);
  std::optional<PatternSpec> Pattern(const YAML::Node& n, bool is_ignore);

  std::string file_;
  std::vector<Error>& errors_;
  FilterRefs& filter_refs_;
};

void Reader::Global(const YAML::Node& root, Config& c, std::vector<std::pair<std::string, YAML::Node>>& includes) {
  if (!Keys(root, "the main configuration",
            {"state_dir", "control_socket", "control_group", "ignore", "firewall", "ban", "ipv6_prefix", "max_line",
             "max_tracked", "hooks", "include", "jails", "filters", "rule_sets", "accounts", "metrics",
             "decision_log", "digest", "fleet"}))
    return;
  if (auto n = root["state_dir"]) { if (auto s = Str(n, "state_dir")) c.state_dir = *s; }
  if (auto n = root["control_socket"]) { if (auto s = Str(n, "control_socket")) c.control_socket = *s; }
  if (auto n = root["control_group"]) { if (auto s = Str(n, "control_group")) c.control_group = *s; }
  if (auto n = root["ignore"]) {
    if (!n.IsSequence()) Err(n, "ignore must be a list of addresses or CIDRs");
    else
      for (const auto& e : n) {
        auto p = e.IsScalar() ? Prefix::Parse(e.Scalar()) : std::nullopt;
        if (!p) Err(e, "bad address or CIDR '" + (e.IsScalar() ? e.Scalar() : std::string("?")) +
                           "' in ignore (host bits must be zero, e.g. 192.0.2.0/24)");
        else c.ignore.push_back(*p);
      }
  }
  if (auto n = root["accounts"]) {
    if (Keys(n, "accounts", {"allow"}))
      if (auto a = n["allow"])
        if (auto l = StrList(a, "accounts.allow"))
          for (std::string name : *l) {
            std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
            if (name.empty() || name.size() > 256) Err(a, "accounts.allow: an account name must be 1-256 characters");
            else c.allowed_accounts.push_back(name);
          }
  }
  if (auto n = root["firewall"]) {
    if (Keys(n, "firewall", {"backend", "table", "hooks", "verdict", "own_table"})) {
      if (auto o = n["own_table"]) {
        bool v = true;
        if (!o.IsScalar() || !YAML::convert<bool>::decode(o, v)) Err(o, "firewall.own_table must be true or false");
        else c.firewall.own_table = v;
      }
      if (auto b = n["backend"]) {
        if (auto s = Str(b, "firewall.backend")) {
          if (*s != "nftables" && *s != "dry-run") Err(b, "firewall.backend must be nftables or dry-run");
          else c.firewall.backend = *s;
        }
      }
      if (auto t = n["table"]) {
        if (auto s = Str(t, "firewall.table")) {
          bool ok = !s->empty() && s->size() < 32 &&
                    std::all_of(s->begin(), s->end(), [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-'; });
          if (!ok) Err(t, "firewall.table must be 1-31 letters, digits, '_' or '-'");
          else c.firewall.table = *s;
        }
      }
      if (auto h = n["hooks"]) {
        if (auto l = StrList(h, "firewall.hooks")) {
          for (const auto& x : *l)
            if (x != "input" && x != "forward") Err(h, "firewall.hooks may hold input and forward, not '" + x + "'");
          c.firewall.hooks = *l;
        }
      }
      if (auto v = n["verdict"]) {
        if (auto s = Str(v, "firewall.verdict")) {
          if (*s != "drop" && *s != "reject") Err(v, "firewall.verdict must be drop or reject");
          else c.firewall.verdict = *s;
        }
      }
    }
  }
  if (auto n = root["ban"]) {
    if (Keys(n, "ban", {"default", "increment"})) {
      if (auto d = n["default"]) { if (auto v = Dur(d, "ban.default")) c.ban.default_duration = *v; }
      if (auto inc = n["increment"]) {
        if (Keys(inc, "ban.increment", {"factor", "max"})) {
          if (auto f = inc["factor"]) {
            double v = 0;
            if (!f.IsScalar() || !YAML::convert<double>::decode(f, v) || v < 1.0 || v > 100.0)
              Err(f, "ban.increment.factor must be a number from 1 to 100");
            else c.ban.factor = v;
          }
          if (auto m = inc["max"]) { if (auto v = Dur(m, "ban.increment.max")) c.ban.max = *v; }
        }
      }
    }
  }
  if (auto n = root["hooks"]) {
    if (Keys(n, "hooks", {"timeout", "max_running", "max_queued"})) {
      if (auto t = n["timeout"]) {
        if (auto v = Dur(t, "hooks.timeout")) {
          if (v->count() < 1) Err(t, "hooks.timeout must be at least 1s");
          else c.hooks.timeout = *v;
        }
      }
      if (auto m = n["max_running"]) { if (auto v = Int(m, "hooks.max_running", 1, 1024)) c.hooks.max_running = static_cast<size_t>(*v); }
      if (auto m = n["max_queued"]) { if (auto v = Int(m, "hooks.max_queued", 0, 1000000)) c.hooks.max_queued = static_cast<size_t>(*v); }
    }
  }
  if (auto n = root["metrics"]) Metrics(n, c.metrics);
  if (auto n = root["fleet"]) Fleet(n, c.fleet);
  if (auto n = root["decision_log"]) {
    if (auto s = Str(n, "decision_log")) {
      if (!s->empty() && s->front() != '/') Err(n, "decision_log must be an absolute path (or \"\" for none)");
      else c.decision_log = *s;
    }
  }
  if (auto n = root["digest"]) {
    if (Keys(n, "digest", {"mail_to", "sendmail"})) {
      if (auto m = n["mail_to"]) {
        if (auto l = m.IsScalar() ? std::optional<std::vector<std::string>>(std::vector<std::string>{m.Scalar()})
                                  : StrList(m, "digest.mail_to")) {
          c.digest.mail_to.clear();
          for (const auto& a : *l) {
            if (!MailAddressOk(a)) Err(m, "digest.mail_to: '" + a + "' is not a plain mail address or local user");
            else c.digest.mail_to.push_back(a);
          }
        }
      }
      if (auto m = n["sendmail"]) {
        if (auto s = Str(m, "digest.sendmail")) {
          if (s->empty() || s->front() != '/') Err(m, "digest.sendmail must be an absolute path");
          else c.digest.sendmail = *s;
        }
      }
    }
  }
  if (auto n = root["ipv6_prefix"]) { if (auto v = Int(n, "ipv6_prefix", 16, 128)) c.ipv6_prefix = static_cast<int>(*v); }
  if (auto n = root["max_line"]) { if (auto v = Int(n, "max_line", 256, 1 << 20)) c.max_line = static_cast<size_t>(*v); }
  if (auto n = root["max_tracked"]) { if (auto v = Int(n, "max_tracked", 100, 100'000'000)) c.max_tracked = static_cast<size_t>(*v); }
  if (auto n = root["include"]) {
    if (auto l = StrList(n, "include"))
      for (const auto& g : *l) includes.emplace_back(g, n);
  }
}

void Reader::Metrics(const YAML::Node& n, MetricsSpec& m) {
  // `metrics: true` or `metrics: {}` turns them on with the defaults; `false` keeps them off.
  if (n.IsScalar()) {
    bool v = false;
    if (!YAML::convert<bool>::decode(n, v)) Err(n, "metrics must be true, false or a mapping");
    m.on = v;
    if (v) m.textfile = kDefaultMetricsTextfile;
    return;
  }
  if (!n.IsNull() && !n.IsMap()) {
    Err(n, "metrics must be true, false or a mapping");
    return;
  }
  if (!n.IsNull()) (void)Keys(n, "metrics", {"textfile", "every", "listen"});
  m.on = true;
  m.textfile = kDefaultMetricsTextfile;
  if (n.IsNull()) return;
  if (auto t = n["textfile"]) {
    bool off = true;
    if (t.IsScalar() && YAML::convert<bool>::decode(t, off) && !off) m.textfile.clear();
    else if (auto s = Str(t, "metrics.textfile")) {
      if (s->empty() || s->front() != '/' || s->size() < 6 || s->substr(s->size() - 5) != ".prom")
        Err(t, "metrics.textfile must be an absolute path ending in .prom (or false for none)");
      else m.textfile = *s;
    }
  }
  if (auto e = n["every"]) {
    if (auto v = Dur(e, "metrics.every")) {
      if (v->count() < 1 || v->count() > 3600) Err(e, "metrics.every must be from 1s to 1h");
      else m.every = *v;
    }
  }
  if (auto l = n["listen"]) {
    if (auto s = Str(l, "metrics.listen")) {
      if (!ParseListenAddress(*s)) Err(l, "metrics.listen must be ADDRESS:PORT with a literal address, e.g. 127.0.0.1:9687 or [::1]:9687");
      else m.listen = *s;
    }
  }
}

void Reader::Fleet(const YAML::Node& n, FleetSpec& f) {
  f.where = At(n);
  if (n.IsScalar()) {
    bool v = true;
    if (YAML::convert<bool>::decode(n, v) && !v) return;  // `fleet: false`
  }
  if (!n.IsMap()) {
    Err(n, "fleet must be a mapping with at least redis, name and key_file");
    return;
  }
  if (!Keys(n, "fleet", {"redis", "name", "host", "user", "password_file", "key_file", "max_remote_ban", "rate", "burst",
                         "outbox"}))
    return;
  f.on = true;
  auto path = [&](const char* key, std::string& into) {
    if (auto m = n[key]) {
      if (auto s = Str(m, std::string("fleet.") + key)) {
        if (s->empty() || s->front() != '/') Err(m, std::string("fleet.") + key + " must be an absolute path");
        else into = *s;
      }
    }
  };
  if (auto m = n["redis"]) {
    if (auto s = Str(m, "fleet.redis")) {
      if (!FleetRedisAddressOk(*s))
        Err(m, "fleet.redis must be ADDRESS:PORT (10.0.0.5:6379, [2001:db8::5]:6379, redis.internal:6379) or the "
               "absolute path of a Unix socket");
      else f.redis = *s;
    }
  } else {
    Err(n, "fleet needs redis: (ADDRESS:PORT or a Unix socket's path)");
  }
  auto name = [&](const char* key, std::string& into) {
    if (auto m = n[key]) {
      if (auto s = Str(m, std::string("fleet.") + key)) {
        if (!FleetNameOk(*s)) Err(m, std::string("fleet.") + key + " must be 1 to 64 letters, digits, '.', '_' or '-'");
        else into = *s;
      }
    }
  };
  name("name", f.name);
  if (!n["name"]) Err(n, "fleet needs name: (the same on every host of the fleet)");
  name("host", f.host);
  name("user", f.user);
  path("password_file", f.password_file);
  path("key_file", f.key_file);
  if (!n["key_file"]) Err(n, "fleet needs key_file: (a root-only file with the key every host signs events with)");
  if (auto m = n["max_remote_ban"]) {
    if (auto v = Dur(m, "fleet.max_remote_ban")) {
      if (v->count() < 60) Err(m, "fleet.max_remote_ban must be at least 1m");
      else f.max_remote_ban = *v;
    }
  }
  if (auto m = n["rate"]) { if (auto v = Int(m, "fleet.rate", 1, 1000000)) f.rate = static_cast<size_t>(*v); }
  if (auto m = n["burst"]) { if (auto v = Int(m, "fleet.burst", 1, 10000000)) f.burst = static_cast<size_t>(*v); }
  if (auto m = n["outbox"]) { if (auto v = Int(m, "fleet.outbox", 100, 10000000)) f.outbox = static_cast<size_t>(*v); }
}

std::optional<PatternSpec> Reader::Pattern(const YAML::Node& n, bool is_ignore) {
  PatternSpec p;
  p.where = At(n);
  if (is_ignore) {
    if (auto s = Str(n, "an ignore regex")) p.regex = *s;
    else return std::nullopt;
    if (auto r = FilterSet::CheckRegex(p, true); !r) {
      errors_.push_back(r.error());
      return std::nullopt;
    }
    return p;
  }
  if (!Keys(n, "a pattern", {"event", "regex", "unique", "outage", "summary"})) return std::nullopt;
  auto ev = n["event"];
  auto re = n["regex"];
  if (!ev) Err(n, "pattern has no 'event'");
  if (!re) Err(n, "pattern has no 'regex'");
  if (!ev || !re) return std::nullopt;
  auto evs = Str(ev, "event");
  auto res = Str(re, "regex");
  if (!evs || !res) return std::nullopt;
  p.kind = *evs;
  p.regex = *res;
  p.where = At(re);
  if (auto u = n["unique"]) {
    if (auto l = StrList(u, "unique")) {
      for (const auto& s : *l)
        if (s.empty()) Err(u, "unique literals must not be empty");
      p.unique = *l;
    }
  }
  if (auto o = n["outage"]) {
    if (!o.IsMap()) {
      Err(o, "outage must be a mapping: {addresses: N, within: 1m, pause: 10m}");
    } else if (Keys(o, "outage", {"addresses", "within", "pause"})) {
      if (auto a = o["addresses"]) { if (auto v = Int(a, "outage.addresses", 2, 100000)) p.outage.addresses = static_cast<int>(*v); }
      else Err(o, "outage needs 'addresses'");
      if (auto w = o["within"]) { if (auto v = Dur(w, "outage.within")) p.outage.within = *v; }
      if (auto w = o["pause"]) { if (auto v = Dur(w, "outage.pause")) p.outage.pause = *v; }
    }
  }
  if (auto s = n["summary"]) {
    bool v = false;
    if (!s.IsScalar() || !YAML::convert<bool>::decode(s, v)) Err(s, "summary must be true or false");
    p.summary = v;
    if (p.summary && (p.regex.find("(?P<conn>") == std::string::npos || p.regex.find("(?P<count>") == std::string::npos))
      Err(s, "a summary pattern needs a (?P<conn>...) and a (?P<count>...) capture");
  }
  if (auto r = FilterSet::CheckRegex(p, false); !r) {
    errors_.push_back(r.error());
    return std::nullopt;
  }
  return p;
}

void Reader::Filters(const YAML::Node& n, Config& c) {
  if (!n.IsMap()) {
    Err(n, "filters must be a mapping of filter names");
    return;
  }
  for (auto it = n.begin(); it != n.end(); ++it) {
    std::string name = it->first.Scalar();
    // A copy: yaml-cpp's iterator hands out a proxy that dies with the expression.
    const YAML::Node body = it->second;
    if (c.filters.count(name)) {
      Err(it->first, "filter '" + name + "' is defined twice (first at " + c.filters[name].where.ToString() + ")");
      continue;
    }
    if (!Keys(body, "filter '" + name + "'", {"kinds", "patterns", "ignore", "description"})) continue;
    FilterSpec f;
    f.name = name;
    f.where = At(it->first);
    if (auto k = body["kinds"]) {
      if (auto l = StrList(k, "kinds")) f.kinds = *l;
    }
    auto pats = body["patterns"];
    if (!pats || !pats.IsSequence() || pats.size() == 0) {
      Err(pats ? pats : it->first, "filter '" + name + "' needs a non-empty list 'patterns'");
    } else {
      for (const auto& p : pats)
        if (auto ps = Pattern(p, false)) {
          bool known = std::find(std::begin(kStandardKinds), std::end(kStandardKinds), ps->kind) != std::end(kStandardKinds) ||
                       std::find(f.kinds.begin(), f.kinds.end(), ps->kind) != f.kinds.end();
          if (!known)
            Err(p["event"], "unknown event kind '" + ps->kind +
                                "' (standard: auth_failure, auth_success, relay, relay_denied, bad_recipient, "
                                "protocol_abuse, context; declare others under 'kinds:')");
          else f.patterns.push_back(std::move(*ps));
        }
    }
    if (auto ig = body["ignore"]) {
      if (!ig.IsSequence()) Err(ig, "ignore must be a list of regexes");
      else
        for (const auto& p : ig)
          if (auto ps = Pattern(p, true)) f.ignore.push_back(std::move(*ps));
    }
    c.filters[name] = std::move(f);
  }
}

bool ValidPlaceholders(const std::string& arg, std::string& bad) {
  static const std::set<std::string> kAllowed = {"ip", "account", "jail", "rule", "duration"};
  for (size_t i = arg.find('{'); i != std::string::npos; i = arg.find('{', i + 1)) {
    size_t close = arg.find('}', i);
    if (close == std::string::npos) continue;
    std::string name = arg.substr(i + 1, close - i - 1);
    if (!kAllowed.count(name)) {
      bad = name;
      return false;
    }
  }
  return true;
}

std::optional<RuleSpec> Reader::Rule(const YAML::Node& n) {
  if (!Keys(n, "a rule",
            {"name", "key", "events", "distinct", "threshold", "window", "ban", "on_account", "sprayed_from", "relative",
             "new_network", "scope"}))
    return std::nullopt;
  RuleSpec r;
  r.where = At(n);
  bool ok = true;
  for (const char* req : {"name", "key", "events", "threshold", "window"})
    if (!n[req]) {
      Err(n, std::string("rule has no '") + req + "'");
      ok = false;
    }
  if (!ok) return std::nullopt;
  if (auto s = Str(n["name"], "name")) r.name = *s; else ok = false;
  if (auto s = Str(n["key"], "key")) {
    if (*s == "ip") r.key = RuleKey::kIp;
    else if (*s == "account") r.key = RuleKey::kAccount;
    else { Err(n["key"], "key must be ip or account, not '" + *s + "'"); ok = false; }
  }
  if (auto l = StrList(n["events"], "events")) {
    if (l->empty()) { Err(n["events"], "events must name at least one event kind"); ok = false; }
    r.events = *l;
  } else ok = false;
  if (auto d = n["distinct"]) {
    static const std::pair<const char*, Field> kFields[] = {
        {"ip", Field::kIp}, {"ip_prefix", Field::kIpPrefix}, {"account", Field::kAccount}, {"sender", Field::kSender},
        {"sender_domain", Field::kSenderDomain}, {"recipient", Field::kRecipient}, {"recipient_domain", Field::kRecipientDomain}};
    auto s = Str(d, "distinct");
    bool found = false;
    for (auto [name, f] : kFields)
      if (s && *s == name) { r.distinct = f; found = true; }
    if (!found) {
      Err(d, "distinct must be one of ip, ip_prefix, account, sender, sender_domain, recipient, recipient_domain");
      ok = false;
    }
  }
  if (auto v = Int(n["threshold"], "threshold", 1, 10000)) r.threshold = static_cast<int>(*v); else ok = false;
  if (auto v = Dur(n["window"], "window")) {
    if (v->count() <= 0) { Err(n["window"], "window must be longer than 0"); ok = false; }
    r.window = *v;
  } else ok = false;
  if (auto b = n["ban"]) {
    if (auto v = Dur(b, "ban")) r.ban = *v; else ok = false;
  } else {
    r.ban = Seconds(-1);  // filled with the global default by the caller
  }
  auto number = [&](const YAML::Node& x, const std::string& what, double lo, double hi) -> std::optional<double> {
    double v = 0;
    if (!x.IsScalar() || !YAML::convert<double>::decode(x, v) || v < lo || v > hi) {
      char range[64];
      std::snprintf(range, sizeof range, " must be a number from %g to %g", lo, hi);
      Err(x, what + range);
      return std::nullopt;
    }
    return v;
  };
  if (auto rel = n["relative"]) {
    if (!rel.IsMap() || !Keys(rel, "relative", {"factor", "warmup", "while_warming"}) || !rel["factor"]) {
      Err(rel, "relative must be a mapping: {factor: 5, warmup: 7d, while_warming: 150}");
      ok = false;
    } else {
      if (auto v = number(rel["factor"], "relative.factor", 0.01, 1000)) r.relative_factor = *v; else ok = false;
      if (auto w = rel["warmup"]) { if (auto v = Dur(w, "relative.warmup")) r.relative_warmup = *v; else ok = false; }
      if (auto w = rel["while_warming"]) {
        if (auto v = Int(w, "relative.while_warming", 1, 5000)) r.while_warming = static_cast<int>(*v); else ok = false;
      }
    }
  }
  if (auto nn = n["new_network"]) {
    if (!nn.IsMap() || !Keys(nn, "new_network", {"factor", "for", "warmup"}) || !nn["factor"]) {
      Err(nn, "new_network must be a mapping: {factor: 0.5, for: 1d}");
      ok = false;
    } else {
      if (auto v = number(nn["factor"], "new_network.factor", 0.01, 1)) r.new_network_factor = *v; else ok = false;
      if (auto w = nn["for"]) { if (auto v = Dur(w, "new_network.for"); v && v->count() > 0) r.new_network_for = *v; else ok = false; }
      if (auto w = nn["warmup"]) { if (auto v = Dur(w, "new_network.warmup")) r.new_network_warmup = *v; else ok = false; }
    }
  }
  if ((r.relative_factor > 0 || r.new_network_factor > 0) && r.key != RuleKey::kAccount) {
    Err(n, "rule " + r.name + ": relative and new_network need key: account (they follow an account's history)");
    ok = false;
  }
  if (r.relative_factor > 0 && r.while_warming == 0) r.while_warming = r.threshold;
  if ((r.relative_factor > 0 || r.new_network_factor > 0) && r.threshold > 5000) {
    Err(n, "rule " + r.name + ": with relative or new_network the threshold (the floor) must be at most 5000");
    ok = false;
  }
  if (auto sp = n["sprayed_from"]) {
    if (!sp.IsMap() || !Keys(sp, "sprayed_from", {"accounts", "within"}) || !sp["accounts"] || !sp["within"]) {
      Err(sp, "sprayed_from must be a mapping: {accounts: N, within: 1h}");
      ok = false;
    } else {
      if (auto v = Int(sp["accounts"], "sprayed_from.accounts", 1, 64)) r.sprayed_accounts = static_cast<int>(*v); else ok = false;
      if (auto v = Dur(sp["within"], "sprayed_from.within"); v && v->count() > 0) r.sprayed_within = *v;
      else { Err(sp["within"], "sprayed_from.within must be longer than 0"); ok = false; }
    }
  }
  if (auto sc = n["scope"]) {
    if (auto s = Str(sc, "scope")) {
      if (*s == "host") r.scope = RuleScope::kHost;
      else if (*s == "fleet") r.scope = RuleScope::kFleet;
      else {
        Err(sc, "scope must be host or fleet");
        ok = false;
      }
      if (r.scope == RuleScope::kFleet && (r.relative_factor > 0 || r.new_network_factor > 0 || r.sprayed_accounts > 0)) {
        Err(sc, "scope: fleet cannot be combined with relative, new_network or sprayed_from (they use this host's "
                "history); count such a rule per host");
        ok = false;
      }
    } else ok = false;
  }
  if (auto h = n["on_account"]) {
    if (auto l = StrList(h, "on_account")) {
      if (l->empty() || (*l)[0].empty() || (*l)[0][0] != '/') {
        Err(h, "on_account must be an argv list whose first element is an absolute program path");
        ok = false;
      }
      for (const auto& a : *l) {
        std::string bad;
        if (!ValidPlaceholders(a, bad)) {
          Err(h, "unknown placeholder {" + bad + "} in on_account (allowed: {ip} {account} {jail} {rule} {duration})");
          ok = false;
        }
      }
      r.on_account = *l;
    } else ok = false;
  }
  if (!ok) return std::nullopt;
  return r;
}

void Reader::RuleSets(const YAML::Node& n, Config& c) {
  if (!n.IsMap()) {
    Err(n, "rule_sets must be a mapping of rule set names to lists of rules");
    return;
  }
  for (auto it = n.begin(); it != n.end(); ++it) {
    std::string name = it->first.Scalar();
    const YAML::Node body = it->second;
    if (auto old = c.rule_sets.find(name); old != c.rule_sets.end()) {
      Err(it->first, "rule set '" + name + "' is defined twice (first at " + old->second.second.ToString() + ")");
      continue;
    }
    if (!body.IsSequence()) {
      Err(body, "rule set '" + name + "' must be a list of rules");
      continue;
    }
    std::vector<RuleSpec> rules;
    std::set<std::string> names;
    for (const auto& r : body)
      if (auto rs = Rule(r)) {
        if (!names.insert(rs->name).second) Err(r, "rule name '" + rs->name + "' is used twice in rule set '" + name + "'");
        rules.push_back(std::move(*rs));
      }
    c.rule_sets[name] = {std::move(rules), At(it->first)};
  }
}

void Reader::Jails(const YAML::Node& n, Config& c) {
  if (!n.IsMap()) {
    Err(n, "jails must be a mapping of jail names");
    return;
  }
  for (auto it = n.begin(); it != n.end(); ++it) {
    std::string name = it->first.Scalar();
    // A copy: yaml-cpp's iterator hands out a proxy that dies with the expression.
    const YAML::Node body = it->second;
    if (c.FindJail(name)) {
      Err(it->first, "jail '" + name + "' is defined twice (first at " + c.FindJail(name)->where.ToString() + ")");
      continue;
    }
    if (!Keys(body, "jail '" + name + "'",
              {"enabled", "detect", "logs", "filters", "rules", "account_domain", "local_domains", "correlate",
               "on_ban", "description"}))
      continue;
    JailSpec j;
    j.name = name;
    j.where = At(it->first);
    if (auto e = body["enabled"]) {
      std::string v = e.IsScalar() ? e.Scalar() : "";
      if (v == "auto") j.enabled = Enabled::kAuto;
      else if (v == "true" || v == "yes" || v == "on") j.enabled = Enabled::kYes;
      else if (v == "false" || v == "no" || v == "off") j.enabled = Enabled::kNo;
      else Err(e, "enabled must be auto, true or false");
    }
    if (auto d = body["detect"]) {
      if (auto l = StrList(d, "detect")) j.detect = *l;
    }
    if (auto logs = body["logs"]) {
      if (!logs.IsSequence()) Err(logs, "logs must be a list");
      else
        for (const auto& l : logs) {
          LogSpec ls;
          ls.where = At(l);
          if (l.IsScalar()) {
            ls.path = l.Scalar();
          } else if (Keys(l, "a log", {"path", "stamp", "journal"})) {
            if (auto p = l["path"]) { if (auto s = Str(p, "path")) ls.path = *s; }
            if (auto jn = l["journal"]) {
              if (Keys(jn, "journal", {"match", "directory"})) {
                if (auto d = jn["directory"]) { if (auto ds = Str(d, "journal.directory")) ls.journal_directory = *ds; }
                if (auto m = jn["match"]) {
                  if (auto lst = StrList(m, "journal.match")) {
                    for (const auto& s : *lst) {
                      // Only journald's trusted fields (leading underscore) cannot be forged
                      // by a local process writing to /dev/log.
                      if (s.empty() || s[0] != '_' || s.find('=') == std::string::npos)
                        Err(m, "journal match '" + s + "' must be a trusted field such as _SYSTEMD_UNIT=postfix@-.service");
                    }
                    ls.journal_match = *lst;
                  }
                } else Err(jn, "journal needs 'match'");
              }
            }
            if (ls.path.empty() == ls.journal_match.empty()) Err(l, "a log needs exactly one of 'path' or 'journal'");
            if (auto s = l["stamp"]) {
              auto f = s.IsScalar() ? ParseStampFormat(s.Scalar()) : std::nullopt;
              if (!f) Err(s, "stamp must be auto, syslog, rfc3339, exim, tai64n or none");
              else ls.stamp = *f;
            }
          }
          if (!ls.path.empty() && ls.path[0] != '/') Err(l, "log path '" + ls.path + "' must be absolute");
          j.logs.push_back(std::move(ls));
        }
    }
    auto filters = body["filters"];
    if (!filters) Err(it->first, "jail '" + name + "' has no 'filters'");
    else if (auto l = StrList(filters, "filters")) {
      j.filters = *l;
      filter_refs_.emplace_back(name, std::vector<std::pair<std::string, SourceLocation>>{});
      size_t i = 0;
      for (const auto& f : *l) {
        SourceLocation loc = filters.IsSequence() ? At(filters[i]) : At(filters);
        filter_refs_.back().second.emplace_back(f, loc);
        ++i;
      }
    }
    if (auto d = body["account_domain"]) { if (auto s = Str(d, "account_domain")) j.account_domain = ToLowerAscii(*s); }
    if (auto d = body["local_domains"]) {
      if (auto l = StrList(d, "local_domains"))
        for (const auto& x : *l) j.local_domains.push_back(ToLowerAscii(x));
    }
    if (auto cr = body["correlate"]) {
      if (Keys(cr, "correlate", {"max_entries", "max_age"})) {
        if (auto m = cr["max_entries"]) { if (auto v = Int(m, "correlate.max_entries", 1, 10'000'000)) j.correlate_entries = static_cast<size_t>(*v); }
        if (auto m = cr["max_age"]) { if (auto v = Dur(m, "correlate.max_age")) j.correlate_age = *v; }
      }
    }
    if (auto h = body["on_ban"]) {
      if (auto l = StrList(h, "on_ban")) {
        if (l->empty() || (*l)[0].empty() || (*l)[0][0] != '/')
          Err(h, "on_ban must be an argv list whose first element is an absolute program path");
        for (const auto& a : *l) {
          std::string bad;
          if (!ValidPlaceholders(a, bad)) Err(h, "unknown placeholder {" + bad + "} in on_ban");
        }
        j.on_ban = *l;
      }
    }
    if (auto rules = body["rules"]) {
      if (!rules.IsSequence()) Err(rules, "rules must be a list");
      else {
        std::set<std::string> from_set;  // rules a `use:` brought in: a rule of the same name replaces one
        for (const auto& r : rules) {
          if (r.IsMap() && r["use"]) {
            if (!Keys(r, "a use of a rule set", {"use", "only", "except"})) continue;
            auto set_name = Str(r["use"], "use");
            if (!set_name) continue;
            auto set = c.rule_sets.find(*set_name);
            if (set == c.rule_sets.end()) {
              Err(r["use"], "unknown rule set '" + *set_name + "'");
              continue;
            }
            std::optional<std::vector<std::string>> only, except;
            if (r["only"]) only = StrList(r["only"], "only");
            if (r["except"]) except = StrList(r["except"], "except");
            for (const auto* list : {&only, &except})
              if (*list)
                for (const auto& n : **list)
                  if (std::none_of(set->second.first.begin(), set->second.first.end(), [&](const RuleSpec& s) { return s.name == n; }))
                    Err(r, "rule set '" + *set_name + "' has no rule '" + n + "'");
            for (RuleSpec rs : set->second.first) {
              if (only && std::find(only->begin(), only->end(), rs.name) == only->end()) continue;
              if (except && std::find(except->begin(), except->end(), rs.name) != except->end()) continue;
              if (rs.ban.count() < 0) rs.ban = c.ban.default_duration;
              from_set.insert(rs.name);
              j.rules.push_back(std::move(rs));
            }
            continue;
          }
          if (auto rs = Rule(r)) {
            if (rs->ban.count() < 0) rs->ban = c.ban.default_duration;
            auto same = std::find_if(j.rules.begin(), j.rules.end(), [&](const RuleSpec& x) { return x.name == rs->name; });
            if (same != j.rules.end() && from_set.erase(rs->name)) *same = std::move(*rs);  // this jail's own version
            else j.rules.push_back(std::move(*rs));
          }
        }
      }
    }
    c.jails.push_back(std::move(j));
  }
}

}  // namespace


namespace {

YAML::Node ParseYaml(const std::string& text, const std::string& name, std::vector<Error>& errors) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    errors.push_back(Error{"YAML syntax error: " + e.msg, {name, e.mark.line + 1, e.mark.column + 1}});
  }
  return YAML::Node();
}

std::optional<std::string> ReadText(const std::string& path, std::vector<Error>& errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors.push_back(Error{"cannot read configuration file: " + std::string(std::strerror(errno)), {path, 0, 0}});
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Checks what can only be checked once every file is read: references between jails,
// filters and event kinds.
void CrossCheck(Config& c, const Reader::FilterRefs& refs, std::vector<Error>& errors) {
  for (const auto& [jail, list] : refs)
    for (const auto& [filter, where] : list)
      if (!c.filters.count(filter))
        errors.push_back(Error{"jail '" + jail + "' uses unknown filter '" + filter + "'", where});
  for (const JailSpec& j : c.jails) {
    std::set<std::string> kinds(std::begin(kStandardKinds), std::end(kStandardKinds));
    for (const auto& f : j.filters)
      if (auto it = c.filters.find(f); it != c.filters.end()) kinds.insert(it->second.kinds.begin(), it->second.kinds.end());
    std::set<std::string> names;
    for (const RuleSpec& r : j.rules) {
      if (!names.insert(r.name).second) errors.push_back(Error{"rule name '" + r.name + "' is used twice in jail '" + j.name + "'", r.where});
      bool confirmed = false;
      for (const auto& e : r.events) {
        if (!kinds.count(e))
          errors.push_back(Error{"rule '" + r.name + "' counts unknown event kind '" + e + "'", r.where});
        confirmed = confirmed || e == "auth_success" || e == "relay";
      }
      // Anyone can fail a login as any account: a hook that acts on the account (locks it)
      // may only follow events that prove the account was really used.
      if (!r.on_account.empty() && (r.key != RuleKey::kAccount || !confirmed))
        errors.push_back(Error{"rule '" + r.name + "': on_account needs key: account and events that prove use of the "
                               "account (auth_success or relay); failures can be forged for any account", r.where});
    }
  }
}

std::optional<Config> Load(const std::string& text, const std::string& name, const std::string& base_dir,
                           std::vector<Error>& errors) {
  size_t before = errors.size();
  Config c;
  c.file = name;
  Reader::FilterRefs refs;
  YAML::Node root = ParseYaml(text, name, errors);
  if (errors.size() > before) return std::nullopt;
  if (!root.IsDefined() || root.IsNull()) {
    errors.push_back(Error{"the configuration is empty", {name, 1, 1}});
    return std::nullopt;
  }
  Reader main(name, errors, refs);
  std::vector<std::pair<std::string, YAML::Node>> includes;
  main.Global(root, c, includes);
  // Jails refer to the global ban default, so read it before any jail; filters first too.
  if (root.IsMap() && root["filters"]) main.Filters(root["filters"], c);
  if (root.IsMap() && root["rule_sets"]) main.RuleSets(root["rule_sets"], c);
  std::vector<std::pair<std::string, YAML::Node>> jail_nodes;
  if (root.IsMap() && root["jails"]) jail_nodes.emplace_back(name, root["jails"]);
  for (const auto& [pattern, node] : includes) {
    std::string full = pattern.empty() || pattern[0] == '/' ? pattern : base_dir + "/" + pattern;
    glob_t g{};
    int rc = glob(full.c_str(), 0, nullptr, &g);
    if (rc != 0 && rc != GLOB_NOMATCH) main.Err(node, "cannot expand include '" + pattern + "'");
    for (size_t i = 0; rc == 0 && i < g.gl_pathc; ++i) {
      std::string path = g.gl_pathv[i];
      auto inc_text = ReadText(path, errors);
      if (!inc_text) continue;
      YAML::Node inc = ParseYaml(*inc_text, path, errors);
      if (!inc.IsDefined() || inc.IsNull()) continue;
      Reader r(path, errors, refs);
      if (!r.Keys(inc, "an included file", {"jails", "filters", "rule_sets"})) continue;
      if (inc["filters"]) r.Filters(inc["filters"], c);
      if (inc["rule_sets"]) r.RuleSets(inc["rule_sets"], c);
      if (inc["jails"]) jail_nodes.emplace_back(path, inc["jails"]);
    }
    globfree(&g);
  }
  for (const auto& [file, node] : jail_nodes) {
    Reader r(file, errors, refs);
    r.Jails(node, c);
  }
  CrossCheck(c, refs, errors);
  if (errors.size() > before) return std::nullopt;
  return c;
}

}  // namespace

std::optional<Config> LoadConfig(const std::string& path, std::vector<Error>& errors) {
  auto text = ReadText(path, errors);
  if (!text) return std::nullopt;
  std::string dir = std::filesystem::path(path).parent_path().string();
  return Load(*text, path, dir.empty() ? "." : dir, errors);
}

std::optional<std::string> LoadControlSocket(const std::string& path, std::vector<Error>& errors) {
  size_t before = errors.size();
  auto text = ReadText(path, errors);
  if (!text) return std::nullopt;
  YAML::Node root = ParseYaml(*text, path, errors);
  if (errors.size() > before) return std::nullopt;
  std::string socket = Config{}.control_socket;
  if (!root.IsDefined() || root.IsNull()) return socket;
  if (!root.IsMap()) {
    errors.push_back(Error{"the main configuration must be a map of settings", {path, 1, 1}});
    return std::nullopt;
  }
  Reader::FilterRefs refs;
  Reader r(path, errors, refs);
  if (auto n = root["control_socket"])
    if (auto s = r.Str(n, "control_socket")) socket = *s;
  if (errors.size() > before) return std::nullopt;
  return socket;
}

std::optional<Config> LoadConfigText(const std::string& text, const std::string& name, const std::string& base_dir,
                                     std::vector<Error>& errors) {
  return Load(text, name, base_dir, errors);
}

}  // namespace relayban
