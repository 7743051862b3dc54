// Which jails are on and which logs feed them, decided on a fake host.
#include "daemon/jail_activation.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "relayban/config/config_loader.hpp"

using namespace relayban;

namespace {

const char* kConfig = R"(
filters:
  f: {patterns: [{event: auth_failure, regex: 'x {ip}$'}]}
jails:
  postfix:
    detect: [/usr/sbin/postfix]
    logs: [/var/log/mail.log, {journal: {match: ["_SYSTEMD_UNIT=postfix@-.service"]}}]
    filters: [f]
  exim:
    detect: [/usr/sbin/exim4]
    logs: [/var/log/mail.log]
    filters: [f]
  qmail:
    logs: [{path: "/var/log/qmail/*/current", stamp: tai64n}]
    filters: [f]
  dovecot:
    enabled: true
    logs: [/var/log/dovecot.log]
    filters: [f]
  off:
    enabled: false
    logs: [/var/log/mail.log]
    filters: [f]
)";

struct FakeHost {
  std::set<std::string> files;
  std::set<std::string> units;
  HostProbe Probe() const {
    HostProbe p;
    p.exists = [this](const std::string& path) { return files.count(path) > 0; };
    p.expand = [this](const std::string& glob) {
      if (glob.find('*') == std::string::npos) return std::vector<std::string>{glob};
      std::vector<std::string> out;
      std::string prefix = glob.substr(0, glob.find('*'));
      for (const auto& f : files)
        if (f.rfind(prefix, 0) == 0 && f.size() > 8 && f.substr(f.size() - 8) == "/current") out.push_back(f);
      return out;
    };
    p.journal_present = [this](const LogSpec& l) { return !l.journal_match.empty() && units.count(l.journal_match[0]) > 0; };
    return p;
  }
};

Config Load() {
  std::vector<Error> errors;
  auto c = LoadConfigText(kConfig, "t.yaml", ".", errors);
  REQUIRE(c);
  return *c;
}

const JailState& Jail(const ActivationPlan& p, const std::string& name) {
  for (const auto& j : p.jails)
    if (j.name == name) return j;
  FAIL("no jail " << name);
  return p.jails[0];
}

}  // namespace

TEST_CASE("a jail with detect paths is on only where its mail system is installed, whatever logs exist") {
  FakeHost host;
  host.files = {"/usr/sbin/postfix", "/var/log/mail.log"};
  auto plan = PlanActivation(Load(), host.Probe());
  CHECK(Jail(plan, "postfix").on);
  CHECK(Jail(plan, "postfix").why == "on: /usr/sbin/postfix exists");
  CHECK_FALSE(Jail(plan, "exim").on);
  CHECK(Jail(plan, "exim").why == "off: enabled: auto and none of /usr/sbin/exim4 exists");
  CHECK(Jail(plan, "dovecot").why == "on: enabled: true");
  CHECK(Jail(plan, "off").why == "off: enabled: false");
  CHECK(plan.on == std::vector<std::string>{"postfix", "dovecot"});
}

TEST_CASE("a log file feeds every jail that is on and reads it, an existing file wins over the journal") {
  FakeHost host;
  host.files = {"/usr/sbin/postfix", "/var/log/mail.log"};
  host.units = {"_SYSTEMD_UNIT=postfix@-.service"};
  auto plan = PlanActivation(Load(), host.Probe());
  REQUIRE(plan.files.size() == 2);  // mail.log, and dovecot.log (followed until it appears)
  CHECK(plan.files[0].path == "/var/log/dovecot.log");
  CHECK(plan.files[1].path == "/var/log/mail.log");
  CHECK(plan.files[1].jails == std::vector<std::string>{"postfix"});
  CHECK(plan.journals.empty());  // rsyslog hosts have the same lines in both
  // journald's reports of lines it dropped are read all the same (those lines are missing
  // from mail.log too), about the units the jails that are on name.
  REQUIRE(plan.loss_journal);
  CHECK(plan.loss_journal->empty());  // the system journal
  CHECK(plan.units == std::vector<std::string>{"postfix@-.service"});
}

TEST_CASE("no journal there, or only for jails that are off: journald's loss reports are not read") {
  FakeHost host;
  host.files = {"/usr/sbin/postfix", "/var/log/mail.log"};
  auto plan = PlanActivation(Load(), host.Probe());
  CHECK_FALSE(plan.loss_journal);
  CHECK(plan.units.empty());
  host.files = {"/usr/sbin/exim4", "/var/log/mail.log"};  // postfix off
  host.units = {"_SYSTEMD_UNIT=postfix@-.service"};
  plan = PlanActivation(Load(), host.Probe());
  CHECK_FALSE(Jail(plan, "postfix").on);
  CHECK_FALSE(plan.loss_journal);
  CHECK(plan.units.empty());
}

TEST_CASE("without its log file a jail reads the journal of its unit") {
  FakeHost host;
  host.files = {"/usr/sbin/postfix"};
  host.units = {"_SYSTEMD_UNIT=postfix@-.service"};
  auto plan = PlanActivation(Load(), host.Probe());
  REQUIRE(plan.journals.size() == 1);
  CHECK(plan.journals[0].jails == std::vector<std::string>{"postfix"});
  CHECK(plan.journals[0].matches == std::vector<std::string>{"_SYSTEMD_UNIT=postfix@-.service"});
  // Only the journal: mail.log appearing later (rsyslog started after us) would carry the
  // same lines a second time and count every attempt twice.
  for (const auto& f : plan.files)
    CHECK(std::find(f.jails.begin(), f.jails.end(), "postfix") == f.jails.end());
}

TEST_CASE("a jail that reads the journal keeps it when its log file appears, a fresh plan takes the file") {
  FakeHost host;
  host.files = {"/usr/sbin/postfix", "/var/log/mail.log"};
  host.units = {"_SYSTEMD_UNIT=postfix@-.service"};
  auto kept = PlanActivation(Load(), host.Probe(), {"postfix"});
  REQUIRE(kept.journals.size() == 1);
  CHECK(kept.journals[0].jails == std::vector<std::string>{"postfix"});
  for (const auto& f : kept.files) CHECK(std::find(f.jails.begin(), f.jails.end(), "postfix") == f.jails.end());
  auto fresh = PlanActivation(Load(), host.Probe());
  CHECK(fresh.journals.empty());
  bool file = false;
  for (const auto& f : fresh.files) file = file || (f.path == "/var/log/mail.log" && std::find(f.jails.begin(), f.jails.end(), "postfix") != f.jails.end());
  CHECK(file);
}

TEST_CASE("a jail without detect paths is on when one of its logs (a glob) exists, with its stamp format") {
  FakeHost host;
  auto plan = PlanActivation(Load(), host.Probe());
  CHECK(Jail(plan, "qmail").why == "off: enabled: auto and none of its logs exists");
  host.files = {"/var/log/qmail/smtpd/current", "/var/log/qmail/submission/current"};
  plan = PlanActivation(Load(), host.Probe());
  CHECK(Jail(plan, "qmail").on);
  std::vector<std::string> qmail;
  for (const auto& f : plan.files)
    if (f.jails == std::vector<std::string>{"qmail"}) {
      qmail.push_back(f.path);
      CHECK(f.stamp == StampFormat::kTai64n);
    }
  CHECK(qmail == std::vector<std::string>{"/var/log/qmail/smtpd/current", "/var/log/qmail/submission/current"});
}
