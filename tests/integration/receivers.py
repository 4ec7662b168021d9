"""Real notification receivers for the integration tests of docs/NOTIFY.md.

Everything listens on 127.0.0.1 only, on a free port, in threads of the test
process:

* SmtpReceiver: an aiosmtpd SMTP server (Controller) that keeps every message
  it accepts, parsed with the email module (policy.default).
* HttpReceiver: a ThreadingHTTPServer that records every POST (path, headers,
  body bytes), checks X-Pole-Signature against the secret configured for the
  path (sha256= + lowercase hex HMAC-SHA256 of the exact body), answers
  `status` (200 by default; set it to 500 to simulate a failing receiver),
  and can be stopped and started again on the same port (a receiver down for
  a while refuses connections).
* write_command_script(): a program for the `command` channel that appends
  its POLE_* environment as one JSON line to a file; it exits 1 (and records
  nothing) while a "fail" flag file exists.

Waiting is done with wait_for(predicate, timeout): bounded, woken up by every
new message, never a bare sleep.
"""

import email
import email.policy
import hashlib
import hmac
import http.server
import json
import os
import socket
import stat
import threading
import time

PYTHON = "/usr/bin/python3"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def signature(secret, body):
    """The X-Pole-Signature value NOTIFY.md specifies for `body` (bytes)."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret, body, header):
    """True if `header` is the signature of the exact bytes `body`."""
    if header is None:
        return False
    return hmac.compare_digest(signature(secret, body), header)


class _Recorder:
    """A list of records with a condition variable to wait on."""

    def __init__(self):
        self.cond = threading.Condition()
        self.items = []

    def add(self, item):
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def snapshot(self):
        with self.cond:
            return list(self.items)

    def wait_for(self, predicate, timeout):
        """Wait until predicate(list of records) is true; return the last
        value of the predicate (falsy on timeout)."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate(list(self.items))
                if value:
                    return value
                left = end - time.monotonic()
                if left <= 0:
                    return value
                self.cond.wait(min(left, 0.2))


# ---------------------------------------------------------------------------
# SMTP

class SmtpReceiver(_Recorder):
    """aiosmtpd on 127.0.0.1:port. Each record is a dict:
    mail_from, rcpt_tos, raw (bytes), message (email.message.EmailMessage).
    """

    def __init__(self):
        super().__init__()
        self.port = None
        self.controller = None

    def start(self):
        # imported here so that a missing aiosmtpd only fails the tests
        # that need SMTP, with a clear message
        from aiosmtpd.controller import Controller

        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                raw = envelope.original_content or envelope.content
                if isinstance(raw, str):
                    raw = raw.encode("utf-8")
                msg = email.message_from_bytes(raw,
                                               policy=email.policy.default)
                receiver.add({"mail_from": envelope.mail_from,
                              "rcpt_tos": list(envelope.rcpt_tos),
                              "raw": raw, "message": msg})
                return "250 OK"

        last = None
        for _ in range(5):
            port = free_port()
            try:
                self.controller = Controller(Handler(), hostname="127.0.0.1",
                                             port=port)
                self.controller.start()
                self.port = port
                return self
            except Exception as e:      # port taken meanwhile: try another
                last = e
                self.controller = None
        raise RuntimeError("could not start the SMTP receiver: %s" % last)

    @property
    def url(self):
        return "smtp://127.0.0.1:%d" % self.port

    def stop(self):
        if self.controller is not None:
            try:
                self.controller.stop()
            finally:
                self.controller = None

    def to(self, address):
        """The messages whose envelope recipients include `address`."""
        return [m for m in self.snapshot() if address in m["rcpt_tos"]]


def plain_text(message):
    """The text/plain body of a parsed message, decoded."""
    part = message.get_body(preferencelist=("plain",))
    if part is None:
        return None
    return part.get_content()


# ---------------------------------------------------------------------------
# HTTP (webhook)

class HttpReceiver(_Recorder):
    """Records every POST. Each record is a dict: path, headers (a dict with
    lower-case names), body (bytes), status (the answer given),
    signature_ok (True/False, None when no secret is known for the path),
    at (time.monotonic()).

    secrets: {path: secret}; `default_secret` for other paths.
    """

    def __init__(self, secrets=None, default_secret=None):
        super().__init__()
        self.secrets = dict(secrets or {})
        self.default_secret = default_secret
        self.status = 200
        self.port = None
        self.server = None
        self.thread = None
        self.lock = threading.Lock()

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def secret_for(self, path):
        return self.secrets.get(path, self.default_secret)

    def set_status(self, status):
        with self.lock:
            self.status = status

    def _make_handler(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            # HTTP/1.1 so that "Expect: 100-continue" (libcurl, large bodies)
            # is answered at once; every answer closes the connection so that
            # a stopped receiver is really unreachable.
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _read_body(self):
                if "chunked" in (self.headers.get("Transfer-Encoding") or ""):
                    chunks = []
                    while True:
                        line = self.rfile.readline().strip()
                        size = int(line.split(b";")[0], 16)
                        if size == 0:
                            # trailers up to the empty line
                            while self.rfile.readline().strip():
                                pass
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def do_POST(self):
                body = self._read_body()
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    status = receiver.status
                secret = receiver.secret_for(self.path)
                ok = None
                if secret is not None:
                    ok = verify_signature(secret, body,
                                          headers.get("x-pole-signature"))
                receiver.add({"path": self.path, "headers": headers,
                              "body": body, "status": status,
                              "signature_ok": ok, "at": time.monotonic()})
                answer = b"ok\n" if status < 300 else b"failing on purpose\n"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(answer)
                self.close_connection = True

            def do_GET(self):
                self.send_response(405)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True

        return Handler

    def start(self, deadline=10.0):
        """Listen (on the same port as before if it was started already)."""
        assert self.server is None, "already running"
        port = self.port or 0
        end = time.monotonic() + deadline
        while True:
            try:
                server = http.server.ThreadingHTTPServer(
                    ("127.0.0.1", port), self._make_handler())
                break
            except OSError:
                if port == 0 or time.monotonic() > end:
                    raise
                time.sleep(0.05)        # the old socket is still closing
        server.daemon_threads = True
        self.server = server
        self.port = server.server_address[1]
        self.thread = threading.Thread(target=server.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       name="http-receiver", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        """Stop listening: connections to the port are refused until
        start() is called again."""
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
        self.server = None
        self.thread = None

    @property
    def running(self):
        return self.server is not None

    def posts(self, path=None, status=None):
        return [r for r in self.snapshot()
                if (path is None or r["path"] == path)
                and (status is None or r["status"] == status)]


# ---------------------------------------------------------------------------
# command channel

COMMAND_SCRIPT = r'''#!%(python)s
# written by tests/integration/receivers.py: records the POLE_* environment
import json, os, sys
if os.path.exists(%(fail)r):
    sys.exit(1)
env = {k: v for k, v in os.environ.items() if k.startswith("POLE_")}
env["_argv"] = sys.argv[1:]
line = (json.dumps(env, ensure_ascii=False) + "\n").encode("utf-8")
fd = os.open(%(log)r, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
try:
    os.write(fd, line)
finally:
    os.close(fd)
'''


class CommandReceiver:
    """The script at `path`; its records in `log`; `fail(True)` makes it
    exit 1 without recording (a program that fails for a while)."""

    def __init__(self, directory, name="pole-notify-cmd"):
        self.path = os.path.join(directory, name)
        self.log = os.path.join(directory, name + ".jsonl")
        self.fail_flag = os.path.join(directory, name + ".fail")
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(COMMAND_SCRIPT % {"python": PYTHON, "log": self.log,
                                      "fail": self.fail_flag})
        os.chmod(self.path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP
                 | stat.S_IROTH | stat.S_IXOTH)

    def fail(self, on):
        if on:
            open(self.fail_flag, "w").close()
        elif os.path.exists(self.fail_flag):
            os.unlink(self.fail_flag)

    def records(self):
        try:
            with open(self.log, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        out = []
        for line in data.decode("utf-8").splitlines():
            if line.strip():
                out.append(json.loads(line))
        return out

    def wait_for(self, predicate, timeout):
        end = time.monotonic() + timeout
        while True:
            value = predicate(self.records())
            if value or time.monotonic() > end:
                return value
            time.sleep(0.05)


def write_command_script(directory, name="pole-notify-cmd"):
    """Shortcut: a CommandReceiver in `directory`."""
    return CommandReceiver(directory, name)
