#!/usr/bin/env bash
# install_units: what `cmake --install` lays out, as the Debian package will
# (prefix /usr), into a temporary DESTDIR; then the unit checked by
# `systemd-analyze verify` against that tree, and each manual page rendered
# by man(1) without a warning.
#
#   test_install_units.sh BUILD_DIR SOURCE_DIR
#
# Needs the build done (poled, polectl, the compressed manual pages), cmake,
# and systemd-analyze and man (scripts/install-deps.sh installs systemd and
# man-db). Root is not needed; nothing outside the temporary tree is touched.
set -euo pipefail

build=${1:?usage: test_install_units.sh BUILD_DIR SOURCE_DIR}
source=${2:?usage: test_install_units.sh BUILD_DIR SOURCE_DIR}
build=$(cd "$build" && pwd)
source=$(cd "$source" && pwd)

tmp=$(mktemp -d /tmp/pole-install-units.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
pass() {
    echo "ok: $*"
}

# --- cmake --install ---------------------------------------------------------
if ! DESTDIR=$root cmake --install "$build" --prefix /usr >"$tmp/install.log" 2>&1
then
    cat "$tmp/install.log" >&2
    echo "FAIL: cmake --install failed" >&2
    exit 1
fi
pass "cmake --install --prefix /usr into DESTDIR $root"

# Every file, where the package puts it (mode: what ls -l would show)
expect_file() {     # PATH MODE
    local path=$1 mode=$2
    if [ ! -f "$root$path" ]; then
        fail "$path is not installed"
        return
    fi
    local actual
    actual=$(stat -c %a "$root$path")
    if [ "$actual" != "$mode" ]; then
        fail "$path has mode $actual, not $mode"
        return
    fi
    pass "$path ($mode)"
}
expect_file /usr/sbin/poled 755
expect_file /usr/bin/polectl 755
expect_file /etc/pole/poled.cfg 644
expect_file /lib/systemd/system/poled.service 644
expect_file /usr/lib/sysusers.d/pole.conf 644
expect_file /usr/lib/tmpfiles.d/pole.conf 644
expect_file /usr/share/man/man1/polectl.1.gz 644
expect_file /usr/share/man/man5/poled.cfg.5.gz 644
expect_file /usr/share/man/man8/poled.8.gz 644
expect_file /usr/share/doc/pole/README.md 644
expect_file /usr/share/doc/pole/README.systemd.md 644
expect_file /usr/share/doc/pole/PROTOCOL.md 644
for doc in "$source"/docs/*.md; do
    expect_file "/usr/share/doc/pole/$(basename "$doc")" 644
done

# The installed copies are the sources (the unit apart: its paths are
# written for the prefix)
same() {            # INSTALLED SOURCE
    if cmp -s "$root$1" "$2"; then
        pass "$1 is $2"
    else
        fail "$1 differs from $2"
    fi
}
same /etc/pole/poled.cfg "$source/config/poled.cfg"
same /usr/lib/sysusers.d/pole.conf "$source/systemd/pole.sysusers"
same /usr/lib/tmpfiles.d/pole.conf "$source/systemd/pole.tmpfiles"
for page in polectl.1 poled.cfg.5 poled.8; do
    section=${page##*.}
    if gzip -dc "$root/usr/share/man/man$section/$page.gz" | cmp -s - "$source/man/$page"
    then
        pass "man$section/$page.gz is man/$page"
    else
        fail "man$section/$page.gz is not man/$page compressed"
    fi
done
if diff -u "$source/systemd/poled.service" "$root/lib/systemd/system/poled.service" \
        >"$tmp/unit.diff"; then
    pass "the unit for the prefix /usr is systemd/poled.service as written"
else
    cat "$tmp/unit.diff" >&2
    fail "the unit installed for the prefix /usr is not systemd/poled.service"
fi

# The directives the service depends on (systemd/README.md says why each)
for line in Type=notify NotifyAccess=main \
        'ExecStart=/usr/sbin/poled -c /etc/pole/poled.cfg' \
        'ExecReload=/bin/kill -HUP $MAINPID' WatchdogSec=30s Restart=on-failure \
        User=pole Group=pole StateDirectory=pole ConfigurationDirectory=pole \
        RuntimeDirectory=pole RuntimeDirectoryMode=0750 UMask=0007 \
        ReadWritePaths=/var/backups/pole ProtectSystem=strict \
        'CapabilityBoundingSet=' 'SystemCallFilter=@system-service' \
        'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK'; do
    if ! grep -qxF "$line" "$root/lib/systemd/system/poled.service"; then
        fail "the unit has no line $line"
    fi
done
pass "the unit has its essential directives"

# Nothing else: a stray install() (a test program, a header) shows here
(cd "$root" && find . \( -type f -o -type l \) | sed 's|^\.||' | sort) >"$tmp/files"
unexpected=$(grep -v -E '^(/usr/sbin/poled|/usr/bin/polectl|/etc/pole/poled\.cfg|/lib/systemd/system/poled\.service|/usr/lib/(sysusers|tmpfiles)\.d/pole\.conf|/usr/share/man/man[158]/[a-z0-9.]+\.gz|/usr/share/doc/pole/[A-Za-z.]+\.md)$' "$tmp/files" || true)
if [ -n "$unexpected" ]; then
    fail "files installed that the package does not expect: $unexpected"
else
    pass "no other file installed ($(wc -l <"$tmp/files") files)"
fi

# The installed programs run
if "$root/usr/sbin/poled" -V | grep -q '^poled '; then
    pass "poled -V: $("$root/usr/sbin/poled" -V)"
else
    fail "the installed poled does not run"
fi
if "$root/usr/bin/polectl" -V | grep -q '^polectl '; then
    pass "polectl -V: $("$root/usr/bin/polectl" -V)"
else
    fail "the installed polectl does not run"
fi

# --- the unit: systemd-analyze verify -----------------------------------------
# With --root, systemd-analyze looks for everything in the tree: the unit's
# ExecStart= binary (/usr/sbin/poled, installed above), its ExecReload=
# binary (/bin/kill, the system's, copied in), the units it refers to
# (multi-user.target, network-online.target, sysinit.target...: the host's,
# copied in), and its Documentation= man pages (MANPATH points man at the
# tree's). It fails on a misspelt directive, a bad value, a missing
# binary or page.
if ! command -v systemd-analyze >/dev/null 2>&1; then
    fail "systemd-analyze is missing (scripts/install-deps.sh installs systemd)"
else
    mkdir -p "$root/bin"
    cp /bin/kill "$root/bin/kill"
    cp -an /lib/systemd/system/. "$root/lib/systemd/system/"
    if MANPATH=$root/usr/share/man systemd-analyze verify --root="$root" \
            /lib/systemd/system/poled.service >"$tmp/verify.log" 2>&1 \
       && [ ! -s "$tmp/verify.log" ]; then
        pass "systemd-analyze verify --root: the unit is valid"
    else
        cat "$tmp/verify.log" >&2
        fail "systemd-analyze verify rejects the unit"
    fi
    # The same unit without its binary must fail: the check is real
    mv "$root/usr/sbin/poled" "$tmp/poled.moved"
    if MANPATH=$root/usr/share/man systemd-analyze verify --root="$root" \
            /lib/systemd/system/poled.service >/dev/null 2>&1; then
        fail "systemd-analyze verify passes even without /usr/sbin/poled"
    else
        pass "systemd-analyze verify fails without /usr/sbin/poled (the check is real)"
    fi
    mv "$tmp/poled.moved" "$root/usr/sbin/poled"
    # For information: systemd's own exposure score of the sandbox
    systemd-analyze security --offline=yes --root="$root" poled.service 2>/dev/null \
        | grep 'Overall exposure' || true
fi

# The sysusers.d entry parses and makes the user and group pole with home
# /var/lib/pole, in a scratch root of its own (not the machine's /etc)
if command -v systemd-sysusers >/dev/null 2>&1; then
    users=$tmp/users
    mkdir -p "$users/etc" "$users/usr/lib/sysusers.d"
    cp "$root/usr/lib/sysusers.d/pole.conf" "$users/usr/lib/sysusers.d/"
    : >"$users/etc/passwd"
    : >"$users/etc/group"
    if systemd-sysusers --root="$users" pole.conf >"$tmp/sysusers.log" 2>&1 \
       && grep -q '^pole:x:[0-9]*:[0-9]*:pole workflow daemon:/var/lib/pole:' "$users/etc/passwd" \
       && grep -q '^pole:x:' "$users/etc/group"; then
        pass "sysusers.d/pole.conf makes $(grep '^pole:' "$users/etc/passwd")"
    else
        cat "$tmp/sysusers.log" "$users/etc/passwd" >&2
        fail "systemd-sysusers does not make the user pole from pole.conf"
    fi
fi

# --- manual pages ---------------------------------------------------------
# man -l reads the installed, compressed page; --warnings turns on groff's
# warnings, which go to standard error: there must be none.
if ! command -v man >/dev/null 2>&1; then
    fail "man is missing (scripts/install-deps.sh installs man-db)"
else
    for page in usr/share/man/man1/polectl.1.gz usr/share/man/man5/poled.cfg.5.gz \
                usr/share/man/man8/poled.8.gz; do
        if MANWIDTH=80 man --warnings -l "$root/$page" >"$tmp/page.txt" 2>"$tmp/page.err" \
           && [ ! -s "$tmp/page.err" ] && [ -s "$tmp/page.txt" ]; then
            pass "$page renders without warnings ($(wc -l <"$tmp/page.txt") lines)"
        else
            cat "$tmp/page.err" >&2
            fail "$page does not render cleanly"
        fi
        wide=$(awk 'length($0) > 80' "$tmp/page.txt" | head -3)
        if [ -n "$wide" ]; then
            fail "$page has lines wider than 80 columns: $wide"
        fi
        # mandb must find its NAME line, or whatis and apropos will not
        if lexgrog "$root/$page" >/dev/null 2>&1; then
            pass "$page: $(lexgrog "$root/$page" | sed 's/^[^:]*: *//')"
        else
            fail "$page: lexgrog cannot parse its NAME section"
        fi
    done
fi

if [ "$failures" -ne 0 ]; then
    echo "install_units: $failures check(s) failed" >&2
    exit 1
fi
echo "install_units: every check passed"
