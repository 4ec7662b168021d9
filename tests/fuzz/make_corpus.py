#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets (run once; its output is
committed): tests/fuzz/corpus/codec/ and tests/fuzz/corpus/handler/.

Input format (tests/fuzz/fuzz_input.h): byte 0 separates frames, byte 1
separates messages. Most seeds use "|" and "\\n". Codec seeds are message
bodies (requests and replies, no envelope); handler seeds are what follows
the ROUTER identity: the empty delimiter frame, then the body, so each line
starts with "|". Valid and invalid requests from proto/PROTOCOL.md.

    python3 tests/fuzz/make_corpus.py        # rewrites both directories

Files whose name starts with "found-" (inputs kept from libFuzzer runs,
tests/fuzz/README.md) or "crash-" (fixed crashes, regression tests) are
not written here and are kept when the directories are rewritten.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
KEPT = ("found-", "crash-")     # not ours: kept on a rewrite
S = b"POLE/1"


def frames(*parts):
    return [p if isinstance(p, bytes) else p.encode() for p in parts]


def req(command, rid, *rest):
    return frames(S, command, rid, *rest)


def encode(messages, fsep=b"|", msep=b"\n"):
    for msg in messages:
        for frame in msg:
            assert fsep not in frame and msep not in frame, (frame, fsep)
    return fsep + msep + msep.join(fsep.join(m) for m in messages)


OPEN_DINAN = req("OPEN", "o1", "alice", "pays=dinan", "holder=Pays de Dinan",
                 "holder_type=pays")
LIFECYCLE = [
    OPEN_DINAN,
    req("EVENT", "e1", "alice", "1", "1", "request_study", "amount=20000"),
    req("EVENT", "e2", "region", "1", "", "grant_study", "amount=20000"),
    req("EVENT", "e3", "alice", "1", "3", "deliver_study",
        "diagnosis=d", "priority_actions=p", "governance=g"),
    req("EVENT", "e4", "cres", "1", "", "validate",
        "stakeholders=A,B", "stakeholder_types=association,cooperative"),
    req("EVENT", "e5", "alice", "1", "", "create_pole", "mode=adossement",
        "name=Pôle ESS", "host=Maison"),
    req("EVENT", "e6", "alice", "1", "", "request_posts", "posts=2"),
    req("EVENT", "e7", "region", "1", "", "grant_posts", "posts=2"),
    req("EVENT", "e8", "alice", "1", "", "file_annual_report", "year=1"),
    req("EVENT", "e9", "alice", "1", "", "start_next_year"),
    req("EVENT", "e10", "alice", "1", "", "add_cofunding", "funder=CD22",
        "amount=5000", "year=2011"),
    req("EVENT", "e11", "alice", "1", "", "note", "text=une note\twith tab"),
    req("SHOW", "s1", "1"),
    req("HISTORY", "h1", "1"),
    req("LIST", "l1", "state=funding_year_2", "pays=Dinan"),
    req("REPORT", "r1"),
    req("OUTBOX", "x1", "state=pending"),
    req("AGENDA", "a1", "365"),
]

VALID = {
    "ping": [req("PING", "p1")],
    "open": [OPEN_DINAN],
    "open_title": [req("OPEN", "o2", "bob", "pays=Brest",
                       "holder=Association", "holder_type=ess_actor",
                       "title=Pôle ESS du Pays de Brest")],
    "event_request_study": [OPEN_DINAN, req("EVENT", "e1", "alice", "1", "1",
                                            "request_study", "amount=20000")],
    "event_cap": [OPEN_DINAN,
                  req("EVENT", "e1", "alice", "1", "1", "request_study",
                      "amount=20000"),
                  req("EVENT", "e2", "region", "1", "", "grant_study",
                      "amount=30000")],
    "event_withdraw_reopen": [OPEN_DINAN,
                              req("EVENT", "w1", "alice", "1", "", "withdraw",
                                  "reason=no"),
                              req("EVENT", "w2", "region", "1", "", "reopen",
                                  "reason=mistake")],
    "event_conflict": [OPEN_DINAN, req("EVENT", "c1", "alice", "1", "7",
                                       "note", "text=x")],
    "event_not_found": [req("EVENT", "n1", "alice", "999", "", "note",
                            "text=x")],
    "retry_same_id": [OPEN_DINAN, OPEN_DINAN],
    "reuse_id_conflict": [OPEN_DINAN,
                          req("OPEN", "o1", "alice", "pays=Brest",
                              "holder=X", "holder_type=pays")],
    "show": [req("SHOW", "s1", "1")],
    "list": [req("LIST", "l1")],
    "list_filters": [req("LIST", "l2", "state=draft", "pays=dinan",
                         "overdue=1")],
    "history": [req("HISTORY", "h1", "1")],
    "report": [req("REPORT", "r1")],
    "report_as_of": [req("REPORT", "r2", "as_of=2010-10-15")],
    "outbox": [req("OUTBOX", "x1")],
    "outbox_dead": [req("OUTBOX", "x2", "state=dead")],
    "retry_dead": [req("RETRY", "t1", "admin", "--dead")],
    "retry_id": [OPEN_DINAN, req("RETRY", "t2", "admin", "1-0")],
    "clock_get": [req("CLOCK", "k1", "admin", "get", "")],
    "clock_set": [req("CLOCK", "k2", "admin", "set", "2030-01-01")],
    "clock_set_time": [req("CLOCK", "k3", "admin", "set",
                           "2031-06-30T12:00:00Z")],
    "clock_advance": [OPEN_DINAN,
                      req("EVENT", "e1", "alice", "1", "1", "request_study",
                          "amount=20000"),
                      req("EVENT", "e2", "region", "1", "", "grant_study",
                          "amount=20000"),
                      req("CLOCK", "k4", "admin", "advance", "400"),
                      req("AGENDA", "a1", "0"),
                      req("SHOW", "s1", "1")],
    "agenda": [req("AGENDA", "a2", "3650")],
    "lifecycle": LIFECYCLE,
}

INVALID = {
    "empty_body": [frames("")],
    "no_delimiter": "nodelim",      # handled below
    "bad_signature": [frames("POLE/2", "PING", "p1")],
    "unknown_command": [frames(S, "DANCE", "d1")],
    "no_request_id": [frames(S, "PING")],
    "request_id_space": [req("PING", "p 1")],
    "request_id_long": [req("PING", "r" * 65)],
    "ping_extra": [req("PING", "p1", "extra")],
    "open_no_actor": [req("OPEN", "o1")],
    "actor_control": [req("OPEN", "o1", "al\x1bice", "pays=dinan")],
    "actor_c1": [req("OPEN", "o1", b"al\xc2\x9bice", "pays=dinan")],
    "bad_utf8": [req("OPEN", "o1", "alice", b"holder=\xff\xfe",
                     "pays=dinan", "holder_type=pays")],
    "overlong_utf8": [req("OPEN", "o1", "alice", b"holder=\xc0\xaf",
                          "pays=dinan", "holder_type=pays")],
    "duplicate_key": [req("OPEN", "o1", "alice", "pays=dinan", "pays=brest",
                          "holder=x", "holder_type=pays")],
    "field_no_equal": [req("OPEN", "o1", "alice", "pays")],
    "field_bad_key": [req("OPEN", "o1", "alice", "Pays=dinan")],
    "field_long_value": [req("OPEN", "o1", "alice", "pays=dinan",
                             "holder=" + "h" * 16385, "holder_type=pays")],
    "name_256": [req("OPEN", "o1", "alice", "pays=dinan",
                     "holder=" + "é" * 128, "holder_type=pays")],
    "unknown_pays": [req("OPEN", "o1", "alice", "pays=Paris", "holder=x",
                         "holder_type=pays")],
    "bad_holder_type": [req("OPEN", "o1", "alice", "pays=dinan", "holder=x",
                            "holder_type=martian")],
    "dossier_zero": [req("SHOW", "s1", "0")],
    "dossier_sign": [req("SHOW", "s1", "+1")],
    "dossier_overflow": [req("SHOW", "s1", "9223372036854775808")],
    "dossier_max": [req("HISTORY", "h1", "9223372036854775807")],
    "event_bad_version": [req("EVENT", "e1", "alice", "1", "01", "note",
                              "text=x")],
    "event_bad_name": [req("EVENT", "e1", "alice", "1", "", "Note",
                           "text=x")],
    "event_open": [req("EVENT", "e1", "alice", "1", "", "open",
                       "pays=dinan")],
    "event_unknown_field": [OPEN_DINAN,
                            req("EVENT", "e1", "alice", "1", "", "note",
                                "colour=red")],
    "event_amount_decimal": [OPEN_DINAN,
                             req("EVENT", "e1", "alice", "1", "",
                                 "request_study", "amount=20000.00")],
    "event_calendar_only": [OPEN_DINAN,
                            req("EVENT", "e1", "alice", "1", "", "reminder",
                                "about=annual_report", "due=2011-01-01")],
    "reopen_not_region": [OPEN_DINAN,
                          req("EVENT", "w1", "alice", "1", "", "withdraw",
                              "reason=x"),
                          req("EVENT", "w2", "alice", "1", "", "reopen",
                              "reason=x")],
    "list_bad_state": [req("LIST", "l1", "state=nowhere")],
    "list_overdue_0": [req("LIST", "l1", "overdue=0")],
    "list_unknown_key": [req("LIST", "l1", "colour=red")],
    "report_bad_date": [req("REPORT", "r1", "as_of=2013-02-30")],
    "report_time": [req("REPORT", "r1", "as_of=2013-02-03T00:00:00Z")],
    "outbox_bad_state": [req("OUTBOX", "x1", "state=lost")],
    "retry_bad_target": [req("RETRY", "t1", "admin", "abc")],
    "retry_not_found": [req("RETRY", "t1", "admin", "12345-9")],
    "clock_bad_op": [req("CLOCK", "k1", "admin", "rewind", "1")],
    "clock_get_value": [req("CLOCK", "k1", "admin", "get", "2020-01-01")],
    "clock_set_feb30": [req("CLOCK", "k1", "admin", "set", "2013-02-30")],
    "clock_set_past": [req("CLOCK", "k1", "admin", "set", "1999-01-01")],
    "clock_advance_0": [req("CLOCK", "k1", "admin", "advance", "0")],
    "clock_advance_max": [req("CLOCK", "k1", "admin", "advance", "36500"),
                          req("CLOCK", "k2", "admin", "advance", "36500")],
    "clock_advance_over": [req("CLOCK", "k1", "admin", "advance", "36501")],
    "agenda_over": [req("AGENDA", "a1", "3651")],
    "agenda_lead0": [req("AGENDA", "a1", "007")],
    "too_many_frames": [req("LIST", "l1", *["state=draft"] * 70)],
}

REPLIES = {
    "reply_ping": [frames(S, "p1", "OK", "poled 0.1.0")],
    "reply_open": [frames(S, "7f3a-1", "OK", "1", "draft", "1", "1", "")],
    "reply_error": [frames(S, "7f3a-3", "ERROR", "REFUSED",
                           "the study grant (30000 €) exceeds the study cap "
                           "(25000 €)", "study_cap")],
    "reply_error_no_id": [frames(S, "", "ERROR", "BAD_REQUEST", "no", "")],
    "reply_bad_code": [frames(S, "x", "ERROR", "bad", "m", "")],
    "reply_short": [frames(S, "x")],
    "reply_bad_utf8": [frames(S, "x", "OK", b"\xed\xa0\x80")],
    "reply_json": [frames(S, "s1", "OK", '{"id":1,"pays":"Dinan"}')],
}


def write(directory, name, data):
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def main():
    codec = os.path.join(HERE, "corpus", "codec")
    handler = os.path.join(HERE, "corpus", "handler")
    for d in (codec, handler):
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):
            if not name.startswith(KEPT):
                os.unlink(os.path.join(d, name))
    requests = dict(VALID)
    requests.update(INVALID)
    for name, msgs in requests.items():
        if msgs == "nodelim":
            # A DEALER that forgot the delimiter: the body comes first
            write(handler, name, encode([req("PING", "p1")]))
            continue
        write(codec, name, encode(msgs))
        write(handler, name, encode([[b""] + m for m in msgs]))
    for name, msgs in REPLIES.items():
        write(codec, name, encode(msgs))
    # Other separators: NUL and 0xFF inside frames
    write(codec, "sep_nul", encode([req("PING", b"p\x001")], b"\x01", b"\x02"))
    write(handler, "sep_nul",
          encode([[b""] + req("OPEN", "o1", "alice", b"pays=di\x00nan",
                              "holder=x", "holder_type=pays")],
                 b"\x01", b"\x02"))
    write(codec, "sep_same", encode([req("PING", "p1")], b"|", b"|"))
    write(handler, "one_frame_delimiter_only", encode([[b""]]))
    write(handler, "big_batch", encode([[b""] + req("PING", "p%d" % i)
                                        for i in range(300)]))
    for d in (codec, handler):
        print(d, len(os.listdir(d)), "files")


if __name__ == "__main__":
    main()
