"""Harness for jitgate's end-to-end approval tests with the real programs.

Real sshd, ssh, sudo, Linux-PAM, jitgated and the jitgate CLI; no mocks.

Isolation (so the machine's own /etc, /home, /run and /var/log stay untouched):
the test process re-executes itself under

    unshare --mount --propagation private --pid --fork --mount-proc

and inside that private mount and PID namespace it bind-mounts a temporary copy
of /etc over /etc and empty temporary directories over /home, /var/log and
/var/mail, and mounts a tmpfs over /run. useradd, /etc/pam.d, /etc/sudo.conf
and /etc/sudoers.d edits therefore stay private and vanish with the
namespace; every process started inside dies with the namespace's PID 1 (the
test process) even if a test crashes. The outer process removes the temporary
directory afterwards.

Needs root (mount namespaces, useradd, sshd, setuid sudo). Without root every
test file exits with SKIP_CODE (77) and says why.

Usage from a test file:

    import harness
    harness.main(__file__)   # parses --jitgated/--jitgate/--pam/--approval,
                             # re-execs into the namespace, runs unittest
"""

import argparse
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

SKIP_CODE = 77
NS_ENV = "JITGATE_IT_INSIDE_NS"
TMP_ENV = "JITGATE_IT_TMP"

# Binaries under test, filled in by main() from the command line.
BIN = {"jitgated": None, "jitgate": None, "pam": None, "approval": None, "rec": None}
# The per-process temporary root (inside the namespace), set by main().
ROOT = None

# A PAM stack that lets every login through (a target sshd whose access is
# governed by certificates or ForceCommand, not by PAM).
PAM_PERMIT = ("auth     required pam_permit.so\n"
              "account  required pam_permit.so\n"
              "session  required pam_permit.so\n"
              "password required pam_deny.so\n")

SSHD = "/usr/sbin/sshd"
SSH = "/usr/bin/ssh"
SUDO = "/usr/bin/sudo"


def log(msg):
    sys.stderr.write("[it %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# --------------------------------------------------------------------------
# Process helpers


def run(argv, check=True, timeout=60, **kw):
    """Runs argv to completion, capturing text output."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError("command failed (rc %d): %s\nstdout: %s\nstderr: %s" %
                             (p.returncode, " ".join(argv), p.stdout, p.stderr))
    return p


def as_user(user, argv):
    """argv run with the real, effective and supplementary ids of user."""
    return ["setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups", "--"] + list(argv)


def user_env(user):
    import pwd
    pw = pwd.getpwnam(user)
    return {"HOME": pw.pw_dir, "USER": user, "LOGNAME": user,
            "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_options(defaults):
    """A bench program's integer options (--name N, defaults given), taken out
    of sys.argv. They travel to the re-executed process (main() enters the
    private namespace by running the file again) as JITGATE_BENCH_NAME."""
    opts = dict(defaults)
    for k in opts:
        if "--" + k in sys.argv:
            i = sys.argv.index("--" + k)
            os.environ["JITGATE_BENCH_" + k.upper()] = sys.argv[i + 1]
            del sys.argv[i:i + 2]
        opts[k] = int(os.environ.get("JITGATE_BENCH_" + k.upper(), opts[k]))
    return opts


def wait_for(pred, timeout, what, interval=0.05):
    """Polls pred() until it returns a true value; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def pids_of(program, user):
    """The pids of processes running program as user (a test's PID namespace
    holds only processes that test started)."""
    want = os.path.realpath(program)
    uid = pwd.getpwnam(user).pw_uid
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/exe" % d) == want and os.stat("/proc/%s" % d).st_uid == uid:
                found.append(int(d))
        except OSError:
            continue
    return found


def stop_process(proc, sig=signal.SIGTERM, timeout=10):
    """Stops a child we started, by its PID."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, sig)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError as e:
        return "<%s>" % e


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


# --------------------------------------------------------------------------
# Namespace


def _setup_namespace(root):
    """Inside a fresh private mount namespace: private /etc, /home, /run, logs."""
    def sh(*argv):
        subprocess.run(argv, check=True)
    etc = os.path.join(root, "etc")
    sh("cp", "-a", "/etc", etc)
    sh("mount", "--bind", etc, "/etc")
    for d, target in (("home", "/home"), ("varlog", "/var/log"), ("mail", "/var/mail")):
        if os.path.isdir(target):
            os.mkdir(os.path.join(root, d), 0o755)
            sh("mount", "--bind", os.path.join(root, d), target)
    # Private /run: sshd needs /run/sshd (missing on this machine), sudo keeps
    # its time stamps in /run/sudo, logins write /run/utmp.
    sh("mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/run")
    os.mkdir("/run/sshd", 0o755)
    os.mkdir("/run/lock")
    os.chmod("/run/lock", 0o1777)
    os.symlink("/dev/shm", "/run/shm")
    sh("install", "-m664", "-o", "root", "-g", "utmp", "/dev/null", "/run/utmp")


def _cleanup_tree(root):
    # The store makes sealed files immutable (chattr +i); lift that first.
    subprocess.run(["chattr", "-R", "-i", root], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------
# Users


def add_user(name):
    """useradd in the private /etc (-l: no lastlog/faillog writes)."""
    run(["useradd", "-l", "-m", "-U", "-s", "/bin/bash", name])
    import pwd
    return pwd.getpwnam(name)


def add_users(*names):
    for n in names:
        add_user(n)


# --------------------------------------------------------------------------
# The broker


class Broker:
    """jitgated with its own config, state, store and log key in dir."""

    def __init__(self, dir, approvers, policies, socket_path=None, ca=None, extra="",
                 store_group=None):
        self.dir = dir
        os.makedirs(dir, exist_ok=True)
        os.chmod(dir, 0o755)
        self.socket = socket_path or os.path.join(dir, "jitgated.sock")
        self.state_dir = os.path.join(dir, "state")
        self.store_dir = os.path.join(dir, "store")
        self.key = os.path.join(dir, "log.key")
        self.pub = os.path.join(dir, "log.pub")
        self.config = os.path.join(dir, "jitgate.yaml")
        self.log_path = os.path.join(dir, "jitgated.log")
        self.proc = None
        self.starts = 0
        if not os.path.exists(self.key):
            run([BIN["jitgate"], "log", "keygen", "--name", "it.jitgate.test/audit",
                 "--out", os.path.join(dir, "log")])
            os.chmod(self.key, 0o600)
        lines = ["broker:",
                 "  socket: %s" % self.socket,
                 "  state_dir: %s" % self.state_dir,
                 "  submitters: [root]",
                 "store:",
                 "  dir: %s" % self.store_dir,
                 "  key: %s" % self.key]
        if store_group:
            lines.append("  group: %s" % store_group)
        if ca:  # {"key": path, "max_ttl": "1h", ...}
            lines.append("ca:")
            for k, v in ca.items():
                lines.append("  %s: %s" % (k, json.dumps(v) if isinstance(v, list) else v))
        if extra:  # more top-level sections, as YAML text (e.g. bastion:)
            lines.append(extra.rstrip("\n"))
        lines.append("approvers:")
        for group, members in approvers.items():
            lines.append("  %s: [%s]" % (group, ", ".join(members)))
        lines.append("policies:")
        for p in policies:
            lines.append("  - name: %s" % p["name"])
            lines.append("    match: %s" % json.dumps(p["match"]))
            for k in ("approve", "approvers", "quorum", "reason", "timeout", "ttl", "cert"):
                if k in p:
                    v = p[k]
                    lines.append("    %s: %s" % (k, json.dumps(v) if isinstance(v, (list, dict))
                                                    else v))
        write(self.config, "\n".join(lines) + "\n")

    def check_config(self):
        return run([BIN["jitgated"], "--config", self.config, "--check-config"], check=False)

    def start(self, timeout=10, prefix=()):
        """prefix: argv that executes jitgated (e.g. setpriv as another user)."""
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        logf = open(self.log_path, "a")
        logf.write("=== start %d at %s\n" % (self.starts, time.strftime("%T")))
        logf.flush()
        self.proc = subprocess.Popen(list(prefix) +
                                     [BIN["jitgated"], "--config", self.config, "--foreground"],
                                     stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        self.starts += 1

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("jitgated exited with %d during start-up:\n%s" %
                                     (self.proc.returncode, read(self.log_path)))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.socket)
                return True
            except OSError:
                return False
            finally:
                s.close()
        wait_for(ready, timeout, "jitgated to accept connections on " + self.socket)

    def stop(self, sig=signal.SIGTERM):
        """Stops jitgated by its PID; returns its exit status (None if not started)."""
        if self.proc is not None:
            stop_process(self.proc, sig)
            return self.proc.returncode
        return None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # ---- the CLI, as a given user ----

    def cli(self, user, *args, check=False, timeout=30):
        argv = [BIN["jitgate"]] + list(args) + ["--socket", self.socket]
        if user != "root":
            argv = as_user(user, argv)
        return run(argv, check=check, timeout=timeout, cwd="/",
                   env=user_env(user) if user != "root" else None)

    def requests(self, user="bob", pending=True):
        p = self.cli(user, "requests", "--pending" if pending else "--all", "--json", check=True)
        out = p.stdout.strip()
        if not out:
            return []
        try:
            data = json.loads(out)
        except json.JSONDecodeError:  # one object per line
            data = [json.loads(l) for l in out.splitlines() if l.strip()]
        if isinstance(data, dict):
            data = data.get("requests", [data])
        return data

    def wait_pending(self, timeout=15, approver="bob", **match):
        """Waits for a pending request whose fields equal match; returns it."""
        def find():
            for r in self.requests(approver):
                if all(r.get(k) == v for k, v in match.items()):
                    return r
            return None
        return wait_for(find, timeout, "a pending request matching %r" % (match,), interval=0.1)

    def approve(self, user, rid, comment="ok", check=True):
        return self.cli(user, "approve", rid, "--comment", comment, "--yes", check=check)

    def deny(self, user, rid, comment="no", check=True):
        return self.cli(user, "deny", rid, "--comment", comment, check=check)

    def show(self, user, rid):
        p = self.cli(user, "show", rid, "--json", check=True)
        return json.loads(p.stdout)

    # ---- the audit store ----

    def verify(self):
        return run([BIN["jitgate"], "verify", "--store", self.store_dir, "--key", self.pub],
                   check=False)

    def tree_size(self):
        """The number of entries in the store, from its latest checkpoint."""
        p = run([BIN["jitgate"], "log", "checkpoint", "--store", self.store_dir])
        return int(p.stdout.splitlines()[1])

    def entries(self, max_entries=10000, start=0):
        """The entries of the store from index start on, as parsed JSON (stops
        at the first missing index)."""
        out = []
        for i in range(start, start + max_entries):
            p = run([BIN["jitgate"], "log", "entry", "--store", self.store_dir, "--index", str(i),
                     "--json"], check=False)
            if p.returncode != 0:
                if "does not exist" in p.stderr:
                    break  # past the end
                raise AssertionError("jitgate log entry --index %d failed (rc %d): %s" %
                                     (i, p.returncode, p.stderr))
            out.append(json.loads(p.stdout))
        return out


# --------------------------------------------------------------------------
# sshd


class Sshd:
    """A private sshd on 127.0.0.1:<free port>, with its PAM service `service`.

    The PAM service name is sshd's argv[0] basename (TESTING.md §1), so sshd is
    started through a symlink called `service` and /etc/pam.d/<service> (in the
    private /etc) is its stack.
    """

    def __init__(self, dir, service, pam_stack, kbd_interactive=False, extra_config=""):
        self.dir = dir
        os.makedirs(dir, exist_ok=True)
        os.chmod(dir, 0o755)
        self.service = service
        self.port = free_port()
        self.host_key = os.path.join(dir, "host_ed25519")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.host_key])
        self.exe = os.path.join(dir, service)
        os.symlink(SSHD, self.exe)
        self.config = os.path.join(dir, "sshd_config")
        self.log_path = os.path.join(dir, "sshd.log")
        self.pid_file = os.path.join(dir, "sshd.pid")
        self.set_pam_stack(pam_stack)
        cfg = ["Port %d" % self.port,
               "ListenAddress 127.0.0.1",
               "HostKey %s" % self.host_key,
               "PidFile %s" % self.pid_file,
               "UsePAM yes",
               "PubkeyAuthentication yes",
               "PasswordAuthentication no",
               "AuthorizedKeysFile .ssh/authorized_keys",
               "PermitRootLogin no",
               "LogLevel DEBUG1",
               "PrintMotd no",
               "PrintLastLog no",
               "LoginGraceTime 120",
               "MaxStartups 100:30:200",
               "MaxAuthTries 20",
               ]
        if kbd_interactive:
            cfg += ["KbdInteractiveAuthentication yes",
                    "AuthenticationMethods publickey,keyboard-interactive"]
        else:
            cfg += ["KbdInteractiveAuthentication no"]
        write(self.config, "\n".join(cfg) + "\n" + extra_config)
        run([self.exe, "-t", "-f", self.config])
        self.proc = None

    def set_pam_stack(self, text):
        write("/etc/pam.d/" + self.service, text)

    def start(self, timeout=10):
        self.proc = subprocess.Popen([self.exe, "-D", "-f", self.config, "-E", self.log_path],
                                     stdin=subprocess.DEVNULL)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("sshd exited with %d:\n%s" % (self.proc.returncode,
                                                                   read(self.log_path)))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    return s.recv(64).startswith(b"SSH-")
            except OSError:
                return False
        wait_for(ready, timeout, "sshd to listen on port %d" % self.port)

    def stop(self):
        stop_process(self.proc)


class SshUser:
    """A local user with an ssh key pair in dir, authorized for login."""

    def __init__(self, name, dir):
        import pwd
        self.name = name
        self.key = os.path.join(dir, "id_" + name)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name + "@it", "-f", self.key])
        pw = pwd.getpwnam(name)
        ssh_dir = os.path.join(pw.pw_dir, ".ssh")
        os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
        shutil.copy(self.key + ".pub", os.path.join(ssh_dir, "authorized_keys"))
        for p in (ssh_dir, os.path.join(ssh_dir, "authorized_keys")):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(os.path.join(ssh_dir, "authorized_keys"), 0o600)

    def ssh_argv(self, sshd, command, batch=True, log_level="INFO", extra=()):
        argv = [SSH, "-p", str(sshd.port), "-i", self.key,
                "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=" + log_level,
                "-o", "ConnectTimeout=10", "-F", "/dev/null"]
        if batch:
            argv += ["-o", "BatchMode=yes"]
        argv += list(extra)
        argv += ["%s@127.0.0.1" % self.name, command]
        return argv


class Background:
    """A child running in the background with its output captured to files."""

    def __init__(self, argv, dir, name, **kw):
        self.out_path = os.path.join(dir, name + ".out")
        self.err_path = os.path.join(dir, name + ".err")
        self.argv = argv
        self.started = time.monotonic()
        with open(self.out_path, "w") as o, open(self.err_path, "w") as e:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e, **kw)
        self.ended = None

    def wait(self, timeout=30):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(self.proc, signal.SIGKILL)
            raise AssertionError("%s still running after %.0f s\nstdout: %s\nstderr: %s" %
                                 (" ".join(self.argv), timeout, self.stdout, self.stderr))
        if self.ended is None:
            self.ended = time.monotonic()
        return self.proc.returncode

    def running(self):
        return self.proc.poll() is None

    @property
    def elapsed(self):
        return (self.ended or time.monotonic()) - self.started

    @property
    def stdout(self):
        return read(self.out_path)

    @property
    def stderr(self):
        return read(self.err_path)

    def kill(self):
        stop_process(self.proc, signal.SIGKILL)

    def describe(self):
        return "rc=%s after %.1f s\nstdout: %r\nstderr: %r" % (
            self.proc.returncode, self.elapsed, self.stdout, self.stderr)


REQUEST_ID_RE = re.compile(r"request ([0-9a-z]{8})\b", re.IGNORECASE)


# --------------------------------------------------------------------------
# Test base


class IntegrationTest(unittest.TestCase):
    """Base class: a fresh per-test directory and diagnostics on failure."""

    needs = ()  # keys of BIN that must be present

    @classmethod
    def setUpClass(cls):
        missing = [k for k in cls.needs if not BIN.get(k)]
        if missing:
            raise unittest.SkipTest("not built yet: %s (pass --%s)" %
                                    (", ".join(missing), " --".join(missing)))

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix=self._testMethodName[:40] + ".", dir=ROOT)
        os.chmod(self.dir, 0o755)
        self._diag = []  # (label, callable returning text)

    def need_pexpect(self):
        try:
            import pexpect
        except ImportError:
            self.skipTest("python3-pexpect is not installed (apt-get install python3-pexpect)")
        return pexpect

    def add_diag(self, label, fn):
        self._diag.append((label, fn))

    def _outcome_failed(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return False
        result = getattr(outcome, "result", None)
        if result is not None:
            for test, _ in result.failures + result.errors:
                if test is self:
                    return True
        errors = getattr(outcome, "errors", None) or []
        return any(exc for _, exc in errors)

    def tearDown(self):
        if self._outcome_failed() or os.environ.get("JITGATE_IT_VERBOSE"):
            for label, fn in self._diag:
                try:
                    text = fn()
                except Exception as e:  # diagnostics must not mask the failure
                    text = "<%s>" % e
                sys.stderr.write("\n----- %s (%s) -----\n%s\n" % (label, self.id(), text[-6000:]))


# --------------------------------------------------------------------------
# Entry point


def main(test_file, pass_fds=(), exit=True):
    """pass_fds: descriptors the re-executed process inherits. exit=False:
    return the exit status instead of exiting (for a caller with more to do)."""
    global ROOT
    ap = argparse.ArgumentParser(add_help=False)
    for k in BIN:
        ap.add_argument("--" + k)
    opts, rest = ap.parse_known_args()
    for k in BIN:
        v = getattr(opts, k)
        if v and not os.path.exists(v):
            print("FAIL: --%s %s does not exist (not built?)" % (k, v))
            sys.exit(1)
        BIN[k] = os.path.abspath(v) if v else None

    if os.environ.get(NS_ENV) != "1":
        if os.geteuid() != 0:
            print("SKIP: needs root (mount namespace, useradd, sshd, setuid sudo); "
                  "run ctest as root")
            sys.exit(SKIP_CODE)
        for tool in ("unshare", "setpriv", "useradd", "ssh-keygen", SSHD, SSH, SUDO):
            if not shutil.which(tool):
                print("SKIP: %s is not installed" % tool)
                sys.exit(SKIP_CODE)
        root = tempfile.mkdtemp(prefix="jitgate-it.", dir="/tmp")
        os.chmod(root, 0o755)
        env = dict(os.environ, **{NS_ENV: "1", TMP_ENV: root})
        argv = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
                "--mount-proc", "--", sys.executable, os.path.abspath(test_file)] + sys.argv[1:]
        try:
            rc = subprocess.call(argv, env=env, pass_fds=pass_fds)
        finally:
            if os.environ.get("JITGATE_IT_KEEP"):
                print("kept", root)
            else:
                _cleanup_tree(root)
        if not exit:
            return rc
        sys.exit(rc)

    ROOT = os.environ[TMP_ENV]
    _setup_namespace(ROOT)
    os.chdir(ROOT)
    os.environ.pop("JITGATE_SOCKET", None)
    prog = unittest.main(module="__main__", argv=[test_file] + rest, exit=False,
                         verbosity=2)
    r = prog.result
    if r.failures or r.errors or r.unexpectedSuccesses:
        sys.exit(1)
    if r.skipped and len(r.skipped) >= r.testsRun:
        print("SKIP: every test was skipped:")
        for t, why in r.skipped:
            print("  %s: %s" % (t.id(), why))
        sys.exit(SKIP_CODE)
    sys.exit(0)


# --------------------------------------------------------------------------
# Audit helpers


def _walk_json(value):
    """Yields every dict in value, also inside JSON text embedded in strings."""
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _walk_json(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk_json(v)
    elif isinstance(value, str) and value[:1] in ("{", "["):
        try:
            yield from _walk_json(json.loads(value))
        except ValueError:
            pass


def audit_events(entries, request_id):
    """The audit event dicts about request_id, in store order."""
    out = []
    for e in entries:
        for d in _walk_json(e):
            if d.get("request") == request_id and "type" in d:
                out.append(d)
    return out
