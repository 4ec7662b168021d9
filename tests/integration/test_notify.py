"""Notifications to coordinators (docs/NOTIFY.md) through real receivers.

poled runs with a `notify` group and `coordinators` appended to the usual
test configuration; the receivers are real servers on 127.0.0.1 started by
the tests (receivers.py): an SMTP server (aiosmtpd), an HTTP server for
webhooks that checks the HMAC signature, and a program for the command
channel that records its POLE_* environment.

* routing: one transition reaches every coordinator that follows it once, on
  its channel (email, webhook, command), and nobody else (filters pays,
  departements, events, holders, all of them must match); ids are SEQ-K;
  e-mail headers and bilingual body; webhook JSON keys and signature;
  command environment; the same notification on every channel;
* a webhook receiver down for a while gets everything afterwards, in order
  per dossier, each id once; while it is down only the head of each dossier
  is tried;
* a receiver answering 500 ends `dead` after max_attempts; `outbox retry
  --dead` (and `outbox retry ID`) deliver them again with the same id;
* SIGKILL with pending notifications loses none;
* the PUB stream: frames, commit order, nothing for a refused event; `polectl
  watch` with --pays/--state/--event/--json/--count;
* digest: one message for a batch of transitions (needs a quick digest hook);
* the webhook signature is the HMAC-SHA256 of the exact body bytes.

Waits are bounded polls (deadlines), never bare sleeps.
"""

import json
import sqlite3
import os
import re
import subprocess
import tempfile
import threading
import time
import unittest

import zmq

import polehelp
from polehelp import (Poled, PoledError, POLED, POLECTL, SIGNATURE,
                      TIMESTAMP_RE, new_request_id,
                      ok_event_reply)
import receivers

NOTIFICATION_KEYS = {"id", "seq", "coordinator", "dossier", "pays",
                     "departement", "holder", "title", "event", "from", "to",
                     "actor", "at", "fields", "expected_next"}
OUTBOX_KEYS = {"id", "seq", "dossier", "coordinator", "channel", "address",
               "delivery", "state", "attempts", "next_at", "last_error",
               "created_at", "delivered_at", "event", "pays"}
ID_RE = re.compile(r"^([1-9][0-9]*)-(0|[1-9][0-9]*)$")
SIG_RE = re.compile(r"^sha256=[0-9a-f]{64}$")
SMTP_FROM = "poled@pole.test"

# words only one of the two languages uses (the test data avoid them)
FRENCH_WORDS = re.compile(r"(?<![\w])(le|la|les|du|des|par|pour|est|été|"
                          r"attendu|attendus|attendue|attendues|suite|"
                          r"prochain|prochaine|prochaines|étape|étapes|"
                          r"à|au|aux|sur|avec)(?![\w])", re.I)
ENGLISH_WORDS = re.compile(r"(?<![\w])(the|by|was|has|been|expected|next|"
                           r"for|of|from|with|step|steps)(?![\w])", re.I)


# ---------------------------------------------------------------------------
# configuration

def lc_value(value):
    """A Python value in libconfig syntax."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')
    if isinstance(value, (list, tuple)):
        return "[ %s ]" % ", ".join(lc_value(v) for v in value)
    raise TypeError(value)


def notify_config_text(notify=None, coordinators=()):
    """The `notify` group and the `coordinators` list of NOTIFY.md, to be
    appended after polehelp.config_text() (coordinators come after the
    territories)."""
    lines = ["# appended by tests/integration/test_notify.py"]
    if notify is not None:
        lines.append("notify = {")
        for key, value in notify.items():
            if isinstance(value, dict):
                lines.append("  %s = {" % key)
                for k, v in value.items():
                    lines.append("    %s = %s;" % (k, lc_value(v)))
                lines.append("  };")
            else:
                lines.append("  %s = %s;" % (key, lc_value(value)))
        lines.append("};")
    if coordinators:
        lines.append("coordinators = (")
        for i, c in enumerate(coordinators):
            sep = "," if i + 1 < len(coordinators) else ""
            lines.append("  { %s }%s" % (" ".join(
                "%s = %s;" % (k, lc_value(v)) for k, v in c.items()), sep))
        lines.append(");")
    return "\n".join(lines) + "\n"


class NotifyPoled(Poled):
    """A Poled whose configuration has notify settings and coordinators:
    polehelp.config_text() as usual, then notify_config_text() appended.
    Without a pub_endpoint in `notify`, the live stream goes to an IPC
    endpoint in the temporary directory."""

    def __init__(self, notify=None, coordinators=(), **kw):
        start = kw.pop("start", True)
        super().__init__(start=False, **kw)
        notify = dict(notify or {})
        notify.setdefault("pub_endpoint",
                          "ipc://%s" % os.path.join(self.dir, "pub.sock"))
        self.pub_endpoint = notify["pub_endpoint"]
        self.coordinators = list(coordinators)
        with open(self.config, "a", encoding="utf-8") as f:
            f.write(notify_config_text(notify, self.coordinators))
        if start:
            try:
                self.start()
            except BaseException:
                self.close()
                raise


def lead_int(text):
    m = re.match(r"^\s*(\d+)\b", text)
    if not m:
        raise AssertionError("expected a number first, got %r" % text)
    return int(m.group(1))


def setUpModule():
    if not (os.access(POLED, os.X_OK) and os.access(POLECTL, os.X_OK)):
        raise unittest.SkipTest("binaries not found in %s"
                                % polehelp.BUILD_DIR)
    p = subprocess.run([POLECTL, "outbox", "--help"],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30)
    if p.returncode != 0:
        raise AssertionError("`polectl outbox --help` exits %d: this build "
                             "has no notifications (docs/NOTIFY.md): %s"
                             % (p.returncode, p.stderr.decode(errors="replace")))


# ---------------------------------------------------------------------------
# the base of the test cases

class NotifyCase(unittest.TestCase):

    BACKOFF = {"backoff_initial_ms": 100, "backoff_max_ms": 500}

    def setUp(self):
        base = None if len(tempfile.gettempdir()) < 60 else "/tmp"
        self.tmp = tempfile.TemporaryDirectory(prefix="pole-rx-", dir=base)
        self.addCleanup(self.tmp.cleanup)
        self.poled = None

    # receivers ----------------------------------------------------------
    def smtp(self):
        rx = receivers.SmtpReceiver().start()
        self.addCleanup(rx.stop)
        return rx

    def http(self, secrets=None):
        rx = receivers.HttpReceiver(secrets=secrets).start()
        self.addCleanup(rx.stop)
        return rx

    def command(self, name="pole-notify-cmd"):
        return receivers.CommandReceiver(self.tmp.name, name)

    # poled --------------------------------------------------------------
    def start_poled(self, coordinators, smtp=None, **notify):
        settings = dict(self.BACKOFF)
        settings.setdefault("max_attempts", 50)
        settings.update(notify)
        if smtp is not None:
            settings["smtp"] = {"url": smtp.url, "from": SMTP_FROM}
        self.poled = NotifyPoled(settings, coordinators)
        self.addCleanup(self.poled.close)
        return self.poled

    def ctl(self, *args, **kw):
        return self.poled.ctl(*args, **kw)

    def open(self, pays, holder, title=None, actor="holder"):
        args = ["open", "--pays", pays, "--holder", holder,
                "--holder-type", "ess_actor"]
        if title is not None:
            args += ["--title", title]
        rc, out, err = self.ctl(*args, actor=actor)
        return int(out)

    def send(self, dossier, event, *fields, actor="holder", expect=None):
        rc, out, err = self.ctl("send", dossier, event, *fields, actor=actor)
        if expect is not None:
            self.assertEqual(out.strip(), expect, "%s %s" % (event, err))
        return out.strip()

    def send_raw(self, dossier, event, *fields, actor="holder"):
        """EVENT over the protocol; returns the seq of the event."""
        rid = new_request_id("nt")
        reply = self.poled.request(SIGNATURE, "EVENT", rid, actor,
                                   str(dossier), "", event, *fields)
        return ok_event_reply(reply, rid)[3]

    def history(self, dossier):
        return self.poled.ctl_json("history", dossier, "--json")

    def outbox(self, state=None):
        args = ["outbox"]
        if state is not None:
            args += ["--state", state]
        rows = self.poled.ctl_json(*args, "--json")
        self.assertIsInstance(rows, list)
        return rows

    def diagnostics(self):
        try:
            rows = self.outbox()
        except Exception as e:          # poled may be down
            rows = "outbox unavailable: %s" % e
        log = self.poled.log() if self.poled else ""
        return "\noutbox: %s\npoled log (end):\n%s" % (
            json.dumps(rows, ensure_ascii=False, indent=None)[:6000],
            log[-4000:])

    def wait(self, predicate, timeout, what):
        """Poll predicate() until it returns something true (bounded)."""
        end = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > end:
                self.fail("not within %.0fs: %s%s" % (timeout, what,
                                                      self.diagnostics()))
            time.sleep(0.05)

    def wait_outbox(self, predicate, timeout, what):
        return self.wait(lambda: predicate(self.outbox()), timeout, what)

    def wait_all_delivered(self, count, timeout=15):
        def done(rows):
            return (len(rows) == count
                    and all(r["state"] == "delivered" for r in rows)
                    and rows)
        return self.wait_outbox(done, timeout, "%d notifications delivered"
                                % count)

    # expectations -------------------------------------------------------
    def events_of(self, *dossiers):
        """[(history entry, dossier object)] of the dossiers, by seq."""
        out = []
        for d in dossiers:
            show = self.poled.show(d)
            for e in self.history(d):
                out.append((e, show))
        out.sort(key=lambda x: x[0]["seq"])
        return out

    def check_notification(self, n, entry, dossier, k, coordinator):
        """A notification JSON (webhook body, POLE_PAYLOAD) against the
        event of the history it notifies."""
        self.assertEqual(set(n), NOTIFICATION_KEYS,
                         "the keys of a notification: %r" % n)
        self.assertEqual(n["id"], "%d-%d" % (entry["seq"], k))
        self.assertEqual(n["seq"], entry["seq"])
        self.assertEqual(n["coordinator"], coordinator)
        self.assertEqual(n["dossier"], entry["dossier"])
        self.assertEqual(n["pays"], dossier["pays"])
        self.assertEqual(n["departement"], dossier["departement"])
        self.assertEqual(n["holder"], dossier["holder"])
        self.assertEqual(n["title"], dossier["title"])
        self.assertEqual(n["event"], entry["event"])
        self.assertEqual(n["from"], entry["from"])
        self.assertEqual(n["to"], entry["to"])
        self.assertEqual(n["actor"], entry["actor"])
        self.assertEqual(n["at"], entry["at"])
        self.assertRegex(n["at"], TIMESTAMP_RE)
        self.assertEqual(n["fields"], entry["fields"])
        self.assertIsInstance(n["expected_next"], list)
        for ev in n["expected_next"]:
            self.assertIsInstance(ev, str)
        expected_next = {
            "draft": {"request_study", "withdraw"},
            "study_requested": {"grant_study", "decline_study", "withdraw"},
            "study_funded": {"deliver_study", "withdraw"},
        }.get(entry["to"], set())
        self.assertLessEqual(expected_next, set(n["expected_next"]),
                             "expected_next after %s" % entry["to"])


# ---------------------------------------------------------------------------
# 1. routing: who gets what, on which channel, with which id

class TestRouting(NotifyCase):

    def test_each_follower_once_per_channel_and_nobody_else(self):
        smtp = self.smtp()
        http = self.http(secrets={"/region": "région-secret",
                                  "/grants": "grants-secret",
                                  "/nobody": "nobody-secret"})
        cmd = self.command()
        coordinators = [
            # K0..K5 follow something, K6..K8 nothing of what happens here
            {"name": "CRES", "channel": "email",
             "address": "cres@pole.test"},
            {"name": "Région, service ESS", "channel": "webhook",
             "address": http.url("/region"), "secret": "région-secret"},
            {"name": "Programme Rennes", "channel": "command",
             "address": cmd.path, "pays": ["Pays de Rennes"]},
            {"name": "Département 22", "channel": "email",
             "address": "dep22@pole.test", "departements": [22]},
            {"name": "Grants", "channel": "webhook",
             "address": http.url("/grants"), "secret": "grants-secret",
             "events": ["grant_study"]},
            {"name": "Reso requests", "channel": "command",
             "address": cmd.path, "holders": ["Reso"],
             "events": ["request_study"]},
            {"name": "Département 29", "channel": "email",
             "address": "dep29@pole.test", "departements": [29]},
            {"name": "Nobody", "channel": "webhook",
             "address": http.url("/nobody"), "secret": "nobody-secret",
             "pays": ["Rennes"], "departements": [22]},
            {"name": "Wrong holder", "channel": "command",
             "address": cmd.path, "holders": ["reso"]},
        ]
        self.start_poled(coordinators, smtp=smtp)

        d1 = self.open("Rennes", "Reso", title="Pole Rennes")
        d2 = self.open("dinan", "Dinan ESS", title="Pole Dinan")
        self.send(d1, "request_study", "amount=20000",
                  expect="study_requested")
        self.send(d2, "request_study", "amount=15000",
                  expect="study_requested")
        self.send(d1, "grant_study", "amount=20000", actor="region",
                  expect="study_funded")
        # refused (above the cap): notifies nobody
        rc, out, err = self.ctl("send", d2, "grant_study", "amount=30000",
                                actor="region", check=False)
        self.assertEqual(rc, 1, err)
        self.send(d2, "note", "text=ok", expect="study_requested")

        events = self.events_of(d1, d2)
        self.assertEqual(len(events), 6)

        def follows(c, entry, dossier):
            if "pays" in c and dossier["pays"] not in [
                    {"Pays de Rennes": "Rennes"}.get(p, p) for p in c["pays"]]:
                return False
            if "departements" in c and \
                    dossier["departement"] not in c["departements"]:
                return False
            if "events" in c and entry["event"] not in c["events"]:
                return False
            if "holders" in c and dossier["holder"] not in c["holders"]:
                return False
            return True

        expected = {}           # id -> (entry, dossier, k)
        for entry, dossier in events:
            for k, c in enumerate(coordinators):
                if follows(c, entry, dossier):
                    expected["%d-%d" % (entry["seq"], k)] = (entry, dossier, k)
        self.assertEqual(len(expected), 20, "the test's own routing model")

        rows = self.wait_all_delivered(len(expected))
        for r in rows:
            self.assertLessEqual(OUTBOX_KEYS, set(r))
            self.assertRegex(r["id"], ID_RE)
            entry, dossier, k = expected[r["id"]]
            c = coordinators[k]
            self.assertEqual((r["seq"], r["dossier"], r["coordinator"],
                              r["channel"], r["address"], r["delivery"],
                              r["event"], r["pays"]),
                             (entry["seq"], entry["dossier"], c["name"],
                              c["channel"], c["address"], "immediate",
                              entry["event"], dossier["pays"]))
            self.assertRegex(r["created_at"], TIMESTAMP_RE)
            self.assertRegex(r["delivered_at"], TIMESTAMP_RE)
        self.assertEqual(sorted(r["id"] for r in rows), sorted(expected))
        self.assertEqual([(r["seq"], int(r["id"].split("-")[1]))
                          for r in rows],
                         sorted((r["seq"], int(r["id"].split("-")[1]))
                                for r in rows),
                         "OUTBOX is ordered by seq, then K")
        self.assertEqual(self.outbox("pending"), [])
        self.assertEqual(self.outbox("dead"), [])
        self.assertEqual(len(self.outbox("delivered")), len(expected))

        by_channel = {"email": {}, "webhook": {}, "command": {}}
        for nid, (entry, dossier, k) in expected.items():
            by_channel[coordinators[k]["channel"]][nid] = (entry, dossier, k)

        # --- e-mail: one message per notification, to its address only
        mails = smtp.snapshot()
        self.assertEqual(len(mails), len(by_channel["email"]),
                         "one e-mail per notification: %r"
                         % [m["message"]["Subject"] for m in mails])
        seen = set()
        for m in mails:
            msg = m["message"]
            nid = msg["X-Pole-Notification-Id"]
            self.assertIn(nid, by_channel["email"], "an expected id")
            self.assertNotIn(nid, seen, "each id once")
            seen.add(nid)
            entry, dossier, k = by_channel["email"][nid]
            address = coordinators[k]["address"]
            self.assertEqual(m["rcpt_tos"], [address])
            self.assertIn(address, str(msg["To"]))
            self.assertIn(SMTP_FROM, str(msg["From"]))
            self.assertIn(SMTP_FROM, m["mail_from"])
            self.assertTrue(str(msg["Subject"]).startswith("[pole]"),
                            msg["Subject"])
            self.assertEqual(str(msg["Message-ID"]).strip(), "<%s@pole>" % nid)
            self.assertEqual(msg.get_content_type(), "text/plain")
            self.assertEqual((msg.get_content_charset() or "").lower(),
                             "utf-8")
            text = receivers.plain_text(msg)
            self.assertIsNotNone(text)
            self.assertIn(str(entry["dossier"]), text)
            self.assertIn(dossier["pays"], text)
            self.assertIn(entry["actor"], text)
            self.assertTrue(entry["event"] in text or entry["to"] in text,
                            "the transition is named: %s" % text)
            self.assertIn(entry["at"][:10].split("-")[0], text, "the time")
            for ev in {"draft": ["request_study"],
                       "study_requested": ["grant_study", "decline_study"],
                       "study_funded": ["deliver_study"]}[entry["to"]]:
                self.assertIn(ev, text, "what is expected next")
            fr = FRENCH_WORDS.search(text)
            en = ENGLISH_WORDS.search(text)
            self.assertTrue(fr and en, "French and English: %s" % text)
            self.assertLess(fr.start(), en.start(),
                            "French first, then English: %s" % text)
        self.assertEqual(smtp.to("dep29@pole.test"), [])

        # --- webhook: JSON body, id header, signature
        posts = http.snapshot()
        self.assertEqual(len(posts), len(by_channel["webhook"]),
                         "one POST per notification: %r"
                         % [(p["path"], p["body"][:80]) for p in posts])
        self.assertEqual(http.posts("/nobody"), [])
        payloads = {}           # seq -> a notification, for the comparison
        seen = set()
        for p in posts:
            nid = p["headers"].get("x-pole-notification-id")
            self.assertIn(nid, by_channel["webhook"])
            self.assertNotIn(nid, seen)
            seen.add(nid)
            entry, dossier, k = by_channel["webhook"][nid]
            c = coordinators[k]
            self.assertEqual(http.url(p["path"]), c["address"])
            self.assertTrue(p["headers"].get("content-type", "")
                            .startswith("application/json"), p["headers"])
            self.assertRegex(p["headers"].get("x-pole-signature", ""), SIG_RE)
            self.assertTrue(p["signature_ok"], "valid signature for %s" % nid)
            n = json.loads(p["body"].decode("utf-8"))
            self.check_notification(n, entry, dossier, k, c["name"])
            payloads.setdefault(entry["seq"], n)

        # --- command: the environment of NOTIFY.md
        records = cmd.records()
        self.assertEqual(len(records), len(by_channel["command"]),
                         "one run per notification: %r" % records)
        seen = set()
        for r in records:
            nid = r.get("POLE_NOTIFICATION_ID")
            self.assertIn(nid, by_channel["command"])
            self.assertNotIn(nid, seen)
            seen.add(nid)
            entry, dossier, k = by_channel["command"][nid]
            c = coordinators[k]
            self.assertEqual(r["_argv"], [], "no arguments")
            self.assertEqual(r["POLE_COORDINATOR"], c["name"])
            self.assertEqual(r["POLE_DOSSIER"], str(entry["dossier"]))
            self.assertEqual(r["POLE_PAYS"], dossier["pays"])
            self.assertEqual(r["POLE_EVENT"], entry["event"])
            self.assertEqual(r.get("POLE_FROM") or None, entry["from"])
            self.assertEqual(r["POLE_TO"], entry["to"])
            self.assertEqual(r["POLE_ACTOR"], entry["actor"])
            self.assertEqual(r["POLE_AT"], entry["at"])
            n = json.loads(r["POLE_PAYLOAD"])
            self.check_notification(n, entry, dossier, k, c["name"])
            # the same notification as on the webhook, but id and coordinator
            other = payloads.get(entry["seq"])
            self.assertIsNotNone(other, "the Région's webhook had seq %d"
                                 % entry["seq"])
            strip = lambda x: {a: b for a, b in x.items()
                               if a not in ("id", "coordinator")}
            self.assertEqual(strip(n), strip(other))

        # ids of one event: same SEQ on every channel, K = the position
        for nid, (entry, dossier, k) in expected.items():
            self.assertEqual(nid, "%d-%d" % (entry["seq"], k))
        # `attempts` counts failed tries (PROTOCOL.md, OUTBOX): none here
        self.assertEqual([(r["id"], r["attempts"]) for r in rows
                          if r["attempts"] != 0], [],
                         "delivered at the first try: no failed attempt")
        self.assertEqual(self.poled.stop(), 0, self.poled.log())


# ---------------------------------------------------------------------------
# 2. a receiver down for a while

class TestReceiverDown(NotifyCase):

    def test_gets_everything_in_order_once_back(self):
        http = self.http(secrets={"/hook": "down-secret"})
        http.stop()                         # down from the start
        self.start_poled([{"name": "Hook", "channel": "webhook",
                           "address": http.url("/hook"),
                           "secret": "down-secret"}], max_attempts=100)
        d1 = self.open("Rennes", "Reso")
        d2 = self.open("Brest", "ADESS")
        self.send(d1, "request_study", "amount=20000")
        self.send(d2, "note", "text=a")
        self.send(d1, "grant_study", "amount=20000", actor="region")
        self.send(d2, "note", "text=b")
        self.send(d1, "deliver_study", "diagnosis=d", "priority_actions=a",
                  "governance=g", expect="study_delivered")
        self.send(d2, "request_study", "amount=10000")
        events = self.events_of(d1, d2)
        self.assertEqual(len(events), 8)
        seqs = {d: [e["seq"] for e, s in events if e["dossier"] == d]
                for d in (d1, d2)}

        # down for a while: the head of each dossier is retried (twice at
        # least), the others wait behind it
        def retried(rows):
            if len(rows) != 8:
                return False
            heads = {d: min(seqs[d]) for d in seqs}
            return all(r["attempts"] >= 2 for r in rows
                       if r["seq"] == heads[r["dossier"]]) and rows
        rows = self.wait_outbox(retried, 10,
                                "the head of each dossier retried twice")
        for r in rows:
            self.assertEqual(r["state"], "pending")
            if r["seq"] not in (min(seqs[d1]), min(seqs[d2])):
                self.assertEqual(r["attempts"], 0,
                                 "%s waits behind the head of dossier %d"
                                 % (r["id"], r["dossier"]))
            else:
                self.assertTrue(r["last_error"], "the reason is kept")
                self.assertRegex(r["next_at"] or "", TIMESTAMP_RE)
        self.assertEqual(http.snapshot(), [])

        http.start()                        # back, on the same port
        back = time.monotonic()
        self.wait_all_delivered(8, timeout=15)
        self.assertLess(http.snapshot()[0]["at"] - back, 2.5,
                        "the next try comes within backoff_max_ms (500) "
                        "+ jitter")
        posts = http.posts("/hook")
        ids = [p["headers"]["x-pole-notification-id"] for p in posts]
        self.assertEqual(sorted(set(ids)),
                         sorted("%d-0" % e["seq"] for e, s in events),
                         "every notification arrived")
        first = {}
        for p, nid in zip(posts, ids):
            self.assertTrue(p["signature_ok"])
            self.assertEqual(p["status"], 200)
            if nid in first:            # a duplicate: the same bytes
                self.assertEqual(p["body"], first[nid]["body"])
            else:
                first[nid] = p
        self.assertEqual(len(ids), len(set(ids)),
                         "each once (duplicates: %r)" % [
                             i for i in set(ids) if ids.count(i) > 1])
        for d in (d1, d2):
            arrived = [int(nid.split("-")[0]) for nid in first
                       if json.loads(first[nid]["body"])["dossier"] == d]
            self.assertEqual(arrived, seqs[d],
                             "dossier %d in sequence order" % d)
        self.assertEqual(self.poled.stop(), 0, self.poled.log())


# ---------------------------------------------------------------------------
# 3. dead after max_attempts, then retry

class TestDeadAndRetry(NotifyCase):

    def test_dead_then_retry(self):
        http = self.http(secrets={"/hook": "s500"})
        http.set_status(500)
        self.start_poled([{"name": "Hook500", "channel": "webhook",
                           "address": http.url("/hook"), "secret": "s500"}],
                         max_attempts=3)
        d = self.open("Vannes", "E2S")
        self.send(d, "request_study", "amount=20000")
        ids = ["%d-0" % e["seq"] for e in self.history(d)]
        self.assertEqual(len(ids), 2)

        dead = self.wait(lambda: (lambda rows: len(rows) == 2 and rows)(
            self.outbox("dead")), 15, "both notifications dead")
        self.assertEqual([r["id"] for r in dead], ids)
        for r in dead:
            self.assertEqual(r["state"], "dead")
            self.assertEqual(r["attempts"], 3)
            self.assertTrue(r["last_error"], "dead with its last error")
            self.assertIn("500", r["last_error"])
            self.assertIsNone(r["delivered_at"])
        self.assertEqual(self.outbox("pending"), [])
        self.assertEqual(self.outbox("delivered"), [])
        for nid in ids:
            tries = [p for p in http.posts("/hook")
                     if p["headers"].get("x-pole-notification-id") == nid]
            self.assertEqual(len(tries), 3, "max_attempts tries of %s" % nid)
            self.assertEqual(len({p["body"] for p in tries}), 1,
                             "every retry carries the same notification")
            self.assertTrue(all(p["signature_ok"] for p in tries))
            # backoff: 100 ms then 200 ms (+-20 %), capped at 500 ms
            gaps = [b["at"] - a["at"] for a, b in zip(tries, tries[1:])]
            self.assertGreaterEqual(gaps[0], 0.075, gaps)
            self.assertGreaterEqual(gaps[1], 0.155, gaps)
            self.assertLess(max(gaps), 3.0, gaps)

        # the text listing: ID STATE ATTEMPTS COORDINATOR CHANNEL DOSSIER
        # EVENT LAST_ERROR
        rc, out, err = self.ctl("outbox", "--state", "dead")
        lines = out.splitlines()
        self.assertEqual(len(lines), 2, out)
        for line, nid, ev in zip(lines, ids, ["open", "request_study"]):
            f = line.split()
            self.assertEqual(f[:7], [nid, "dead", "3", "Hook500", "webhook",
                                     str(d), ev], line)
            self.assertGreater(len(f), 7, "LAST_ERROR: %r" % line)

        # the receiver is fixed: queue the dead ones again
        http.set_status(200)
        rc, out, err = self.ctl("outbox", "retry", "--dead")
        self.assertEqual(lead_int(out), 2, out)
        rows = self.wait_all_delivered(2)
        for r in rows:
            self.assertRegex(r["delivered_at"], TIMESTAMP_RE)
        attempts_after_retry = [r["attempts"] for r in rows]
        for nid in ids:
            ok = [p for p in http.posts("/hook", status=200)
                  if p["headers"].get("x-pole-notification-id") == nid]
            self.assertEqual(len(ok), 1, "%s delivered once" % nid)
        rc, out, err = self.ctl("outbox", "retry", "--dead")
        self.assertEqual(lead_int(out), 0, "no dead row left: %r" % out)

        # one delivered row queued again: same id, same bytes
        before = [p for p in http.posts("/hook", status=200)
                  if p["headers"]["x-pole-notification-id"] == ids[1]]
        rc, out, err = self.ctl("outbox", "retry", ids[1])
        self.assertEqual(lead_int(out), 1, out)
        self.wait(lambda: len([p for p in http.posts("/hook", status=200)
                               if p["headers"]["x-pole-notification-id"]
                               == ids[1]]) == 2, 10, "delivered again")
        again = [p for p in http.posts("/hook", status=200)
                 if p["headers"]["x-pole-notification-id"] == ids[1]]
        self.assertEqual(again[1]["body"], before[0]["body"])
        self.wait_all_delivered(2)
        # an id that is not in the outbox: NOT_FOUND (exit 3)
        rc, out, err = self.ctl("outbox", "retry", "999999-0", check=False)
        self.assertEqual(rc, 3, "unknown id: %r %r" % (out, err))
        self.assertEqual(len(http.posts("/hook", status=500)), 6,
                         "nothing more was tried while dead")
        # queued again with attempts 0, then delivered at the first try:
        # `attempts` (failed tries, PROTOCOL.md) stays 0
        self.assertEqual(attempts_after_retry, [0, 0])
        self.assertEqual(self.poled.stop(), 0, self.poled.log())


# ---------------------------------------------------------------------------
# 4. SIGKILL with pending notifications

class TestCrash(NotifyCase):

    def test_kill9_loses_no_notification(self):
        http = self.http(secrets={"/hook": "crash-secret"})
        http.stop()
        cmd = self.command()
        cmd.fail(True)
        self.start_poled([
            {"name": "Hook", "channel": "webhook",
             "address": http.url("/hook"), "secret": "crash-secret"},
            {"name": "Program", "channel": "command", "address": cmd.path},
        ], max_attempts=100)
        p = self.poled
        d1 = self.open("Lorient", "Lorient ESS")
        d2 = self.open("Auray", "Auray ESS")
        self.send(d1, "request_study", "amount=20000")
        self.send(d2, "note", "text=one")
        self.send(d1, "grant_study", "amount=20000", actor="region")
        # the worker is busy failing on both channels
        self.wait_outbox(lambda rows: len(rows) == 10 and all(
            any(r["attempts"] >= 1 for r in rows if r["coordinator"] == c)
            for c in ("Hook", "Program")), 10, "both channels failing")
        # an event acknowledged right before the crash
        seq = self.send_raw(d2, "note", "text=last words")
        p.kill()
        p.start()
        rows = self.outbox()
        self.assertEqual(len(rows), 12, "none lost: %r" % rows)
        self.assertEqual({r["state"] for r in rows}, {"pending"})
        self.assertIn("%d-0" % seq, [r["id"] for r in rows])
        self.assertIn("%d-1" % seq, [r["id"] for r in rows])

        http.start()
        cmd.fail(False)
        self.wait_all_delivered(12, timeout=20)
        events = self.events_of(d1, d2)
        self.assertEqual(len(events), 6)
        want = sorted("%d-0" % e["seq"] for e, s in events)
        got_http = [x["headers"]["x-pole-notification-id"]
                    for x in http.posts("/hook")]
        self.assertEqual(sorted(set(got_http)), want)
        got_cmd = [r["POLE_NOTIFICATION_ID"] for r in cmd.records()]
        self.assertEqual(sorted(set(got_cmd)),
                         sorted("%d-1" % e["seq"] for e, s in events))
        # per dossier, in order (first arrivals)
        for got in (got_http, got_cmd):
            firsts = list(dict.fromkeys(int(i.split("-")[0]) for i in got))
            for d in (d1, d2):
                mine = [s for s in firsts
                        if s in [e["seq"] for e, x in events
                                 if e["dossier"] == d]]
                self.assertEqual(mine, sorted(mine))
        self.assertEqual(p.stop(), 0, p.log())


# ---------------------------------------------------------------------------
# 5. the live stream and polectl watch

def sub_socket(endpoint):
    s = zmq.Context.instance().socket(zmq.SUB)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SUBSCRIBE, b"")
    s.connect(endpoint)
    return s


class PubProxy(threading.Thread):
    """SUB (connected to poled's PUB, everything) -> XPUB (bound on a free
    loopback port, verbose): forwards the stream unchanged and records the
    subscriptions of the watchers that connect, so that a test knows when a
    `polectl watch` is subscribed (PUB/SUB drops what comes before)."""

    def __init__(self, upstream):
        super().__init__(name="pub-proxy", daemon=True)
        self.upstream = upstream
        self.port = polehelp.free_tcp_port()
        self.endpoint = "tcp://127.0.0.1:%d" % self.port
        self.cond = threading.Condition()
        self.received = []          # upstream messages (frames)
        self.subscriptions = []
        self.stopping = False
        self.ready = threading.Event()
        self.error = None

    def run(self):
        ctx = zmq.Context.instance()
        sub = ctx.socket(zmq.SUB)
        xpub = ctx.socket(zmq.XPUB)
        try:
            for s in (sub, xpub):
                s.setsockopt(zmq.LINGER, 0)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(self.upstream)
            xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
            xpub.bind(self.endpoint)
            self.ready.set()
            poller = zmq.Poller()
            poller.register(sub, zmq.POLLIN)
            poller.register(xpub, zmq.POLLIN)
            while not self.stopping:
                for sock, _ in poller.poll(50):
                    if sock is sub:
                        msg = sub.recv_multipart()
                        xpub.send_multipart(msg)
                        with self.cond:
                            self.received.append(msg)
                            self.cond.notify_all()
                    else:
                        msg = xpub.recv_multipart()
                        with self.cond:
                            self.subscriptions.append(msg[0])
                            self.cond.notify_all()
        except Exception as e:          # reported by the test
            self.error = e
            self.ready.set()
        finally:
            sub.close(0)
            xpub.close(0)

    def stop(self):
        self.stopping = True
        self.join(5)

    def wait(self, predicate, timeout):
        end = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.1))
            return True


def recv_all(sock, until, timeout):
    """Messages from `sock` until until(msgs) is true (bounded)."""
    msgs = []
    end = time.monotonic() + timeout
    while not until(msgs):
        left = end - time.monotonic()
        if left <= 0:
            break
        if sock.poll(int(min(left, 0.2) * 1000), zmq.POLLIN):
            msgs.append(sock.recv_multipart())
    return msgs


# columns separated by blanks (one or more); a Pays may contain a space
WATCH_LINE_RE = re.compile(r"^(\d+)\s+(\S+)\s+(.+?)\s+(\d+)\s+([a-z_]+)\s+"
                           r"(\S+)\s+->\s+([a-z_0-9]+)\s+(.+?)\s*$")


class TestLiveStream(NotifyCase):

    def watch(self, *args, endpoint=None, env=None):
        cmd = [POLECTL]
        if endpoint is not None:
            cmd += ["--pub-endpoint", endpoint]
        cmd += ["watch"] + list(args)
        e = dict(os.environ)
        e.pop("POLE_PUB_ENDPOINT", None)
        e.update(env or {})
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=e)
        self.addCleanup(lambda: proc.poll() is None and
                        (proc.kill(), proc.wait()))
        return proc

    def finish(self, proc, timeout=10):
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            self.fail("%r still running after %ss; stdout %r stderr %r"
                      % (proc.args, timeout, out, err))
        self.assertEqual(proc.returncode, 0, "%r: %r" % (proc.args, err))
        return out.decode("utf-8").splitlines()

    def test_stream_order_filters_and_refused(self):
        pub = "tcp://127.0.0.1:%d" % polehelp.free_tcp_port()
        self.start_poled([], pub_endpoint=pub)
        p = self.poled
        direct = sub_socket(pub)
        self.addCleanup(direct.close, 0)
        proxy = PubProxy(pub)
        proxy.start()
        self.addCleanup(proxy.stop)
        self.assertTrue(proxy.ready.wait(5))
        self.assertIsNone(proxy.error)

        # warm up until both subscribers get the stream (slow joiners)
        w = self.open("Vannes", "E2S")
        direct_seen = []
        end = time.monotonic() + 15
        while True:
            seq = self.send_raw(w, "note", "text=warm-up")
            direct_seen += recv_all(direct, lambda m: any(
                len(x) == 3 and json.loads(x[2])["seq"] == seq for x in m),
                0.3)
            ok_direct = any(len(x) == 3 and json.loads(x[2])["seq"] == seq
                            for x in direct_seen)
            ok_proxy = proxy.wait(lambda: any(
                len(x) == 3 and json.loads(x[2])["seq"] == seq
                for x in proxy.received), 0.3)
            if ok_direct and ok_proxy:
                break
            self.assertLess(time.monotonic(), end, "the stream never came")
        warm_seq = seq

        # watchers through the proxy, each started once it is subscribed
        specs = [
            ("rennes", ["--pays", "Pays de Rennes", "--json", "--count", "4"]),
            ("funded", ["--state", "study_funded", "--json", "--count", "1"]),
            ("notes", ["--event", "note", "--json", "--count", "2"]),
            ("all", ["--json", "--count", "7"]),
            ("brest_text", ["--pays", "Brest", "--count", "3"]),
            ("rennes_note", ["--pays", "rennes", "--event", "note", "--json",
                             "--count", "1"]),
        ]
        watchers = {}
        for name, args in specs:
            n = len(proxy.subscriptions)
            watchers[name] = self.watch(*args, endpoint=proxy.endpoint)
            if not proxy.wait(lambda: len(proxy.subscriptions) > n, 10):
                proc = watchers[name]
                if proc.poll() is None:
                    proc.kill()
                self.fail("watch %s never subscribed; exit %s, output %r"
                          % (name, proc.wait(), proc.communicate()))

        d1 = self.open("Rennes", "Reso")
        d2 = self.open("Brest", "ADESS")
        self.send(d1, "request_study", "amount=20000")
        self.send(d2, "note", "text=n2")
        self.send(d1, "grant_study", "amount=20000", actor="region",
                  expect="study_funded")
        rc, out, err = self.ctl("send", d2, "grant_study", "amount=1000",
                                actor="region", check=False)
        self.assertEqual(rc, 1, "refused: %r" % err)
        self.send(d1, "note", "text=n1")
        self.send(d2, "request_study", "amount=10000")
        events = self.events_of(d1, d2)
        self.assertEqual(len(events), 7)
        commit = [e["seq"] for e, s in events]

        # the direct subscriber: frames, topic, commit order, no refusal
        msgs = recv_all(direct, lambda m: len(
            [x for x in m if len(x) == 3 and
             json.loads(x[2])["seq"] > warm_seq]) >= 7, 10)
        msgs = [x for x in msgs
                if not (len(x) == 3 and json.loads(x[2])["seq"] <= warm_seq)]
        self.assertEqual(len(msgs), 7, msgs)
        for x, (entry, dossier) in zip(msgs, events):
            self.assertEqual(len(x), 3, x)
            self.assertEqual(x[0].decode("utf-8"), "%s/%s/%s" % (
                dossier["pays"], entry["to"], entry["event"]))
            self.assertEqual(x[1], SIGNATURE)
            n = json.loads(x[2].decode("utf-8"))
            self.assertEqual(set(n), NOTIFICATION_KEYS - {"id", "coordinator"},
                             n)
            n.update(id="%d-0" % entry["seq"], coordinator="-")
            self.check_notification(n, entry, dossier, 0, "-")

        # the watchers
        def seqs(lines):
            return [json.loads(l)["seq"] for l in lines]
        by_d = {d: [e["seq"] for e, s in events if e["dossier"] == d]
                for d in (d1, d2)}
        out = {name: self.finish(proc) for name, proc in watchers.items()}
        self.assertEqual(seqs(out["all"]), commit)
        self.assertEqual(seqs(out["rennes"]), by_d[d1])
        for line in out["rennes"]:
            self.assertEqual(json.loads(line)["pays"], "Rennes")
        self.assertEqual([json.loads(l)["event"] for l in out["funded"]],
                         ["grant_study"])
        self.assertEqual([(json.loads(l)["event"], json.loads(l)["dossier"])
                          for l in out["notes"]], [("note", d2), ("note", d1)])
        self.assertEqual([(json.loads(l)["event"], json.loads(l)["dossier"])
                          for l in out["rennes_note"]], [("note", d1)])
        all_json = [json.loads(l) for l in out["all"]]
        for j, (entry, dossier) in zip(all_json, events):
            self.assertEqual((j["dossier"], j["event"], j["to"]),
                             (entry["dossier"], entry["event"], entry["to"]))
            self.assertNotIn("id", j)
        self.assertNotIn(("grant_study", d2),
                         [(j["event"], j["dossier"]) for j in all_json])
        # the lines for people: SEQ AT PAYS DOSSIER EVENT FROM -> TO ACTOR
        brest = [(e, s) for e, s in events if e["dossier"] == d2]
        self.assertEqual(len(out["brest_text"]), 3, out["brest_text"])
        for line, (entry, dossier) in zip(out["brest_text"], brest):
            m = WATCH_LINE_RE.match(line)
            self.assertIsNotNone(m, "watch line %r" % line)
            self.assertEqual(int(m.group(1)), entry["seq"])
            self.assertEqual(m.group(2), entry["at"])
            self.assertEqual(m.group(3), "Brest")
            self.assertEqual(int(m.group(4)), d2)
            self.assertEqual(m.group(5), entry["event"])
            self.assertEqual(m.group(7), entry["to"])
            self.assertEqual(m.group(8), entry["actor"])

        # nothing more on the stream before a sentinel: the refused event
        # published nothing, even late
        sentinel = self.send_raw(w, "note", "text=sentinel")
        more = recv_all(direct, lambda m: any(
            len(x) == 3 and json.loads(x[2])["seq"] == sentinel for x in m),
            10)
        self.assertEqual([json.loads(x[2])["seq"] for x in more], [sentinel])

        # straight at poled, endpoint from $POLE_PUB_ENDPOINT, --count ends
        # it: notes are sent until it has seen two
        proc = self.watch("--pays", "Vannes", "--event", "note", "--json",
                          "--count", "2", env={"POLE_PUB_ENDPOINT": pub})
        sent = []
        end = time.monotonic() + 15
        while proc.poll() is None:
            self.assertLess(time.monotonic(), end,
                            "watch --count 2 did not end")
            sent.append(self.send_raw(w, "note", "text=%d" % len(sent)))
            try:
                proc.wait(0.2)
            except subprocess.TimeoutExpired:
                pass
        lines = self.finish(proc)
        self.assertEqual(len(lines), 2, lines)
        got = seqs(lines)
        self.assertIn(got[0], sent)
        self.assertEqual(got[1], sent[sent.index(got[0]) + 1],
                         "consecutive notes, none missed")
        self.assertEqual(p.stop(), 0, p.log())


# ---------------------------------------------------------------------------
# 6. digest

def _digest_hook():
    """How this build lets a test make digests go out quickly:
    ("every_s", documented) for notify.digest_every_s, ("flush", True) for
    `polectl outbox flush`, or None."""
    p = subprocess.run([POLECTL, "outbox", "--help"], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=30)
    text = (p.stdout + p.stderr).decode("utf-8", "replace")
    if "flush" in text:
        return ("flush", True)
    try:
        with open(os.path.join(polehelp.SOURCE_DIR, "docs", "NOTIFY.md"),
                  encoding="utf-8") as f:
            doc = f.read()
    except OSError:
        doc = ""
    if "digest_every_s" in doc:
        return ("every_s", True)
    # not documented: does the configuration accept it?
    try:
        probe = NotifyPoled({"digest_every_s": 5})
    except PoledError:
        return None
    probe.close()
    return ("every_s", False)


class TestDigest(NotifyCase):

    PERIOD = 3

    def test_one_message_for_a_batch(self):
        hook = _digest_hook()
        if hook is None:
            self.skipTest("no way to make a digest go out quickly: "
                          "notify.digest_hour is a UTC hour (0..23) and "
                          "neither notify.digest_every_s nor `polectl outbox "
                          "flush` exists; needs the simulated clock of the "
                          "calendar issue")
        kind, documented = hook
        smtp = self.smtp()
        http = self.http(secrets={"/digest": "dg", "/now": "now"})
        cmd = self.command()
        coordinators = [
            {"name": "Daily hook", "channel": "webhook",
             "address": http.url("/digest"), "secret": "dg",
             "delivery": "digest"},
            {"name": "Daily mail", "channel": "email",
             "address": "daily@pole.test", "delivery": "digest"},
            {"name": "Daily program", "channel": "command",
             "address": cmd.path, "delivery": "digest"},
            {"name": "Now hook", "channel": "webhook",
             "address": http.url("/now"), "secret": "now"},
        ]
        settings = {}
        if kind == "every_s":
            settings["digest_every_s"] = self.PERIOD
            # send the batch at the start of a period (bounded wait)
            self.start_poled(coordinators, smtp=smtp, **settings)
            end = time.monotonic() + self.PERIOD + 2
            while time.time() % self.PERIOD > 0.3:
                self.assertLess(time.monotonic(), end)
                time.sleep(0.02)
        else:
            self.start_poled(coordinators, smtp=smtp)
        t0 = time.time()
        d1 = self.open("Rennes", "Reso")
        d2 = self.open("Brest", "ADESS")
        self.send(d1, "request_study", "amount=20000")
        self.send(d2, "note", "text=hello")
        t1 = time.time()
        if kind == "every_s":
            self.assertEqual(int(t0 // self.PERIOD), int(t1 // self.PERIOD),
                             "the batch was sent within one digest period")
        events = self.events_of(d1, d2)
        self.assertEqual(len(events), 4)

        # the immediate one goes at once; the digests wait
        self.wait(lambda: len(http.posts("/now")) == 4, 10,
                  "immediate notifications")
        if kind == "every_s":
            rows = [r for r in self.outbox() if r["delivery"] == "digest"]
            self.assertEqual(len(rows), 12)
            if time.time() // self.PERIOD == t0 // self.PERIOD:
                # still the same period: they wait
                self.assertEqual({r["state"] for r in rows}, {"pending"})
                self.assertEqual(http.posts("/digest"), [])
        else:
            rc, out, err = self.ctl("outbox", "flush")
        self.wait_all_delivered(16, timeout=self.PERIOD + 10)

        # webhook: one POST, a JSON array of the 4 notifications
        posts = http.posts("/digest")
        self.assertEqual(len(posts), 1, [x["body"][:100] for x in posts])
        self.assertTrue(posts[0]["signature_ok"])
        body = json.loads(posts[0]["body"])
        self.assertIsInstance(body, list)
        self.assertEqual([n["id"] for n in body],
                         ["%d-0" % e["seq"] for e, s in events])
        for n, (entry, dossier) in zip(body, events):
            self.check_notification(n, entry, dossier, 0, "Daily hook")
        # e-mail: one message listing them
        mails = smtp.to("daily@pole.test")
        self.assertEqual(len(mails), 1)
        msg = mails[0]["message"]
        self.assertTrue(str(msg["Subject"]).startswith("[pole]"))
        text = receivers.plain_text(msg)
        for entry, dossier in events:
            self.assertIn(dossier["pays"], text)
            self.assertTrue(entry["event"] in text or entry["to"] in text,
                            "the digest lists %s: %s" % (entry["event"], text))
        # command: one run, POLE_PAYLOAD an array, the digest's own id
        # (digest-FIRST-LAST-COUNT: a receiver dropping duplicates by id
        # never drops a digest holding a row it has not seen)
        runs = cmd.records()
        self.assertEqual(len(runs), 1, runs)
        arr = json.loads(runs[0]["POLE_PAYLOAD"])
        self.assertEqual([n["id"] for n in arr],
                         ["%d-2" % e["seq"] for e, s in events])
        self.assertEqual(runs[0]["POLE_NOTIFICATION_ID"],
                         "digest-%s-%s-%d" % (arr[0]["id"], arr[-1]["id"],
                                              len(arr)))
        self.assertEqual(posts[0]["headers"]["x-pole-notification-id"],
                         "digest-%s-%s-%d" % (body[0]["id"], body[-1]["id"],
                                              len(body)))
        if kind == "every_s":
            # the next period sends nothing more (nothing new)
            nxt = (time.time() // self.PERIOD + 1) * self.PERIOD + 0.5
            self.wait(lambda: time.time() > nxt, self.PERIOD + 2, "a period")
            self.assertEqual(len(http.posts("/digest")), 1)
            self.assertEqual(len(cmd.records()), 1)
        if not documented:
            print("\nnote: notify.digest_every_s works but docs/NOTIFY.md "
                  "does not document it")
        self.assertEqual(self.poled.stop(), 0, self.poled.log())


# ---------------------------------------------------------------------------
# 7. the webhook signature

class TestSignature(NotifyCase):

    def test_hmac_of_the_exact_body(self):
        http = self.http(secrets={"/a": "change-me",
                                  "/b": "clé-secrète ✓",
                                  "/c": "not-the-configured-secret"})
        self.start_poled([
            {"name": "ascii", "channel": "webhook", "address": http.url("/a"),
             "secret": "change-me"},
            {"name": "utf8", "channel": "webhook", "address": http.url("/b"),
             "secret": "clé-secrète ✓"},
            {"name": "mismatch", "channel": "webhook",
             "address": http.url("/c"), "secret": "configured-secret"},
        ])
        d = self.open("Trégor-Goëlo", "Réseau économie « solidaire »",
                      title='Le "pôle" \\ 100 %')
        self.send(d, "note", "text=€ ünïcödé \"quoted\" \\ back\nnewline")
        self.wait_all_delivered(6)
        for path, secret in (("/a", "change-me"), ("/b", "clé-secrète ✓")):
            posts = http.posts(path)
            self.assertEqual(len(posts), 2)
            for x in posts:
                header = x["headers"]["x-pole-signature"]
                self.assertRegex(header, SIG_RE)
                self.assertTrue(x["signature_ok"])
                self.assertTrue(receivers.verify_signature(secret, x["body"],
                                                           header))
                n = json.loads(x["body"].decode("utf-8"))  # exact UTF-8 JSON
                # tampered: one byte changed, or the same JSON re-serialised
                tampered = bytearray(x["body"])
                tampered[len(tampered) // 2] ^= 0x01
                self.assertFalse(receivers.verify_signature(
                    secret, bytes(tampered), header))
                self.assertFalse(receivers.verify_signature(
                    secret, json.dumps(n).encode(), header))
                self.assertFalse(receivers.verify_signature(
                    secret + "x", x["body"], header))
            note = json.loads(posts[1]["body"])
            self.assertEqual(note["fields"]["text"],
                             "€ ünïcödé \"quoted\" \\ back\nnewline")
            self.assertEqual(note["holder"], "Réseau économie « solidaire »")
            self.assertEqual(note["pays"], "Trégor-Goëlo")
        # the receiver's own check does reject a signature made with
        # another secret
        for x in http.posts("/c"):
            self.assertIs(x["signature_ok"], False)
            self.assertTrue(receivers.verify_signature(
                "configured-secret", x["body"],
                x["headers"]["x-pole-signature"]))
        self.assertEqual(self.poled.stop(), 0, self.poled.log())


if __name__ == "__main__":
    unittest.main()


# ---------------------------------------------------------------------------
# 8. the outbox is bounded: old delivered rows are pruned, pending never

class TestPrune(NotifyCase):

    def test_old_delivered_pruned_pending_kept(self):
        cmd = self.command()
        cmd.fail(True)
        self.start_poled([{"name": "Program", "channel": "command",
                           "address": cmd.path}],
                         keep_delivered_days=30, max_attempts=100)
        p = self.poled
        d = self.open("Pontivy", "Pontivy ESS")
        self.send(d, "note", "text=a")
        self.wait_outbox(lambda rows: len(rows) == 2, 10, "two rows")
        self.assertEqual(p.stop(), 0, p.log())
        # Age the rows behind the daemon's back: one delivered long ago,
        # one delivered yesterday, one pending (failing) for a year
        con = sqlite3.connect(p.database)
        try:
            con.execute("INSERT INTO outbox (id, seq, dossier, coordinator,"
                        " channel, address, delivery, state, attempts,"
                        " next_at, created_at, delivered_at, payload)"
                        " SELECT '900-0', 900, dossier, coordinator, channel,"
                        " address, delivery, 'delivered', 0, 0,"
                        " '2000-01-01T00:00:00Z', '2000-01-01T00:00:00Z',"
                        " payload FROM outbox WHERE id = '1-0'")
            con.execute("INSERT INTO outbox (id, seq, dossier, coordinator,"
                        " channel, address, delivery, state, attempts,"
                        " next_at, created_at, delivered_at, payload)"
                        " SELECT '901-0', 901, dossier, coordinator, channel,"
                        " address, delivery, 'delivered', 0, 0,"
                        " created_at, strftime('%Y-%m-%dT%H:%M:%SZ', 'now',"
                        " '-1 day'), payload FROM outbox WHERE id = '1-0'")
            con.execute("UPDATE outbox SET created_at = '2000-01-01T00:00:00Z'"
                        " WHERE state = 'pending'")
            con.commit()
        finally:
            con.close()
        p.start()
        # the worker prunes when it starts
        self.wait_outbox(lambda rows: "900-0" not in [r["id"] for r in rows],
                         10, "the old delivered row pruned")
        ids = {r["id"]: r["state"] for r in self.outbox()}
        self.assertEqual(ids.get("901-0"), "delivered", ids)
        self.assertEqual(ids.get("1-0"), "pending", ids)
        self.assertEqual(ids.get("2-0"), "pending", ids)
        self.assertEqual(p.stop(), 0, p.log())
