#!/bin/bash
# Builds the Debian package from the working tree (uncommitted changes
# included) and checks it with lintian.  Everything is written under
# $BUILD_DIR/deb (default build/deb): the copied sources in src/, the .deb,
# .changes and .buildinfo next to it.  Fails on any lintian error.
#   tools/build-deb.sh
# As root, installs the packaging tools and the build dependencies first.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
B=${BUILD_DIR:-$top/build}
mkdir -p "$B"
OUT=$(cd "$B" && pwd)/deb
SRC=$OUT/src
export DEBIAN_FRONTEND=noninteractive

missing() { # PACKAGE...: those not installed
        local p
        for p in "$@"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
        done
}
install_pkgs() {
        [ $# -gt 0 ] || return 0
        [ "$(id -u)" = 0 ] || { echo "build-deb: need root to install: $*" >&2; exit 1; }
        apt-get install -y --no-install-recommends "$@"
}

# shellcheck disable=SC2046
install_pkgs $(missing dpkg-dev debhelper lintian fakeroot)

# The sources: tracked files and untracked ones git does not ignore (no
# build trees), as they are now in the working tree.
rm -rf "$OUT"
mkdir -p "$SRC"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -z --cached --others --exclude-standard |
                while IFS= read -r -d '' f; do
                        if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi   # not deleted
                done |
                tar --null -T - -cf - | tar -C "$SRC" -xf -
else
        tar --exclude='./build*' --exclude='./obj-*' -cf - . | tar -C "$SRC" -xf -
fi
cd "$SRC"

# The build dependencies dpkg-checkbuilddeps finds missing (it prints
# "Unmet build dependencies: a b (>= 1) c | d"): the first of each choice.
if ! unmet=$(dpkg-checkbuilddeps 2>&1); then
        deps=$(echo "$unmet" | sed -n 's/.*Unmet build dependencies: //p' |
                sed -e 's/([^)]*)//g' -e 's/\[[^]]*\]//g' -e 's/<[^>]*>//g' -e 's/ *| *[^ ]*//g' -e 's/:[a-z]*//g')
        [ -n "$deps" ] || { echo "$unmet" >&2; exit 1; }
        # shellcheck disable=SC2086
        install_pkgs $deps
fi

# lintian and the build's temporary files stay in the build folder too
export TMPDIR=$OUT/tmp
mkdir -p "$TMPDIR"
dpkg-buildpackage -us -uc -b --jobs-try=auto

cd "$OUT"
changes=$(ls gpuswitch_*.changes)
lintian --display-info --fail-on none "$changes" | tee lintian.log
rm -rf "$TMPDIR"
if grep -q '^E: ' lintian.log; then
        echo "build-deb: lintian errors:" >&2
        grep '^E: ' lintian.log >&2
        exit 1
fi
echo "build-deb: $(ls "$OUT"/*.deb)"
