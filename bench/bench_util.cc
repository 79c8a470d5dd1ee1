#include "bench/bench_util.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/base/env.h"
#include "core/crypto/crypto.h"
#include "store/store.h"

namespace jitgate::bench {

Flags::Flags(int argc, char** argv, const std::map<std::string, std::string>& defaults_with_help) {
  // Each value of defaults_with_help is "default|help".
  auto usage = [&](const std::string& why) {
    std::fprintf(stderr, "%s: %s\nflags:\n", argv[0], why.c_str());
    for (const auto& [name, dh] : defaults_with_help) {
      size_t bar = dh.find('|');
      std::fprintf(stderr, "  --%-16s %s (default %s)\n", name.c_str(),
                   dh.substr(bar + 1).c_str(), dh.substr(0, bar).c_str());
    }
    std::exit(2);
  };
  for (const auto& [name, dh] : defaults_with_help) values_[name] = dh.substr(0, dh.find('|'));
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") usage("usage");
    if (a.rfind("--", 0) != 0) usage("unexpected argument " + a);
    a = a.substr(2);
    std::string value;
    size_t eq = a.find('=');
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      usage("--" + a + " needs a value");
    }
    if (!values_.count(a)) usage("unknown flag --" + a);
    values_[a] = value;
  }
}

int64_t Flags::Int(const std::string& name) const {
  const std::string& v = values_.at(name);
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0') {
    std::fprintf(stderr, "--%s: not an integer: %s\n", name.c_str(), v.c_str());
    std::exit(2);
  }
  return x;
}

bool Flags::Bool(const std::string& name) const { return Int(name) != 0; }

void CheckOk(const Status& s, const char* what) {
  if (s.ok()) return;
  std::fprintf(stderr, "bench: %s: %s\n", what, s.ToString().c_str());
  std::exit(1);
}

ScratchStore::ScratchStore() {
  Env* env = DefaultEnv();
  // A fixed seed: the benchmark needs a key, not a secret.
  auto signer = Unwrap(
      note::Signer::FromSeed("bench.jitgate/store", crypto::Sha256(AsBytes("bench seed"))),
      "signer");
  verifier_ = signer.GetVerifier();
  std::string key_path = tmp_.Join("log.key");
  crypto::SecretBytes skey = signer.EncodeSignerKey();
  CheckOk(env->WriteFileAtomically(key_path, skey.span(), 0600), "write key");
  store_dir_ = tmp_.Join("store");
  CheckOk(store::CreateStore(env, store_dir_, key_path), "create store");
}

uint64_t TreeBytes(const std::string& dir) {
  uint64_t total = 0;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) total += TreeBytes(path);
    if (S_ISREG(st.st_mode)) total += uint64_t(st.st_size);
  }
  ::closedir(d);
  return total;
}

Bytes RandomBytes(size_t n, uint64_t seed) {
  Bytes b(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b[i] = uint8_t(x >> 32);
  }
  return b;
}

double Sha256Seconds(uint64_t count, size_t size, int reps) {
  constexpr size_t kRing = 64;  // 64 x 4 KiB = 256 KiB: stays in L2
  std::vector<Bytes> ring;
  for (size_t i = 0; i < kRing; ++i) ring.push_back(RandomBytes(size, 1000 + i));
  double best = 1e300;
  uint8_t sink = 0;
  for (int r = 0; r < reps; ++r) {
    double t0 = Now();
    for (uint64_t i = 0; i < count; ++i) sink ^= crypto::Sha256(ring[i % kRing])[0];
    best = std::min(best, Now() - t0);
  }
  // Keep the digests observable so the loop cannot be optimised away.
  if (sink == 0x5a) std::fputc('\0', stderr);
  return best;
}

std::string MiBps(double bytes, double seconds) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.1f MiB/s", bytes / seconds / (1 << 20));
  return buf;
}

namespace {
int64_t StatusField(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  size_t n = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, n, field) == 0) return std::atoll(line.c_str() + n);
  }
  return -1;
}
}  // namespace

int64_t SelfPeakRssKiB() { return StatusField("VmHWM:"); }
int64_t SelfRssKiB() { return StatusField("VmRSS:"); }

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double Min(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

}  // namespace jitgate::bench
