#!/usr/bin/env bash
# install_package: the Debian package, built by cpack from the build tree into
# a temporary directory and inspected (dpkg-deb --info, --contents); then,
# as root on a machine where pole is not installed, installed for real with
# dpkg, poled started from it as the user pole the way systemd would start it,
# asked for a ping, stopped with SIGTERM, the package reinstalled over a
# changed configuration, removed, and purged, checking at each step what
# is there and what is not.
#
#   test_install_package.sh BUILD_DIR SOURCE_DIR
#
# Exit 0 passed, 1 failed, 77 skipped (ctest's SKIP_RETURN_CODE): not root,
# pole already installed or present on this machine, or systemd running as
# PID 1 (its postinst would start the real service). Whatever happens, the
# machine is left as it was found (a trap purges the package, stops poled,
# and removes the user and the directories this test made).
set -euo pipefail

build=${1:?usage: test_install_package.sh BUILD_DIR SOURCE_DIR}
source=${2:?usage: test_install_package.sh BUILD_DIR SOURCE_DIR}
build=$(cd "$build" && pwd)
source=$(cd "$source" && pwd)

tmp=$(mktemp -d /tmp/pole-install-package.XXXXXX)
failures=0
poled_pid=
installed_by_us=false
created_user=false
created_group=false
created_dirs=()

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
pass() {
    echo "ok: $*"
}
skip() {
    echo "SKIP: install_package: $*"
    exit 77
}
# Stop here: the trap cleans up
die() {
    echo "FAIL: $*" >&2
    exit 1
}

cleanup() {
    local status=$?
    set +e
    if [ -n "$poled_pid" ] && kill -0 "$poled_pid" 2>/dev/null; then
        kill -KILL "$poled_pid" 2>/dev/null
        wait "$poled_pid" 2>/dev/null
    fi
    if $installed_by_us; then
        local state
        state=$(dpkg-query -W -f='${db:Status-Status}' pole 2>/dev/null)
        if [ -n "$state" ] && [ "$state" != not-installed ]; then
            echo "cleanup: dpkg --purge pole (state $state)"
            dpkg --purge pole >/dev/null 2>&1
        fi
    fi
    local dir
    for dir in "${created_dirs[@]}"; do
        rm -rf "$dir"
    done
    if $created_user && getent passwd pole >/dev/null; then
        userdel pole 2>/dev/null
    fi
    if $created_group && getent group pole >/dev/null; then
        groupdel pole 2>/dev/null
    fi
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- build the package -------------------------------------------------------
# cpack runs the install of the build tree with DESTDIR and the prefix /usr
# (cmake/Package.cmake); -B keeps its staging tree and the .deb out of the
# build tree.
if ! cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/package" \
        >"$tmp/cpack.log" 2>&1; then
    cat "$tmp/cpack.log" >&2
    die "cpack failed"
fi
deb=$(find "$tmp/package" -maxdepth 1 -name 'pole_*.deb' | head -1)
[ -n "$deb" ] || die "cpack made no pole_*.deb: $(ls "$tmp/package")"
pass "cpack made $(basename "$deb") ($(stat -c %s "$deb") bytes)"

# --- dpkg-deb --info -----------------------------------------------------------
field() {
    dpkg-deb --field "$deb" "$1"
}
[ "$(field Package)" = pole ] && pass "Package: pole" || fail "Package is $(field Package)"
[ "$(field Version)" = "$(sed -n 's/^project(pole VERSION \([0-9.]*\).*/\1/p' "$source/CMakeLists.txt")" ] \
    && pass "Version: $(field Version)" || fail "Version is $(field Version)"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] \
    && pass "Architecture: $(field Architecture)" || fail "Architecture is $(field Architecture)"
depends=$(field Depends)
echo "   Depends: $depends"
# Every shared library that poled and polectl link (their NEEDED entries)
# comes from a package that Depends names (dpkg-shlibdeps found them), and
# adduser is there too
dpkg-deb -x "$deb" "$tmp/unpacked"
for program in usr/sbin/poled usr/bin/polectl; do
    ldd "$tmp/unpacked/$program" >"$tmp/ldd"
    for soname in $(objdump -p "$tmp/unpacked/$program" | awk '$1 == "NEEDED" {print $2}'); do
        library=$(awk -v soname="$soname" '$1 == soname && $3 ~ /^\// {print $3}' "$tmp/ldd")
        if [ -z "$library" ]; then
            fail "$program needs $soname, which is not on this machine"
            continue
        fi
        owner=$( (dpkg -S "$(readlink -f "$library")" 2>/dev/null \
                || dpkg -S "$library" 2>/dev/null || true) | head -1)
        owner=${owner%%:*}
        owner=${owner%%,*}
        if [ -z "$owner" ]; then
            fail "$program links $library, which no package owns"
        elif ! grep -qE "(^|, )$owner( |,|$)" <<<"$depends"; then
            fail "$program links $library from $owner, which Depends does not name"
        fi
    done
done
grep -qE '(^|, )adduser(,|$| )' <<<"$depends" || fail "Depends does not name adduser"
pass "Depends names the package of every library poled and polectl link"
dpkg-deb --ctrl-tarfile "$deb" | tar -tf - | sed 's|^\./||' | sort >"$tmp/control.list"
for member in control md5sums conffiles postinst prerm postrm; do
    grep -qx "$member" "$tmp/control.list" || fail "the control archive has no $member"
done
mkdir -p "$tmp/control"
dpkg-deb --control "$deb" "$tmp/control"
[ "$(cat "$tmp/control/conffiles")" = /etc/pole/poled.cfg ] \
    && pass "conffiles: /etc/pole/poled.cfg" \
    || fail "conffiles is '$(cat "$tmp/control/conffiles")'"
for script in postinst prerm postrm; do
    [ "$(stat -c %a "$tmp/control/$script")" = 755 ] || fail "$script is not 0755"
    sh -n "$tmp/control/$script" || fail "$script is not valid sh"
done
pass "maintainer scripts postinst, prerm, postrm (0755, valid sh)"

# --- dpkg-deb --contents ---------------------------------------------------------
dpkg-deb --contents "$deb" >"$tmp/contents"
expect_entry() {    # MODE PATH
    if grep -qE "^$1 root/root +[0-9]+ [0-9-]+ [0-9:]+ \./${2#/}\$" "$tmp/contents"; then
        pass "contents: $1 root/root $2"
    else
        fail "contents: no $1 root/root $2"
    fi
}
expect_entry -rwxr-xr-x /usr/sbin/poled
expect_entry -rwxr-xr-x /usr/bin/polectl
expect_entry -rw-r--r-- /etc/pole/poled.cfg
expect_entry -rw-r--r-- /lib/systemd/system/poled.service
expect_entry -rw-r--r-- /usr/lib/sysusers.d/pole.conf
expect_entry -rw-r--r-- /usr/lib/tmpfiles.d/pole.conf
expect_entry -rw-r--r-- /usr/share/man/man1/polectl.1.gz
expect_entry -rw-r--r-- /usr/share/man/man5/poled.cfg.5.gz
expect_entry -rw-r--r-- /usr/share/man/man8/poled.8.gz
expect_entry -rw-r--r-- /usr/share/doc/pole/README.md
expect_entry -rw-r--r-- /usr/share/doc/pole/PROTOCOL.md
if grep -q '/usr/local/' "$tmp/contents"; then
    fail "the package holds files under /usr/local"
fi
if file "$tmp/unpacked/usr/sbin/poled" | grep -q 'not stripped'; then
    fail "poled is not stripped in the package"
fi
# Read from the tree unpacked above: grep -q on a dpkg-deb | tar pipe
# stops reading early, and pipefail turns the writers' SIGPIPE into a failure
grep -qx 'ExecStart=/usr/sbin/poled -c /etc/pole/poled.cfg' \
    "$tmp/unpacked/lib/systemd/system/poled.service" \
    && pass "the packaged unit runs /usr/sbin/poled -c /etc/pole/poled.cfg" \
    || fail "the packaged unit's ExecStart is not /usr/sbin/poled -c /etc/pole/poled.cfg"

if [ "$failures" -ne 0 ]; then
    die "install_package: $failures check(s) of the .deb failed"
fi

# --- may we install it on this machine? ------------------------------------------
[ "$(id -u)" -eq 0 ] || skip "not root: the .deb was built and inspected, but installing it needs root"
# One run at a time on a machine (two build trees tested at once): the
# second waits for the first, then finds the machine as it was
exec 9>/run/lock/pole-install-package.lock
flock 9
state=$(dpkg-query -W -f='${db:Status-Status}' pole 2>/dev/null || true)
if [ -n "$state" ] && [ "$state" != not-installed ]; then
    skip "the package pole is already on this machine (state $state): not touching it"
fi
[ ! -d /run/systemd/system ] \
    || skip "systemd runs this machine: postinst would start the real poled.service; run this test in a container"
for path in /usr/sbin/poled /usr/bin/polectl /etc/pole /var/lib/pole /var/backups/pole /run/pole; do
    [ ! -e "$path" ] || skip "$path exists already (not installed by dpkg): not touching it"
done
getent passwd pole >/dev/null || created_user=true
getent group pole >/dev/null || created_group=true
created_dirs=(/var/lib/pole /var/backups/pole /run/pole)

# --- dpkg -i ---------------------------------------------------------------------------
installed_by_us=true
if ! dpkg -i "$deb" >"$tmp/dpkg-install.log" 2>&1; then
    cat "$tmp/dpkg-install.log" >&2
    die "dpkg -i failed (missing dependencies? the build's libraries should all be installed)"
fi
[ "$(dpkg-query -W -f='${db:Status-Status}' pole)" = installed ] \
    && pass "dpkg -i: pole is installed" || die "pole is not installed after dpkg -i"
dpkg -L pole >"$tmp/owned"

# What postinst made
passwd=$(getent passwd pole || true)
[ -n "$passwd" ] || die "postinst made no user pole"
IFS=: read -r _ _ pole_uid pole_gid _ pole_home pole_shell <<<"$passwd"
[ "$pole_home" = /var/lib/pole ] || fail "the home of pole is $pole_home"
case "$pole_shell" in
    */nologin|/bin/false) ;;
    *) fail "pole has the login shell $pole_shell" ;;
esac
[ "$pole_uid" -lt 1000 ] || fail "pole is not a system user (uid $pole_uid)"
[ "$(getent group pole | cut -d: -f3)" = "$pole_gid" ] || fail "pole's group is not pole"
pass "user $passwd"
expect_stat() {     # PATH OWNER:GROUP MODE
    local actual
    actual=$(stat -c '%U:%G %a' "$1" 2>/dev/null || echo missing)
    [ "$actual" = "$2 $3" ] && pass "$1 $2 $3" || fail "$1 is $actual, not $2 $3"
}
expect_stat /var/lib/pole pole:pole 750
expect_stat /var/backups/pole pole:pole 750
expect_stat /etc/pole/poled.cfg root:pole 640
[ -L /etc/systemd/system/multi-user.target.wants/poled.service ] \
    && pass "poled.service is enabled (for a boot with systemd)" \
    || fail "poled.service is not enabled"
MANPATH=/usr/share/man man -w poled >/dev/null 2>&1 && man -w polectl >/dev/null 2>&1 \
    && man -w 5 poled.cfg >/dev/null 2>&1 \
    && pass "man finds poled(8), polectl(1), poled.cfg(5)" \
    || fail "man does not find the installed pages"

# --- poled, as systemd would start it -----------------------------------------------------
# The endpoint polectl should use: the installed configuration's local
# endpoint if it has one, else its first daemon endpoint (ipc:// first).
endpoint=$(python3 "$source/tests/install/config_endpoint.py" /etc/pole/poled.cfg) \
    || die "cannot read an endpoint from /etc/pole/poled.cfg"
echo "   endpoint (from /etc/pole/poled.cfg): $endpoint"
# RuntimeDirectory=pole RuntimeDirectoryMode=0750, User=pole, Group=pole,
# UMask=0007, NoNewPrivileges=yes, CapabilityBoundingSet= (empty)
install -d -m 0750 -o pole -g pole /run/pole
setpriv --reuid=pole --regid=pole --init-groups --no-new-privs \
        --inh-caps=-all --bounding-set=-all \
        -- sh -c 'umask 0007 && exec /usr/sbin/poled -c /etc/pole/poled.cfg' \
        </dev/null >"$tmp/poled.log" 2>&1 &
poled_pid=$!
# As a member of the group pole (an administrator added with
# `adduser NAME pole`): nobody, with pole as a supplementary group
as_admin=(setpriv --reuid=nobody --regid=nogroup --groups="$pole_gid" --)
answered=false
for _ in $(seq 1 100); do
    if ! kill -0 "$poled_pid" 2>/dev/null; then
        cat "$tmp/poled.log" >&2
        die "poled exited before answering"
    fi
    if "${as_admin[@]}" /usr/bin/polectl -e "$endpoint" -t 0.3 -r 0 ping \
            >"$tmp/ping.out" 2>"$tmp/ping.err"; then
        answered=true
        break
    fi
    sleep 0.1
done
if ! $answered; then
    cat "$tmp/poled.log" "$tmp/ping.err" >&2
    die "poled did not answer a ping on $endpoint within 10 s"
fi
pass "polectl -e $endpoint ping, as a member of the group pole: $(cat "$tmp/ping.out")"
if "${as_admin[@]}" /usr/bin/polectl -e "$endpoint" -t 2 -r 0 list >"$tmp/list.out" 2>&1; then
    pass "polectl list (an empty database: $(wc -l <"$tmp/list.out") dossiers)"
else
    fail "polectl list failed: $(cat "$tmp/list.out")"
fi
case "$endpoint" in
    ipc:///run/pole/*)
        # Another user, not in the group pole, cannot reach the socket
        if setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
                /usr/bin/polectl -e "$endpoint" -t 0.3 -r 0 ping >/dev/null 2>&1; then
            fail "a user outside the group pole reaches $endpoint"
        else
            pass "a user outside the group pole cannot reach $endpoint"
        fi
        socket=${endpoint#ipc://}
        expect_stat "$socket" pole:pole 770
        ;;
esac
expect_stat /var/lib/pole/pole.db pole:pole 640
# systemctl stop: SIGTERM, and a clean exit
kill -TERM "$poled_pid"
set +e
wait "$poled_pid"
poled_status=$?
set -e
poled_pid=
if [ "$poled_status" -eq 0 ]; then
    pass "poled stopped on SIGTERM with status 0"
else
    cat "$tmp/poled.log" >&2
    fail "poled exited with status $poled_status on SIGTERM"
fi
rm -rf /run/pole                    # RuntimeDirectory= is removed at stop

# --- reinstall over a changed configuration: dpkg keeps the change --------------------
echo "# changed by install_package" >>/etc/pole/poled.cfg
if dpkg --force-confold -i "$deb" >"$tmp/dpkg-reinstall.log" 2>&1; then
    pass "dpkg -i again (an upgrade to the same version)"
else
    cat "$tmp/dpkg-reinstall.log" >&2
    fail "dpkg -i of the same package again failed"
fi
tail -1 /etc/pole/poled.cfg | grep -qx '# changed by install_package' \
    && pass "the administrator's change to /etc/pole/poled.cfg is kept" \
    || fail "the reinstall lost the change to /etc/pole/poled.cfg"
expect_stat /etc/pole/poled.cfg root:pole 640

# --- dpkg -r: the programs go, the configuration stays ------------------------------
if dpkg -r pole >"$tmp/dpkg-remove.log" 2>&1; then
    pass "dpkg -r pole"
else
    cat "$tmp/dpkg-remove.log" >&2
    fail "dpkg -r pole failed"
fi
[ "$(dpkg-query -W -f='${db:Status-Status}' pole)" = config-files ] \
    && pass "pole is in state config-files" || fail "pole is not in state config-files after dpkg -r"
for path in /usr/sbin/poled /usr/bin/polectl /lib/systemd/system/poled.service; do
    [ ! -e "$path" ] || fail "$path is still there after dpkg -r"
done
[ -f /etc/pole/poled.cfg ] && pass "dpkg -r keeps /etc/pole/poled.cfg" \
    || fail "dpkg -r removed /etc/pole/poled.cfg"

# --- dpkg --purge: nothing is left but what postrm says it keeps --------------------
if dpkg --purge pole >"$tmp/dpkg-purge.log" 2>&1; then
    pass "dpkg --purge pole"
else
    cat "$tmp/dpkg-purge.log" >&2
    fail "dpkg --purge pole failed"
fi
sed 's/^/   /' "$tmp/dpkg-purge.log"
state=$(dpkg-query -W -f='${db:Status-Status}' pole 2>/dev/null || true)
[ -z "$state" ] || [ "$state" = not-installed ] \
    && pass "pole is not installed" || fail "pole is in state $state after the purge"
left=()
while read -r path; do
    case "$path" in
        /|/.|/etc|/lib|/lib/systemd|/lib/systemd/system|/usr|/usr/*bin|/usr/lib|\
        /usr/lib/sysusers.d|/usr/lib/tmpfiles.d|/usr/share|/usr/share/doc|\
        /usr/share/man|/usr/share/man/man[158]) continue ;;
    esac
    [ ! -e "$path" ] || left+=("$path")
done <"$tmp/owned"
for path in /etc/pole /etc/systemd/system/poled.service \
            /etc/systemd/system/multi-user.target.wants/poled.service \
            /var/lib/systemd/deb-systemd-helper-enabled/poled.service.dsh-also \
            /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/poled.service \
            /var/lib/systemd/deb-systemd-helper-masked/poled.service; do
    [ ! -e "$path" ] && [ ! -L "$path" ] || left+=("$path")
done
if [ "${#left[@]}" -eq 0 ]; then
    pass "the purge left none of the package's files, configuration or unit links"
else
    fail "the purge left: ${left[*]}"
fi
# What packaging/postrm keeps on purpose: the data, and the user that owns it
[ -f /var/lib/pole/pole.db ] && pass "the purge keeps /var/lib/pole/pole.db (the event log)" \
    || fail "the purge removed /var/lib/pole/pole.db"
[ -d /var/backups/pole ] && pass "the purge keeps /var/backups/pole" \
    || fail "the purge removed /var/backups/pole"
getent passwd pole >/dev/null && pass "the purge keeps the user pole" \
    || fail "the purge removed the user pole"
grep -q 'kept on purpose' "$tmp/dpkg-purge.log" \
    && pass "postrm says what it kept" || fail "postrm did not say what it kept"

if [ "$failures" -ne 0 ]; then
    echo "install_package: $failures check(s) failed" >&2
    exit 1
fi
echo "install_package: every check passed"
