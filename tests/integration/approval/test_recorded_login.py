#!/usr/bin/env python3
"""F5 end to end: a real ssh login recorded by jitgate-rec into jitgated's store.

A stock sshd on 127.0.0.1 runs `ForceCommand jitgate-rec`; alice logs in with
the real ssh client (through a pty driven by pexpect, and without one); the
recording reaches the signed store through the real jitgated and is read back
with the real `jitgate sessions`, `replay` and `export`; root ends a live
login with `jitgate terminate`, which alice may not. alice is one of the
broker's submitters here, so that her unprivileged jitgate-rec may record;
deployments install jitgate-rec setgid to `broker.recorder_group` instead
(test_setgid_install_records_an_ordinary_user, and broker_server_test's
RecorderGroupRecordsOnlyItsOwnUser).

Usage: test_recorded_login.py --jitgated PATH --jitgate PATH --rec PATH [unittest args]
"""
import json
import os
import signal
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Broker, Sshd, SshUser, read, run  # noqa: E402



class RecordedLoginTest(harness.IntegrationTest):
    needs = ("jitgated", "jitgate", "rec")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        harness.add_users("alice")
        cls.cdir = tempfile.mkdtemp(prefix="rec.", dir=harness.ROOT)
        os.chmod(cls.cdir, 0o755)
        cls.socket = os.path.join(cls.cdir, "jitgated.sock")
        cls.alice = SshUser("alice", cls.cdir)
        cls.sshd = Sshd(os.path.join(cls.cdir, "sshd"), "sshd-rec", harness.PAM_PERMIT,
                        extra_config="Subsystem sftp internal-sftp\n"
                        "ForceCommand %s --socket %s --host db1\n" %
                        (harness.BIN["rec"], cls.socket))
        cls.sshd.start()

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "sshd"):
            cls.sshd.stop()

    def setUp(self):
        super().setUp()
        self.broker = Broker(os.path.join(self.dir, "broker"), {"oncall": ["root"]},
                             [{"name": "nothing", "match": {"service": ["none"]},
                               "approve": "deny"}],
                             socket_path=self.socket)
        # alice's own jitgate-rec records (see the module comment).
        text = read(self.broker.config).replace("submitters: [root]", "submitters: [root, alice]")
        harness.write(self.broker.config, text)
        self.add_diag("jitgated log", lambda: read(self.broker.log_path))
        self.add_diag("sshd log", lambda: read(self.sshd.log_path)[-3000:])

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

    def interactive_login(self, pexpect):
        """alice's `ssh -tt` login in a 100x30 pexpect terminal."""
        argv = ["-tt", "-p", str(self.sshd.port), "-i", self.alice.key,
                "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                "-o", "LogLevel=ERROR", "-F", "/dev/null", "alice@127.0.0.1"]
        return pexpect.spawn(harness.SSH, argv, encoding="utf-8", timeout=20,
                             dimensions=(30, 100))

    def live_login(self, pexpect, marker):
        """An interactive login that has printed MARKER-42, and its session
        id once the store lists it live."""
        child = self.interactive_login(pexpect)
        child.expect(r"\$ ")
        child.sendline("echo %s-$((6*7))" % marker)
        child.expect_exact("%s-42" % marker)
        live = harness.wait_for(
            lambda: next((x for x in self.sessions() if not x["ended"]), None), 15,
            "the live session in the store")
        return child, live["id"]

    def test_interactive_login_is_recorded_and_replays(self):
        pexpect = self.need_pexpect()
        self.broker.start()
        child = self.interactive_login(pexpect)
        # Type only once the shell is there (input typed earlier may be
        # discarded when the shell sets up its line editor).
        child.expect(r"\$ ")
        child.sendline("echo hello-$((6*7)); exit 5")
        child.expect_exact("hello-42")
        child.expect(pexpect.EOF)
        child.close()
        self.assertEqual(child.exitstatus, 5, child.before)

        [s] = self.sessions()
        self.assertEqual(s["user"], "alice")
        self.assertEqual(s["login"], "alice")
        self.assertEqual(s["host"], "db1")
        self.assertEqual(s["recorder"], "jitgate-rec")
        self.assertEqual(s["remote_addr"], "127.0.0.1")
        self.assertTrue(s["ended"])
        self.assertEqual(s["exit_status"], 5)
        self.assertEqual((s["cols"], s["rows"]), (100, 30))
        # What alice saw is in the recording, byte for byte, and what she typed.
        raw = self.cli("replay", s["id"], "--raw", "--no-safe").stdout
        self.assertIn("hello-42", raw)
        cast = os.path.join(self.dir, "s.cast")
        self.cli("export", s["id"], "--format", "asciicast", "--out", cast)
        events = [json.loads(line) for line in read(cast).splitlines()[1:]]
        typed = "".join(e[2] for e in events if e[1] == "i")
        self.assertIn("echo hello-$((6*7)); exit 5", typed)
        self.assertTrue(any(e[1] == "o" and "hello-42" in e[2] for e in events))
        times = [e[0] for e in events]
        self.assertEqual(times, sorted(times))
        # `jitgate search` finds the typed command (a byte per keystroke) in
        # the input and its result in the output, with their offsets.
        found = json.loads(self.cli("search", "$((6*7))", "--json").stdout)
        self.assertEqual([(m["session"], m["stream"]) for m in found["matches"]],
                         [(s["id"], "input"), (s["id"], "output")])  # typed, echoed
        self.assertIn("echo hello-", found["matches"][0]["before"])
        out = json.loads(self.cli("search", "HELLO-42", "-i", "--json").stdout)
        self.assertEqual([m["stream"] for m in out["matches"]], ["output"])
        self.assertGreater(out["matches"][0]["offset_ns"], found["matches"][0]["offset_ns"])
        # The store with the recording verifies.
        self.broker.stop()
        v = self.broker.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # An evidence bundle of the login verifies offline with the log key
        # alone; one changed byte in it does not.
        bundle = os.path.join(self.dir, "login.bundle")
        self.cli("export", s["id"], "--bundle", bundle)
        ok = run([harness.BIN["jitgate"], "verify", "--bundle", bundle, "--key", self.broker.pub,
                  "--json"], check=False)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        self.assertEqual(json.loads(ok.stdout)["session"], s["id"])
        data = bytearray(read_bytes(bundle))
        data[len(data) // 2] ^= 0x01
        bad = os.path.join(self.dir, "changed.bundle")
        with open(bad, "wb") as f:
            f.write(data)
        changed = run([harness.BIN["jitgate"], "verify", "--bundle", bad, "--key",
                       self.broker.pub], check=False)
        self.assertEqual(changed.returncode, 1, changed.stdout + changed.stderr)

    def test_root_terminates_a_live_login(self):
        # PRODUCT.md F3: an approver (here root; the session runs under no
        # request) ends a live session with `jitgate terminate`.
        pexpect = self.need_pexpect()
        self.broker.start()
        child, sid = self.live_login(pexpect, "started")

        # alice is the session's user, not an approver: refused, one line,
        # and her session goes on.
        p = self.broker.cli("alice", "terminate", sid, "--comment", "mine")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(p.stderr, "jitgate: you may not terminate session %s: only root and "
                         "the approvers of the request it runs under may\n" % sid)
        child.sendline("echo still-$((2*3))")
        child.expect_exact("still-6")

        p = self.broker.cli("root", "terminate", sid[:6], "--comment", "done", check=True)
        self.assertEqual(p.stdout, "session %s terminated\n" % sid)
        child.expect_exact("jitgate: session terminated by root: done")
        child.expect(pexpect.EOF)
        child.close()
        self.assertNotEqual(child.exitstatus, 0)  # hung up (129), not a clean exit

        ended = harness.wait_for(
            lambda: next((x for x in self.sessions() if x["id"] == sid and x["ended"]), None),
            15, "session_end of the terminated session")
        self.assertEqual(ended["end_reason"], "terminated")
        # What alice was told is part of the recording.
        raw = self.cli("replay", sid, "--raw", "--no-safe").stdout
        self.assertIn("jitgate: session terminated by root: done", raw)
        p = self.broker.cli("root", "terminate", sid, check=True)
        self.assertEqual(p.stdout, "session %s had already ended\n" % sid)
        p = self.broker.cli("root", "terminate", "zzzzzzzz")
        self.assertEqual((p.returncode, p.stderr), (1, "jitgate: no live session zzzzzzzz\n"))

        self.broker.stop()
        events = [d for e in self.broker.entries() for d in harness._walk_json(e)
                  if d.get("type") == "session_terminated"]
        self.assertEqual(len(events), 1, events)
        self.assertEqual((events[0]["session"], events[0]["actor"], events[0]["comment"]),
                         (sid, "root", "done"))
        v = self.broker.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def rec_pid(self):
        """The pid of alice's jitgate-rec."""
        return harness.pids_of(harness.BIN["rec"], "alice")

    def test_killed_recorder_without_a_spool_is_ended_as_recorder_lost(self):
        # No spool could deliver the rest: once the grace has passed without
        # a resume, the broker ends the session as the forwarder ends a
        # killed recorder's spool, and it is no longer listed live.
        pexpect = self.need_pexpect()
        text = read(self.broker.config).replace(
            "  submitters: [root, alice]", "  submitters: [root, alice]\n  recorder_resume_grace: 1s")
        harness.write(self.broker.config, text)
        self.broker.start()
        child, sid = self.live_login(pexpect, "before-kill")
        harness.wait_for(
            lambda: "before-kill-42" in self.cli("replay", sid, "--raw", "--no-safe").stdout,
            15, "the output in the store")
        [pid] = self.rec_pid()
        os.kill(pid, signal.SIGKILL)
        child.expect(pexpect.EOF)
        child.close()

        ended = harness.wait_for(
            lambda: next((x for x in self.sessions() if x["id"] == sid and x["ended"]), None),
            15, "session_end of the lost session")
        self.assertEqual(ended["end_reason"], "recorder lost")
        self.assertIn("session %s of alice ended: recorder lost" % sid, read(self.broker.log_path))
        raw = self.cli("replay", sid, "--raw", "--no-safe").stdout
        self.assertEqual(raw.count("before-kill-42"), 1, raw)
        cast = os.path.join(self.dir, "lost.cast")
        self.cli("export", sid, "--format", "asciicast", "--out", cast)  # no longer live
        self.broker.stop()
        v = self.broker.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def test_command_without_a_pty_passes_output_and_exit_status(self):
        self.broker.start()
        p = run(self.alice.ssh_argv(self.sshd, "printf abc; printf err >&2; exit 3",
                                    log_level="ERROR"), check=False)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertEqual(p.stdout, "abc")
        self.assertIn("err", p.stderr)
        [s] = self.sessions()
        self.assertEqual(s["command"], "printf abc; printf err >&2; exit 3")
        self.assertEqual(s["exit_status"], 3)
        raw = self.cli("replay", s["id"], "--raw", "--no-safe").stdout
        self.assertIn("abc", raw)

    def test_scp_through_a_recorded_login_arrives_intact(self):
        import hashlib
        self.broker.start()
        src = os.path.join(self.dir, "blob")
        with open(src, "wb") as f:
            f.write(os.urandom(16 << 20))
        dst = "/home/alice/blob"
        # Legacy scp protocol (-O): `scp -t` runs as a forced command.
        p = run(["scp", "-O", "-q", "-P", str(self.sshd.port), "-i", self.alice.key,
                 "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                 "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-F", "/dev/null",
                 src, "alice@127.0.0.1:" + dst], check=False, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(src, "rb") as a, open(dst, "rb") as b:
            self.assertEqual(hashlib.sha256(a.read()).hexdigest(),
                             hashlib.sha256(b.read()).hexdigest())
        [s] = self.sessions()
        self.assertTrue(s["command"].startswith("scp -t"), s["command"])
        self.assertEqual(s["exit_status"], 0)
        self.assertGreaterEqual(s["bytes_in"], 16 << 20)  # the file went through the recorder

    def test_sftp_through_a_recorded_login_works_and_is_recorded(self):
        import hashlib
        self.broker.start()
        src = os.path.join(self.dir, "sftp-src")
        back = os.path.join(self.dir, "sftp-back")
        with open(src, "wb") as f:
            f.write(os.urandom(4 << 20))
        batch = os.path.join(self.dir, "sftp-batch")
        harness.write(batch, "put %s /home/alice/sftp-copy\nget /home/alice/sftp-copy %s\n"
                      % (src, back))
        # The subsystem request reaches jitgate-rec as SSH_ORIGINAL_COMMAND
        # "internal-sftp", which it runs as the sftp-server program.
        p = run(["sftp", "-q", "-b", batch, "-P", str(self.sshd.port), "-i", self.alice.key,
                 "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                 "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-F", "/dev/null",
                 "alice@127.0.0.1"], check=False, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(src, "rb") as a, open(back, "rb") as b:
            self.assertEqual(hashlib.sha256(a.read()).hexdigest(),
                             hashlib.sha256(b.read()).hexdigest())
        [s] = self.sessions()
        self.assertTrue(s["command"].endswith("sftp-server"), s["command"])
        self.assertEqual(s["exit_status"], 0)
        # Both directions went through the recorder.
        self.assertGreaterEqual(s["bytes_in"], 4 << 20)
        self.assertGreaterEqual(s["bytes_out"], 4 << 20)

    def test_setgid_install_records_an_ordinary_user(self):
        # docs/jitgate-rec.md, "Deployment": jitgate-rec setgid to
        # broker.recorder_group records its own user's sessions; alice is
        # neither root nor a submitter here. Setgid, it talks only to the
        # default socket, so this broker listens there (/run is private).
        import grp
        import shutil
        if "ASAN_OPTIONS" in os.environ:  # scripts/test --sanitize
            self.skipTest("sanitizer build: LeakSanitizer cannot stop the world in a setgid "
                          "process, which cannot even read its own /proc/self/environ to be "
                          "told detect_leaks=0; the normal build runs this test")
        run(["groupadd", "-f", "jitrec"])
        gid = grp.getgrnam("jitrec").gr_gid
        broker = Broker(os.path.join(self.dir, "sg-broker"), {"oncall": ["root"]},
                        [{"name": "nothing", "match": {"service": ["none"]}, "approve": "deny"}],
                        socket_path="/run/jitgate/jitgated.sock")
        text = read(broker.config).replace("  submitters: [root]",
                                           "  submitters: [root]\n  recorder_group: jitrec")
        harness.write(broker.config, text)
        broker.start()
        self.addCleanup(broker.stop)
        self.add_diag("setgid broker log", lambda: read(broker.log_path))
        sg = "/run/jitgate-rec-setgid"
        plain = "/run/jitgate-rec-plain"
        for path in (sg, plain):
            shutil.copy(harness.BIN["rec"], path)
        os.chown(sg, 0, gid)
        os.chmod(sg, 0o2755)
        os.chmod(plain, 0o755)
        cmd = "echo setgid-$((6*7)); id -G; exit 3"
        p = run(harness.as_user("alice", [sg, "-c", cmd]), check=False)
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0], "setgid-42")
        # The session itself does not keep the recorder's group.
        self.assertNotIn(str(gid), lines[1].split())
        sessions = json.loads(run([harness.BIN["jitgate"], "sessions", "--json", "--store",
                                   broker.store_dir]).stdout)["sessions"]
        self.assertEqual([(x["user"], x["command"], x["exit_status"]) for x in sessions],
                         [("alice", cmd, 3)])
        raw = run([harness.BIN["jitgate"], "replay", sessions[0]["id"], "--raw", "--no-safe",
                   "--store", broker.store_dir]).stdout
        self.assertIn("setgid-42", raw)
        # Without the setgid bit alice's jitgate-rec may not record, and runs
        # nothing.
        p = run(harness.as_user("alice", [plain, "-c", "echo never"]), check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertNotIn("never", p.stdout)
        self.assertIn("session not recorded", p.stderr)
        # Setgid, it cannot be pointed at another broker.
        p = run(harness.as_user("alice", [sg, "--socket", self.socket, "-c", "echo never"]),
                check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertNotIn("never", p.stdout)
        self.assertIn("--socket is not allowed when jitgate-rec is setgid", p.stderr)

    def test_no_broker_no_session(self):
        # The broker is not running: the command must not run at all.
        marker = os.path.join(self.dir, "ran")
        os.chmod(self.dir, 0o777)
        p = run(self.alice.ssh_argv(self.sshd, "touch %s" % marker, log_level="ERROR"),
                check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("session not recorded", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertFalse(os.path.exists(marker), "the command ran without a recording")


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


if __name__ == "__main__":
    harness.main(__file__)
