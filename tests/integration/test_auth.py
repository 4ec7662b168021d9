"""Authentication and authorisation (issue 5, docs/ADMIN.md).

A real poled with CURVE on its TCP endpoint (zauth, keys from the
configuration) and a local ipc:// endpoint for administrators, driven by
the real polectl (keys made by `polectl keygen`) and by raw pyzmq CURVE
sockets. Checks:

* an unknown key is refused at the handshake, and so is a plain client;
* a handshake that fails without detail (the peer drops the connection:
  a wrong --server-key, or a plain client dropped before the server's
  greeting reached it) is still a timeout (exit 5), whose message says so;
* every role trying every event it may not send is answered FORBIDDEN
  (polectl exit 7) and nothing is written; a holder acts on its own
  dossiers only, reads its own only;
* the history records the authenticated actor, never the one claimed;
* the local endpoint makes its peer an administrator under its Unix name;
* without curve.cert poled refuses to bind a non-loopback TCP address.
"""

import os
import pwd
import re
import socket
import subprocess
import threading
import time
import unittest

import zmq

from polehelp import (CTX, POLECTL, POLED, SIGNATURE, SLOW, Poled,
                      PoledError, config_text, ctl, error_reply,
                      free_tcp_port, new_request_id, ok_event_reply)

EVENTS = [
    "open", "legitimate_holder", "request_study", "grant_study",
    "decline_study", "deliver_study", "validate", "reject", "create_pole",
    "request_posts", "grant_posts", "decline_posts", "file_annual_report",
    "start_next_year", "add_cofunding", "note", "withdraw", "close", "reopen",
    "reminder", "overdue",
]

# Who may send what: DOMAIN.md's roles as docs/ADMIN.md reads them, stated
# here independently of the daemon's table (daemon/workflow.c).
ALLOWED = {
    "holder": {"open", "request_study", "deliver_study", "create_pole",
               "request_posts", "file_annual_report", "add_cofunding",
               "note", "withdraw"},
    "cres": {"open", "legitimate_holder", "request_study", "deliver_study",
             "validate", "reject", "create_pole", "request_posts",
             "file_annual_report", "add_cofunding", "note"},
    "region": {"open", "grant_study", "decline_study", "validate", "reject",
               "grant_posts", "decline_posts", "start_next_year",
               "add_cofunding", "note", "withdraw", "close", "reopen"},
    "admin": set(EVENTS) - {"reminder", "overdue"},
}

KEY_RE = re.compile(r'(public|secret)-key = "([^"]+)"')


def keygen(path):
    """polectl keygen PATH; returns (public, secret) Z85 text."""
    p = subprocess.run([POLECTL, "keygen", path], capture_output=True,
                       check=True)
    public = p.stdout.decode().strip()
    with open(path + "_secret", encoding="utf-8") as f:
        keys = dict(KEY_RE.findall(f.read()))
    assert keys["public"] == public, (keys, public)
    return public, keys["secret"]


class AuthPoled(Poled):
    """poled with CURVE on a loopback TCP port and a local ipc endpoint.

    keys: {name: (role, holder or None)}; a key pair is made for each
    (self.keyfile[name]), plus one for the server (curve.cert).
    """

    def __init__(self, keys, extra_keys=(), **kw):
        self.key_specs = dict(keys)
        super().__init__(transport="tcp", start=False, **kw)
        self.local_endpoint = "ipc://%s" % os.path.join(self.dir, "local.sock")
        self.pub_endpoint = "ipc://%s" % os.path.join(self.dir, "pub.sock")
        self.server_cert = os.path.join(self.dir, "poled.cert")
        self.server_public, _ = keygen(self.server_cert)
        self.keyfile, self.public, self.secret = {}, {}, {}
        for name in list(self.key_specs) + list(extra_keys):
            path = os.path.join(self.dir, "key-%d" % len(self.keyfile))
            self.keyfile[name] = path
            self.public[name], self.secret[name] = keygen(path)
        self.write_config()
        # readiness is checked on the local endpoint (plain, admin)
        self.endpoints = [self.local_endpoint]
        self.endpoint = self.local_endpoint
        self.start()

    def config_body(self):
        lines = [config_text(
            endpoint="ipc://%s" % os.path.join(self.dir, "unused.sock"),
            database=os.path.join(self.dir, "unused.db"))]
        lines[0] = lines[0].replace(
            "daemon = {", 'daemon = {\n  local_endpoint = "%s";'
            % self.local_endpoint, 1)
        lines.append('curve = { cert = "%s"; };' % self.server_cert)
        entries = []
        for name, (role, holder) in self.key_specs.items():
            entry = '{ name = "%s"; role = "%s"; key = "%s";' % (
                name, role, self.public[name])
            if holder:
                entry += ' holder = "%s";' % holder
            entries.append(entry + " }")
        lines.append("keys = (\n  %s\n);" % ",\n  ".join(entries))
        return "\n".join(lines) + "\n"

    def write_config(self):
        with open(self.config, "w", encoding="utf-8") as f:
            f.write(self.config_body())

    def command(self):
        return [POLED, "-c", self.config, "-e", self.tcp_endpoint,
                "-d", self.database, "-p", self.pub_endpoint]

    def as_(self, name, *args, check=False, timeout=5):
        """polectl as the key `name` over CURVE; (rc, out, err)."""
        cmd = [POLECTL, "-e", self.tcp_endpoint, "-t", str(timeout), "-r",
               "0", "--cert", self.keyfile[name], "--server-key",
               self.server_cert] + [str(a) for a in args]
        p = subprocess.run(cmd, capture_output=True, timeout=60,
                           env=dict(os.environ, POLE_ENDPOINT=""))
        out, err = p.stdout.decode(), p.stderr.decode()
        if check and p.returncode:
            raise AssertionError("%r exited %d: %s%s" % (cmd, p.returncode,
                                                         out, err))
        return p.returncode, out, err

    def local(self, *args, check=True):
        return self.ctl(*args, endpoint=self.local_endpoint, check=check)

    def curve_socket(self, name=None, public=None, secret=None):
        """A raw DEALER with the key pair of `name` (or given keys)."""
        sock = CTX.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if name is not None:
            public, secret = self.public[name], self.secret[name]
        sock.curve_publickey = public.encode()
        sock.curve_secretkey = secret.encode()
        sock.curve_serverkey = self.server_public.encode()
        sock.connect(self.tcp_endpoint)
        return sock

    def raw(self, name, *frames, timeout=5.0):
        sock = self.curve_socket(name)
        try:
            sock.send_multipart([b""] + [f if isinstance(f, bytes)
                                         else str(f).encode()
                                         for f in frames])
            if not sock.poll(int(timeout * 1000)):
                return None
            reply = sock.recv_multipart()
            assert reply[0] == b""
            return reply[1:]
        finally:
            sock.close()

    def events(self):
        import json
        rc, out, err = self.local("status", "--json")
        return json.loads(out)["events"]


KEYS = {
    "Anne (CRES)": ("cres", None),
    "Service ESS (Région)": ("region", None),
    "Admin": ("admin", None),
    "ADESS Brest": ("holder", None),
    "Porteur Dinan": ("holder", "Collectif Dinan"),
}


class AuthTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.poled = AuthPoled(KEYS, extra_keys=["stranger"])

    @classmethod
    def tearDownClass(cls):
        rc = cls.poled.stop()
        log = cls.poled.log()
        cls.poled.close()
        assert rc == 0, "poled exited %s; log:\n%s" % (rc, log)

    def open_dossier(self, pays, holder):
        rc, out, err = self.poled.local(
            "open", "--pays", pays, "--holder", holder, "--holder-type",
            "ess_actor")
        return int(out.strip())

    def test_unknown_key_refused_at_handshake(self):
        before = self.poled.events()
        rc, out, err = self.poled.as_("stranger", "ping")
        self.assertEqual(rc, 7, err)
        self.assertIn("refused our key", err)
        rc, out, err = self.poled.as_("stranger", "open", "--pays", "Brest",
                                      "--holder", "X", "--holder-type",
                                      "ess_actor")
        self.assertEqual(rc, 7, err)
        # raw: no reply at all, the handshake never completes
        self.assertIsNone(self.poled.raw("stranger", SIGNATURE, b"PING",
                                         b"p1", timeout=1.0))
        self.assertEqual(self.poled.events(), before)

    def test_plain_client_refused(self):
        before = self.poled.events()
        sock = CTX.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.poled.tcp_endpoint)
        sock.send_multipart([SIGNATURE, b"OPEN", b"plain-1", b"mallory",
                             b"pays=Brest", b"holder=X",
                             b"holder_type=ess_actor"])
        self.assertEqual(sock.poll(1000), 0, "a plain client was answered")
        sock.close()
        # the refusal is prompt; the long timeout only makes room for a
        # loaded machine
        rc, out, err = self.poled.ctl("ping", endpoint=self.poled.tcp_endpoint,
                                      check=False, timeout=20, retries=0)
        self.assertEqual(rc, 7, err)
        self.assertIn("requires CURVE", err)
        # the same machine with a listed key is answered
        rc, out, err = self.poled.as_("Admin", "ping")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.poled.events(), before)

    def test_wrong_server_key_times_out_with_a_hint(self):
        # The daemon cannot open our HELLO and drops the connection without
        # a word: the client sees only handshakes failing without detail,
        # on every reconnect. Some other key (the stranger's) stands for a
        # wrong --server-key.
        before = self.poled.events()
        cmd = [POLECTL, "-e", self.poled.tcp_endpoint, "-t", str(2 * SLOW),
               "-r", "0", "--cert", self.poled.keyfile["Admin"],
               "--server-key", self.poled.public["stranger"], "ping"]
        p = subprocess.run(cmd, capture_output=True, timeout=60 * SLOW,
                           env=dict(os.environ, POLE_ENDPOINT=""))
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 5, err)
        self.assertRegex(err, r"no answer from .* \(1 try\); the connection's "
                              r"security handshake failed \d+ times? "
                              r"\(is --server-key the daemon's public key\?\)")
        self.assertEqual(self.poled.events(), before)

    def test_each_role_each_forbidden_event(self):
        """Every event a role may not send: FORBIDDEN, nothing written."""
        mine = self.open_dossier("Brest", "ADESS Brest")
        forbidden_seen = 0
        for name, (role, holder) in KEYS.items():
            if name == "Porteur Dinan":
                continue            # the other holder: tested below
            for event in EVENTS:
                if event in ALLOWED[role]:
                    continue
                with self.subTest(role=role, event=event):
                    before = self.poled.events()
                    version = self.poled.show(mine)["version"]
                    rid = new_request_id("fb")
                    if event == "open":
                        frames = [SIGNATURE, b"OPEN", rid, b"x", b"pays=Brest",
                                  b"holder=ADESS Brest",
                                  b"holder_type=ess_actor"]
                    else:
                        frames = [SIGNATURE, b"EVENT", rid, b"x", mine, b"",
                                  event, b"reason=r"]
                    reply = self.poled.raw(name, *frames)
                    _, code, message, _ = error_reply(reply)
                    self.assertEqual(code, "FORBIDDEN", message)
                    self.assertIn("role %s" % role, message)
                    self.assertEqual(self.poled.events(), before)
                    self.assertEqual(self.poled.show(mine)["version"],
                                     version)
                    forbidden_seen += 1
        # the matrix is not empty: holder 12, cres 10, region 8, admin 2
        self.assertEqual(forbidden_seen, 12 + 10 + 8 + 2)
        # and polectl says so with exit 7
        rc, out, err = self.poled.as_("ADESS Brest", "send", mine,
                                      "grant_study", "amount=100")
        self.assertEqual(rc, 7, err)
        self.assertIn("FORBIDDEN", err)

    def test_allowed_events_are_not_forbidden(self):
        """The other half of the table: allowed events reach the engine."""
        mine = self.open_dossier("Morlaix", "ADESS Brest")
        for name, (role, holder) in KEYS.items():
            if name == "Porteur Dinan":
                continue
            for event in sorted(ALLOWED[role] - {"open"}):
                with self.subTest(role=role, event=event):
                    reply = self.poled.raw(
                        name, SIGNATURE, b"EVENT", new_request_id("al"), b"x",
                        mine, b"", event, b"unknown_field=1")
                    # refused by the workflow (fields), never FORBIDDEN
                    _, code, message, rule = error_reply(reply)
                    self.assertEqual(code, "REFUSED", message)

    def test_holder_own_dossiers_only(self):
        theirs = self.open_dossier("Guingamp", "ADESS Brest")
        before = self.poled.events()
        for event, fields in [("note", ["text=hello"]),
                              ("request_study", ["amount=1000"]),
                              ("withdraw", ["reason=mine now"])]:
            with self.subTest(event=event):
                rc, out, err = self.poled.as_("Porteur Dinan", "send", theirs,
                                              event, *fields)
                self.assertEqual(rc, 7, err)
                self.assertIn("not \"Collectif Dinan\"'s", err)
        # reads too
        rc, out, err = self.poled.as_("Porteur Dinan", "show", theirs)
        self.assertEqual(rc, 7, err)
        rc, out, err = self.poled.as_("Porteur Dinan", "history", theirs)
        self.assertEqual(rc, 7, err)
        # opening for another holder
        rc, out, err = self.poled.as_("Porteur Dinan", "open", "--pays",
                                      "Dinan", "--holder", "ADESS Brest",
                                      "--holder-type", "ess_actor")
        self.assertEqual(rc, 7, err)
        self.assertEqual(self.poled.events(), before)
        # its own: open in its name, act, read, list only its own
        rc, out, err = self.poled.as_("Porteur Dinan", "open", "--pays",
                                      "Dinan", "--holder", "Collectif Dinan",
                                      "--holder-type", "ess_actor",
                                      check=True)
        own = int(out.strip())
        self.poled.as_("Porteur Dinan", "send", own, "request_study",
                       "amount=20000", check=True)
        rc, out, err = self.poled.as_("Porteur Dinan", "show", own,
                                      check=True)
        self.assertIn("study_requested", out)
        import json
        rc, out, err = self.poled.as_("Porteur Dinan", "list", "--json",
                                      check=True)
        listed = json.loads(out)
        self.assertEqual([d["id"] for d in listed], [own])
        # a holder may not read the agenda, the outbox, move the clock,
        # back up or verify; it may read the report
        for args in (["agenda"], ["outbox"], ["clock", "set", "2030-01-01"],
                     ["backup", os.path.join(self.poled.dir, "h.db")],
                     ["verify"], ["status"]):
            with self.subTest(args=args):
                rc, out, err = self.poled.as_("Porteur Dinan", *args)
                self.assertEqual(rc, 7, err)
        self.poled.as_("Porteur Dinan", "report", check=True)

    def test_history_records_authenticated_actor(self):
        d = self.open_dossier("Saint-Brieuc", "ADESS Brest")
        reply = self.poled.raw("Anne (CRES)", SIGNATURE, b"EVENT",
                               new_request_id("act"), b"mallory", d, b"",
                               b"note", b"text=who am I")
        ok_event_reply(reply)
        history = self.poled.history(d)
        self.assertEqual(history[-1]["actor"], "Anne (CRES)")
        # the open through the local endpoint is recorded under the Unix
        # name of the process that sent it
        self.assertEqual(history[0]["actor"],
                         pwd.getpwuid(os.getuid()).pw_name)

    def test_local_endpoint_is_admin(self):
        d = self.open_dossier("Lorient", "ADESS Brest")
        self.poled.local("send", d, "withdraw", "reason=test")
        self.poled.local("send", d, "reopen", "reason=mistake")
        self.assertEqual(self.poled.show(d)["state"], "draft")
        self.poled.local("status")

    def test_region_reopens_cres_may_not(self):
        d = self.open_dossier("Vannes", "ADESS Brest")
        self.poled.as_("ADESS Brest", "send", d, "withdraw", "reason=stop",
                       check=True)
        rc, out, err = self.poled.as_("Anne (CRES)", "send", d, "reopen",
                                      "reason=oops")
        self.assertEqual(rc, 7, err)
        self.poled.as_("Service ESS (Région)", "send", d, "reopen",
                       "reason=oops", check=True)
        self.assertEqual(self.poled.show(d)["state"], "draft")


    def test_live_stream_needs_a_listed_key(self):
        d = self.open_dossier("Fougères", "ADESS Brest")
        plain = CTX.socket(zmq.SUB)
        plain.setsockopt(zmq.LINGER, 0)
        plain.setsockopt(zmq.SUBSCRIBE, b"")
        plain.connect(self.poled.pub_endpoint)
        cmd = [POLECTL, "--pub-endpoint", self.poled.pub_endpoint, "--cert",
               self.poled.keyfile["Anne (CRES)"], "--server-key",
               self.poled.server_public, "watch", "--count", "1", "--json"]
        watcher = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        try:
            # the subscription needs a moment; send until the watcher sees one
            end = time.monotonic() + 15
            while watcher.poll() is None and time.monotonic() < end:
                self.poled.local("send", d, "note", "text=stream")
                time.sleep(0.2)
            out, err = watcher.communicate(timeout=10)
        finally:
            if watcher.poll() is None:
                watcher.kill()
                watcher.wait()
        self.assertEqual(watcher.returncode, 0, err)
        self.assertIn('"event":"note"', out.decode().replace(" ", ""))
        # the plain subscriber got nothing
        self.assertEqual(plain.poll(200), 0)
        plain.close()


class DroppedHandshakeTest(unittest.TestCase):
    """A plain client whose connection is dropped during the handshake.

    A CURVE daemon that drops a plain client before its greeting reached
    the client leaves libzmq nothing to report but a handshake failed
    without detail (run_valgrind.sh, test_plain_client_refused). Here a
    listener that closes every connection at once makes that certain.
    """

    def test_timeout_says_the_handshake_failed(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(0.1)
        port = listener.getsockname()[1]
        done = threading.Event()

        def drop():
            while not done.is_set():
                try:
                    conn, _ = listener.accept()
                except socket.timeout:
                    continue
                conn.close()

        thread = threading.Thread(target=drop, daemon=True)
        thread.start()
        try:
            rc, out, err = ctl("ping", endpoint="tcp://127.0.0.1:%d" % port,
                               check=False, timeout=1, retries=1,
                               env={"POLE_CERT": "", "POLE_SERVER_KEY": ""})
        finally:
            done.set()
            thread.join()
            listener.close()
        self.assertEqual(rc, 5, err)
        self.assertRegex(err, r"no answer from .* \(2 tries\); the "
                              r"connection's security handshake failed \d+ "
                              r"times? \(does the daemon require CURVE keys\? "
                              r"see --cert and --server-key\)")

    def test_no_listener_no_hint(self):
        # nothing listening: no handshake began, a plain timeout
        port = free_tcp_port()
        rc, out, err = ctl("ping", endpoint="tcp://127.0.0.1:%d" % port,
                           check=False, timeout=0.5, retries=0,
                           env={"POLE_CERT": "", "POLE_SERVER_KEY": ""})
        self.assertEqual(rc, 5, err)
        self.assertIn("no answer from", err)
        self.assertNotIn("handshake", err)


class NoAuthBindingTest(unittest.TestCase):

    def test_refuses_non_loopback_without_curve(self):
        with Poled(transport="ipc", start=False) as poled:
            port = free_tcp_port()
            p = subprocess.run([POLED, "-c", poled.config, "-e",
                                "tcp://0.0.0.0:%d" % port, "-d",
                                poled.database], capture_output=True,
                               timeout=30)
            self.assertEqual(p.returncode, 1)
            self.assertIn(b"authentication is off", p.stderr)
            self.assertIn(b"tcp://0.0.0.0:%d" % port, p.stderr)

    def test_bad_keys_are_configuration_errors(self):
        with Poled(transport="ipc", start=False) as poled:
            cert = os.path.join(poled.dir, "s.cert")
            keygen(cert)
            base = open(poled.config, encoding="utf-8").read()
            cases = [
                ('curve = { cert = "%s"; };\nkeys = ( { name = "a"; '
                 'role = "boss"; key = "%s"; } );' % (cert, "0" * 40),
                 "role \"boss\" is not one of"),
                ('curve = { cert = "%s"; };\nkeys = ( { name = "a"; '
                 'role = "cres"; key = "short"; } );' % cert,
                 "40 Z85 characters"),
                ('curve = { cert = "/nonexistent/poled.cert"; };',
                 "cannot read the server's key pair"),
                ('keys = ( { name = "a"; role = "cres"; holder = "h"; '
                 'key = "%s"; } );' % ("0" * 40), "holder is for keys"),
                ('daemon2 = { local_endpoint = "tcp://127.0.0.1:1"; };',
                 "unknown setting daemon2"),
            ]
            for extra, expected in cases:
                with self.subTest(expected=expected):
                    with open(poled.config, "w", encoding="utf-8") as f:
                        f.write(base + extra + "\n")
                    p = subprocess.run([POLED, "-c", poled.config, "-d",
                                        poled.database],
                                       capture_output=True, timeout=30)
                    self.assertEqual(p.returncode, 1, p.stderr)
                    self.assertIn(expected, p.stderr.decode())
                    self.assertRegex(p.stderr.decode(), r"poled\.cfg:\d+: ")


if __name__ == "__main__":
    unittest.main()
