#!/usr/bin/env python3
"""Issue 8 end to end: jitgate's Debian packages, installed on this machine.

What an operator does, with the installed files and nothing from the build
tree:
  1. `apt-get install ./jitgate_*.deb ...` (the packages of this commit): the
     postinst made the system user, the state directory and the keys; the
     shipped sample configuration passes `jitgated --check-config`; the unit
     passes `systemd-analyze security` at the target exposure.
  2. One edit of /etc/jitgate/jitgate.yaml, one line in the sshd PAM stack
     (`pam_jitgate.so` by its bare name: the module is where PAM looks), the
     sudo.conf lines from the package's example; jitgated started from the
     installed unit. Flow F1 (an ssh login waits for an approval) and flow F2
     (sudo waits for the approval of its exact command, recorded by the I/O
     plugin) run against them.
  3. `systemctl reload` (the unit's ExecReload) with a good and a bad
     configuration while a request waits.
  4. Upgrade: packages with a bumped version installed over the running
     ones while a login waits; the broker restarted from the new files, as
     dh_installsystemd's restart-after-upgrade does; the login completes,
     the recorded sessions are all there, the store verifies.
  5. `apt-get purge`: configuration gone, the store, the keys and the spool
     kept (they are evidence), and the store still verifies.

How jitgated is started: under systemd when systemd is PID 1; otherwise (this
kind of machine has no systemd) exactly as the unit says -- its User and
Group, RuntimeDirectory and StateDirectory with their modes, UMask,
ExecStartPre, ExecStart, ExecReload with $MAINPID, and Type=notify: the test
listens on NOTIFY_SOCKET and waits for READY=1, RELOADING=1 and STOPPING=1.
The sandbox directives (ProtectSystem=... and the rest) need systemd and are
not applied then; `systemd-analyze security --offline` rates them.

Steps 2-4 run inside the integration harness's private mount namespace (a
copy of /etc, a tmpfs on /run, users alice and bob that exist only there);
the packages are installed on the machine itself (steps 1, 4 and 5), so this
test changes the machine: it refuses to run where jitgate is already
installed or has left state, and removes what it made at the end
(JITGATE_PKG_KEEP=1 keeps it).

Usage (as root):
  test_packages.py --debs DIR --next-debs DIR --jitgate-build PATH [unittest args]
DIR holds the .deb files of one version (packaging/build-debs);
--jitgate-build is a `jitgate` from the build tree, used only after the purge
to verify the kept store.
"""
import glob
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration", "approval"))
import harness  # noqa: E402
from harness import Background, Sshd, SshUser, as_user, read, run, user_env  # noqa: E402

PACKAGES = ["jitgate", "libpam-jitgate", "jitgate-sudo", "jitgate-rec"]
UNIT = "/lib/systemd/system/jitgated.service"
CONFIG = "/etc/jitgate/jitgate.yaml"
STATE = "/var/lib/jitgate"
STORE = STATE + "/store"
SPOOL = "/var/spool/jitgate"
KEYS = ["/etc/jitgate/log.key", "/etc/jitgate/log.pub", "/etc/jitgate/ca", "/etc/jitgate/ca.pub"]
SOCKET = "/run/jitgate/jitgated.sock"
EXPOSURE_TARGET = 2.5


def installed_file(package, pattern):
    """The one path of an installed package's files that matches pattern."""
    out = run(["dpkg", "-L", package]).stdout.split()
    found = [p for p in out if re.search(pattern, p) and os.path.isfile(p)]
    if len(found) != 1:
        raise AssertionError("%s: expected one file matching %r, found %r" % (package, pattern, found))
    return found[0]


def package_version(package):
    p = run(["dpkg-query", "-W", "-f", "${Version}", package], check=False)
    return p.stdout.strip() if p.returncode == 0 else None


def debs_in(directory):
    debs = sorted(glob.glob(os.path.join(directory, "*.deb")))
    names = {os.path.basename(d).split("_")[0] for d in debs}
    missing = [p for p in PACKAGES if p not in names]
    if missing:
        raise SystemExit("FAIL: %s has no package %s" % (directory, ", ".join(missing)))
    return [d for d in debs if os.path.basename(d).split("_")[0] in PACKAGES]


def apt_install(debs):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return run(["apt-get", "install", "-y", "--no-install-recommends", "--allow-downgrades"] +
               [os.path.abspath(d) for d in debs], check=False, timeout=600, env=env)


# --------------------------------------------------------------------------
# The unit, started as systemd would start it


class Unit:
    """jitgated.service as installed, run without systemd (see the module
    docstring): its [Service] settings, applied by hand."""

    def __init__(self, path, log_path):
        self.path = path
        self.log_path = log_path
        self.settings = {}
        section = None
        for raw in read(path).splitlines():
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            if section == "Service":
                self.settings.setdefault(key.strip(), []).append(value.strip())
        self.proc = None
        self.notify = None
        self.messages = []

    def get(self, key, default=None):
        v = self.settings.get(key)
        return v[-1] if v else default

    def _command(self, key):
        """An Exec*= line as argv, with systemd's prefixes removed."""
        line = self.get(key)
        if line is None:
            return None
        return shlex.split(line.lstrip("-@:+!"))

    def _prepare(self):
        user = pwd.getpwnam(self.get("User"))
        group = self.get("Group", self.get("User"))
        gid = int(run(["getent", "group", group]).stdout.split(":")[2])
        for key, base in (("RuntimeDirectory", "/run"), ("StateDirectory", "/var/lib")):
            for name in (self.get(key) or "").split():
                d = os.path.join(base, name)
                os.makedirs(d, exist_ok=True)
                os.chown(d, user.pw_uid, gid)
                os.chmod(d, int(self.get(key + "Mode", "0755"), 8))
        return user.pw_uid, gid

    def _caps(self, key):
        """A capability list setting as setpriv's list: "setuid,setgid"."""
        names = " ".join(self.settings.get(key, [])).split()
        return ",".join(n.lower().replace("cap_", "", 1) for n in names)

    def _as_unit_user(self, argv):
        """argv with the unit's user, group, capabilities (bounding and
        ambient: what the ExecStart process holds) and NoNewPrivileges."""
        out = ["setpriv", "--reuid", self.get("User"), "--regid",
               self.get("Group", self.get("User")), "--init-groups"]
        bounding, ambient = self._caps("CapabilityBoundingSet"), self._caps("AmbientCapabilities")
        out.append("--bounding-set=-all" + "".join(",+" + c for c in bounding.split(",") if c))
        if ambient:
            plus = ",".join("+" + c for c in ambient.split(","))
            out += ["--inh-caps=" + plus, "--ambient-caps=" + plus]
        if self.get("NoNewPrivileges") == "yes":
            out.append("--no-new-privs")
        return out + ["--"] + argv

    def start(self, timeout=30):
        assert self.get("Type") == "notify", "the unit is Type=%s" % self.get("Type")
        self._prepare()
        umask = int(self.get("UMask", "0022"), 8)
        pre = self._command("ExecStartPre")
        if pre:
            p = run(self._as_unit_user(pre), check=False)
            if p.returncode != 0:
                raise AssertionError("ExecStartPre %r failed: %s%s" % (pre, p.stdout, p.stderr))
        notify_path = "/run/jitgate-test-notify.sock"
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(notify_path)
        os.chmod(notify_path, 0o777)
        self.messages = []
        logf = open(self.log_path, "a")
        logf.write("=== start at %s\n" % time.strftime("%T"))
        logf.flush()
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET": notify_path,
               "LANG": "C.UTF-8"}
        self.proc = subprocess.Popen(self._as_unit_user(self._command("ExecStart")), env=env,
                                     stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT, cwd="/",
                                     preexec_fn=lambda: os.umask(umask))
        logf.close()
        self.wait_notify("READY=1", timeout)

    def wait_notify(self, what, timeout=30):
        """Reads notifications until one carries what (e.g. READY=1)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("jitgated exited with %d:\n%s" %
                                     (self.proc.returncode, read(self.log_path)[-4000:]))
            self.notify.settimeout(0.2)
            try:
                msg = self.notify.recv(4096).decode()
            except socket.timeout:
                continue
            self.messages.append(msg)
            if what in msg.split("\n"):
                return msg
        raise AssertionError("no %s from jitgated in %ds (got %r)" % (what, timeout, self.messages))

    def reload(self):
        argv = [a.replace("$MAINPID", str(self.proc.pid)) for a in self._command("ExecReload")]
        run(argv)
        self.wait_notify("RELOADING=1")
        return self.wait_notify("READY=1")

    def stop(self, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return None
        self.proc.send_signal(signal.SIGTERM)  # KillSignal's default
        self.wait_notify("STOPPING=1", timeout)
        self.proc.wait(timeout)
        self.notify.close()
        return self.proc.returncode

    def user_of_process(self):
        status = read("/proc/%d/status" % self.proc.pid)
        uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))
        return pwd.getpwuid(uid).pw_name

    def capabilities_of_process(self):
        """{CapEff: int, CapPrm: ..., CapAmb: ..., CapBnd: ...} of the main process."""
        status = read("/proc/%d/status" % self.proc.pid)
        return {k: int(v, 16) for k, v in re.findall(r"^(Cap\w+):\s+([0-9a-f]+)", status, re.M)}


# --------------------------------------------------------------------------
# Steps 2-4, inside the harness's namespace

OPERATOR_CONFIG = """\
# The operator's edit of the shipped file: who approves, and what needs it.
broker:
  submitters: [root]
store:
  group: jitgate-audit
ca:
  key: /etc/jitgate/ca
approvers:
  oncall: [bob]
policies:
  - name: prod
    match: {service: [sshd, sudo]}
    approvers: [oncall]
    timeout: 2m
    ttl: 5m
"""

SUDOERS = "Defaults:alice !lecture\nalice ALL=(ALL) NOPASSWD: ALL\n"


class InstalledPackagesTest(harness.IntegrationTest):
    """One flow after another on one installed broker (the steps depend on
    each other, so the test names carry their order)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cdir = os.path.join(harness.ROOT, "pkg")
        os.makedirs(cls.cdir, 0o755, exist_ok=True)
        harness.add_users("alice", "bob", "audrey")
        run(["adduser", "--quiet", "audrey", "jitgate-audit"])
        harness.write("/etc/sudoers.d/jitgate-pkg-test", SUDOERS, 0o440)
        run(["visudo", "-c"])
        harness.write(CONFIG, OPERATOR_CONFIG, 0o644)
        cls.unit = Unit(UNIT, os.path.join(cls.cdir, "jitgated.log"))
        cls.alice = SshUser("alice", cls.cdir)
        # The PAM line an operator adds, module by its bare name.
        cls.sshd = Sshd(os.path.join(cls.cdir, "sshd"), "sshd",
                        "auth     required pam_permit.so\n"
                        "account  required pam_jitgate.so timeout=120\n"
                        "session  required pam_permit.so\n"
                        "password required pam_deny.so\n")
        cls.sshd.start()
        cls.bg = []

    @classmethod
    def tearDownClass(cls):
        for b in cls.bg:
            b.kill()
        cls.unit.stop()
        cls.sshd.stop()

    def setUp(self):
        super().setUp()
        self.add_diag("jitgated log", lambda: read(self.unit.log_path))
        self.add_diag("sshd log", lambda: read(self.sshd.log_path))
        self.add_diag("clients", lambda: "\n".join(b.describe() for b in self.bg))

    def jitgate(self, user, *args, check=True):
        argv = ["/usr/bin/jitgate"] + list(args)
        if user != "root":
            argv = as_user(user, argv)
        return run(argv, check=check, cwd="/", env=user_env(user) if user != "root" else None)

    def pending(self, **match):
        def find():
            out = self.jitgate("bob", "requests", "--pending", "--json").stdout
            for r in json.loads(out)["requests"]:
                if all(r.get(k) == v for k, v in match.items()):
                    return r
            return None
        return harness.wait_for(find, 30, "a pending request %r" % match)

    def ssh(self, command):
        b = Background(self.alice.ssh_argv(self.sshd, command), self.cdir,
                       "ssh-%d" % len(self.bg))
        self.bg.append(b)
        return b

    def sessions(self):
        return json.loads(self.jitgate("root", "sessions", "--json").stdout)["sessions"]

    def test_1_the_unit_starts_jitgated_as_its_user(self):
        self.assertEqual(self.unit.get("User"), "jitgate")
        self.unit.start()
        self.assertEqual(self.unit.user_of_process(), "jitgate")
        # The unit grants CAP_SETUID and CAP_SETGID (for the bastion's
        # session processes, which switch to bastion.run_as); the broker
        # lowers them from its own effective set at once.
        switch = (1 << 6) | (1 << 7)  # CAP_SETGID, CAP_SETUID
        caps = self.unit.capabilities_of_process()
        self.assertEqual(caps["CapEff"], 0, caps)
        self.assertEqual(caps["CapPrm"], switch, caps)
        self.assertEqual(caps["CapAmb"], switch, caps)
        self.assertEqual(caps["CapBnd"], switch, caps)
        self.assertEqual(os.stat(SOCKET).st_mode & 0o777, 0o666)
        self.assertIn("serving", "".join(self.unit.messages))

    def test_2_ssh_login_waits_for_approval_F1(self):
        c = self.ssh("echo F1-OK")
        r = self.pending(user="alice", service="sshd")
        time.sleep(0.5)
        self.assertTrue(c.running(), "the login did not wait: " + c.describe())
        self.jitgate("bob", "approve", r["id"], "--yes", "--comment", "installed F1")
        self.assertEqual(c.wait(30), 0, c.describe())
        self.assertEqual(c.stdout.strip(), "F1-OK")

    def test_3_sudo_waits_for_approval_of_the_exact_command_F2(self):
        # The operator's sudo.conf: the package's example for recorded sudo.
        example = installed_file("jitgate-sudo", r"examples/sudo\.conf\.recorded$")
        lines = [l for l in read(example).splitlines() if l.startswith("Plugin ")]
        self.assertTrue(any("jitgate_io" in l for l in lines), read(example))
        harness.write("/etc/sudo.conf", "\n".join(lines) + "\n")
        argv = as_user("alice", ["sudo", "-n", "/usr/bin/id", "-un"])
        b = Background(argv, self.cdir, "sudo-F2", env=user_env("alice"))
        self.bg.append(b)
        r = self.pending(user="alice", service="sudo")
        self.assertEqual(r["command"], "/usr/bin/id -un", r)
        self.assertEqual(r["target_user"], "root", r)
        self.jitgate("bob", "approve", r["id"], "--yes")
        self.assertEqual(b.wait(30), 0, b.describe())
        self.assertEqual(b.stdout.strip(), "root")
        # Recorded by the installed I/O plugin, linked to the approval.
        s = harness.wait_for(lambda: next((x for x in self.sessions()
                                           if x.get("request_id") == r["id"] and x["ended"]), None),
                             20, "the recorded sudo session")
        self.assertEqual(s["user"], "alice")
        InstalledPackagesTest.sudo_session = s["id"]

    def test_4_reload_with_a_good_and_a_bad_config_while_a_request_waits(self):
        c = self.ssh("echo RELOAD-OK")
        r = self.pending(user="alice", service="sshd")
        good = OPERATOR_CONFIG.replace("oncall: [bob]", "oncall: [bob, root]")
        harness.write(CONFIG, good)
        self.assertIn("reloaded", self.unit.reload())
        bad = good + "polices: []\n"
        harness.write(CONFIG, bad)
        check = run(["/usr/sbin/jitgated", "--config", CONFIG, "--check-config"], check=False)
        self.assertEqual(check.returncode, 2)
        self.assertIn(CONFIG + ":", check.stderr)
        self.assertIn("refused", self.unit.reload())
        self.assertIn("reload refused", read(self.unit.log_path))
        harness.write(CONFIG, good)
        self.assertTrue(c.running(), c.describe())
        self.jitgate("bob", "approve", r["id"], "--yes")
        self.assertEqual(c.wait(30), 0, c.describe())
        self.assertEqual(c.stdout.strip(), "RELOAD-OK")

    def test_5_upgrade_while_a_login_waits(self):
        before = package_version("jitgate")
        sessions_before = {s["id"] for s in self.sessions()}
        self.assertIn(self.sudo_session, sessions_before)
        c = self.ssh("echo UPGRADE-OK")
        r = self.pending(user="alice", service="sshd")
        # apt-get in the machine's own mount namespace (the private /etc of
        # this test is not where dpkg keeps its conffiles).
        fd = int(os.environ["JITGATE_PKG_HOST_MNT_FD"])
        debs = [os.path.abspath(d) for d in debs_in(os.environ["JITGATE_PKG_NEXT"])]
        p = subprocess.run(["nsenter", "--mount=/proc/self/fd/%d" % fd, "--",
                            "apt-get", "install", "-y", "--no-install-recommends"] + debs,
                           pass_fds=(fd,), capture_output=True, text=True, timeout=600,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        after = package_version("jitgate")
        self.assertNotEqual(before, after)
        # What restart-after-upgrade does: stop, start the new files.
        self.assertEqual(self.unit.stop(), 0)
        self.unit.start()
        self.assertEqual(self.pending(user="alice", service="sshd")["id"], r["id"])
        self.assertTrue(c.running(), c.describe())
        self.jitgate("bob", "approve", r["id"], "--yes", "--comment", "after the upgrade")
        self.assertEqual(c.wait(30), 0, c.describe())
        self.assertEqual(c.stdout.strip(), "UPGRADE-OK")
        self.assertTrue(sessions_before <= {s["id"] for s in self.sessions()})
        raw = self.jitgate("root", "replay", self.sudo_session, "--raw", "--no-safe").stdout
        self.assertIn("root", raw)
        self.assertEqual(self.unit.stop(), 0)
        v = self.jitgate("root", "verify", "--store", STORE, "--key", "/etc/jitgate/log.pub",
                         check=False)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # An auditor (adduser audrey jitgate-audit) reads and verifies the
        # store as herself; alice, not in the group, cannot.
        v = self.jitgate("audrey", "verify", "--store", STORE, "--key", "/etc/jitgate/log.pub",
                         check=False)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        raw = self.jitgate("audrey", "replay", self.sudo_session, "--store", STORE, "--raw",
                           "--no-safe", check=False)
        self.assertEqual(raw.returncode, 0, raw.stdout + raw.stderr)
        self.assertIn("root", raw.stdout)
        v = self.jitgate("alice", "verify", "--store", STORE, "--key", "/etc/jitgate/log.pub",
                         check=False)
        self.assertNotEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertIn("Permission denied", v.stdout + v.stderr)

    def test_6_a_recording_made_while_the_broker_is_down_is_spooled(self):
        self.assertIsNone(self.unit.stop())  # stopped by the previous step
        p = run(as_user("alice", ["/usr/bin/jitgate-rec", "-c", "echo spooled-while-down"]),
                check=False, cwd="/", env=user_env("alice"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("spooled-while-down", p.stdout)
        self.assertIn("kept in the spool", p.stderr)
        self.assertTrue(glob.glob(os.path.join(SPOOL, "*.spool")), os.listdir(SPOOL))

# --------------------------------------------------------------------------
# Steps 1 and 5, on the machine


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def outer(opts, rest):
    if os.geteuid() != 0:
        print("SKIP: needs root (installs packages)")
        sys.exit(harness.SKIP_CODE)
    installed = [p for p in PACKAGES if package_version(p)]
    leftovers = [p for p in [STATE, SPOOL, "/etc/jitgate"] if os.path.exists(p)]
    if installed or leftovers:
        fail("this machine already has jitgate (%s); the test installs and purges the packages "
             "itself and needs a machine without them" % ", ".join(installed + leftovers))
    debs = debs_in(opts["--debs"])
    debs_in(opts["--next-debs"])
    ok = False
    try:
        # Step 1: install.
        p = apt_install(debs)
        if p.returncode != 0:
            fail("apt-get install failed:\n" + p.stdout + p.stderr)
        print(p.stdout[-1500:])
        for k in KEYS:
            if not os.path.exists(k):
                fail("postinst did not create " + k)
        for k in ("/etc/jitgate/log.key", "/etc/jitgate/ca"):
            st = os.stat(k)
            if st.st_mode & 0o077 or pwd.getpwuid(st.st_uid).pw_name != "jitgate":
                fail("%s: mode %o owner %s; want the broker's user only" %
                     (k, st.st_mode & 0o777, pwd.getpwuid(st.st_uid).pw_name))
        keys = {k: read(k) for k in KEYS}
        p = run(["/usr/sbin/jitgated", "--config", CONFIG, "--check-config"], check=False)
        if p.returncode != 0:
            fail("the shipped configuration is refused: " + p.stderr)
        p = run(["systemd-analyze", "security", "--offline=true", UNIT], check=False)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", p.stdout + p.stderr)
        if not m or float(m.group(1)) > EXPOSURE_TARGET:
            fail("systemd-analyze security: %s (target <= %.1f)\n%s" %
                 (m.group(1) if m else "no score", EXPOSURE_TARGET, p.stdout[-3000:] + p.stderr))
        print("systemd-analyze security: exposure %s" % m.group(1))
        units = [installed_file(pkg, r"/systemd/system/%s$" % re.escape(u))
                 for pkg, u in (("jitgate", "jitgated.service"),
                                ("jitgate-rec", "jitgate-spool-forward.service"),
                                ("jitgate-rec", "jitgate-spool-forward.timer"))]
        p = run(["systemd-analyze", "verify"] + units, check=False)
        if p.returncode != 0 or (p.stdout + p.stderr).strip():
            fail("systemd-analyze verify: rc %d\n%s%s" % (p.returncode, p.stdout, p.stderr))
        # Reinstalling never replaces a key.
        p = run(["apt-get", "install", "-y", "--reinstall"] + [os.path.abspath(d) for d in debs],
                check=False, timeout=600, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if p.returncode != 0 or any(read(k) != v for k, v in keys.items()):
            fail("reinstall failed or replaced a key:\n" + p.stdout[-2000:] + p.stderr)

        # Steps 2-4, in the namespace.
        host_mnt = os.open("/proc/self/ns/mnt", os.O_RDONLY)
        os.environ["JITGATE_PKG_HOST_MNT_FD"] = str(host_mnt)
        os.environ["JITGATE_PKG_NEXT"] = os.path.abspath(opts["--next-debs"])
        pam = installed_file("libpam-jitgate", r"/security/pam_jitgate\.so$")
        sys.argv = [sys.argv[0], "--jitgated", "/usr/sbin/jitgated", "--jitgate",
                    "/usr/bin/jitgate", "--pam", pam] + rest
        rc = harness.main(__file__, pass_fds=(host_mnt,), exit=False)
        if rc != 0:
            fail("the flows against the installed packages failed (exit %d)" % rc)

        # Step 5: remove, then purge; the evidence stays and verifies.
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        p = run(["apt-get", "remove", "-y"] + PACKAGES, check=False, timeout=600, env=env)
        if p.returncode != 0:
            fail("apt-get remove failed:\n" + p.stdout + p.stderr)
        p = run(["apt-get", "purge", "-y"] + PACKAGES, check=False, timeout=600, env=env)
        if p.returncode != 0:
            fail("apt-get purge failed:\n" + p.stdout + p.stderr)
        print(p.stdout[-1500:])
        if os.path.exists(CONFIG):
            fail("purge left " + CONFIG)
        for path in KEYS + [STORE, SPOOL]:
            if not os.path.exists(path):
                fail("purge removed %s, which is evidence" % path)
        if not glob.glob(os.path.join(SPOOL, "*.spool")):
            fail("purge removed the spooled recording from " + SPOOL)
        v = run([opts["--jitgate-build"], "verify", "--store", STORE, "--key",
                 "/etc/jitgate/log.pub"], check=False)
        if v.returncode != 0:
            fail("the kept store does not verify after the purge:\n" + v.stdout + v.stderr)
        print(v.stdout.strip())
        ok = True
    finally:
        if os.environ.get("JITGATE_PKG_KEEP"):
            print("kept the installed state (JITGATE_PKG_KEEP)")
        else:
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            run(["apt-get", "purge", "-y"] + PACKAGES, check=False, timeout=600, env=env)
            for path in (STATE, SPOOL, "/etc/jitgate"):
                subprocess.run(["chattr", "-R", "-i", path], stderr=subprocess.DEVNULL)
                shutil.rmtree(path, ignore_errors=True)
    print("OK: packages installed, F1, F2, reload, upgrade and purge" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    if os.environ.get(harness.NS_ENV) == "1":
        harness.main(__file__)
    else:
        opts = {"--debs": None, "--next-debs": None, "--jitgate-build": None}
        rest = []
        args = sys.argv[1:]
        while args:
            a = args.pop(0)
            if a in opts and args:
                opts[a] = args.pop(0)
            else:
                rest.append(a)
        missing = [k for k, v in opts.items() if not v]
        if missing:
            print("usage: test_packages.py --debs DIR --next-debs DIR --jitgate-build PATH")
            sys.exit(2)
        outer(opts, rest)
