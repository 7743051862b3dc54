#!/bin/sh
# The whole test suite in one command: installs what is missing (apt-get), builds, runs
# every test with ctest. Run as root (or with sudo available) on Debian 12.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/packaging/install-deps.sh"
"$root/packaging/build.sh"
cd "${BUILD_DIR:-$root/build}"
ctest --output-on-failure --parallel "$(nproc)"
