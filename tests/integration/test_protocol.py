"""POLE/1 on raw ZeroMQ sockets (proto/PROTOCOL.md).

REQ and DEALER clients, the reply envelope, every kind of malformed request
answered with the right ERROR code while the daemon keeps serving, frames
above max_message_size dropped without stopping the daemon, idempotency of
OPEN and EVENT (also across a restart), CONFLICT on a reused request id,
and several requests in flight on one DEALER. And the other way: polectl's
reads against a server of the test's own, whose replies it chooses.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import zmq

from polehelp import (Poled, Client, SIGNATURE, error_reply, ok_event_reply,
                      new_request_id, raw_request, raw_frames, ctl, POLECTL)


def b(s):
    return s.encode("utf-8") if isinstance(s, str) else s


class ProtocolTestCase(unittest.TestCase):
    poled_kwargs = {}

    @classmethod
    def setUpClass(cls):
        cls.poled = Poled(**cls.poled_kwargs)
        # runs even if the rest of a subclass's setUpClass fails
        cls.addClassCleanup(cls.poled.close)

    @classmethod
    def tearDownClass(cls):
        rc = cls.poled.stop()
        log = cls.poled.log()
        cls.poled.close()
        if rc != 0:
            raise AssertionError("poled exited %s on SIGTERM; log:\n%s"
                                 % (rc, log))

    def req(self, *frames, kind=zmq.REQ, timeout=5.0):
        return raw_request(self.poled.endpoint, frames, kind=kind,
                           timeout=timeout)

    def assert_serving(self):
        self.assertTrue(self.poled.running(), "poled died; log:\n%s"
                        % self.poled.log())
        rid = new_request_id("alive")
        reply = self.req(SIGNATURE, "PING", rid, timeout=5)
        self.assertIsNotNone(reply, "poled stopped answering")
        self.assertEqual(reply[:3], [SIGNATURE, b(rid), b"OK"])

    def assert_error(self, reply, code, rid=None, rule=None):
        got_rid, got_code, message, got_rule = error_reply(reply)
        self.assertEqual(got_code, code, "reply %r" % (reply,))
        self.assertNotEqual(message, "", "an error says why")
        if rid is not None:
            self.assertEqual(got_rid, rid)
        if rule is not None:
            self.assertEqual(got_rule, rule)
        elif code != "REFUSED":
            self.assertEqual(got_rule, "", "rule only on REFUSED")
        return message

    def open(self, pays, rid=None, actor="alice", kind=zmq.REQ):
        rid = rid or new_request_id("open")
        reply = self.req(SIGNATURE, "OPEN", rid, actor, "pays=" + pays,
                         "holder=Collectif", "holder_type=ess_actor",
                         kind=kind)
        dossier, state, version, seq, warning = ok_event_reply(reply, rid)
        self.assertEqual((state, version, warning), ("draft", 1, ""))
        return dossier

    def event(self, dossier, name, *fields, rid=None, actor="alice",
              expected=""):
        rid = rid or new_request_id("ev")
        return self.req(SIGNATURE, "EVENT", rid, actor, str(dossier),
                        str(expected), name, *fields)


class TestBasics(ProtocolTestCase):

    def test_req_ping(self):
        reply = self.req(SIGNATURE, "PING", "r-1")
        self.assertEqual(len(reply), 4, reply)
        self.assertEqual(reply[:3], [SIGNATURE, b"r-1", b"OK"])
        self.assertRegex(reply[3].decode(), r"^poled \d+\.\d+\.\d+")

    def test_dealer_ping(self):
        reply = self.req(SIGNATURE, "PING", "d-1", kind=zmq.DEALER)
        self.assertEqual(reply[:3], [SIGNATURE, b"d-1", b"OK"])

    def test_open_event_show_history_over_dealer(self):
        with Client(self.poled.endpoint) as c:
            reply = c.request(SIGNATURE, "OPEN", "o-1", "alice",
                              "pays=dinan", "holder=Pays de Dinan",
                              "holder_type=pays")
            d, state, version, seq, warning = ok_event_reply(reply, "o-1")
            self.assertEqual((state, version, warning), ("draft", 1, ""))
            reply = c.request(SIGNATURE, "EVENT", "o-2", "alice", str(d),
                              "1", "request_study", "amount=20000")
            d2, state, version, seq2, warning = ok_event_reply(reply, "o-2")
            self.assertEqual((d2, state, version), (d, "study_requested", 2))
            self.assertGreater(seq2, seq)
            # PROTOCOL.md section 10: grant above the cap
            reply = c.request(SIGNATURE, "EVENT", "o-3", "region", str(d),
                              "", "grant_study", "amount=30000")
            self.assert_error(reply, "REFUSED", rid="o-3", rule="study_cap")
            reply = c.request(SIGNATURE, "SHOW", "o-4", str(d))
            self.assertEqual(reply[:3], [SIGNATURE, b"o-4", b"OK"])
            self.assertEqual(len(reply), 4)
            shown = json.loads(reply[3])
            self.assertEqual((shown["id"], shown["pays"], shown["state"],
                              shown["version"], shown["study_asked"]),
                             (d, "Dinan", "study_requested", 2, 20000))
            reply = c.request(SIGNATURE, "HISTORY", "o-5", str(d))
            hist = json.loads(reply[3])
            self.assertEqual([(e["event"], e["request_id"], e["seq"])
                              for e in hist],
                             [("open", "o-1", seq),
                              ("request_study", "o-2", seq2)])
            reply = c.request(SIGNATURE, "LIST", "o-6", "pays=DINAN")
            self.assertEqual([x["id"] for x in json.loads(reply[3])], [d])
            reply = c.request(SIGNATURE, "REPORT", "o-7")
            self.assertIn("by_state", json.loads(reply[3]))

    def test_errors_with_codes(self):
        d = self.open("Morlaix")
        self.assert_error(self.req(SIGNATURE, "SHOW", "nf-1", "9999999"),
                          "NOT_FOUND", rid="nf-1")
        self.assert_error(self.req(SIGNATURE, "HISTORY", "nf-2", "9999999"),
                          "NOT_FOUND", rid="nf-2")
        self.assert_error(self.event(9999999, "note", "text=x", rid="nf-3"),
                          "NOT_FOUND", rid="nf-3")
        self.assert_error(self.event(d, "note", "text=x", rid="cf-1",
                                     expected="7"), "CONFLICT", rid="cf-1")
        self.assert_error(self.event(d, "grant_study", "amount=100",
                                     rid="rf-1"),
                          "REFUSED", rid="rf-1", rule="transition")
        self.assert_error(self.event(d, "frobnicate", rid="rf-2"),
                          "REFUSED", rid="rf-2", rule="unknown_event")
        self.assert_error(self.event(d, "note", "text=x", "colour=blue",
                                     rid="rf-3"),
                          "REFUSED", rid="rf-3", rule="fields")
        reply = self.req(SIGNATURE, "OPEN", "rf-4", "alice",
                         "pays=Morlaix", "holder=X", "holder_type=pays")
        self.assert_error(reply, "REFUSED", rid="rf-4", rule="live_per_pays")
        reply = self.req(SIGNATURE, "OPEN", "rf-5", "alice", "pays=Paris",
                         "holder=X", "holder_type=pays")
        self.assert_error(reply, "REFUSED", rid="rf-5", rule="pays")
        reply = self.req(SIGNATURE, "OPEN", "rf-6", "alice",
                         "pays=Guingamp", "holder=X", "holder_type=banana")
        self.assert_error(reply, "REFUSED", rid="rf-6", rule="holder_type")
        self.assertEqual(self.poled.show(d)["version"], 1)

    def test_two_endpoints(self):
        with Poled(transport="both") as p:
            for ep in p.endpoints:
                self.assertTrue(ep.startswith(("ipc://", "tcp://127.0.0.1:")))
                reply = raw_request(ep, [SIGNATURE, "PING", "two"])
                self.assertEqual(reply[:3], [SIGNATURE, b"two", b"OK"])
                rc, out, err = p.ctl("ping", endpoint=ep)
                self.assertRegex(out, r"^poled \d")
            rc, out, err = p.ctl("open", "--pays", "Brest", "--holder", "X",
                                 "--holder-type", "pays",
                                 endpoint=p.tcp_endpoint)
            shown = json.loads(raw_request(p.ipc_endpoint, [
                SIGNATURE, "SHOW", "two-show", out.strip()])[3])
            self.assertEqual(shown["pays"], "Brest")
            self.assertEqual(p.stop(), 0)


class TestMalformed(ProtocolTestCase):
    """Each malformed request gets its ERROR and poled keeps serving."""

    def check(self, frames, code, rid=None, kind=zmq.REQ):
        reply = self.req(*frames, kind=kind)
        self.assertIsNotNone(reply, "no reply to %r" % (frames,))
        msg = self.assert_error(reply, code, rid=rid)
        self.assert_serving()
        return msg

    def test_wrong_signature(self):
        self.check([b"POLE/2", b"PING", b"sig-1"], "UNSUPPORTED_VERSION")
        self.check([b"HTTP/1.1", b"GET /"], "UNSUPPORTED_VERSION")
        self.check([b"pole/1", b"PING", b"sig-2"], "UNSUPPORTED_VERSION",
                   kind=zmq.DEALER)

    def test_unknown_command(self):
        self.check([SIGNATURE, b"FROB", b"uc-1"], "UNKNOWN_COMMAND")
        self.check([SIGNATURE, b"ping", b"uc-2"], "UNKNOWN_COMMAND")

    def test_missing_frames(self):
        self.check([SIGNATURE], "BAD_REQUEST")
        self.check([SIGNATURE, b"PING"], "BAD_REQUEST")
        self.check([SIGNATURE, b"EVENT", b"mf-1", b"alice", b"1"],
                   "BAD_REQUEST", rid="mf-1")
        self.check([SIGNATURE, b"SHOW", b"mf-2"], "BAD_REQUEST", rid="mf-2")
        self.check([SIGNATURE, b"OPEN", b"mf-3"], "BAD_REQUEST", rid="mf-3")

    def test_bad_utf8_and_nul(self):
        self.check([SIGNATURE, b"OPEN", b"u-1", b"al\xffice", b"pays=Brest",
                    b"holder=X", b"holder_type=pays"], "BAD_REQUEST",
                   rid="u-1")
        self.check([SIGNATURE, b"OPEN", b"u-2", b"alice", b"pays=Brest",
                    b"holder=\xc3\x28", b"holder_type=pays"], "BAD_REQUEST",
                   rid="u-2")
        self.check([SIGNATURE, b"OPEN", b"u-3", b"alice", b"pays=Brest",
                    b"holder=a\x00b", b"holder_type=pays"], "BAD_REQUEST",
                   rid="u-3")
        self.check([SIGNATURE, b"PING", b"u-\xe9"], "BAD_REQUEST")
        self.assertEqual(self.poled.query(b"LIST", b"pays=Brest"), [])

    def test_bad_numbers(self):
        for bad in (b"abc", b"0", b"-1", b"+1", b"01", b" 1", b"1.0", b"",
                    b"9223372036854775808", b"99999999999999999999"):
            self.check([SIGNATURE, b"SHOW", b"n-1", bad], "BAD_REQUEST",
                       rid="n-1")
        reply = self.req(SIGNATURE, "SHOW", "n-2", "9223372036854775807")
        self.assert_error(reply, "NOT_FOUND", rid="n-2")
        for bad in (b"abc", b"-1", b"+2", b" 2"):
            self.check([SIGNATURE, b"EVENT", b"n-3", b"alice", b"1", bad,
                        b"note", b"text=x"], "BAD_REQUEST", rid="n-3")

    def test_grammar(self):
        ok = [SIGNATURE, b"OPEN", None, b"alice", b"pays=Saint-Brieuc",
              b"holder=X", b"holder_type=pays"]

        def with_(i, frame, rid=b"g-1"):
            f = list(ok)
            f[2] = rid
            f[i] = frame
            return f
        self.check(with_(4, b"pays=Brest\x00"), "BAD_REQUEST", rid="g-1")
        self.check(with_(4, b"Pays=Brest"), "BAD_REQUEST", rid="g-1")
        self.check(with_(4, b"paysBrest"), "BAD_REQUEST", rid="g-1")
        self.check(with_(4, b"=Brest"), "BAD_REQUEST", rid="g-1")
        self.check(with_(4, b"k" * 65 + b"=x"), "BAD_REQUEST", rid="g-1")
        self.check(with_(3, b"a" * 65), "BAD_REQUEST", rid="g-1")
        self.check(with_(3, b""), "BAD_REQUEST", rid="g-1")
        self.check(with_(5, b"pays=Brest"), "BAD_REQUEST", rid="g-1")  # dup
        self.check(with_(2, b"has space", rid=b"has space"), "BAD_REQUEST")
        self.check(with_(2, b"r" * 65, rid=b"r" * 65), "BAD_REQUEST")
        self.check(with_(2, b"", rid=b""), "BAD_REQUEST")
        self.check([SIGNATURE, b"EVENT", b"g-2", b"alice", b"1", b"",
                    b"Note", b"text=x"], "BAD_REQUEST", rid="g-2")
        self.check([SIGNATURE, b"EVENT", b"g-3", b"alice", b"1", b"",
                    b"x" * 33, b"text=x"], "BAD_REQUEST", rid="g-3")
        self.check([SIGNATURE, b"LIST", b"g-4", b"state=bogus"],
                   "BAD_REQUEST", rid="g-4")
        self.check([SIGNATURE, b"LIST", b"g-5", b"pays=Paris"],
                   "BAD_REQUEST", rid="g-5")
        self.check([SIGNATURE, b"LIST", b"g-6", b"colour=red"],
                   "BAD_REQUEST", rid="g-6")
        self.check([SIGNATURE, b"LIST", b"g-7", b"state=draft",
                    b"state=closed"], "BAD_REQUEST", rid="g-7")
        self.check([SIGNATURE, b"PING", b"g-8", b"extra"], "BAD_REQUEST",
                   rid="g-8")
        self.check([SIGNATURE, b"SHOW", b"g-9", b"1", b"extra"],
                   "BAD_REQUEST", rid="g-9")
        # nothing of it was applied
        self.assertEqual(self.poled.query(b"LIST", b"pays=Saint-Brieuc"), [])

    def test_value_limit(self):
        d = self.open("Cornouaille")
        reply = self.event(d, "note", "text=" + "v" * 16385, rid="vl-1")
        self.assert_error(reply, "BAD_REQUEST", rid="vl-1")
        self.assert_serving()
        reply = self.event(d, "note", "text=" + "v" * 16384, rid="vl-2")
        self.assertEqual(ok_event_reply(reply, "vl-2")[2], 2)

    def test_too_many_frames(self):
        # 64 frames after the envelope are allowed, 65 are not
        base = [SIGNATURE, b"OPEN", b"tm-1", b"alice", b"pays=Lorient",
                b"holder=X", b"holder_type=pays"]
        extra = [b"k%d=v" % i for i in range(65 - len(base))]
        self.assertEqual(len(base + extra), 65)
        self.check(base + extra, "BAD_REQUEST", rid="tm-1")
        # 64 frames: the grammar holds; the unknown keys are a refusal
        reply = self.req(*(base[:2] + [b"tm-2"] + base[3:] + extra[:-1]))
        self.assert_error(reply, "REFUSED", rid="tm-2", rule="fields")
        self.check([SIGNATURE, b"PING", b"tm-3"] + [b"x"] * 200,
                   "BAD_REQUEST", rid="tm-3")
        self.assertEqual(self.poled.query(b"LIST", b"pays=Lorient"), [])

    def test_dealer_without_delimiter(self):
        reply = raw_frames(self.poled.endpoint, [SIGNATURE, b"PING", b"nd-1"])
        self.assertIsNotNone(reply, "a message without delimiter is "
                             "answered")
        self.assertEqual(reply[0], b"", "the reply has the delimiter")
        self.assertEqual(error_reply(reply[1:])[:2], ("", "BAD_REQUEST"))
        self.assert_serving()
        reply = raw_frames(self.poled.endpoint, [b"just one frame"])
        self.assertIsNotNone(reply)
        self.assertEqual(error_reply(reply[1:])[:2], ("", "BAD_REQUEST"))
        self.assert_serving()

    def test_dealer_empty_body(self):
        reply = raw_frames(self.poled.endpoint, [b""])
        self.assertIsNotNone(reply, "an empty body is answered")
        self.assertEqual(reply[0], b"")
        code = error_reply(reply[1:])[1]
        self.assertIn(code, ("BAD_REQUEST", "UNSUPPORTED_VERSION"))
        self.assert_serving()

    def test_oversized_frame(self):
        # default max_message_size: 65536 bytes per frame
        with Client(self.poled.endpoint) as big:
            big.send(SIGNATURE, "PING", "big-1", b"x" * 70000)
            with Client(self.poled.endpoint) as other:
                reply = other.request(SIGNATURE, "PING", "other-1")
                self.assertEqual(reply[:3], [SIGNATURE, b"other-1", b"OK"])
            self.assertIsNone(big.recv(timeout=1.5),
                              "a frame above max_message_size gets no reply")
        self.assert_serving()
        d = self.open("Dinan")
        self.assertEqual(self.poled.show(d)["state"], "draft")


class TestMaxMessageSizeConfig(ProtocolTestCase):
    poled_kwargs = {"max_message_size": 2048}

    def test_configured_limit(self):
        d = self.open("Vannes")
        reply = self.event(d, "note", "text=" + "a" * 1500, rid="ms-1")
        self.assertEqual(ok_event_reply(reply, "ms-1")[2], 2)
        with Client(self.poled.endpoint) as big:
            big.send(SIGNATURE, "EVENT", "ms-2", "alice", str(d), "", "note",
                     "text=" + "a" * 3000)
            self.assertIsNone(big.recv(timeout=1.5))
        self.assert_serving()
        self.assertEqual(self.poled.show(d)["version"], 2,
                         "the dropped event was not applied")


class TestIdempotency(ProtocolTestCase):

    def test_open_and_event_resent(self):
        open_frames = [SIGNATURE, b"OPEN", b"idem-open", b"alice",
                       b"pays=Rennes", b"holder=R\xc3\xa9so solidaire",
                       b"holder_type=ess_actor"]
        first = self.req(*open_frames)
        d, state, version, seq, warning = ok_event_reply(first, "idem-open")
        for kind in (zmq.REQ, zmq.DEALER):
            self.assertEqual(self.req(*open_frames, kind=kind), first,
                             "the first outcome, byte for byte")
        self.assertEqual(len(self.poled.query(b"LIST", b"pays=Rennes")), 1)

        ev = [SIGNATURE, b"EVENT", b"idem-ev", b"alice", str(d).encode(),
              b"1", b"request_study", b"amount=15000"]
        first_ev = self.req(*ev)
        self.assertEqual(ok_event_reply(first_ev, "idem-ev")[1:3],
                         ("study_requested", 2))
        # resent: the same frames, even though the expected version (1) is
        # stale now and the event would no longer be allowed
        for _ in range(3):
            self.assertEqual(self.req(*ev), first_ev)
        self.assertEqual(self.poled.show(d)["version"], 2)
        hist = self.poled.history(d)
        self.assertEqual([e["request_id"] for e in hist],
                         ["idem-open", "idem-ev"])

        # a recorded refusal is returned again, even once it would pass
        refused = self.event(d, "deliver_study", "diagnosis=d",
                             "priority_actions=p", "governance=g",
                             rid="idem-refused")
        self.assert_error(refused, "REFUSED", rid="idem-refused",
                          rule="transition")
        self.assertEqual(ok_event_reply(self.event(
            d, "grant_study", "amount=15000", actor="region"))[1],
            "study_funded")
        again = self.event(d, "deliver_study", "diagnosis=d",
                           "priority_actions=p", "governance=g",
                           rid="idem-refused")
        self.assertEqual(again, refused)
        self.assertEqual(self.poled.show(d)["state"], "study_funded")

        # a recorded version conflict too
        conflict = self.event(d, "note", "text=x", rid="idem-conflict",
                              expected="1")
        self.assert_error(conflict, "CONFLICT", rid="idem-conflict")
        self.assertEqual(self.event(d, "note", "text=x", rid="idem-conflict",
                                    expected="1"), conflict)
        self.assertEqual(self.poled.show(d)["version"], 3)

        # ... and across a restart (SIGTERM, exit 0, same database)
        self.assertEqual(self.poled.restart(clean=True), 0)
        self.assertEqual(self.req(*open_frames), first)
        self.assertEqual(self.req(*ev), first_ev)
        self.assertEqual(self.event(d, "deliver_study", "diagnosis=d",
                                    "priority_actions=p", "governance=g",
                                    rid="idem-refused"), refused)
        # ... and across a crash (SIGKILL)
        self.poled.restart(clean=False)
        self.assertEqual(self.req(*ev, kind=zmq.DEALER), first_ev)
        self.assertEqual(self.req(*open_frames), first)
        self.assertEqual(self.poled.show(d)["version"], 3)
        self.assertEqual(len(self.poled.query(b"LIST", b"pays=Rennes")), 1)

    def test_same_request_id_different_request(self):
        d = self.open("Auray", rid="dif-open")
        base = self.event(d, "note", "text=premier", rid="dif-1")
        self.assertEqual(ok_event_reply(base, "dif-1")[2], 2)
        variants = [
            self.event(d, "note", "text=second", rid="dif-1"),       # fields
            self.event(d, "note", "text=premier", rid="dif-1",
                       actor="bob"),                                 # actor
            self.event(d, "legitimate_holder", rid="dif-1"),         # event
            self.req(SIGNATURE, "OPEN", "dif-1", "alice", "pays=Pontivy",
                     "holder=X", "holder_type=pays"),               # command
            self.req(SIGNATURE, "OPEN", "dif-open", "alice", "pays=Pontivy",
                     "holder=X", "holder_type=pays"),               # fields
        ]
        d2 = self.open("Guingamp")
        variants.append(self.event(d2, "note", "text=premier",
                                   rid="dif-1"))                    # dossier
        for v in variants:
            self.assert_error(v, "CONFLICT")
        self.assertEqual(self.poled.show(d)["version"], 2)
        self.assertEqual(self.poled.show(d2)["version"], 1)
        self.assertEqual(self.poled.query(b"LIST", b"pays=Pontivy"), [])
        # and the original still gets its first outcome
        self.assertEqual(self.event(d, "note", "text=premier", rid="dif-1"),
                         base)

    def test_duplicates_in_one_batch(self):
        # poled stopped (SIGSTOP) while one DEALER queues the same request
        # three times then the same request id with another body: when it
        # runs again it reads them together (group commit). The three get
        # the same OK, applied once; the fourth gets CONFLICT.
        d = self.open("Lorient")
        with Client(self.poled.endpoint) as c:
            self.assertEqual(c.request(SIGNATURE, "PING", "sb-0")[2], b"OK")
            same = (SIGNATURE, "EVENT", "sb-1", "alice", str(d), "",
                    "request_study", "amount=9000")
            self.poled.proc.send_signal(signal.SIGSTOP)
            try:
                for _ in range(3):
                    c.send(*same)
                c.send(SIGNATURE, "EVENT", "sb-1", "alice", str(d), "",
                       "request_study", "amount=9500")
            finally:
                self.poled.proc.send_signal(signal.SIGCONT)
            replies = [c.recv(timeout=10) for _ in range(4)]
        self.assertNotIn(None, replies)
        first = replies[0]
        self.assertEqual(ok_event_reply(first, "sb-1")[1:3],
                         ("study_requested", 2))
        self.assertEqual(replies[1], first)
        self.assertEqual(replies[2], first)
        self.assert_error(replies[3], "CONFLICT", rid="sb-1")
        shown = self.poled.show(d)
        self.assertEqual((shown["version"], shown["study_asked"]), (2, 9000))

    def test_bad_request_not_recorded(self):
        d = self.open("Fougères")
        bad = self.req(SIGNATURE, "EVENT", "nr-1", "alice", str(d), "x",
                       "note", "text=x")
        self.assert_error(bad, "BAD_REQUEST", rid="nr-1")
        good = self.event(d, "note", "text=x", rid="nr-1")
        self.assertEqual(ok_event_reply(good, "nr-1")[2], 2)

    def test_dealer_requests_in_flight(self):
        d = self.open("Saint-Malo")
        with Client(self.poled.endpoint) as c:
            sent = {}
            sent["f-ping"] = ("PING",)
            sent["f-report"] = ("REPORT",)
            for i in range(8):
                sent["f-note-%d" % i] = ("EVENT", "alice", str(d), "",
                                         "note", "text=note %d" % i)
            sent["f-list"] = ("LIST", "pays=saint malo")
            sent["f-missing"] = ("SHOW", "99999999")
            sent["f-bad"] = ("SHOW", "abc")
            for rid, rest in sent.items():
                c.send(SIGNATURE, rest[0], rid, *rest[1:])
            replies = {}
            deadline = time.monotonic() + 10
            while len(replies) < len(sent) and time.monotonic() < deadline:
                r = c.recv(timeout=max(0.0, deadline - time.monotonic()))
                if r is None:
                    break
                self.assertEqual(r[0], SIGNATURE)
                rid = r[1].decode()
                self.assertIn(rid, sent)
                self.assertNotIn(rid, replies, "one reply per request")
                replies[rid] = r
        self.assertEqual(set(replies), set(sent))
        self.assertEqual(replies["f-ping"][2], b"OK")
        self.assertIn("by_state", json.loads(replies["f-report"][3]))
        versions = sorted(ok_event_reply(replies["f-note-%d" % i],
                                         "f-note-%d" % i)[2]
                          for i in range(8))
        self.assertEqual(versions, list(range(2, 10)))
        self.assert_error(replies["f-missing"], "NOT_FOUND", rid="f-missing")
        self.assert_error(replies["f-bad"], "BAD_REQUEST", rid="f-bad")
        listed = json.loads(replies["f-list"][3])
        self.assertEqual([x["id"] for x in listed], [d])
        self.assertEqual(self.poled.show(d)["version"], 9)


class TestIdempotencyBatchOfOne(TestIdempotency):
    """The same, with one request per commit (daemon.batch_max = 1)."""
    poled_kwargs = {"batch_max": 1}


class TestPolectlReadsAReply(unittest.TestCase):
    """polectl's reads keep the payload as received (pole_reply_take): a
    server of our own on loopback ipc, whose replies each test chooses,
    checks that what reaches stdout is the payload byte for byte, and that
    a reply without payload, with bytes that are not UTF-8, with a NUL or
    with text that is not JSON is still called malformed (exit 6)."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pole-fake-")
        self.endpoint = "ipc://%s/s" % self.dir
        self.payload = []
        self.ctx = zmq.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.bind(self.endpoint)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve)
        self.thread.start()

    def tearDown(self):
        self.stop.set()
        self.thread.join()
        self.router.close(0)
        self.ctx.term()
        shutil.rmtree(self.dir, ignore_errors=True)

    def serve(self):
        while not self.stop.is_set():
            if not self.router.poll(50):
                continue
            frames = self.router.recv_multipart()
            # identity, "", POLE/1, command, request id, ...
            self.router.send_multipart(frames[:2] + [SIGNATURE, frames[4], b"OK"]
                                       + self.payload)

    def read(self, *args):
        return ctl(*args, endpoint=self.endpoint, check=False, timeout=5,
                   retries=0)

    def raw_read(self, *args):
        return subprocess.run([POLECTL, "-e", self.endpoint, "-t", "5",
                               "-r", "0"] + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=30)

    def test_payload_printed_as_received(self):
        # Over a word of ASCII at a time, multi-byte characters at odd
        # places, and long: the bytes must come out as they went in
        doc = [{"id": n, "pays": "Trégor-Goëlo", "title": "Pôle n°%d" % n,
                "holder": "x" * (n % 13)} for n in range(2000)]
        body = json.dumps(doc, ensure_ascii=False,
                          separators=(",", ":")).encode()
        self.payload = [body]
        for args in (["list", "--json"], ["list", "--pays", "Rennes", "--json"],
                     ["show", "7", "--json"], ["history", "7", "--json"]):
            p = self.raw_read(*args)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, body + b"\n", args)
        # Read by people: parsed from the same bytes
        p = self.raw_read("list")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.decode().splitlines()
        self.assertEqual(len(lines), 2000, lines[:3])
        self.assertEqual(lines[-1].split(), ["1999", "-", "Trégor-Goëlo",
                                             "x" * (1999 % 13)])

    def test_malformed_payloads(self):
        cases = [
            ([], "no payload frame"),
            ([b"[1,2,\xff]"], "not valid UTF-8"),
            ([b"[1,\x002]"], "not valid UTF-8 or contains NUL"),
            ([b"[1,2," + "é".encode() * 10 + b"\xc3"], "not valid UTF-8"),
        ]
        for payload, message in cases:
            self.payload = payload
            for args in (["list", "--json"], ["list"], ["status"],
                         ["agenda", "--json"]):
                code, out, err = self.read(*args)
                self.assertEqual(code, 6, (payload, args, out, err))
                self.assertIn("malformed reply", err, (payload, args))
                self.assertIn(message, err, (payload, args))
                self.assertEqual(out, "", (payload, args))
        # Not JSON: said when polectl parses it; with --json it goes out
        # as received (docs/CLI.md: whatever reads the output parses it)
        self.payload = [b"{not json"]
        code, out, err = self.read("list")
        self.assertEqual(code, 6, err)
        self.assertIn("payload is not JSON", err)
        code, out, err = self.read("list", "--json")
        self.assertEqual((code, out), (0, "{not json\n"), err)


if __name__ == "__main__":
    unittest.main()
