#include "digest_command.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>

#include "relayban/config/config_loader.hpp"
#include "report/digest.hpp"

extern char** environ;

namespace relayban {
namespace {

// Reads `path` line by line into the builder; false when it cannot be opened.
bool Feed(const std::string& path, DigestBuilder& b) {
  std::ifstream in(path);
  if (!in) return false;
  for (std::string line; std::getline(in, line);) b.Add(line);
  return true;
}

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "this host";
  return buf;
}

// Hands `message` to sendmail on its standard input: argv only, never a shell.
int Mail(const std::string& sendmail, const std::vector<std::string>& to, const std::string& message, std::ostream& err) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    err << "relayban digest: pipe: " << std::strerror(errno) << "\n";
    return 71;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
  std::vector<std::string> args{sendmail, "-oi", "--"};
  args.insert(args.end(), to.begin(), to.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, sendmail.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[0]);
  if (rc != 0) {
    close(fds[1]);
    err << "relayban digest: cannot run " << sendmail << ": " << std::strerror(rc) << "\n";
    return 69;
  }
  for (size_t done = 0; done < message.size();) {
    ssize_t n = write(fds[1], message.data() + done, message.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  close(fds[1]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    err << "relayban digest: " << sendmail << " failed (status " << status << ")\n";
    return 75;
  }
  return 0;
}

}  // namespace

int RunDigest(const DigestOptions& o, Time now, std::ostream& out, std::ostream& err) {
  auto since = ParseDuration(o.since);
  if (!since || since->count() <= 0) {
    err << "relayban digest: bad --since '" << o.since << "' (e.g. 24h, 7d)\n";
    return 64;
  }
  std::string log = o.log;
  DigestSpec spec;
  if (log.empty() || o.mail) {
    std::vector<Error> errors;
    auto c = LoadConfig(o.config, errors);
    if (!c) {
      for (const auto& e : errors) err << e.ToString() << "\n";
      return 78;
    }
    if (log.empty()) log = c->decision_log;
    spec = c->digest;
  }
  if (log.empty()) {
    err << "relayban digest: no decision log: set decision_log in " << o.config << " (or give --log FILE)\n";
    return 78;
  }
  DigestBuilder b(now - *since, now);
  // The generation logrotate moved away holds the start of the period.
  bool any = Feed(log + ".1", b);
  any = Feed(log, b) || any;
  if (!any) {
    err << "relayban digest: cannot read " << log << ": " << std::strerror(errno) << "\n";
    return 66;
  }
  Digest d = b.Finish();
  std::string host = HostName();
  if (!o.mail) {
    if (o.json) out << DigestJson(d).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    else out << DigestText(d, host);
    return 0;
  }
  std::vector<std::string> to = o.to.empty() ? spec.mail_to : o.to;
  for (const auto& a : to)
    if (!MailAddressOk(a)) {
      err << "relayban digest: '" << a << "' is not a plain mail address or local user\n";
      return 64;
    }
  if (to.empty()) {
    err << "relayban digest: nobody to mail it to (digest.mail_to)\n";
    return 64;
  }
  std::string list;
  for (const auto& a : to) list += (list.empty() ? "" : ", ") + a;
  std::string message = "To: " + list + "\nSubject: relayban digest for " + host + ": " + std::to_string(d.bans) + " bans, " +
                        std::to_string(d.verdicts.size()) + " account verdicts\nAuto-Submitted: auto-generated\n" +
                        "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" +
                        DigestText(d, host);
  return Mail(spec.sendmail, to, message, err);
}

}  // namespace relayban
