#include "jail_activation.hpp"

#include <glob.h>
#include <unistd.h>

#include <algorithm>
#include <map>

namespace relayban {

ActivationPlan PlanActivation(const Config& config, const HostProbe& probe, const std::vector<std::string>& on_journal) {
  ActivationPlan plan;
  for (const JailSpec& j : config.jails) {
    JailState st{j.name, false, ""};
    if (j.enabled == Enabled::kNo) {
      st.why = "off: enabled: false";
    } else if (j.enabled == Enabled::kYes) {
      st.on = true;
      st.why = "on: enabled: true";
    } else if (!j.detect.empty()) {
      auto present = std::find_if(j.detect.begin(), j.detect.end(), probe.exists);
      if (present == j.detect.end()) {
        st.why = "off: enabled: auto and none of " + j.detect.front() + (j.detect.size() > 1 ? ", ..." : "") + " exists";
      } else {
        st.on = true;
        st.why = "on: " + *present + " exists";
      }
    } else {
      std::string found;
      for (const auto& l : j.logs) {
        if (l.path.empty()) continue;
        for (const auto& p : probe.expand(l.path))
          if (probe.exists(p)) found = p;
        if (!found.empty()) break;
      }
      if (!found.empty()) {
        st.on = true;
        st.why = "on: " + found + " exists";
      } else {
        for (const auto& l : j.logs)
          if (l.path.empty() && probe.journal_present(l)) {
            st.on = true;
            st.why = "on: the journal of " + (l.journal_directory.empty() ? l.journal_match.front() : l.journal_directory) +
                     " is there";
            break;
          }
        if (!st.on) st.why = "off: enabled: auto and none of its logs exists";
      }
    }
    plan.jails.push_back(st);
    if (!st.on) continue;
    plan.on.push_back(j.name);
  }

  std::map<std::string, FilePlan> files;
  std::map<std::string, JournalPlan> journals;
  for (const JailSpec& j : config.jails) {
    if (std::find(plan.on.begin(), plan.on.end(), j.name) == plan.on.end()) continue;
    bool any_file = false;
    for (const auto& l : j.logs)
      if (!l.path.empty())
        for (const auto& p : probe.expand(l.path)) any_file = any_file || probe.exists(p);
    // No log file yet but a journal: the jail reads the journal, and only the journal. A
    // file that appears later (rsyslog starting after us) carries the same lines again; it
    // is read from the next start or reload on, from its end (see SourceSet::Follow).
    bool keep = std::find(on_journal.begin(), on_journal.end(), j.name) != on_journal.end();
    bool journal_used = false;
    for (const auto& l : j.logs) {
      if (!l.path.empty() || !probe.journal_present(l)) continue;
      journal_used = journal_used || !any_file || keep;
      if (!plan.loss_journal) plan.loss_journal = l.journal_directory;
      const std::string key = "_SYSTEMD_UNIT=";
      for (const auto& m : l.journal_match)
        if (m.rfind(key, 0) == 0 && std::find(plan.units.begin(), plan.units.end(), m.substr(key.size())) == plan.units.end())
          plan.units.push_back(m.substr(key.size()));
    }
    for (const auto& l : j.logs) {
      if (l.path.empty()) {
        if (!journal_used || !probe.journal_present(l)) continue;
        std::string key;
        for (const auto& m : l.journal_match) key += m + ",";
        key += "@" + l.journal_directory;
        JournalPlan& jp = journals[key];
        jp.matches = l.journal_match;
        jp.directory = l.journal_directory;
        jp.jails.push_back(j.name);
        continue;
      }
      // Every match of a glob, whether it exists yet or not (a plain path that does not
      // exist yet is followed from when it appears).
      if (journal_used) continue;
      for (const auto& path : probe.expand(l.path)) {
        FilePlan& fp = files[path];
        fp.path = path;
        fp.jails.push_back(j.name);
        if (l.stamp != StampFormat::kAuto) fp.stamp = l.stamp;
      }
    }
  }
  for (auto& [p, f] : files) plan.files.push_back(std::move(f));
  for (auto& [k, jp] : journals) plan.journals.push_back(std::move(jp));
  return plan;
}

namespace {

std::vector<std::string> Expand(const std::string& pattern) {
  if (pattern.find_first_of("*?[") == std::string::npos) return {pattern};
  std::vector<std::string> out;
  glob_t g{};
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  globfree(&g);
  return out;
}

// Whether the systemd unit a journal match names is installed (templates included).
bool UnitInstalled(const std::string& match) {
  const std::string key = "_SYSTEMD_UNIT=";
  if (match.rfind(key, 0) != 0) return false;
  std::string unit = match.substr(key.size());
  std::vector<std::string> names{unit};
  size_t at = unit.find('@'), dot = unit.rfind('.');
  if (at != std::string::npos && dot != std::string::npos && dot > at) names.push_back(unit.substr(0, at + 1) + unit.substr(dot));
  for (const char* dir : {"/etc/systemd/system/", "/lib/systemd/system/", "/usr/lib/systemd/system/", "/run/systemd/system/"})
    for (const auto& n : names)
      if (access((std::string(dir) + n).c_str(), F_OK) == 0) return true;
  return false;
}

}  // namespace

HostProbe RealHostProbe() {
  HostProbe p;
  p.exists = [](const std::string& path) { return access(path.c_str(), F_OK) == 0; };
  p.expand = Expand;
  p.journal_present = [](const LogSpec& l) {
    if (!l.journal_directory.empty()) return access(l.journal_directory.c_str(), F_OK) == 0;
    return std::any_of(l.journal_match.begin(), l.journal_match.end(), UnitInstalled);
  };
  return p;
}

}  // namespace relayban
