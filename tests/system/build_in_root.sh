#!/usr/bin/env bash
# Builds the relayban package from this checkout inside a fresh Debian root of suite $1
# (mmdebstrap with the Build-Depends of packaging/debian/control), with that suite's
# compiler and libraries. Leaves the .deb in $2 (a folder) and prints its path.
# usage: tests/system/build_in_root.sh SUITE OUTDIR   (as root)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
suite=$1; out=$2
mkdir -p "$out"
# Build-Depends, without version constraints, plus what dpkg-buildpackage needs.
deps=$(sed -n '/^Build-Depends:/,/^[A-Za-z-]*:/p' "$root/packaging/debian/control" | sed '$d' \
  | sed 's/^Build-Depends://' | tr ',' '\n' | sed 's/(.*)//; s/ //g; s/^debhelper-compat$/debhelper/' | grep -v '^$' | paste -sd,)
tar=$(root_tarball "$suite" "build-essential,fakeroot,dpkg-dev,$deps")
unpack_root "$tar"
trap 'rm -rf "$ct_dir"' EXIT
version=$(sed -n '1s/.*(\(.*\)).*/\1/p' "$root/packaging/debian/changelog")
src=$ct_dir/build/relayban-$version
mkdir -p "$src"
git -C "$root" ls-files -z | (cd "$root" && xargs -0 tar cf -) | tar xf - -C "$src"
cp -r "$root/packaging/debian" "$src/debian"
cp "$root/packaging/systemd/relayban.service" "$src/debian/relayban.service"
if ! in_root sh -c "cd /build/relayban-$version && dpkg-buildpackage -us -uc -b" > "$out/build-$suite.log" 2>&1; then
  tail -n 40 "$out/build-$suite.log" >&2
  exit 1
fi
deb=$(ls "$ct_dir"/build/relayban_*.deb)
cp "$deb" "$out/"
echo "$out/$(basename "$deb")"
