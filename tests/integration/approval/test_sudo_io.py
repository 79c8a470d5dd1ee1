#!/usr/bin/env python3
"""F5 end to end: sudo sessions recorded by the I/O plugin, linked to F2's approval.

Real setuid sudo reading the namespace's private /etc/sudo.conf, which loads
jitgate_sudo.so twice, as sudoers.so is loaded for its three plugins:

    Plugin jitgate_approval /abs/jitgate_sudo.so socket=... timeout=...
    Plugin jitgate_io /abs/jitgate_sudo.so socket=... timeout=...

a real jitgated writing the signed store, an approver with the real `jitgate`
CLI, and the recording read back with `jitgate sessions`, `replay` and
`export`. alice runs sudo on a pty driven by pexpect (sudo then runs the
command on a pty of its own and logs tty input and output) or with pipes
(sudo logs stdin, stdout and stderr).

Usage: test_sudo_io.py --jitgated PATH --jitgate PATH --rec PATH --sudo-plugins PATH [unittest args]
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The plugin object is an extra binary for this file only: take it out of
# argv before the harness parses the rest (it travels to the re-executed
# process in the environment).
if "--sudo-plugins" in sys.argv:
    _i = sys.argv.index("--sudo-plugins")
    os.environ["JITGATE_IT_SUDO_PLUGINS"] = os.path.abspath(sys.argv[_i + 1])
    del sys.argv[_i:_i + 2]
import harness  # noqa: E402
from harness import Background, Broker, as_user, read, run, user_env  # noqa: E402

PLUGINS = os.environ.get("JITGATE_IT_SUDO_PLUGINS")

APPROVERS = {"oncall": ["bob"]}
POLICIES = [
    # A root shell needs a person's approval; anything else alice runs is
    # approved by policy (the plugin still files a request for it).
    {"name": "root-shell", "match": {"service": ["sudo"], "command": ["/usr/bin/sh*"]},
     "approvers": ["oncall"], "quorum": 1, "reason": "none", "timeout": "60s", "ttl": "5m"},
    {"name": "anything-else", "match": {"service": ["sudo"]}, "approve": "auto",
     "reason": "none", "ttl": "5m"},
]
SUDOERS = """\
Defaults:alice !lecture
alice ALL=(ALL) NOPASSWD: ALL
"""

_original_sudo_conf = None


def setUpModule():
    global _original_sudo_conf
    if not harness.BIN["jitgated"] or not harness.BIN["jitgate"] or not PLUGINS:
        return  # the class skips itself and says why
    harness.add_users("alice", "bob")
    harness.write("/etc/sudoers.d/jitgate-io-it", SUDOERS, 0o440)
    run(["visudo", "-c"])
    if os.path.exists("/etc/sudo.conf"):
        _original_sudo_conf = read("/etc/sudo.conf")


def tearDownModule():
    if _original_sudo_conf is not None:
        harness.write("/etc/sudo.conf", _original_sudo_conf)


def set_sudo_conf(approval_socket, io_socket, io_options=""):
    """sudo.conf with the sudoers plugins, then ours (None: leave it out)."""
    text = ("Plugin sudoers_policy sudoers.so\n"
            "Plugin sudoers_io sudoers.so\n"
            "Plugin sudoers_audit sudoers.so\n")
    if approval_socket:
        text += "Plugin jitgate_approval %s socket=%s timeout=30\n" % (PLUGINS, approval_socket)
    if io_socket:
        text += "Plugin jitgate_io %s socket=%s timeout=5 %s\n" % (PLUGINS, io_socket, io_options)
    harness.write("/etc/sudo.conf", text)


class SudoIoTest(harness.IntegrationTest):
    needs = ("jitgated", "jitgate", "rec")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not PLUGINS:
            raise unittest.SkipTest("not built yet: jitgate_sudo.so (pass --sudo-plugins)")
        cls.cdir = tempfile.mkdtemp(prefix="sudoio.", dir=harness.ROOT)
        os.chmod(cls.cdir, 0o755)
        cls.socket = os.path.join(cls.cdir, "jitgated.sock")
        cls.cwd = os.path.join(cls.cdir, "cwd")
        os.mkdir(cls.cwd)
        os.chmod(cls.cwd, 0o777)

    def setUp(self):
        super().setUp()
        self.broker = Broker(os.path.join(self.dir, "broker"), APPROVERS, POLICIES,
                             socket_path=self.socket)
        self.bg = []
        set_sudo_conf(self.socket, self.socket)
        self.add_diag("jitgated log", lambda: read(self.broker.log_path))
        self.add_diag("sudo.conf", lambda: read("/etc/sudo.conf"))
        self.add_diag("clients", lambda: "\n".join(b.describe() for b in self.bg))

    def tearDown(self):
        for b in self.bg:
            b.kill()
        self.broker.stop()
        super().tearDown()
        try:
            os.unlink(self.socket)
        except FileNotFoundError:
            pass

    # ---- helpers ----

    def cli(self, *args, check=True):
        return run([harness.BIN["jitgate"]] + list(args) + ["--store", self.broker.store_dir],
                   check=check)

    def sessions(self):
        return json.loads(self.cli("sessions", "--json").stdout)["sessions"]

    def raw(self, sid):
        return self.cli("replay", sid, "--raw", "--no-safe").stdout

    def cast_events(self, sid):
        cast = os.path.join(self.dir, sid + ".cast")
        self.cli("export", sid, "--format", "asciicast", "--out", cast)
        lines = read(cast).splitlines()
        return [json.loads(line) for line in lines[1:]]

    def sudo_pipes(self, argv, stdin_text=""):
        """`sudo -n argv` as alice without a terminal, stdin from a pipe."""
        return subprocess.run(as_user("alice", ["sudo", "-n"] + list(argv)), input=stdin_text,
                              capture_output=True, text=True, timeout=60, cwd=self.cwd,
                              env=user_env("alice"))

    def sudo_pty(self, pexpect, argv):
        """alice's sudo on a 100x30 pexpect terminal (a controlling tty)."""
        cmd = as_user("alice", ["sudo"] + list(argv))
        return pexpect.spawn(cmd[0], cmd[1:], encoding="utf-8", timeout=30, cwd=self.cwd,
                             env=dict(user_env("alice"), TERM="xterm"), dimensions=(30, 100))

    def assert_store_verifies(self):
        self.broker.stop()
        v = self.broker.verify()
        self.assertEqual(v.returncode, 0, "jitgate verify failed:\n%s%s" % (v.stdout, v.stderr))

    # ---- tests ----

    def test_interactive_root_shell_is_recorded_under_its_approval(self):
        pexpect = self.need_pexpect()
        self.broker.start()
        child = self.sudo_pty(pexpect, ["/usr/bin/sh"])
        r = self.broker.wait_pending(approver="bob", user="alice")
        self.assertEqual(r["command"], "/usr/bin/sh", r)
        self.broker.approve("bob", r["id"], "for the migration")
        child.expect_exact("approved by bob")
        child.expect(r"# ")
        # What alice types and what the shell answers, a resize in between.
        child.sendline("echo typed-$((6*7))")
        child.expect_exact("typed-42")
        # The session is live in the store, and a quiet session's last output
        # reaches it without more I/O (the plugin's timer in sudo's loop).
        live = harness.wait_for(lambda: next((x for x in self.sessions() if not x["ended"]),
                                             None), 10, "the live session in the store")
        harness.wait_for(lambda: "typed-42" in self.raw(live["id"]), 10,
                         "the live output in the store")
        child.setwinsize(40, 120)
        child.sendline("stty size; exit 7")
        child.expect_exact("40 120")
        child.expect(pexpect.EOF)
        child.close()
        self.assertEqual(child.exitstatus, 7, child.before)

        [s] = self.sessions()
        self.assertEqual(s["recorder"], "sudo")
        self.assertEqual(s["user"], "alice")
        self.assertEqual(s["login"], "root")
        self.assertEqual(s["command"], "/usr/bin/sh")
        self.assertEqual(s["request_id"], r["id"])  # linked to the approval
        self.assertEqual(s["approvers"], ["bob"])
        self.assertEqual(s["term"], "xterm")
        self.assertEqual((s["cols"], s["rows"]), (100, 30))
        self.assertTrue(s["ended"])
        self.assertEqual(s["exit_status"], 7)
        self.assertEqual(s["end_reason"], "closed")
        self.assertIn("typed-42", self.raw(s["id"]))
        events = self.cast_events(s["id"])
        typed = "".join(e[2] for e in events if e[1] == "i")
        self.assertIn("echo typed-$((6*7))", typed)
        self.assertIn("stty size; exit 7", typed)
        self.assertIn("120x40", [e[2] for e in events if e[1] == "r"])
        out = "".join(e[2] for e in events if e[1] == "o")
        self.assertIn("typed-42", out)
        self.assertIn("40 120", out)
        times = [e[0] for e in events]
        self.assertEqual(times, sorted(times))
        self.assert_store_verifies()

    def test_pipes_record_stdin_stdout_and_stderr_and_pass_the_exit_status(self):
        self.broker.start()
        p = self.sudo_pipes(["/bin/sh", "-c", "cat; echo to-stdout; echo to-stderr >&2; exit 3"],
                            stdin_text="piped-in-line\n")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertEqual(p.stdout, "piped-in-line\nto-stdout\n")  # stdout stays stdout
        self.assertIn("to-stderr", p.stderr)
        self.assertNotIn("to-stderr", p.stdout)
        [s] = self.sessions()
        self.assertEqual(s["recorder"], "sudo")
        self.assertEqual(s["exit_status"], 3)
        self.assertEqual(s["command"], "/bin/sh -c 'cat; echo to-stdout; echo to-stderr >&2; exit 3'")
        self.assertEqual(len(s["request_id"]), 8, s)  # approved by policy, still linked
        self.assertEqual((s["cols"], s["rows"]), (0, 0))  # no terminal
        events = self.cast_events(s["id"])
        self.assertEqual("".join(e[2] for e in events if e[1] == "i"), "piped-in-line\n")
        out = "".join(e[2] for e in events if e[1] == "o")
        for text in ("piped-in-line", "to-stdout", "to-stderr"):
            self.assertIn(text, out)
        self.assertEqual(s["bytes_in"], len("piped-in-line\n"))
        self.assertEqual(s["bytes_out"], len("piped-in-line\nto-stdout\nto-stderr\n"))
        self.assert_store_verifies()

    def test_killed_command_records_the_signal(self):
        self.broker.start()
        p = self.sudo_pipes(["/bin/sh", "-c", "echo dying; kill -TERM $$"])
        # sudo ends itself with the command's signal.
        self.assertEqual(p.returncode, -signal.SIGTERM, p.stderr)
        [s] = self.sessions()
        self.assertEqual(s["exit_signal"], "TERM")
        self.assertIn("dying", self.raw(s["id"]))

    def test_broker_down_refuses_to_run_the_command(self):
        # The approval comes from a live broker; the recording's socket leads
        # nowhere: sudo must not run the command.
        self.broker.start()
        set_sudo_conf(self.socket, os.path.join(self.dir, "no-broker.sock"))
        marker = os.path.join(self.cwd, "down-marker")
        p = self.sudo_pipes(["/usr/bin/touch", marker])
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertFalse(os.path.exists(marker), "the command ran without a recording")
        ours = [l for l in p.stderr.splitlines() if l.startswith("jitgate: session")]
        self.assertEqual(ours, ["jitgate: session not recorded: jitgate broker unreachable at "
                                "%s: No such file or directory; command not run" %
                                os.path.join(self.dir, "no-broker.sock")], p.stderr)
        self.assertEqual(self.sessions(), [])
        # Without the approval plugin and with no broker at all: the same.
        self.broker.stop()
        set_sudo_conf(None, self.socket)
        p = self.sudo_pipes(["/usr/bin/touch", marker])
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertFalse(os.path.exists(marker), "the command ran without a recording")
        self.assertIn("jitgate: session not recorded", p.stderr)

    def test_spool_records_while_the_broker_is_down_and_forwarding_delivers_it(self):
        # With spool=DIR the command runs while the broker is away; its
        # recording waits in the spool until `jitgate-rec --forward-spool`.
        spool = os.path.join(self.dir, "spool")
        os.mkdir(spool, 0o700)
        set_sudo_conf(None, self.socket, "spool=%s" % spool)
        p = self.sudo_pipes(["/bin/sh", "-c", "echo spooled-$((6*7)); exit 4"])
        self.assertEqual(p.returncode, 4, p.stdout + p.stderr)
        self.assertEqual(p.stdout, "spooled-42\n")
        self.assertIn("jitgate: recording to the local spool %s" % spool, p.stderr)
        self.assertIn("kept in the spool until the broker is back", p.stderr)
        self.assertEqual(len([f for f in os.listdir(spool) if f.endswith(".spool")]), 1)
        self.broker.start()
        run([harness.BIN["rec"], "--forward-spool", "--spool", spool, "--socket", self.socket])
        [s] = self.sessions()
        self.assertEqual((s["recorder"], s["user"], s["exit_status"]), ("sudo", "alice", 4))
        self.assertIn("spooled-42", self.raw(s["id"]))
        self.assertEqual([f for f in os.listdir(spool) if f.endswith(".spool")], [])
        # Forwarding again delivers nothing twice.
        run([harness.BIN["rec"], "--forward-spool", "--spool", spool, "--socket", self.socket])
        self.assertEqual(len(self.sessions()), 1)
        self.assert_store_verifies()

    # ---- the broker heard while the session is quiet ----

    def quiet_command(self, name):
        """A command that prints one line, then is quiet for 120 s, then marks."""
        marker = os.path.join(self.cwd, name)
        return marker, ["-n", "/bin/sh", "-c", "echo started; sleep 120; touch " + marker]

    def quiet_sudo_on_pipes(self, name):
        """alice's quiet_command(name) under sudo without a terminal, in the
        background, once it has printed its line: (marker, Background, session id)."""
        marker, argv = self.quiet_command(name)
        c = Background(as_user("alice", ["sudo"] + argv), self.dir, name, cwd=self.cwd,
                       env=user_env("alice"))
        self.bg.append(c)
        harness.wait_for(lambda: "started" in c.stdout, 20, "the command's first line")
        return marker, c, self.live_session_id()

    def live_session_id(self):
        live = harness.wait_for(lambda: next((x for x in self.sessions() if not x["ended"]),
                                             None), 10, "the live session in the store")
        return live["id"]

    def terminate(self, sid):
        p = self.broker.cli("root", "terminate", sid, "--comment", "wrong host", check=True)
        self.assertEqual(p.stdout, "session %s terminated\n" % sid)

    def assert_ended_as_terminated(self, sid, marker):
        self.assertFalse(os.path.exists(marker), "the command outlived its termination")
        ended = harness.wait_for(
            lambda: next((x for x in self.sessions() if x["id"] == sid and x["ended"]), None),
            15, "session_end of the terminated session")
        self.assertEqual(ended["end_reason"], "terminated")
        self.assertIn("started", self.raw(sid))
        self.assert_store_verifies()

    def test_terminate_ends_a_quiet_command_at_once(self):
        # Nothing is printed after the first line, so no I/O callback would
        # notice the termination: the plugin hears the broker in sudo's loop.
        self.broker.start()
        marker, c, sid = self.quiet_sudo_on_pipes("terminated-marker")
        self.terminate(sid)
        rc = c.wait(30)  # not the 120 s of the sleep
        self.assertNotEqual(rc, 0, c.describe())
        self.assertIn("jitgate: session terminated by root: wrong host", c.stderr, c.describe())
        self.assert_ended_as_terminated(sid, marker)

    def test_terminate_ends_a_quiet_command_at_once_on_a_pty(self):
        pexpect = self.need_pexpect()
        self.broker.start()
        marker, argv = self.quiet_command("terminated-pty-marker")
        child = self.sudo_pty(pexpect, argv)
        child.expect_exact("started")
        sid = self.live_session_id()
        self.terminate(sid)
        child.expect_exact("jitgate: session terminated by root: wrong host", timeout=30)
        child.expect(pexpect.EOF, timeout=30)
        child.close()
        self.assertNotEqual(child.exitstatus, 0)
        self.assert_ended_as_terminated(sid, marker)

    def test_quiet_session_resumes_after_a_broker_restart(self):
        # The broker restarts while the session prints nothing: the plugin
        # resumes it within seconds of the broker being back (before, it did
        # so only at the session's next I/O), so a termination reaches it.
        pexpect = self.need_pexpect()
        self.broker.start()
        marker, argv = self.quiet_command("restart-marker")
        child = self.sudo_pty(pexpect, argv)
        child.expect_exact("started")
        sid = self.live_session_id()
        self.broker.stop()
        self.broker.start()
        harness.wait_for(lambda: "session %s resumed" % sid in read(self.broker.log_path), 15,
                         "the quiet session resumed after the restart")
        self.terminate(sid)
        child.expect_exact("jitgate: session terminated by root: wrong host", timeout=30)
        child.expect(pexpect.EOF, timeout=30)
        child.close()
        self.assertNotEqual(child.exitstatus, 0)
        self.assertNotIn("recording failed", child.before)
        self.assert_ended_as_terminated(sid, marker)

    def test_sudo_killed_while_the_broker_is_down_is_ended_as_recorder_lost(self):
        # A restored sudo session waits for its sudo process (one that runs
        # an older plugin resumes only at its next I/O); one whose sudo died
        # while the broker was down is ended after the grace, not left live.
        text = read(self.broker.config).replace(
            "  submitters: [root]", "  submitters: [root]\n  recorder_resume_grace: 1s")
        harness.write(self.broker.config, text)
        self.broker.start()
        marker, c, sid = self.quiet_sudo_on_pipes("killed-sudo-marker")
        harness.wait_for(lambda: "started" in self.raw(sid), 15, "the output in the store")
        [sudo_pid] = harness.pids_of("/usr/bin/sudo", "root")  # pipes: no monitor process
        self.broker.stop()
        os.kill(sudo_pid, signal.SIGKILL)
        c.wait(30)
        for pid in harness.pids_of("/usr/bin/dash", "root"):  # the orphaned command
            if marker in read("/proc/%d/cmdline" % pid):
                os.kill(pid, signal.SIGKILL)
        self.broker.start()
        ended = harness.wait_for(
            lambda: next((x for x in self.sessions() if x["id"] == sid and x["ended"]), None),
            30, "session_end of the session whose sudo was killed")
        self.assertEqual(ended["end_reason"], "recorder lost")
        self.assertIn("its sudo process (pid %d) is gone" % sudo_pid, read(self.broker.log_path))
        self.assertIn("started", self.raw(sid))
        self.assert_store_verifies()

    def test_broker_lost_mid_session_ends_the_command(self):
        self.broker.start()
        marker = os.path.join(self.cwd, "late-marker")
        # The command prints, waits, prints a lot and only then leaves a mark.
        c = Background(as_user("alice", ["sudo", "-n", "/bin/sh", "-c",
                                         "echo first; sleep 3; seq 1 200000; touch " + marker]),
                       self.dir, "sudo-lost", cwd=self.cwd, env=user_env("alice"))
        self.bg.append(c)
        harness.wait_for(lambda: "first" in c.stdout, 20, "the command's first line")
        self.broker.stop(signal.SIGKILL)
        rc = c.wait(60)
        self.assertNotEqual(rc, 0, c.describe())
        self.assertFalse(os.path.exists(marker), "the command went on unrecorded")
        self.assertIn("jitgate: session ended: recording failed", c.stderr, c.describe())
        # The output sudo could not record was not shown either.
        self.assertNotIn("200000", c.stdout, c.describe())

    def test_broker_lost_mid_session_ends_the_command_on_a_pty(self):
        pexpect = self.need_pexpect()
        self.broker.start()
        marker = os.path.join(self.cwd, "late-pty-marker")
        child = self.sudo_pty(pexpect, ["-n", "/bin/sh", "-c",
                                        "echo first; sleep 3; seq 1 200000; touch " + marker])
        child.expect_exact("first")
        self.broker.stop(signal.SIGKILL)
        child.expect_exact("jitgate: session ended: recording failed", timeout=30)
        child.expect(pexpect.EOF, timeout=30)
        rest = child.before
        child.close()
        self.assertNotEqual(child.exitstatus, 0)
        self.assertFalse(os.path.exists(marker), "the command went on unrecorded")
        self.assertNotIn("200000", rest)


if __name__ == "__main__":
    harness.main(__file__)
