#!/bin/bash
# previous.sh COMMIT — prints the path of the .deb of the release at COMMIT, built once with
# dpkg-buildpackage from a clean export of that commit and cached by commit. The upgrade test
# installs it first: what an operator has before this version.
set -euo pipefail
cd "$(dirname "$0")/../.."; ROOT=$PWD
COMMIT=$1
CACHE=${QW_CACHE:-$HOME/.cache/quantum-watchdog}/previous-$COMMIT
if ls "$CACHE"/quantum-watchdog_*.deb >/dev/null 2>&1; then ls "$CACHE"/quantum-watchdog_*.deb | head -1; exit 0; fi
git cat-file -e "$COMMIT^{commit}" 2>/dev/null || {
    echo "previous.sh: commit $COMMIT is not in this clone (a shallow clone?): git fetch --unshallow" >&2; exit 1; }
SRC=$(mktemp -d); trap 'rm -rf "$SRC"' EXIT
mkdir -p "$SRC/quantum-watchdog"
git archive "$COMMIT" | tar -x -C "$SRC/quantum-watchdog"
# The same target directory as this build: only the crate itself is compiled again.
echo "previous.sh: building the release at ${COMMIT:0:12} (once)" >&2
(cd "$SRC/quantum-watchdog" && CARGO_TARGET_DIR=$ROOT/target dpkg-buildpackage -b -us -uc) >"$SRC/build.log" 2>&1 ||
    { tail -30 "$SRC/build.log" >&2; exit 1; }
mkdir -p "$CACHE"
mv "$SRC"/quantum-watchdog_*.deb "$CACHE"/
ls "$CACHE"/quantum-watchdog_*.deb | head -1
