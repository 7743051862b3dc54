// Jail activation: which jails are on and why, and which log files and journald sources feed
// which jails. Pure: the host is looked at through a HostProbe, so the decisions are unit-
// tested with a fake host. `enabled: auto` jails are on when one of their `detect` paths
// exists (the mail system is installed), else when one of their logs does; a jail reads its
// log files when one exists and its journald sources otherwise (hosts with rsyslog have the
// same lines in both, which must not count twice).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "relayban/spec/spec.hpp"

namespace relayban {

struct HostProbe {
  std::function<bool(const std::string& path)> exists;
  std::function<std::vector<std::string>(const std::string& glob)> expand;  // a plain path expands to itself
  std::function<bool(const LogSpec& journal)> journal_present;
};

struct JailState {
  std::string name;
  bool on = false;
  std::string why;  // "on: /usr/sbin/postfix exists", "off: enabled: false", ...
};

struct FilePlan {
  std::string path;
  std::vector<std::string> jails;
  StampFormat stamp = StampFormat::kAuto;
};

struct JournalPlan {
  std::vector<std::string> matches;
  std::string directory;
  std::vector<std::string> jails;
};

struct ActivationPlan {
  std::vector<JailState> jails;  // in configuration order
  std::vector<std::string> on;   // names of the jails that are on
  std::vector<FilePlan> files;   // sorted by path
  std::vector<JournalPlan> journals;
  // Where journald's reports of lines it dropped are read (see JournaldLosses): the journal
  // the jails that are on name ("" the system journal, else a directory), whether they
  // read it now or a log file; none when no such journal is there. And the units those
  // journal logs name: a report about another unit is not relayban's business.
  std::optional<std::string> loss_journal;
  std::vector<std::string> units;
};

// `on_journal`: jails that read a journal now and keep it (the periodic re-plan), even if
// a log file has appeared since: its first lines were read from the journal already.
ActivationPlan PlanActivation(const Config& config, const HostProbe& probe, const std::vector<std::string>& on_journal = {});

// The real host: access(2), glob(3), and installed systemd units for journald matches.
HostProbe RealHostProbe();

}  // namespace relayban
