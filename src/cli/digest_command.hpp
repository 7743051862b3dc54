// `relayban digest`: summarises the decision log over a period, for a person, a script
// (--json) or a daily mail (--mail, through the local MTA's sendmail: argv, no shell).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "relayban/core/duration.hpp"

namespace relayban {

struct DigestOptions {
  std::string config = "/etc/relayban/relayban.yaml";
  std::string log;           // the decision log; default: the configuration's decision_log
  std::string since = "24h";
  bool json = false;
  bool mail = false;         // send it to digest.mail_to instead of printing it
  std::vector<std::string> to;  // overrides digest.mail_to
};

int RunDigest(const DigestOptions& o, Time now, std::ostream& out, std::ostream& err);

}  // namespace relayban
