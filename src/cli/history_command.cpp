#include "history_command.hpp"

#include <filesystem>
#include <iostream>

#include "check_command.hpp"
#include "log_reader.hpp"
#include "relayban/config/config_loader.hpp"
#include "relayban/control/control_client.hpp"
#include "relayban/engine/engine.hpp"
#include "relayban/state/state_store.hpp"
#include "source/local_zone.hpp"

namespace relayban {

int RunHistoryImport(const HistoryImportOptions& o, Time now, std::ostream& out, std::ostream& err) {
  std::vector<Error> errors;
  auto config = LoadConfig(o.config, errors);
  if (!config) {
    for (const auto& e : errors) err << e.ToString() << "\n";
    return kExitConfig;
  }
  // The running daemon keeps the history in memory and would write over what is imported.
  auto probe = ControlExchange(config->control_socket, R"({"cmd":"status"})", [](std::string_view) {}, 2000);
  if (probe || probe.error().kind != ErrorKind::kUnavailable) {
    err << "relayban history-import: the daemon is running (or its socket answers): stop it first "
           "(systemctl stop relayban), import, then start it\n";
    return 75;
  }
  EngineOptions eo;
  eo.zone = HostLocalZone();
  auto engine = Engine::Create(*config, eo);
  if (!engine) {
    err << "relayban: " << engine.error().ToString() << "\n";
    return kExitConfig;
  }
  if (!(*engine)->uses_account_history()) {
    out << "no rule uses the account history (relative, new_network): nothing to import\n";
    return 0;
  }
  auto source = (*engine)->AddSource({}, StampFormat::kAuto);
  if (!source) {
    err << "relayban: " << source.error().ToString() << "\n";
    return kExitConfig;
  }
  EngineOutput scratch;
  uint64_t lines = 0;
  for (const auto& log : o.logs) {
    auto r = ReadLogLines(log, config->max_line, [&](std::string_view line, uint64_t) {
      ++lines;
      (*engine)->OnLine(*source, line, now, scratch);
      scratch.clear();  // only the history is wanted: no decision leaves this command
    });
    if (!r) {
      err << "relayban: " << r.error().ToString() << "\n";
      return kExitInput;
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(config->state_dir, ec);
  auto store = OpenSqliteStore(config->state_dir + "/state.db");
  if (!store) {
    err << "relayban: the state database: " << store.error().message << "\n";
    return 74;
  }
  // What the daemon kept already is merged in, day by day, not replaced.
  size_t kept = 0;
  if (auto rows = (*store)->LoadAccountHistory()) {
    for (const auto& [account, bytes] : *rows) kept += (*engine)->MergeAccountHistory(account, bytes);
  } else {
    err << "relayban: reading the account history: " << rows.error().message << "\n";
    return 74;
  }
  auto rows = (*engine)->TakeAccountHistory(SIZE_MAX, true);
  if (auto r = (*store)->SaveAccountHistory(rows, now, now - std::chrono::hours(24 * 35)); !r) {
    err << "relayban: saving the account history: " << r.error().message << "\n";
    return 74;
  }
  out << "read " << lines << " lines; the history of " << rows.size() << " accounts is in " << config->state_dir
      << "/state.db (" << kept << " merged with what the daemon had kept)\n";
  return 0;
}

}  // namespace relayban
