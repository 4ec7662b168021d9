"""The programme calendar (docs/CALENDAR.md) through poled and polectl.

poled runs with a `calendar` group appended to the usual test configuration,
with clock = "simulated": `polectl clock set` / `clock advance` walk the
programme's years in seconds.

* the funded years walked by the clock alone: grant_posts arms year_end,
  report_reminder and report_due; a filed report lets year_end open the next
  year (start_next_year by actor `calendar`), up to `operating`; a report not
  filed 30 days before it is due brings one `reminder`; a report filed late
  opens the waiting year at once; the years stay contiguous; history `at`
  times follow the simulated clock; a year opened early by hand starts then
  and the calendar opens nothing more at the old year's end;
* a missing report: one `overdue` (about=annual_report, year=k), never a
  second however far the clock goes; `list --overdue`, `LIST overdue=1` and
  `agenda` show it; filing the report opens the next year at once and clears
  the flag;
* the study deadline: one `reminder` then one `overdue`; a study delivered in
  time gets neither; delivering late settles the overdue study;
* restarts (SIGTERM, SIGKILL right after the acknowledgement of a clock move)
  across a due date: every calendar event exactly once, the clock's offset
  kept;
* a terminal state cancels every timer; `reopen` does not re-arm them;
* the clock: real by default (set/advance refused, rule clock; `clock` works);
  a fresh simulated clock may be set to 2010; once moved it never goes back
  (rule clock), a resent `set` to the same target succeeds; bad dates and day
  counts are bad usage;
* only the calendar sends `reminder` and `overdue` (rule calendar_only),
  whatever actor a client claims;
* `agenda [--days N] [--json]`: keys, window, order by due date;
* reminder/overdue reach the coordinators through the outbox (command
  channel, with an `events` filter) and the live stream.

Waits are bounded polls (deadlines), never bare sleeps. Where a test checks
that something did NOT happen, it first waits for a later calendar event (a
"barrier" dossier whose timer falls due after) so that the calendar has run.
"""

import datetime
import json
import os
import re
import subprocess
import tempfile
import time
import unittest

import zmq

import polehelp
from polehelp import (Poled, POLED, POLECTL, SIGNATURE, TIMESTAMP_RE,
                      new_request_id, error_reply)
import receivers
from test_notify import notify_config_text, lc_value

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
AGENDA_KEYS = {"dossier", "pays", "kind", "year", "due", "state"}
TIMER_STATES = {"armed", "fired", "waiting", "overdue", "settled",
                "cancelled"}
CAL = "calendar"

# The simulated years: the programme's own (DOMAIN.md), as the demo replays
# them. A fresh simulated clock may be set to any date (CALENDAR.md;
# TestFirstSet). The day counts below assume that Y2 is a leap year and Y0,
# Y1 are not (so Y0 = 2030 would do as well).
Y0 = 2010
Y1, Y2, Y3 = Y0 + 1, Y0 + 2, Y0 + 3

# open -> grant_study (the study timers are armed)
TO_STUDY_FUNDED = [
    ("request_study", ["amount=24000"], "holder", "study_requested"),
    ("grant_study", ["amount=24000"], "region", "study_funded"),
]
DELIVER = ("deliver_study", ["diagnosis=d", "priority_actions=a,b",
                             "governance=g"], "holder", "study_delivered")
# study_funded -> funding_year_1 (grant_posts arms the year-1 timers)
STUDY_TO_YEAR_1 = [
    DELIVER,
    ("validate", ["stakeholders=Scop,Asso",
                  "stakeholder_types=cooperative,association"],
     "cres", "validated"),
    ("create_pole", ["mode=ex_nihilo", "name=Pole"], "holder",
     "pole_created"),
    ("request_posts", ["posts=2"], "holder", "posts_requested"),
    ("grant_posts", ["posts=2"], "region", "funding_year_1"),
]
TO_YEAR_1 = TO_STUDY_FUNDED + STUDY_TO_YEAR_1


def calendar_text(settings):
    """The `calendar` group of CALENDAR.md (libconfig), appended after
    polehelp.config_text()."""
    lines = ["# appended by tests/integration/test_calendar.py",
             "calendar = {"]
    for key, value in settings.items():
        lines.append("  %s = %s;" % (key, lc_value(value)))
    lines.append("};")
    return "\n".join(lines) + "\n"


class CalendarPoled(Poled):
    """A Poled whose configuration has a `calendar` group (None: none, the
    defaults apply) and, optionally, notify settings and coordinators
    (test_notify.notify_config_text; the live stream then goes to an IPC
    endpoint in the temporary directory)."""

    def __init__(self, calendar=None, notify=None, coordinators=(), **kw):
        start = kw.pop("start", True)
        super().__init__(start=False, **kw)
        extra = ""
        if calendar is not None:
            extra += calendar_text(calendar)
        if notify is not None or coordinators:
            notify = dict(notify or {})
            notify.setdefault("pub_endpoint",
                              "ipc://%s" % os.path.join(self.dir, "pub.sock"))
            self.pub_endpoint = notify["pub_endpoint"]
            extra += notify_config_text(notify, list(coordinators))
        with open(self.config, "a", encoding="utf-8") as f:
            f.write(extra)
        if start:
            try:
                self.start()
            except BaseException:
                self.close()
                raise


def day(text):
    """'YYYY-MM-DD...' -> datetime.date."""
    return datetime.date.fromisoformat(text[:10])


def stamp(text):
    """'YYYY-MM-DDTHH:MM:SSZ' -> aware datetime (UTC)."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)


def parse_clock(out):
    """The output of `polectl clock ...` (CLI.md: one line,
    `YYYY-MM-DDTHH:MM:SSZ  simulated` or `real`): (datetime, kind)."""
    m = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)  (simulated|real)"
                 r"\n$", out)
    if not m:
        raise AssertionError("not `YYYY-MM-DDTHH:MM:SSZ  simulated|real`: "
                             "%r" % out)
    return stamp(m.group(1)), m.group(2)


def setUpModule():
    if not (os.access(POLED, os.X_OK) and os.access(POLECTL, os.X_OK)):
        raise unittest.SkipTest("binaries not found in %s"
                                % polehelp.BUILD_DIR)
    p = subprocess.run([POLECTL, "agenda", "--help"],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30)
    if p.returncode != 0:
        raise AssertionError("`polectl agenda --help` exits %d: this build "
                             "has no calendar (docs/CALENDAR.md): %s"
                             % (p.returncode,
                                p.stderr.decode(errors="replace")))


# ---------------------------------------------------------------------------
# the base of the test cases

class CalendarCase(unittest.TestCase):

    SIMULATED = {"clock": "simulated"}

    def setUp(self):
        self.poled = None
        self.later = []

    def check_later(self, ok, message):
        """A check whose failure is reported at the end of the test (by
        finish()), so that the rest of the scenario still runs."""
        if not ok:
            self.later.append(message)

    def finish(self):
        """Stop poled (exit 0) and report the deferred failures."""
        self.assertEqual(self.poled.stop(), 0, self.poled.log())
        self.assertEqual(self.later, [], "deferred checks failed")

    def start_poled(self, calendar=SIMULATED, **kw):
        self.poled = CalendarPoled(calendar=dict(calendar) if calendar
                                   is not None else None, **kw)
        self.addCleanup(self.poled.close)
        return self.poled

    def ctl(self, *args, **kw):
        return self.poled.ctl(*args, **kw)

    # dossiers -----------------------------------------------------------
    def open(self, pays, holder="Holder"):
        rc, out, err = self.ctl("open", "--pays", pays, "--holder", holder,
                                "--holder-type", "ess_actor", actor="holder")
        return int(out)

    def send(self, dossier, event, *fields, actor="holder", expect=None):
        rc, out, err = self.ctl("send", dossier, event, *fields, actor=actor)
        if expect is not None:
            self.assertEqual(out.strip(), expect,
                             "%s on %s: %s" % (event, dossier, err))
        return out.strip()

    def walk(self, dossier, steps):
        for event, fields, actor, state in steps:
            self.send(dossier, event, *fields, actor=actor, expect=state)

    def history(self, dossier):
        return self.poled.history(dossier)          # raw HISTORY

    def state(self, dossier):
        return self.poled.show(dossier)["state"]

    def events(self, dossier, name, **fields):
        """The history entries of `dossier` named `name` whose fields match
        (values compared as strings)."""
        out = []
        for e in self.history(dossier):
            if e["event"] != name:
                continue
            if all(str(e["fields"].get(k)) == str(v)
                   for k, v in fields.items()):
                out.append(e)
        return out

    def overdue_ids(self):
        rows = self.poled.ctl_json("list", "--overdue", "--json")
        self.assertIsInstance(rows, list)
        return [r["id"] for r in rows]

    def agenda(self, days=None):
        args = ["agenda"]
        if days is not None:
            args += ["--days", str(days)]
        rows = self.poled.ctl_json(*args, "--json")
        self.assertIsInstance(rows, list, "agenda --json: an array")
        return rows

    # the clock ----------------------------------------------------------
    def clock(self, *args, **kw):
        rc, out, err = self.ctl("clock", *args, **kw)
        return parse_clock(out)

    def clock_set(self, date):
        now, mode = self.clock("set", date)
        self.assertEqual(mode, "simulated")
        self.assertEqual(now.date(), day(date), "clock set %s prints the "
                         "new time" % date)
        return now

    def clock_advance(self, days):
        before, _ = self.clock()
        now, mode = self.clock("advance", str(days))
        self.assertEqual(mode, "simulated")
        moved = now - before
        self.assertGreaterEqual(moved, datetime.timedelta(days=days),
                                "clock advance %d: %s -> %s"
                                % (days, before, now))
        self.assertLess(moved, datetime.timedelta(days=days, minutes=5))
        return now

    # waiting ------------------------------------------------------------
    def diagnostics(self):
        try:
            agenda = json.dumps(self.agenda(days=3650), ensure_ascii=False)
        except Exception as e:              # poled may be down
            agenda = "agenda unavailable: %s" % e
        try:
            clock = self.ctl("clock", check=False)[1].strip()
        except Exception as e:
            clock = "clock unavailable: %s" % e
        log = self.poled.log() if self.poled else ""
        return "\nclock: %s\nagenda: %s\npoled log (end):\n%s" % (
            clock, agenda[:4000], log[-3000:])

    def wait(self, predicate, timeout, what):
        """Poll predicate() until it returns something true (bounded)."""
        end = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > end:
                if callable(what):
                    what = what()
                self.fail("not within %.0fs: %s%s" % (timeout, what,
                                                      self.diagnostics()))
            time.sleep(0.05)

    def wait_event(self, dossier, name, timeout=10, **fields):
        """Wait until `dossier` has an event `name` with these fields;
        return the list of such events."""
        return self.wait(lambda: self.events(dossier, name, **fields),
                         timeout, lambda: "dossier %s: event %s %r; history: "
                         "%s" % (dossier, name, fields, json.dumps(
                             self.history(dossier), ensure_ascii=False)))

    def wait_state(self, dossier, state, timeout=10):
        return self.wait(lambda: self.state(dossier) == state, timeout,
                         lambda: "dossier %s in %s; history: %s"
                         % (dossier, state, json.dumps(
                             self.history(dossier), ensure_ascii=False)))

    # checks -------------------------------------------------------------
    def check_calendar_event(self, e, name, about, due, year=None,
                             state=None, now=None):
        """One reminder/overdue entry of a history."""
        self.assertEqual(e["event"], name)
        self.assertEqual(e["actor"], CAL, "sent by the calendar: %r" % e)
        self.assertEqual(e["fields"].get("about"), about, e)
        # `due`: the day the obligation is due (for a reminder too: the
        # deadline it reminds of, not the day of the reminder)
        self.assertRegex(e["fields"].get("due", ""), DATE_RE, e)
        self.assertEqual(e["fields"]["due"], due, e)
        if year is None:
            self.assertIn(e["fields"].get("year"), (None, ""), e)
        else:
            self.assertEqual(str(e["fields"].get("year")), str(year), e)
        if state is not None:
            self.assertEqual((e["from"], e["to"]), (state, state),
                             "reminder/overdue change no state: %r" % e)
        self.assertRegex(e["at"], TIMESTAMP_RE)
        # recorded on the simulated clock: not after the clock's present
        if now is not None:
            self.assertLessEqual(stamp(e["at"]), now + datetime.timedelta(
                minutes=5), "`at` follows the simulated clock: %r" % e)
        return e


# ---------------------------------------------------------------------------
# 1. the funded years walked by the clock

class TestFundedYears(CalendarCase):

    def test_years_opened_by_the_calendar_up_to_operating(self):
        p = self.start_poled()
        t0 = self.clock_set(f"{Y0}-01-01")
        d = self.open("Pays de Rennes", "Réso")
        self.walk(d, TO_YEAR_1)
        for e in self.history(d):
            self.assertTrue(e["at"].startswith(f"{Y0}-01-01T"),
                            "`at` follows the simulated clock: %r" % e)
        # year 1: the report before the year ends
        self.send(d, "file_annual_report", "year=1", expect="funding_year_1")
        now = self.clock_advance(366)                       # Y1-01-02
        self.assertEqual(now.date(), datetime.date(Y1, 1, 2))
        self.wait_state(d, "funding_year_2")
        snys = self.events(d, "start_next_year")
        self.assertEqual(len(snys), 1, snys)
        e = snys[0]
        self.assertEqual((e["actor"], e["from"], e["to"]),
                         (CAL, "funding_year_1", "funding_year_2"), e)
        self.assertGreaterEqual(day(e["at"]), datetime.date(Y1, 1, 1), e)
        self.assertLessEqual(stamp(e["at"]), now + datetime.timedelta(
            minutes=5), e)
        show = p.show(d)
        self.assertEqual(show["funding_year"], 2)

        # year 2 (Y1-01-01 .. Y2-01-01, contiguous): not filed 30 days
        # before it is due (Y2-01-31): one reminder on Y2-01-01
        rows = [r for r in self.agenda(days=400) if r["dossier"] == d]
        self.assertIn(("year_end", 2, f"{Y2}-01-01"),
                      [(r["kind"], r["year"], r["due"][:10]) for r in rows],
                      "year 2 starts when year 1 was due to end: %r" % rows)
        self.clock_advance(363)                             # Y1-12-31
        self.clock_advance(2)                               # Y2-01-02
        rem = self.wait_event(d, "reminder", about="annual_report", year=2)
        self.assertEqual(len(rem), 1, rem)
        self.check_calendar_event(rem[0], "reminder", "annual_report",
                                  f"{Y2}-01-31", year=2,
                                  state="funding_year_2")
        self.assertEqual(self.state(d), "funding_year_2",
                         "year_end waits for the report")
        # the report, late but before it is due: the year opens at once
        self.send(d, "file_annual_report", "year=2", expect=None)
        self.wait_state(d, "funding_year_3")
        snys = self.events(d, "start_next_year")
        self.assertEqual(len(snys), 2, snys)
        self.assertEqual((snys[1]["actor"], snys[1]["from"], snys[1]["to"]),
                         (CAL, "funding_year_2", "funding_year_3"))
        self.assertEqual(day(snys[1]["at"]), datetime.date(Y2, 1, 2))
        rows = [r for r in self.agenda(days=400) if r["dossier"] == d]
        kinds = [(r["kind"], r["year"], r["due"][:10]) for r in rows]
        self.check_later(("year_end", 3, f"{Y3}-01-01") in kinds,
                         "year 3 starts when year 2 was due to end "
                         "(Y3-01-01), although opened late: %r" % rows)
        self.assertNotIn(2, [r["year"] for r in rows],
                         "year 2's timers are done: %r" % rows)

        # year 3: filed in time, the clock alone leads to operating
        self.send(d, "file_annual_report", "year=3", expect="funding_year_3")
        now = self.clock_advance(366)                       # Y3-01-02
        self.assertEqual(now.date(), datetime.date(Y3, 1, 2))
        self.wait_state(d, "operating")
        snys = self.events(d, "start_next_year")
        self.assertEqual([(x["actor"], x["from"], x["to"]) for x in snys],
                         [(CAL, "funding_year_1", "funding_year_2"),
                          (CAL, "funding_year_2", "funding_year_3"),
                          (CAL, "funding_year_3", "operating")])
        self.assertEqual(day(snys[2]["at"]).year, Y3)

        # the whole history: at times follow the simulated clock, in order
        h = self.history(d)
        ats = [stamp(e["at"]) for e in h]
        self.assertEqual(ats, sorted(ats), "history in time order")
        self.assertGreaterEqual(ats[0], t0)
        self.assertLess(ats[-1], now + datetime.timedelta(minutes=5))
        self.assertEqual(sorted({a.year for a in ats}),
                         [Y0, Y1, Y2, Y3])
        self.assertEqual(self.events(d, "overdue"), [], "nothing overdue")
        self.assertEqual(len(self.events(d, "reminder")), 1,
                         "reports 1 and 3 were filed in time: no reminder")
        self.assertEqual(sorted(p.show(d)["reports_filed"]), [1, 2, 3])
        self.assertNotIn(d, self.overdue_ids())
        self.assertEqual([r for r in self.agenda(days=3650)
                          if r["dossier"] == d], [],
                         "no open timer once operating")
        self.finish()


    def test_year_opened_early_by_hand_starts_then(self):
        p = self.start_poled()
        self.clock_set(f"{Y0}-01-01")
        d = self.open("Pays de Saint-Brieuc", "Saint-Brieuc ESS")
        self.walk(d, TO_YEAR_1)                 # year 1 would end Y1-01-01
        self.send(d, "file_annual_report", "year=1", expect="funding_year_1")
        self.clock_advance(14)                  # Y0-01-15
        b = self.open("Guingamp", "Guingamp ESS")
        self.walk(b, TO_STUDY_FUNDED)           # the barrier, due Y1-01-15
        self.clock_advance(137)                 # Y0-06-01
        self.send(d, "start_next_year", expect="funding_year_2")
        rows = [(r["kind"], r["year"], r["due"][:10])
                for r in self.agenda(days=500) if r["dossier"] == d]
        self.assertEqual(sorted(rows),
                         [("report_due", 2, f"{Y1}-07-01"),
                          ("report_reminder", 2, f"{Y1}-06-01"),
                          ("year_end", 2, f"{Y1}-06-01")],
                         "year 2 opened by hand starts then; year 1's "
                         "timers are done")
        self.clock_advance(250)                 # Y1-02-06
        self.wait_event(b, "overdue", about="study_deadline")
        self.assertEqual(self.state(d), "funding_year_2",
                         "year 1's end opens nothing more")
        self.assertEqual([(e["event"], e["actor"]) for e in self.history(d)
                          if e["event"] == "start_next_year"
                          or e["actor"] == CAL],
                         [("start_next_year", "holder")])
        self.assertEqual(p.stop(), 0, p.log())


# ---------------------------------------------------------------------------
# 2. a missing report

class TestMissingReport(CalendarCase):

    def test_one_overdue_then_the_report_opens_the_year(self):
        p = self.start_poled()
        self.clock_set(f"{Y0}-01-01")
        d = self.open("Brest", "ADESS")
        self.walk(d, TO_YEAR_1)                 # year 1: Y0-01-01..Y1-01-01
        idle = self.open("Vannes", "E2S")       # a draft: never overdue
        self.clock_advance(59)                  # Y0-03-01
        # the barrier: a study due Y1-03-01 (reminder Y1-01-30)
        b = self.open("Morlaix", "ADESS Morlaix")
        self.walk(b, TO_STUDY_FUNDED)

        self.clock_advance(307)                 # Y1-01-02
        rem = self.wait_event(d, "reminder", about="annual_report", year=1)
        self.check_calendar_event(rem[0], "reminder", "annual_report",
                                  f"{Y1}-01-31", year=1,
                                  state="funding_year_1")
        self.assertEqual(self.state(d), "funding_year_1",
                         "no report: year_end waits")

        now = self.clock_advance(30)            # Y1-02-01
        over = self.wait_event(d, "overdue")
        self.assertEqual(len(over), 1, over)
        self.check_calendar_event(over[0], "overdue", "annual_report",
                                  f"{Y1}-01-31", year=1,
                                  state="funding_year_1", now=now)
        self.assertGreaterEqual(day(over[0]["at"]),
                                datetime.date(Y1, 1, 31))
        ids = self.overdue_ids()
        self.assertIn(d, ids)
        self.assertNotIn(idle, ids)
        self.assertNotIn(b, ids, "the study is not due before Y1-03-01")
        raw = p.query(b"LIST", "overdue=1")
        self.assertEqual([r["id"] for r in raw], ids, "LIST overdue=1")
        rc, out, err = self.ctl("list", "--overdue")
        self.assertIn(str(d), out)
        rows = [r for r in self.agenda() if r["dossier"] == d]
        due = [r for r in rows if r["kind"] == "report_due"]
        self.assertEqual(len(due), 1, "the overdue obligation: %r" % rows)
        self.assertEqual((due[0]["year"], due[0]["due"][:10],
                          due[0]["state"], due[0]["pays"]),
                         (1, f"{Y1}-01-31", "overdue", "Brest"), due)

        # further on: still exactly one overdue, one reminder
        self.clock_advance(40)                  # Y1-03-13
        bo = self.wait_event(b, "overdue", about="study_deadline")
        self.assertEqual(len(bo), 1)
        self.assertEqual(len(self.events(d, "overdue")), 1,
                         "overdue only once: %r" % self.history(d))
        self.assertEqual(len(self.events(d, "reminder")), 1)
        self.assertEqual(self.state(d), "funding_year_1")
        self.assertEqual(sorted(self.overdue_ids()), sorted([d, b]))

        # the report, late: the next year opens at once, the flag is cleared
        self.send(d, "file_annual_report", "year=1")
        self.wait_state(d, "funding_year_2")
        sny = self.events(d, "start_next_year")
        self.assertEqual(len(sny), 1, sny)
        self.assertEqual((sny[0]["actor"], sny[0]["from"], sny[0]["to"]),
                         (CAL, "funding_year_1", "funding_year_2"))
        self.assertEqual(day(sny[0]["at"]), datetime.date(Y1, 3, 13))
        self.assertEqual(self.overdue_ids(), [b])
        rows = [r for r in self.agenda(days=400) if r["dossier"] == d]
        self.assertNotIn("overdue", [r["state"] for r in rows], rows)
        self.check_later(("year_end", 2, f"{Y2}-01-01") in
                         [(r["kind"], r["year"], r["due"][:10])
                          for r in rows],
                         "year 2 starts when year 1 was due to end "
                         "(Y2-01-01), although opened late: %r" % rows)
        self.assertEqual(len(self.events(d, "overdue")), 1)
        self.finish()


# ---------------------------------------------------------------------------
# 3. the study deadline

class TestStudyDeadline(CalendarCase):

    def test_reminder_then_overdue_unless_delivered(self):
        p = self.start_poled({"clock": "simulated",
                              "study_deadline_months": 12,
                              "study_reminder_days": 30})
        self.clock_set(f"{Y0}-01-01")
        ok = self.open("Dinan", "Dinan ESS")            # delivers in time
        self.walk(ok, TO_STUDY_FUNDED)                  # due Y1-01-01
        self.clock_advance(1)                           # Y0-01-02
        late = self.open("Fougères", "Fougères ESS")    # never delivers
        self.walk(late, TO_STUDY_FUNDED)                # due Y1-01-02

        rows = [r for r in self.agenda(days=400) if r["dossier"] == late]
        self.assertEqual([(r["kind"], r["due"][:10]) for r in rows],
                         [("study_reminder", f"{Y0}-12-03"),
                          ("study_deadline", f"{Y1}-01-02")], rows)
        self.clock_advance(200)                         # Y0-07-21
        self.walk(ok, [DELIVER])
        self.assertEqual([r for r in self.agenda(days=400)
                          if r["dossier"] == ok], [],
                         "deliver_study settles the study timers")

        now = self.clock_advance(196)                   # Y1-02-02
        over = self.wait_event(late, "overdue")
        self.assertEqual(len(over), 1, over)
        self.check_calendar_event(over[0], "overdue", "study_deadline",
                                  f"{Y1}-01-02", state="study_funded",
                                  now=now)
        rem = self.events(late, "reminder")
        self.assertEqual(len(rem), 1, rem)
        self.check_calendar_event(rem[0], "reminder", "study_deadline",
                                  f"{Y1}-01-02",
                                  state="study_funded", now=now)
        self.assertLess(rem[0]["seq"], over[0]["seq"],
                        "the reminder comes before the overdue")
        self.assertLessEqual(rem[0]["at"], over[0]["at"])
        # the one delivered in time: nothing from the calendar
        self.assertEqual([e["event"] for e in self.history(ok)
                          if e["actor"] == CAL], [])
        self.assertEqual(self.state(ok), "study_delivered")
        ids = self.overdue_ids()
        self.assertIn(late, ids)
        self.assertNotIn(ok, ids)

        # delivered late: the overdue study is settled, the flag cleared
        self.walk(late, [DELIVER])
        self.assertNotIn(late, self.overdue_ids())
        self.assertEqual([r for r in self.agenda(days=400)
                          if r["dossier"] == late], [])
        self.assertEqual(len(self.events(late, "overdue")), 1)
        self.assertEqual(p.stop(), 0, p.log())


# ---------------------------------------------------------------------------
# 4. restarts across a due date

class TestRestart(CalendarCase):

    def counts(self, d):
        h = self.history(d)
        return ([e["event"] for e in h].count("reminder"),
                [e["event"] for e in h].count("overdue"))

    def test_sigterm_then_due_date_fires_once(self):
        p = self.start_poled()
        self.clock_set(f"{Y0}-01-01")
        d = self.open("Lorient", "Lorient ESS")
        self.walk(d, TO_STUDY_FUNDED)           # due Y1-01-01
        self.clock_advance(100)                 # Y0-04-11
        b = self.open("Auray", "Auray ESS")     # the barrier, due Y1-04-11
        self.walk(b, TO_STUDY_FUNDED)
        before, _ = self.clock()

        self.assertEqual(p.stop(), 0, p.log())
        p.start()
        now, mode = self.clock()
        self.assertEqual(mode, "simulated")
        self.assertGreaterEqual(now, before, "the offset is kept")
        self.assertEqual(now.date(), datetime.date(Y0, 4, 11))
        self.assertEqual(self.counts(d), (0, 0))

        self.clock_advance(270)                 # Y1-01-06
        self.wait_event(d, "overdue", about="study_deadline")
        self.assertEqual(self.counts(d), (1, 1))
        p.restart()
        self.clock_advance(100)                 # Y1-04-16
        self.wait_event(b, "overdue", about="study_deadline")
        self.assertEqual(self.counts(b), (1, 1))
        self.assertEqual(self.counts(d), (1, 1),
                         "fired once across restarts: %r" % self.history(d))
        self.assertEqual(p.stop(), 0, p.log())

    def test_kill9_right_after_the_clock_moves(self):
        p = self.start_poled()
        self.clock_set(f"{Y0}-01-01")
        d = self.open("Pontivy", "Pontivy ESS")
        self.walk(d, TO_STUDY_FUNDED)           # study due Y1-01-01
        y = self.open("Saint-Malo", "Horizons solidaires")
        self.walk(y, TO_YEAR_1)                 # year 1 ends Y1-01-01
        self.send(y, "file_annual_report", "year=1")
        self.clock_advance(100)                 # Y0-04-11
        b = self.open("Auray", "Auray ESS")     # the barrier, due Y1-04-11
        self.walk(b, TO_STUDY_FUNDED)

        rc, out, err = self.ctl("clock", "advance", "270")   # Y1-01-06
        p.kill()                                # right after the ack
        acked, _ = parse_clock(out)
        p.start()
        now, mode = self.clock()
        self.assertGreaterEqual(now, acked,
                                "an acknowledged clock move survives -9")
        self.wait_event(d, "overdue", about="study_deadline")
        self.wait_state(y, "funding_year_2")
        self.assertEqual(self.counts(d), (1, 1))

        p.kill()
        p.start()
        self.clock_advance(100)                 # Y1-04-16
        self.wait_event(b, "overdue", about="study_deadline")
        self.assertEqual(self.counts(d), (1, 1),
                         "fired once across crashes: %r" % self.history(d))
        self.assertEqual(self.state(y), "funding_year_2")
        sny = self.events(y, "start_next_year")
        self.assertEqual([(e["actor"], e["to"]) for e in sny],
                         [(CAL, "funding_year_2")], sny)
        self.assertEqual(p.stop(), 0, p.log())


class TestTerminal(CalendarCase):

    def test_terminal_cancels_and_reopen_does_not_rearm(self):
        p = self.start_poled()
        self.clock_set(f"{Y0}-01-01")
        w = self.open("Centre Bretagne", "CB ESS")
        self.walk(w, TO_STUDY_FUNDED)           # study due Y1-01-01
        c = self.open("Brocéliande", "BRAS")
        self.walk(c, TO_YEAR_1)                 # year 1 ends Y1-01-01
        self.clock_advance(10)                  # Y0-01-11
        b = self.open("Ploërmel-Cœur de Bretagne", "PCB ESS")
        self.walk(b, TO_STUDY_FUNDED)           # the barrier, due Y1-01-11
        self.send(w, "withdraw", "reason=abandoned", expect="withdrawn")
        self.send(c, "close", "reason=stopped", actor="region",
                  expect="closed")
        rows = self.agenda(days=3650)
        self.assertEqual([r for r in rows if r["dossier"] in (w, c)], [],
                         "a terminal state cancels every open timer: %r"
                         % rows)
        self.send(w, "reopen", "reason=mistake", actor="region",
                  expect="study_funded")
        self.assertEqual([r for r in self.agenda(days=3650)
                          if r["dossier"] == w], [],
                         "reopen does not re-arm the timers")
        self.clock_advance(400)                 # Y1-02-05
        self.wait_event(b, "overdue", about="study_deadline")
        for d in (w, c):
            self.assertEqual([e["event"] for e in self.history(d)
                              if e["actor"] == CAL], [],
                             "nothing from the calendar for dossier %d" % d)
        self.assertEqual(self.state(c), "closed")
        self.assertEqual(self.overdue_ids(), [b])
        self.assertEqual(p.stop(), 0, p.log())


# ---------------------------------------------------------------------------
# 5. the clock

class TestClock(CalendarCase):

    def test_real_clock_refuses_set_and_advance(self):
        for calendar in (None, {"clock": "real"}):
            with self.subTest(calendar=calendar):
                p = self.start_poled(calendar)
                now, mode = self.clock()
                self.assertEqual(mode, "real")
                wall = datetime.datetime.now(datetime.timezone.utc)
                self.assertLess(abs(now - wall),
                                datetime.timedelta(minutes=2))
                for args in (("set", f"{Y0}-01-01"), ("advance", "1")):
                    rc, out, err = self.ctl("clock", *args, check=False)
                    self.assertEqual(rc, 1, "clock %s: %s %s"
                                     % (args, out, err))
                    self.assertIn("clock", err)
                    self.assertIn("refused by rule clock", err)
                # the protocol
                rid = new_request_id("ck")
                reply = p.request(SIGNATURE, "CLOCK", rid, "admin", "get", "")
                self.assertEqual(reply[:3], [SIGNATURE, rid.encode(), b"OK"],
                                 reply)
                self.assertRegex(reply[3].decode(), TIMESTAMP_RE)
                self.assertEqual(reply[4], b"real")
                rid = new_request_id("ck")
                reply = p.request(SIGNATURE, "CLOCK", rid, "admin", "advance",
                                  "1")
                self.assertEqual(error_reply(reply)[1:2], ("REFUSED",))
                self.assertEqual(error_reply(reply)[3], "clock")
                # an event carries the real time
                d = self.open("Guingamp")
                at = stamp(self.history(d)[0]["at"])
                self.assertLess(abs(at - wall), datetime.timedelta(minutes=2))
                self.assertEqual(p.stop(), 0, p.log())

    def test_simulated_clock_never_goes_back_before_an_event(self):
        p = self.start_poled()
        self.clock_set(f"{Y0}-06-01")
        # the same set again (a resend after a lost reply): a success
        again, mode = self.clock("set", f"{Y0}-06-01")
        self.assertEqual((again.date(), mode),
                         (datetime.date(Y0, 6, 1), "simulated"))
        now = self.clock_advance(10)
        self.assertEqual(now.date(), datetime.date(Y0, 6, 11))
        got, mode = self.clock()
        self.assertEqual(mode, "simulated")
        self.assertGreaterEqual(got, now)
        # once moved, never back, even with no event recorded yet
        rc, out, err = self.ctl("clock", "set", f"{Y0}-06-05", check=False)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("refused by rule clock", err)
        d = self.open("Vitré-Porte de Bretagne")
        self.assertTrue(self.history(d)[0]["at"].startswith(f"{Y0}-06-11T"))
        # before the last recorded event: refused, the clock unchanged
        rc, out, err = self.ctl("clock", "set", f"{Y0}-06-05", check=False)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("refused by rule clock", err)
        rid = new_request_id("ck")
        r = error_reply(p.request(SIGNATURE, "CLOCK", rid, "admin", "set",
                                  f"{Y0}-01-01"))
        self.assertEqual((r[0], r[1], r[3]), (rid, "REFUSED", "clock"), r)
        # bad usage (CLI.md): not a day of the calendar, days out of range
        for args in (("set", f"{Y0}-02-30"), ("advance", "0"),
                     ("advance", "-3"), ("advance", "36501")):
            rc, out, err = self.ctl("clock", *args, check=False)
            self.assertEqual(rc, 2, "clock %s: %s %s" % (args, out, err))
        after, _ = self.clock()
        self.assertEqual(after.date(), datetime.date(Y0, 6, 11),
                         "the refused moves changed nothing")
        # forward is fine, and events carry the simulated time
        self.clock_set(f"{Y0}-09-01")
        self.send(d, "note", "text=later", expect="draft")
        h = self.history(d)
        self.assertTrue(h[-1]["at"].startswith(f"{Y0}-09-01T"), h)
        rc, out, err = self.ctl("clock", "set", f"{Y0}-08-01", check=False)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("refused by rule clock", err)
        ats = [e["at"] for e in self.history(d)]
        self.assertEqual(ats, sorted(ats), "the history's times never run "
                         "backwards")
        self.assertEqual(p.stop(), 0, p.log())


class TestFirstSet(CalendarCase):
    """A fresh simulated clock may be set to any date (the demo replays
    2010); it never goes back before the last recorded event."""

    def test_fresh_simulated_clock_can_be_set_to_2010(self):
        p = self.start_poled()
        rc, out, err = self.ctl("clock", "set", "2010-01-01", check=False)
        self.assertEqual(rc, 0, "the first clock set of a fresh simulated "
                         "clock: %s %s" % (out, err))
        now, mode = parse_clock(out)
        self.assertEqual((now.date(), mode),
                         (datetime.date(2010, 1, 1), "simulated"))
        d = self.open("Dinan")
        self.assertTrue(self.history(d)[0]["at"].startswith("2010-01-01T"))
        rc, out, err = self.ctl("clock", "set", "2009-12-31", check=False)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("refused by rule clock", err)
        self.assertEqual(p.stop(), 0, p.log())


# ---------------------------------------------------------------------------
# 6. only the calendar sends reminder and overdue

class TestCalendarOnly(CalendarCase):

    def test_clients_cannot_send_calendar_events(self):
        p = self.start_poled()
        self.clock_set(f"{Y0}-01-01")
        d = self.open("Redon et Vilaine", "CADES")
        self.walk(d, TO_STUDY_FUNDED)
        before = self.history(d)
        for event in ("reminder", "overdue"):
            for actor in ("holder", "cres", "region", "admin", CAL):
                with self.subTest(event=event, actor=actor):
                    rc, out, err = self.ctl(
                        "send", d, event, "about=study_deadline",
                        "due=2011-01-01", actor=actor, check=False)
                    self.assertEqual(rc, 1, "%s as %s: %s %s"
                                     % (event, actor, out, err))
                    self.assertIn("refused by rule calendar_only", err)
            rid = new_request_id("co")
            reply = p.request(SIGNATURE, "EVENT", rid, CAL, str(d), "",
                              event, "about=annual_report", "due=2011-01-31",
                              "year=1")
            r = error_reply(reply)
            self.assertEqual((r[0], r[1], r[3]),
                             (rid, "REFUSED", "calendar_only"), r)
        self.assertEqual(self.history(d), before, "nothing recorded")
        rc, out, err = self.ctl("send", "--help")
        self.assertIn("overdue", out + err)
        self.assertEqual(p.stop(), 0, p.log())


# ---------------------------------------------------------------------------
# 7. the agenda

class TestAgenda(CalendarCase):

    def test_keys_window_and_order(self):
        p = self.start_poled()
        self.clock_set(f"{Y0}-01-01")
        d = self.open("Rennes", "Réso")
        self.walk(d, TO_YEAR_1)
        s = self.open("Cornouaille", "Cornouaille ESS")
        self.walk(s, TO_STUDY_FUNDED)   # reminder Y0-12-02, due Y1-01-01

        rows = self.agenda(days=400)
        for r in rows:
            self.assertLessEqual(AGENDA_KEYS, set(r), r)
            self.assertRegex(r["due"][:10], r"^\d{4}-\d{2}-\d{2}$")
        dues = [r["due"] for r in rows]
        self.assertEqual(dues, sorted(dues), "ordered by due date: %r" % rows)
        mine = [r for r in rows if r["dossier"] == d]
        self.assertEqual(sorted((r["kind"], r["year"], r["due"][:10])
                                for r in mine),
                         [("report_due", 1, f"{Y1}-01-31"),
                          ("report_reminder", 1, f"{Y1}-01-01"),
                          ("year_end", 1, f"{Y1}-01-01")], mine)
        self.assertEqual(mine[-1]["kind"], "report_due")
        for r in mine:
            self.assertEqual(r["pays"], "Rennes")
            self.assertIn(r["state"], TIMER_STATES)
        study = [(r["kind"], r["due"][:10]) for r in rows
                 if r["dossier"] == s]
        self.assertEqual(study, [("study_reminder", f"{Y0}-12-02"),
                                 ("study_deadline", f"{Y1}-01-01")])
        for r in rows:
            if r["dossier"] == s:
                self.assertEqual((r["pays"], r["year"]),
                                 ("Cornouaille", None))

        # the window: --days 340 reaches Y0-12-07, --days 300 Y0-10-28
        self.assertEqual([(r["dossier"], r["kind"])
                          for r in self.agenda(days=340)],
                         [(s, "study_reminder")])
        self.assertEqual(self.agenda(days=300), [])
        self.assertEqual(self.agenda(), [], "default: 90 days")
        # the protocol answers the same array
        self.assertEqual(p.query(b"AGENDA", "400"), rows)
        # the lines for people
        rc, out, err = self.ctl("agenda", "--days", "400")
        lines = [l for l in out.splitlines() if "report_due" in l]
        self.assertEqual(len(lines), 1, out)
        self.assertRegex(lines[0], r"^%s-01-31 +%d +Rennes +report_due +1 +"
                         r"armed$" % (Y1, d))
        lines = [l for l in out.splitlines() if "study_reminder" in l]
        self.assertEqual(len(lines), 1, out)
        self.assertRegex(lines[0], r"^%s-12-02 +%d +Cornouaille +"
                         r"study_reminder +- +armed$" % (Y0, s))
        self.assertEqual(p.stop(), 0, p.log())


# ---------------------------------------------------------------------------
# 8. reminder and overdue reach the coordinators

class TestNotified(CalendarCase):

    def test_reminder_and_overdue_through_the_outbox(self):
        base = None if len(tempfile.gettempdir()) < 60 else "/tmp"
        tmp = tempfile.TemporaryDirectory(prefix="pole-cal-", dir=base)
        self.addCleanup(tmp.cleanup)
        cmd = receivers.CommandReceiver(tmp.name)
        coordinators = [
            {"name": "Suivi", "channel": "command", "address": cmd.path},
            {"name": "Retards", "channel": "command", "address": cmd.path,
             "events": ["overdue"]},
        ]
        p = self.start_poled(notify={"backoff_initial_ms": 100,
                                     "backoff_max_ms": 500,
                                     "max_attempts": 50},
                             coordinators=coordinators)
        self.clock_set(f"{Y0}-01-01")
        d = self.open("Saint-Brieuc", "Saint-Brieuc ESS")
        self.walk(d, TO_STUDY_FUNDED)

        # the live stream: subscribed (and seen to work) before the clock
        sub = polehelp.CTX.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        self.addCleanup(sub.close, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(p.pub_endpoint)
        end = time.monotonic() + 10
        while True:
            self.send(d, "note", "text=ping", expect="study_funded")
            if sub.poll(200, zmq.POLLIN):
                break
            self.assertLess(time.monotonic(), end, "no live stream")
        stream = []

        self.clock_advance(400)
        over = self.wait_event(d, "overdue", about="study_deadline")[0]
        rem = self.events(d, "reminder")[0]

        def calendar_rows():
            rows = p.ctl_json("outbox", "--json")
            rows = [r for r in rows if r["event"] in ("reminder", "overdue")]
            return (len(rows) == 3
                    and all(r["state"] == "delivered" for r in rows)
                    and rows)
        rows = self.wait(calendar_rows, 15,
                         lambda: "3 reminder/overdue notifications "
                         "delivered: %r" % p.ctl_json("outbox", "--json"))
        self.assertEqual(sorted(r["id"] for r in rows),
                         sorted(["%d-0" % rem["seq"], "%d-0" % over["seq"],
                                 "%d-1" % over["seq"]]))
        for r in rows:
            self.assertEqual((r["dossier"], r["pays"]), (d, "Saint-Brieuc"))
            self.assertEqual(day(r["created_at"]).year, Y1,
                             "the outbox reads the simulated clock: %r" % r)

        got = cmd.wait_for(lambda recs: len([
            x for x in recs if x.get("POLE_EVENT") in ("reminder", "overdue")
        ]) >= 3 and recs, 10)
        self.assertTrue(got, "the command ran for each: %r" % cmd.records())
        recs = [x for x in got
                if x.get("POLE_EVENT") in ("reminder", "overdue")]
        self.assertEqual(sorted((x["POLE_COORDINATOR"], x["POLE_EVENT"])
                                for x in recs),
                         [("Retards", "overdue"), ("Suivi", "overdue"),
                          ("Suivi", "reminder")])
        for x in recs:
            self.assertEqual(x["POLE_ACTOR"], CAL)
            self.assertEqual(x["POLE_DOSSIER"], str(d))
            self.assertEqual((x["POLE_FROM"], x["POLE_TO"]),
                             ("study_funded", "study_funded"))
            n = json.loads(x["POLE_PAYLOAD"])
            self.assertEqual(n["actor"], CAL)
            self.assertEqual(n["fields"].get("about"), "study_deadline")
            self.assertRegex(n["fields"].get("due", ""), DATE_RE)
            entry = rem if x["POLE_EVENT"] == "reminder" else over
            self.assertEqual(n["seq"], entry["seq"])
            self.assertEqual(n["at"], entry["at"])
        # ... and on the live stream, after the notes, in commit order
        end = time.monotonic() + 10
        while not any(json.loads(m[2])["event"] == "overdue" for m in stream):
            left = end - time.monotonic()
            self.assertGreater(left, 0, "overdue on the live stream: %r"
                               % stream)
            if sub.poll(int(left * 1000), zmq.POLLIN):
                stream.append(sub.recv_multipart())
        cal = [(m[0].decode(), json.loads(m[2])) for m in stream
               if json.loads(m[2])["actor"] == CAL]
        self.assertEqual([t for t, n in cal],
                         ["Saint-Brieuc/study_funded/reminder",
                          "Saint-Brieuc/study_funded/overdue"], stream)
        self.assertEqual([n["seq"] for t, n in cal],
                         [rem["seq"], over["seq"]])
        self.assertEqual(p.stop(), 0, p.log())


if __name__ == "__main__":
    unittest.main()


class TestRequestIds(CalendarCase):
    """A client may choose any request id: none of them can stand in the way
    of the calendar (its events carry no request id; the timer's state makes
    them once-only)."""

    def test_client_request_ids_cannot_jam_a_timer(self):
        p = self.start_poled()
        self.clock_set(f"{Y0}-01-01")
        d = self.open("Pontivy", "Pontivy ESS")
        self.walk(d, TO_STUDY_FUNDED)
        # ids a calendar might once have used, taken first by a client
        for rid in ("calendar-1-fired", "calendar-2-fired",
                    "calendar-1-overdue", "calendar-2-overdue"):
            rc, out, err = self.ctl("--request-id", rid, "send", str(d),
                                    "note", "text=%s" % rid)
            self.assertEqual(rc, 0, err)
        self.clock_advance(400)
        self.assertEqual(len(self.wait_event(d, "overdue")), 1)
        self.assertEqual(len(self.events(d, "reminder")), 1)
        self.assertEqual([r["state"] for r in self.agenda(days=0)
                          if r["dossier"] == d], ["overdue"])
        self.assertEqual(p.stop(), 0, p.log())


class TestTimeOrder(CalendarCase):
    """The log's times never run backwards (reports as of a day rely on it),
    and a funded year opened late counts from when it started."""

    def test_events_never_stamped_before_the_last_one(self):
        p = self.start_poled()
        self.clock_set("2030-06-01")
        d = self.open("Redon et Vilaine", "Redon ESS")
        # the same database under the real clock, years behind
        self.assertEqual(p.stop(), 0, p.log())
        with open(p.config, encoding="utf-8") as f:
            text = f.read()
        self.assertIn('clock = "simulated";', text)
        text = text.replace('clock = "simulated";', 'clock = "real";')
        with open(p.config, "w", encoding="utf-8") as f:
            f.write(text)
        p.start()
        self.assertEqual(self.clock()[1], "real")
        self.send(d, "note", "text=after the clock went back")
        ats = [e["at"] for e in self.history(d)]
        self.assertEqual(ats, sorted(ats), ats)
        self.assertTrue(ats[-1].startswith("2030-06-01"), ats)
        # as of a day before 2030, the dossier did not exist yet
        report = self.poled.ctl_json("report", "--as-of", "2027-01-01",
                                     "--json")
        self.assertEqual(report["dossiers"], 0, report)
        self.assertEqual(p.stop(), 0, p.log())

    def test_a_late_year_counts_in_the_year_it_started(self):
        p = self.start_poled()
        self.clock_set("2009-12-20")
        d = self.open("Auray", "Auray ESS")
        self.walk(d, TO_STUDY_FUNDED)
        self.send(d, "deliver_study", "diagnosis=d", "priority_actions=a",
                  "governance=g", actor="holder")
        self.send(d, "validate", "stakeholders=A,B", actor="cres")
        self.send(d, "create_pole", "mode=ex_nihilo", "name=P", actor="holder")
        self.send(d, "request_posts", "posts=1", actor="holder")
        self.send(d, "grant_posts", "posts=1", actor="region")
        self.send(d, "file_annual_report", "year=1", actor="holder")
        # year 1 ends 2010-12-20; the daemon sees it only in 2011
        self.clock_set("2011-01-10")
        self.wait_state(d, "funding_year_2")
        plan = self.poled.ctl_json("show", d, "--json")["funding_plan"]
        self.assertEqual([(e["year"], e["opened_at"][:10], e["calendar_year"])
                          for e in plan],
                         [(1, "2009-12-20", 2009), (2, "2010-12-20", 2010)])
        money = self.poled.ctl_json("report", "--json")["money"]
        self.assertEqual(money["post_funding_by_year"],
                         {"2009": 35000, "2010": 35000})
        self.assertEqual(p.stop(), 0, p.log())
