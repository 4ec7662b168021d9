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

POLE_POLED_WRAPPER (environment): a command line put in front of poled's in
Poled.start(), e.g. "valgrind --leak-check=full" (`make check-valgrind`,
tests/integration/run_valgrind.sh). When it is set, Poled's readiness and
stop timeouts are multiplied by POLE_SLOW_FACTOR (default 20). When the
wrapper is valgrind, polehelp gives it its own --log-file (one per start, in
the Poled's directory; a --log-file in the wrapper is replaced) and
--error-exitcode=99 unless the wrapper names one, and reads the log once the
process has ended: an error (invalid read or write, use of uninitialised
memory, bad free, ...), a definite or indirect leak, or an exit status of
99 makes stop(), kill(), restart(), start() (of a previous run) or close()
raise ValgrindError (a PoledError) with the log. A process ended by SIGKILL
has no leak summary; its log is checked for errors only.
POLE_VALGRIND_LOG_DIR, if set, receives a copy of every valgrind log
(POLE_VALGRIND_TEST-PID-exitSTATUS.log).
"""

import atexit
import json
import os
import re
import shlex
import shutil
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

# poled under a wrapper (valgrind): see the module's docstring
WRAPPER = shlex.split(os.environ.get("POLE_POLED_WRAPPER", ""))
VALGRIND = bool(WRAPPER) and os.path.basename(WRAPPER[0]) == "valgrind"
SLOW = float(os.environ.get("POLE_SLOW_FACTOR", "20")) if WRAPPER else 1.0
VALGRIND_LOG_DIR = os.environ.get("POLE_VALGRIND_LOG_DIR")
VALGRIND_EXIT = 99
if VALGRIND:
    WRAPPER = [w for w in WRAPPER if not w.startswith("--log-file=")]
    exits = [w for w in WRAPPER if w.startswith("--error-exitcode=")]
    if exits:
        VALGRIND_EXIT = int(exits[-1].split("=", 1)[1])
    else:
        WRAPPER.append("--error-exitcode=%d" % VALGRIND_EXIT)

# What valgrind's memcheck calls its errors (the first line of each report)
_VG_ERROR_RE = re.compile(
    r"^==\d+== (Invalid (read|write|free|realloc)|Conditional jump|"
    r"Use of uninitialised|Syscall param|Mismatched free|"
    r"Source and destination overlap|Argument .* of function .* has a "
    r"fishy|Process terminating with default action of signal "
    r"(4|6|7|8|11) )", re.M)
_VG_LOST_RE = re.compile(
    r"==\d+==\s+(definitely|indirectly) lost: ([\d,]+) bytes in ([\d,]+) "
    r"blocks")
_VG_SUMMARY_RE = re.compile(r"==\d+== ERROR SUMMARY: ([\d,]+) errors")


def valgrind_problems(text, killed=False):
    """What is wrong in a valgrind (memcheck) log, as a list of lines:
    errors, definite and indirect leaks, a non-zero ERROR SUMMARY. With
    killed=True (SIGKILL: valgrind wrote no summary) only the errors."""
    problems = [m.group(0).split("== ", 1)[1]
                for m in _VG_ERROR_RE.finditer(text)]
    if not killed:
        for kind, nbytes, blocks in _VG_LOST_RE.findall(text):
            if int(nbytes.replace(",", "")):
                problems.append("%s lost: %s bytes in %s blocks"
                                % (kind, nbytes, blocks))
        m = _VG_SUMMARY_RE.search(text)
        if m and int(m.group(1).replace(",", "")):
            problems.append(m.group(0).split("== ", 1)[1])
    return problems

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


class ValgrindError(PoledError):
    """valgrind's log of a poled reports an error or a leak."""


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
        self.vg_log = None      # valgrind's log of the current process
        self.vg_checked = True  # ... read already (or no valgrind)
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

    def wrapped_command(self):
        """command(), behind $POLE_POLED_WRAPPER if set (valgrind: with
        its log file for this start)."""
        if not WRAPPER:
            return self.command()
        wrapper = list(WRAPPER)
        if VALGRIND:
            self.vg_log = os.path.join(self.dir,
                                       "valgrind-%d.log" % self.starts)
            wrapper.append("--log-file=%s" % self.vg_log)
        return wrapper + self.command()

    def check_valgrind(self):
        """Once the process has ended: read valgrind's log of it (once)
        and raise ValgrindError if it reports an error or a definite or
        indirect leak, or if poled exited with valgrind's error status."""
        if (self.vg_checked or self.proc is None
                or self.proc.poll() is None):
            return
        self.vg_checked = True
        rc = self.proc.returncode
        try:
            with open(self.vg_log, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError as e:
            raise ValgrindError("valgrind wrote no log %s: %s; poled "
                                "log:\n%s" % (self.vg_log, e, self.log()))
        if VALGRIND_LOG_DIR:
            os.makedirs(VALGRIND_LOG_DIR, exist_ok=True)
            test = os.environ.get("POLE_VALGRIND_TEST", "poled")
            shutil.copy(self.vg_log, os.path.join(
                VALGRIND_LOG_DIR, "%s-%d-exit%s.log"
                % (test, self.proc.pid, rc)))
        problems = valgrind_problems(text, killed=(rc == -signal.SIGKILL))
        if rc == VALGRIND_EXIT:
            problems.append("poled exited %d (valgrind's error status)" % rc)
        if problems:
            raise ValgrindError("valgrind found in poled (pid %d, exit %s): "
                                "%s\nvalgrind log %s:\n%s\npoled log:\n%s"
                                % (self.proc.pid, rc, "; ".join(problems),
                                   self.vg_log, text, self.log()[-5000:]))

    def start(self, deadline=15.0):
        assert self.proc is None or self.proc.poll() is not None
        self.check_valgrind()           # the previous run, if not read yet
        deadline *= SLOW
        log = open(self.log_path, "ab")
        log.write(b"---- start %d ----\n" % self.starts)
        log.flush()
        env = None
        if self.env:
            env = dict(os.environ)
            env.update(self.env)
        command = self.wrapped_command()
        self.starts += 1
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, env=env)
        self.vg_checked = not VALGRIND
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
        """SIGTERM, wait, return the exit status (the caller checks it).
        Under valgrind, raises ValgrindError (a PoledError) if its log
        reports a problem."""
        if self.proc is None:
            return None
        timeout *= SLOW
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                stacks = backtrace(self.proc.pid)
                self.proc.kill()
                self.proc.wait()
                self.vg_checked = True
                raise PoledError("poled did not exit within %.0fs of SIGTERM"
                                 "\nits threads:\n%s\nlog:\n%s"
                                 % (timeout, stacks, self.log()))
        self.check_valgrind()
        return self.proc.returncode

    def kill(self):
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(15)
        self.check_valgrind()
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
        """Stop (SIGTERM, else SIGKILL) and remove the directory. Under
        valgrind, raises ValgrindError (after the cleanup) if the log of
        the last run reports a problem."""
        _LIVE.discard(self)
        problem = None
        try:
            if self.running():
                try:
                    self.stop(5)
                except ValgrindError as e:
                    problem = e         # a finding: not swallowed
                except PoledError:
                    pass
            if VALGRIND and self.proc is not None and not self.vg_checked:
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()
                try:
                    self.check_valgrind()
                except ValgrindError as e:
                    problem = e
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.tmp.cleanup()
        if problem is not None:
            raise problem

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
