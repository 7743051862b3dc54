// The host's local time zone as a LocalZone for the pure stamp parser (mktime, cached per
// civil hour so a busy replay does not call into the C library for every line).
#pragma once

#include "relayban/filter/timestamp.hpp"

namespace relayban {
LocalZone HostLocalZone();
}
