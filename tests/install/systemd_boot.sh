#!/usr/bin/env bash
# Part of install_systemd (test_install_systemd.sh), which runs it in a
# private mount namespace (unshare -m): boots systemd in a container whose
# root is this machine's / under a tmpfs overlay (nothing is written to the
# machine), with the pole package installed in it, and lets systemd itself
# start poled.service. pole-check.service (below) then checks the service
# from inside, writing ok:/FAIL: lines to OUT/check.log, and powers the
# container off.
#
#   systemd_boot.sh DEB OUT
set -euo pipefail

deb=$1
out=$2
base=$(mktemp -d /tmp/pole-systemd-boot.XXXXXX)
root=$base/root
mkdir -p "$base/layer" "$root" "$out"
mount -t tmpfs -o size=1g,mode=0755 tmpfs "$base/layer"
mkdir -p "$base/layer/upper" "$base/layer/work"
mount -t overlay overlay \
    -o "lowerdir=/,upperdir=$base/layer/upper,workdir=$base/layer/work" "$root"
cleanup() {
    umount "$root" 2>/dev/null || umount -l "$root" 2>/dev/null || true
    umount "$base/layer" 2>/dev/null || umount -l "$base/layer" 2>/dev/null || true
    rm -rf "$base"
}
trap cleanup EXIT

# A machine of its own: its id, no unit of this machine's own enabled but
# what the test target asks for
systemd-id128 new >"$root/etc/machine-id"

# The package, installed as an administrator would (no systemd runs in the
# chroot: postinst makes the user and directories and enables the unit)
cp "$deb" "$root/tmp/pole.deb"
chroot "$root" dpkg -i /tmp/pole.deb >"$out/dpkg.log" 2>&1

# The administrators' socket, if the shipped configuration has none yet
python3 - "$root/etc/pole/poled.cfg" <<'EOF'
import re, sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
wanted = 'local_endpoint = "ipc:///run/pole/poled.sock";'
if re.search(r'^\s*local_endpoint\s*=\s*"ipc:///run/pole/poled\.sock"', text, re.M):
    sys.exit(0)
if re.search(r'^\s*local_endpoint\s*=', text, re.M):
    text = re.sub(r'^(\s*)local_endpoint\s*=.*$', r'\g<1>' + wanted, text,
                  count=1, flags=re.M)
else:
    text = re.sub(r'^(daemon\s*=\s*\{)', r'\1\n    ' + wanted, text, count=1,
                  flags=re.M)
open(path, "w", encoding="utf-8").write(text)
EOF

# For the test only: a short watchdog, so that feeding it and its kill are
# seen in seconds, and a short wait between SIGABRT and SIGKILL
mkdir -p "$root/etc/systemd/system/poled.service.d"
cat >"$root/etc/systemd/system/poled.service.d/test.conf" <<'EOF'
[Service]
WatchdogSec=3s
TimeoutAbortSec=2s
RestartSec=1s
EOF
cat >"$root/etc/systemd/system/pole-test.target" <<'EOF'
[Unit]
Description=pole: the service test
Requires=basic.target
After=basic.target
Wants=poled.service pole-check.service
AllowIsolate=yes
EOF
cat >"$root/etc/systemd/system/pole-check.service" <<'EOF'
[Unit]
Description=pole: check poled.service
After=poled.service
[Service]
Type=oneshot
ExecStart=/bin/bash /usr/local/sbin/pole-check
ExecStopPost=/bin/systemctl --no-block poweroff
EOF
mkdir -p "$root/usr/local/sbin"
cat >"$root/usr/local/sbin/pole-check" <<'EOF'
#!/bin/bash
# Runs inside the container, as root, once poled.service is started
exec >/out/check.log 2>&1
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; }
check() {       # DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
prop() { systemctl show poled -P "$1"; }
ep=ipc:///run/pole/poled.sock
pctl() { polectl -e "$ep" -t 3 -r 0 "$@"; }

check "poled.service is active (Type=notify: READY=1 was sent)" \
    test "$(prop ActiveState)/$(prop SubState)" = active/running
status=$(prop StatusText)
check "poled sent a STATUS= line: $status" test -n "$status"
pid=$(prop MainPID)
check "MainPID $pid runs /usr/sbin/poled as pole" \
    test "$(ps -o user=,comm= -p "$pid" | tr -s ' ')" = "pole poled"
check "poled's sandbox: seccomp, no new privileges, no capability" \
    grep -qzE 'NoNewPrivs:\s+1.*Seccomp:\s+2' "/proc/$pid/status"
check "poled's bounding set is empty" \
    grep -qE '^CapBnd:\s+0+$' "/proc/$pid/status"
check "/run/pole is 750 pole:pole" test "$(stat -c '%a %U:%G' /run/pole)" = "750 pole:pole"
check "the socket is 770 pole:pole" \
    test "$(stat -c '%a %U:%G' /run/pole/poled.sock)" = "770 pole:pole"
check "/var/lib/pole/pole.db belongs to pole" \
    test "$(stat -c %U /var/lib/pole/pole.db)" = pole

check "polectl ping on $ep (root)" pctl ping
check "polectl ping as a member of the group pole" \
    setpriv --reuid=nobody --regid=nogroup --groups="$(getent group pole | cut -d: -f3)" -- \
    polectl -e "$ep" -t 3 -r 0 ping
check "a user outside the group pole cannot connect" \
    bash -c '! setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
             polectl -e '"$ep"' -t 0.5 -r 0 ping'
id=$(pctl open --pays dinan --holder "Conseil de développement" --holder-type pays)
check "open a dossier (id $id)" test -n "$id"
check "send request_study" pctl send "$id" request_study amount=20000
check "polectl status" pctl status
check "polectl verify: the event log is intact" pctl verify
check "polectl backup into /var/backups/pole (ReadWritePaths=)" \
    pctl backup /var/backups/pole/test.db
check "the backup is there, owned by pole" \
    test "$(stat -c %U /var/backups/pole/test.db 2>/dev/null)" = pole

systemctl reload poled
sleep 1
check "systemctl reload: active, same MainPID" \
    test "$(prop ActiveState)/$(prop MainPID)" = "active/$pid"
cp /etc/pole/poled.cfg /tmp/poled.cfg.good
echo 'no_such_setting = 1;' >>/etc/pole/poled.cfg
systemctl reload poled
sleep 1
check "a reload of a bad file is refused: still active, same MainPID" \
    test "$(prop ActiveState)/$(prop MainPID)" = "active/$pid"
cp /tmp/poled.cfg.good /etc/pole/poled.cfg
check "poled still answers after the refused reload" pctl ping

sleep 7
check "the watchdog (3 s here) is fed: no restart after 7 s" \
    test "$(prop NRestarts)/$(prop MainPID)" = "0/$pid"
kill -STOP "$pid"
for _ in $(seq 1 30); do
    [ "$(prop NRestarts)" = 1 ] && [ "$(prop ActiveState)" = active ] && break
    sleep 0.5
done
check "a stuck poled (SIGSTOP) is killed by the watchdog and restarted" \
    test "$(prop NRestarts)/$(prop ActiveState)/$(prop Result)" = "1/active/success"
check "the restarted poled has its data" pctl show "$id"

systemctl stop poled
check "systemctl stop: a clean exit (status 0)" \
    test "$(prop ActiveState)/$(prop Result)/$(prop ExecMainStatus)" = "inactive/success/0"
check "/run/pole is removed at stop" test ! -e /run/pole
echo "--- journal of poled.service"
journalctl -u poled --no-pager -o short-monotonic | tail -30
echo "pole-check: done"
EOF

timeout 150 systemd-nspawn --quiet --directory="$root" --boot --private-network \
    --register=no --keep-unit --link-journal=no --bind="$out:/out" \
    systemd.unit=pole-test.target >"$out/nspawn.log" 2>&1 \
    || echo "systemd-nspawn exited with status $?" >>"$out/nspawn.log"
