// JSON shapes shared by the CLI's --json outputs (check now, the control protocol later).
#pragma once

#include <nlohmann/json.hpp>

#include "relayban/engine/engine.hpp"

namespace relayban {

nlohmann::json OrderJson(const Order& o);
nlohmann::json AccountJson(const AccountView& a);
nlohmann::json EventJson(const Engine& engine, const Event& e);

}  // namespace relayban
