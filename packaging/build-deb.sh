#!/bin/sh
# Builds the binary package from a clean copy of the checkout with dpkg-buildpackage and
# leaves build/relayban_<version>_<arch>.deb. usage: packaging/build-deb.sh
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
export DEBIAN_FRONTEND=noninteractive
need="debhelper dpkg-dev fakeroot lintian"
missing=
for p in $need; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
"$root/packaging/install-deps.sh"
version=$(sed -n '1s/.*(\(.*\)).*/\1/p' "$root/packaging/debian/changelog")
work=$root/build/deb
rm -rf "$work"
mkdir -p "$work/relayban-$version"
# A clean tree: what git tracks (or the whole folder outside git), never build output.
if git -C "$root" rev-parse >/dev/null 2>&1; then
  git -C "$root" ls-files -z | (cd "$root" && xargs -0 tar cf -) | tar xf - -C "$work/relayban-$version"
else
  tar cf - -C "$root" --exclude=./build . | tar xf - -C "$work/relayban-$version"
fi
cp -r "$root/packaging/debian" "$work/relayban-$version/debian"
cp "$root/packaging/systemd/relayban.service" "$work/relayban-$version/debian/relayban.service"
(cd "$work/relayban-$version" && dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) || { tail -40 "$work/build.log"; exit 1; }
deb=$(ls "$work"/relayban_*.deb)
cp "$deb" "$root/build/"
echo "built $root/build/$(basename "$deb")"
lintian --fail-on error "$deb" || { echo "lintian reported errors" >&2; exit 1; }
