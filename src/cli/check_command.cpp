#include "check_command.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iomanip>
#include <iostream>
#include <filesystem>
#include <utility>

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_reader.hpp"
#include "parsed_reader.hpp"
#include "report_thread.hpp"
#include "report/json_report.hpp"
#include "report/tables.hpp"
#include "source/local_zone.hpp"
#include "relayban/config/config_loader.hpp"
#include "relayban/core/text.hpp"
#include "relayban/engine/engine.hpp"
#include "relayban/state/state_store.hpp"

namespace relayban {
namespace {

void PrintAccounts(const AccountBook& accounts, std::ostream& out) {
  // A botnet's invented names leave 200,000 accounts to list after the last line is read:
  // their rows are made in blocks, two at a time on the two cores, and written in order.
  constexpr size_t kRows = 2048;
  std::vector<uint32_t> order = accounts.Sorted();
  out << AccountTableHeader();
  FormatInPairs(
      (order.size() + kRows - 1) / kRows,
      [&](size_t block, std::string& rows) {
        std::string scratch;
        for (size_t i = block * kRows; i < std::min(order.size(), (block + 1) * kRows); ++i)
          AppendAccountTableRow(rows, accounts.ViewAt(order[i]), scratch);
      },
      [&](const std::string& rows) { out << rows; });
}

// `item` in dump(2) layout, each line indented for an array under a key of the top-level
// object.
std::string IndentedJsonItem(const nlohmann::json& item) {
  std::string text = item.dump(2);
  std::string out = "    ";
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    out += c;
    if (c == '\n') out += "    ";
  }
  return out;
}

// Decisions written to the report as they come, through a buffer: a replayed botnet makes
// a million of them, 200 MB of text, which went through a temporary file (the kernel's page
// cache, 6 % of such a replay's time) only to follow a summary that needed them all counted;
// the summary now follows them. `head` goes before the first item, `between` between two.
class DecisionStream {
 public:
  DecisionStream(std::ostream& out, std::string head, std::string between)
      : out_(out), head_(std::move(head)), between_(std::move(between)), buffer_(new char[kBuffer]) {}
  DecisionStream(const DecisionStream&) = delete;
  DecisionStream& operator=(const DecisionStream&) = delete;
  size_t size() const { return count_; }
  // One item, written in parts one after the other.
  void AddParts(std::initializer_list<std::string_view> parts) {
    Put(count_++ == 0 ? head_ : between_);
    for (std::string_view p : parts) Put(p);
  }
  void AddText(std::string_view text) { AddParts({text}); }
  // One JSON array item (`between` and `head` end with its first line's indent).
  void AddJson(const nlohmann::json& item) { AddText(std::string_view(IndentedJsonItem(item)).substr(4)); }
  // What is buffered goes out (before the report's thread ends or the summary follows).
  void Flush() {
    if (used_ > 0) out_.write(buffer_.get(), static_cast<std::streamsize>(used_));
    used_ = 0;
  }

 private:
  void Put(std::string_view s) {
    if (used_ + s.size() > kBuffer) {
      Flush();
      if (s.size() > kBuffer) {
        out_.write(s.data(), static_cast<std::streamsize>(s.size()));
        return;
      }
    }
    std::memcpy(buffer_.get() + used_, s.data(), s.size());
    used_ += s.size();
  }
  static constexpr size_t kBuffer = 256 << 10;
  std::ostream& out_;
  std::string head_, between_;
  std::unique_ptr<char[]> buffer_;
  size_t used_ = 0;
  size_t count_ = 0;
};

// Hooks and (with --json) account verdicts of a replay, formatted as they come into an
// unnamed temporary file and copied out at the end (their arrays follow the decisions').
// Formats them for people, or as the items of a JSON array in `dump(2)` layout.
class Spool {
 public:
  // A buffer of 256 KiB (glibc's own would be 4 KiB): a system call every few dozen items.
  Spool() : file_(std::tmpfile()), buffer_(new char[kBuffer]) {
    if (file_) std::setvbuf(file_, buffer_.get(), _IOFBF, kBuffer);
  }
  ~Spool() {
    if (file_) std::fclose(file_);
  }
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;
  bool ok() const { return file_ != nullptr; }
  size_t size() const { return count_; }
  // One JSON array item, indented for a key of the top-level object.
  void AddJson(const nlohmann::json& item) { Write((count_ ? ",\n" : "") + IndentedJsonItem(item)); }
  void AddText(const std::string& text) { Write(text); }
  // Copies what was added to `out`: to standard output by the kernel (sendfile), else, or
  // where the kernel will not, through a buffer.
  void CopyTo(std::ostream& out) {
    if (!file_) return;
    std::fflush(file_);
    if (&out == &std::cout) {
      out.flush();
      std::fflush(stdout);
      off_t offset = 0;
      struct stat st{};
      if (fstat(fileno(file_), &st) == 0) {
        while (offset < st.st_size) {
          ssize_t n = sendfile(STDOUT_FILENO, fileno(file_), &offset, static_cast<size_t>(st.st_size - offset));
          if (n > 0) continue;
          if (n < 0 && errno == EINTR) continue;
          break;
        }
        if (offset == st.st_size) return;
        if (offset > 0) {  // the kernel stopped part way (a closed pipe): what is left goes too
          std::fseek(file_, offset, SEEK_SET);
          CopyRest(out);
          return;
        }
      }
    }
    std::rewind(file_);
    CopyRest(out);
  }

 private:
  void CopyRest(std::ostream& out) {
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, file_)) > 0) out.write(buf, static_cast<std::streamsize>(n));
  }
  void Write(const std::string& s) {
    ++count_;
    if (file_) std::fwrite(s.data(), 1, s.size(), file_);
  }
  static constexpr size_t kBuffer = 256 << 10;
  std::FILE* file_;
  std::unique_ptr<char[]> buffer_;  // freed after the destructor has closed file_
  size_t count_ = 0;
};

// Keeps `engine` to the process's end, reachable but never freed (CheckOptions::leave_state).
void LeaveForExit(std::unique_ptr<Engine> engine) {
  static std::vector<Engine*> left;
  left.push_back(engine.release());
}

// Prints `doc` (an object with keys) as dump(2) would with each key of `arrays` holding the
// spool's items, its opening "{\n" replaced by `lead`.
void PrintWithSpools(const nlohmann::json& doc, const std::vector<std::pair<std::string, Spool*>>& arrays,
                     std::string_view lead, std::ostream& out) {
  nlohmann::json j = doc;
  for (const auto& [key, spool] : arrays) j[key] = "\x01" + key;
  std::string text = j.dump(2);
  out << lead;
  size_t at = 2;  // after "{\n"
  while (at < text.size()) {
    size_t mark = text.find("\"\\u0001", at);
    if (mark == std::string::npos) {
      out << text.substr(at);
      break;
    }
    size_t close = text.find('"', mark + 7);
    std::string key = text.substr(mark + 7, close - mark - 7);
    out << text.substr(at, mark - at);
    for (const auto& [k, spool] : arrays) {
      if (k != key) continue;
      if (spool->size() == 0) {
        out << "[]";
      } else {
        out << "[\n";
        spool->CopyTo(out);
        out << "\n  ]";
      }
    }
    at = close + 1;
  }
}

}  // namespace

int RunConfigTest(const std::string& config, bool json, std::ostream& out, std::ostream& err) {
  std::vector<Error> errors;
  auto c = LoadConfig(config, errors);
  if (json) {
    nlohmann::json j;
    j["ok"] = errors.empty();
    j["errors"] = nlohmann::json::array();
    for (const auto& e : errors)
      j["errors"].push_back({{"file", e.where.file}, {"line", e.where.line}, {"column", e.where.column}, {"message", e.message}});
    if (c) {
      j["jails"] = nlohmann::json::array();
      j["rules"] = nlohmann::json::object();  // the rules each jail ends up with, rule sets expanded
      for (const auto& jail : c->jails) {
        j["jails"].push_back(jail.name);
        j["rules"][jail.name] = nlohmann::json::array();
        for (const auto& r : jail.rules)
          j["rules"][jail.name].push_back({{"name", r.name},
                                           {"key", r.key == RuleKey::kIp ? "ip" : "account"},
                                           {"events", r.events},
                                           {"distinct", FieldName(r.distinct)},
                                           {"threshold", r.threshold},
                                           {"window_s", r.window.count()},
                                           {"ban_s", r.ban.count()},
                                           {"scope", r.scope == RuleScope::kFleet ? "fleet" : "host"},
                                           {"relative", r.relative_factor > 0 ? nlohmann::json{{"factor", r.relative_factor},
                                                                                               {"warmup_s", r.relative_warmup.count()},
                                                                                               {"while_warming", r.while_warming}}
                                                                              : nlohmann::json(nullptr)},
                                           {"new_network", r.new_network_factor > 0 ? nlohmann::json{{"factor", r.new_network_factor},
                                                                                                     {"for_s", r.new_network_for.count()}}
                                                                                    : nlohmann::json(nullptr)},
                                           {"defined_at", r.where.ToString()}});
      }
    }
    out << j.dump(2) << "\n";
    return errors.empty() ? 0 : kExitConfig;
  }
  for (const auto& e : errors) err << e.ToString() << "\n";
  if (!errors.empty()) {
    err << config << ": " << errors.size() << (errors.size() == 1 ? " error" : " errors") << "\n";
    return kExitConfig;
  }
  size_t rules = 0;
  for (const auto& j : c->jails) rules += j.rules.size();
  out << config << ": OK (" << c->jails.size() << " jails, " << c->filters.size() << " filters, " << rules
      << " rules)\n";
  // The rules each jail ends up with (rule sets expanded, overrides applied).
  for (const auto& j : c->jails) {
    out << "  " << j.name << ":";
    for (const auto& r : j.rules) {
      out << " " << r.name << " (" << r.threshold;
      if (r.relative_factor > 0) {
        char f[32];
        std::snprintf(f, sizeof f, "%g", r.relative_factor);
        out << " or " << f << "x usual, " << r.while_warming << " warming up";
      }
      out << "/" << FormatDuration(r.window) << (r.scope == RuleScope::kFleet ? " across the fleet" : "") << ")";
    }
    out << "\n";
  }
  if (c->fleet.on)
    out << "  fleet " << c->fleet.name << " via Redis " << c->fleet.redis << " as "
        << (c->fleet.host.empty() ? std::string("this host's name") : c->fleet.host) << "\n";
  return 0;
}

bool LooksLikeAuthFailure(std::string_view line) {
  std::string lower(line.substr(0, 4096));
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  auto any = [&](std::initializer_list<std::string_view> words) {
    return std::any_of(words.begin(), words.end(), [&](std::string_view w) { return lower.find(w) != std::string::npos; });
  };
  return any({"postfix", "dovecot", "exim", "sendmail", "sm-mta", "courier", "cyrus", "imapd", "pop3d", "imap-login",
              "pop3-login", "smtpd", "qmail", "vchkpw", "vpopmail", "spamdyke", "saslauthd", "opensmtpd", "haraka",
              "submission", "managesieve"}) &&
         any({"auth", "login", "password", "passwd", "credential", "sasl"}) &&
         any({"fail", "denied", "mismatch", "invalid", "incorrect", "unknown user", "bad", "refused", "wrong"});
}

int RunCheck(const CheckOptions& o, Time now, std::ostream& out, std::ostream& err) {
  std::vector<Error> errors;
  auto config = LoadConfig(o.config, errors);
  if (!config) {
    for (const auto& e : errors) err << e.ToString() << "\n";
    return kExitConfig;
  }
  EngineOptions eo;
  eo.jails = o.jails;
  eo.zone = HostLocalZone();
  eo.evidence = o.evidence && !o.events && !o.explain_misses;
  auto engine = Engine::Create(*config, eo);
  if (!engine) {
    err << "relayban: " << engine.error().ToString() << "\n";
    return kExitConfig;
  }
  if (!o.history.empty()) {
    if (!std::filesystem::exists(o.history)) {
      err << "relayban: " << o.history << ": no such state database\n";
      return kExitInput;
    }
    auto store = OpenSqliteStore(o.history);
    auto rows = store ? (*store)->LoadAccountHistory() : Result<std::vector<std::pair<std::string, std::string>>>(Fail(store.error()));
    if (!rows) {
      err << "relayban: cannot read the account history in " << o.history << ": " << rows.error().message << "\n";
      return kExitInput;
    }
    size_t restored = 0;
    for (const auto& [account, bytes] : *rows) restored += (*engine)->RestoreAccountHistory(account, bytes);
    if (!o.json) err << "history of " << restored << " accounts read from " << o.history << "\n";
  }
  auto source = (*engine)->AddSource({}, StampFormat::kAuto);
  if (!source) {
    err << "relayban: " << source.error().ToString() << "\n";
    return kExitConfig;
  }
  std::string current_file;
  uint64_t current_line = 0;
  bool yielded = false;
  uint64_t misses = 0;
  constexpr uint64_t kMissesShown = 200;
  if (o.explain_misses) (*engine)->SetEventObserver([&](const Event&) { yielded = true; });
  if (o.events && !o.explain_misses) {
    const Engine& eng = **engine;
    (*engine)->SetEventObserver([&](const Event& e) {
      if (o.json) {
        auto j = EventJson(eng, e);
        j["file"] = current_file;
        j["line"] = current_line;
        out << j.dump() << "\n";
        return;
      }
      out << current_file << ":" << current_line << "  " << eng.jail_names()[static_cast<size_t>(e.jail)] << "/"
          << eng.filter_names()[static_cast<size_t>(e.filter)] << "#" << e.pattern << "  "
          << eng.kind_names()[static_cast<size_t>(e.kind)] << "  ip=" << (e.ip ? e.ip->ToString() : "-")
          << "  account=" << (e.account.empty() ? "-" : Printable(e.account, 80))
          << "  sender=" << (e.sender.empty() ? "-" : Printable(e.sender, 80))
          << "  recipient=" << (e.recipient.empty() ? "-" : Printable(e.recipient, 80))
          << "  id=" << (e.id.empty() ? "-" : Printable(e.id, 40)) << (e.count > 1 ? "  count=" + std::to_string(e.count) : "")
          << "\n";
    });
  }
  // Every log must open before anything is written: a report cut short by a missing one
  // would begin with decisions of the others.
  for (const auto& log : o.logs) {
    if (log == "-") continue;
    int fd = open(log.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      err << "relayban: " << Error{std::string("cannot open log: ") + std::strerror(errno), {log, 0, 0}}.ToString() << "\n";
      return kExitInput;
    }
    close(fd);
  }
  DecisionStream decisions(out, o.json ? "{\n  \"decisions\": [\n    " : "Decisions:\n", o.json ? ",\n    " : "");
  Spool hooks, verdicts;
  if (!hooks.ok() || !verdicts.ok()) {
    err << "relayban: cannot create a temporary file for the report: " << std::strerror(errno) << "\n";
    return kExitInput;
  }
  EngineOutput batch;
  // The text of the last ban's line before and after its address, and the ban it was made for.
  struct {
    bool valid = false;
    Order order;
    std::string time, text;
  } tail;
  // What scoring one line gave, spooled as it comes.
  auto has_report = [](const EngineOutput& b) {
    return !b.orders.empty() || !b.hooks.empty() || !b.notices.empty() || !b.verdicts.empty();
  };
  auto format = [&](const EngineOutput& batch) {
    {
      if (!o.events) {
        for (const auto& v : batch.verdicts) {
          if (o.json) {
            nlohmann::json e = nlohmann::json::array();
            for (const auto& x : v.evidence) e.push_back(x.line);
            verdicts.AddJson({{"at", FormatIso8601(v.at)}, {"jail", v.jail}, {"rule", v.rule}, {"account", v.account},
                              {"reason", v.reason}, {"addresses", v.addresses}, {"evidence", e}});
          } else {
            decisions.AddText("  " + FormatIso8601(v.at) + "  account verdict " + Printable(v.account, 80) + "  " + v.jail +
                              "/" + v.rule + "\n      " + Printable(v.reason, 200) + "\n");
          }
        }
        for (const auto& n : batch.notices)
          if (!o.json) decisions.AddText("  note: " + n + "\n");
        for (const auto& d : batch.orders) {
          if (o.json) {
            decisions.AddJson(OrderJson(d));
            continue;
          }
          // Appended to one string, not an ostringstream (whose set-up cost more than the
          // rest of the line, a million times in a replayed botnet). What follows the
          // address is the same for every ban of one verdict: written once for them all.
          if (!tail.valid || !SameButTarget(tail.order, d)) {
            tail.valid = true;
            tail.order = d;
            tail.time = "  " + FormatIso8601(d.at) + "  ban ";
            std::string& t = tail.text;
            t = " for ";
            t += Cell(d.duration.count() == 0 ? "ever" : FormatDuration(d.duration), 6);
            t += " ";
            t += d.jail;
            t += "/";
            t += d.rule;
            if (!d.account.empty()) {
              t += "  account ";
              t += Printable(d.account, 80);
            }
            t += "\n      ";
            t += Printable(d.reason, 200);
            t += "\n";
            constexpr size_t kShown = 3;  // the rest with --json
            size_t from = d.evidence.size() > kShown ? d.evidence.size() - kShown : 0;
            for (size_t i = from; i < d.evidence.size(); ++i) {
              t += "        > ";
              t += Printable(d.evidence[i].line, 300);
              t += "\n";
            }
          }
          // The target in a column of 18, but never cut: an IPv6 prefix ("2001:db8:0:32::/64")
          // is read whole. (Not Cell, whose check for unprintable bytes an address's text does
          // not need: a million bans spent 2 % of the scoring thread there.) Written in its
          // parts, with no line built per ban.
          char text[Prefix::kMaxText];
          std::string_view target(text, d.target.WriteText(text));
          static constexpr std::string_view kPad = "                  ";
          decisions.AddParts({tail.time, target, kPad.substr(0, target.size() < 18 ? 18 - target.size() : 1), tail.text});
        }
        for (const auto& h : batch.hooks) {
          if (o.json) {
            hooks.AddJson({{"jail", h.jail}, {"rule", h.rule}, {"account", h.account}, {"argv", h.argv}});
            continue;
          }
          std::string line = "  hook (not run by check):";
          for (const auto& a : h.argv) line += " " + Printable(a, 120);
          hooks.AddText(line + "\n");
        }
      }
    }
  };
  auto report = [&] {
    if (has_report(batch)) {
      format(batch);
      batch.clear();
    }
  };
  if (o.events || o.explain_misses) {
    for (const auto& log : o.logs) {
      current_file = log;
      auto r = ReadLogLines(log, config->max_line, [&](std::string_view line, uint64_t number) {
        current_line = number;
        yielded = false;
        (*engine)->OnLine(*source, line, now, batch);
        if (o.explain_misses && !yielded && LooksLikeAuthFailure(line)) {
          if (++misses <= kMissesShown) {
            if (o.json) out << nlohmann::json{{"file", current_file}, {"line", number}, {"text", Printable(line, 1000)}}.dump() << "\n";
            else out << current_file << ":" << number << "  " << Printable(line, 300) << "\n";
          }
          batch.clear();
          return;
        }
        if (o.explain_misses) {
          batch.clear();
          return;
        }
        report();
      });
      if (!r) {
        err << "relayban: " << r.error().ToString() << "\n";
        return kExitInput;
      }
    }
  } else {
    // The lines are read and matched on a second core while this one scores them, and what
    // scoring gives is formatted on a third thread.
    Engine& eng = **engine;
    ReportThread<EngineOutput> writer(format);
    auto r = ReadParsedLines(eng, *source, o.logs, config->max_line, now,
                             [&](std::string_view line, const Engine::ParsedLine& parsed, const PatternHit* hits) {
                               eng.OnParsed(*source, line, parsed, hits, batch);
                               if (has_report(batch)) writer.Add(batch);
                             });
    writer.Finish();
    decisions.Flush();  // (only this path formats decisions: the summary below follows them)
    if (!r) {
      err << "relayban: " << r.error().ToString() << "\n";
      return kExitInput;
    }
  }
  if (o.explain_misses) {
    if (!o.json) {
      if (misses == 0) out << "no line looks like an authentication failure without yielding an event\n";
      else
        out << misses << " lines look like authentication failures but yielded no event"
            << (misses > kMissesShown ? " (the first " + std::to_string(kMissesShown) + " shown)" : "")
            << "; some formats are left out on purpose (see the comments in filters.d), others are worth a report\n";
    }
    return 0;
  }
  if (o.events) return 0;
  const EngineStats& s = (*engine)->stats();
  const auto& kinds = (*engine)->kind_names();
  const AccountBook& accounts = (*engine)->accounts();
  if (o.json) {
    nlohmann::json j;
    j["lines"] = s.lines;
    j["matched"] = s.matched;
    j["skipped"] = s.skipped;
    j["ambiguous"] = s.ambiguous;
    j["events"] = nlohmann::json::object();
    for (size_t k = 0; k < kinds.size() && k < s.events.size(); ++k)
      if (s.events[k] > 0) j["events"][kinds[k]] = s.events[k];
    j["accounts"] = nlohmann::json::array();
    accounts.ForEachSorted([&](const AccountView& a) { j["accounts"].push_back(AccountJson(a)); });
    PrintWithSpools(j, {{"account_verdicts", &verdicts}, {"hooks", &hooks}},
                    decisions.size() == 0 ? "{\n  \"decisions\": [],\n" : "\n  ],\n", out);
    out << "\n";
    if (o.leave_state) LeaveForExit(std::move(*engine));
    return 0;
  }
  hooks.CopyTo(out);
  if (decisions.size() > 0 || hooks.size() > 0) out << "\n";
  out << "Accounts: " << accounts.size() << "\n";
  if (accounts.size() > 0) PrintAccounts(accounts, out);
  // The summary last, where a terminal leaves it in sight (as fail2ban-regex does).
  out << "\nLines: " << s.lines << " read, " << s.matched << " matched, " << s.skipped << " skipped";
  if (s.ambiguous) out << " (" << s.ambiguous << " ambiguous, possible injection)";
  out << "\nEvents:";
  bool any = false;
  for (size_t k = 0; k < kinds.size() && k < s.events.size(); ++k)
    if (s.events[k] > 0) {
      out << (any ? ", " : " ") << kinds[k] << " " << s.events[k];
      any = true;
    }
  out << (any ? "" : " none") << "\nDecisions: " << decisions.size() << "\n";
  if (o.leave_state) LeaveForExit(std::move(*engine));
  return 0;
}

}  // namespace relayban
