#!/usr/bin/env python3
"""F1 end to end: ssh logins that need a live approval.

Real sshd (private config on 127.0.0.1, PAM service named after its argv[0]),
real ssh client, Linux-PAM loading pam_jitgate.so by absolute path, a real
jitgated, and approvers acting with the real `jitgate` CLI under their own uid
(the broker identifies them by SO_PEERCRED). Each test gets a fresh broker
(own state, store and log key); the audit store is verified after each flow.

Usage: test_sshd_approval.py --jitgated PATH --jitgate PATH --pam PATH [unittest args]
"""
import grp
import os
import signal
import socket
import stat
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BIN, Background, Broker, Sshd, SshUser, as_user, read, run,  # noqa: E402
                     user_env)

PAM_TIMEOUT = 30   # pam_jitgate.so timeout= (client side)
SHORT_TIMEOUT = 3  # the policy timeout for erin's requests

APPROVERS = {"oncall": ["alice", "bob", "carol"]}
POLICIES = [
    {"name": "quorum-two", "match": {"service": ["sshd", "sshd-kbd"], "user": ["dave"]},
     "approvers": ["oncall"], "quorum": 2, "reason": "none", "timeout": "60s", "ttl": "5m"},
    {"name": "short-wait", "match": {"service": ["sshd", "sshd-kbd"], "user": ["erin"]},
     "approvers": ["oncall"], "quorum": 1, "reason": "none",
     "timeout": "%ds" % SHORT_TIMEOUT, "ttl": "5m"},
    {"name": "needs-reason", "match": {"service": ["sshd", "sshd-kbd"], "user": ["grace"]},
     "approvers": ["oncall"], "quorum": 1, "reason": "required", "timeout": "60s", "ttl": "5m"},
    {"name": "prod-ssh", "match": {"service": ["sshd", "sshd-kbd"], "host": ["*"]},
     "approvers": ["oncall"], "quorum": 1, "reason": "none", "timeout": "60s", "ttl": "5m"},
]


def account_stack(socket_path):
    return ("auth     required pam_permit.so\n"
            "account  required %s socket=%s timeout=%d\n"
            "session  required pam_permit.so\n"
            "password required pam_deny.so\n" % (harness.BIN["pam"], socket_path, PAM_TIMEOUT))


def kbd_stack(socket_path):
    # keyboard-interactive runs the auth stack after the key was verified: the
    # module asks there (live text through prompts) and account accepts the
    # approval that auth got in the same PAM handle.
    m = "%s socket=%s timeout=%d" % (harness.BIN["pam"], socket_path, PAM_TIMEOUT)
    return ("auth     required %s\n"
            "account  required %s\n"
            "session  required pam_permit.so\n"
            "password required pam_deny.so\n" % (m, m))


class SshdApprovalTest(harness.IntegrationTest):
    needs = ("jitgated", "jitgate", "pam")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        harness.add_users("alice", "bob", "carol", "dave", "erin", "grace", "mallory")
        cls.cdir = tempfile.mkdtemp(prefix="sshd.", dir=harness.ROOT)
        os.chmod(cls.cdir, 0o755)
        # One socket path for every test's broker, so one sshd config serves all.
        cls.socket = os.path.join(cls.cdir, "jitgated.sock")
        cls.users = {u: SshUser(u, cls.cdir) for u in ("alice", "dave", "erin", "grace")}
        cls.sshd = Sshd(os.path.join(cls.cdir, "account"), "sshd", account_stack(cls.socket))
        cls.sshd.start()
        cls.kbd_sshd = Sshd(os.path.join(cls.cdir, "kbd"), "sshd-kbd", kbd_stack(cls.socket),
                            kbd_interactive=True)
        cls.kbd_sshd.start()
        cls.hostname = socket.gethostname()

    @classmethod
    def tearDownClass(cls):
        for s in ("sshd", "kbd_sshd"):
            if hasattr(cls, s):
                getattr(cls, s).stop()

    def setUp(self):
        super().setUp()
        self.broker = Broker(os.path.join(self.dir, "broker"), APPROVERS, POLICIES,
                             socket_path=self.socket)
        self.bg = []
        self.add_diag("jitgated log", lambda: read(self.broker.log_path))
        self.add_diag("sshd log", lambda: read(self.sshd.log_path))
        self.add_diag("sshd-kbd log", lambda: read(self.kbd_sshd.log_path))
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

    def ssh(self, user, command="echo OK", name=None, extra=()):
        b = Background(self.users[user].ssh_argv(self.sshd, command, extra=extra), self.dir,
                       name or "ssh-%s-%d" % (user, len(self.bg)))
        self.bg.append(b)
        return b

    def pending(self, user, **kw):
        return self.broker.wait_pending(approver="bob", user=user, **kw)

    def assert_still_waiting(self, client, seconds=1.0):
        time.sleep(seconds)
        self.assertTrue(client.running(), "the login finished early: " + client.describe())

    def assert_audit(self, rid, expected_types):
        """Stops the broker, verifies the store and checks rid's audit events."""
        self.broker.stop()
        v = self.broker.verify()
        self.assertEqual(v.returncode, 0, "jitgate verify failed:\n%s%s" % (v.stdout, v.stderr))
        events = harness.audit_events(self.broker.entries(), rid)
        types = [e["type"] for e in events]
        for t in expected_types:
            self.assertIn(t, types, "audit events of %s: %r" % (rid, events))
        return events

    # ---- tests ----

    def test_approve_runs_command_and_is_audited(self):
        self.broker.start()
        c = self.ssh("alice", "echo OK; id -un")
        r = self.pending("alice")
        # The approver sees who, from where, which host, which login.
        self.assertEqual(r["service"], "sshd")
        self.assertEqual(r["target_user"], "alice")
        self.assertEqual(r["remote_addr"], "127.0.0.1")
        self.assertEqual(r["host"], self.hostname)
        self.assertEqual(r["approvals_needed"], 1)
        self.assertIn("oncall", r["approvers"])
        self.assert_still_waiting(c, 0.5)
        t0 = time.monotonic()
        self.broker.approve("bob", r["id"], "go ahead")
        self.assertEqual(c.wait(20), 0, c.describe())
        self.assertLess(time.monotonic() - t0, 5, "login took long after the approval")
        self.assertEqual(c.stdout.split(), ["OK", "alice"], c.describe())
        # The BatchMode client shows the request id (account-phase banner).
        self.assertIn("request %s" % r["id"], c.stderr, c.describe())
        self.assertEqual(self.broker.show("bob", r["id"])["state"], "used")
        # The store verifies while the broker is running, and again after.
        live = self.broker.verify()
        self.assertEqual(live.returncode, 0, "verify of the live store:\n" + live.stdout + live.stderr)
        events = self.assert_audit(r["id"], ["created", "approved", "used"])
        approved = [e for e in events if e["type"] == "approved"][0]
        self.assertEqual(approved.get("actor"), "bob", approved)
        created = [e for e in events if e["type"] == "created"][0]
        self.assertIn("127.0.0.1", str(created), created)

    def test_deny_fails_with_comment(self):
        self.broker.start()
        c = self.ssh("alice")
        r = self.pending("alice")
        self.broker.deny("carol", r["id"], "not during the freeze")
        self.assertEqual(c.wait(20), 255, c.describe())
        self.assertNotIn("OK", c.stdout)
        self.assertIn("not during the freeze", c.stderr, c.describe())
        self.assertIn("denied", c.stderr, c.describe())
        self.assertIn(r["id"], c.stderr, c.describe())
        events = self.assert_audit(r["id"], ["created", "denied"])
        denied = [e for e in events if e["type"] == "denied"][0]
        self.assertEqual(denied.get("actor"), "carol", denied)
        self.assertEqual(denied.get("comment"), "not during the freeze", denied)

    def test_timeout_fails_closed(self):
        self.broker.start()
        c = self.ssh("erin")
        r = self.pending("erin")
        self.assertEqual(c.wait(SHORT_TIMEOUT + 15), 255, c.describe())
        self.assertNotIn("OK", c.stdout)
        self.assertLess(c.elapsed, SHORT_TIMEOUT + 10, c.describe())
        self.assertRegex(c.stderr, r"(?i)expired|no decision|timed out|timeout", c.describe())
        self.assertEqual(self.broker.show("bob", r["id"])["state"], "expired")
        # Too late: an approval after expiry is refused.
        late = self.broker.approve("bob", r["id"], "late", check=False)
        self.assertNotEqual(late.returncode, 0, late.stdout)
        self.assert_audit(r["id"], ["created", "expired"])

    def test_broker_down_fails_closed_with_message(self):
        # No broker at all: the socket does not exist.
        c = self.ssh("alice")
        self.assertEqual(c.wait(20), 255, c.describe())
        self.assertNotIn("OK", c.stdout)
        self.assertLess(c.elapsed, 10, "no quick answer with the broker down: " + c.describe())
        self.assertIn("broker unreachable", c.stderr, c.describe())
        # A broker that was running and stopped (socket file may stay behind).
        self.broker.start()
        self.broker.stop()
        c = self.ssh("alice")
        self.assertEqual(c.wait(20), 255, c.describe())
        self.assertIn("broker unreachable", c.stderr, c.describe())

    def test_broker_restart_while_login_waits(self):
        self.broker.start()
        c = self.ssh("alice")
        r = self.pending("alice")
        self.broker.stop()
        self.assert_still_waiting(c, 1.0)
        self.broker.start()
        self.assertEqual(self.pending("alice")["id"], r["id"])
        self.broker.approve("bob", r["id"], "after restart")
        self.assertEqual(c.wait(20), 0, c.describe())
        self.assertEqual(c.stdout.strip(), "OK")
        self.assert_audit(r["id"], ["created", "approved", "used"])

    def test_reload_keeps_the_waiting_login_and_refuses_a_bad_config(self):
        """SIGHUP (what `systemctl reload jitgated` sends) while a login waits:
        a good new config applies to new requests, the waiting one keeps its
        policy and completes; a bad one is refused with file:line and changes
        nothing; every reload is an audit event."""
        self.broker.start()
        c = self.ssh("alice")
        r = self.pending("alice")
        original = read(self.broker.config)
        # The new policy: alice's logins no longer need anyone.
        auto = original.replace("policies:\n", "policies:\n  - name: alice-auto\n"
                                "    match: {\"user\": [\"alice\"]}\n    approve: auto\n"
                                "    reason: none\n", 1)
        harness.write(self.broker.config, auto)
        self.broker.proc.send_signal(signal.SIGHUP)
        harness.wait_for(lambda: "configuration reloaded" in read(self.broker.log_path), 10,
                         "the reload to be logged")
        self.assertTrue(self.broker.running())
        # A new login of alice goes through at once under the new policy ...
        quick = self.ssh("alice", "echo QUICK")
        self.assertEqual(quick.wait(20), 0, quick.describe())
        self.assertEqual(quick.stdout.strip(), "QUICK")
        # ... while the one that was waiting still waits for its approver.
        self.assert_still_waiting(c, 0.5)
        self.broker.approve("bob", r["id"], "approved across a reload")
        self.assertEqual(c.wait(20), 0, c.describe())
        self.assertEqual(c.stdout.strip(), "OK")

        # A bad file: refused, with the file and line; the running policy stays.
        harness.write(self.broker.config, auto + "polices: []\n")
        self.broker.proc.send_signal(signal.SIGHUP)
        harness.wait_for(lambda: "reload refused" in read(self.broker.log_path), 10,
                         "the refusal to be logged")
        log = read(self.broker.log_path)
        self.assertIn(self.broker.config + ":", log)
        self.assertIn("polices", log)
        self.assertTrue(self.broker.running())
        again = self.ssh("alice", "echo AGAIN")
        self.assertEqual(again.wait(20), 0, again.describe())
        self.assertEqual(again.stdout.strip(), "AGAIN")

        self.broker.stop()
        v = self.broker.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        events = [d for e in self.broker.entries() for d in harness._walk_json(e)
                  if d.get("type") == "config" and "config" in d]
        self.assertEqual([e["config"]["event"] for e in events],
                         ["loaded", "reloaded", "reload_refused"], events)
        self.assertIn("polices", events[2]["comment"])

    def test_quorum_two_needs_two_distinct_approvers(self):
        self.broker.start()
        c = self.ssh("dave")
        r = self.pending("dave")
        self.assertEqual(r["approvals_needed"], 2)
        self.broker.approve("bob", r["id"], "one")
        self.assert_still_waiting(c, 1.0)
        info = self.broker.show("bob", r["id"])
        self.assertEqual((info["state"], info["approvals"]), ("pending", 1), info)
        again = self.broker.approve("bob", r["id"], "one again", check=False)
        self.assertNotEqual(again.returncode, 0, "the same approver counted twice: " + again.stdout)
        self.assertRegex(again.stderr, r"(?i)already|duplicate", again.stderr)
        self.assert_still_waiting(c, 0.5)
        # A unique prefix of at least 4 characters names the request.
        self.broker.approve("carol", r["id"][:4], "two")
        self.assertEqual(c.wait(20), 0, c.describe())
        self.assertEqual(c.stdout.strip(), "OK")
        events = self.assert_audit(r["id"], ["created", "vote", "approved", "used"])
        approved = [e for e in events if e["type"] == "approved"][0]
        self.assertEqual(approved.get("approvers"), ["bob", "carol"], approved)

    def test_self_approval_and_outsiders_refused(self):
        self.broker.start()
        c = self.ssh("alice")
        r = self.pending("alice")
        own = self.broker.approve("alice", r["id"], "me", check=False)
        self.assertNotEqual(own.returncode, 0, "alice approved her own request: " + own.stdout)
        self.assertRegex(own.stderr, r"(?i)own|self", own.stderr)
        outsider = self.broker.approve("mallory", r["id"], "me too", check=False)
        self.assertNotEqual(outsider.returncode, 0, "a non-approver approved: " + outsider.stdout)
        self.assert_still_waiting(c, 1.0)
        self.assertEqual(self.broker.show("bob", r["id"])["state"], "pending")
        # Requests are shown to their requester and their approvers only.
        self.assertEqual([x["id"] for x in self.broker.requests("alice")], [r["id"]])
        self.assertEqual(self.broker.requests("mallory"), [])
        self.broker.approve("bob", r["id"], "ok")
        self.assertEqual(c.wait(20), 0, c.describe())

    def test_approval_is_one_time(self):
        self.broker.start()
        c1 = self.ssh("alice")
        r1 = self.pending("alice")
        self.broker.approve("bob", r1["id"], "first")
        self.assertEqual(c1.wait(20), 0, c1.describe())
        # A second login (here from another source address) does not ride on
        # the first approval; the approver sees where it comes from.
        c2 = self.ssh("alice", extra=("-b", "127.0.0.2"))
        r2 = self.pending("alice")
        self.assertNotEqual(r2["id"], r1["id"])
        self.assertEqual(r2["remote_addr"], "127.0.0.2", r2)
        self.assert_still_waiting(c2, 1.0)
        self.broker.deny("bob", r2["id"], "one was enough")
        self.assertEqual(c2.wait(20), 255, c2.describe())
        self.assertNotIn("OK", c2.stdout)
        self.assertEqual(self.broker.show("bob", r1["id"])["state"], "used")

    def test_kbd_interactive_client_sees_request_live(self):
        pexpect = self.need_pexpect()
        self.broker.start()
        u = self.users["alice"]
        argv = u.ssh_argv(self.kbd_sshd, "echo KBD-OK", batch=False)
        logf = open(os.path.join(self.dir, "pexpect.log"), "w")
        self.add_diag("pexpect transcript", lambda: read(logf.name))
        child = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", timeout=20, logfile=logf)
        try:
            # Before anyone approved, the client already shows the request id.
            child.expect(r"request ([0-9a-z]{8}) sent to approvers")
            rid = child.match.group(1)
            r = self.pending("alice")
            self.assertEqual(r["id"], rid)
            self.assertEqual(r["service"], "sshd-kbd")
            self.broker.approve("bob", rid, "kbd ok")
            child.sendline("")
            for _ in range(10):
                i = child.expect([r"Press Enter", "KBD-OK", pexpect.EOF])
                if i == 0:
                    child.sendline("")
                elif i == 1:
                    break
                else:
                    self.fail("ssh ended without running the command")
            child.expect(pexpect.EOF)
        finally:
            child.close()
            logf.close()
        self.assertEqual(child.exitstatus, 0, read(logf.name))
        # auth's approval covered account: one request, not two.
        all_reqs = self.broker.requests("bob", pending=False)
        self.assertEqual([x["id"] for x in all_reqs], [rid], all_reqs)

    def test_reason_asked_through_keyboard_interactive(self):
        pexpect = self.need_pexpect()
        self.broker.start()
        u = self.users["grace"]
        argv = u.ssh_argv(self.kbd_sshd, "echo REASON-OK", batch=False)
        logf = open(os.path.join(self.dir, "pexpect.log"), "w")
        self.add_diag("pexpect transcript", lambda: read(logf.name))
        child = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", timeout=20, logfile=logf)
        try:
            child.expect(r"(?i)reason[^\n]*: ")
            child.sendline("deploy hotfix #412")
            child.expect(r"request ([0-9a-z]{8}) sent to approvers")
            rid = child.match.group(1)
            r = self.pending("grace")
            self.assertEqual((r["id"], r["reason"]), (rid, "deploy hotfix #412"), r)
            self.broker.approve("bob", rid, "with reason")
            child.sendline("")
            for _ in range(10):
                i = child.expect([r"Press Enter", "REASON-OK", pexpect.EOF])
                if i == 0:
                    child.sendline("")
                elif i == 1:
                    break
                else:
                    self.fail("ssh ended without running the command")
            child.expect(pexpect.EOF)
        finally:
            child.close()
            logf.close()
        self.assertEqual(child.exitstatus, 0, read(logf.name))

    def test_required_reason_without_prompt_is_denied_clearly(self):
        # The account phase cannot ask (BatchMode, publickey only): a policy
        # that requires a reason denies at once, and says why.
        self.broker.start()
        c = self.ssh("grace")
        self.assertEqual(c.wait(20), 255, c.describe())
        self.assertLess(c.elapsed, 10, c.describe())
        self.assertIn("reason", c.stderr.lower(), c.describe())
        self.assertEqual(self.broker.requests("bob"), [])

    def test_login_grace_time_cancels_the_request(self):
        # sshd kills a login that waits longer than LoginGraceTime; the broker
        # sees its filer go away and cancels the request (docs/protocol.md 5.3).
        short = Sshd(os.path.join(self.dir, "grace-sshd"), "sshd",
                     account_stack(self.socket), extra_config="")
        with open(short.config) as f:
            cfg = f.read().replace("LoginGraceTime 120", "LoginGraceTime 2")
        harness.write(short.config, cfg)
        short.start()
        try:
            self.broker.start()
            c = Background(self.users["alice"].ssh_argv(short, "echo OK"), self.dir, "ssh-grace")
            self.bg.append(c)
            r = self.pending("alice")
            self.assertEqual(c.wait(20), 255, c.describe())
            self.assertNotIn("OK", c.stdout)

            def cancelled():
                return self.broker.show("bob", r["id"])["state"] == "cancelled"
            harness.wait_for(cancelled, 10, "request %s to be cancelled" % r["id"])
            late = self.broker.approve("bob", r["id"], "too late", check=False)
            self.assertNotEqual(late.returncode, 0, late.stdout)
            self.assert_audit(r["id"], ["created", "cancelled"])
        finally:
            short.stop()
            self.add_diag("short sshd log", lambda: read(short.log_path))

    def test_each_approval_unblocks_exactly_one_login(self):
        self.broker.start()
        clients = [self.ssh("alice", "echo OK%d" % i) for i in range(3)]
        harness.wait_for(lambda: len(self.broker.requests("bob")) == 3, 15,
                         "three pending requests")
        reqs = self.broker.requests("bob")
        self.assertEqual(len({r["id"] for r in reqs}), 3, reqs)
        self.broker.approve("bob", reqs[0]["id"], "just one")
        harness.wait_for(lambda: sum(not c.running() for c in clients) == 1, 15,
                         "exactly one login to finish")
        time.sleep(0.5)
        done = [c for c in clients if not c.running()]
        self.assertEqual(len(done), 1, "\n".join(c.describe() for c in clients))
        self.assertEqual(done[0].wait(), 0, done[0].describe())
        self.assertIn(reqs[0]["id"], done[0].stderr, done[0].describe())
        for r in reqs[1:]:
            self.broker.deny("carol", r["id"], "not these")
        for c in clients:
            if c is not done[0]:
                self.assertEqual(c.wait(20), 255, c.describe())

    def test_broker_stops_cleanly_on_sigterm(self):
        # docs/jitgated.md: exit status 0 after SIGTERM, with a pending
        # request that survives into the next start.
        self.broker.start()
        c = self.ssh("alice")
        r = self.pending("alice")
        rc = self.broker.stop(signal.SIGTERM)
        self.assertEqual(rc, 0, "jitgated did not stop cleanly on SIGTERM (exit %s; -15 = killed "
                         "by the signal):\n%s" % (rc, read(self.broker.log_path)))
        self.broker.start()
        self.assertEqual(self.pending("alice")["id"], r["id"])
        self.broker.deny("bob", r["id"], "cleanup")
        self.assertEqual(c.wait(20), 255, c.describe())

    def test_store_group_lets_auditors_read_the_store_and_nobody_else(self):
        # store.group (docs/jitgated.md, "Auditors"): members of the group
        # verify and read the store as themselves; other users cannot.
        run(["groupadd", "-f", "jg-audit"])
        run(["usermod", "-a", "-G", "jg-audit", "erin"])
        b = Broker(os.path.join(self.dir, "grouped"), APPROVERS, POLICIES,
                   socket_path=self.socket, store_group="nosuchgroup")
        p = b.check_config()
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("store.group: no group 'nosuchgroup'", p.stderr)
        b = Broker(os.path.join(self.dir, "grouped"), APPROVERS, POLICIES,
                   socket_path=self.socket, store_group="jg-audit")
        self.broker = b  # stopped by tearDown
        b.start()
        c = self.ssh("alice")
        r = self.pending("alice")
        self.broker.approve("bob", r["id"], "ok")
        self.assertEqual(c.wait(20), 0, c.describe())
        gid = grp.getgrnam("jg-audit").gr_gid
        for d in (b.store_dir, os.path.join(b.store_dir, "seg")):
            st = os.stat(d)
            self.assertEqual((stat.S_IMODE(st.st_mode), st.st_gid), (0o2750, gid), d)
        for name in os.listdir(os.path.join(b.store_dir, "seg")):
            st = os.stat(os.path.join(b.store_dir, "seg", name))
            self.assertEqual((stat.S_IMODE(st.st_mode) & 0o077, st.st_gid), (0o040, gid), name)
        verify = [BIN["jitgate"], "verify", "--store", b.store_dir, "--key", b.pub]
        ok = run(as_user("erin", verify), check=False, env=user_env("erin"))
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        entry = run(as_user("erin", [BIN["jitgate"], "log", "entry", "--store", b.store_dir,
                                     "--index", "0", "--json"]), check=False, env=user_env("erin"))
        self.assertEqual(entry.returncode, 0, entry.stdout + entry.stderr)
        no = run(as_user("mallory", verify), check=False, env=user_env("mallory"))
        self.assertNotEqual(no.returncode, 0, no.stdout + no.stderr)
        self.assertIn("Permission denied", no.stdout + no.stderr)

    def test_check_config_accepts_this_config(self):
        p = self.broker.check_config()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    harness.main(__file__)
