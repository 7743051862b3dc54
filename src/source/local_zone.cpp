#include "local_zone.hpp"

#include <ctime>
#include <memory>

namespace relayban {

LocalZone HostLocalZone() {
  struct Cache {
    int64_t key = -1;
    int64_t offset = 0;
  };
  auto cache = std::make_shared<Cache>();
  return [cache](const CivilTime& c) -> int64_t {
    int64_t utc = CivilToUnix(c);
    int64_t key = utc / 3600;
    if (key != cache->key) {
      struct tm tm {};
      tm.tm_year = c.year - 1900;
      tm.tm_mon = c.month - 1;
      tm.tm_mday = c.day;
      tm.tm_hour = c.hour;
      tm.tm_isdst = -1;
      time_t t = mktime(&tm);
      cache->key = key;
      cache->offset = t == static_cast<time_t>(-1) ? 0 : static_cast<int64_t>(t) - CivilToUnix({c.year, c.month, c.day, c.hour, 0, 0});
    }
    return utc + cache->offset;
  };
}

}  // namespace relayban
