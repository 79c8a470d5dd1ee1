#!/usr/bin/env python3
"""F5 spool and forward with the real programs: jitgate-rec under a stock
sshd's ForceCommand records into a local spool while jitgated is down, and
`jitgate-rec --forward-spool` delivers the session once the broker is back:
complete, once, and the store verifies. `kill -9` of jitgate-rec mid-session
loses nothing it had spooled; a broker that comes back mid-session gets the
rest live; a spool over its size limit refuses new sessions (fail closed)
unless allowed.

Usage: test_spool_forward.py --jitgated PATH --jitgate PATH --rec PATH [unittest args]
"""
import glob
import json
import os
import pwd
import shutil
import signal
import struct
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Broker, Sshd, SshUser, read, run  # noqa: E402



def spooled_bytes(path):
    """The transcript bytes of a spool file's chunks (records' headers
    included; compressed chunks decompressed with zstd), for checking what
    reached the spool without trusting the code under test."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"JGSPOOL1", data[:8]
    off, out = 8, b""
    while off + 9 <= len(data):
        length, ftype = struct.unpack(">IB", data[off + 4:off + 9])
        payload = data[off + 9:off + 9 + length]
        if len(payload) < length:
            break  # a torn tail
        off += 9 + length
        if ftype != 2:
            continue
        n = payload[4]
        body = payload[5 + n + 16:]
        if payload[:4] == b"JGTZ":
            body = subprocess.run(["zstd", "-d", "-c", "-q"], input=body[4:],
                                  capture_output=True, check=True).stdout
        out += body
    return out


class SpoolForwardTest(harness.IntegrationTest):
    needs = ("jitgated", "jitgate", "rec")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        harness.add_users("alice")
        cls.cdir = tempfile.mkdtemp(prefix="spool.", dir=harness.ROOT)
        os.chmod(cls.cdir, 0o755)
        cls.socket = os.path.join(cls.cdir, "jitgated.sock")
        # As deployed: root-owned, writable by the recorder's group only
        # (here alice's own group, since her jitgate-rec is not setgid).
        cls.spool = os.path.join(cls.cdir, "spool")
        os.mkdir(cls.spool)
        os.chown(cls.spool, 0, pwd.getpwnam("alice").pw_gid)
        os.chmod(cls.spool, 0o2770)
        cls.alice = SshUser("alice", cls.cdir)
        cls.sshd = Sshd(os.path.join(cls.cdir, "sshd"), "sshd-spool", harness.PAM_PERMIT,
                        extra_config="ForceCommand %s --socket %s --host db1 --spool %s\n" %
                        (harness.BIN["rec"], cls.socket, cls.spool))
        cls.sshd.start()

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "sshd"):
            cls.sshd.stop()

    def setUp(self):
        super().setUp()
        for f in os.listdir(self.spool):
            os.unlink(os.path.join(self.spool, f))
        self.broker = Broker(os.path.join(self.dir, "broker"), {"oncall": ["root"]},
                             [{"name": "nothing", "match": {"service": ["none"]},
                               "approve": "deny"}],
                             socket_path=self.socket)
        text = read(self.broker.config).replace("submitters: [root]", "submitters: [root, alice]")
        harness.write(self.broker.config, text)
        self.add_diag("jitgated log", lambda: read(self.broker.log_path))
        self.add_diag("sshd log", lambda: read(self.sshd.log_path)[-3000:])
        self.add_diag("spool", lambda: "\n".join(os.listdir(self.spool)))

    def tearDown(self):
        self.broker.stop()
        super().tearDown()
        try:
            os.unlink(self.socket)
        except FileNotFoundError:
            pass

    def cli(self, *args):
        return run([harness.BIN["jitgate"]] + list(args) + ["--store", self.broker.store_dir])

    def sessions(self):
        return json.loads(self.cli("sessions", "--json").stdout)["sessions"]

    def forward(self):
        return run([harness.BIN["rec"], "--forward-spool", "--spool", self.spool,
                    "--socket", self.socket], check=False)

    def spool_files(self):
        return sorted(glob.glob(os.path.join(self.spool, "*.spool")))

    def login(self, pexpect):
        argv = ["-tt", "-p", str(self.sshd.port), "-i", self.alice.key,
                "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                "-o", "LogLevel=ERROR", "-F", "/dev/null", "alice@127.0.0.1"]
        return pexpect.spawn(harness.SSH, argv, encoding="utf-8", timeout=20,
                             dimensions=(30, 100))

    def assert_verifies(self):
        self.broker.stop()
        v = self.broker.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def test_broker_down_for_the_whole_session_then_forwarded(self):
        pexpect = self.need_pexpect()
        child = self.login(pexpect)  # no broker at all
        child.expect_exact("recording to the local spool")
        child.expect(r"\$ ")
        child.sendline("echo spooled-$((6*7)); exit 5")
        child.expect_exact("spooled-42")
        child.expect_exact("kept in the spool until the broker is back")
        child.expect(pexpect.EOF)
        child.close()
        self.assertEqual(child.exitstatus, 5, child.before)
        [path] = self.spool_files()
        st = os.stat(path)
        self.assertEqual(st.st_mode & 0o777, 0o640)
        self.assertEqual(st.st_gid, pwd.getpwnam("alice").pw_gid)
        self.assertIn(b"spooled-42", spooled_bytes(path))
        saved = os.path.join(self.dir, "saved.spool")
        shutil.copy(path, saved)
        sid = os.path.basename(path)[:-len(".spool")]

        # Still no broker: nothing is lost, the file stays.
        p = self.forward()
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("could not forward", p.stderr)
        self.assertEqual(self.spool_files(), [path])

        self.broker.start()
        p = self.forward()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"^jitgate-rec: delivered session %s \((\d+) chunks, \1 sent\)\n$"
                         % sid)
        self.assertEqual(self.spool_files(), [])
        # Once: forwarding again finds nothing; a copy of the file (a
        # forwarder killed before removing it) is recognised as delivered.
        p = self.forward()
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""))
        shutil.copy(saved, path)
        p = self.forward()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("session %s had been delivered" % sid, p.stdout)
        self.assertEqual(self.spool_files(), [])

        [s] = self.sessions()
        self.assertEqual(s["id"], sid)
        self.assertEqual((s["user"], s["host"], s["recorder"]), ("alice", "db1", "jitgate-rec"))
        self.assertTrue(s["ended"])
        self.assertEqual(s["exit_status"], 5)
        self.assertEqual(s["end_reason"], "closed")
        raw = self.cli("replay", sid, "--raw", "--no-safe").stdout
        self.assertEqual(raw.count("spooled-42"), 1, raw)
        cast = os.path.join(self.dir, "s.cast")
        self.cli("export", sid, "--format", "asciicast", "--out", cast)
        events = [json.loads(line) for line in read(cast).splitlines()[1:]]
        typed = "".join(e[2] for e in events if e[1] == "i")
        self.assertEqual(typed.count("echo spooled-$((6*7)); exit 5"), 1, typed)
        starts = [d for e in self.broker_entries() for d in harness._walk_json(e)
                  if d.get("type") == "session_start" and d.get("session") == sid]
        self.assertEqual(len(starts), 1, starts)
        self.assert_verifies()

    def broker_entries(self):
        return self.broker.entries()

    def rec_pid(self):
        """The pid of alice's jitgate-rec."""
        return harness.pids_of(harness.BIN["rec"], "alice")

    def test_kill_9_mid_session_loses_nothing_spooled(self):
        pexpect = self.need_pexpect()
        child = self.login(pexpect)
        child.expect_exact("recording to the local spool")
        child.expect(r"\$ ")
        child.sendline("echo before-kill-$((6*7))")
        child.expect_exact("before-kill-42")
        [path] = self.spool_files()
        harness.wait_for(lambda: b"before-kill-42" in spooled_bytes(path), 10,
                         "the output in the spool")
        [pid] = self.rec_pid()
        os.kill(pid, signal.SIGKILL)
        child.expect(pexpect.EOF)
        child.close()
        sid = os.path.basename(path)[:-len(".spool")]

        self.broker.start()
        p = self.forward()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("delivered session %s" % sid, p.stdout)
        self.assertIn("recorder lost", p.stdout)
        self.assertEqual(self.spool_files(), [])
        [s] = self.sessions()
        self.assertEqual(s["id"], sid)
        self.assertTrue(s["ended"])
        self.assertEqual(s["end_reason"], "recorder lost")
        raw = self.cli("replay", sid, "--raw", "--no-safe").stdout
        self.assertEqual(raw.count("before-kill-42"), 1, raw)
        self.assert_verifies()

    def test_broker_back_mid_session_gets_the_rest_live(self):
        pexpect = self.need_pexpect()
        self.broker.start()
        child = self.login(pexpect)
        child.expect(r"\$ ")
        child.sendline("echo one-$((1+1))")
        child.expect_exact("one-2")
        self.broker.stop()  # the session goes on, spooled
        child.sendline("echo two-$((1+2))")
        child.expect_exact("two-3")
        self.broker.start()
        child.sendline("echo three-$((1+3)); exit 7")
        child.expect_exact("three-4")
        child.expect(pexpect.EOF)
        child.close()
        self.assertEqual(child.exitstatus, 7, child.before)
        self.assertNotIn("kept in the spool", child.before)
        self.assertEqual(self.spool_files(), [])  # delivered by jitgate-rec itself
        [s] = self.sessions()
        self.assertTrue(s["ended"])
        self.assertEqual(s["exit_status"], 7)
        raw = self.cli("replay", s["id"], "--raw", "--no-safe").stdout
        for word in ("one-2", "two-3", "three-4"):
            self.assertEqual(raw.count(word), 1, raw)
        self.assert_verifies()

    def rec_as_alice(self, *args):
        marker = os.path.join(self.dir, "ran")
        os.chmod(self.dir, 0o777)
        argv = harness.as_user("alice", [harness.BIN["rec"], "--socket", self.socket,
                                         "--spool", self.spool] + list(args) +
                               ["-c", "touch %s" % marker])
        p = run(argv, check=False, cwd="/", env=harness.user_env("alice"))
        return p, os.path.exists(marker)

    def test_a_full_spool_refuses_new_sessions_unless_allowed(self):
        leftover = os.path.join(self.spool, "leftover.spool")
        harness.write(leftover, "x" * 5000)
        p, ran = self.rec_as_alice("--spool-max-size", "4K")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(p.stderr, "jitgate-rec: session not recorded: the spool %s holds 5000 "
                         "bytes, over its limit of 4096; refusing to start it\n" % self.spool)
        self.assertFalse(ran, "the command ran without a recording")
        p, ran = self.rec_as_alice("--spool-max-size", "4K", "--spool-full", "allow")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(ran)
        os.unlink(leftover)
        self.broker.start()
        p = self.forward()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        [s] = self.sessions()
        self.assertEqual(s["command"], "touch %s" % os.path.join(self.dir, "ran"))
        self.assertEqual(s["exit_status"], 0)
        # A spool directory that does not exist is refused, not ignored.
        p = run(harness.as_user("alice", [harness.BIN["rec"], "--socket", self.socket, "--spool",
                                          os.path.join(self.dir, "nope"), "-c", "true"]),
                check=False, cwd="/", env=harness.user_env("alice"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("spool directory", p.stderr)


if __name__ == "__main__":
    harness.main(__file__)
