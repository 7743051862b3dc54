#!/bin/sh
# The whole test suite in one command: installs what is missing (apt-get), builds, runs
# every test with ctest. Run as root (or with sudo available) on Debian 12.
#   packaging/test.sh          ctest: unit, integration (real nftables, SQLite, inotify,
#                              journald in private namespaces), fuzz smoke, golden corpus
#   packaging/test.sh --all    and then the Debian package (packaging/deb-test.sh) and the
#                              system tests (tests/system/run.sh: Debian's own Postfix,
#                              Dovecot, Exim and OpenSMTPD with the package under systemd,
#                              on Debian 12 and 13). What CI runs; 18 minutes on 2 cores.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/packaging/install-deps.sh"
"$root/packaging/build.sh"
(cd "${BUILD_DIR:-$root/build}" && ctest --output-on-failure --parallel "$(nproc)")
if [ "${1:-}" = "--all" ]; then
  "$root/packaging/deb-test.sh"
  "$root/tests/system/run.sh"
fi
