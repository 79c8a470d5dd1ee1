// Shared helpers for the store benchmarks: flags, timing, a scratch store,
// and the raw SHA-256 baseline each benchmark measures in the same run
// (house rule 4: a bench prints its baseline and the ratio).
//
// Benchmarks are plain programs: they print what they measured and exit 0
// unless the measurement itself could not be made. Not thread-safe unless
// stated.
#ifndef JITGATE_BENCH_BENCH_UTIL_H_
#define JITGATE_BENCH_BENCH_UTIL_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/base/bytes.h"
#include "core/base/status.h"
#include "store/note/keys.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::bench {

// Flags of the form --name=value or --name value. Unknown flags are an error
// (so a typo does not silently run the default).
class Flags {
 public:
  // Parses argv against the allowed names (without "--"). On error prints
  // usage to stderr and exits 2.
  Flags(int argc, char** argv, const std::map<std::string, std::string>& defaults_with_help);
  int64_t Int(const std::string& name) const;
  const std::string& Str(const std::string& name) const { return values_.at(name); }
  bool Bool(const std::string& name) const;

 private:
  std::map<std::string, std::string> values_;
};

// Seconds on the monotonic clock.
inline double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Exits with a message when s is not OK: a benchmark cannot go on without
// its store.
void CheckOk(const Status& s, const char* what);
template <typename T>
T Unwrap(StatusOr<T> v, const char* what) {
  CheckOk(v.status(), what);
  return std::move(v).value();
}

// A fresh store in a TempDir under $TMPDIR or /tmp ("jitgate-test.XXXXXX"),
// with its signing key (deterministic seed, mode 0600) beside it. The whole
// tree is removed when the ScratchStore is destroyed, sealed segments
// included (TempDir clears chattr +i).
class ScratchStore {
 public:
  ScratchStore();
  const std::string& dir() const { return store_dir_; }
  const std::string& root() const { return tmp_.path(); }
  const note::Verifier& verifier() const { return *verifier_; }

 private:
  testing::TempDir tmp_;
  std::string store_dir_;
  std::optional<note::Verifier> verifier_;
};

// Total size in bytes of the regular files under dir (recursive).
uint64_t TreeBytes(const std::string& dir);

// A buffer of n pseudo-random bytes (deterministic xorshift; content does not
// affect SHA-256 speed, but it keeps compressible-data effects out).
Bytes RandomBytes(size_t n, uint64_t seed);

// Single-thread raw SHA-256 (OpenSSL through crypto::Sha256) over `count`
// one-shot buffers of `size` bytes, taken in turn from a ring of distinct
// buffers that fits in L2 (so this is the CPU's hashing speed, the most
// favourable figure: the baseline to beat). Returns seconds, best of `reps`.
double Sha256Seconds(uint64_t count, size_t size, int reps);

// "123.4 MiB/s" of bytes over seconds.
std::string MiBps(double bytes, double seconds);
// Peak (VmHWM) and current (VmRSS) resident set of this process, in KiB.
int64_t SelfPeakRssKiB();
int64_t SelfRssKiB();

// The load average, printed so that noisy runs can be recognised.
std::string LoadAverage();

// Median and min of samples (not empty).
double Median(std::vector<double> v);
double Min(const std::vector<double>& v);

}  // namespace jitgate::bench

#endif  // JITGATE_BENCH_BENCH_UTIL_H_
