"""Durability and at-most-once under SIGKILL (PROTOCOL.md sections 7, 8).

Four raw DEALER clients and one polectl client each open a dossier and then
send `note` events, each with its own request id, as fast as they are
acknowledged. Meanwhile the test kills poled with SIGKILL at random moments
(5 rounds, 0.1-0.8 s apart) and restarts it on the same database. A client
that gets no reply within its timeout resends the same request with the same
request id until it is acknowledged.

At the end, for every dossier: each acknowledged request id appears exactly
once in the history (its `request_id`), no request id twice, nothing that was
not acknowledged, the versions and sequence numbers the replies gave match
the history, duplicate replies to one request id are identical byte for
byte; everything survives one more SIGKILL; poled stops cleanly (exit 0) and
`PRAGMA integrity_check` on the database says ok.

Set POLE_CRASH_SEED to replay a run's kill timing.
"""

import os
import random
import sqlite3
import threading
import time
import traceback
import unittest

import zmq

import polehelp
from polehelp import Poled, SIGNATURE, CTX

WORKERS = 4
# kill -9 rounds per run (POLE_CRASH_ROUNDS overrides); 20, as issue 7 asks
ROUNDS = int(os.environ.get("POLE_CRASH_ROUNDS", "20"))
TRY_TIMEOUT = 0.5           # seconds before a client resends
REQUEST_DEADLINE = 30.0     # a request not acknowledged by then: failure
PAYS = ["Brest", "Rennes", "Vannes", "Dinan", "Lorient"]


class DealerWorker(threading.Thread):
    """Sends OPEN, then EVENT note after note, over one DEALER socket."""

    def __init__(self, idx, endpoint, stop):
        super().__init__(name="dealer-%d" % idx, daemon=True)
        self.idx = idx
        self.endpoint = endpoint
        self.stop = stop
        self.actor = "worker%d" % idx
        self.pays = PAYS[idx]
        self.dossier = None
        self.acked = {}         # request id -> reply body (frames)
        self.order = []         # request ids in the order acknowledged
        self.sends = 0
        self.internal = 0
        self.errors = []
        self.opened = threading.Event()

    def run(self):
        sock = CTX.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        try:
            rid = "crash-w%d-open" % self.idx
            body = self.until_acked(sock, [
                SIGNATURE, b"OPEN", rid.encode(), self.actor.encode(),
                ("pays=" + self.pays).encode(), b"holder=Collectif",
                b"holder_type=ess_actor"])
            d, state, version, seq, warning = polehelp.ok_event_reply(body,
                                                                      rid)
            if (state, version) != ("draft", 1):
                raise AssertionError("open: %r" % (body,))
            self.dossier = d
            self.opened.set()
            n = 0
            while not self.stop.is_set():
                rid = "crash-w%d-%05d" % (self.idx, n)
                body = self.until_acked(sock, [
                    SIGNATURE, b"EVENT", rid.encode(), self.actor.encode(),
                    str(d).encode(), b"", b"note",
                    ("text=w%d n%d" % (self.idx, n)).encode()])
                d2, state, version, seq, warning = \
                    polehelp.ok_event_reply(body, rid)
                if (d2, state, version) != (d, "draft", n + 2):
                    raise AssertionError("note %d: expected dossier %d, "
                                         "draft, version %d; got %r"
                                         % (n, d, n + 2, body))
                n += 1
        except Exception:
            self.errors.append(traceback.format_exc())
        finally:
            self.opened.set()
            sock.close(0)

    def until_acked(self, sock, frames):
        rid = frames[2]
        deadline = time.monotonic() + REQUEST_DEADLINE
        while True:
            if time.monotonic() > deadline:
                raise AssertionError("request %r not acknowledged within "
                                     "%.0fs" % (rid, REQUEST_DEADLINE))
            sock.send_multipart([b""] + frames)
            self.sends += 1
            end = time.monotonic() + TRY_TIMEOUT
            while True:
                remaining = end - time.monotonic()
                if remaining <= 0 or not sock.poll(int(remaining * 1000) + 1,
                                                   zmq.POLLIN):
                    break                           # resend, same request id
                msg = sock.recv_multipart()
                if not msg or msg[0] != b"":
                    raise AssertionError("reply without delimiter: %r"
                                         % (msg,))
                body = msg[1:]
                if len(body) < 3 or body[0] != SIGNATURE:
                    raise AssertionError("malformed reply %r" % (body,))
                got = body[1]
                if got == rid:
                    if body[2] == b"ERROR" and body[3:4] == [b"INTERNAL"]:
                        self.internal += 1
                        break                       # nothing applied: retry
                    if body[2] != b"OK":
                        raise AssertionError("request %r answered %r"
                                             % (rid, body))
                    self.acked[rid.decode()] = body
                    self.order.append(rid.decode())
                    return body
                if got.decode() in self.acked:
                    # a late reply to a request resent earlier: it must be
                    # the first outcome, byte for byte
                    if body != self.acked[got.decode()]:
                        raise AssertionError(
                            "two different replies to request id %r: %r "
                            "then %r" % (got, self.acked[got.decode()], body))
                    continue
                raise AssertionError("reply to a request id never sent on "
                                     "this socket: %r" % (body,))


class CtlWorker(threading.Thread):
    """The same with polectl --request-id (its own retries, then ours)."""

    def __init__(self, idx, endpoint, stop):
        super().__init__(name="polectl-%d" % idx, daemon=True)
        self.idx = idx
        self.endpoint = endpoint
        self.stop = stop
        self.pays = PAYS[idx]
        self.dossier = None
        self.acked = {}
        self.order = []
        self.sends = 0
        self.internal = 0
        self.errors = []
        self.opened = threading.Event()

    def ctl(self, rid, *args):
        deadline = time.monotonic() + REQUEST_DEADLINE
        while True:
            if time.monotonic() > deadline:
                raise AssertionError("polectl request %r not acknowledged "
                                     "within %.0fs" % (rid, REQUEST_DEADLINE))
            self.sends += 1
            rc, out, err = polehelp.ctl("--request-id", rid, *args,
                                        endpoint=self.endpoint,
                                        timeout=TRY_TIMEOUT, retries=2,
                                        actor="ctlworker", check=False)
            if rc == 0:
                self.acked[rid] = out
                self.order.append(rid)
                return out
            if rc == 5 or (rc == 6 and "INTERNAL" in err):
                if rc == 6:
                    self.internal += 1
                continue                            # same request id again
            raise AssertionError("polectl %r: exit %d, stderr %r"
                                 % (args, rc, err))

    def run(self):
        try:
            out = self.ctl("crash-ctl-open", "open", "--pays", self.pays,
                           "--holder", "Collectif", "--holder-type", "pays")
            self.dossier = int(out)
            self.opened.set()
            n = 0
            while not self.stop.is_set():
                out = self.ctl("crash-ctl-%05d" % n, "send", self.dossier,
                               "note", "text=c n%d" % n)
                if out != "draft\n":
                    raise AssertionError("polectl send printed %r" % out)
                n += 1
        except Exception:
            self.errors.append(traceback.format_exc())
        finally:
            self.opened.set()


class TestCrash(unittest.TestCase):

    def test_sigkill_under_load(self):
        seed = int(os.environ.get("POLE_CRASH_SEED", time.time_ns() % 10**9))
        rng = random.Random(seed)
        where = "(POLE_CRASH_SEED=%d)" % seed
        started = time.monotonic()

        poled = Poled()
        self.addCleanup(poled.close)
        stop = threading.Event()
        workers = [DealerWorker(i, poled.endpoint, stop)
                   for i in range(WORKERS)]
        workers.append(CtlWorker(WORKERS, poled.endpoint, stop))
        for w in workers:
            w.start()

        def fail_fast():
            for w in workers:
                if w.errors:
                    stop.set()
                    self.fail("%s %s failed:\n%s\npoled log:\n%s"
                              % (where, w.name, w.errors[0], poled.log()))

        def wait_progress(minimum, deadline):
            """Bounded poll: every worker has `minimum` acks (or failed)."""
            end = time.monotonic() + deadline
            while time.monotonic() < end:
                fail_fast()
                if all(len(w.acked) >= m for w, m in zip(workers, minimum)):
                    return
                time.sleep(0.02)        # polling interval, not a sync point
            self.fail("%s no progress: acks %r, wanted %r; poled log:\n%s"
                      % (where, [len(w.acked) for w in workers], minimum,
                         poled.log()))

        try:
            for w in workers:
                self.assertTrue(w.opened.wait(20), w.name)
            wait_progress([2] * len(workers), 20)
            for _ in range(ROUNDS):
                time.sleep(rng.uniform(0.1, 0.8))   # the crash moment
                fail_fast()
                poled.kill()
                poled.start()
            # everybody is acknowledged again after the last restart
            wait_progress([len(w.acked) + 3 for w in workers], 30)
        finally:
            stop.set()
            for w in workers:
                w.join(REQUEST_DEADLINE + 10)
        for w in workers:
            self.assertFalse(w.is_alive(), "%s %s hangs" % (where, w.name))
        fail_fast()

        # --- every acknowledged request exactly once, nothing else -------
        all_seqs = {}
        histories = {}
        for w in workers:
            h = poled.history(w.dossier)
            histories[w.dossier] = h
            rids = [e["request_id"] for e in h]
            self.assertEqual(len(rids), len(set(rids)),
                             "%s %s: a request id twice in the history"
                             % (where, w.name))
            self.assertEqual(set(rids), set(w.acked),
                             "%s %s: history and acknowledged request ids "
                             "differ: only in history %r, only acked %r"
                             % (where, w.name, set(rids) - set(w.acked),
                                set(w.acked) - set(rids)))
            self.assertEqual(rids, w.order, "%s %s: history order"
                             % (where, w.name))
            shown = poled.show(w.dossier)
            self.assertEqual(shown["version"], len(h), where)
            self.assertEqual(shown["state"], "draft")
            self.assertEqual(h[0]["event"], "open")
            self.assertIsNone(h[0]["from"])
            for i, e in enumerate(h[1:]):
                self.assertEqual(e["event"], "note")
                self.assertTrue(e["text"].endswith(" n%d" % i), e)
            for version, e in enumerate(h, start=1):
                self.assertNotIn(e["seq"], all_seqs, "%s seq reused" % where)
                all_seqs[e["seq"]] = e["request_id"]
                body = w.acked[e["request_id"]]
                if isinstance(body, list):      # raw replies carry numbers
                    self.assertEqual(int(body[5]), version, where)
                    self.assertEqual(int(body[6]), e["seq"], where)
        listed = poled.query(b"LIST")
        self.assertEqual(sorted(x["id"] for x in listed),
                         sorted(w.dossier for w in workers),
                         "%s one dossier per client, OPEN applied once"
                         % where)

        # --- durable: one more crash changes nothing ----------------------
        poled.kill()
        poled.start()
        for d, h in histories.items():
            self.assertEqual(poled.history(d), h, where)

        # --- clean stop, then the database is sound -----------------------
        self.assertEqual(poled.stop(), 0, "%s SIGTERM: exit 0; log:\n%s"
                         % (where, poled.log()))
        con = sqlite3.connect(poled.database)
        try:
            self.assertEqual(con.execute("PRAGMA integrity_check").fetchall(),
                             [("ok",)], where)
        finally:
            con.close()

        total = sum(len(w.acked) for w in workers)
        elapsed = time.monotonic() - started
        print("\ncrash test %s: %d kills, %d requests acknowledged, %d sends,"
              " %d INTERNAL, %.1fs" % (where, ROUNDS + 1, total,
                                       sum(w.sends for w in workers),
                                       sum(w.internal for w in workers),
                                       elapsed))
        self.assertGreater(total, len(workers) * 5, "the load was real")


if __name__ == "__main__":
    unittest.main()
