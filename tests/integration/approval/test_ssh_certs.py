#!/usr/bin/env python3
"""F4 end to end: short-lived OpenSSH certificates from jitgated's CA.

A real jitgated with a CA key made by the real ssh-keygen, requesters running
the real `jitgate request` under their own uid, approvers using the real CLI,
and a stock sshd (no jitgate code in it: PAM permits everything) that trusts
the CA with TrustedUserCAKeys, AuthorizedPrincipalsFile and RevokedKeys
pointing at the broker's KRL. Certificates are checked with the real
ssh-keygen (-L, -Q) and used with the real ssh.

Usage: test_ssh_certs.py --jitgated PATH --jitgate PATH [unittest args]
"""
import calendar
import json
import os
import re
import stat
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SSH, Background, Broker, Sshd, read, run, write  # noqa: E402

APPROVERS = {"oncall": ["bob", "carol"]}
POLICIES = [
    # erin's certificates are approved by policy, at once.
    {"name": "auto-certs", "match": {"service": ["ssh-cert"], "user": ["erin"]},
     "approve": "auto", "reason": "none", "ttl": "10m"},
    # frank's certificates run one command, whatever he asks for.
    {"name": "forced", "match": {"service": ["ssh-cert"], "user": ["frank"]},
     "approve": "auto", "reason": "none", "ttl": "10m",
     "cert": {"force_command": "/bin/echo forced-by-policy",
              "extensions": ["permit-pty"]}},
    # everyone else: a human approves.
    {"name": "prod-certs", "match": {"service": ["ssh-cert"]},
     "approvers": ["oncall"], "quorum": 1, "reason": "optional", "timeout": "60s",
     "ttl": "10m"},
]
LOGIN = "deploy"  # the shared account certificates are requested for


class SshCertTest(harness.IntegrationTest):
    needs = ("jitgated", "jitgate")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        harness.add_users("alice", "bob", "carol", "erin", "frank", "mallory", LOGIN)
        cls.cdir = tempfile.mkdtemp(prefix="certs.", dir=harness.ROOT)
        os.chmod(cls.cdir, 0o755)
        cls.socket = os.path.join(cls.cdir, "jitgated.sock")
        # The CA key, made by the real ssh-keygen, readable by the broker only.
        cls.ca_key = os.path.join(cls.cdir, "ca")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "jitgate it ca", "-f",
             cls.ca_key])
        cls.krl = os.path.join(cls.cdir, "ca.krl")
        # sshd insists that the whole path is root-owned and not writable by
        # others (StrictModes): the private /etc, not the temporary directory.
        principals = "/etc/ssh/jitgate-principals"
        os.makedirs(principals, mode=0o755, exist_ok=True)
        cls.principals = principals
        # deploy accepts the principal "deploy"; alice accepts only "alice".
        write(os.path.join(principals, LOGIN), LOGIN + "\n")
        write(os.path.join(principals, "alice"), "alice\n")
        cls.broker_dir = os.path.join(cls.cdir, "broker")
        cls.broker = Broker(cls.broker_dir, APPROVERS, POLICIES, socket_path=cls.socket,
                            ca={"key": cls.ca_key, "max_ttl": "1h", "krl": cls.krl,
                                "clock_skew": "0s"})
        cls.broker.start()
        extra = ("TrustedUserCAKeys %s.pub\n"
                 "AuthorizedPrincipalsFile %s/%%u\n"
                 "RevokedKeys %s\n" % (cls.ca_key, principals, cls.krl))
        cls.sshd = Sshd(os.path.join(cls.cdir, "sshd"), "sshd-certs", harness.PAM_PERMIT,
                        extra_config=extra)
        cls.sshd.start()

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "sshd"):
            cls.sshd.stop()
        if hasattr(cls, "broker"):
            cls.broker.stop()

    def setUp(self):
        super().setUp()
        self.bg = []
        self.add_diag("jitgated log", lambda: read(self.broker.log_path))
        self.add_diag("sshd log", lambda: read(self.sshd.log_path)[-4000:])
        self.add_diag("clients", lambda: "\n".join(b.describe() for b in self.bg))

    def tearDown(self):
        for b in self.bg:
            b.kill()
        super().tearDown()

    # ---- helpers ----

    def home(self, user):
        import pwd
        return pwd.getpwnam(user).pw_dir

    def request(self, user, *args, name=None, env=None):
        """`jitgate request` as user, in the background."""
        argv = harness.as_user(user, [harness.BIN["jitgate"], "request", "--host", "db1",
                                      "--socket", self.socket] + list(args))
        e = harness.user_env(user)
        e.update(env or {})
        b = Background(argv, self.dir, name or "request-%s-%d" % (user, len(self.bg)), env=e,
                       cwd="/")
        self.bg.append(b)
        return b

    def request_now(self, user, *args, env=None):
        """An auto-approved request; returns (key path, certificate path)."""
        out = os.path.join(self.home(user), "jg-%d" % len(self.bg))
        b = self.request(user, "--login", LOGIN, "--out", out, *args, env=env)
        rc = b.wait(30)
        self.assertEqual(rc, 0, b.describe())
        return out, out + "-cert.pub"

    def ssh(self, user, key, login=LOGIN, command="id -un", extra=()):
        argv = harness.as_user(user, [SSH, "-p", str(self.sshd.port), "-i", key,
                                      "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                                      "-o", "StrictHostKeyChecking=no",
                                      "-o", "UserKnownHostsFile=/dev/null",
                                      "-o", "ConnectTimeout=10", "-F", "/dev/null"]
                               + list(extra) + ["%s@127.0.0.1" % login, command])
        return run(argv, check=False, env=harness.user_env(user), cwd="/")

    def keygen_fields(self, cert_path):
        """`ssh-keygen -L` of a certificate, as {field: value or [lines]}."""
        p = run(["ssh-keygen", "-L", "-f", cert_path], env={"TZ": "UTC", "PATH": "/usr/bin:/bin"})
        fields, current = {}, None
        for line in p.stdout.splitlines()[1:]:
            m = re.match(r"^        (\S[^:]*):(?: (.*))?$", line)
            if m:
                current = m.group(1)
                value = (m.group(2) or "").strip()
                fields[current] = value if value else []
            elif current is not None and isinstance(fields[current], list):
                fields[current].append(line.strip())
        return fields, p.stdout

    def serial_of(self, cert_path):
        return int(self.keygen_fields(cert_path)[0]["Serial"])

    # ---- tests ----

    def test_approved_certificate_logs_in_for_the_approved_login_only(self):
        out = os.path.join(self.home("alice"), "jg")
        c = self.request("alice", "--login", LOGIN, "--reason", "INC-7 db restart", "--ttl", "5m",
                         "--out", out)
        r = self.broker.wait_pending(approver="bob", user="alice", service="ssh-cert")
        self.assertEqual(r["target_user"], LOGIN)
        self.assertEqual(r["host"], "db1")
        # The approver sees the key (and its fingerprint) being certified.
        shown = self.broker.cli("bob", "show", r["id"], check=True).stdout
        self.assertIn("SHA256:", shown)
        self.assertTrue(c.running(), c.describe())
        self.assertFalse(os.path.exists(out), "key written before the approval")
        self.broker.approve("bob", r["id"], "go")
        self.assertEqual(c.wait(30), 0, c.describe())
        self.assertIn("ssh -i %s %s@db1" % (out, LOGIN), c.stdout)

        # Private key 0600 and owned by alice; the certificate next to it.
        st = os.stat(out)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        import pwd
        self.assertEqual(st.st_uid, pwd.getpwnam("alice").pw_uid)
        cert = out + "-cert.pub"
        fields, keygen_text = self.keygen_fields(cert)
        self.assertEqual(fields["Type"].split()[0], "ssh-ed25519-cert-v01@openssh.com")
        self.assertEqual(fields["Type"].split()[1], "user")
        self.assertEqual(fields["Principals"], [LOGIN])
        self.assertEqual(fields["Key ID"], '"jitgate:%s:bob"' % r["id"])
        self.assertEqual(fields["Critical Options"], "(none)")
        self.assertEqual(fields["Extensions"], ["permit-pty"])
        # Valid for the 5 minutes asked for (clock_skew 0s here).
        m = re.match(r"from (\S+) to (\S+)", fields["Valid"])
        t0 = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
        t1 = calendar.timegm(time.strptime(m.group(2), "%Y-%m-%dT%H:%M:%S"))
        self.assertEqual(t1 - t0, 300)
        # `jitgate cert show` prints what ssh-keygen -L prints.
        shown = run([harness.BIN["jitgate"], "cert", "show", cert, "--utc"])
        self.assertEqual(shown.stdout, keygen_text)
        # The CA key in the certificate is the one sshd trusts.
        ca_fp = run(["ssh-keygen", "-l", "-f", self.ca_key + ".pub"]).stdout.split()[1]
        self.assertIn(ca_fp, fields["Signing CA"])

        p = self.ssh("alice", out)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), LOGIN)
        # The same certificate is not good for another account.
        p = self.ssh("alice", out, login="alice")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Permission denied", p.stderr)

        # Audit: issued, with serial, key id, principal and the key's fingerprint.
        events = harness.audit_events(self.broker_entries(), r["id"])
        issued = [e for e in events if e["type"] == "cert_issued"]
        self.assertEqual(len(issued), 1, events)
        fp = run(["ssh-keygen", "-l", "-f", cert]).stdout.split()[1]
        self.assertEqual(issued[0]["cert"]["fingerprint"], fp)
        self.assertEqual(issued[0]["cert"]["serial"], self.serial_of(cert))
        self.assertEqual(issued[0]["cert"]["principals"], [LOGIN])
        self.assertEqual([e["type"] for e in events][-2:], ["cert_issued", "used"])

    def broker_entries(self):
        """The store's entries while the broker keeps running."""
        return self.broker.entries()

    def test_denied_timeout_and_broker_down_leave_no_key(self):
        out = os.path.join(self.home("mallory"), "jg")
        c = self.request("mallory", "--login", LOGIN, "--out", out)
        r = self.broker.wait_pending(approver="bob", user="mallory", service="ssh-cert")
        self.broker.deny("bob", r["id"], "not you")
        self.assertEqual(c.wait(30), 1, c.describe())
        self.assertIn("denied by bob", c.stderr)
        self.assertIn("not you", c.stderr)
        # The request waits no longer than --timeout.
        t = self.request("mallory", "--login", LOGIN, "--out", out, "--timeout", "2s")
        self.assertEqual(t.wait(30), 1, t.describe())
        self.assertNotEqual(t.stderr.strip(), "")
        # Broker down: a socket nobody listens on.
        argv = harness.as_user("mallory", [harness.BIN["jitgate"], "request", "--host", "db1",
                                           "--login", LOGIN, "--out", out,
                                           "--socket", os.path.join(self.dir, "none.sock")])
        p = run(argv, check=False, env=harness.user_env("mallory"), cwd="/")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("unreachable", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        for path in (out, out + "-cert.pub", out + ".pub"):
            self.assertFalse(os.path.exists(path), path + " was left behind")

    def test_expired_certificate_is_refused(self):
        key, cert = self.request_now("erin", "--ttl", "2s")
        fields, _ = self.keygen_fields(cert)
        m = re.match(r"from (\S+) to (\S+)", fields["Valid"])
        end = calendar.timegm(time.strptime(m.group(2), "%Y-%m-%dT%H:%M:%S"))
        self.assertLessEqual(end - time.time(), 2.5)
        time.sleep(max(0.0, end - time.time()) + 1.0)
        p = self.ssh("erin", key)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("Permission denied", p.stderr)
        self.assertIn("expired", read(self.sshd.log_path))

    def test_source_address_binds_the_certificate_to_the_client(self):
        key, cert = self.request_now("erin", "--source-address", "127.0.0.2")
        fields, _ = self.keygen_fields(cert)
        self.assertEqual(fields["Critical Options"], ["source-address 127.0.0.2"])
        p = self.ssh("erin", key)  # from 127.0.0.1
        self.assertNotEqual(p.returncode, 0, p.stdout)
        p = self.ssh("erin", key, extra=["-b", "127.0.0.2"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), LOGIN)
        # An address that is not one is refused before anything is filed.
        out = os.path.join(self.home("erin"), "bad")
        b = self.request("erin", "--login", LOGIN, "--out", out, "--source-address", "db1.lan")
        self.assertEqual(b.wait(30), 1, b.describe())
        self.assertIn("not an IP address", b.stderr)
        self.assertFalse(os.path.exists(out))

    def test_policy_forces_the_command(self):
        key, cert = self.request_now("frank")
        fields, _ = self.keygen_fields(cert)
        self.assertEqual(fields["Critical Options"], ["force-command /bin/echo forced-by-policy"])
        p = self.ssh("frank", key, command="id -un")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "forced-by-policy")

    def test_revoked_certificate_is_refused_via_the_krl(self):
        key, cert = self.request_now("erin")
        key2, cert2 = self.request_now("erin")
        self.assertEqual(self.ssh("erin", key).returncode, 0)
        serial = self.serial_of(cert)
        self.assertEqual(self.serial_of(cert2), serial + 1)  # serials only grow
        # Someone who may not see it cannot revoke it.
        p = self.broker.cli("mallory", "revoke", str(serial), "--comment", "x")
        self.assertEqual(p.returncode, 1)
        # An approver of its policy may... but erin's policy is auto: root may.
        p = self.broker.cli("root", "revoke", str(serial), "--comment", "laptop lost")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(str(serial), p.stdout)
        # The KRL is written before the answer: the next login is refused.
        q = run(["ssh-keygen", "-Q", "-f", self.krl, cert], check=False)
        self.assertIn("REVOKED", q.stdout + q.stderr)
        q = run(["ssh-keygen", "-Q", "-f", self.krl, cert2], check=False)
        self.assertEqual(q.returncode, 0, q.stdout + q.stderr)
        p = self.ssh("erin", key)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertEqual(self.ssh("erin", key2).returncode, 0)
        # The owner revokes her own certificate by request id.
        certs = json.loads(self.broker.cli("erin", "certs", "--json", check=True).stdout)
        mine = [x for x in certs["certs"] if x["serial"] == serial + 1]
        self.assertEqual(len(mine), 1, certs)
        p = self.broker.cli("erin", "revoke", mine[0]["request"], "--comment", "done")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotEqual(self.ssh("erin", key2).returncode, 0)
        # Audit: both revocations, by whom.
        revoked = [e for e in harness._walk_json(self.broker.entries())
                   if e.get("type") == "cert_revoked"]
        by = {e["cert"]["serial"]: e["actor"] for e in revoked}
        self.assertEqual(by.get(serial), "root")
        self.assertEqual(by.get(serial + 1), "erin")

    def test_host_certificate_and_cert_authority_line(self):
        # Root signs the host key of a second sshd; a client that trusts the
        # CA for *.it.test accepts it under that name, with no known_hosts
        # entry for the key itself.
        hdir = os.path.join(self.dir, "hostcert")
        sshd = Sshd(hdir, "sshd-hostcert", harness.PAM_PERMIT,
                    extra_config="HostCertificate %s-cert.pub\n"
                                 "TrustedUserCAKeys %s.pub\n"
                                 "AuthorizedPrincipalsFile %s/%%u\n"
                                 "RevokedKeys %s\n" % (os.path.join(hdir, "host_ed25519"),
                                                       self.ca_key, self.principals, self.krl))
        p = self.broker.cli("alice", "ca", "sign-host", "--key",
                            os.path.join(hdir, "host_ed25519.pub"), "--principals", "db9.it.test")
        self.assertEqual(p.returncode, 1, "alice may not sign host keys: " + p.stdout)
        p = self.broker.cli("root", "ca", "sign-host", "--key",
                            os.path.join(hdir, "host_ed25519.pub"),
                            "--principals", "db9.it.test,db9", "--validity", "1d")
        self.assertEqual(p.returncode, 0, p.stderr)
        fields, _ = self.keygen_fields(os.path.join(hdir, "host_ed25519-cert.pub"))
        self.assertEqual(fields["Type"].split()[1], "host")
        self.assertEqual(fields["Principals"], ["db9.it.test", "db9"])
        sshd.start()
        self.add_diag("hostcert sshd log", lambda: read(sshd.log_path)[-3000:])
        try:
            line = self.broker.cli("root", "ca", "known-hosts", "*.it.test", check=True).stdout
            self.assertTrue(line.startswith("@cert-authority *.it.test ssh-ed25519 "), line)
            known = os.path.join(self.dir, "known_hosts")
            write(known, line)
            key, _ = self.request_now("erin")

            def connect(known_hosts):
                argv = harness.as_user("erin", [
                    SSH, "-p", str(sshd.port), "-i", key, "-o", "IdentitiesOnly=yes",
                    "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                    "-o", "UserKnownHostsFile=" + known_hosts, "-o", "HostKeyAlias=db9.it.test",
                    "-o", "ConnectTimeout=10", "-F", "/dev/null",
                    "%s@127.0.0.1" % LOGIN, "id -un"])
                return run(argv, check=False, env=harness.user_env("erin"), cwd="/")
            p = connect(known)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout.strip(), LOGIN)
            empty = os.path.join(self.dir, "known_hosts.empty")
            write(empty, "")
            p = connect(empty)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("Host key verification failed", p.stderr)
        finally:
            sshd.stop()

    def test_a_ca_key_others_can_read_stops_the_broker(self):
        loose = os.path.join(self.dir, "loose")
        os.makedirs(loose)
        key = os.path.join(loose, "ca")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
        os.chmod(key, 0o644)
        b = Broker(os.path.join(loose, "broker"), APPROVERS, POLICIES,
                   ca={"key": key, "max_ttl": "1h"})
        with self.assertRaises(AssertionError) as ctx:
            b.start()
        self.assertIn("exited with 1", str(ctx.exception))
        self.assertIn("ca.key " + key, read(b.log_path))
        self.assertIn("group or others", read(b.log_path))

    def test_ca_public_key_and_listing(self):
        p = self.broker.cli("mallory", "ca", "pubkey", check=True)
        self.assertEqual(p.stdout.split()[:2], read(self.ca_key + ".pub").split()[:2])
        key, cert = self.request_now("erin")
        serial = self.serial_of(cert)
        mine = json.loads(self.broker.cli("erin", "certs", "--json", check=True).stdout)
        self.assertIn(serial, [c["serial"] for c in mine["certs"]])
        theirs = json.loads(self.broker.cli("mallory", "certs", "--all", "--json",
                                            check=True).stdout)
        self.assertNotIn(serial, [c["serial"] for c in theirs["certs"]])
        table = self.broker.cli("root", "certs", check=True).stdout
        self.assertIn(str(serial), table)

    def test_agent_gets_key_and_certificate_for_their_lifetime(self):
        sock = os.path.join(self.home("erin"), "agent.sock")
        agent = Background(harness.as_user("erin", ["ssh-agent", "-D", "-a", sock]), self.dir,
                           "ssh-agent", env=harness.user_env("erin"))
        self.bg.append(agent)
        harness.wait_for(lambda: os.path.exists(sock), 10, "ssh-agent socket")
        key, cert = self.request_now("erin", "--agent", "--ttl", "5m",
                                     env={"SSH_AUTH_SOCK": sock})
        env = dict(harness.user_env("erin"), SSH_AUTH_SOCK=sock)
        listed = run(harness.as_user("erin", ["ssh-add", "-l"]), check=False, env=env, cwd="/")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn("ED25519-CERT", listed.stdout)
        # Log in through the agent alone (no -i).
        argv = harness.as_user("erin", [
            SSH, "-p", str(self.sshd.port), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "IdentityFile=none", "-F", "/dev/null", "%s@127.0.0.1" % LOGIN, "id -un"])
        p = run(argv, check=False, env=env, cwd="/")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), LOGIN)


if __name__ == "__main__":
    harness.main(__file__)
