"""Shared helpers for the integration tests of poled and polectl.

Everything here drives the real binaries found in $POLE_BUILD_DIR:

* Poled: writes a configuration (the libconfig format of docs/CLI.md) into a
  temporary directory, starts `poled -c CFG -e ENDPOINT -d DB`, waits until it
  answers a POLE/1 PING, and stops it with SIGTERM (exit status checked),
  kills it with SIGKILL, or restarts it on the same database. Its stdout and
  stderr go to a file that tests can read.
* Poled.ctl(*args): runs polectl against that daemon and returns
  (returncode, stdout, stderr).
* raw_request() / Client: raw ZeroMQ REQ or DEALER sockets that send frames
  and return the reply frames (for DEALER, the empty delimiter is added and
  checked), or None when nothing comes back in time.

Only loopback TCP and IPC endpoints are used. Waits are bounded polls, never
bare sleeps.
"""

import atexit
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("POLE_SOURCE_DIR",
                            os.path.normpath(os.path.join(HERE, "..", "..")))
BUILD_DIR = os.environ.get("POLE_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
POLED = os.path.join(BUILD_DIR, "poled")
POLECTL = os.path.join(BUILD_DIR, "polectl")

SIGNATURE = b"POLE/1"

# The 21 Pays of DOMAIN.md, canonical names, with their departement.
TERRITORIES = [
    ("Brest", 29), ("Morlaix", 29), ("Cornouaille", 29),
    ("Centre-Ouest Bretagne", 29),
    ("Dinan", 22), ("Guingamp", 22), ("Saint-Brieuc", 22),
    ("Trégor-Goëlo", 22), ("Centre Bretagne", 22),
    ("Rennes", 35), ("Brocéliande", 35), ("Fougères", 35), ("Saint-Malo", 35),
    ("Vallons de Vilaine", 35), ("Vitré-Porte de Bretagne", 35),
    ("Redon et Vilaine", 35),
    ("Auray", 56), ("Lorient", 56), ("Ploërmel-Cœur de Bretagne", 56),
    ("Pontivy", 56), ("Vannes", 56),
]
DEPARTEMENT = dict(TERRITORIES)

STATES = [
    "draft", "study_requested", "study_funded", "study_delivered",
    "validated", "pole_created", "posts_requested", "funding_year_1",
    "funding_year_2", "funding_year_3", "operating", "study_declined",
    "not_validated", "withdrawn", "closed",
]
TERMINAL = {"study_declined", "not_validated", "withdrawn", "closed"}

TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

CTX = zmq.Context.instance()


def free_tcp_port():
    """A loopback TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_request_id(prefix="it"):
    return "%s-%s" % (prefix, uuid.uuid4().hex)


def config_text(endpoint=None, database=None, max_message_size=None,
                batch_max=None, programme=None, territories=None):
    """A configuration file in the format of docs/CLI.md.

    Settings left as None are not written (the defaults apply); `programme`
    is a dict of programme settings; `territories` a list of (name, dep).
    """
    lines = ["# written by tests/integration/polehelp.py", "daemon = {"]
    if endpoint is not None:
        lines.append('  endpoint = "%s";' % endpoint)
    if database is not None:
        lines.append('  database = "%s";' % database)
    if max_message_size is not None:
        lines.append("  max_message_size = %d;" % max_message_size)
    if batch_max is not None:
        lines.append("  batch_max = %d;" % batch_max)
    lines.append("};")
    lines.append("programme = {")
    for key, value in (programme or {}).items():
        lines.append("  %s = %d;" % (key, value))
    lines.append("};")
    lines.append("territories = (")
    terr = TERRITORIES if territories is None else territories
    for i, (name, dep) in enumerate(terr):
        sep = "," if i + 1 < len(terr) else ""
        lines.append('  { name = "%s"; departement = %d; }%s' % (name, dep, sep))
    lines.append(");")
    # the roles of the shipped configuration: reopen is the Région's
    lines.append('roles = { cres = [ "cres" ]; region = [ "region" ]; '
                 'admin = [ "admin" ]; };')
    return "\n".join(lines) + "\n"


def _encode(frame):
    if isinstance(frame, bytes):
        return frame
    if isinstance(frame, int):
        return str(frame).encode()
    return str(frame).encode("utf-8")


def raw_request(endpoint, frames, kind=zmq.REQ, timeout=5.0):
    """Send `frames` on a fresh REQ or DEALER socket and return the reply.

    REQ: the socket adds the delimiter; the reply body is returned.
    DEALER: the empty delimiter is sent first (unless frames already start
    with it: pass delimiter yourself with raw_dealer_send to test without);
    the reply must start with the empty delimiter, which is stripped.
    Returns the list of reply-body frames (bytes), or None on timeout.
    """
    sock = CTX.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        body = [_encode(f) for f in frames]
        if kind == zmq.DEALER:
            sock.send_multipart([b""] + body)
        else:
            sock.send_multipart(body)
        if not sock.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        reply = sock.recv_multipart()
        if kind == zmq.DEALER:
            if not reply or reply[0] != b"":
                raise AssertionError("DEALER reply without the empty "
                                     "delimiter: %r" % (reply,))
            reply = reply[1:]
        return reply
    finally:
        sock.close(0)


def raw_frames(endpoint, frames, timeout=5.0):
    """Send exactly `frames` (no delimiter added) on a fresh DEALER socket;
    return the whole reply as received (delimiter included), or None."""
    sock = CTX.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send_multipart([_encode(f) for f in frames])
        if not sock.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        return sock.recv_multipart()
    finally:
        sock.close(0)


def ping(endpoint, timeout=0.3):
    """True if a POLE/1 PING on `endpoint` is answered OK within timeout."""
    rid = new_request_id("ping")
    try:
        reply = raw_request(endpoint, [SIGNATURE, b"PING", rid],
                            timeout=timeout)
    except zmq.ZMQError:
        return False
    return (reply is not None and len(reply) >= 3 and reply[0] == SIGNATURE
            and reply[1] == rid.encode() and reply[2] == b"OK")


class Client:
    """A DEALER client that can have several requests in flight."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.sock = CTX.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def send(self, *frames):
        self.sock.send_multipart([b""] + [_encode(f) for f in frames])

    def send_raw(self, *frames):
        self.sock.send_multipart([_encode(f) for f in frames])

    def recv(self, timeout=5.0):
        """The next reply body (delimiter checked and stripped), or None."""
        if not self.sock.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        reply = self.sock.recv_multipart()
        if not reply or reply[0] != b"":
            raise AssertionError("reply without delimiter: %r" % (reply,))
        return reply[1:]

    def request(self, *frames, timeout=5.0):
        self.send(*frames)
        return self.recv(timeout)

    def close(self):
        self.sock.close(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class PoledError(Exception):
    pass


def backtrace(pid):
    """The stacks of a hung process, for the failure message (gdb if
    installed; else what /proc tells)."""
    for gdb in ("/usr/bin/gdb",):
        if os.access(gdb, os.X_OK):
            try:
                p = subprocess.run([gdb, "-p", str(pid), "-batch", "-nx",
                                    "-ex", "thread apply all bt"],
                                   stdin=subprocess.DEVNULL,
                                   capture_output=True, timeout=60)
                return p.stdout.decode("utf-8", "replace")
            except (OSError, subprocess.TimeoutExpired) as e:
                return "gdb failed: %s" % e
    try:
        out = []
        for tid in sorted(os.listdir("/proc/%d/task" % pid)):
            with open("/proc/%d/task/%s/wchan" % (pid, tid)) as f:
                out.append("thread %s: wchan %s" % (tid, f.read()))
        return "\n".join(out)
    except OSError as e:
        return "no stacks: %s" % e


_LIVE = set()        # every Poled not closed yet, for the exit handler


@atexit.register
def _kill_leftovers():
    """No poled outlives the test process, whatever happened."""
    for poled in list(_LIVE):
        proc = poled.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


class Poled:
    """One poled in its own temporary directory.

    transport: "ipc" (ipc://TMP/poled.sock) or "tcp" (a free loopback port)
    or "both" (the two, comma-separated, the IPC one first).
    """

    def __init__(self, transport="ipc", max_message_size=None, batch_max=None,
                 programme=None, territories=None, start=True, verbose=False):
        if not (os.access(POLED, os.X_OK) and os.access(POLECTL, os.X_OK)):
            raise PoledError("binaries not found in %s" % BUILD_DIR)
        # ipc:// paths must fit in sun_path (108 bytes): keep them short
        base = None if len(tempfile.gettempdir()) < 60 else "/tmp"
        self.tmp = tempfile.TemporaryDirectory(prefix="pole-it-", dir=base)
        self.dir = self.tmp.name
        self.database = os.path.join(self.dir, "pole.db")
        self.config = os.path.join(self.dir, "poled.cfg")
        self.log_path = os.path.join(self.dir, "poled.log")
        self.ipc_endpoint = "ipc://%s" % os.path.join(self.dir, "poled.sock")
        self.tcp_endpoint = None
        if transport in ("tcp", "both"):
            self.tcp_endpoint = "tcp://127.0.0.1:%d" % free_tcp_port()
        if transport == "ipc":
            self.endpoints = [self.ipc_endpoint]
        elif transport == "tcp":
            self.endpoints = [self.tcp_endpoint]
        else:
            self.endpoints = [self.ipc_endpoint, self.tcp_endpoint]
        self.endpoint = self.endpoints[0]
        self.verbose = verbose
        # The config's own endpoint and database point somewhere harmless:
        # the command line (-e, -d) must override them.
        with open(self.config, "w", encoding="utf-8") as f:
            f.write(config_text(
                endpoint="ipc://%s" % os.path.join(self.dir, "unused.sock"),
                database=os.path.join(self.dir, "unused.db"),
                max_message_size=max_message_size, batch_max=batch_max,
                programme=programme, territories=territories))
        self.proc = None
        self.starts = 0
        self.env = None         # extra environment for poled (NOTIFY_SOCKET)
        _LIVE.add(self)
        if start:
            try:
                self.start()
            except BaseException:
                self.close()
                raise

    # -- process control ------------------------------------------------
    def command(self):
        cmd = [POLED, "-c", self.config, "-e", ",".join(self.endpoints),
               "-d", self.database]
        if self.verbose:
            cmd.append("-v")
        return cmd

    def start(self, deadline=15.0):
        assert self.proc is None or self.proc.poll() is not None
        log = open(self.log_path, "ab")
        log.write(b"---- start %d ----\n" % self.starts)
        log.flush()
        self.starts += 1
        env = None
        if self.env:
            env = dict(os.environ)
            env.update(self.env)
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, env=env)
        log.close()
        try:
            self.wait_ready(deadline)
        except BaseException:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            raise

    def wait_ready(self, deadline=15.0):
        """Poll with PING until every endpoint answers (bounded)."""
        end = time.monotonic() + deadline
        pending = list(self.endpoints)
        while pending:
            if self.proc.poll() is not None:
                raise PoledError("poled exited with %s before answering; "
                                 "log:\n%s" % (self.proc.returncode,
                                               self.log()))
            if ping(pending[0], timeout=0.25):
                pending.pop(0)
                continue
            if time.monotonic() > end:
                raise PoledError("poled did not answer PING on %s within "
                                 "%.0fs; log:\n%s" % (pending[0], deadline,
                                                      self.log()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15.0):
        """SIGTERM, wait, return the exit status (the caller checks it)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                stacks = backtrace(self.proc.pid)
                self.proc.kill()
                self.proc.wait()
                raise PoledError("poled did not exit within %.0fs of SIGTERM"
                                 "\nits threads:\n%s\nlog:\n%s"
                                 % (timeout, stacks, self.log()))
        return self.proc.returncode

    def kill(self):
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(15)
        return self.proc.returncode

    def restart(self, clean=True):
        """Stop (SIGTERM, must exit 0) or kill, then start again on the same
        database. Returns the exit status of the stopped process."""
        if clean:
            rc = self.stop()
            if rc != 0:
                raise PoledError("poled exited %s on SIGTERM; log:\n%s"
                                 % (rc, self.log()))
        else:
            rc = self.kill()
        self.start()
        return rc

    def close(self):
        _LIVE.discard(self)
        try:
            if self.running():
                try:
                    self.stop(5)
                except PoledError:
                    pass
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.tmp.cleanup()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # -- clients ---------------------------------------------------------
    def ctl(self, *args, check=True, timeout=5, retries=1, actor=None,
            endpoint=None, env=None):
        return ctl(*args, endpoint=endpoint or self.endpoint, check=check,
                   timeout=timeout, retries=retries, actor=actor, env=env)

    def ctl_json(self, *args, **kw):
        rc, out, err = self.ctl(*args, **kw)
        try:
            return json.loads(out)
        except ValueError as e:
            raise AssertionError("polectl %s: stdout is not one JSON "
                                 "document (%s): %r" % (" ".join(args), e,
                                                        out))

    def request(self, *frames, kind=zmq.REQ, timeout=5.0):
        return raw_request(self.endpoint, frames, kind=kind, timeout=timeout)

    def ping(self, timeout=1.0):
        return ping(self.endpoint, timeout)

    # JSON queries, over the raw protocol (independent of polectl)
    def query(self, command, *args):
        rid = new_request_id("q")
        reply = self.request(SIGNATURE, command, rid, *args)
        if reply is None:
            raise AssertionError("no reply to %s" % command)
        if reply[:3] != [SIGNATURE, rid.encode(), b"OK"] or len(reply) != 4:
            raise AssertionError("%s: unexpected reply %r" % (command, reply))
        return json.loads(reply[3].decode("utf-8"))

    def show(self, dossier):
        return self.query(b"SHOW", str(dossier))

    def history(self, dossier):
        return self.query(b"HISTORY", str(dossier))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def ctl(*args, endpoint=None, check=True, timeout=5, retries=1, actor=None,
        env=None):
    """Run polectl; return (returncode, stdout, stderr) as text.

    Options -e/-t/-r (and -a if actor) are put before the command. With
    check=True a non-zero exit raises AssertionError with the output.
    """
    cmd = [POLECTL]
    if endpoint is not None:
        cmd += ["-e", endpoint]
    if timeout is not None:
        cmd += ["-t", str(timeout)]
    if retries is not None:
        cmd += ["-r", str(retries)]
    if actor is not None:
        cmd += ["-a", actor]
    cmd += [str(a) for a in args]
    e = dict(os.environ)
    e.pop("POLE_ENDPOINT", None)
    e.pop("POLE_ACTOR", None)
    if env:
        e.update(env)
    limit = 30 + (float(timeout or 5) * (int(retries or 0) + 1))
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       env=e, timeout=limit)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise AssertionError("%r exited %d\nstdout: %s\nstderr: %s"
                             % (cmd, p.returncode, out, err))
    return p.returncode, out, err


def error_reply(reply):
    """Split an ERROR reply body into (request_id, code, message, rule)."""
    if reply is None:
        raise AssertionError("no reply")
    if len(reply) != 6 or reply[0] != SIGNATURE or reply[2] != b"ERROR":
        raise AssertionError("not an ERROR reply: %r" % (reply,))
    return (reply[1].decode(), reply[3].decode(), reply[4].decode("utf-8"),
            reply[5].decode())


def ok_event_reply(reply, rid=None):
    """Split an OK reply to OPEN or EVENT into
    (dossier, state, version, seq, warning)."""
    if reply is None:
        raise AssertionError("no reply")
    if len(reply) != 8 or reply[0] != SIGNATURE or reply[2] != b"OK":
        raise AssertionError("not an OK OPEN/EVENT reply: %r" % (reply,))
    if rid is not None and reply[1] != _encode(rid):
        raise AssertionError("reply for request id %r, expected %r"
                             % (reply[1], rid))
    return (int(reply[3]), reply[4].decode(), int(reply[5]), int(reply[6]),
            reply[7].decode("utf-8"))
