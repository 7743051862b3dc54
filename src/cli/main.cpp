// relayban: command line entry point. Wiring only: parses arguments and calls a command.
#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>

#include "check_command.hpp"
#include "relayban/version.hpp"

int main(int argc, char** argv) {
  using namespace relayban;
  CLI::App app{"relayban - bans mail clients that abuse authentication, per IP and per account"};
  app.require_subcommand(0, 1);
  bool version = false;
  app.add_flag("-V,--version", version, "print the version and exit");

  CheckOptions check;
  auto* check_cmd = app.add_subcommand("check", "replay logs through the jails offline (no firewall)");
  check_cmd->add_option("-c,--config", check.config, "configuration file")->capture_default_str();
  check_cmd->add_option("-j,--jail", check.jails, "only this jail (repeatable; default: every jail)");
  check_cmd->add_flag("--json", check.json, "one JSON document (JSON Lines with --events)");
  check_cmd->add_flag("--events", check.events, "list every event each matched line yielded");
  check_cmd->add_option("logs", check.logs, "log files, '-' for standard input")->required();

  std::string test_config = "/etc/relayban/relayban.yaml";
  bool test_json = false;
  auto* test_cmd = app.add_subcommand("config-test", "validate the configuration and print every error");
  test_cmd->add_option("-c,--config", test_config, "configuration file")->capture_default_str();
  test_cmd->add_flag("--json", test_json, "errors as JSON");

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
  if (*check_cmd) return RunCheck(check, now, std::cout, std::cerr);
  if (*test_cmd) return RunConfigTest(test_config, test_json, std::cout, std::cerr);
  std::cout << app.help();
  return 0;
}
