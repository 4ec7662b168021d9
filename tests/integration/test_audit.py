"""The tamper-evident event log and the online backup (issue 5).

* Rows of the event log edited, deleted or inserted behind the daemon's
  back (with SQL, on the database file poled is serving) are each found by
  `polectl verify`, which names the first row concerned; poled also checks
  the chain at start, in the background, and logs what it found.
* `polectl backup FILE` taken while several clients keep sending events
  gives a file that passes integrity_check, holds every event acknowledged
  before the backup was asked for, and restores: a poled started on it
  serves the same dossiers and its chain verifies.
"""

import json
import os
import sqlite3
import threading
import time
import unittest

import zmq

from polehelp import (CTX, SIGNATURE, Poled, PoledError, new_request_id,
                      ok_event_reply)


def fill(poled, dossiers=4, notes=3):
    """A few dossiers with a few events each; returns their ids."""
    pays = ["Brest", "Morlaix", "Dinan", "Rennes", "Vannes", "Auray"]
    ids = []
    for k in range(dossiers):
        rc, out, err = poled.ctl("open", "--pays", pays[k], "--holder",
                                 "H%d" % k, "--holder-type", "ess_actor")
        d = int(out.strip())
        ids.append(d)
        poled.ctl("send", d, "request_study", "amount=20000")
        for n in range(notes):
            poled.ctl("send", d, "note", "text=note %d" % n)
    return ids


def tamper(database, *statements):
    """Change the log with SQL, as someone with the file would: the
    append-only triggers are dropped first."""
    con = sqlite3.connect(database, timeout=10)
    try:
        con.execute("DROP TRIGGER IF EXISTS events_no_update")
        con.execute("DROP TRIGGER IF EXISTS events_no_delete")
        for sql, args in statements:
            con.execute(sql, args)
        con.commit()
    finally:
        con.close()


class VerifyTest(unittest.TestCase):

    def setUp(self):
        self.poled = Poled()
        self.ids = fill(self.poled)

    def tearDown(self):
        rc = self.poled.stop()
        log = self.poled.log()
        self.poled.close()
        self.assertEqual(rc, 0, log)

    def verify(self):
        rc, out, err = self.poled.ctl("verify", "--json", check=False)
        return rc, json.loads(out), err

    def seq_of(self, dossier, index):
        return self.poled.history(dossier)[index]["seq"]

    def test_intact(self):
        rc, result, err = self.verify()
        self.assertEqual(rc, 0, err)
        self.assertTrue(result["ok"])
        self.assertEqual(result["problem"], "ok")
        self.assertEqual(result["events"], 4 * 5)
        self.assertEqual(result["head_seq"], 20)
        self.assertRegex(result["head_hash"], r"^[0-9a-f]{64}$")
        rc, out, err = self.poled.ctl("verify")
        self.assertIn("intact", out)
        # the status shows the same head
        status = json.loads(self.poled.ctl("status", "--json")[1])
        self.assertEqual(status["chain_head"]["seq"], 20)
        self.assertEqual(status["chain_head"]["hash"], result["head_hash"])

    def test_edited_row(self):
        seq = self.seq_of(self.ids[1], 1)          # the request_study
        tamper(self.poled.database,
               ("UPDATE events SET fields = json_set (fields, '$.amount',"
                " '25000') WHERE seq = ?", (seq,)))
        rc, result, err = self.verify()
        self.assertEqual(rc, 1, err)
        self.assertFalse(result["ok"])
        self.assertEqual(result["problem"], "altered")
        self.assertEqual(result["seq"], seq)
        self.assertIn(str(seq), result["message"])
        rc, out, err = self.poled.ctl("verify", check=False)
        self.assertEqual(rc, 1)
        self.assertIn("altered", err)
        # found again at start, in the background, and logged
        self.poled.restart()
        self.wait_log("THE EVENT LOG WAS CHANGED")

    def test_edited_actor(self):
        seq = self.seq_of(self.ids[0], 0)
        tamper(self.poled.database,
               ("UPDATE events SET actor = 'someone else' WHERE seq = ?",
                (seq,)))
        rc, result, err = self.verify()
        self.assertEqual((rc, result["problem"], result["seq"]),
                         (1, "altered", seq), result)

    def test_deleted_row(self):
        seq = self.seq_of(self.ids[2], 2)
        tamper(self.poled.database,
               ("DELETE FROM events WHERE seq = ?", (seq,)))
        rc, result, err = self.verify()
        self.assertEqual(rc, 1, err)
        self.assertEqual(result["problem"], "deleted")
        self.assertIn(result["seq"], (seq, seq + 1))
        self.assertIn(str(seq), result["message"])

    def test_deleted_last_row(self):
        tamper(self.poled.database,
               ("DELETE FROM events WHERE seq = (SELECT max (seq) FROM "
                "events)", ()))
        rc, result, err = self.verify()
        self.assertEqual(rc, 1, err)
        self.assertEqual(result["problem"], "truncated")

    def test_inserted_row(self):
        con = sqlite3.connect(self.poled.database)
        row = con.execute("SELECT * FROM events WHERE seq = 3").fetchone()
        cols = [c[1] for c in con.execute("PRAGMA table_info (events)")]
        con.close()
        values = dict(zip(cols, row))
        values["seq"] = 21
        values["request_id"] = "forged-1"
        tamper(self.poled.database,
               ("INSERT INTO events (%s) VALUES (%s)"
                % (", ".join(cols), ", ".join("?" * len(cols))),
                tuple(values[c] for c in cols)))
        rc, result, err = self.verify()
        self.assertEqual(rc, 1, err)
        self.assertEqual(result["problem"], "inserted")
        self.assertEqual(result["seq"], 21)

    def test_forbidden_to_nobody_in_trusted_mode_but_logged(self):
        # without authentication the command is served; the log says who
        self.poled.ctl("verify")
        self.assertIn("asked for a verification", self.poled.log())

    def wait_log(self, text, deadline=10.0):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if text in self.poled.log():
                return
            time.sleep(0.05)
        self.fail("%r not in the log:\n%s" % (text, self.poled.log()))


class DamagedDatabaseTest(unittest.TestCase):

    def test_refuses_a_damaged_database(self):
        poled = Poled()
        try:
            fill(poled, dossiers=6, notes=6)
            self.assertEqual(poled.stop(), 0)
            # overwrite pages in the middle of the file, as a failing disk
            # would: the header stays, the b-trees do not
            size = os.path.getsize(poled.database)
            with open(poled.database, "r+b") as f:
                f.seek(size // 2)
                f.write(b"\xde\xad" * 8192)
            with self.assertRaises(PoledError):
                poled.start(deadline=10)
            self.assertNotEqual(poled.proc.returncode, 0)
            self.assertRegex(poled.log(), r"the database is (damaged|not "
                             r"usable)")
        finally:
            poled.close()


class BackupTest(unittest.TestCase):

    def test_backup_under_load_restores(self):
        poled = Poled()
        try:
            ids = fill(poled, dossiers=3, notes=1)
            acked = []
            lock = threading.Lock()
            stop = threading.Event()
            errors = []

            def client(k):
                sock = CTX.socket(zmq.DEALER)
                sock.setsockopt(zmq.LINGER, 0)
                sock.connect(poled.endpoint)
                try:
                    n = 0
                    while not stop.is_set():
                        rid = new_request_id("load%d" % k)
                        sock.send_multipart([b"", SIGNATURE, b"EVENT",
                                             rid.encode(), b"loader",
                                             str(ids[k]).encode(), b"",
                                             b"note", b"text=n%d" % n])
                        if not sock.poll(10000):
                            errors.append("no reply to %s" % rid)
                            return
                        reply = sock.recv_multipart()
                        ok_event_reply(reply[1:], rid)
                        with lock:
                            acked.append(rid)
                        n += 1
                except Exception as e:      # reported by the main thread
                    errors.append(repr(e))
                finally:
                    sock.close()

            threads = [threading.Thread(target=client, args=(k,))
                       for k in range(3)]
            for t in threads:
                t.start()
            while len(acked) < 60 and not errors:
                time.sleep(0.01)
            with lock:
                before = set(acked)
            target = os.path.join(poled.dir, "backup.db")
            rc, out, err = poled.ctl("backup", "--json", target, timeout=60)
            result = json.loads(out)
            # the clients kept being served during and after the backup
            count = len(acked)
            while len(acked) < count + 30 and not errors:
                time.sleep(0.01)
            stop.set()
            for t in threads:
                t.join(30)
            self.assertEqual(errors, [])
            self.assertEqual(result["path"], target)
            self.assertFalse(os.path.exists(target + ".tmp"))

            con = sqlite3.connect(target)
            self.assertEqual(con.execute("PRAGMA integrity_check").fetchall(),
                             [("ok",)])
            in_copy = {r[0] for r in con.execute(
                "SELECT request_id FROM events WHERE request_id IS NOT NULL")}
            events = con.execute("SELECT count (*) FROM events").fetchone()[0]
            con.close()
            self.assertEqual(before - in_copy, set(),
                             "acknowledged before the backup, missing")
            self.assertEqual(result["events"], events)
            self.assertGreater(len(acked), len(before))

            # a backup that exists is refused; a relative path is made
            # absolute by polectl
            rc, out, err = poled.ctl("backup", target, check=False)
            self.assertEqual(rc, 1, err)
            self.assertIn("exists", err)

            # restore: a poled on the copy serves it, its chain verifies
            restored = Poled(start=False)
            try:
                os.replace(target, restored.database)
                restored.start()
                rc, out, err = restored.ctl("verify")
                self.assertIn("intact", out)
                self.assertEqual(json.loads(restored.ctl(
                    "status", "--json")[1])["events"], events)
                for d in ids:
                    self.assertEqual(restored.show(d)["pays"],
                                     poled.show(d)["pays"])
                self.assertEqual(restored.stop(), 0)
            finally:
                restored.close()
            self.assertEqual(poled.stop(), 0, poled.log())
        finally:
            poled.close()


if __name__ == "__main__":
    unittest.main()
