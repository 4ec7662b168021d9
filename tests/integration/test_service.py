"""poled as a systemd service (issue 5): sd_notify and reload.

The test plays systemd's part: it binds the datagram socket named by
NOTIFY_SOCKET (and sets WATCHDOG_USEC) before starting the real poled, and
reads what poled tells it: READY=1 once it serves, WATCHDOG=1 fed from the
event loop, STATUS= lines, RELOADING=1 then READY=1 around a SIGHUP, and
STOPPING=1 on SIGTERM. Reloads are checked with a good file (programme
parameters, territories and keys applied, no request dropped while several
clients keep sending) and a bad one (refused, the reason logged, the
running configuration kept).
"""

import os
import signal
import socket
import subprocess
import threading
import time
import unittest

import zmq

from polehelp import (CTX, SIGNATURE, Poled, config_text, new_request_id,
                      ok_event_reply, error_reply)
from test_auth import AuthPoled, keygen


class NotifyListener:
    """The NOTIFY_SOCKET end of systemd: collects the messages."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages = []

    def drain(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return
            self.messages.append(data.decode("utf-8", "replace"))

    def wait_for(self, assignment, deadline=10.0, after=0):
        """Wait until a message after index `after` holds `assignment`
        (a line such as READY=1); return the message's index."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            self.drain()
            for index in range(after, len(self.messages)):
                if assignment in self.messages[index].split("\n"):
                    return index
        raise AssertionError("no %s from poled within %.0fs; got %r"
                             % (assignment, deadline, self.messages))

    def close(self):
        self.sock.close()


class NotifyTest(unittest.TestCase):

    def test_ready_watchdog_reload_stopping(self):
        poled = Poled(start=False)
        listener = NotifyListener(poled.dir)
        try:
            poled.env = {"NOTIFY_SOCKET": listener.path,
                         "WATCHDOG_USEC": "300000"}
            poled.start()
            ready = listener.wait_for("READY=1")
            self.assertIn("MAINPID=%d" % poled.proc.pid,
                          listener.messages[ready].split("\n"))
            status = [m for m in listener.messages if m.startswith("STATUS=")
                      or "\nSTATUS=" in m]
            self.assertTrue(status, listener.messages)
            self.assertRegex("\n".join(status), r"\d+ dossiers, \d+ events")
            # the watchdog is fed twice per period, from the loop
            first = listener.wait_for("WATCHDOG=1", after=ready)
            listener.wait_for("WATCHDOG=1", after=first + 1, deadline=2.0)
            # a reload: RELOADING=1, then READY=1 again
            poled.proc.send_signal(signal.SIGHUP)
            reloading = listener.wait_for("RELOADING=1", after=ready + 1)
            self.assertTrue(any(line.startswith("MONOTONIC_USEC=") for line
                                in listener.messages[reloading].split("\n")))
            listener.wait_for("READY=1", after=reloading + 1)
            self.assertTrue(poled.ping())
            count = len(listener.messages)
            self.assertEqual(poled.stop(), 0, poled.log())
            listener.wait_for("STOPPING=1", after=count)
        finally:
            listener.close()
            poled.close()

    def test_without_notify_socket_runs_the_same(self):
        with Poled() as poled:
            self.assertTrue(poled.ping())
            poled.proc.send_signal(signal.SIGHUP)
            self.wait_log(poled, "reload done")
            self.assertTrue(poled.ping())
            self.assertEqual(poled.stop(), 0)

    def wait_log(self, poled, text, deadline=10.0, count=1):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if poled.log().count(text) >= count:
                return
            time.sleep(0.05)
        self.fail("%r not in the log:\n%s" % (text, poled.log()))


class ReloadTest(unittest.TestCase):

    def reload(self, poled, listener):
        after = len(listener.messages)
        poled.proc.send_signal(signal.SIGHUP)
        reloading = listener.wait_for("RELOADING=1", after=after)
        listener.wait_for("READY=1", after=reloading + 1)

    def write(self, poled, text):
        with open(poled.config, "w", encoding="utf-8") as f:
            f.write(text)

    def test_good_then_bad_file_under_load(self):
        poled = Poled(start=False)
        listener = NotifyListener(poled.dir)
        poled.env = {"NOTIFY_SOCKET": listener.path}
        base = open(poled.config, encoding="utf-8").read()
        stop = threading.Event()
        acked, errors = [], []
        try:
            poled.start()
            listener.wait_for("READY=1")
            rc, out, err = poled.ctl("open", "--pays", "Brest", "--holder",
                                     "H", "--holder-type", "ess_actor")
            d = int(out.strip())
            poled.ctl("send", d, "request_study", "amount=20000")

            def client():
                sock = CTX.socket(zmq.DEALER)
                sock.setsockopt(zmq.LINGER, 0)
                sock.connect(poled.endpoint)
                try:
                    while not stop.is_set():
                        rid = new_request_id("rl")
                        sock.send_multipart([b"", SIGNATURE, b"EVENT",
                                             rid.encode(), b"loader",
                                             str(d).encode(), b"", b"note",
                                             b"text=x"])
                        if not sock.poll(15000):
                            errors.append("no reply to %s" % rid)
                            return
                        ok_event_reply(sock.recv_multipart()[1:], rid)
                        acked.append(rid)
                except Exception as e:
                    errors.append(repr(e))
                finally:
                    sock.close()

            threads = [threading.Thread(target=client) for _ in range(3)]
            for t in threads:
                t.start()

            # a good file: a lower study cap, one more territory
            self.write(poled, base.replace(
                "programme = {", "programme = {\n  study_cap_eur = 10000;")
                .replace('territories = (',
                         'territories = (\n  { name = "Pays Test"; '
                         'departement = 35; },'))
            self.reload(poled, listener)
            self.assertIn("reload done", poled.log())
            rc, out, err = poled.ctl("send", d, "grant_study",
                                     "amount=20000", check=False)
            self.assertEqual(rc, 1, err)
            self.assertIn("study_cap", err)
            poled.ctl("open", "--pays", "pays test", "--holder", "T",
                      "--holder-type", "pays")

            # a bad file: refused with its line, the running one kept
            self.write(poled, base + "programme = { max_posts = 0; };\n")
            self.reload(poled, listener)
            log = poled.log()
            self.assertIn("reload refused, the running configuration is "
                          "kept", log)
            self.assertRegex(log, r"poled\.cfg:\d+: ")
            rc, out, err = poled.ctl("send", d, "grant_study",
                                     "amount=20000", check=False)
            self.assertEqual(rc, 1, err)
            self.assertIn("study_cap", err)
            poled.ctl("send", d, "grant_study", "amount=10000")
            # an unreadable file too
            self.write(poled, "daemon = {")
            self.reload(poled, listener)
            self.assertEqual(poled.log().count("reload refused"), 2)
            self.assertTrue(poled.ping())

            # the clients were never dropped
            count = len(acked)
            while len(acked) < count + 20 and not errors:
                time.sleep(0.01)
            stop.set()
            for t in threads:
                t.join(30)
            self.assertEqual(errors, [])
            notes = [e for e in poled.history(d) if e["event"] == "note"]
            self.assertEqual(len(notes), len(acked))
            self.assertEqual(poled.stop(), 0, poled.log())
        finally:
            stop.set()
            listener.close()
            poled.close()

    def test_reload_applies_keys(self):
        keys = {"Anne (CRES)": ("cres", None)}
        poled = AuthPoled(keys, extra_keys=["Newcomer"])
        try:
            rc, out, err = poled.as_("Newcomer", "ping")
            self.assertEqual(rc, 7, err)
            # the newcomer is added, Anne removed, by a reload
            poled.key_specs = {"Newcomer": ("region", None)}
            poled.write_config()
            poled.proc.send_signal(signal.SIGHUP)
            end = time.monotonic() + 10
            while "reload done" not in poled.log():
                self.assertLess(time.monotonic(), end, poled.log())
                time.sleep(0.05)
            poled.as_("Newcomer", "ping", check=True)
            rc, out, err = poled.as_("Newcomer", "status")
            self.assertEqual(rc, 0, err)
            rc, out, err = poled.as_("Anne (CRES)", "ping")
            self.assertEqual(rc, 7, err)
            self.assertEqual(poled.stop(), 0, poled.log())
        finally:
            poled.close()


if __name__ == "__main__":
    unittest.main()
