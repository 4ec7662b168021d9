#!/usr/bin/env bash
# install_systemd: the package under systemd itself. The .deb (cpack, as in
# install_package) is installed in a container booted with systemd-nspawn,
# whose root is this machine's / under a tmpfs overlay in a private mount
# namespace, so that nothing is written to the machine; systemd starts
# poled.service (Type=notify) from the package's unit, with its sandbox, and
# a check service inside tests it: READY and STATUS, the user, directories
# and socket modes, polectl on the local socket (and refused to a user
# outside the group pole), backup into /var/backups/pole, reload (good and
# bad), the watchdog fed and then killing a stopped poled, the restart, and
# a clean stop. systemd_boot.sh does the booting.
#
#   test_install_systemd.sh BUILD_DIR SOURCE_DIR
#
# Exit 0 passed, 1 failed, 77 skipped: not root, no systemd-nspawn (package
# systemd-container, scripts/install-deps.sh), no overlayfs, or pole present
# on this machine (the container would see it through the overlay).
set -euo pipefail

build=${1:?usage: test_install_systemd.sh BUILD_DIR SOURCE_DIR}
source=${2:?usage: test_install_systemd.sh BUILD_DIR SOURCE_DIR}
build=$(cd "$build" && pwd)
source=$(cd "$source" && pwd)

skip() {
    echo "SKIP: install_systemd: $*"
    exit 77
}
[ "$(id -u)" -eq 0 ] || skip "not root: booting a container needs root"
command -v systemd-nspawn >/dev/null 2>&1 \
    || skip "no systemd-nspawn (package systemd-container; scripts/install-deps.sh installs it)"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null \
    || skip "no overlay file system in this kernel"

tmp=$(mktemp -d /tmp/pole-install-systemd.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if ! cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/package" \
        >"$tmp/cpack.log" 2>&1; then
    cat "$tmp/cpack.log" >&2
    echo "FAIL: cpack failed" >&2
    exit 1
fi
deb=$(find "$tmp/package" -maxdepth 1 -name 'pole_*.deb' | head -1)
echo "ok: cpack made $(basename "$deb")"

# Not while install_package has the package on this machine: the overlay's
# lower layer is this machine's / (the same lock as install_package)
exec 9>/run/lock/pole-install-package.lock
flock 9
state=$(dpkg-query -W -f='${db:Status-Status}' pole 2>/dev/null || true)
if [ -n "$state" ] && [ "$state" != not-installed ]; then
    skip "the package pole is on this machine (state $state): the container would inherit it"
fi
for path in /usr/sbin/poled /etc/pole /var/lib/pole; do
    [ ! -e "$path" ] || skip "$path exists on this machine: the container would inherit it"
done

mkdir -p "$tmp/out"
started=$(date +%s)
unshare --mount --propagation private \
    bash "$source/tests/install/systemd_boot.sh" "$deb" "$tmp/out" 9>&- \
    || { echo "FAIL: systemd_boot.sh failed" >&2; cat "$tmp/out/"*.log >&2; exit 1; }
echo "   (the container ran for $(( $(date +%s) - started )) s)"

if [ ! -s "$tmp/out/check.log" ]; then
    echo "FAIL: the check service did not run; systemd-nspawn said:" >&2
    tail -40 "$tmp/out/nspawn.log" >&2
    exit 1
fi
cat "$tmp/out/check.log"
if ! grep -q '^pole-check: done$' "$tmp/out/check.log"; then
    echo "FAIL: the check service did not finish" >&2
    tail -40 "$tmp/out/nspawn.log" >&2
    exit 1
fi
failures=$(grep -c '^FAIL:' "$tmp/out/check.log" || true)
if [ "$failures" -ne 0 ]; then
    echo "install_systemd: $failures check(s) failed" >&2
    exit 1
fi
echo "install_systemd: every check passed ($(grep -c '^ok:' "$tmp/out/check.log") checks under systemd)"
