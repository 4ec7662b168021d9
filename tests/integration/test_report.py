"""Evaluation and reporting (docs/REPORT.md) through poled and polectl.

One event log is built once, through polectl, on a simulated clock
(docs/CALENDAR.md), six dossiers in four départements from 2009-03-01 to
2011-01-05; every figure the tests expect was worked out by hand from that
log (the table below) and is written as a literal, never recomputed by the
logic under test.

* REPORT now: every key, every state (0 included, lifecycle order), the
  départements, the Pays in configuration order (state of the latest live
  dossier), the Pays without a dossier, money by year and by funder;
  `polectl report --json` is the payload as received;
* REPORT as_of: before a grant it is absent, on the day of a transition it
  is included (end of day), before a withdraw the dossier is still live, the
  October 2010 report, the day before the first event; as of today equals
  the live report (apart from as_of); a bad as_of is a bad request;
* SHOW --json: funding_plan (year, opened_at, calendar_year, posts,
  amount_eur, report filed/due) and obligations (the open timers; the years
  contiguous even when opened late); `polectl show ID` for people: facts,
  funding plan, obligations, then history;
* the formats of polectl report: --csv (RFC 4180, CRLF, header
  section,key,value, known rows, a quoted comma), --markdown (table rows),
  --svg FILE (well-formed XML, also prints the report; exit 6 when FILE
  cannot be written), --as-of (the raw as_of payload; a bad day is bad
  usage). These fail until polectl has them (docs/REPORT.md).

Where the contract is silent, the tests stay on its clear side: B's late
year 2 opens in the same calendar year as its nominal start (2010), so the
two readings of "the calendar year it opens" agree.

The log (clock set to each day; the events carry that day's date):

  2009-03-01  A open Rennes(35); request_study 25000; grant_study 25000
              B open Brest(29); request_study 20000; grant_study 15000
              C open Dinan(22) (holder_type pays)
  2009-06-15  A deliver, validate, create_pole, request_posts 2,
                grant_posts 2 -> funding_year_1 (2009: 70000)
              C request_study 12000
  2009-09-01  B deliver, validate, create_pole (adossement), request_posts
                2, grant_posts 1 -> funding_year_1 (2009: 35000)
              D open Vannes(56); request_study 10000; grant_study 10000
              A add_cofunding CG Ille-et-Vilaine 20000 year 2009
  2010-02-01  C grant_study 12000
              A file_annual_report year=1
              E open Lorient(56) (collectivite); request_study 8000
  2010-03-10  E withdraw
  2010-04-01  F open "Pays de Lorient"; request_study 9000; grant_study 9000
  2010-06-16  the calendar opens A's year 2 (year 1 ended 2010-06-15, its
                report filed) -> funding_year_2 (2010: 70000)
  2010-11-15  (B's year 1 ended 2010-09-01, report not filed: overdue)
              B file_annual_report year=1 -> year 2 opened at once
                (2010: 35000)
              B add_cofunding CG Finistère 15000 year 2010
              A add_cofunding CG Ille-et-Vilaine 10000 year 2010
  2011-01-05  A add_cofunding CG Ille-et-Vilaine 5000 year 2010
              B add_cofunding "Crédit Coopératif, Brest" 5000 year 2011
              C deliver_study -> study_delivered
              D withdraw

Now (2011-01-05): A funding_year_2 (2 posts), B funding_year_2 (1 post),
C study_delivered, D withdrawn, E withdrawn, F study_funded.
"""

import csv
import io
import json
import os
import subprocess
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

import polehelp
from polehelp import (POLED, POLECTL, SIGNATURE, TERRITORIES, new_request_id,
                      error_reply)
from test_calendar import CalendarPoled

CAL = "calendar"
CG35 = "Conseil général d'Ille-et-Vilaine"
CG29 = "Conseil général du Finistère"
CREDCOOP = "Crédit Coopératif, Brest"      # a comma: quoted in CSV

REPORT_KEYS = {"as_of", "dossiers", "poles_running", "studies_under_way",
               "by_state", "by_departement", "by_pays",
               "pays_without_dossier", "study_granted_eur",
               "post_funding_eur_per_year", "cofunding_eur", "money"}
MONEY_KEYS = {"study_grants_by_year", "post_funding_by_year",
              "post_funding_eur", "cofunding_by_funder", "cofunding_by_year",
              "total_eur"}
STATE_ORDER = ["draft", "study_requested", "study_funded", "study_delivered",
               "validated", "pole_created", "posts_requested",
               "funding_year_1", "funding_year_2", "funding_year_3",
               "operating", "study_declined", "not_validated", "withdrawn",
               "closed"]
PAYS_ORDER = [name for name, dep in TERRITORIES]


def states(**counts):
    """by_state with every state at 0 but the ones given."""
    out = dict.fromkeys(STATE_ORDER, 0)
    for k, v in counts.items():
        assert k in out, k
        out[k] = v
    return out


def pays_rows(**given):
    """by_pays: every configured Pays with (dossiers, live, state); those
    not given have (0, 0, None). Keyword names use _ for spaces/dashes:
    pass a dict through **{...} for the accented ones."""
    rows = []
    for name, dep in TERRITORIES:
        n, live, state = given.get(name, (0, 0, None))
        rows.append({"pays": name, "departement": dep, "dossiers": n,
                     "live": live, "state": state})
    return rows


def deps(d22, d29, d35, d56):
    """by_departement from (dossiers, live, poles_running) tuples."""
    return {k: {"dossiers": v[0], "live": v[1], "poles_running": v[2]}
            for k, v in (("22", d22), ("29", d29), ("35", d35), ("56", d56))}


def without(*names):
    return [p for p in PAYS_ORDER if p not in names]


# ---------------------------------------------------------------------------
# The expected reports, worked out by hand from the log above.

NOW = "2011-01-05"

EXPECTED_NOW = {
    "dossiers": 6,
    "poles_running": 2,                       # A, B
    "studies_under_way": 1,                   # F
    "by_state": states(study_funded=1, study_delivered=1, funding_year_2=2,
                       withdrawn=2),
    "by_departement": deps((1, 1, 0), (1, 1, 1), (1, 1, 1), (3, 1, 0)),
    "by_pays": pays_rows(**{"Brest": (1, 1, "funding_year_2"),
                            "Dinan": (1, 1, "study_delivered"),
                            "Rennes": (1, 1, "funding_year_2"),
                            "Lorient": (2, 1, "study_funded"),
                            "Vannes": (1, 0, None)}),
    "pays_without_dossier": without("Brest", "Dinan", "Rennes", "Lorient",
                                    "Vannes"),
    "study_granted_eur": 71000,               # 25000+15000+10000+12000+9000
    "post_funding_eur_per_year": 105000,      # A 2 posts + B 1 post
    "cofunding_eur": 55000,                   # 20000+15000+10000+5000+5000
    "money": {
        "study_grants_by_year": {"2009": 50000, "2010": 21000},
        "post_funding_by_year": {"2009": 105000, "2010": 105000},
        "post_funding_eur": 210000,
        "cofunding_by_funder": {CG35: 35000, CG29: 15000, CREDCOOP: 5000},
        "cofunding_by_year": {"2009": 20000, "2010": 30000, "2011": 5000},
        "total_eur": 336000,                  # 71000 + 210000 + 55000
    },
}

EMPTY_MONEY = {"study_grants_by_year": {}, "post_funding_by_year": {},
               "post_funding_eur": 0, "cofunding_by_funder": {},
               "cofunding_by_year": {}, "total_eur": 0}

# the day before the first event: nothing at all
EXPECTED_2009_02_28 = {
    "as_of": "2009-02-28", "dossiers": 0, "poles_running": 0,
    "studies_under_way": 0, "by_state": states(),
    "by_departement": deps((0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0)),
    "by_pays": pays_rows(), "pays_without_dossier": list(PAYS_ORDER),
    "study_granted_eur": 0, "post_funding_eur_per_year": 0,
    "cofunding_eur": 0, "money": EMPTY_MONEY,
}

# the first day, at its end: A and B granted, C open
EXPECTED_2009_03_01 = {
    "as_of": "2009-03-01", "dossiers": 3, "poles_running": 0,
    "studies_under_way": 2, "by_state": states(draft=1, study_funded=2),
    "by_departement": deps((1, 1, 0), (1, 1, 0), (1, 1, 0), (0, 0, 0)),
    "by_pays": pays_rows(**{"Brest": (1, 1, "study_funded"),
                            "Dinan": (1, 1, "draft"),
                            "Rennes": (1, 1, "study_funded")}),
    "pays_without_dossier": without("Brest", "Dinan", "Rennes"),
    "study_granted_eur": 40000, "post_funding_eur_per_year": 0,
    "cofunding_eur": 0,
    "money": {"study_grants_by_year": {"2009": 40000},
              "post_funding_by_year": {}, "post_funding_eur": 0,
              "cofunding_by_funder": {}, "cofunding_by_year": {},
              "total_eur": 40000},
}

# "October 2010": A in year 2, B in year 1 (its report overdue), C, D, F
# studies under way, E withdrawn; nothing of November on.
EXPECTED_2010_10_31 = {
    "as_of": "2010-10-31", "dossiers": 6, "poles_running": 2,
    "studies_under_way": 3,
    "by_state": states(study_funded=3, funding_year_1=1, funding_year_2=1,
                       withdrawn=1),
    "by_departement": deps((1, 1, 0), (1, 1, 1), (1, 1, 1), (3, 2, 0)),
    "by_pays": pays_rows(**{"Brest": (1, 1, "funding_year_1"),
                            "Dinan": (1, 1, "study_funded"),
                            "Rennes": (1, 1, "funding_year_2"),
                            "Lorient": (2, 1, "study_funded"),
                            "Vannes": (1, 1, "study_funded")}),
    "pays_without_dossier": without("Brest", "Dinan", "Rennes", "Lorient",
                                    "Vannes"),
    "study_granted_eur": 71000,
    "post_funding_eur_per_year": 105000,      # A 2 posts (y2) + B 1 (y1)
    "cofunding_eur": 20000,
    "money": {"study_grants_by_year": {"2009": 50000, "2010": 21000},
              "post_funding_by_year": {"2009": 105000, "2010": 70000},
              "post_funding_eur": 175000,
              "cofunding_by_funder": {CG35: 20000},
              "cofunding_by_year": {"2009": 20000},
              "total_eur": 266000},           # 71000 + 175000 + 20000
}

# the day before the last: D not withdrawn yet, C not delivered yet, the
# two co-fundings of 2011-01-05 absent
EXPECTED_2011_01_04 = {
    "as_of": "2011-01-04", "dossiers": 6, "poles_running": 2,
    "studies_under_way": 3,
    "by_state": states(study_funded=3, funding_year_2=2, withdrawn=1),
    "by_departement": deps((1, 1, 0), (1, 1, 1), (1, 1, 1), (3, 2, 0)),
    "by_pays": pays_rows(**{"Brest": (1, 1, "funding_year_2"),
                            "Dinan": (1, 1, "study_funded"),
                            "Rennes": (1, 1, "funding_year_2"),
                            "Lorient": (2, 1, "study_funded"),
                            "Vannes": (1, 1, "study_funded")}),
    "pays_without_dossier": without("Brest", "Dinan", "Rennes", "Lorient",
                                    "Vannes"),
    "study_granted_eur": 71000,
    "post_funding_eur_per_year": 105000,
    "cofunding_eur": 45000,
    "money": {"study_grants_by_year": {"2009": 50000, "2010": 21000},
              "post_funding_by_year": {"2009": 105000, "2010": 105000},
              "post_funding_eur": 210000,
              "cofunding_by_funder": {CG35: 30000, CG29: 15000},
              "cofunding_by_year": {"2009": 20000, "2010": 25000},
              "total_eur": 326000},           # 71000 + 210000 + 45000
}


def setUpModule():
    if not (os.access(POLED, os.X_OK) and os.access(POLECTL, os.X_OK)):
        raise unittest.SkipTest("binaries not found in %s"
                                % polehelp.BUILD_DIR)


def report_help():
    p = subprocess.run([POLECTL, "report", "--help"],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30)
    return (p.stdout + p.stderr).decode("utf-8", "replace")


_SHARED = {}          # the one poled holding the log, for every class


def tearDownModule():
    poled = _SHARED.pop("poled", None)
    if poled is not None:
        rc = poled.stop()
        log = poled.log()
        poled.close()
        if rc != 0:
            raise AssertionError("poled exited %s on SIGTERM; log:\n%s"
                                 % (rc, log[-3000:]))


class ReportLog(unittest.TestCase):
    """The log above, built once (by the first class that needs it) and
    read by every test."""

    poled = None

    @classmethod
    def setUpClass(cls):
        if "error" in _SHARED:
            raise AssertionError("building the event log failed (see the "
                                 "first class): %s" % _SHARED["error"])
        if "poled" not in _SHARED:
            cls.poled = CalendarPoled(calendar={"clock": "simulated"})
            try:
                cls.build_log()
            except BaseException as e:
                log = cls.poled.log()
                cls.poled.close()
                _SHARED["error"] = str(e)
                raise AssertionError("building the event log failed: %s\n"
                                     "poled log (end):\n%s"
                                     % (e, log[-3000:]))
            _SHARED["poled"] = cls.poled
            _SHARED["ids"] = {k: getattr(cls, k) for k in "ABCDEF"}
        for k, v in _SHARED["ids"].items():
            setattr(ReportLog, k, v)
        ReportLog.poled = _SHARED["poled"]

    # -- building ---------------------------------------------------------
    @classmethod
    def ctl(cls, *args, **kw):
        return cls.poled.ctl(*args, **kw)

    @classmethod
    def day(cls, date):
        rc, out, err = cls.ctl("clock", "set", date)
        if not out.startswith(date + "T"):
            raise AssertionError("clock set %s printed %r" % (date, out))

    @classmethod
    def open(cls, pays, holder, holder_type="ess_actor"):
        rc, out, err = cls.ctl("open", "--pays", pays, "--holder", holder,
                               "--holder-type", holder_type, actor="holder")
        return int(out)

    @classmethod
    def send(cls, dossier, event, *fields, actor="holder", expect):
        rc, out, err = cls.ctl("send", dossier, event, *fields, actor=actor)
        if out.strip() != expect:
            raise AssertionError("%s on %s: %r, expected %s (%s)"
                                 % (event, dossier, out, expect, err))

    @classmethod
    def wait(cls, predicate, what, timeout=10.0):
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                raise AssertionError("not within %.0fs: %s" % (timeout, what))
            time.sleep(0.05)

    @classmethod
    def has_event(cls, dossier, event, **fields):
        return any(e["event"] == event
                   and all(str(e["fields"].get(k)) == str(v)
                           for k, v in fields.items())
                   for e in cls.poled.history(dossier))

    @classmethod
    def to_year_1(cls, d, posts, mode_fields):
        cls.send(d, "deliver_study", "diagnosis=diag",
                 "priority_actions=a,b", "governance=collegial",
                 expect="study_delivered")
        cls.send(d, "validate", "stakeholders=Scop,Asso,Mutuelle",
                 "stakeholder_types=cooperative,association,mutuelle",
                 actor="cres", expect="validated")
        cls.send(d, "create_pole", *mode_fields, expect="pole_created")
        cls.send(d, "request_posts", "posts=2", expect="posts_requested")
        cls.send(d, "grant_posts", "posts=%d" % posts, actor="region",
                 expect="funding_year_1")

    @classmethod
    def build_log(cls):
        region = "region"
        cls.day("2009-03-01")
        A = cls.A = cls.open("Rennes", "Réso solidaire")
        cls.send(A, "request_study", "amount=25000", expect="study_requested")
        cls.send(A, "grant_study", "amount=25000", actor=region,
                 expect="study_funded")
        B = cls.B = cls.open("Brest", "ADESS Pays de Brest")
        cls.send(B, "request_study", "amount=20000", expect="study_requested")
        cls.send(B, "grant_study", "amount=15000", actor=region,
                 expect="study_funded")
        C = cls.C = cls.open("Dinan", "Conseil de développement", "pays")

        cls.day("2009-06-15")
        cls.to_year_1(A, 2, ["mode=ex_nihilo", "name=Réso solidaire"])
        cls.send(C, "request_study", "amount=12000", expect="study_requested")

        cls.day("2009-09-01")
        cls.to_year_1(B, 1, ["mode=adossement", "name=ADESS",
                             "host=Maison des associations"])
        D = cls.D = cls.open("Vannes", "E2S")
        cls.send(D, "request_study", "amount=10000", expect="study_requested")
        cls.send(D, "grant_study", "amount=10000", actor=region,
                 expect="study_funded")
        cls.send(A, "add_cofunding", "funder=" + CG35, "amount=20000",
                 "year=2009", actor=region, expect="funding_year_1")

        cls.day("2010-02-01")
        cls.send(C, "grant_study", "amount=12000", actor=region,
                 expect="study_funded")
        cls.send(A, "file_annual_report", "year=1", expect="funding_year_1")
        E = cls.E = cls.open("Lorient", "Lorient agglo", "collectivite")
        cls.send(E, "request_study", "amount=8000", expect="study_requested")

        cls.day("2010-03-10")
        cls.send(E, "withdraw", "reason=the holder gave up",
                 expect="withdrawn")

        cls.day("2010-04-01")
        F = cls.F = cls.open("Pays de Lorient", "ESS Pays de Lorient")
        cls.send(F, "request_study", "amount=9000", expect="study_requested")
        cls.send(F, "grant_study", "amount=9000", actor=region,
                 expect="study_funded")

        # A's year 1 ended 2010-06-15, its report filed: the calendar opens
        # year 2
        cls.day("2010-06-16")
        cls.wait(lambda: cls.poled.show(A)["state"] == "funding_year_2",
                 "the calendar opens A's year 2")

        # B's year 1 ended 2010-09-01 without its report: overdue by now;
        # filing it opens year 2 at once
        cls.day("2010-11-15")
        cls.wait(lambda: cls.has_event(B, "overdue", about="annual_report",
                                       year=1),
                 "B's annual report 1 overdue")
        cls.send(B, "file_annual_report", "year=1", expect="funding_year_1")
        cls.wait(lambda: cls.poled.show(B)["state"] == "funding_year_2",
                 "filing the late report opens B's year 2")
        cls.send(B, "add_cofunding", "funder=" + CG29, "amount=15000",
                 "year=2010", actor=region, expect="funding_year_2")
        cls.send(A, "add_cofunding", "funder=" + CG35, "amount=10000",
                 "year=2010", actor=region, expect="funding_year_2")

        cls.day(NOW)
        cls.send(A, "add_cofunding", "funder=" + CG35, "amount=5000",
                 "year=2010", actor=region, expect="funding_year_2")
        cls.send(B, "add_cofunding", "funder=" + CREDCOOP, "amount=5000",
                 "year=2011", actor=region, expect="funding_year_2")
        cls.send(C, "deliver_study", "diagnosis=diag", "priority_actions=a",
                 "governance=g", expect="study_delivered")
        cls.send(D, "withdraw", "reason=merged with Auray",
                 expect="withdrawn")
        # C's study reminder (due 2011-01-02) fires on this move: wait for
        # it, so that the calendar has settled before the tests read
        cls.wait(lambda: cls.has_event(C, "reminder", about="study_deadline"),
                 "C's study reminder")

    # -- reading ----------------------------------------------------------
    def report(self, as_of=None):
        args = () if as_of is None else ("as_of=%s" % as_of,)
        r = self.poled.query(b"REPORT", *args)
        self.assertIsInstance(r, dict)
        return r

    def assert_report(self, got, expected):
        """Key by key (a readable failure), then the whole object."""
        self.assertEqual(set(got), REPORT_KEYS, "the keys of REPORT")
        self.assertEqual(set(got["money"]), MONEY_KEYS, "the keys of money")
        for key in sorted(REPORT_KEYS - {"money"}):
            if key in expected:
                self.assertEqual(got[key], expected[key], "report[%r] (as of "
                                 "%s)" % (key, got.get("as_of")))
        for key in sorted(MONEY_KEYS):
            self.assertEqual(got["money"][key], expected["money"][key],
                             "report['money'][%r] (as of %s)"
                             % (key, got.get("as_of")))


# ---------------------------------------------------------------------------

class TestReportNow(ReportLog):

    def test_the_live_report_figure_by_figure(self):
        r = self.report()
        self.assertIsNone(r["as_of"])
        self.assert_report(r, EXPECTED_NOW)

    def test_orders_lifecycle_and_configuration(self):
        r = self.report()
        self.assertEqual(list(r["by_state"]), STATE_ORDER,
                         "by_state in lifecycle order, every state")
        self.assertEqual([p["pays"] for p in r["by_pays"]], PAYS_ORDER,
                         "by_pays in configuration order")
        self.assertEqual(r["pays_without_dossier"],
                         [p["pays"] for p in r["by_pays"]
                          if p["dossiers"] == 0])
        self.assertEqual(len(r["pays_without_dossier"]), 16)

    def test_polectl_report_json_is_the_payload(self):
        out = self.ctl("report", "--json")[1]
        self.assertEqual(json.loads(out), self.report())

    def test_polectl_report_for_people(self):
        rc, out, err = self.ctl("report")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"(?im)^\s*poles running\W*2\b", out)
        self.assertRegex(out, r"(?im)^\s*studies under way\W*1\b", out)

    def test_dossiers_agree_with_the_report(self):
        """The live table (SHOW) says the same as the report's hand-made
        figures: the states of the six dossiers."""
        got = {k: self.poled.show(getattr(self, k))["state"]
               for k in "ABCDEF"}
        self.assertEqual(got, {"A": "funding_year_2", "B": "funding_year_2",
                               "C": "study_delivered", "D": "withdrawn",
                               "E": "withdrawn", "F": "study_funded"})


class TestReportAsOf(ReportLog):

    def test_before_the_first_event_nothing(self):
        self.assert_report(self.report("2009-02-28"), EXPECTED_2009_02_28)
        self.assertEqual(self.report("2009-02-28"), EXPECTED_2009_02_28)

    def test_the_day_of_a_transition_counts_to_its_end(self):
        self.assert_report(self.report("2009-03-01"), EXPECTED_2009_03_01)
        self.assertEqual(self.report("2009-03-01"), EXPECTED_2009_03_01)

    def test_a_grant_is_absent_before_its_day_present_on_it(self):
        before = self.report("2010-01-31")    # C's grant is on 2010-02-01
        on = self.report("2010-02-01")
        self.assertEqual(before["money"]["study_grants_by_year"],
                         {"2009": 50000})
        self.assertEqual(before["study_granted_eur"], 50000)
        self.assertEqual(on["money"]["study_grants_by_year"],
                         {"2009": 50000, "2010": 12000})
        self.assertEqual(on["study_granted_eur"], 62000)
        dinan = PAYS_ORDER.index("Dinan")
        self.assertEqual(before["by_pays"][dinan]["state"], "study_requested")
        self.assertEqual(on["by_pays"][dinan]["state"], "study_funded")
        # 2010-01-31: A, B in year 1, C asked, D funded; E not open yet
        self.assertEqual((before["dossiers"], before["studies_under_way"],
                          before["by_state"]["funding_year_1"],
                          before["by_state"]["study_requested"]), (4, 1, 2, 1))
        # 2010-02-01: C funded, E opened and asked
        self.assertEqual((on["dossiers"], on["studies_under_way"],
                          on["by_state"]["funding_year_1"],
                          on["by_state"]["study_requested"]), (5, 2, 2, 1))
        self.assertEqual(before["money"]["total_eur"], 175000)
        self.assertEqual(on["money"]["total_eur"], 187000)

    def test_a_dossier_is_live_until_the_day_of_its_withdraw(self):
        lorient = PAYS_ORDER.index("Lorient")
        before = self.report("2010-03-09")    # E withdrawn on 2010-03-10
        on = self.report("2010-03-10")
        self.assertEqual(before["by_pays"][lorient],
                         {"pays": "Lorient", "departement": 56,
                          "dossiers": 1, "live": 1,
                          "state": "study_requested"})
        self.assertEqual(on["by_pays"][lorient],
                         {"pays": "Lorient", "departement": 56,
                          "dossiers": 1, "live": 0, "state": None})
        self.assertEqual(before["by_state"]["withdrawn"], 0)
        self.assertEqual(on["by_state"]["withdrawn"], 1)
        self.assertEqual(before["by_departement"]["56"],
                         {"dossiers": 2, "live": 2, "poles_running": 0})
        self.assertEqual(on["by_departement"]["56"],
                         {"dossiers": 2, "live": 1, "poles_running": 0})
        self.assertNotIn("Lorient", on["pays_without_dossier"],
                         "a Pays whose dossier was withdrawn had a dossier")

    def test_the_october_2010_report(self):
        self.assert_report(self.report("2010-10-31"), EXPECTED_2010_10_31)

    def test_the_day_before_the_last(self):
        self.assert_report(self.report("2011-01-04"), EXPECTED_2011_01_04)

    def test_a_funded_year_counts_from_the_day_it_opens(self):
        # A's year 2 opened by the calendar on 2010-06-16
        before = self.report("2010-06-15")
        on = self.report("2010-06-16")
        self.assertEqual(before["money"]["post_funding_by_year"],
                         {"2009": 105000})
        self.assertEqual(on["money"]["post_funding_by_year"],
                         {"2009": 105000, "2010": 70000})
        self.assertEqual((before["by_state"]["funding_year_1"],
                          before["by_state"]["funding_year_2"]), (2, 0))
        self.assertEqual((on["by_state"]["funding_year_1"],
                          on["by_state"]["funding_year_2"]), (1, 1))
        # B's late year 2, opened on 2010-11-15 by its report
        self.assertEqual(self.report("2010-11-14")["money"]
                         ["post_funding_eur"], 175000)
        self.assertEqual(self.report("2010-11-15")["money"]
                         ["post_funding_eur"], 210000)

    def test_as_of_today_is_the_live_report(self):
        live = self.report()
        for day in (NOW, "2011-12-31"):
            got = self.report(day)
            self.assertEqual(got["as_of"], day)
            got["as_of"] = None
            self.assertEqual(got, live, "as of %s" % day)

    def test_a_bad_as_of_is_a_bad_request(self):
        for frame in ("as_of=2010-02-30", "as_of=2010-2-3", "as_of=",
                      "as_of=2010-10-31T00:00:00Z", "asof=2010-10-31"):
            rid = new_request_id("rp")
            r = error_reply(self.poled.request(SIGNATURE, "REPORT", rid,
                                               frame))
            self.assertEqual((r[0], r[1]), (rid, "BAD_REQUEST"),
                             "%s: %r" % (frame, r))


class TestShowFundingPlan(ReportLog):

    def show(self, d):
        rc, out, err = self.ctl("show", d, "--json")
        return json.loads(out)

    def plan(self, d):
        got = self.show(d)["funding_plan"]
        for e in got:
            self.assertEqual(set(e), {"year", "opened_at", "calendar_year",
                                      "posts", "amount_eur", "report"}, e)
            self.assertRegex(e["opened_at"], polehelp.TIMESTAMP_RE)
        return [(e["year"], e["opened_at"][:10], e["calendar_year"],
                 e["posts"], e["amount_eur"], e["report"]) for e in got]

    def obligations(self, d):
        got = self.show(d)["obligations"]
        for o in got:
            self.assertEqual(set(o), {"kind", "year", "due", "state"}, o)
        return [(o["kind"], o["year"], o["due"][:10], o["state"])
                for o in got]

    def test_funding_plans(self):
        # a year opened late by the calendar or by a late report starts
        # when the previous one was due to end (docs/CALENDAR.md), and its
        # funding counts in that calendar year
        self.assertEqual(self.plan(self.A), [
            (1, "2009-06-15", 2009, 2, 70000, "filed"),
            (2, "2010-06-15", 2010, 2, 70000, "due")])
        self.assertEqual(self.plan(self.B), [
            (1, "2009-09-01", 2009, 1, 35000, "filed"),
            (2, "2010-09-01", 2010, 1, 35000, "due")])
        for d in (self.C, self.D, self.E, self.F):
            self.assertEqual(self.plan(d), [], d)

    def test_the_plans_add_up_to_the_report(self):
        total = sum(e["amount_eur"] for d in (self.A, self.B)
                    for e in self.show(d)["funding_plan"])
        self.assertEqual(total, 210000)

    def test_obligations_are_the_open_timers(self):
        # A's year 2 started when year 1 was due to end (2010-06-15)
        self.assertEqual(sorted(self.obligations(self.A)), sorted([
            ("year_end", 2, "2011-06-15", "armed"),
            ("report_reminder", 2, "2011-06-15", "armed"),
            ("report_due", 2, "2011-07-15", "armed")]))
        # B's year 2, opened late, started when year 1 was due to end
        # (2010-09-01): the years are contiguous
        self.assertEqual(sorted(self.obligations(self.B)), sorted([
            ("year_end", 2, "2011-09-01", "armed"),
            ("report_reminder", 2, "2011-09-01", "armed"),
            ("report_due", 2, "2011-10-01", "armed")]))
        # F's study granted 2010-04-01: reminder 30 days before the
        # deadline 12 months later
        self.assertEqual(self.obligations(self.F), [
            ("study_reminder", None, "2011-03-02", "armed"),
            ("study_deadline", None, "2011-04-01", "armed")])
        # delivered (C) or withdrawn (D, E): nothing open
        for d in (self.C, self.D, self.E):
            self.assertEqual(self.obligations(d), [], d)
        dues = [o[2] for o in self.obligations(self.A)]
        self.assertEqual(dues, sorted(dues), "ordered by due date")

    def test_show_for_people(self):
        """`polectl show ID`: the facts, the funding plan, the obligations,
        then the history (docs/REPORT.md; polectl show --help)."""
        rc, out, err = self.ctl("show", self.A)
        self.assertRegex(out, r"(?m)^state: funding_year_2$")
        plan = out.index("Funding plan:")
        obligations = out.index("Obligations:")
        history = out.index("History:")
        self.assertLess(plan, obligations)
        self.assertLess(obligations, history)
        self.assertRegex(out[plan:obligations],
                         r"year 1 +opened 2009-06-15 +2 posts +70000 € +"
                         r"report filed\n")
        self.assertRegex(out[plan:obligations],
                         r"year 2 +opened 2010-06-15 +2 posts +70000 € +"
                         r"report due\n")
        self.assertRegex(out[obligations:history],
                         r"report_due year 2 +due 2011-07-15 +armed\n")
        self.assertRegex(out[history:],
                         r"2010-06-16T\d\d:\d\d:\d\dZ +calendar +"
                         r"start_next_year")
        rc, out, err = self.ctl("show", self.F)
        self.assertRegex(out, r"Obligations:\n +study_reminder +due "
                         r"2011-03-02 +armed\n +study_deadline +due "
                         r"2011-04-01 +armed\n")

    def test_show_json_is_show_over_the_protocol(self):
        for d in (self.A, self.F):
            self.assertEqual(self.show(d), self.poled.show(d))


class TestReportFormats(ReportLog):
    """polectl report --csv / --markdown / --svg / --as-of (docs/REPORT.md).
    They fail until polectl has these options."""

    def require(self, option):
        self.assertIn(option, report_help(),
                      "`polectl report --help` does not mention %s "
                      "(docs/REPORT.md)" % option)

    def test_csv(self):
        self.require("--csv")
        rc, out, err = self.ctl("report", "--csv")
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.endswith("\r\n"), "CRLF line ends: %r" % out[-40:])
        self.assertNotRegex(out.replace("\r\n", ""), "\n",
                            "every line ends with CRLF")
        rows = list(csv.reader(io.StringIO(out, newline="")))
        self.assertEqual(rows[0], ["section", "key", "value"])
        for row in rows:
            self.assertEqual(len(row), 3, row)
        have = {tuple(r) for r in rows[1:]}
        for row in [("summary", "poles_running", "2"),
                    ("summary", "studies_under_way", "1"),
                    ("state", "study_funded", "1"),
                    ("state", "funding_year_2", "2"),
                    ("state", "withdrawn", "2"),
                    ("state", "draft", "0"),
                    ("pays", "Rennes", "funding_year_2"),
                    ("pays", "Lorient", "study_funded"),
                    ("study_grants", "2009", "50000"),
                    ("study_grants", "2010", "21000"),
                    ("post_funding", "2009", "105000"),
                    ("post_funding", "2010", "105000"),
                    ("cofunding_funder", CG35, "35000"),
                    ("cofunding_funder", CG29, "15000"),
                    ("cofunding_funder", CREDCOOP, "5000"),
                    ("cofunding_year", "2010", "30000"),
                    ("cofunding_year", "2011", "5000"),
                    ("total", "total_eur", "336000")]:
            self.assertIn(row, have, "CSV row %s" % ",".join(row))
        self.assertIn('"%s"' % CREDCOOP, out, "a comma is quoted")
        self.assertEqual([r[1:] for r in rows if r[0] == "departement"],
                         [["22", "1"], ["29", "1"], ["35", "1"], ["56", "3"]],
                         "departement: dossiers, in order")
        # the other figures by département (polectl report --help)
        for row in [("departement_live", "56", "1"),
                    ("departement_running", "29", "1"),
                    ("departement_running", "56", "0")]:
            self.assertIn(row, have, "CSV row %s" % ",".join(row))
        self.assertEqual([r[1] for r in rows if r[0] == "pays"], PAYS_ORDER)
        self.assertEqual([r[1] for r in rows
                          if r[0] == "pays_without_dossier"],
                         EXPECTED_NOW["pays_without_dossier"])

    def test_csv_as_of(self):
        self.require("--csv")
        self.require("--as-of")
        rc, out, err = self.ctl("report", "--as-of", "2010-10-31", "--csv")
        rows = {tuple(r) for r in csv.reader(io.StringIO(out, newline=""))}
        self.assertIn(("summary", "studies_under_way", "3"), rows)
        self.assertIn(("post_funding", "2010", "70000"), rows)
        self.assertIn(("total", "total_eur", "266000"), rows)

    def test_as_of_json(self):
        self.require("--as-of")
        for day in ("2009-02-28", "2010-10-31", NOW):
            out = self.ctl("report", "--as-of", day, "--json")[1]
            self.assertEqual(json.loads(out), self.report(day), day)
        rc, out, err = self.ctl("report", "--as-of", "2010-02-30", "--json",
                                check=False)
        self.assertEqual(rc, 2, "not a day of the calendar: bad usage "
                         "(%s %s)" % (out, err))

    def test_markdown(self):
        self.require("--markdown")
        rc, out, err = self.ctl("report", "--markdown")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"(?m)^#", "headings")
        self.assertRegex(out, r"(?im)^\|.*poles[ _]running\s*\|\s*2\s*\|\s*$",
                         "a table row for poles running = 2:\n" + out)
        self.assertRegex(out, r"(?m)^\|.*\bstudy_funded\s*\|\s*1\s*\|\s*$",
                         "a table row for study_funded = 1:\n" + out)
        self.assertRegex(out, r"(?m)^\|\s*:?-{3,}", "a table separator row")

    def test_svg_unwritable(self):
        self.require("--svg")
        rc, out, err = self.ctl("report", "--svg", "/nonexistent/dir/r.svg",
                                check=False)
        self.assertEqual(rc, 6, "a chart that cannot be written: exit 6 "
                         "(polectl report --help): %s %s" % (out, err))
        self.assertIn("/nonexistent/dir/r.svg", err)

    def test_svg(self):
        self.require("--svg")
        base = None if len(tempfile.gettempdir()) < 60 else "/tmp"
        tmp = tempfile.TemporaryDirectory(prefix="pole-svg-", dir=base)
        self.addCleanup(tmp.cleanup)
        path = os.path.join(tmp.name, "report.svg")
        rc, out, err = self.ctl("report", "--svg", path)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, self.ctl("report")[1],
                         "--svg also prints the report as usual")
        root = ET.parse(path).getroot()               # well-formed XML
        self.assertIn(root.tag, ("svg", "{http://www.w3.org/2000/svg}svg"))
        rects = [e for e in root.iter() if e.tag.endswith("rect")]
        self.assertGreaterEqual(len(rects), 2, "bars")
        text = " ".join(t for e in root.iter() for t in [e.text] if t)
        for label in ("funding_year_2", "2009", "2010"):
            self.assertIn(label, text, "a bar labelled %s" % label)


if __name__ == "__main__":
    unittest.main()
