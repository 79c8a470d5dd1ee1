#!/usr/bin/env python3
"""F2 end to end: sudo needs approval, for the exact command.

Real setuid sudo reading the namespace's private /etc/sudo.conf, /etc/sudoers.d
and /etc/pam.d; a real jitgated; approvers acting with the real `jitgate` CLI
under their own uid. Two ways in:

  * the approval plugin: /etc/sudo.conf lists the sudoers plugins and
    `Plugin jitgate_approval /abs/jitgate_approval.so socket=... timeout=...`;
    the approver sees the exact command line, run-as user and cwd;
  * the PAM module: `Defaults:frank pam_service=sudo-jit ...` and
    /etc/pam.d/sudo-jit with pam_jitgate.so in auth.

The requester runs `setpriv --reuid=U --regid=U --init-groups sudo -n CMD`
(no tty), or sudo on a pty through pexpect where a terminal matters.

Usage: test_sudo_approval.py --jitgated PATH --jitgate PATH [--approval PATH] [--pam PATH]
"""
import os
import socket
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Background, Broker, as_user, read, run, user_env  # noqa: E402

CLIENT_TIMEOUT = 30  # plugin / module timeout=
SHORT_TIMEOUT = 3    # policy timeout for erin (plugin) and gina (PAM module)

APPROVERS = {"oncall": ["bob", "carol"]}
POLICIES = [
    {"name": "no-passwd", "match": {"service": ["sudo"], "command": ["/usr/bin/passwd*"]},
     "approve": "deny"},
    {"name": "harmless", "match": {"service": ["sudo"], "command": ["/usr/bin/true"]},
     "approve": "auto"},
    # Welcomes a reason without requiring one (the plugin's default reason=optional).
    {"name": "reason-welcome", "match": {"service": ["sudo"], "command": ["/usr/bin/whoami"]},
     "approvers": ["oncall"], "quorum": 1, "reason": "optional", "timeout": "60s", "ttl": "5m"},
    {"name": "short-wait", "match": {"service": ["sudo", "sudo-jit"], "user": ["erin", "gina"]},
     "approvers": ["oncall"], "quorum": 1, "reason": "none",
     "timeout": "%ds" % SHORT_TIMEOUT, "ttl": "5m"},
    {"name": "sudo-commands", "match": {"service": ["sudo", "sudo-jit"], "host": ["*"]},
     "approvers": ["oncall"], "quorum": 1, "reason": "none", "timeout": "60s", "ttl": "5m"},
]

SUDOERS = """\
Defaults:alice !lecture
Defaults:erin !lecture
alice ALL=(ALL) NOPASSWD: ALL
erin ALL=(ALL) NOPASSWD: ALL
Defaults:frank pam_service=sudo-jit, pam_login_service=sudo-jit
Defaults:frank noninteractive_auth, passwd_tries=1, timestamp_timeout=0, !lecture
frank ALL=(root) /usr/bin/id, /usr/bin/touch
Defaults:gina pam_service=sudo-jit, pam_login_service=sudo-jit
Defaults:gina noninteractive_auth, passwd_tries=1, timestamp_timeout=0, !lecture
gina ALL=(root) /usr/bin/touch
"""

_original_sudo_conf = None


def setUpModule():
    global _original_sudo_conf
    if not harness.BIN["jitgated"] or not harness.BIN["jitgate"]:
        return  # the classes skip themselves and say why
    harness.add_users("alice", "bob", "carol", "erin", "frank", "gina")
    harness.write("/etc/sudoers.d/jitgate-it", SUDOERS, 0o440)
    run(["visudo", "-c"])
    if os.path.exists("/etc/sudo.conf"):
        _original_sudo_conf = read("/etc/sudo.conf")


def set_sudo_conf(plugin_line):
    text = ("Plugin sudoers_policy sudoers.so\n"
            "Plugin sudoers_io sudoers.so\n"
            "Plugin sudoers_audit sudoers.so\n")
    if plugin_line:
        text += plugin_line + "\n"
    harness.write("/etc/sudo.conf", text)


class SudoTestBase(harness.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cdir = tempfile.mkdtemp(prefix="sudo.", dir=harness.ROOT)
        os.chmod(cls.cdir, 0o755)
        cls.socket = os.path.join(cls.cdir, "jitgated.sock")
        # The requester's working directory, which the approver must see.
        cls.cwd = os.path.join(cls.cdir, "requester cwd")
        os.mkdir(cls.cwd)
        os.chmod(cls.cwd, 0o777)
        cls.hostname = socket.gethostname()

    @classmethod
    def tearDownClass(cls):
        if _original_sudo_conf is not None:
            harness.write("/etc/sudo.conf", _original_sudo_conf)

    def setUp(self):
        super().setUp()
        self.broker = Broker(os.path.join(self.dir, "broker"), APPROVERS, POLICIES,
                             socket_path=self.socket)
        self.bg = []
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

    def sudo(self, user, *argv, runas=None):
        """`sudo -n [-u runas] argv...` as user, without a tty, in the background."""
        cmd = ["sudo", "-n"] + (["-u", runas] if runas else []) + list(argv)
        b = Background(as_user(user, cmd), self.dir, "sudo-%s-%d" % (user, len(self.bg)),
                       cwd=self.cwd, env=user_env(user))
        self.bg.append(b)
        return b

    def pending(self, user, **kw):
        return self.broker.wait_pending(approver="bob", user=user, **kw)

    def assert_still_waiting(self, client, seconds=1.0):
        time.sleep(seconds)
        self.assertTrue(client.running(), "sudo finished early: " + client.describe())

    def assert_audit(self, rid, expected_types):
        self.broker.stop()
        v = self.broker.verify()
        self.assertEqual(v.returncode, 0, "jitgate verify failed:\n%s%s" % (v.stdout, v.stderr))
        events = harness.audit_events(self.broker.entries(), rid)
        types = [e["type"] for e in events]
        for t in expected_types:
            self.assertIn(t, types, "audit events of %s: %r" % (rid, events))
        return events


class SudoApprovalPluginTest(SudoTestBase):
    needs = ("jitgated", "jitgate", "approval")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        set_sudo_conf("Plugin jitgate_approval %s socket=%s timeout=%d" %
                      (harness.BIN["approval"], cls.socket, CLIENT_TIMEOUT))

    def test_approve_runs_exact_command(self):
        self.broker.start()
        c = self.sudo("alice", "/usr/bin/id", "-un")
        r = self.pending("alice")
        # The approver sees the exact command line, run-as user and cwd.
        self.assertEqual(r["service"], "sudo")
        self.assertEqual(r["command"], "/usr/bin/id -un", r)
        self.assertEqual(r["target_user"], "root", r)
        self.assertEqual(r["cwd"], self.cwd, r)
        self.assertEqual(r["host"], self.hostname, r)
        self.assert_still_waiting(c, 0.5)
        self.broker.approve("bob", r["id"], "ok for id")
        self.assertEqual(c.wait(20), 0, c.describe())
        self.assertEqual(c.stdout.splitlines()[:1], ["root"], c.describe())
        self.assertIn(r["id"], c.stdout + c.stderr, c.describe())
        self.assertEqual(self.broker.show("bob", r["id"])["state"], "used")
        events = self.assert_audit(r["id"], ["created", "approved", "used"])
        created = [e for e in events if e["type"] == "created"][0]
        self.assertIn("/usr/bin/id -un", str(created), created)

    def test_sudo_n_files_without_an_optional_reason(self):
        # `sudo -n` cannot be asked anything: the plugin says so to the
        # broker, which files the request without the reason it would have
        # welcomed, instead of asking and the request being cancelled.
        self.broker.start()
        c = self.sudo("alice", "/usr/bin/whoami")
        r = self.pending("alice")
        self.assertEqual(r["command"], "/usr/bin/whoami", r)
        self.broker.approve("bob", r["id"], "ok")
        self.assertEqual(c.wait(20), 0, c.describe())
        self.assertEqual(c.stdout.splitlines()[:1], ["root"], c.describe())
        self.assertNotIn("cancelled", c.stderr, c.describe())

    def test_messages_stay_out_of_the_commands_stdout(self):
        # `sudo cmd > file` or `sudo cmd | next` must get exactly the
        # command's output: jitgate's progress text belongs on stderr or the
        # tty, never in the command's stdout.
        self.broker.start()
        c = self.sudo("alice", "/usr/bin/printf", "%s", "payload")
        r = self.pending("alice")
        self.broker.approve("bob", r["id"], "ok")
        self.assertEqual(c.wait(20), 0, c.describe())
        self.assertEqual(c.stdout, "payload", c.describe())
        self.assertIn(r["id"], c.stderr, c.describe())

    def test_broker_restart_while_sudo_waits(self):
        self.broker.start()
        c = self.sudo("alice", "/usr/bin/id", "-un")
        r = self.pending("alice")
        self.broker.stop()
        self.assert_still_waiting(c, 1.0)
        self.broker.start()
        self.broker.approve("bob", r["id"], "after restart")
        self.assertEqual(c.wait(20), 0, c.describe())
        self.assertIn("root", c.stdout, c.describe())
        self.assert_audit(r["id"], ["created", "approved", "used"])

    def test_other_command_or_repeat_needs_new_approval(self):
        self.broker.start()
        c1 = self.sudo("alice", "/usr/bin/id", "-un")
        r1 = self.pending("alice")
        self.broker.approve("bob", r1["id"], "first")
        self.assertEqual(c1.wait(20), 0, c1.describe())
        # Another command, as another run-as user: a new request showing
        # exactly that command line (quoted as a shell would read it back).
        c2 = self.sudo("alice", "/usr/bin/printf", "%s|", "a b", "c", runas="carol")
        r2 = self.pending("alice")
        self.assertNotEqual(r2["id"], r1["id"])
        self.assertEqual(r2["command"], "/usr/bin/printf '%s|' 'a b' c", r2)
        self.assertEqual(r2["target_user"], "carol", r2)
        self.assert_still_waiting(c2, 1.0)
        self.broker.approve("bob", r2["id"], "second")
        self.assertEqual(c2.wait(20), 0, c2.describe())
        self.assertTrue(c2.stdout.startswith("a b|c|"), c2.describe())
        # Even the very same command again is a new request (one-time).
        c3 = self.sudo("alice", "/usr/bin/id", "-un")
        r3 = self.pending("alice")
        self.assertNotIn(r3["id"], (r1["id"], r2["id"]))
        self.broker.deny("carol", r3["id"], "once was enough")
        self.assertEqual(c3.wait(20), 1, c3.describe())
        self.assertNotIn("root", c3.stdout, c3.describe())

    def test_deny_fails_closed_with_comment(self):
        self.broker.start()
        marker = os.path.join(self.cwd, "denied-marker")
        c = self.sudo("alice", "/usr/bin/touch", marker)
        r = self.pending("alice")
        self.broker.deny("carol", r["id"], "not during the freeze")
        self.assertEqual(c.wait(20), 1, c.describe())
        self.assertFalse(os.path.exists(marker), "a denied command ran")
        self.assertIn("not during the freeze", c.stderr, c.describe())
        self.assertIn("denied", c.stderr, c.describe())
        self.assert_audit(r["id"], ["created", "denied"])

    def test_timeout_fails_closed(self):
        self.broker.start()
        marker = os.path.join(self.cwd, "timeout-marker")
        c = self.sudo("erin", "/usr/bin/touch", marker)
        r = self.pending("erin")
        self.assertEqual(c.wait(SHORT_TIMEOUT + 15), 1, c.describe())
        self.assertLess(c.elapsed, SHORT_TIMEOUT + 10, c.describe())
        self.assertFalse(os.path.exists(marker), "a command ran without approval")
        self.assertRegex(c.stderr, r"(?i)expired|no decision|timed out|timeout", c.describe())
        self.assert_audit(r["id"], ["created", "expired"])

    def test_broker_down_fails_closed(self):
        marker = os.path.join(self.cwd, "down-marker")
        c = self.sudo("alice", "/usr/bin/touch", marker)
        self.assertEqual(c.wait(20), 1, c.describe())
        self.assertLess(c.elapsed, 10, c.describe())
        self.assertFalse(os.path.exists(marker), "a command ran with the broker down")
        self.assertIn("unreachable", c.stderr, c.describe())

    def test_policy_by_command_auto_and_deny(self):
        self.broker.start()
        c = self.sudo("alice", "/usr/bin/true")
        self.assertEqual(c.wait(20), 0, "auto-approved command: " + c.describe())
        c = self.sudo("alice", "/usr/bin/passwd", "root")
        self.assertEqual(c.wait(20), 1, "policy-denied command: " + c.describe())
        self.assertIn("denied by policy", c.stderr, c.describe())
        self.assertIn("no-passwd", c.stderr, c.describe())
        self.assertEqual(self.broker.requests("bob"), [], "nothing should wait for approvers")

    def test_tty_request_through_pty(self):
        pexpect = self.need_pexpect()
        self.broker.start()
        logf = open(os.path.join(self.dir, "pexpect.log"), "w")
        self.add_diag("pexpect transcript", lambda: read(logf.name))
        argv = as_user("alice", ["sudo", "/usr/bin/tty"])
        child = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", timeout=20, logfile=logf,
                              cwd=self.cwd, env=user_env("alice"))
        try:
            r = self.pending("alice")
            self.assertRegex(r["tty"], r"^/dev/pts/\d+$", r)
            self.assertEqual(r["command"], "/usr/bin/tty", r)
            self.broker.approve("bob", r["id"], "tty ok")
            child.expect(r"/dev/pts/\d+")
            child.expect(pexpect.EOF)
        finally:
            child.close()
            logf.close()
        self.assertEqual(child.exitstatus, 0, read(logf.name))
        self.assertIn(r["id"], read(logf.name))


class SudoPamModuleTest(SudoTestBase):
    needs = ("jitgated", "jitgate", "pam")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        set_sudo_conf(None)  # no approval plugin: the PAM module alone decides
        m = "%s socket=%s timeout=%d" % (harness.BIN["pam"], cls.socket, CLIENT_TIMEOUT)
        harness.write("/etc/pam.d/sudo-jit",
                      "auth     required %s\n"
                      "account  required pam_permit.so\n"
                      "session  required pam_permit.so\n" % m)

    def test_pam_approve_runs(self):
        self.broker.start()
        c = self.sudo("frank", "/usr/bin/id", "-un")
        r = self.pending("frank")
        self.assertEqual(r["service"], "sudo-jit", r)
        self.assert_still_waiting(c, 0.5)
        self.broker.approve("bob", r["id"], "pam ok")
        self.assertEqual(c.wait(20), 0, c.describe())
        self.assertEqual(c.stdout, "root\n", c.describe())
        self.assert_audit(r["id"], ["created", "approved", "used"])

    def test_pam_waiting_message_on_tty(self):
        # PRODUCT.md: a requester never sees "a hang with no message". With
        # sudo's default settings (pam_silent is on) and a terminal, the user
        # must see the request id while waiting.
        pexpect = self.need_pexpect()
        self.broker.start()
        logf = open(os.path.join(self.dir, "pexpect.log"), "w")
        self.add_diag("pexpect transcript", lambda: read(logf.name))
        argv = as_user("frank", ["sudo", "/usr/bin/id", "-un"])
        child = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", timeout=20, logfile=logf,
                              cwd=self.cwd, env=user_env("frank"))
        try:
            r = self.pending("frank")
            try:
                child.expect(r["id"], timeout=3)
                shown = True
            except pexpect.TIMEOUT:
                shown = False
            self.broker.approve("bob", r["id"], "tty ok")
            child.expect("root")
            child.expect(pexpect.EOF)
        finally:
            child.close()
            logf.close()
        self.assertEqual(child.exitstatus, 0, read(logf.name))
        self.assertTrue(shown, "sudo (PAM) showed no request id while waiting; transcript: %r"
                        % read(logf.name))

    def test_pam_deny_fails(self):
        self.broker.start()
        marker = os.path.join(self.cwd, "pam-denied-marker")
        c = self.sudo("frank", "/usr/bin/touch", marker)
        r = self.pending("frank")
        self.broker.deny("carol", r["id"], "no root today")
        self.assertEqual(c.wait(20), 1, c.describe())
        self.assertFalse(os.path.exists(marker), "a denied command ran")
        self.assertIn("no root today", c.stderr, c.describe())

    def test_pam_timeout_fails(self):
        self.broker.start()
        marker = os.path.join(self.cwd, "pam-timeout-marker")
        c = self.sudo("gina", "/usr/bin/touch", marker)
        r = self.pending("gina")
        self.assertEqual(c.wait(SHORT_TIMEOUT + 15), 1, c.describe())
        self.assertFalse(os.path.exists(marker), "a command ran without approval")
        self.assertRegex(c.stderr, r"(?i)expired|no decision", c.describe())
        self.assert_audit(r["id"], ["created", "expired"])

    def test_pam_broker_down_fails(self):
        c = self.sudo("frank", "/usr/bin/id", "-un")
        self.assertEqual(c.wait(20), 1, c.describe())
        self.assertNotIn("root", c.stdout)
        self.assertIn("unreachable", c.stderr, c.describe())


if __name__ == "__main__":
    harness.main(__file__)
