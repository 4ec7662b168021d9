"""poled restarts and its command line / configuration (docs/CLI.md).

* A clean restart (SIGTERM or SIGINT, exit 0) in the middle of a lifecycle:
  state, history and the per-Pays rule are intact and the lifecycle goes on.
* A crash (SIGKILL) right after acknowledged events loses none of them.
* -e and -d override the configuration; without them the configuration's
  endpoint and database are used.
* A configuration with an error: exit 1 and FILE:LINE: reason on stderr; a
  database that cannot be opened: exit 1; bad usage: exit 2.
"""

import os
import signal
import subprocess
import tempfile
import time
import unittest

import polehelp
from polehelp import Poled, POLED, config_text, TIMESTAMP_RE


def drive(poled, dossier, steps):
    for event, fields, actor, state in steps:
        rc, out, err = poled.ctl("send", dossier, event, *fields, actor=actor)
        if out != state + "\n":
            raise AssertionError("%s: expected %s, got %r" % (event, state,
                                                              out))


FIRST_HALF = [
    ("request_study", ["amount=24000"], "holder", "study_requested"),
    ("grant_study", ["amount=24000"], "region", "study_funded"),
    ("deliver_study", ["diagnosis=d", "priority_actions=a,b",
                       "governance=g"], "holder", "study_delivered"),
    ("validate", ["stakeholders=Scop,Asso",
                  "stakeholder_types=cooperative,association"],
     "cres", "validated"),
    ("create_pole", ["mode=ex_nihilo", "name=Réso solidaire"], "holder",
     "pole_created"),
    ("request_posts", ["posts=2"], "holder", "posts_requested"),
    ("grant_posts", ["posts=2"], "region", "funding_year_1"),
    ("file_annual_report", ["year=1"], "holder", "funding_year_1"),
]
SECOND_HALF = [
    ("start_next_year", [], "holder", "funding_year_2"),
    ("file_annual_report", ["year=2"], "holder", "funding_year_2"),
    ("start_next_year", [], "holder", "funding_year_3"),
    ("file_annual_report", ["year=3"], "holder", "funding_year_3"),
    ("start_next_year", [], "holder", "operating"),
]


class TestRestart(unittest.TestCase):

    def setUp(self):
        self.poled = Poled()
        self.addCleanup(self.poled.close)

    def snapshot(self, d):
        return (self.poled.ctl_json("show", d, "--json"),
                self.poled.ctl_json("history", d, "--json"),
                self.poled.ctl_json("list", "--json"),
                self.poled.ctl_json("report", "--json"))

    def test_clean_restart_mid_lifecycle(self):
        p = self.poled
        self.assertTrue(os.path.exists(p.database), "-d is used")
        self.assertFalse(os.path.exists(os.path.join(p.dir, "unused.db")),
                         "-d overrides daemon.database")
        rc, out, err = p.ctl("open", "--pays", "Pays de Rennes", "--holder",
                             "Réso", "--holder-type", "ess_actor")
        d = int(out)
        drive(p, d, FIRST_HALF)
        before = self.snapshot(d)
        self.assertEqual(before[0]["state"], "funding_year_1")
        self.assertEqual(before[0]["reports_filed"], [1])

        self.assertEqual(p.stop(), 0, "SIGTERM: exit 0; log:\n" + p.log())
        p.start()
        after = self.snapshot(d)
        self.assertEqual(after[0], before[0])
        self.assertEqual(after[1], before[1])
        self.assertEqual(after[2], before[2])
        self.assertEqual(after[3], before[3])
        # the rules still see the live dossier
        rc, out, err = p.ctl("open", "--pays", "Rennes", "--holder", "X",
                             "--holder-type", "pays", check=False)
        self.assertEqual(rc, 1)
        self.assertIn("live_per_pays", err)

        # the lifecycle goes on; SIGINT is a clean stop too
        drive(p, d, SECOND_HALF[:2])
        p.proc.send_signal(signal.SIGINT)
        self.assertEqual(p.proc.wait(15), 0, "SIGINT: exit 0")
        p.start()
        drive(p, d, SECOND_HALF[2:])
        s = p.ctl_json("show", d, "--json")
        self.assertEqual((s["state"], s["version"]),
                         ("operating", 1 + len(FIRST_HALF) +
                          len(SECOND_HALF)))
        self.assertEqual(sorted(s["reports_filed"]), [1, 2, 3])
        h = p.ctl_json("history", d, "--json")
        self.assertEqual(h[:len(before[1])], before[1],
                         "history is only ever appended to")
        seqs = [e["seq"] for e in h]
        self.assertEqual(seqs, sorted(set(seqs)))
        self.assertEqual([e["event"] for e in h],
                         ["open"] + [x[0] for x in FIRST_HALF + SECOND_HALF])
        for e in h:
            self.assertRegex(e["at"], TIMESTAMP_RE)
        self.assertEqual(p.stop(), 0)

    def test_crash_keeps_acknowledged_events(self):
        p = self.poled
        rc, out, err = p.ctl("open", "--pays", "Brest", "--holder", "ADESS",
                             "--holder-type", "ess_actor")
        d = int(out)
        drive(p, d, FIRST_HALF[:3])
        before = self.snapshot(d)
        p.kill()
        p.start()
        self.assertEqual(self.snapshot(d), before)
        drive(p, d, FIRST_HALF[3:])
        self.assertEqual(p.ctl_json("show", d, "--json")["state"],
                         "funding_year_1")
        self.assertEqual(p.stop(), 0)


class TestSigterm(unittest.TestCase):
    """SIGTERM always stops poled promptly with exit 0, busy or idle, and
    every event acknowledged before it is kept."""

    def setUp(self):
        self.poled = Poled()
        self.addCleanup(self.poled.close)

    def stop_within(self, seconds):
        p = self.poled
        p.proc.send_signal(signal.SIGTERM)
        try:
            rc = p.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            stacks = polehelp.backtrace(p.proc.pid)
            self.fail("poled still running %.0fs after SIGTERM; threads:\n"
                      "%s\nlog:\n%s" % (seconds, stacks, p.log()))
        self.assertEqual(rc, 0, p.log())

    def test_sigterm_idle_repeatedly(self):
        p = self.poled
        for i in range(8):
            rc, out, err = p.ctl("list", "--json")
            self.stop_within(5)
            p.start()

    def test_sigterm_under_load(self):
        p = self.poled
        rc, out, err = p.ctl("open", "--pays", "Vannes", "--holder", "E2S",
                             "--holder-type", "ess_actor")
        d = int(out)
        acked = {}
        for rnd in range(3):
            with polehelp.Client(p.endpoint) as c:
                sent = []
                for i in range(300):
                    rid = "load-%d-%d" % (rnd, i)
                    c.send(polehelp.SIGNATURE, "EVENT", rid, "alice", str(d),
                           "", "note", "text=%d %d" % (rnd, i))
                    sent.append(rid)
                # the first replies show poled is busy with them: stop it now
                first = c.recv(timeout=10)
                self.assertIsNotNone(first)
                self.poled.proc.send_signal(signal.SIGTERM)
                replies = [first]
                while True:
                    r = c.recv(timeout=1.0)
                    if r is None:
                        break
                    replies.append(r)
            try:
                rc = p.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.fail("poled still running 5s after SIGTERM under load; "
                          "threads:\n%s" % polehelp.backtrace(p.proc.pid))
            self.assertEqual(rc, 0, p.log())
            for r in replies:
                if r[2] == b"OK":
                    acked[r[1].decode()] = r
            p.start()
        h = p.ctl_json("history", d, "--json")
        rids = [e["request_id"] for e in h]
        self.assertEqual(len(rids), len(set(rids)))
        self.assertLessEqual(set(acked), set(rids),
                             "every acknowledged event survives SIGTERM")
        for e, version in zip(h, range(1, len(h) + 1)):
            if e["request_id"] in acked:
                self.assertEqual(int(acked[e["request_id"]][5]), version)
        self.assertEqual(p.ctl_json("show", d, "--json")["version"], len(h))
        self.assertEqual(p.stop(), 0)


class TestConfigAndUsage(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="pole-cfg-")
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.name
        self.cfg = os.path.join(self.dir, "poled.cfg")
        self.endpoint = "ipc://" + os.path.join(self.dir, "s.sock")
        self.db = os.path.join(self.dir, "pole.db")

    def run_poled(self, *args, timeout=15):
        try:
            p = subprocess.run([POLED] + list(args), stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail("poled %r kept running (expected it to exit)" % (args,))
        return p.returncode, p.stdout.decode(errors="replace"), \
            p.stderr.decode(errors="replace")

    def write(self, text):
        with open(self.cfg, "w", encoding="utf-8") as f:
            f.write(text)

    def broken(self, old, new):
        """A valid configuration with `old` replaced by `new`; returns the
        1-based line number of the (first) replaced line."""
        text = config_text(endpoint=self.endpoint, database=self.db,
                           programme={"study_cap_eur": 25000,
                                      "max_posts": 2,
                                      "funding_years": 3})
        self.assertIn(old, text)
        text = text.replace(old, new, 1)
        self.write(text)
        return text[:text.index(new)].count("\n") + 1

    def assert_config_error(self, line):
        rc, out, err = self.run_poled("-c", self.cfg, "-e", self.endpoint,
                                      "-d", self.db)
        self.assertEqual(rc, 1, "exit 1 on a bad configuration; stderr %r"
                         % err)
        if line is None:
            self.assertIn(self.cfg, err)
        else:
            self.assertIn("%s:%d" % (self.cfg, line), err,
                          "FILE:LINE on stderr")
        return err

    def test_valid_config_starts(self):
        self.broken("study_cap_eur = 25000;", "study_cap_eur = 25000;")
        p = subprocess.Popen([POLED, "-c", self.cfg, "-e", self.endpoint,
                              "-d", self.db], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        try:
            ok = False
            end = time.monotonic() + 15
            while time.monotonic() < end and p.poll() is None:
                if polehelp.ping(self.endpoint, 0.25):
                    ok = True
                    break
            self.assertTrue(ok, "the unbroken configuration starts")
        finally:
            p.terminate()
            _, err = p.communicate(timeout=15)
        self.assertEqual(p.returncode, 0, err)

    def test_syntax_error(self):
        line = self.broken("max_posts = 2;", "max_posts = = 2;")
        self.assert_config_error(line)

    def test_unknown_setting(self):
        line = self.broken("study_cap_eur = 25000;", "study_cap = 25000;")
        self.assert_config_error(line)

    def test_unknown_daemon_setting(self):
        line = self.broken('  endpoint = ', '  endpont = ')
        self.assert_config_error(line)

    def test_value_out_of_range(self):
        line = self.broken("max_posts = 2;", "max_posts = 11;")
        self.assert_config_error(line)
        line = self.broken("funding_years = 3;", "funding_years = 4;")
        self.assert_config_error(line)
        line = self.broken("study_cap_eur = 25000;", "study_cap_eur = 0;")
        self.assert_config_error(line)
        line = self.broken("};\nprogramme",
                           "  max_message_size = 100;\n};\nprogramme")
        self.assert_config_error(line)
        line = self.broken("};\nprogramme", "  batch_max = 0;\n};\nprogramme")
        self.assert_config_error(line)

    def test_wrong_type(self):
        line = self.broken("study_cap_eur = 25000;",
                           'study_cap_eur = "beaucoup";')
        self.assert_config_error(line)

    def test_bad_territories(self):
        line = self.broken('{ name = "Vannes"; departement = 56; }',
                           '{ name = "Pays de Dinan"; departement = 22; }')
        self.assert_config_error(line)      # same as "Dinan"
        line = self.broken('{ name = "Vannes"; departement = 56; }',
                           '{ name = "Vannes"; departement = -56; }')
        self.assert_config_error(line)
        line = self.broken('{ name = "Vannes"; departement = 56; }',
                           '{ departement = 56; }')
        self.assert_config_error(line)

    def test_no_territories(self):
        self.write('daemon = { };\nprogramme = { };\nterritories = ( );\n')
        self.assert_config_error(None)
        self.write('daemon = { };\nprogramme = { };\n')
        self.assert_config_error(None)

    def test_missing_config_file(self):
        rc, out, err = self.run_poled("-c", os.path.join(self.dir, "none.cfg"),
                                      "-e", self.endpoint, "-d", self.db)
        self.assertEqual(rc, 1)
        self.assertIn("none.cfg", err)

    def test_database_cannot_be_opened(self):
        self.broken("max_posts = 2;", "max_posts = 2;")
        bad = os.path.join(self.dir, "no", "such", "dir", "pole.db")
        rc, out, err = self.run_poled("-c", self.cfg, "-e", self.endpoint,
                                      "-d", bad)
        self.assertEqual(rc, 1, err)
        self.assertNotEqual(err.strip(), "", "says why")
        notadb = os.path.join(self.dir, "garbage.db")
        with open(notadb, "wb") as f:
            f.write(b"this is not an SQLite database" * 100)
        rc, out, err = self.run_poled("-c", self.cfg, "-e", self.endpoint,
                                      "-d", notadb)
        self.assertEqual(rc, 1, err)

    def test_bad_usage(self):
        for args in ((), ("--bogus",), ("-c",)):
            rc, out, err = self.run_poled(*args)
            self.assertEqual(rc, 2, "poled %r: exit 2, got %d (%r)"
                             % (args, rc, err))
        rc, out, err = self.run_poled("-V")
        self.assertEqual(rc, 0)
        self.assertRegex(out + err, r"\d+\.\d+\.\d+")
        rc, out, err = self.run_poled("-h")
        self.assertEqual(rc, 0)
        self.assertIn("-c", out + err)

    def test_endpoint_and_database_from_config(self):
        text = config_text(endpoint=self.endpoint, database=self.db)
        self.write(text)
        p = subprocess.Popen([POLED, "-c", self.cfg],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        try:
            end = time.monotonic() + 15
            ok = False
            while time.monotonic() < end and p.poll() is None:
                if polehelp.ping(self.endpoint, 0.25):
                    ok = True
                    break
            self.assertTrue(ok, "poled listens on daemon.endpoint")
            rc, out, err = polehelp.ctl("open", "--pays", "Vannes",
                                        "--holder", "E2S", "--holder-type",
                                        "ess_actor", endpoint=self.endpoint)
            self.assertTrue(os.path.exists(self.db), "daemon.database used")
        finally:
            p.terminate()
            _, err = p.communicate(timeout=15)
        self.assertEqual(p.returncode, 0, err)


if __name__ == "__main__":
    unittest.main()
