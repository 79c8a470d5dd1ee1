#!/usr/bin/env python3
"""F3 end to end: the SSH bastion inside jitgated.

The real OpenSSH client connects to jitgated's bastion as LOGIN@TARGET with the
person's own key; the bastion files the approval request (service "bastion"),
shows its status live through keyboard-interactive rounds, connects upstream
to a stock sshd (no jitgate code: it trusts the jitgate CA with
TrustedUserCAKeys) with a fresh key and the certificate the broker issued,
and relays the session while recording it. Recordings are read back with the
real `jitgate sessions` and `replay`, and the store is verified.

Usage: test_bastion.py --jitgated PATH --jitgate PATH [unittest args]
"""
import concurrent.futures
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SSH, Background, Broker, Sshd, read, run, write  # noqa: E402

APPROVERS = {"oncall": ["bob"]}
POLICIES = [
    # deploy on db1: approved by policy at once (most tests).
    {"name": "auto", "match": {"service": ["bastion"], "target_user": ["deploy"]},
     "approve": "auto", "reason": "none", "ttl": "10m"},
    # brief: approved for 4 seconds only (expiry).
    {"name": "brief", "match": {"service": ["bastion"], "target_user": ["brief"]},
     "approve": "auto", "reason": "none", "ttl": "4s"},
    # audited: a human approves, and a reason is required.
    {"name": "reasoned", "match": {"service": ["bastion"], "target_user": ["audited"]},
     "approvers": ["oncall"], "quorum": 1, "reason": "required", "timeout": "60s", "ttl": "10m"},
    # fwd: approved at once, and its certificate permits port and agent
    # forwarding (docs/bastion.md, "Forwarding").
    {"name": "forwarding", "match": {"service": ["bastion"], "target_user": ["fwd"]},
     "approve": "auto", "reason": "none", "ttl": "10m",
     "cert": {"extensions": ["permit-agent-forwarding", "permit-port-forwarding", "permit-pty"]}},
    # ops: a human approves.
    {"name": "human", "match": {"service": ["bastion"]},
     "approvers": ["oncall"], "quorum": 1, "reason": "optional", "timeout": "60s", "ttl": "10m"},
]
LOGINS = ("deploy", "brief", "ops", "audited", "fwd")
# A broker run as a system user of its own, as the packaged unit runs it, and
# the account its bastion sessions switch to.
BROKER_USER = "jgbroker"
RUN_AS = "jgbastion"
NO_CAPS = "0000000000000000"
SWITCH_CAPS = "00000000000000c0"  # CAP_SETGID (6) and CAP_SETUID (7)


class BastionTest(harness.IntegrationTest):
    needs = ("jitgated", "jitgate")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        harness.add_users("alice", "bob", "mallory", BROKER_USER, RUN_AS, *LOGINS)
        cls.cdir = tempfile.mkdtemp(prefix="bastion.", dir=harness.ROOT)
        os.chmod(cls.cdir, 0o755)
        cls.socket = os.path.join(cls.cdir, "jitgated.sock")
        cls.ca_key = os.path.join(cls.cdir, "ca")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "jitgate it ca", "-f",
             cls.ca_key])
        principals = "/etc/ssh/jitgate-principals"
        os.makedirs(principals, mode=0o755, exist_ok=True)
        for login in LOGINS:
            write(os.path.join(principals, login), login + "\n")
        cls.sshd = Sshd(os.path.join(cls.cdir, "sshd"), "sshd-bastion-target", harness.PAM_PERMIT,
                        extra_config="TrustedUserCAKeys %s.pub\nAuthorizedPrincipalsFile %s/%%u\n"
                        % (cls.ca_key, principals))
        cls.sshd.start()
        # The people's own keys; mallory's is not configured.
        cls.keys = {}
        for user in ("alice", "mallory"):
            k = os.path.join(cls.cdir, "id_" + user)
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", user + "@laptop", "-f", k])
            cls.keys[user] = k
        # carol has no configured key: a certificate from the people's CA.
        cls.people_ca = os.path.join(cls.cdir, "people_ca")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", cls.people_ca])
        for user, principal, validity in (("carol", "carol", "+10m"),
                                          ("expired", "carol", "20200101:20200102"),
                                          ("two", "carol,dave", "+10m")):
            k = os.path.join(cls.cdir, "id_" + user)
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k])
            run(["ssh-keygen", "-q", "-s", cls.people_ca, "-I", user, "-n", principal,
                 "-V", validity, k + ".pub"])
            cls.keys[user] = k
        cls.bastion_key = os.path.join(cls.cdir, "bastion_host_ed25519")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", cls.bastion_key])
        other = os.path.join(cls.cdir, "other_host")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other])
        cls.other_host = other
        cls.bastion_port = harness.free_port()
        cls.broker = Broker(os.path.join(cls.cdir, "broker"), APPROVERS, POLICIES,
                            socket_path=cls.socket,
                            ca={"key": cls.ca_key, "max_ttl": "1h", "clock_skew": "0s"},
                            extra=cls.bastion_section(cls.bastion_port, cls.bastion_key,
                                                      "nobody"))
        cls.broker.start()

    @classmethod
    def bastion_section(cls, port, host_key, run_as):
        target_key = read(cls.sshd.host_key + ".pub").split()
        other = cls.other_host
        return "\n".join([
            "bastion:",
            "  listen: 127.0.0.1:%d" % port,
            "  host_key: %s" % host_key,
            "  run_as: %s" % run_as,
            "  users:",
            "    alice: [%s]" % json.dumps(read(cls.keys["alice"] + ".pub").strip()),
            "  user_ca_keys: [%s]" % json.dumps(read(cls.people_ca + ".pub").strip()),
            "  targets:",
            "    db1: {address: 127.0.0.1, port: %d, host_key: %s}"
            % (cls.sshd.port, json.dumps(" ".join(target_key[:2]))),
            # The same server, but the bastion expects another key: an impostor.
            "    impostor: {address: 127.0.0.1, port: %d, host_key: %s}"
            % (cls.sshd.port, json.dumps(" ".join(read(other + ".pub").split()[:2]))),
        ])

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "broker"):
            cls.broker.stop()
        if hasattr(cls, "sshd"):
            cls.sshd.stop()

    def setUp(self):
        super().setUp()
        self.bg = []
        self.add_diag("jitgated log", lambda: read(self.broker.log_path)[-6000:])
        self.add_diag("sshd log", lambda: read(self.sshd.log_path)[-3000:])
        self.add_diag("clients", lambda: "\n".join(b.describe() for b in self.bg))

    def tearDown(self):
        for b in self.bg:
            b.kill()
        super().tearDown()

    # ---- helpers ----

    def ssh_argv(self, login, target="db1", command=None, user="alice", batch=True,
                 extra=(), port=None):
        argv = [SSH, "-p", str(port or self.bastion_port), "-i", self.keys[user],
                "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=INFO",
                "-o", "ConnectTimeout=10", "-F", "/dev/null"]
        if batch:
            argv += ["-o", "BatchMode=yes"]
        argv += list(extra)
        argv += ["-l", "%s@%s" % (login, target), "127.0.0.1"]
        if command is not None:
            argv.append(command)
        return argv

    def ssh(self, *args, timeout=60, **kw):
        return run(self.ssh_argv(*args, **kw), check=False, timeout=timeout)

    def cli(self, *args, check=True):
        return run([harness.BIN["jitgate"]] + list(args) + ["--store", self.broker.store_dir],
                   check=check)

    def sessions(self):
        return json.loads(self.cli("sessions", "--json").stdout)["sessions"]

    def session_for(self, command):
        found = [s for s in self.sessions() if s.get("command") == command]
        self.assertEqual(len(found), 1, self.sessions())
        return found[0]

    def raw_output(self, sid):
        p = subprocess.run([harness.BIN["jitgate"], "replay", sid, "--raw", "--no-safe",
                            "--store", self.broker.store_dir], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def mark(self):
        """Where the store stands now: its checkpointed size (which may lag
        behind what is appended) and the time."""
        return (self.broker.tree_size(), time.time_ns())

    def bastion_events(self, mark, want=1, timeout=30):
        """The bastion audit events appended since mark; waits until there are
        at least `want` of them."""
        start, since = mark
        deadline = time.monotonic() + timeout
        while True:
            found = [d for e in self.broker.entries(start=start) for d in harness._walk_json(e)
                     if d.get("type") == "bastion" and "bastion" in d and
                     d["time_unix_nanos"] >= since]
            if len(found) >= want or time.monotonic() > deadline:
                return found

    def wait_session(self, command, timeout=30):
        """Waits until the recorded session running command has started
        (forwards are relayed only alongside it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(s.get("command") == command for s in self.sessions()):
                return
            time.sleep(0.1)
        raise AssertionError("no session for %r after %d s" % (command, timeout))

    def wait_listening(self, port, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                time.sleep(0.1)
        raise AssertionError("nothing listens on 127.0.0.1:%d after %d s" % (port, timeout))

    def unprivileged_broker(self):
        """A second jitgated started the way the packaged unit starts it: as a
        system user of its own (BROKER_USER) holding only CAP_SETUID and
        CAP_SETGID, ambient and bounding, with no_new_privs; its bastion's
        run_as is another user (RUN_AS). Its files belong to its user, the CA
        key is a copy of the one the target trusts. Returns (broker, port)."""
        d = os.path.join(self.dir, "unprivileged")
        port = harness.free_port()
        os.makedirs(d)
        ca_key = os.path.join(d, "ca")
        host_key = os.path.join(d, "bastion_host_ed25519")
        for src, dst in ((self.ca_key, ca_key), (self.bastion_key, host_key)):
            shutil.copy(src, dst)
            shutil.copy(src + ".pub", dst + ".pub")
        b = Broker(d, APPROVERS, POLICIES,
                   ca={"key": ca_key, "max_ttl": "1h", "clock_skew": "0s"},
                   extra=self.bastion_section(port, host_key, RUN_AS))
        run(["chown", "-R", "%s:%s" % (BROKER_USER, BROKER_USER), d])
        self.add_diag("unprivileged jitgated log", lambda: read(b.log_path)[-6000:])
        self.addCleanup(b.stop)
        b.start(prefix=["setpriv", "--reuid=" + BROKER_USER, "--regid=" + BROKER_USER,
                        "--init-groups", "--inh-caps=+setuid,+setgid",
                        "--ambient-caps=+setuid,+setgid", "--bounding-set=-all,+setuid,+setgid",
                        "--no-new-privs", "--"])
        self.wait_listening(port).close()
        return b, port

    def session_pid(self, broker):
        """The pid of the one bastion session process of broker."""
        def find():
            found = [int(p) for p in os.listdir("/proc") if p.isdigit() and
                     proc_status(p).get("PPid") == str(broker.proc.pid)]
            return found[0] if len(found) == 1 else None
        return harness.wait_for(find, 15, "the bastion session process")

    # ---- tests ----

    def test_exec_passes_output_and_exit_status_and_is_recorded(self):
        cmd = "printf out-$((6*7)); printf err >&2; id -un; exit 7"
        p = self.ssh("deploy", command=cmd)
        self.assertEqual(p.returncode, 7, p.stderr)
        self.assertEqual(p.stdout, "out-42deploy\n")
        self.assertIn("err", p.stderr)
        s = self.session_for(cmd)
        self.assertEqual(s["recorder"], "bastion")
        self.assertEqual(s["user"], "alice")
        self.assertEqual(s["login"], "deploy")
        self.assertEqual(s["target"], "db1")
        self.assertEqual(s["exit_status"], 7)
        self.assertTrue(s["request_id"])
        self.assertGreater(s["cert_serial"], 0)
        raw = self.raw_output(s["id"])
        self.assertIn(b"out-42", raw)
        self.assertIn(b"err", raw)

    def test_exit_signal_is_passed(self):
        cmd = "kill -TERM $$"
        p = self.ssh("deploy", command=cmd)
        self.assertEqual(p.returncode, 255, p.stderr)
        s = self.session_for(cmd)
        self.assertEqual(s.get("exit_signal"), "TERM", s)

    def test_interactive_shell_through_a_pty_is_recorded(self):
        pexpect = self.need_pexpect()
        argv = self.ssh_argv("deploy", extra=("-tt",))
        child = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", timeout=30,
                              dimensions=(30, 100))
        child.expect(r"\$ ")
        child.sendline("stty size; echo typed-$((7*6))")
        child.expect_exact("30 100")
        child.expect_exact("typed-42")
        child.expect(r"\$ ")
        child.setwinsize(40, 120)
        time.sleep(0.3)
        child.sendline("stty size")
        child.expect_exact("40 120")
        child.sendline("exit 3")
        child.expect(pexpect.EOF)
        child.close()
        self.assertEqual(child.exitstatus, 3, child.before)
        s = [x for x in self.sessions() if x["command"] == "" and x["login"] == "deploy"][-1]
        self.assertEqual((s["cols"], s["rows"]), (100, 30))
        self.assertEqual(s["exit_status"], 3)
        cast = os.path.join(self.dir, "s.cast")
        self.cli("export", s["id"], "--format", "asciicast", "--out", cast)
        events = [json.loads(line) for line in read(cast).splitlines()[1:]]
        typed = "".join(e[2] for e in events if e[1] == "i")
        self.assertIn("stty size; echo typed-$((7*6))", typed)
        self.assertTrue(any(e[1] == "o" and "typed-42" in e[2] for e in events))
        self.assertTrue(any(e[1] == "r" and e[2] == "120x40" for e in events), events[-10:])
        times = [e[0] for e in events]
        self.assertEqual(times, sorted(times))

    def test_64_mib_of_output_arrive_and_are_recorded_intact(self):
        blob = os.path.join(self.cdir, "blob64")
        if not os.path.exists(blob):
            with open(blob, "wb") as f:
                f.write(os.urandom(64 << 20))
            os.chmod(blob, 0o644)
        want = hashlib.sha256(read_bytes(blob)).hexdigest()
        cmd = "cat %s" % blob
        p = subprocess.run(self.ssh_argv("deploy", command=cmd), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(hashlib.sha256(p.stdout).hexdigest(), want)
        s = self.session_for(cmd)
        self.assertEqual(s["bytes_out"], 64 << 20)
        self.assertEqual(hashlib.sha256(self.raw_output(s["id"])).hexdigest(), want)

    def test_input_is_relayed_and_recorded(self):
        data = os.urandom(3 << 20)
        cmd = "sha256sum"
        p = subprocess.run(self.ssh_argv("deploy", command=cmd), input=data,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split()[0].decode(), hashlib.sha256(data).hexdigest())
        s = self.session_for(cmd)
        self.assertEqual(s["bytes_in"], len(data))

    def test_approval_is_shown_live_and_then_the_session_runs(self):
        b = Background(self.ssh_argv("ops", command="echo approved-run", batch=False),
                       self.dir, "ssh-ops")
        self.bg.append(b)
        r = self.broker.wait_pending(approver="bob", user="alice")
        self.assertEqual(r["service"], "bastion")
        self.assertEqual(r["host"], "db1")
        self.assertEqual(r["target_user"], "ops")
        harness.wait_for(lambda: "waiting for approval" in b.stderr, 15,
                         "the waiting line in ssh's output")
        # More rounds than OpenSSH's 3 keyboard-interactive attempts: the
        # rounds are one attempt.
        harness.wait_for(lambda: "still waiting for approval (15 s)" in b.stderr, 30,
                         "four rounds of waiting")
        self.assertTrue(b.running())
        self.broker.approve("bob", r["id"])
        self.assertEqual(b.wait(30), 0, b.describe())
        self.assertEqual(b.stdout.strip(), "approved-run")
        s = self.session_for("echo approved-run")
        self.assertEqual(s["request_id"], r["id"])

    def test_a_required_reason_is_asked_in_the_terminal(self):
        pexpect = self.need_pexpect()
        argv = self.ssh_argv("audited", command="echo reasoned-run", batch=False)
        child = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", timeout=30)
        child.expect("Reason for bastion as audited on db1: ")
        child.sendline("fixing the replica")
        child.expect("waiting for approval")
        r = self.broker.wait_pending(approver="bob", user="alice", target_user="audited")
        self.assertEqual(r["reason"], "fixing the replica")
        self.broker.approve("bob", r["id"])
        child.expect_exact("reasoned-run")
        child.expect(pexpect.EOF)
        child.close()
        self.assertEqual(child.exitstatus, 0, child.before)

    def test_denied_request_ends_with_the_reason(self):
        b = Background(self.ssh_argv("ops", command="echo never", batch=False),
                       self.dir, "ssh-denied")
        self.bg.append(b)
        r = self.broker.wait_pending(approver="bob", user="alice")
        self.broker.deny("bob", r["id"], comment="not now")
        self.assertEqual(b.wait(30), 255, b.describe())
        self.assertIn("denied", b.stderr)
        self.assertIn("not now", b.stderr)
        self.assertNotIn("never", b.stdout)

    def test_unknown_target_is_refused_with_a_message(self):
        p = self.ssh("deploy", target="nowhere", command="true", batch=False)
        self.assertEqual(p.returncode, 255)
        self.assertIn("unknown target 'nowhere'", p.stderr)
        # A client in BatchMode never asks for the line: the log has it.
        p = self.ssh("deploy", target="elsewhere", command="true")
        self.assertEqual(p.returncode, 255)
        self.assertIn("Permission denied", p.stderr)
        harness.wait_for(
            lambda: "as deploy@elsewhere refused: jitgate: unknown target 'elsewhere' (targets: "
                    in read(self.broker.log_path), 10, "the refusal in the broker's log")
        self.assertIn("(not shown: the client did not go on to keyboard-interactive)",
                      read(self.broker.log_path))

    def test_a_key_that_is_not_configured_is_refused(self):
        p = self.ssh("deploy", command="true", user="mallory")
        self.assertEqual(p.returncode, 255)
        self.assertIn("Permission denied", p.stderr)

    def test_a_certificate_from_the_people_ca_names_the_person(self):
        cmd = "echo via-certificate"
        p = self.ssh("deploy", command=cmd, user="carol")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "via-certificate\n")
        self.assertEqual(self.session_for(cmd)["user"], "carol")
        # Expired, or more than one principal: not a person the bastion knows.
        for user in ("expired", "two"):
            p = self.ssh("deploy", command="echo never", user=user)
            self.assertEqual(p.returncode, 255, user)
            self.assertIn("Permission denied", p.stderr)

    def test_upstream_host_key_mismatch_is_refused(self):
        p = self.ssh("deploy", target="impostor", command="echo leaked", batch=False)
        self.assertEqual(p.returncode, 255)
        self.assertIn("does not match the pinned key", p.stderr)
        self.assertNotIn("leaked", p.stdout)

    def test_session_ends_when_the_approval_expires(self):
        start = time.time()
        p = self.ssh("brief", command="sleep 60; echo too-long", timeout=60)
        self.assertLess(time.time() - start, 30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("expired", p.stderr)
        self.assertNotIn("too-long", p.stdout)
        s = self.session_for("sleep 60; echo too-long")
        self.assertEqual(s["end_reason"], "expired")

    def test_terminate_ends_a_live_session(self):
        cmd = "echo started; sleep 60; echo not-terminated"
        b = Background(self.ssh_argv("deploy", command=cmd), self.dir, "ssh-terminated")
        self.bg.append(b)
        harness.wait_for(lambda: "started" in b.stdout, 30, "the session to start")

        def live():
            found = [s for s in self.sessions() if s["command"] == cmd and not s["ended"]]
            return found[0] if found else None
        s = harness.wait_for(live, 15, "the live session in the store")
        # alice is not an approver of the request (policy auto): refused.
        p = self.broker.cli("alice", "terminate", s["id"])
        self.assertNotEqual(p.returncode, 0)
        self.assertTrue(b.running())
        p = self.broker.cli("root", "terminate", s["id"], "--comment", "done")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotEqual(b.wait(30), 0)
        self.assertIn("session terminated by root: done", b.stderr)
        self.assertNotIn("not-terminated", b.stdout)
        [s] = [x for x in self.sessions() if x["command"] == cmd]
        self.assertEqual(s["end_reason"], "terminated")
        self.assertIn(b"terminated by root", self.raw_output(s["id"]))

    def test_reload_keeps_live_sessions_and_new_connections_see_the_new_config(self):
        """SIGHUP while a bastion session runs: the session goes on to its end;
        a target added by the reload works for the next connection; a bad file
        is refused and new connections keep the last good configuration."""
        original = read(self.broker.config)
        log_mark = len(read(self.broker.log_path))

        def reload(text, logged):
            harness.write(self.broker.config, text)
            self.broker.proc.send_signal(signal.SIGHUP)
            harness.wait_for(lambda: logged in read(self.broker.log_path)[log_mark:], 15,
                             "'%s' in the broker's log" % logged)

        try:
            cmd = "echo started; sleep 3; echo finished"
            b = Background(self.ssh_argv("deploy", command=cmd), self.dir, "ssh-across-reload")
            self.bg.append(b)
            harness.wait_for(lambda: "started" in b.stdout, 30, "the session to start")
            db1 = "    db1: {address: 127.0.0.1,"
            self.assertIn(db1, original)
            with_db2 = original.replace(db1, db1.replace("db1", "db2", 1) + original.split(db1, 1)[1]
                                        .split("\n", 1)[0] + "\n" + db1, 1)
            reload(with_db2, "configuration reloaded")
            p = self.ssh("deploy", target="db2", command="echo via-db2")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, "via-db2\n")
            self.assertEqual(b.wait(30), 0, b.describe())
            self.assertEqual(b.stdout, "started\nfinished\n")

            log_mark = len(read(self.broker.log_path))
            reload(with_db2 + "bastion_typo: 1\n", "reload refused")
            p = self.ssh("deploy", target="db2", command="echo still-db2")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, "still-db2\n")
        finally:
            log_mark = len(read(self.broker.log_path))
            reload(original, "configuration reloaded")
        p = self.ssh("deploy", target="db2", command="true")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("db2", p.stderr)

    def test_losing_the_target_ends_the_session_with_a_message(self):
        cmd = "echo started; sleep 60"
        b = Background(self.ssh_argv("deploy", command=cmd), self.dir, "ssh-lost")
        self.bg.append(b)
        harness.wait_for(lambda: "started" in b.stdout, 30, "the session to start")
        # The target's sshd processes for this login (only ours run now).
        p = run(["pkill", "-KILL", "-f", "^sshd-bastion-target: deploy"], check=False)
        self.assertEqual(p.returncode, 0, "no sshd process for deploy found")
        self.assertNotEqual(b.wait(30), 0)
        self.assertIn("the connection to db1 was lost", b.stderr)
        s = self.session_for(cmd)
        self.assertEqual(s["end_reason"], "target connection lost")

    def test_local_port_forward_is_relayed_and_audited_when_the_policy_permits_it(self):
        echo = EchoServer()
        self.addCleanup(echo.close)
        local = harness.free_port()
        start = self.mark()
        cmd = "sleep 60 # forward"
        b = Background(self.ssh_argv("fwd", command=cmd, extra=(
            "-o", "ExitOnForwardFailure=yes", "-L", "%d:127.0.0.1:%d" % (local, echo.port))),
            self.dir, "ssh-forward")
        self.bg.append(b)
        self.wait_session(cmd)
        payload = os.urandom(3 << 20)
        got = echo_through(self.wait_listening(local), payload)
        self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(payload).hexdigest())
        events = self.bastion_events(start, want=2)
        kinds = [e["bastion"]["event"] for e in events]
        self.assertIn("forward_opened", kinds, events)
        self.assertIn("forward_closed", kinds, events)
        opened = events[kinds.index("forward_opened")]
        closed = events[kinds.index("forward_closed")]
        self.assertEqual(opened["actor"], "alice")
        self.assertEqual(opened["bastion"]["ssh_user"], "fwd@db1")
        self.assertIn("direct-tcpip to 127.0.0.1:%d" % echo.port, opened["comment"])
        self.assertIn("%d bytes from the client, %d bytes from the target" %
                      (len(payload), len(payload)), closed["comment"])
        # The forward belongs to the recorded session and its approval.
        sid = self.session_for(cmd)["id"]
        self.assertEqual(opened["session"], sid)
        self.assertEqual(closed["session"], sid)
        self.assertTrue(opened["request"])
        b.kill()

    def test_remote_port_forward_is_relayed_when_the_policy_permits_it(self):
        echo = EchoServer()
        self.addCleanup(echo.close)
        remote = harness.free_port()
        start = self.mark()
        cmd = "sleep 60 # remote"
        b = Background(self.ssh_argv("fwd", command=cmd, extra=(
            "-o", "ExitOnForwardFailure=yes", "-R", "%d:127.0.0.1:%d" % (remote, echo.port))),
            self.dir, "ssh-remote-forward")
        self.bg.append(b)
        # The target's sshd listens on `remote`; what connects there reaches
        # the echo service on the client's side.
        self.wait_session(cmd)
        payload = os.urandom(1 << 20)
        got = echo_through(self.wait_listening(remote), payload)
        self.assertEqual(got, payload)
        events = self.bastion_events(start, want=3)
        comments = [e["comment"] for e in events if e["bastion"]["event"] == "forward_opened"]
        self.assertTrue(any("tcpip-forward on the target's" in c and str(remote) in c
                            for c in comments), events)
        self.assertTrue(any(c.startswith("forwarded-tcpip from") for c in comments), events)
        b.kill()

    def test_port_forwarding_is_refused_and_audited_without_the_policy(self):
        echo = EchoServer()
        self.addCleanup(echo.close)
        local = harness.free_port()
        start = self.mark()
        cmd = "sleep 60 # no forward"
        b = Background(self.ssh_argv("deploy", command=cmd, extra=(
            "-L", "%d:127.0.0.1:%d" % (local, echo.port))), self.dir, "ssh-no-forward")
        self.bg.append(b)
        self.wait_session(cmd)
        try:
            got = echo_through(self.wait_listening(local), b"must not arrive")
        except ConnectionResetError:
            got = b""  # ssh closed the connection it could not forward
        self.assertEqual(got, b"")
        events = self.bastion_events(start)
        self.assertEqual([e["bastion"]["event"] for e in events], ["forward_refused"], events)
        self.assertIn("permit-port-forwarding", events[0]["comment"])
        self.assertEqual(events[0]["bastion"]["ssh_user"], "deploy@db1")
        b.kill()
        self.assertIn("open failed", b.stderr)

    def test_agent_forwarding_follows_the_policy(self):
        agent_sock = os.path.join(self.dir, "agent.sock")
        agent = subprocess.Popen(["ssh-agent", "-D", "-a", agent_sock],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (agent.kill(), agent.wait()))
        deadline = time.monotonic() + 10
        while not os.path.exists(agent_sock) and time.monotonic() < deadline:
            time.sleep(0.05)
        env = dict(os.environ, SSH_AUTH_SOCK=agent_sock)
        run(["ssh-add", self.keys["mallory"]], env=env)
        fp = run(["ssh-keygen", "-lf", self.keys["mallory"] + ".pub"]).stdout.split()[1]
        start = self.mark()
        p = subprocess.run(self.ssh_argv("fwd", command="ssh-add -l", extra=("-A",)), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(fp, p.stdout)
        events = self.bastion_events(start)
        self.assertEqual([e["bastion"]["event"] for e in events], ["agent_forwarded"], events)
        # Without permit-agent-forwarding the target sees no agent.
        start = self.mark()
        p = subprocess.run(self.ssh_argv("deploy", command="ssh-add -l", extra=("-A",)),
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertNotIn(fp, p.stdout)
        events = self.bastion_events(start)
        self.assertEqual([e["bastion"]["event"] for e in events], ["forward_refused"], events)
        self.assertIn("permit-agent-forwarding", events[0]["comment"])

    def test_refused_logins_are_audited(self):
        start = self.mark()
        p = self.ssh("deploy", target="nowhere", command="true", batch=False)
        self.assertEqual(p.returncode, 255)
        p = self.ssh("deploy", command="true", user="mallory")
        self.assertEqual(p.returncode, 255)
        events = self.bastion_events(start, want=2)
        self.assertEqual([e["bastion"]["event"] for e in events],
                         ["login_refused", "login_refused"], events)
        unknown, stranger = events
        self.assertEqual(unknown["actor"], "alice")
        self.assertEqual(unknown["bastion"]["ssh_user"], "deploy@nowhere")
        self.assertIn("unknown target 'nowhere'", unknown["comment"])
        self.assertEqual(unknown["bastion"]["remote_addr"], "127.0.0.1")
        fp = run(["ssh-keygen", "-lf", self.keys["mallory"] + ".pub"]).stdout.split()[1]
        self.assertEqual(stranger["actor"], "")
        self.assertEqual(stranger["bastion"]["ssh_user"], "deploy@db1")
        self.assertIn(fp, stranger["comment"])
        self.assertIn("not a bastion user's key", stranger["comment"])

    def test_a_broker_without_root_runs_sessions_as_run_as_with_no_capability(self):
        """The packaged unit's case: jitgated as its own user with ambient
        CAP_SETUID and CAP_SETGID. The broker lowers them from its effective
        set; the session process switches to run_as and keeps nothing."""
        b, port = self.unprivileged_broker()
        cmd = "echo started; sleep 60"
        c = Background(self.ssh_argv("deploy", command=cmd, port=port), self.dir, "ssh-caps")
        self.bg.append(c)
        harness.wait_for(lambda: "started" in c.stdout, 30, "the session to start")
        st = proc_status(self.session_pid(b))
        run_as = pwd.getpwnam(RUN_AS)
        self.assertEqual(st["Uid"].split(), [str(run_as.pw_uid)] * 4, st)
        self.assertEqual(st["Gid"].split(), [str(run_as.pw_gid)] * 4, st)
        self.assertEqual(st["Groups"].strip(), "", st)
        for field in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
            self.assertEqual(st[field], NO_CAPS, (field, st))
        self.assertEqual(st["NoNewPrivs"], "1", st)
        broker = proc_status(b.proc.pid)
        self.assertEqual(broker["Uid"].split(), [str(pwd.getpwnam(BROKER_USER).pw_uid)] * 4)
        self.assertEqual(broker["CapEff"], NO_CAPS, broker)  # lowered at start
        self.assertEqual(broker["CapPrm"], SWITCH_CAPS, broker)
        self.assertEqual(broker["CapAmb"], SWITCH_CAPS, broker)
        self.assertNotIn("runs as the broker's own user", read(b.log_path))
        c.kill()

    def test_stopping_a_broker_without_root_ends_its_sessions_it_may_not_signal(self):
        """A non-root broker may not signal a session of another uid (EPERM):
        it shuts the session's connection down instead, and stops promptly."""
        b, port = self.unprivileged_broker()
        cmd = "echo started; sleep 60"
        c = Background(self.ssh_argv("deploy", command=cmd, port=port), self.dir, "ssh-stop")
        self.bg.append(c)
        harness.wait_for(lambda: "started" in c.stdout, 30, "the session to start")
        pid = self.session_pid(b)
        start = time.monotonic()
        self.assertEqual(b.stop(), 0, read(b.log_path))
        # Well inside the 5 s grace: the session ended by itself, not by
        # a SIGKILL (which would fail too).
        self.assertLess(time.monotonic() - start, 5)
        self.assertEqual(proc_status(pid), {})
        log = read(b.log_path)
        self.assertIn("session pid %d runs as another user and may not be signalled" % pid, log)
        self.assertIn("bastion session pid %d from" % pid, log)
        self.assertNotIn("killing", log)
        self.assertNotEqual(c.wait(30), 0)
        # The broker served the session until it ended: its end is recorded.
        self.assertNotIn("end not recorded", log)
        self.assert_ended_in(b, cmd)

    def assert_ended_in(self, broker, command):
        """broker's store holds the session of command, ended."""
        p = run([harness.BIN["jitgate"], "sessions", "--json", "--store", broker.store_dir])
        found = [s for s in json.loads(p.stdout)["sessions"] if s.get("command") == command]
        self.assertEqual(len(found), 1, p.stdout)
        self.assertTrue(found[0]["ended"], found[0])
        return found[0]

    def test_stopping_the_broker_ends_live_sessions_and_records_their_ends(self):
        # A root broker of its own (the class's broker serves the other tests).
        d = os.path.join(self.dir, "stopping")
        port = harness.free_port()
        b = Broker(d, APPROVERS, POLICIES,
                   ca={"key": self.ca_key, "max_ttl": "1h", "clock_skew": "0s"},
                   extra=self.bastion_section(port, self.bastion_key, "nobody"))
        self.add_diag("stopping jitgated log", lambda: read(b.log_path)[-6000:])
        self.addCleanup(b.stop)
        b.start()
        self.wait_listening(port).close()
        cmd = "echo started-before-stop; sleep 60"
        c = Background(self.ssh_argv("deploy", command=cmd, port=port), self.dir, "ssh-root-stop")
        self.bg.append(c)
        harness.wait_for(lambda: "started-before-stop" in c.stdout, 30, "the session to start")
        start = time.monotonic()
        self.assertEqual(b.stop(), 0, read(b.log_path))
        self.assertLess(time.monotonic() - start, 5)
        self.assertNotEqual(c.wait(30), 0)
        self.assertIn("jitgate: the bastion is stopping; the session is closed", c.stderr,
                      c.describe())
        log = read(b.log_path)
        self.assertNotIn("end not recorded", log)
        self.assertNotIn("killing", log)
        self.assertEqual(self.assert_ended_in(b, cmd)["end_reason"], "bastion stopped")

    def test_fifty_concurrent_sessions_complete_and_the_store_verifies(self):
        def one(i):
            cmd = "echo concurrent-%d; head -c %d /dev/zero | wc -c" % (i, 100000 + i)
            p = run(self.ssh_argv("deploy", command=cmd), check=False, timeout=240)
            return i, p
        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(one, range(50)))
        bad = ["session %d: rc %d stdout %r stderr %r" % (i, p.returncode, p.stdout, p.stderr)
               for i, p in results
               if p.returncode != 0 or p.stdout != "concurrent-%d\n%d\n" % (i, 100000 + i)]
        # A refused login says why only in the broker's log (BatchMode shows
        # no keyboard-interactive line).
        refused = [line for line in read(self.broker.log_path).splitlines() if " refused" in line]
        self.assertEqual(bad, [], "\n".join(refused))
        ours = [s for s in self.sessions() if s["command"].startswith("echo concurrent-")]
        self.assertEqual(len(ours), 50)
        self.assertTrue(all(s["ended"] and s["exit_status"] == 0 for s in ours))
        v = run([harness.BIN["jitgate"], "verify", "--store", self.broker.store_dir,
                 "--key", self.broker.pub], check=False)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)


def proc_status(pid):
    """/proc/PID/status as a dict of its fields ({} once the process is gone)."""
    try:
        with open("/proc/%s/status" % pid) as f:
            return dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)
    except OSError:
        return {}


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


class EchoServer:
    """A TCP echo service on 127.0.0.1 (what a forward reaches)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn):
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)

    def close(self):
        self.sock.close()


def echo_through(conn, payload):
    """Sends payload on conn, shuts down writing, returns all that comes back."""
    def send():
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=send, daemon=True)
    t.start()
    got = bytearray()
    conn.settimeout(60)
    while True:
        data = conn.recv(65536)
        if not data:
            break
        got += data
    t.join(60)
    conn.close()
    return bytes(got)


if __name__ == "__main__":
    harness.main(__file__)
