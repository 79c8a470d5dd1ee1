#!/usr/bin/env python3
"""sudo session recording (issue 7), same run: jitgate's I/O plugin vs sudo's own log_output.

The same command, `sudo -n cat FILE` of N MiB of log-like text, run by an
ordinary user (alice, NOPASSWD) under the real setuid sudo in three set-ups:

  * jitgate_io: /etc/sudo.conf adds `Plugin jitgate_io jitgate_sudo.so`,
    recording into a real jitgated's signed store (sudoers `!log_output`);
  * log_output: sudo's own I/O log (sudoers `Defaults log_output` with
    `iolog_dir` in a temporary directory; sudo's default zlib compression);
  * no I/O log: neither (context: what sudo costs without recording).

Two cases each:

  1. pty: `script -q -c "sudo -n cat FILE" /dev/null` with a fresh pty as
     script's stdin and /dev/null as its stdout; sudo sees a terminal and runs
     `cat` on a pty of its own (use_pty), logging tty output;
  2. pipe: `sudo -n cat FILE > /dev/null` without a terminal; with an I/O
     logger sudo puts a pipe between cat and /dev/null and logs stdout.

Printed: MiB/s per set-up (median of --runs), the ratio jitgate_io /
log_output per case (no target in PRODUCT.md; > 1 means jitgate records
faster than sudo's built-in logger), and the bytes each recorder stored for
one session. The approval plugin is not loaded: this measures recording.

Runs as root in the integration tests' private namespace
(tests/integration/approval/harness.py), so the machine's /etc/sudo.conf and
sudoers are never touched:

  sudo bench/sudo_io_bench.py --jitgated build/broker/jitgated \
      --jitgate build/cli/jitgate --sudo-plugins build/sudo/jitgate_sudo.so [--mib 64] [--runs 3]
"""
import json
import os
import pty
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration", "approval"))
if "--sudo-plugins" in sys.argv:  # travels to the re-executed process in the environment
    _i = sys.argv.index("--sudo-plugins")
    os.environ["JITGATE_IT_SUDO_PLUGINS"] = os.path.abspath(sys.argv[_i + 1])
    del sys.argv[_i:_i + 2]
import harness  # noqa: E402
from harness import Broker, as_user, run, user_env  # noqa: E402

OPTS = harness.bench_options({"mib": 64, "runs": 3})
PLUGINS = os.environ.get("JITGATE_IT_SUDO_PLUGINS")
USER = "alice"


def write_text(path, mib):
    """mib MiB of syslog-style lines (about 90 bytes each, varying fields)."""
    r = random.Random(7)
    want = mib << 20
    n = 0
    with open(path, "w") as f:
        batch = []
        while n < want:
            line = ("Nov 26 10:%02d:%02d db%d kernel: [%6d.%06d] audit: type=1400 pid=%d "
                    "comm=\"worker%d\" res=%s\n" %
                    (r.randrange(60), r.randrange(60), r.randrange(9), r.randrange(999999),
                     r.randrange(10 ** 6), r.randrange(99999), r.randrange(64),
                     r.choice(("success", "failed"))))
            batch.append(line)
            n += len(line)
            if len(batch) >= 10000:
                f.write("".join(batch))
                batch = []
        f.write("".join(batch))
    os.chmod(path, 0o644)
    return n


def dir_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total


def timed(argv, on_pty, env, cwd):
    """Seconds for argv to finish; stdin a fresh pty (on_pty) or /dev/null."""
    master = slave = None
    stdin = subprocess.DEVNULL
    if on_pty:
        master, slave = pty.openpty()
        stdin = slave
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=env, cwd=cwd)
    if slave is not None:
        os.close(slave)
    try:
        err = p.communicate(timeout=1800)[1]
    finally:
        if master is not None:
            os.close(master)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        raise AssertionError("%s exited %d: %s" % (" ".join(argv), p.returncode,
                                                   err.decode(errors="replace")[-500:]))
    return dt


class SudoIoBench(harness.IntegrationTest):
    needs = ("jitgated", "jitgate")

    def configure(self, mode, socket, iolog_dir):
        """sudo.conf and sudoers for one set-up."""
        conf = ("Plugin sudoers_policy sudoers.so\n"
                "Plugin sudoers_io sudoers.so\n"
                "Plugin sudoers_audit sudoers.so\n")
        if mode == "jitgate_io":
            conf += "Plugin jitgate_io %s socket=%s\n" % (PLUGINS, socket)
        harness.write("/etc/sudo.conf", conf)
        log = ("log_output, iolog_dir=%s" % iolog_dir if mode == "log_output" else "!log_output")
        harness.write("/etc/sudoers.d/jitgate-bench",
                      "Defaults:%s !lecture, use_pty, %s\n%s ALL=(ALL) NOPASSWD: ALL\n" %
                      (USER, log, USER), 0o440)
        run(["visudo", "-c"])

    def test_bench(self):
        if not PLUGINS:
            self.skipTest("pass --sudo-plugins PATH/jitgate_sudo.so")
        if not shutil.which("script"):
            self.skipTest("script (util-linux) is not installed")
        harness.add_users(USER)
        d = tempfile.mkdtemp(prefix="sudoiobench.", dir=harness.ROOT)
        os.chmod(d, 0o755)
        text = os.path.join(d, "text.log")
        size = write_text(text, OPTS["mib"])
        iolog_dir = os.path.join(d, "sudo-io")
        broker = Broker(os.path.join(d, "broker"), {"oncall": ["root"]},
                        [{"name": "unused", "match": {"service": ["none"]}, "approve": "deny"}])
        broker.start()
        env = user_env(USER)
        sudo_cat = as_user(USER, ["sudo", "-n", "/usr/bin/cat", text])
        cases = [
            ("pty", ["script", "-q", "-c", " ".join(sudo_cat), "/dev/null"], True),
            ("pipe", sudo_cat, False),
        ]
        modes = ["no I/O log", "log_output", "jitgate_io"]
        rates = {(m, c): [] for m in modes for c, _a, _p in cases}
        stored = {}
        load = [os.getloadavg()[0]]
        for _r in range(OPTS["runs"]):
            for mode in modes:
                self.configure(mode, broker.socket, iolog_dir)
                for case, argv, on_pty in cases:
                    shutil.rmtree(iolog_dir, ignore_errors=True)
                    os.makedirs(iolog_dir, mode=0o700)
                    before = dir_bytes(broker.store_dir)
                    dt = timed(argv, on_pty, env, d)
                    rates[(mode, case)].append(size / dt / (1 << 20))
                    if (mode, case) not in stored:
                        if mode == "jitgate_io":
                            stored[(mode, case)] = dir_bytes(broker.store_dir) - before
                        elif mode == "log_output":
                            stored[(mode, case)] = dir_bytes(iolog_dir)
        load.append(os.getloadavg()[0])

        med = {k: statistics.median(v) for k, v in rates.items()}
        print("\n%d MiB of text, `sudo -n cat FILE` as %s (MiB/s, median of %d; "
              "load average %.2f at start, %.2f at end):" %
              (OPTS["mib"], USER, OPTS["runs"], load[0], load[1]))
        for case, _argv, _p in cases:
            print("  %s:" % case)
            for mode in modes:
                print("    %-12s %8.1f   %s" % (mode, med[(mode, case)],
                                                " ".join("%.1f" % x for x in rates[(mode, case)])))
            print("    jitgate_io / log_output = %.2f   (jitgate_io / no I/O log = %.2f)" %
                  (med[("jitgate_io", case)] / med[("log_output", case)],
                   med[("jitgate_io", case)] / med[("no I/O log", case)]))
        print("  stored for one session (text %d B):" % size)
        for (mode, case), n in sorted(stored.items()):
            print("    %-10s %-4s %12d B" % (mode, case, n))

        # Every jitgate session is in the store, complete, and the store verifies.
        sessions = json.loads(run([harness.BIN["jitgate"], "sessions", "--json", "--store",
                                   broker.store_dir]).stdout)["sessions"]
        self.assertEqual(len(sessions), len(cases) * OPTS["runs"])
        for s in sessions:
            self.assertTrue(s["ended"], s)
            self.assertEqual(s["exit_status"], 0, s)
            self.assertGreaterEqual(s["bytes_out"], size, s)
        broker.stop()
        v = run([harness.BIN["jitgate"], "verify", "--store", broker.store_dir, "--key",
                 broker.pub], check=False, timeout=1800)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)


if __name__ == "__main__":
    harness.main(__file__)
