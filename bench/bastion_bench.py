#!/usr/bin/env python3
"""Bastion benchmarks (issue 6; PRODUCT.md performance targets), same run:

  1. bulk throughput: `head -c N /dev/zero` on the target, read by the real
     ssh through jitgated's bastion (recording every byte into the store)
     vs OpenSSH ProxyJump through a stock sshd. Target ratio >= 1.0. Then
     the same with N random bytes (`cat` of a file), which the recording
     cannot compress: reported, no target.
  2. keystroke echo round trip (one byte to `cat` on the target and back):
     p50/p99 through the bastion vs ProxyJump. Target: p99 added < 1 ms.
  3. memory per idle session: proportional set size of the bastion's session
     processes, vs the jump sshd's processes per ProxyJump connection.

Both paths use the same client cipher (chacha20-poly1305, OpenSSH's default;
libssh negotiates the same upstream). Runs as root in the integration tests'
private namespace (tests/integration/approval/harness.py):

  sudo bench/bastion_bench.py --jitgated build/broker/jitgated \
      --jitgate build/cli/jitgate [--mib 512] [--runs 3] [--echoes 500] [--idle 20]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration", "approval"))
import harness  # noqa: E402
from harness import SSH, Broker, Sshd, read, run, write  # noqa: E402

OPTS = harness.bench_options({"mib": 512, "runs": 3, "echoes": 500, "idle": 20})

PAM_PERMIT = ("auth     required pam_permit.so\n"
              "account  required pam_permit.so\n"
              "session  required pam_permit.so\n"
              "password required pam_deny.so\n")
CIPHER = "chacha20-poly1305@openssh.com"


def pss_kib(pid):
    try:
        for line in read("/proc/%d/smaps_rollup" % pid).splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def children_matching(ppid, needle):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            ppid_of = int(stat[stat.rindex(")") + 1:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid_of == ppid and needle in cmd:
            out.append(int(d))
    return out


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


class BastionBench(harness.IntegrationTest):
    needs = ("jitgated", "jitgate")

    def test_bench(self):
        harness.add_users("alice", "deploy")
        d = tempfile.mkdtemp(prefix="bench.", dir=harness.ROOT)
        os.chmod(d, 0o755)
        ca = os.path.join(d, "ca")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", ca])
        os.makedirs("/etc/ssh/jitgate-principals", mode=0o755, exist_ok=True)
        write("/etc/ssh/jitgate-principals/deploy", "deploy\n")
        # alice's key: authorized on the jump host (as alice) and the target
        # (as deploy) for ProxyJump, configured for the bastion.
        key = os.path.join(d, "id_alice")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
        import pwd
        for user in ("alice", "deploy"):
            pw = pwd.getpwnam(user)
            sd = os.path.join(pw.pw_dir, ".ssh")
            os.makedirs(sd, mode=0o700, exist_ok=True)
            write(os.path.join(sd, "authorized_keys"), read(key + ".pub"), mode=0o600)
            for p in (sd, os.path.join(sd, "authorized_keys")):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        target = Sshd(os.path.join(d, "target"), "sshd-bench-target", PAM_PERMIT,
                      extra_config="TrustedUserCAKeys %s.pub\n"
                      "AuthorizedPrincipalsFile /etc/ssh/jitgate-principals/%%u\n"
                      "LogLevel ERROR\n" % ca)
        jump = Sshd(os.path.join(d, "jump"), "sshd-bench-jump", PAM_PERMIT,
                    extra_config="AllowTcpForwarding yes\nLogLevel ERROR\n")
        for s in (target, jump):
            # The harness's sshd logs at DEBUG1; keep the benchmark's quiet.
            write(s.config, read(s.config).replace("LogLevel DEBUG1\n", ""))
            s.start()
        bastion_key = os.path.join(d, "bastion_host")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", bastion_key])
        port = harness.free_port()
        extra = "\n".join([
            "bastion:",
            "  listen: 127.0.0.1:%d" % port,
            "  host_key: %s" % bastion_key,
            "  users:",
            "    alice: [%s]" % json.dumps(read(key + ".pub").strip()),
            "  targets:",
            "    db1: {address: 127.0.0.1, port: %d, host_key: %s}"
            % (target.port, json.dumps(" ".join(read(target.host_key + ".pub").split()[:2]))),
        ])
        broker = Broker(os.path.join(d, "broker"), {"oncall": ["root"]},
                        [{"name": "auto", "match": {"service": ["bastion"]},
                          "approve": "auto", "reason": "none", "ttl": "1h"}],
                        ca={"key": ca, "max_ttl": "1h"}, extra=extra)
        broker.start()
        common = ["-i", key, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                  "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                  "-o", "BatchMode=yes", "-F", "/dev/null", "-c", CIPHER]
        via_bastion = [SSH, "-p", str(port)] + common + ["-l", "deploy@db1", "127.0.0.1"]
        jump_cmd = ("%s -p %d %s -W %%h:%%p alice@127.0.0.1"
                    % (SSH, jump.port, " ".join(common)))
        via_jump = [SSH, "-p", str(target.port)] + common + [
            "-o", "ProxyCommand=" + jump_cmd, "-l", "deploy", "127.0.0.1"]
        paths = (("bastion", via_bastion), ("proxyjump", via_jump))

        # 1. Bulk throughput: the workload (zeros, which the recording
        # compresses), then incompressible bytes (a random file), where the
        # store gets every byte as it is.
        n = OPTS["mib"] << 20
        random_file = os.path.join(d, "random.bin")
        with open("/dev/urandom", "rb") as src, open(random_file, "wb") as dst:
            for _ in range(OPTS["mib"]):
                dst.write(src.read(1 << 20))
        os.chmod(random_file, 0o644)
        sources = (("zeros", "head -c %d /dev/zero" % n, "target >= 1.0"),
                   ("random", "cat %s" % random_file, "reported"))
        for label, command, goal in sources:
            rates = {"bastion": [], "proxyjump": []}
            for r in range(OPTS["runs"]):
                for name, argv in paths:
                    # The bytes go to `wc -c` (C, cheap), not into Python, so
                    # that the reader costs both paths little and the same.
                    t0 = time.monotonic()
                    p = subprocess.Popen(argv + [command], stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)
                    wc = subprocess.run(["wc", "-c"], stdin=p.stdout, stdout=subprocess.PIPE,
                                        timeout=900)
                    p.stdout.close()
                    err = p.stderr.read()
                    p.wait(60)
                    dt = time.monotonic() - t0
                    self.assertEqual(p.returncode, 0, err)
                    self.assertEqual(int(wc.stdout.split()[0]), n)
                    rates[name].append(OPTS["mib"] / dt)
            b, j = statistics.median(rates["bastion"]), statistics.median(rates["proxyjump"])
            print("\n1. bulk %d MiB of %s (median of %d, whole ssh command incl. connect):" %
                  (OPTS["mib"], label, OPTS["runs"]))
            print("   bastion (recorded) %7.1f MiB/s  %s" %
                  (b, " ".join("%.1f" % x for x in rates["bastion"])))
            print("   ProxyJump          %7.1f MiB/s  %s" %
                  (j, " ".join("%.1f" % x for x in rates["proxyjump"])))
            print("   ratio bastion/ProxyJump = %.2f (%s)" % (b / j, goal))
        os.unlink(random_file)

        # 2. Keystroke echo round trips through `cat`.
        lat = {}
        for name, argv in paths:
            p = subprocess.Popen(argv + ["cat"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
            # Warm up: the first byte waits for connect and authentication.
            p.stdin.write(b"w")
            self.assertEqual(p.stdout.read(1), b"w")
            times = []
            for i in range(OPTS["echoes"]):
                t0 = time.perf_counter()
                p.stdin.write(b"x")
                got = p.stdout.read(1)
                times.append((time.perf_counter() - t0) * 1e6)
                self.assertEqual(got, b"x")
            p.stdin.close()
            p.wait(30)
            lat[name] = times
        print("2. echo round trip, %d keystrokes (microseconds):" % OPTS["echoes"])
        for name in ("bastion", "proxyjump"):
            print("   %-10s p50 %7.0f  p99 %7.0f" % (name, pct(lat[name], 50),
                                                     pct(lat[name], 99)))
        added = pct(lat["bastion"], 99) - pct(lat["proxyjump"], 99)
        print("   p99 added by the bastion: %.0f us (target < 1000)" % added)

        # 3. Memory per idle session.
        k = OPTS["idle"]
        procs = [subprocess.Popen(argv + ["sleep 300"], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _name, argv in paths for _ in range(k)]
        try:
            def counted():
                sess = children_matching(broker.proc.pid, "--bastion-session")
                return len(sess) >= k and sess
            sess = harness.wait_for(counted, 120, "%d bastion sessions" % k)
            time.sleep(2)  # let them settle into the relay loop
            jump_procs = []
            for pid in children_matching(jump.proc.pid, "sshd"):
                jump_procs.append(pid)
                jump_procs += children_matching(pid, "sshd")
            bastion_pss = sum(pss_kib(p) for p in sess) / len(sess)
            jump_pss = sum(pss_kib(p) for p in jump_procs) / max(1, k)
            print("3. memory per idle session (PSS, %d sessions):" % k)
            print("   bastion session process  %6.0f KiB" % bastion_pss)
            print("   jump sshd (per ProxyJump connection, %d processes)  %6.0f KiB" %
                  (len(jump_procs), jump_pss))
        finally:
            for p in procs:
                p.kill()
                p.wait()
        broker.stop()
        target.stop()
        jump.stop()


if __name__ == "__main__":
    harness.main(__file__)
