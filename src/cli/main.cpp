// relayban: command line entry point. Wiring only: parses arguments and calls a command.
#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>

#include "check_command.hpp"
#include "control_commands.hpp"
#include "digest_command.hpp"
#include "history_command.hpp"
#include "daemon/daemon.hpp"
#include "relayban/version.hpp"

int main(int argc, char** argv) {
  using namespace relayban;
  CLI::App app{"relayban - bans mail clients that abuse authentication, per IP and per account"};
  app.require_subcommand(0, 1);
  bool version = false;
  app.add_flag("-V,--version", version, "print the version and exit");

  DaemonOptions daemon;
  auto* daemon_cmd = app.add_subcommand("daemon", "run the daemon in the foreground (systemd Type=notify)");
  daemon_cmd->add_option("-c,--config", daemon.config, "configuration file")->capture_default_str();
  daemon_cmd->add_flag("--dry-run", daemon.dry_run, "log what would be banned; change no firewall (no privileges needed)");
  daemon_cmd->add_flag("--flush-on-exit", daemon.flush_on_exit, "remove the firewall table when stopping");

  CheckOptions check;
  auto* check_cmd = app.add_subcommand("check", "replay logs through the jails offline (no firewall)");
  check_cmd->add_option("-c,--config", check.config, "configuration file")->capture_default_str();
  check_cmd->add_option("-j,--jail", check.jails, "only this jail (repeatable; default: every jail)");
  check_cmd->add_flag("--json", check.json, "one JSON document (JSON Lines with --events)");
  check_cmd->add_flag("--events", check.events, "list every event each matched line yielded");
  check_cmd->add_flag("--explain-misses", check.explain_misses,
                      "list lines that look like authentication failures but yielded no event (to report a format)");
  check_cmd->add_flag("!--no-evidence", check.evidence, "leave out the lines that led to each decision");
  check_cmd->add_option("--history", check.history,
                        "start from the per-account history kept in this state database (see history-import)");
  check_cmd->add_option("logs", check.logs, "log files, '-' for standard input")->required();

  std::string test_config = "/etc/relayban/relayban.yaml";
  bool test_json = false;
  auto* test_cmd = app.add_subcommand("config-test", "validate the configuration and print every error");
  test_cmd->add_option("-c,--config", test_config, "configuration file")->capture_default_str();
  test_cmd->add_flag("--json", test_json, "errors as JSON");

  // Client commands: each talks to the daemon's control socket.
  ClientOptions client;
  auto client_options = [&](CLI::App* c) {
    c->add_option("-c,--config", client.config, "configuration file (for the socket path)")->capture_default_str();
    c->add_option("--socket", client.socket, "control socket path (instead of reading the configuration)");
    c->add_flag("--json", client.json, "print the daemon's JSON answer");
  };
  BanArgs ban;
  auto* ban_cmd = app.add_subcommand("ban", "ban an address or prefix now");
  ban_cmd->add_option("target", ban.target, "ADDR or ADDR/LEN")->required();
  ban_cmd->add_option("--for", ban.duration, "how long (10m, 1h, 7d; 0 = permanent; default: ban.default)");
  ban_cmd->add_option("--jail", ban.jail, "jail to file it under")->capture_default_str();
  ban_cmd->add_option("--reason", ban.reason, "why")->capture_default_str();
  ban_cmd->add_flag("--force", ban.force, "ban even an address of the ignore list");
  client_options(ban_cmd);
  std::string unban_target;
  bool unban_all = false;
  auto* unban_cmd = app.add_subcommand("unban", "lift a ban, or all bans");
  unban_cmd->add_option("target", unban_target, "ADDR or ADDR/LEN");
  unban_cmd->add_flag("--all", unban_all, "lift every ban");
  client_options(unban_cmd);
  auto* list_cmd = app.add_subcommand("list", "active bans: target, jail, rule, account, remaining time, reason");
  client_options(list_cmd);
  std::string status_jail;
  auto* status_cmd = app.add_subcommand("status", "jails, their logs, counters, bans, health");
  status_cmd->add_option("jail", status_jail, "only this jail");
  client_options(status_cmd);
  auto* accounts_cmd = app.add_subcommand("accounts", "per account: logins, failures, relayed mail, addresses, verdicts");
  client_options(accounts_cmd);
  std::string forgive_account;
  auto* forgive_cmd = app.add_subcommand("forgive", "clear an account's verdicts (after its password was changed)");
  forgive_cmd->add_option("account", forgive_account, "the account, as `relayban accounts` shows it")->required();
  client_options(forgive_cmd);
  std::string explain_subject;
  auto* explain_cmd = app.add_subcommand("explain", "why an address or an account was banned: the rule and the log lines behind it");
  explain_cmd->add_option("subject", explain_subject, "an address, a prefix or an account")->required();
  client_options(explain_cmd);
  auto* metrics_cmd = app.add_subcommand("metrics", "the daemon's metrics in Prometheus' text format");
  client_options(metrics_cmd);
  HistoryImportOptions history;
  auto* history_cmd = app.add_subcommand(
      "history-import", "fill the accounts' history from old logs (mail.log.1 ...) while the daemon is stopped");
  history_cmd->add_option("-c,--config", history.config, "configuration file")->capture_default_str();
  history_cmd->add_option("logs", history.logs, "log files, oldest first")->required();
  DigestOptions digest;
  auto* digest_cmd = app.add_subcommand("digest", "summarise the decision log: bans by rule, stolen accounts, top networks");
  digest_cmd->add_option("-c,--config", digest.config, "configuration file (for decision_log and digest)")->capture_default_str();
  digest_cmd->add_option("--log", digest.log, "the decision log (default: decision_log of the configuration)");
  digest_cmd->add_option("--since", digest.since, "the period that ends now (24h, 7d)")->capture_default_str();
  digest_cmd->add_flag("--json", digest.json, "as JSON");
  digest_cmd->add_flag("--mail", digest.mail, "mail it through sendmail to digest.mail_to (argv, no shell)");
  digest_cmd->add_option("--to", digest.to, "mail it to these instead (with --mail)");
  auto* reload_cmd = app.add_subcommand("reload", "re-read the configuration (the old one stays if the new one is bad)");
  client_options(reload_cmd);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (version) {
    std::cout << "relayban " << kVersion << "\n";
    return 0;
  }
  auto now = std::chrono::time_point_cast<Micros>(std::chrono::system_clock::now());
  if (*daemon_cmd) return RunDaemon(daemon);
  if (*check_cmd) {
    check.leave_state = true;  // the process ends on return
    return RunCheck(check, now, std::cout, std::cerr);
  }
  if (*test_cmd) return RunConfigTest(test_config, test_json, std::cout, std::cerr);
  if (*ban_cmd) return RunBan(client, ban, std::cout, std::cerr);
  if (*unban_cmd) {
    if (unban_target.empty() == !unban_all) {
      std::cerr << "relayban unban: give an ADDR[/LEN] or --all\n";
      return 64;
    }
    return RunUnban(client, unban_target, unban_all, std::cout, std::cerr);
  }
  if (*forgive_cmd) return RunForgive(client, forgive_account, std::cout, std::cerr);
  if (*list_cmd) return RunSimple(client, "list", "", std::cout, std::cerr);
  if (*status_cmd) return RunSimple(client, "status", status_jail, std::cout, std::cerr);
  if (*accounts_cmd) return RunSimple(client, "accounts", "", std::cout, std::cerr);
  if (*history_cmd) return RunHistoryImport(history, now, std::cout, std::cerr);
  if (*digest_cmd) return RunDigest(digest, now, std::cout, std::cerr);
  if (*explain_cmd) return RunExplain(client, explain_subject, std::cout, std::cerr);
  if (*metrics_cmd) return RunMetrics(client, std::cout, std::cerr);
  if (*reload_cmd) return RunSimple(client, "reload", "", std::cout, std::cerr);
  std::cout << app.help();
  return 0;
}
