#!/usr/bin/env python3
"""Proves the harness itself with stock programs and stock PAM modules only.

Runs before the jitgate parts exist: the private namespace really hides its
/etc, users and sudo configuration from the machine; a private sshd obeys its
own PAM service stack (pam_permit lets a login in, pam_deny keeps it out); sudo
reads the private /etc/sudo.conf and /etc/sudoers.d.
"""
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import run, as_user  # noqa: E402


class NamespaceTest(harness.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for u in ("hxalice", "hxbob"):
            harness.add_user(u)

    def test_etc_and_home_are_private(self):
        # The namespace's /etc is a bind mount of the copy under the temp root.
        st_etc = os.stat("/etc")
        st_copy = os.stat(os.path.join(harness.ROOT, "etc"))
        self.assertEqual((st_etc.st_dev, st_etc.st_ino), (st_copy.st_dev, st_copy.st_ino))
        self.assertIn("hxalice:", harness.read("/etc/passwd"))
        self.assertTrue(os.path.isdir("/home/hxalice"))
        mounts = harness.read("/proc/self/mountinfo")
        self.assertRegex(mounts, r" /etc rw")
        self.assertRegex(mounts, r" /home rw")
        self.assertTrue(os.path.isdir("/run/sshd"))

    def test_setpriv_identity(self):
        p = run(as_user("hxbob", ["id", "-un"]))
        self.assertEqual(p.stdout.strip(), "hxbob")


class SshdStockPamTest(harness.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        harness.add_user("hxssh")
        import tempfile
        cls.cdir = tempfile.mkdtemp(prefix="sshd.", dir=harness.ROOT)
        os.chmod(cls.cdir, 0o755)
        cls.user = harness.SshUser("hxssh", cls.cdir)
        cls.sshd = harness.Sshd(cls.cdir, "sshd-hx", cls.stack("pam_permit.so"))
        cls.sshd.start()

    @classmethod
    def tearDownClass(cls):
        cls.sshd.stop()

    @staticmethod
    def stack(account):
        return ("auth required pam_permit.so\n"
                "account required %s\n"
                "session required pam_permit.so\n"
                "password required pam_deny.so\n" % account)

    def setUp(self):
        super().setUp()
        self.add_diag("sshd log", lambda: harness.read(self.sshd.log_path))

    def test_permit_then_deny(self):
        self.sshd.set_pam_stack(self.stack("pam_permit.so"))
        p = run(self.user.ssh_argv(self.sshd, "echo OK; id -un"), check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split(), ["OK", "hxssh"])
        # The PAM config is re-read for every connection.
        self.sshd.set_pam_stack(self.stack("pam_deny.so"))
        p = run(self.user.ssh_argv(self.sshd, "echo OK"), check=False)
        self.assertEqual(p.returncode, 255, p.stdout + p.stderr)
        self.assertNotIn("OK", p.stdout)
        self.assertIn("by PAM account configuration", harness.read(self.sshd.log_path))

    def test_pam_service_is_symlink_name(self):
        # pam_exec logs the PAM service that sshd used.
        logf = os.path.join(self.dir, "pamexec.log")
        self.sshd.set_pam_stack(self.stack(
            "pam_exec.so quiet log=%s /usr/bin/env" % logf))
        p = run(self.user.ssh_argv(self.sshd, "true"), check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("PAM_SERVICE=sshd-hx", harness.read(logf))
        self.assertIn("PAM_RHOST=127.0.0.1", harness.read(logf))


class SudoPrivateConfTest(harness.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        harness.add_user("hxsudo")
        harness.write("/etc/sudoers.d/hx", "hxsudo ALL=(root) NOPASSWD: /usr/bin/id\n", 0o440)
        run(["visudo", "-c"])

    def test_sudo_reads_private_sudoers_and_conf(self):
        p = run(as_user("hxsudo", ["sudo", "-n", "/usr/bin/id", "-un"]), check=False)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "root"), p.stderr)
        p = run(as_user("hxsudo", ["sudo", "-n", "/usr/bin/whoami"]), check=False)
        self.assertNotEqual(p.returncode, 0)
        saved = harness.read("/etc/sudo.conf") if os.path.exists("/etc/sudo.conf") else None
        # A private /etc/sudo.conf naming a plugin that does not exist makes
        # sudo refuse to run at all: proof that sudo reads this file.
        harness.write("/etc/sudo.conf",
                      "Plugin sudoers_policy sudoers.so\n"
                      "Plugin sudoers_io sudoers.so\n"
                      "Plugin sudoers_audit sudoers.so\n"
                      "Plugin hx_approval %s/nonexistent.so\n" % harness.ROOT)
        try:
            p = run(as_user("hxsudo", ["sudo", "-n", "/usr/bin/id", "-un"]), check=False)
            self.assertNotEqual(p.returncode, 0, p.stdout)
            self.assertIn("nonexistent.so", p.stderr)
        finally:
            if saved is None:
                os.unlink("/etc/sudo.conf")
            else:
                harness.write("/etc/sudo.conf", saved)
        p = run(as_user("hxsudo", ["sudo", "-n", "/usr/bin/id", "-un"]), check=False)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    harness.main(__file__)
