// The client subcommands: ban, unban, list, status, accounts, reload. Each sends one request
// to the daemon's control socket and prints a table for people or the JSON answer.
#pragma once

#include <iosfwd>
#include <string>

namespace relayban {

struct ClientOptions {
  std::string config = "/etc/relayban/relayban.yaml";
  std::string socket;  // overrides the config's control_socket
  bool json = false;
};

struct BanArgs {
  std::string target, duration, jail = "manual", reason = "manual ban";
  bool force = false;
};

int RunBan(const ClientOptions& o, const BanArgs& b, std::ostream& out, std::ostream& err);
int RunUnban(const ClientOptions& o, const std::string& target, bool all, std::ostream& out, std::ostream& err);
int RunForgive(const ClientOptions& o, const std::string& account, std::ostream& out, std::ostream& err);
// What relayban knows of an address or an account: the ban in force, the account's view,
// and the newest decisions about it with the log lines that led to each.
int RunExplain(const ClientOptions& o, const std::string& subject, std::ostream& out, std::ostream& err);
// The daemon's metrics in Prometheus' text format (JSON with --json).
int RunMetrics(const ClientOptions& o, std::ostream& out, std::ostream& err);
int RunSimple(const ClientOptions& o, const std::string& cmd, const std::string& jail, std::ostream& out, std::ostream& err);

}  // namespace relayban
