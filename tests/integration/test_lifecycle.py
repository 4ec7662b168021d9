"""The lifecycle of a dossier through the real polectl and poled.

Covers docs/CLI.md (outputs, exit statuses) and the rules of DOMAIN.md: the
whole lifecycle from draft to operating, show/history/list/report in JSON,
every refusal with exit status 1 and its rule named on stderr, the
associations-only warning, withdraw/reopen, unknown dossier (3), bad usage
(2), conflict on --expect-version (4), no daemon (5), graph, forgiving Pays
names, and programme parameters read from the configuration.
"""

import re
import unittest

import polehelp
from polehelp import Poled, TIMESTAMP_RE, STATES

REFUSAL_RE = "^polectl: refused by rule %s: \\S.*"
DOSSIER_KEYS = {"id", "pays", "departement", "holder", "holder_type", "title",
                "state", "version", "study_asked", "study_granted",
                "posts_asked", "posts_granted", "funding_year",
                "yearly_funding_eur", "reports_filed", "mode", "pole_name",
                "host", "cofunding_eur", "opened_at", "updated_at"}


class PoledTestCase(unittest.TestCase):
    """One daemon per class (a fresh database)."""

    poled_kwargs = {}

    @classmethod
    def setUpClass(cls):
        cls.poled = Poled(**cls.poled_kwargs)
        # runs even if the rest of a subclass's setUpClass fails
        cls.addClassCleanup(cls.poled.close)

    @classmethod
    def tearDownClass(cls):
        poled = cls.poled
        rc = poled.stop()
        log = poled.log()
        poled.close()
        if rc != 0:
            raise AssertionError("poled exited %s on SIGTERM; log:\n%s"
                                 % (rc, log))

    # helpers -----------------------------------------------------------
    def ctl(self, *args, **kw):
        return self.poled.ctl(*args, **kw)

    def open(self, pays, holder="Collectif ESS", holder_type="ess_actor",
             title=None, actor="holder"):
        args = ["open", "--pays", pays, "--holder", holder,
                "--holder-type", holder_type]
        if title is not None:
            args += ["--title", title]
        rc, out, err = self.ctl(*args, actor=actor)
        self.assertRegex(out, r"^[1-9][0-9]*\n?$",
                         "open must print the id alone on stdout")
        return int(out)

    def send(self, dossier, event, *fields, actor="holder", expect=None):
        """Send an event that must be accepted; check the printed state."""
        rc, out, err = self.ctl("send", dossier, event, *fields, actor=actor)
        if expect is not None:
            self.assertEqual(out, expect + "\n",
                             "send must print the new state alone")
        return out.strip(), err

    def refused(self, rule, *args, actor="holder"):
        rc, out, err = self.ctl(*args, check=False, actor=actor)
        self.assertEqual(rc, 1, "expected a refusal (exit 1) by rule %s for "
                         "%r; got %d, stdout %r, stderr %r"
                         % (rule, args, rc, out, err))
        self.assertRegex(err, re.compile(REFUSAL_RE % re.escape(rule),
                                         re.MULTILINE))
        self.assertEqual(out, "", "a refusal prints nothing on stdout")
        return err

    def show(self, dossier):
        d = self.poled.ctl_json("show", dossier, "--json")
        self.assertIsInstance(d, dict)
        return d

    def history(self, dossier):
        h = self.poled.ctl_json("history", dossier, "--json")
        self.assertIsInstance(h, list)
        return h

    def to_state(self, dossier, target):
        """Drive a fresh (draft) dossier forward to `target`."""
        steps = [
            ("study_requested", "request_study", ["amount=20000"], "holder"),
            ("study_funded", "grant_study", ["amount=20000"], "region"),
            ("study_delivered", "deliver_study",
             ["diagnosis=Diagnostic du territoire",
              "priority_actions=Mutualiser,Former",
              "governance=Collège des acteurs"], "holder"),
            ("validated", "validate",
             ["stakeholders=Scop Le Lien,Asso Arbre",
              "stakeholder_types=cooperative,association"], "cres"),
            ("pole_created", "create_pole",
             ["mode=ex_nihilo", "name=Pôle ESS"], "holder"),
            ("posts_requested", "request_posts", ["posts=1"], "holder"),
            ("funding_year_1", "grant_posts", ["posts=1"], "region"),
        ]
        if target == "draft":
            return
        for state, event, fields, actor in steps:
            self.send(dossier, event, *fields, actor=actor, expect=state)
            if state == target:
                return
        raise AssertionError("to_state: unknown target %s" % target)


class TestLifecycle(PoledTestCase):

    def test_full_lifecycle_to_operating(self):
        rc, out, err = self.ctl("ping")
        self.assertRegex(out.strip(), r"^poled \d+\.\d+\.\d+")

        d = self.open("Pays de Dinan", holder="Conseil de développement",
                      holder_type="pays", title="Pôle ESS du Pays de Dinan",
                      actor="alice")
        s = self.show(d)
        self.assertEqual(s["id"], d)
        self.assertEqual(s["pays"], "Dinan")
        self.assertEqual(s["departement"], 22)
        self.assertEqual(s["holder"], "Conseil de développement")
        self.assertEqual(s["holder_type"], "pays")
        self.assertEqual(s["title"], "Pôle ESS du Pays de Dinan")
        self.assertEqual(s["state"], "draft")
        self.assertEqual(s["version"], 1)
        self.assertIsNone(s["study_asked"])
        self.assertIsNone(s["study_granted"])
        self.assertEqual(s["reports_filed"], [])
        self.assertEqual(s["cofunding_eur"], 0)
        self.assertRegex(s["opened_at"], TIMESTAMP_RE)
        self.assertRegex(s["updated_at"], TIMESTAMP_RE)
        self.assertLessEqual(DOSSIER_KEYS, set(s), "PROTOCOL.md, SHOW")
        for key in ("posts_asked", "posts_granted", "funding_year",
                    "yearly_funding_eur", "mode", "pole_name", "host"):
            self.assertIsNone(s[key], key)

        lifecycle = [
            ("legitimate_holder", ["advisor=CRES Bretagne"], "cres", "draft"),
            ("request_study", ["amount=20000"], "alice", "study_requested"),
            ("grant_study", ["amount=18000"], "region", "study_funded"),
            ("deliver_study", ["diagnosis=Un territoire rural",
                               "priority_actions=Circuits courts,Mobilité",
                               "governance=Association collégiale"],
             "alice", "study_delivered"),
            ("validate", ["stakeholders=Scop Avenir,Les Amis,MAIF Dinan",
                          "stakeholder_types=cooperative,association,"
                          "mutuelle"], "cres", "validated"),
            ("create_pole", ["mode=adossement", "name=Pôle ESS Dinan",
                             "host=Maison des associations"],
             "alice", "pole_created"),
            ("add_cofunding", ["funder=Conseil général 22", "amount=10000",
                               "year=2011"], "alice", "pole_created"),
            ("request_posts", ["posts=2"], "alice", "posts_requested"),
            ("grant_posts", ["posts=2"], "region", "funding_year_1"),
        ]
        for event, fields, actor, state in lifecycle:
            out, err = self.send(d, event, *fields, actor=actor, expect=state)
            self.assertNotIn("warning", err, "%s: no warning expected" % event)

        s = self.show(d)
        self.assertEqual(s["state"], "funding_year_1")
        self.assertEqual(s["version"], 1 + len(lifecycle))
        self.assertEqual(s["study_asked"], 20000)
        self.assertEqual(s["study_granted"], 18000)
        self.assertEqual(s["posts_asked"], 2)
        self.assertEqual(s["posts_granted"], 2)
        self.assertEqual(s["funding_year"], 1)
        self.assertEqual(s["yearly_funding_eur"], 70000)
        self.assertEqual(s["mode"], "adossement")
        self.assertEqual(s["pole_name"], "Pôle ESS Dinan")
        self.assertEqual(s["host"], "Maison des associations")
        self.assertEqual(s["cofunding_eur"], 10000)

        # year 1 -> 2 -> 3 -> operating, each after its annual report
        for year, nxt in ((1, "funding_year_2"), (2, "funding_year_3"),
                          (3, "operating")):
            self.refused("annual_report", "send", d, "start_next_year")
            self.send(d, "file_annual_report", "year=%d" % year,
                      expect="funding_year_%d" % year)
            self.send(d, "start_next_year", expect=nxt)
        s = self.show(d)
        self.assertEqual(s["state"], "operating")
        self.assertEqual(sorted(s["reports_filed"]), [1, 2, 3])
        self.assertEqual(s["version"], 1 + len(lifecycle) + 6)
        self.send(d, "note", "text=Le pôle continue", expect="operating")

        # history: every event, oldest first, with its fields
        h = self.history(d)
        events = [e["event"] for e in h]
        self.assertEqual(events, ["open"] + [e[0] for e in lifecycle] + [
            "file_annual_report", "start_next_year"] * 3 + ["note"])
        seqs = [e["seq"] for e in h]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(len(set(seqs)), len(seqs))
        for e in h:
            for key in ("seq", "dossier", "event", "from", "to", "actor",
                        "at", "request_id", "fields"):
                self.assertIn(key, e)
            self.assertEqual(e["dossier"], d)
            self.assertRegex(e["at"], TIMESTAMP_RE)
            self.assertIsInstance(e["fields"], dict)
            for k, v in e["fields"].items():
                self.assertIsInstance(v, str)
                self.assertEqual(e.get(k), v, "field %s again at top level"
                                 % k)
            self.assertTrue(e["request_id"])
        self.assertIsNone(h[0]["from"])
        self.assertEqual(h[0]["to"], "draft")
        self.assertEqual(h[0]["actor"], "alice")
        self.assertEqual(h[0]["fields"]["holder_type"], "pays")
        prev = "draft"
        for e, (event, fields, actor, state) in zip(h[1:], lifecycle):
            self.assertEqual(e["from"], prev)
            self.assertEqual(e["to"], state)
            self.assertEqual(e["actor"], actor)
            self.assertEqual(e["fields"], dict(f.split("=", 1)
                                               for f in fields))
            prev = state
        grant = h[3]
        self.assertEqual(grant["event"], "grant_study")
        self.assertEqual(grant["amount"], "18000")
        self.assertEqual(h[-1]["from"], "operating")
        self.assertEqual(h[-1]["to"], "operating")
        self.assertEqual(h[-1]["fields"], {"text": "Le pôle continue"})

        # close, then reopen returns to the state it left
        self.send(d, "close", "reason=Fin du programme", expect="closed")
        self.refused("transition", "send", d, "add_cofunding",
                     "funder=CG 22", "amount=100", "year=2012")
        self.send(d, "reopen", "reason=Clôture par erreur", actor="region",
                  expect="operating")
        self.assertEqual(self.show(d)["state"], "operating")

        # human-readable outputs work too
        rc, out, err = self.ctl("show", d)
        self.assertIn("operating", out)
        rc, out, err = self.ctl("history", d)
        self.assertIn("grant_study", out)

    def test_history_fields_as_sent(self):
        # PROTOCOL.md, HISTORY: "fields (an object of the event's fields as
        # sent, values as strings)"; the canonical name is the dossier's.
        d = self.open("pays de brocéliande")
        self.assertEqual(self.show(d)["pays"], "Brocéliande")
        self.send(d, "request_study", "amount=7000",
                  expect="study_requested")
        h = self.history(d)
        self.assertEqual(h[0]["fields"]["pays"], "Brocéliande")  # canonical
        self.assertEqual(h[0]["pays"], "Brocéliande")

    def test_request_id_option_applies_once(self):
        d = self.open("Morlaix")
        rid = polehelp.new_request_id("cli")
        for _ in range(2):
            rc, out, err = self.ctl("--request-id", rid, "send", d,
                                    "request_study", "amount=12000")
            self.assertEqual(out, "study_requested\n")
        self.assertEqual(self.show(d)["version"], 2)
        h = self.history(d)
        self.assertEqual([e["request_id"] for e in h].count(rid), 1)
        self.assertEqual(h[-1]["request_id"], rid)
        # the same request id for another request: conflict, nothing applied
        rc, out, err = self.ctl("--request-id", rid, "send", d, "note",
                                "text=autre chose", check=False)
        self.assertEqual(rc, 4, err)
        self.assertIn("CONFLICT", err)
        self.assertEqual(self.show(d)["version"], 2)

    def test_environment_defaults(self):
        # POLE_ENDPOINT when no -e; POLE_ACTOR, else $USER, when no -a
        d = self.open("Saint-Brieuc")
        env = {"POLE_ENDPOINT": self.poled.endpoint, "POLE_ACTOR": "envactor"}
        rc, out, err = polehelp.ctl("send", d, "note", "text=env",
                                    endpoint=None, env=env)
        self.assertEqual(out, "draft\n")
        env = {"POLE_ENDPOINT": self.poled.endpoint, "USER": "useractor"}
        rc, out, err = polehelp.ctl("send", d, "note", "text=user",
                                    endpoint=None, env=env)
        h = self.history(d)
        self.assertEqual([e["actor"] for e in h[-2:]],
                         ["envactor", "useractor"])

    def test_expect_version(self):
        d = self.open("Guingamp")
        self.send(d, "note", "text=un", expect="draft")
        # version is 2 now
        rc, out, err = self.ctl("send", d, "note", "text=deux",
                                "--expect-version", "1", check=False)
        self.assertEqual(rc, 4, "expected-version mismatch: exit 4; got %d "
                         "(%r)" % (rc, err))
        self.assertRegex(err, r"^polectl: CONFLICT: \S")
        self.assertEqual(out, "")
        self.assertEqual(self.show(d)["version"], 2)
        rc, out, err = self.ctl("send", d, "note", "text=deux",
                                "--expect-version", "2")
        self.assertEqual(out, "draft\n")
        self.assertEqual(self.show(d)["version"], 3)

    def test_withdraw_then_reopen(self):
        d = self.open("Auray")
        self.to_state(d, "study_funded")
        self.send(d, "withdraw", "reason=Le porteur renonce",
                  expect="withdrawn")
        s = self.show(d)
        self.assertEqual(s["state"], "withdrawn")
        self.refused("transition", "send", d, "deliver_study",
                     "diagnosis=a", "priority_actions=b", "governance=c")
        self.refused("fields", "send", d, "reopen", actor="region")
        # a correction is the Région's or an administrator's (DOMAIN.md)
        for who in ("cres", "Collectif ESS", "holder"):
            self.refused("role", "send", d, "reopen", "reason=erreur",
                         actor=who)
        self.send(d, "reopen", "reason=Retrait saisi par erreur",
                  actor="region", expect="study_funded")
        s = self.show(d)
        self.assertEqual(s["state"], "study_funded")
        self.assertEqual(s["study_granted"], 20000)
        self.assertEqual(s["version"], 5)   # open, request, grant, withdraw,
        #                                     reopen: refusals add nothing
        h = self.history(d)
        self.assertEqual([(e["event"], e["from"], e["to"]) for e in h[-2:]],
                         [("withdraw", "study_funded", "withdrawn"),
                          ("reopen", "withdrawn", "study_funded")])
        # and the lifecycle goes on
        self.send(d, "deliver_study", "diagnosis=a", "priority_actions=b",
                  "governance=c", expect="study_delivered")

    def test_reopen_respects_live_per_pays(self):
        a = self.open("Pontivy")
        self.send(a, "withdraw", "reason=abandon", expect="withdrawn")
        b = self.open("pontivy")        # the Pays is free again
        self.assertNotEqual(a, b)
        self.refused("live_per_pays", "send", a, "reopen", "reason=erreur",
                     actor="region")
        self.assertEqual(self.show(a)["state"], "withdrawn")

    def test_terminal_states(self):
        d = self.open("Centre Bretagne")
        self.to_state(d, "study_requested")
        self.send(d, "decline_study", "reason=Budget épuisé",
                  actor="region", expect="study_declined")
        self.refused("transition", "send", d, "grant_study", "amount=1000",
                     actor="region")
        d2 = self.open("Centre Bretagne")   # the declined one is not live
        self.to_state(d2, "study_delivered")
        self.send(d2, "reject", "reason=Pas d'adhésion", actor="cres",
                  expect="not_validated")
        d3 = self.open("Centre Bretagne")
        self.to_state(d3, "posts_requested")
        self.send(d3, "decline_posts", "reason=Pas cette année",
                  actor="region", expect="pole_created")
        self.send(d3, "request_posts", "posts=2", expect="posts_requested")
        self.send(d3, "decline_posts", "reason=Toujours pas",
                  actor="region", expect="pole_created")
        self.send(d3, "close", "reason=Fin", expect="closed")
        for x, st in ((d, "study_declined"), (d2, "not_validated"),
                      (d3, "closed")):
            self.assertEqual(self.show(x)["state"], st)


class TestRefusals(PoledTestCase):

    def test_study_cap_and_grant_above_request(self):
        d = self.open("Brest")
        self.send(d, "request_study", "amount=20000", expect="study_requested")
        # the example of PROTOCOL.md section 10
        err = self.refused("study_cap", "send", d, "grant_study",
                           "amount=30000", actor="region")
        self.assertIn("25000", err)
        self.refused("grant_above_request", "send", d, "grant_study",
                     "amount=22000", actor="region")
        self.assertEqual(self.show(d)["state"], "study_requested")
        self.assertEqual(self.show(d)["version"], 2)
        self.send(d, "grant_study", "amount=20000", actor="region",
                  expect="study_funded")

    def test_request_above_cap(self):
        d = self.open("Cornouaille")
        self.refused("study_cap", "send", d, "request_study", "amount=25001")
        self.send(d, "request_study", "amount=25000", expect="study_requested")

    def test_amount(self):
        d = self.open("Lorient")
        self.refused("amount", "send", d, "request_study", "amount=0")
        self.assertEqual(self.show(d)["state"], "draft")

    def test_transition(self):
        d = self.open("Saint-Brieuc")
        self.refused("transition", "send", d, "grant_study", "amount=1000",
                     actor="region")
        self.refused("transition", "send", d, "validate",
                     "stakeholders=Scop A")
        self.refused("transition", "send", d, "start_next_year")
        s = self.show(d)
        self.assertEqual((s["state"], s["version"]), ("draft", 1))
        self.to_state(d, "study_funded")
        self.refused("transition", "send", d, "legitimate_holder",
                     actor="cres")
        self.refused("transition", "send", d, "request_study",
                     "amount=1000")

    def test_fields(self):
        d = self.open("Fougères")
        self.to_state(d, "study_funded")
        self.refused("fields", "send", d, "deliver_study",
                     "diagnosis=Diagnostic", "priority_actions=A,B")
        self.refused("fields", "send", d, "deliver_study",
                     "diagnosis=Diagnostic", "priority_actions=A,B",
                     "governance=G", "colour=blue")
        self.refused("fields", "send", d, "note")
        self.assertEqual(self.show(d)["state"], "study_funded")

    def test_posts_and_annual_report(self):
        d = self.open("Saint-Malo")
        self.to_state(d, "pole_created")
        self.refused("posts", "send", d, "request_posts", "posts=3")
        self.refused("posts", "send", d, "request_posts", "posts=0")
        self.send(d, "request_posts", "posts=1", expect="posts_requested")
        rc, out, err = self.ctl("send", d, "grant_posts", "posts=2",
                                actor="region", check=False)
        self.assertEqual(rc, 1, "granting more posts than asked: %r" % err)
        self.assertRegex(err, r"^polectl: refused by rule "
                         r"(posts|grant_above_request): \S")
        self.send(d, "grant_posts", "posts=1", actor="region",
                  expect="funding_year_1")
        self.assertEqual(self.show(d)["yearly_funding_eur"], 35000)
        self.refused("annual_report", "send", d, "start_next_year")
        self.refused("report_year", "send", d, "file_annual_report", "year=2")
        self.send(d, "file_annual_report", "year=1", expect="funding_year_1")
        self.send(d, "start_next_year", expect="funding_year_2")
        self.refused("annual_report", "send", d, "start_next_year")

    def test_adossement_host(self):
        d = self.open("Vallons de Vilaine")
        self.to_state(d, "validated")
        self.refused("adossement_host", "send", d, "create_pole",
                     "mode=adossement", "name=Vallons solidaires")
        self.assertEqual(self.show(d)["state"], "validated")
        self.send(d, "create_pole", "mode=adossement",
                  "name=Vallons solidaires", "host=Centre social",
                  expect="pole_created")

    def test_pays_and_holder_type(self):
        self.refused("pays", "open", "--pays", "Paris", "--holder", "X",
                     "--holder-type", "ess_actor")
        self.refused("pays", "open", "--pays", "Pays de Nulle Part",
                     "--holder", "X", "--holder-type", "pays")
        rc, out, err = self.ctl("open", "--pays", "Vitré-Porte de Bretagne",
                                "--holder", "X", "--holder-type", "banana",
                                check=False)
        self.assertIn(rc, (1, 2), err)
        if rc == 1:
            self.assertRegex(err, r"^polectl: refused by rule "
                             r"(holder_type|fields): \S")
        lst = self.poled.ctl_json("list", "--pays", "Vitré-Porte de Bretagne",
                                  "--json")
        self.assertEqual(lst, [])

    def test_live_per_pays(self):
        d = self.open("Rennes")
        self.refused("live_per_pays", "open", "--pays", "Pays de Rennes",
                     "--holder", "Autre", "--holder-type", "collectivite")
        self.refused("live_per_pays", "open", "--pays", "RENNES",
                     "--holder", "Autre", "--holder-type", "ess_actor")
        lst = self.poled.ctl_json("list", "--pays", "rennes", "--json")
        self.assertEqual([x["id"] for x in lst], [d])

    def test_stakeholders_warning(self):
        d = self.open("Brocéliande")
        self.to_state(d, "study_delivered")
        rc, out, err = self.ctl("send", d, "validate",
                                "stakeholders=BRAS,Les Amis du Bois",
                                "stakeholder_types=association,association",
                                actor="cres")
        self.assertEqual(rc, 0)
        self.assertEqual(out, "validated\n")
        self.assertRegex(err, r"(?m)^polectl: warning: \S",
                         "associations alone: accepted with a warning")
        self.assertEqual(self.show(d)["state"], "validated")

    def test_stakeholder_types_mismatch(self):
        d = self.open("Redon et Vilaine")
        self.to_state(d, "study_delivered")
        rc, out, err = self.ctl("send", d, "validate",
                                "stakeholders=A,B,C",
                                "stakeholder_types=association",
                                actor="cres", check=False)
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, r"^polectl: refused by rule "
                         r"(stakeholders|fields): \S")
        rc, out, err = self.ctl("send", d, "validate", "stakeholders=A",
                                "stakeholder_types=club_de_foot",
                                actor="cres", check=False)
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, r"^polectl: refused by rule "
                         r"(stakeholders|fields): \S")
        self.assertEqual(self.show(d)["state"], "study_delivered")

    def test_unknown_event(self):
        d = self.open("Vannes")
        rc, out, err = self.ctl("send", d, "frobnicate", "x=1", check=False)
        self.assertIn(rc, (1, 2), err)
        if rc == 1:
            self.assertRegex(err, r"^polectl: refused by rule unknown_event")
        self.assertEqual(self.show(d)["version"], 1)

    def test_unknown_dossier(self):
        for args in (("show", "999999"), ("history", "999999"),
                     ("send", "999999", "note", "text=x"),
                     ("show", "999999", "--json")):
            rc, out, err = self.ctl(*args, check=False)
            self.assertEqual(rc, 3, "%r: exit %d, stderr %r" % (args, rc,
                                                                  err))
            self.assertRegex(err, r"^polectl: NOT_FOUND: ")
            self.assertEqual(out, "")

    def test_bad_usage(self):
        cases = [
            (),                                        # no command
            ("frobnicate",),                           # unknown command
            ("open", "--holder", "X", "--holder-type", "pays"),  # no --pays
            ("send",),                                 # no id, no event
            ("send", "1"),                             # no event
            ("--bogus-option", "ping"),
            ("-t", "abc", "ping"),
            ("send", "1", "note", "text-without-equals"),
            ("show",),
        ]
        for args in cases:
            rc, out, err = polehelp.ctl(*args, endpoint=self.poled.endpoint,
                                        timeout=None, retries=None,
                                        check=False)
            self.assertEqual(rc, 2, "%r: expected exit 2 (bad usage), got %d"
                             " (stderr %r)" % (args, rc, err))
            self.assertNotEqual(err, "", "%r: bad usage says why" % (args,))

    def test_help_and_version(self):
        rc, out, err = polehelp.ctl("--help", timeout=None, retries=None)
        self.assertIn("send", out + err)
        rc, out, err = polehelp.ctl("--version", timeout=None, retries=None)
        self.assertRegex(out + err, r"\d+\.\d+\.\d+")


class TestQueries(PoledTestCase):
    """list and report figures on a database whose content is known."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        t = cls("test_list")

        def drive(pays, target, **kw):
            d = t.open(pays, **kw)
            t.to_state(d, target)
            return d

        cls.rennes = drive("Rennes", "pole_created")
        t.send(cls.rennes, "add_cofunding", "funder=Ville de Rennes",
               "amount=5000", "year=2011")
        t.send(cls.rennes, "request_posts", "posts=2")
        t.send(cls.rennes, "grant_posts", "posts=2", actor="region",
               expect="funding_year_1")                       # study 20000
        cls.brest = t.open("Brest")
        t.send(cls.brest, "request_study", "amount=25000")
        t.send(cls.brest, "grant_study", "amount=25000", actor="region",
               expect="study_funded")                         # study 25000
        cls.vannes = t.open("Vannes")
        t.send(cls.vannes, "withdraw", "reason=abandon", expect="withdrawn")
        cls.lorient = drive("Lorient", "pole_created")        # study 20000
        t.send(cls.lorient, "add_cofunding", "funder=CG 56", "amount=2500",
               "year=2011")
        cls.dinan = t.open("Dinan")                           # draft

    def test_list(self):
        everything = self.poled.ctl_json("list", "--json")
        self.assertEqual([x["id"] for x in everything],
                         sorted([self.rennes, self.brest, self.vannes,
                                 self.lorient, self.dinan]))
        for x in everything:
            self.assertIn(x["state"], STATES)
            self.assertIsInstance(x["version"], int)
        by_state = self.poled.ctl_json("list", "--state", "pole_created",
                                       "--json")
        self.assertEqual([x["id"] for x in by_state], [self.lorient])
        by_pays = self.poled.ctl_json("list", "--pays", "Pays de Rennes",
                                      "--json")
        self.assertEqual([x["id"] for x in by_pays], [self.rennes])
        self.assertEqual(by_pays[0]["pays"], "Rennes")
        both = self.poled.ctl_json("list", "--pays", "BREST", "--state",
                                   "study_funded", "--json")
        self.assertEqual([x["id"] for x in both], [self.brest])
        none = self.poled.ctl_json("list", "--pays", "Brest", "--state",
                                   "draft", "--json")
        self.assertEqual(none, [])
        rc, out, err = self.ctl("list")
        self.assertEqual(rc, 0)
        rc, out, err = self.ctl("list", "--state", "nonsense", "--json",
                                check=False)
        self.assertIn(rc, (2, 6), err)
        rc, out, err = self.ctl("list", "--pays", "Paris", "--json",
                                check=False)
        self.assertIn(rc, (2, 6), err)

    def test_report(self):
        r = self.poled.ctl_json("report", "--json")
        self.assertEqual(r["dossiers"], 5)
        self.assertEqual(r["poles_running"], 2)       # rennes, lorient
        self.assertEqual(r["studies_under_way"], 1)   # brest
        self.assertEqual(set(r["by_state"]), set(STATES))
        expected = dict.fromkeys(STATES, 0)
        expected.update({"funding_year_1": 1, "study_funded": 1,
                         "withdrawn": 1, "pole_created": 1, "draft": 1})
        self.assertEqual(r["by_state"], expected)
        live = {str(k): v["live"] for k, v in r["by_departement"].items()}
        self.assertEqual(live.get("35", 0), 1)
        self.assertEqual(live.get("29", 0), 1)
        self.assertEqual(live.get("56", 0), 1)      # Vannes withdrawn
        self.assertEqual(live.get("22", 0), 1)
        self.assertEqual(len(r["by_pays"]), 21)
        bp = {x["pays"]: x for x in r["by_pays"]}
        self.assertEqual(set(bp), set(polehelp.DEPARTEMENT))
        self.assertEqual((bp["Rennes"]["dossiers"], bp["Rennes"]["live"]),
                         (1, 1))
        self.assertEqual((bp["Vannes"]["dossiers"], bp["Vannes"]["live"]),
                         (1, 0))
        self.assertEqual(bp["Vannes"]["departement"], 56)
        self.assertEqual((bp["Auray"]["dossiers"], bp["Auray"]["live"]),
                         (0, 0))
        self.assertEqual(sorted(r["pays_without_dossier"]),
                         sorted(set(polehelp.DEPARTEMENT) -
                                {"Rennes", "Brest", "Vannes", "Lorient",
                                 "Dinan"}))
        self.assertEqual(r["study_granted_eur"], 20000 + 25000 + 20000)
        self.assertEqual(r["post_funding_eur_per_year"], 70000)
        self.assertEqual(r["cofunding_eur"], 7500)
        rc, out, err = self.ctl("report")
        self.assertNotEqual(out.strip(), "")


class TestForgivingPays(PoledTestCase):

    def test_names(self):
        for sent, canonical in (("Pays de Dinan", "Dinan"),
                                ("Tregor-Goelo", "Trégor-Goëlo"),
                                ("pays de saint malo", "Saint-Malo"),
                                ("VANNES", "Vannes")):
            d = self.open(sent)
            s = self.show(d)
            self.assertEqual(s["pays"], canonical, sent)
        for name in ("DINAN", "dinan", "Pays de Dinan"):
            lst = self.poled.ctl_json("list", "--pays", name, "--json")
            self.assertEqual([x["pays"] for x in lst], ["Dinan"], name)
        lst = self.poled.ctl_json("list", "--pays", "Trégor-Goëlo", "--json")
        self.assertEqual(len(lst), 1)
        # DINAN names the Pays of the live dossier opened as "Pays de Dinan"
        self.refused("live_per_pays", "open", "--pays", "DINAN",
                     "--holder", "X", "--holder-type", "pays")
        self.refused("live_per_pays", "open", "--pays", "Trégor Goëlo",
                     "--holder", "X", "--holder-type", "pays")


class TestProgrammeParameters(PoledTestCase):
    """The rules read their parameters from the configuration."""

    poled_kwargs = {"programme": {"study_cap_eur": 10000, "max_posts": 3,
                                  "post_eur_per_year": 30000,
                                  "funding_years": 1,
                                  "live_dossiers_per_pays": 2}}

    def test_parameters(self):
        a = self.open("Brest")
        b = self.open("Brest")
        self.refused("live_per_pays", "open", "--pays", "Brest",
                     "--holder", "C", "--holder-type", "ess_actor")
        self.refused("study_cap", "send", a, "request_study", "amount=12000")
        self.send(a, "request_study", "amount=10000", expect="study_requested")
        self.send(a, "grant_study", "amount=10000", actor="region",
                  expect="study_funded")
        self.send(a, "deliver_study", "diagnosis=d", "priority_actions=p",
                  "governance=g", expect="study_delivered")
        self.send(a, "validate", "stakeholders=X", "stakeholder_types=autre",
                  actor="cres", expect="validated")
        self.send(a, "create_pole", "mode=ex_nihilo", "name=P",
                  expect="pole_created")
        self.refused("posts", "send", a, "request_posts", "posts=4")
        self.send(a, "request_posts", "posts=3", expect="posts_requested")
        self.send(a, "grant_posts", "posts=3", actor="region",
                  expect="funding_year_1")
        self.assertEqual(self.show(a)["yearly_funding_eur"], 90000)
        self.send(a, "file_annual_report", "year=1", expect="funding_year_1")
        self.send(a, "start_next_year", expect="operating")   # one year only
        self.assertEqual(self.show(b)["state"], "draft")


class TestWithoutDaemon(unittest.TestCase):

    def test_graph_needs_no_daemon(self):
        rc, out, err = polehelp.ctl("graph", endpoint="tcp://127.0.0.1:1",
                                    timeout=None, retries=None)
        self.assertTrue(out.lstrip().startswith("digraph"), out[:80])
        self.assertTrue(out.rstrip().endswith("}"))
        for word in ("draft", "study_requested", "funding_year_3",
                     "operating", "grant_study", "start_next_year"):
            self.assertIn(word, out)
        rc, out, err = polehelp.ctl("graph", "--markdown",
                                    timeout=None, retries=None)
        self.assertIn("|", out)
        self.assertIn("grant_study", out)

    def test_no_answer_exit_5(self):
        with Poled(start=False) as p:   # a socket path nobody listens on
            rc, out, err = polehelp.ctl("ping", endpoint=p.ipc_endpoint,
                                        timeout=0.3, retries=1, check=False)
        self.assertEqual(rc, 5, err)
        self.assertNotEqual(err, "")


if __name__ == "__main__":
    unittest.main()
