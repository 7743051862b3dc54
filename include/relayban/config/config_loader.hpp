// Configuration loading: YAML files -> a validated Config. The only yaml-cpp user; nothing
// outside config/ sees a YAML node. Every problem is reported with file:line:column, and all
// problems of a load are reported, not just the first.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "relayban/spec/spec.hpp"

namespace relayban {

// Loads `path` and the files its `include` globs name (relative to its folder). Returns the
// Config if there was no error; every error found is appended to `errors` either way.
std::optional<Config> LoadConfig(const std::string& path, std::vector<Error>& errors);

// The same from text (tests, `check` of a config piped in); `name` is used in messages and
// includes resolve relative to `base_dir`.
std::optional<Config> LoadConfigText(const std::string& text, const std::string& name, const std::string& base_dir,
                                     std::vector<Error>& errors);

// Only the control socket's path from the main file `path` (its includes are not read): what
// a client command needs to reach the daemon. A tenth of the work of a whole load, and a
// broken jail file, which the daemon refuses to reload while it keeps its last good
// configuration, does not keep the admin from asking it.
std::optional<std::string> LoadControlSocket(const std::string& path, std::vector<Error>& errors);

// Parses a stamp format name: auto, syslog, rfc3339, exim, tai64n, none.
std::optional<StampFormat> ParseStampFormat(const std::string& name);

}  // namespace relayban
