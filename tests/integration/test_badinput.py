"""A corpus of malformed and hostile POLE/1 requests (proto/PROTOCOL.md).

test_protocol.py checks one or two of each kind of malformed request; this
file sends a larger corpus (more than 50 requests) on raw REQ and DEALER
sockets, each with the reply PROTOCOL.md gives it (section 6: the error code,
the request id echoed when it is readable, the `rule` for a refusal and an
empty rule otherwise), and after each one checks that a PING is still
answered:

* the version signature: truncated, with a NUL or a space, POLE/10, empty,
  not UTF-8, an empty body (UNSUPPORTED_VERSION);
* the command frame: unknown, empty, truncated, with NUL, not UTF-8, with
  SQL in it (UNKNOWN_COMMAND);
* truncated requests (frames missing at the end of EVENT, HISTORY, RETRY,
  CLOCK, AGENDA), empty frames in every position;
* text that is not UTF-8 (overlong, surrogate, above U+10FFFF, cut in the
  middle of a character) in fields, filters, event names, actors;
* missing and empty fields, amounts out of range or badly written (0, -1,
  1e12, 1000000000000, "20 000", "20000.00", +20000, 020000, " 20000"),
  unknown events, calendar-only events;
* limits at their boundary: 64/65 frames, keys of 32/33 bytes, request ids
  and actors of 64/65 bytes, holders and titles of 255/256 bytes, a frame of
  exactly max_message_size (answered) and one byte more or a megabyte (no
  reply, dropped by libzmq, poled still serving);
* duplicate keys in EVENT, OPEN, OUTBOX, REPORT;
* a DEALER without the empty delimiter, or with a non-empty first frame, or
  with two empty frames;
* SQL metacharacters (`'; DROP TABLE events; --`) in every text field
  (holder, title, actor, request id, note text, reasons, funder, advisor):
  accepted as plain text, stored verbatim; in every other frame (dossier id,
  expected version, event name, key, filters, RETRY target, AGENDA days,
  amount, pays, holder_type): refused with the right code.

At the end: the tables are all there, PRAGMA integrity_check says ok, and
the request ids in the event log are exactly those of the requests that
were answered OK (so the event count equals the number of accepted events);
poled stops with exit 0.
"""

import os
import sqlite3
import unittest

import zmq

import polehelp
from polehelp import (Poled, SIGNATURE, error_reply, ok_event_reply,
                      raw_request, raw_frames, new_request_id)

SQL = "'; DROP TABLE events; --"
SQL_B = SQL.encode()
SQL_RID = "';DROP/**/TABLE/**/events;--"   # printable ASCII, no space
TABLES = {"dossiers", "events", "requests", "outbox", "timers", "settings"}

RID = object()          # placeholder: the case's own request id
NO_REPLY = "NO_REPLY"   # libzmq drops the message: nothing comes back


def b(x):
    if isinstance(x, bytes):
        return x
    if isinstance(x, int):
        return str(x).encode()
    return str(x).encode("utf-8")


def setUpModule():
    if not (os.access(polehelp.POLED, os.X_OK)
            and os.access(polehelp.POLECTL, os.X_OK)):
        raise unittest.SkipTest("binaries not found in %s"
                                % polehelp.BUILD_DIR)


class Case:
    """One hostile request and what PROTOCOL.md says it gets.

    expect: an error code, "OK", or NO_REPLY. echo: the request id the
    reply must carry (None: the case's own id if it is in the frames, else
    ""). kind: "req", "dealer" (delimiter added) or "raw" (a DEALER that
    sends exactly `frames`, no delimiter). applied: an OK that adds an event
    to the log (OPEN, EVENT)."""

    def __init__(self, name, frames, expect, rule=None, kind="req",
                 echo=None, rid=None, applied=None):
        self.name = name
        self.rid = rid or "bi-" + name.replace(" ", "_")[:60]
        self.frames = [b(self.rid) if f is RID else b(f) for f in frames]
        self.expect = expect
        self.rule = rule
        self.kind = kind
        if echo is None:
            echo = self.rid if RID in frames else ""
        self.echo = echo
        if applied is None:
            applied = (expect == "OK" and len(self.frames) > 1
                       and self.frames[1] in (b"OPEN", b"EVENT"))
        self.applied = applied


class TestBadInput(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.poled = Poled()
        cls.addClassCleanup(cls.poled.close)

    @classmethod
    def tearDownClass(cls):
        rc = cls.poled.stop()
        log = cls.poled.log()
        if rc != 0:
            raise AssertionError("poled exited %s on SIGTERM; log:\n%s"
                                 % (rc, log[-4000:]))
        con = sqlite3.connect(cls.poled.database)
        try:
            ok = con.execute("PRAGMA integrity_check").fetchall()
        finally:
            con.close()
        if ok != [("ok",)]:
            raise AssertionError("integrity_check after stop: %r" % (ok,))

    # -- helpers ------------------------------------------------------------
    def send(self, case, timeout=5.0):
        ep = self.poled.endpoint
        if case.kind == "raw":
            reply = raw_frames(ep, case.frames, timeout=timeout)
            if reply is None:
                return None
            self.assertEqual(reply[0], b"", "%s: the reply has the empty "
                             "delimiter: %r" % (case.name, reply[:3]))
            return reply[1:]
        kind = zmq.DEALER if case.kind == "dealer" else zmq.REQ
        return raw_request(ep, case.frames, kind=kind, timeout=timeout)

    def assert_serving(self, after):
        self.assertTrue(self.poled.running(), "poled died after %s; log:\n%s"
                        % (after, self.poled.log()[-4000:]))
        rid = new_request_id("alive")
        reply = raw_request(self.poled.endpoint, [SIGNATURE, b"PING", rid],
                            timeout=5)
        self.assertIsNotNone(reply, "no PING answer after %s" % after)
        self.assertEqual(reply[:3], [SIGNATURE, rid.encode(), b"OK"],
                         "PING after %s" % after)

    def open(self, pays, holder="Collectif", rid=None, actor="alice",
             title=None):
        rid = rid or new_request_id("bi-open")
        frames = [SIGNATURE, b"OPEN", b(rid), b(actor), b"pays=" + b(pays),
                  b"holder=" + b(holder), b"holder_type=ess_actor"]
        if title is not None:
            frames.append(b"title=" + b(title))
        reply = raw_request(self.poled.endpoint, frames)
        d = ok_event_reply(reply, rid)[0]
        self.accepted.append(rid)
        return d

    def event(self, d, name, *fields, rid=None, actor="alice"):
        rid = rid or new_request_id("bi-ev")
        reply = raw_request(self.poled.endpoint, [
            SIGNATURE, b"EVENT", b(rid), b(actor), b(d), b"", b(name)]
            + [b(f) for f in fields])
        out = ok_event_reply(reply, rid)
        self.accepted.append(rid)
        return out

    def check_case(self, case):
        timeout = 1.5 if case.expect == NO_REPLY else 5.0
        reply = self.send(case, timeout=timeout)
        shown = repr(reply)[:300]
        if case.expect == NO_REPLY:
            self.assertIsNone(reply, "%s: a frame above max_message_size "
                              "gets no reply, got %s" % (case.name, shown))
        elif case.expect == "OK":
            self.assertIsNotNone(reply, "%s: no reply" % case.name)
            self.assertEqual(reply[:3], [SIGNATURE, b(case.echo), b"OK"],
                             "%s: %s" % (case.name, shown))
            if case.applied:
                ok_event_reply(reply, case.rid)
                self.accepted.append(case.rid)
        else:
            self.assertIsNotNone(reply, "%s: no reply" % case.name)
            try:
                rid, code, message, rule = error_reply(reply)
            except AssertionError as e:
                self.fail("%s: %s" % (case.name, e))
            self.assertEqual(code, case.expect, "%s: %s" % (case.name, shown))
            self.assertEqual(rid, case.echo, "%s: request id echoed"
                             % case.name)
            self.assertNotEqual(message, "", "%s: an error says why"
                                % case.name)
            if case.expect == "REFUSED":
                self.assertEqual(rule, case.rule, "%s: rule; message %r"
                                 % (case.name, message))
            else:
                self.assertEqual(rule, "", "%s: a rule only on REFUSED"
                                 % case.name)
        self.assert_serving(case.name)

    # -- the corpus ---------------------------------------------------------
    def corpus(self, d):
        """The cases; `d` is a dossier in draft that stays in draft."""
        S = SIGNATURE
        D = b(d)

        def ev(name, *fields, actor=b"alice", dossier=D, expected=b""):
            return [S, b"EVENT", RID, actor, dossier, expected, name] \
                + list(fields)

        cofund = [b"funder=Fondation", b"year=2024"]
        c = []
        add = c.append
        # version signature (the request id is not read under another one)
        add(Case("sig truncated", [b"POLE/", b"PING", RID],
                 "UNSUPPORTED_VERSION", echo=""))
        add(Case("sig trailing nul", [b"POLE/1\x00", b"PING", RID],
                 "UNSUPPORTED_VERSION", echo=""))
        add(Case("sig trailing space", [b"POLE/1 ", b"PING", RID],
                 "UNSUPPORTED_VERSION", echo=""))
        add(Case("sig POLE/10", [b"POLE/10", b"PING", RID],
                 "UNSUPPORTED_VERSION", echo=""))
        add(Case("sig empty", [b"", b"PING", RID], "UNSUPPORTED_VERSION",
                 echo=""))
        add(Case("sig not utf8", [b"\xffPOLE/1", b"PING", RID],
                 "UNSUPPORTED_VERSION", echo="", kind="dealer"))
        add(Case("empty body", [b""], "UNSUPPORTED_VERSION"))
        add(Case("five empty frames", [b""] * 5, "UNSUPPORTED_VERSION",
                 kind="dealer"))
        # command frame (the request id is read first: it is echoed)
        add(Case("cmd DELETE", [S, b"DELETE", RID, b"events"],
                 "UNKNOWN_COMMAND"))
        add(Case("cmd empty", [S, b"", RID], "UNKNOWN_COMMAND"))
        add(Case("cmd truncated", [S, b"EVEN", RID, b"alice", D, b"",
                                   b"note", b"text=x"], "UNKNOWN_COMMAND"))
        add(Case("cmd trailing nul", [S, b"PING\x00", RID],
                 "UNKNOWN_COMMAND"))
        add(Case("cmd not utf8", [S, b"P\xc3NG", RID], "UNKNOWN_COMMAND",
                 kind="dealer"))
        add(Case("cmd sql", [S, b"PING; DROP TABLE events", RID],
                 "UNKNOWN_COMMAND"))
        # truncated requests
        add(Case("trunc signature and command", [S, b"EVENT"], "BAD_REQUEST"))
        add(Case("trunc event without name", [S, b"EVENT", RID, b"alice", D,
                                              b""], "BAD_REQUEST"))
        add(Case("trunc history without id", [S, b"HISTORY", RID],
                 "BAD_REQUEST"))
        add(Case("trunc retry without target", [S, b"RETRY", RID, b"alice"],
                 "BAD_REQUEST"))
        add(Case("trunc clock without value", [S, b"CLOCK", RID, b"alice",
                                               b"get"], "BAD_REQUEST"))
        add(Case("trunc agenda without days", [S, b"AGENDA", RID],
                 "BAD_REQUEST"))
        add(Case("trunc open actor only", [S, b"OPEN", RID, b"alice"],
                 "REFUSED", rule="fields"))
        # empty frames in every position
        add(Case("empty actor", ev(b"note", b"text=x", actor=b""),
                 "BAD_REQUEST"))
        add(Case("empty dossier id", ev(b"note", b"text=x", dossier=b""),
                 "BAD_REQUEST"))
        add(Case("empty event name", ev(b"", b"text=x"), "BAD_REQUEST"))
        add(Case("empty field frame", ev(b"note", b""), "BAD_REQUEST"))
        add(Case("empty field between", ev(b"note", b"text=x", b""),
                 "BAD_REQUEST", kind="dealer"))
        add(Case("empty list filter", [S, b"LIST", RID, b""], "BAD_REQUEST"))
        add(Case("empty agenda days", [S, b"AGENDA", RID, b""],
                 "BAD_REQUEST"))
        add(Case("empty retry target", [S, b"RETRY", RID, b"alice", b""],
                 "BAD_REQUEST"))
        add(Case("empty clock op", [S, b"CLOCK", RID, b"alice", b"", b""],
                 "BAD_REQUEST"))
        add(Case("empty field value", ev(b"note", b"text="), "REFUSED",
                 rule="fields"))
        add(Case("blank field value", ev(b"note", b"text=   "), "REFUSED",
                 rule="fields"))
        add(Case("empty expected version is no check",
                 ev(b"note", b"text=no version check"), "OK"))
        # text that is not UTF-8
        add(Case("utf8 overlong", ev(b"note", b"text=\xc0\xaf"),
                 "BAD_REQUEST"))
        add(Case("utf8 surrogate", ev(b"note", b"text=\xed\xa0\x80"),
                 "BAD_REQUEST"))
        add(Case("utf8 above 10FFFF", ev(b"note", b"text=\xf4\x90\x80\x80"),
                 "BAD_REQUEST"))
        add(Case("utf8 cut character", ev(b"note", b"text=caf\xc3"),
                 "BAD_REQUEST", kind="dealer"))
        add(Case("utf8 latin1 list filter", [S, b"LIST", RID,
                                             b"pays=Foug\xe8res"],
                 "BAD_REQUEST"))
        add(Case("utf8 latin1 event name", ev(b"not\xe9"), "BAD_REQUEST"))
        add(Case("utf8 lone continuation actor",
                 ev(b"note", b"text=x", actor=b"\x80alice"), "BAD_REQUEST",
                 kind="dealer"))
        # missing fields
        add(Case("missing note text", ev(b"note"), "REFUSED", rule="fields"))
        add(Case("missing amount", ev(b"request_study"), "REFUSED",
                 rule="fields"))
        add(Case("missing cofunding year",
                 ev(b"add_cofunding", b"funder=F", b"amount=1000"),
                 "REFUSED", rule="fields"))
        add(Case("missing open holder", [S, b"OPEN", RID, b"alice",
                                         b"pays=Vannes",
                                         b"holder_type=pays"],
                 "REFUSED", rule="fields"))
        add(Case("unknown field", ev(b"request_study", b"amount=1000",
                                     b"currency=EUR"),
                 "REFUSED", rule="fields"))
        # amounts: whole euros > 0, digits only (PROTOCOL.md section 5)
        for label, amount in (("0", b"0"), ("negative", b"-1"),
                              ("1e12", b"1e12"),
                              ("10^12", b"1000000000000"),
                              ("space", b"20 000"),
                              ("decimals", b"20000.00"),
                              ("plus", b"+20000"),
                              ("leading zero", b"020000"),
                              ("leading space", b" 20000"),
                              ("trailing space", b"20000 "),
                              ("hex", b"0x4E20"),
                              ("fullwidth digits",
                               "２００００".encode())):
            add(Case("amount study " + label,
                     ev(b"request_study", b"amount=" + amount),
                     "REFUSED", rule="amount"))
        for label, amount in (("0", b"0"), ("10^12", b"1000000000000"),
                              ("space", b"20 000"),
                              ("decimals", b"20000.00")):
            add(Case("amount cofunding " + label,
                     ev(b"add_cofunding", b"amount=" + amount, *cofund),
                     "REFUSED", rule="amount"))
        # unknown events
        add(Case("event unknown", ev(b"drop_table", b"text=x"), "REFUSED",
                 rule="unknown_event"))
        add(Case("event unknown 32 chars", ev(b"z" * 32), "REFUSED",
                 rule="unknown_event"))
        add(Case("event open through EVENT", ev(b"open", b"pays=Brest"),
                 "REFUSED", rule="transition"))
        add(Case("event calendar only", ev(b"reminder",
                                           b"about=study_deadline",
                                           b"due=2030-01-01"),
                 "REFUSED", rule="calendar_only"))
        add(Case("event name with digit", ev(b"note2", b"text=x"),
                 "BAD_REQUEST"))
        add(Case("event name 33 chars", ev(b"note" + b"_" * 29,
                                           b"text=x"), "BAD_REQUEST"))
        add(Case("event not found", ev(b"note", b"text=x",
                                       dossier=b"9223372036854775807"),
                 "NOT_FOUND"))
        # 64 / 65 frames
        base = ev(b"note", b"text=x")
        pad64 = [b"k%02d=v" % i for i in range(64 - len(base))]
        self.assertEqual(len(base + pad64), 64)
        add(Case("frames 64", base + pad64, "REFUSED", rule="fields"))
        add(Case("frames 65", base + pad64 + [b"k99=v"], "BAD_REQUEST"))
        add(Case("frames 65 empty", [S, b"PING", RID] + [b""] * 62,
                 "BAD_REQUEST", kind="dealer"))
        add(Case("frames 1000", [S, b"PING", RID] + [b"x"] * 997,
                 "BAD_REQUEST", kind="dealer"))
        # keys of 32 / 33 bytes and other bad keys
        add(Case("key 32 bytes", ev(b"note", b"text=x", b"k" * 32 + b"=v"),
                 "REFUSED", rule="fields"))
        add(Case("key 33 bytes", ev(b"note", b"text=x", b"k" * 33 + b"=v"),
                 "BAD_REQUEST"))
        add(Case("key starts with digit", ev(b"note", b"1text=x"),
                 "BAD_REQUEST"))
        add(Case("key with hyphen", ev(b"note", b"te-xt=x"), "BAD_REQUEST"))
        add(Case("key not ascii", ev(b"note", "tëxt=x".encode()),
                 "BAD_REQUEST"))
        add(Case("key with sql", ev(b"note", b"text;drop=x"), "BAD_REQUEST"))
        # request ids of 64 / 65 bytes and bad bytes in them
        rid64 = "r" * 61 + "-64"
        add(Case("rid 64 ping", [S, b"PING", RID], "OK", rid=rid64[:-1] + "p"))
        add(Case("rid 64 event", ev(b"note", b"text=rid 64"), "OK",
                 rid=rid64))
        add(Case("rid 65 event", ev(b"note", b"text=rid 65"), "BAD_REQUEST",
                 rid="r" * 65, echo=""))
        add(Case("rid with DEL", [S, b"PING", b"rid\x7f"], "BAD_REQUEST"))
        add(Case("rid with tab", [S, b"PING", b"rid\tx"], "BAD_REQUEST"))
        # actors of 64 / 65 bytes
        add(Case("actor 64 bytes", ev(b"note", b"text=actor 64",
                                      actor=b"a" * 64), "OK"))
        add(Case("actor 64 bytes multibyte", ev(b"note", b"text=actor e",
                                                actor="é".encode() * 32),
                 "OK"))
        add(Case("actor 66 bytes multibyte", ev(b"note", b"text=x",
                                                actor="é".encode() * 33),
                 "BAD_REQUEST"))
        add(Case("actor C1 control", ev(b"note", b"text=x",
                                        actor=b"al\xc2\x9bice"),
                 "BAD_REQUEST"))
        # names kept by the dossier: refused above 255 bytes
        add(Case("holder 256 bytes", [S, b"OPEN", RID, b"alice",
                                      b"pays=Vannes", b"holder=" + b"h" * 256,
                                      b"holder_type=pays"],
                 "REFUSED", rule="fields"))
        add(Case("title 256 bytes", [S, b"OPEN", RID, b"alice",
                                     b"pays=Vannes", b"holder=H",
                                     b"holder_type=pays",
                                     b"title=" + "é".encode() * 128],
                 "REFUSED", rule="fields"))
        add(Case("holder 255 bytes", [S, b"OPEN", RID, b"alice",
                                      b"pays=Vannes",
                                      b"holder=" + "é".encode() * 127 + b"h",
                                      b"holder_type=pays"], "OK"))
        # duplicate keys
        add(Case("dup note text", ev(b"note", b"text=a", b"text=b"),
                 "BAD_REQUEST"))
        add(Case("dup cofunding amount",
                 ev(b"add_cofunding", b"amount=10", b"funder=F",
                    b"amount=20", b"year=2024"), "BAD_REQUEST"))
        add(Case("dup open pays", [S, b"OPEN", RID, b"alice", b"pays=Auray",
                                   b"pays=Auray", b"holder=H",
                                   b"holder_type=pays"], "BAD_REQUEST"))
        add(Case("dup outbox state", [S, b"OUTBOX", RID, b"state=pending",
                                      b"state=dead"], "BAD_REQUEST"))
        add(Case("dup report as_of", [S, b"REPORT", RID,
                                      b"as_of=2020-01-01",
                                      b"as_of=2020-01-02"], "BAD_REQUEST"))
        # frame sizes around max_message_size (65536 by default)
        add(Case("frame exactly max_message_size",
                 [S, b"PING", RID, b"x" * 65536], "BAD_REQUEST",
                 kind="dealer"))
        add(Case("field frame exactly max_message_size",
                 ev(b"note", b"text=" + b"v" * (65536 - 5)), "BAD_REQUEST"))
        add(Case("frame one byte above max_message_size",
                 [S, b"PING", RID, b"x" * 65537], NO_REPLY))
        add(Case("frame of a megabyte",
                 ev(b"note", b"text=" + b"v" * (1 << 20)), NO_REPLY,
                 kind="dealer"))
        add(Case("huge signature frame", [b"P" * 200000, b"PING", RID],
                 NO_REPLY))
        # DEALER without the delimiter
        add(Case("dealer open without delimiter",
                 [S, b"OPEN", RID, b"alice", b"pays=Pontivy", b"holder=H",
                  b"holder_type=pays"], "BAD_REQUEST", kind="raw", echo=""))
        add(Case("dealer non-empty first frame",
                 [b"x", S, b"PING", RID], "BAD_REQUEST", kind="raw",
                 echo=""))
        add(Case("dealer two delimiters",
                 [b"", b"", S, b"PING", RID], "UNSUPPORTED_VERSION",
                 kind="raw", echo=""))
        # SQL metacharacters in frames that are not free text: refused
        add(Case("sql dossier id", ev(b"note", b"text=x",
                                      dossier=b"1 OR 1=1"), "BAD_REQUEST"))
        add(Case("sql expected version", ev(b"note", b"text=x",
                                            expected=b"1; --"),
                 "BAD_REQUEST"))
        add(Case("sql event name", ev(b"note'; drop table events; --",
                                      b"text=x"), "BAD_REQUEST"))
        add(Case("sql show id", [S, b"SHOW", RID, b"1; DROP TABLE events"],
                 "BAD_REQUEST"))
        add(Case("sql list state", [S, b"LIST", RID, b"state=" + SQL_B],
                 "BAD_REQUEST"))
        add(Case("sql list pays", [S, b"LIST", RID, b"pays=" + SQL_B],
                 "BAD_REQUEST"))
        add(Case("sql outbox state", [S, b"OUTBOX", RID, b"state=" + SQL_B],
                 "BAD_REQUEST"))
        add(Case("sql retry target", [S, b"RETRY", RID, b"alice", SQL_B],
                 "BAD_REQUEST"))
        add(Case("sql report as_of", [S, b"REPORT", RID, b"as_of=" + SQL_B],
                 "BAD_REQUEST"))
        add(Case("sql agenda days", [S, b"AGENDA", RID, b"1 OR 1=1"],
                 "BAD_REQUEST"))
        add(Case("sql clock value", [S, b"CLOCK", RID, b"alice", b"set",
                                     SQL_B], "BAD_REQUEST"))
        add(Case("sql amount", ev(b"request_study", b"amount=1; --"),
                 "REFUSED", rule="amount"))
        add(Case("sql open pays", [S, b"OPEN", RID, b"alice",
                                   b"pays=" + SQL_B, b"holder=H",
                                   b"holder_type=pays"],
                 "REFUSED", rule="pays"))
        add(Case("sql open holder_type", [S, b"OPEN", RID, b"alice",
                                          "pays=Vitré-Porte de Bretagne",
                                          b"holder=H",
                                          b"holder_type=" + SQL_B],
                 "REFUSED", rule="holder_type"))
        add(Case("sql request id ping", [S, b"PING", RID], "OK",
                 rid=SQL_RID + "ping"))
        return c

    def test_corpus(self):
        self.accepted = []
        d = self.open("Brest", rid="bi-setup-brest")
        cases = self.corpus(d)
        self.assertGreaterEqual(len(cases), 50)
        names = [case.name for case in cases]
        self.assertEqual(len(names), len(set(names)), "case names unique")
        rids = [case.rid for case in cases]
        self.assertEqual(len(rids), len(set(rids)), "request ids unique")
        for case in cases:
            with self.subTest(case=case.name):
                self.check_case(case)
        # the dossier of the malformed events took only the accepted ones
        shown = self.poled.show(d)
        self.assertEqual((shown["state"], shown["version"]),
                         ("draft", 1 + sum(1 for c in cases
                                           if c.applied and b"EVENT" ==
                                           c.frames[1])))
        self.assertIsNone(shown["study_asked"])
        self.assertEqual(shown["cofunding_eur"], 0)
        # OPENs that failed applied nothing
        self.assertEqual(self.poled.query(b"LIST", b"pays=Pontivy"), [])
        self.assertEqual(self.poled.query(b"LIST", b"pays=Auray"), [])
        self.assertEqual(self.poled.query(
            b"LIST", "pays=Vitré-Porte de Bretagne".encode()), [])
        vannes = self.poled.query(b"LIST", b"pays=Vannes")
        self.assertEqual([x["holder"] for x in vannes],
                         ["é" * 127 + "h"], "the 255-byte holder kept whole")

        self.sql_in_text_fields()
        self.final_checks()

    def sql_in_text_fields(self):
        """SQL in every free-text field: plain text, stored verbatim."""
        d = self.open("Morlaix", holder=SQL, title=SQL, actor=SQL,
                      rid=SQL_RID)
        self.event(d, "note", "text=" + SQL, actor=SQL)
        self.event(d, "legitimate_holder", "advisor=" + SQL)
        self.event(d, "add_cofunding", "funder=" + SQL, "amount=1500",
                   "year=2024")
        self.event(d, "request_study", "amount=20000")
        self.event(d, "decline_study", "reason=" + SQL, actor="region")
        self.event(d, "reopen", "reason=" + SQL, actor="region")
        self.event(d, "withdraw", "reason=" + SQL)
        # ... and in a second dossier's holder with quotes of both kinds
        mixed = "O'Brien \"Coop\"; DELETE FROM dossiers; -- \\ % _ *"
        d2 = self.open("Lorient", holder=mixed, title="x'); --")
        self.event(d2, "note", "text=" + mixed)

        shown = self.poled.show(d)
        self.assertEqual((shown["holder"], shown["title"], shown["state"]),
                         (SQL, SQL, "withdrawn"))
        self.assertEqual(shown["cofunding_eur"], 1500)
        hist = self.poled.history(d)
        self.assertEqual([e["event"] for e in hist],
                         ["open", "note", "legitimate_holder",
                          "add_cofunding", "request_study", "decline_study",
                          "reopen", "withdraw"])
        self.assertEqual(hist[0]["request_id"], SQL_RID)
        self.assertEqual(hist[0]["actor"], SQL)
        self.assertEqual(hist[0]["fields"]["holder"], SQL)
        self.assertEqual(hist[0]["fields"]["title"], SQL)
        self.assertEqual(hist[1]["fields"], {"text": SQL})
        self.assertEqual(hist[1]["actor"], SQL)
        self.assertEqual(hist[2]["fields"], {"advisor": SQL})
        self.assertEqual(hist[3]["fields"]["funder"], SQL)
        for e in hist[5:]:
            self.assertEqual(e["fields"], {"reason": SQL}, e)
        shown2 = self.poled.show(d2)
        self.assertEqual((shown2["holder"], shown2["title"]),
                         (mixed, "x'); --"))
        self.assertEqual(self.poled.history(d2)[1]["fields"],
                         {"text": mixed})
        # the report still adds the co-funding under the funder's name
        report = self.poled.query(b"REPORT")
        self.assertEqual(report["money"]["cofunding_by_funder"].get(SQL),
                         1500, report["money"])
        # the same, straight from the database
        con = self.ro()
        try:
            row = con.execute("SELECT holder, title FROM dossiers "
                              "WHERE id = ?", (d,)).fetchone()
            self.assertEqual(row, (SQL, SQL))
        finally:
            con.close()

    def ro(self):
        return sqlite3.connect("file:%s?mode=ro" % self.poled.database,
                               uri=True, timeout=5)

    def final_checks(self):
        self.assert_serving("the whole corpus")
        con = self.ro()
        try:
            tables = {r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            self.assertTrue(TABLES <= tables, "tables left: %r" % tables)
            self.assertEqual(con.execute("PRAGMA integrity_check").fetchall(),
                             [("ok",)])
            logged = [r[0] for r in con.execute(
                "SELECT request_id FROM events ORDER BY seq")]
            count = con.execute("SELECT count(*) FROM events").fetchone()[0]
        finally:
            con.close()
        self.assertEqual(count, len(self.accepted),
                         "the event count equals the number of accepted "
                         "events")
        self.assertEqual(sorted(logged), sorted(self.accepted),
                         "the log holds exactly the accepted requests")
        self.assertEqual(logged, self.accepted, "in the order accepted")


if __name__ == "__main__":
    unittest.main()
