#!/usr/bin/env python3
"""Metrics and health with the real programs (docs/jitgated.md, "Metrics",
"Health: jitgate status").

A real jitgated with a CA (key from the real ssh-keygen) and a `metrics:`
section serves Prometheus text on loopback; a certificate request filed by
`jitgate request` and approved with `jitgate approve` shows in the counters;
`jitgate status` exits 0 while all is well and 1, naming the problem, when
the CA key file goes away or the store stops verifying (an entry rewritten
with a valid CRC, which only the Merkle tree can tell); a metrics address
that cannot be bound stops the broker at start with one line; a Unix-socket
endpoint; `jitgate-rec --forward-spool` reports its host's spool backlog.

Usage: test_metrics.py --jitgated PATH --jitgate PATH [--rec PATH] [unittest args]
"""
import http.client
import json
import os
import re
import shutil
import socket
import stat
import struct
import sys
import tempfile
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Background, Broker, read, run, wait_for  # noqa: E402

APPROVERS = {"oncall": ["bob"]}
POLICIES = [{"name": "certs", "match": {"service": ["ssh-cert"]}, "approvers": ["oncall"],
             "reason": "optional", "timeout": "60s", "ttl": "10m"}]


def crc32c(data):
    """CRC-32C (Castagnoli), as the store frames its records."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def metric(text, name):
    """The value of the sample `name` (with its labels, as rendered), or None."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split(" ", 1)[1])
    return None


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


class MetricsTest(harness.IntegrationTest):
    needs = ("jitgated", "jitgate")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        harness.add_users("alice", "bob", "deploy")
        cls.cdir = tempfile.mkdtemp(prefix="metrics.", dir=harness.ROOT)
        os.chmod(cls.cdir, 0o755)
        cls.ca_key = os.path.join(cls.cdir, "ca")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", cls.ca_key])
        cls.port = harness.free_port()
        cls.broker = Broker(os.path.join(cls.cdir, "broker"), APPROVERS, POLICIES,
                            ca={"key": cls.ca_key},
                            extra="metrics:\n  listen: 127.0.0.1:%d\n" % cls.port)
        cls.broker.start()

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "broker"):
            cls.broker.stop()

    def setUp(self):
        super().setUp()
        self.bg = []
        self.add_diag("jitgated log", lambda: read(self.broker.log_path))
        self.add_diag("clients", lambda: "\n".join(b.describe() for b in self.bg))

    def tearDown(self):
        for b in self.bg:
            b.kill()
        super().tearDown()

    def scrape(self, path="/metrics", method="GET"):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()

    def metrics(self):
        status, _, body = self.scrape()
        self.assertEqual(status, 200)
        return body

    def status(self, user="alice", *args):
        return self.broker.cli(user, "status", *args)

    def test_endpoint_speaks_prometheus_text_and_nothing_else(self):
        status, headers, body = self.scrape()
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
        self.assertIn("# TYPE jitgate_requests_total counter\n", body)
        self.assertIn("# TYPE jitgate_decision_seconds histogram\n", body)
        self.assertRegex(body, r'\njitgate_build_info\{version="[0-9.]+"\} 1\n')
        self.assertEqual(metric(body, "jitgate_ca_key_ok"), 1)
        self.assertGreaterEqual(metric(body, "jitgate_store_entries"), 1)  # config `loaded`
        # Every sample line is NAME[{labels}] VALUE.
        for line in body.splitlines():
            if not line.startswith("#"):
                self.assertRegex(line, r'^[a-z_:]+(\{[^}]*\})? [-+0-9.eInfNa]+$')
        self.assertEqual(self.scrape("/")[0], 404)
        self.assertEqual(self.scrape("/metrics/x")[0], 404)
        status, headers, _ = self.scrape(method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers["Allow"], "GET, HEAD")

    def test_a_request_and_its_certificate_are_counted(self):
        before = self.metrics()
        key = 'jitgate_requests_total{service="ssh-cert",outcome="approved"}'
        certs = 'jitgate_certificates_issued_total{type="user"}'
        out = os.path.join("/home/alice", "key-%s" % self._testMethodName[:8])
        argv = harness.as_user("alice", [harness.BIN["jitgate"], "request", "--host", "db1",
                                         "--login", "deploy", "--out", out, "--socket",
                                         self.broker.socket])
        req = Background(argv, self.dir, "request", env=harness.user_env("alice"), cwd="/")
        self.bg.append(req)
        pending = self.broker.wait_pending(approver="bob", user="alice")
        self.assertEqual(metric(self.metrics(), "jitgate_requests_pending"), 1)
        self.assertIn("1 pending", self.status().stdout)
        self.broker.approve("bob", pending["id"])
        self.assertEqual(req.wait(30), 0, req.describe())
        after = self.metrics()
        self.assertEqual((metric(after, key) or 0) - (metric(before, key) or 0), 1)
        self.assertEqual((metric(after, certs) or 0) - (metric(before, certs) or 0), 1)
        self.assertEqual(metric(after, "jitgate_decision_seconds_count") -
                         metric(before, "jitgate_decision_seconds_count"), 1)
        self.assertEqual(metric(after, "jitgate_requests_pending"), 0)
        self.assertGreater(metric(after, "jitgate_store_append_seconds_count"), 0)

    def test_status_is_healthy_then_names_a_missing_ca_key(self):
        p = self.status("alice")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        self.assertRegex(p.stdout, r"\nok    ca key      ssh-ed25519 SHA256:")
        self.assertIn("\nok    metrics     127.0.0.1:%d\n" % self.port, p.stdout)
        self.assertRegex(p.stdout, r"\nok    verified    \d+ entr")
        data = json.loads(self.status("alice", "--json").stdout)
        self.assertTrue(data["healthy"])
        self.assertEqual(data["ca"], "ok")

        moved = self.ca_key + ".away"
        os.rename(self.ca_key, moved)
        try:
            p = self.status("alice")
            self.assertEqual(p.returncode, 1)
            self.assertRegex(p.stderr, r"^jitgate: CA key: ca\.key %s: .*\n$" % re.escape(self.ca_key))
            self.assertIn("\nFAIL  ca key      ", p.stdout)
            self.assertEqual(metric(self.metrics(), "jitgate_ca_key_ok"), 0)
        finally:
            os.rename(moved, self.ca_key)
        self.assertEqual(self.status("alice").returncode, 0)
        self.assertEqual(metric(self.metrics(), "jitgate_ca_key_ok"), 1)

    def test_status_fails_when_the_store_does_not_verify(self):
        seg = os.path.join(self.broker.store_dir, "seg", "0000000001.seg")
        self.broker.stop()
        with open(seg, "rb") as f:
            original = f.read()
        # Rewrite the first audit event's JSON with one letter changed and a
        # valid CRC: the framing is intact, the Merkle tree is not.
        off, data = 0, bytearray(original)
        while True:
            crc, length, rtype = struct.unpack(">IIB", data[off:off + 9])
            payload = bytes(data[off + 9:off + 9 + length])
            self.assertEqual(crc32c(data[off + 4:off + 9 + length]), crc)
            if rtype == 2 and b'"type":"' in payload:
                at = payload.index(b'"type":"') + 8
                data[off + 9 + at] ^= 0x20  # "config" -> "Config"
                struct.pack_into(">I", data, off, crc32c(data[off + 4:off + 9 + length]))
                break
            off += 9 + length
        with open(seg, "wb") as f:
            f.write(data)
        try:
            self.broker.start()
            p = wait_for(lambda: (lambda q: q if q.returncode == 1 else None)(self.status()),
                         30, "jitgate status to see the store fail")
            self.assertRegex(p.stderr, r"^jitgate: the store does not verify: checkpoint of size "
                             r"\d+ \(segment 0000000001 offset \d+\): signed root \S+ does not "
                             r"match the entries .*\n$")
            self.assertIn("\nFAIL  verified    ", p.stdout)
            body = self.metrics()
            self.assertEqual(metric(body, "jitgate_store_verify_ok"), 0)
            self.assertEqual(metric(body, "jitgate_store_verify_errors_total"), 1)
        finally:
            self.broker.stop()
            with open(seg, "r+b") as f:
                f.write(original)
            self.broker.start()
        wait_for(lambda: self.status().returncode == 0, 30, "a healthy status again")

    def test_a_metrics_address_in_use_stops_the_start(self):
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        try:
            b = Broker(os.path.join(self.dir, "b"), APPROVERS, POLICIES,
                       extra="metrics:\n  listen: 127.0.0.1:%d\n" % taken.getsockname()[1])
            p = run([harness.BIN["jitgated"], "--config", b.config], check=False, timeout=30)
        finally:
            taken.close()
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr.splitlines()[-1],
                         r"^jitgated: metrics\.listen 127\.0\.0\.1:\d+: bind 127\.0\.0\.1:\d+: "
                         r".*Address already in use$")

    def test_a_unix_socket_endpoint(self):
        path = os.path.join(self.dir, "metrics.sock")
        b = Broker(os.path.join(self.dir, "b"), APPROVERS, POLICIES,
                   extra="metrics:\n  listen: unix:%s\n" % path)
        b.start()
        try:
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o660)
            conn = UnixHTTPConnection(path)
            conn.request("GET", "/metrics")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertIn("jitgate_requests_pending 0\n", r.read().decode())
            conn.close()
            self.assertIn("\nok    metrics     unix:%s\n" % path, b.cli("root", "status").stdout)
        finally:
            self.assertEqual(b.stop(), 0)
        self.assertFalse(os.path.exists(path))

    def test_forward_spool_reports_the_backlog(self):
        if not harness.BIN.get("rec"):
            self.skipTest("jitgate-rec not given (--rec)")
        spool = os.path.join(self.dir, "spool")
        os.mkdir(spool, 0o700)
        with open(os.path.join(spool, "k3n8v2x9q4m1.spool"), "wb") as f:
            f.write(b"not a spool file")  # cannot be forwarded: it stays
        p = run([harness.BIN["rec"], "--forward-spool", "--socket", self.broker.socket,
                 "--spool", spool, "--host", "web9"], check=False)
        self.assertEqual(p.returncode, 1)  # the bad file
        self.assertNotIn("not reported", p.stderr)
        self.assertEqual(metric(self.metrics(), 'jitgate_spool_backlog_sessions{host="web9"}'), 1)
        self.assertEqual(metric(self.metrics(), 'jitgate_spool_backlog_bytes{host="web9"}'), 16)
        data = json.loads(self.status("alice", "--json").stdout)
        self.assertEqual([(s["host"], s["sessions"], s["bytes"]) for s in data["spools"]],
                         [("web9", 1, 16)])
        self.assertIn("\nWARN  spool       web9: 1 session, 16 bytes waiting, reported ",
                      self.status("alice").stdout)
        # An ordinary user's report is refused.
        os.chmod(self.dir, 0o755)
        os.chmod(spool, 0o755)
        p = run(harness.as_user("alice", [harness.BIN["rec"], "--forward-spool", "--socket",
                                          self.broker.socket, "--spool", spool, "--host", "web9"]),
                check=False, env=harness.user_env("alice"), cwd="/")
        self.assertIn("spool not reported to the broker: the broker refused the spool report",
                      p.stderr)


if __name__ == "__main__":
    harness.main(__file__)
