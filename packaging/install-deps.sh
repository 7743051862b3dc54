#!/bin/sh
# Installs every build, test and benchmark dependency of relayban from Debian's archive.
# Usage: packaging/install-deps.sh [--bench]   (run as root; idempotent)
set -eu
export DEBIAN_FRONTEND=noninteractive
pkgs="build-essential cmake ninja-build pkg-config git
      libre2-dev libyaml-cpp-dev catch2 nlohmann-json3-dev libcli11-dev
      libnftnl-dev libmnl-dev libsqlite3-dev libsystemd-dev libhiredis-dev libssl-dev
      clang libclang-rt-14-dev
      nftables iproute2 iputils-ping util-linux procps python3 systemd-journal-remote
      prometheus redis-server"
if [ "${1:-}" = "--bench" ]; then
  pkgs="$pkgs fail2ban hyperfine"
fi
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
missing=
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  # Packages that ship a service (prometheus: promtool and a real scrape in the tests) must
  # not start it on this machine: a policy-rc.d for the install, and the service disabled.
  guard=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    guard=1
  fi
  # --no-install-recommends keeps fail2ban from pulling in a mail server
  $SUDO apt-get install -y -qq --no-install-recommends $missing
  [ -n "$guard" ] && $SUDO rm -f /usr/sbin/policy-rc.d
  case " $missing " in
    *" prometheus "*) $SUDO systemctl disable prometheus.service >/dev/null 2>&1 || true ;;
  esac
  case " $missing " in
    *" redis-server "*) $SUDO systemctl disable redis-server.service >/dev/null 2>&1 || true ;;
  esac
fi
