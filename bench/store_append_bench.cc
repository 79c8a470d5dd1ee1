// store_append_bench: durable append throughput of 4 KiB transcript chunks
// from concurrent appenders, against one core's raw SHA-256 over the same
// bytes (issue #3). Target: ratio >= 0.5.
//
// Each appender streams like a recorder: it keeps a window of W
// unacknowledged entries (AppendAsync; WaitDurable on the oldest when the
// window is full). The clock stops only when every entry is acknowledged
// durable (fsync'd). The figure with W=1 (every append waits for its own
// fsync; only the group commit across threads helps) is printed too.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <algorithm>
#include <deque>
#include <latch>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "store/store.h"
#include "store/store_format.h"

namespace jitgate::bench {
namespace {

constexpr size_t kChunk = 4096;
constexpr double kTarget = 0.5;

struct RunResult {
  double seconds = 0;  // first append to last acknowledgement
  double close_seconds = 0;
  uint64_t entries = 0;
  uint64_t disk_bytes = 0;
};

RunResult Run(uint64_t entries, int threads, int window) {
  ScratchStore scratch;
  auto store = Unwrap(store::Store::Open(scratch.dir(), store::StoreOptions{}), "open store");
  const uint64_t per_thread = entries / uint64_t(threads);
  std::latch start(threads + 1);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      Bytes chunk = RandomBytes(kChunk, uint64_t(t) + 1);
      std::deque<uint64_t> unacked;
      start.arrive_and_wait();
      for (uint64_t i = 0; i < per_thread; ++i) {
        // Chunks differ like a recorder's (owner and sequence number).
        chunk[0] = uint8_t(t);
        std::memcpy(chunk.data() + 1, &i, sizeof(i));
        if (window <= 1) {
          Unwrap(store->Append(uint8_t(store::EntryType::kTranscriptChunk), chunk), "append");
          continue;
        }
        unacked.push_back(Unwrap(
            store->AppendAsync(uint8_t(store::EntryType::kTranscriptChunk), chunk), "append"));
        if (unacked.size() >= size_t(window)) {
          CheckOk(store->WaitDurable(unacked.front()), "wait durable");
          unacked.pop_front();
        }
      }
      // Entries are durable in index order: the newest covers the rest.
      if (!unacked.empty()) CheckOk(store->WaitDurable(unacked.back()), "wait durable");
    });
  }
  start.arrive_and_wait();
  double t0 = Now();
  for (auto& w : workers) w.join();
  RunResult r;
  r.seconds = Now() - t0;
  r.entries = per_thread * uint64_t(threads);
  if (store->durable_size() != r.entries) {
    std::fprintf(stderr, "bench: durable_size %llu, expected %llu\n",
                 (unsigned long long)store->durable_size(), (unsigned long long)r.entries);
    std::exit(1);
  }
  double c0 = Now();
  CheckOk(store->Close(), "close");
  r.close_seconds = Now() - c0;
  r.disk_bytes = TreeBytes(scratch.dir());
  return r;
}

// The disk's ceiling for the same bytes: one file in the same filesystem,
// written in batches of `batch` bytes with an fsync after each (what the
// store's sync thread does, without framing, hashing, index or rotation).
double DiskSeconds(uint64_t bytes, size_t batch) {
  testing::TempDir tmp;
  std::string path = tmp.Join("disk");
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror("open");
    std::exit(1);
  }
  Bytes buf = RandomBytes(batch, 7);
  double t0 = Now();
  for (uint64_t done = 0; done < bytes; done += batch) {
    if (::write(fd, buf.data(), batch) != ssize_t(batch) || ::fsync(fd) != 0) {
      std::perror("write/fsync");
      std::exit(1);
    }
  }
  double s = Now() - t0;
  ::close(fd);
  return s;
}

void Report(const char* label, const RunResult& r, double baseline_mibps) {
  double bytes = double(r.entries) * kChunk;
  double mibps = bytes / r.seconds / (1 << 20);
  double ratio = mibps / baseline_mibps;
  std::printf("%s\n", label);
  std::printf("  entries        %llu x 4 KiB = %.0f MiB of chunk bodies, %.0f MiB on disk\n",
              (unsigned long long)r.entries, bytes / (1 << 20), double(r.disk_bytes) / (1 << 20));
  std::printf("  time           %.3f s to all-durable (close afterwards: %.3f s)\n", r.seconds,
              r.close_seconds);
  std::printf("  throughput     %.1f MiB/s, %.0f entries/s\n", mibps,
              double(r.entries) / r.seconds);
  std::printf("  ratio = %.3f (target >= %.1f): %s\n", ratio, kTarget,
              ratio >= kTarget ? "PASS" : "FAIL");
}

int Main(int argc, char** argv) {
  Flags flags(argc, argv,
              {{"mib", "1024|MiB of chunk bodies in the main (windowed) run"},
               {"threads", "8|concurrent appender threads"},
               {"window", "256|unacknowledged entries each appender keeps in flight"},
               {"w1-mib", "32|MiB for the W=1 run (0 skips it)"},
               {"baseline-reps", "3|SHA-256 baseline repetitions (best is used)"}});
  const int threads = int(flags.Int("threads"));
  const int window = int(flags.Int("window"));
  const uint64_t entries = uint64_t(flags.Int("mib")) * (1 << 20) / kChunk;
  const uint64_t w1_entries = uint64_t(flags.Int("w1-mib")) * (1 << 20) / kChunk;
  const int reps = int(flags.Int("baseline-reps"));

  std::printf("store_append_bench: durable append of 4 KiB transcript chunks (entry type 2)\n");
  std::printf("  %u CPUs, load average %s; store under $TMPDIR or /tmp; default StoreOptions\n",
              std::thread::hardware_concurrency(), LoadAverage().c_str());
  std::printf("  appenders %d, window W=%d, %llu entries\n\n", threads, window,
              (unsigned long long)entries);

  // Baseline: one core, OpenSSL SHA-256 over the same number of 4 KiB buffers.
  double sha_s = Sha256Seconds(entries, kChunk, reps);
  double sha_mibps = double(entries) * kChunk / sha_s / (1 << 20);
  std::printf("baseline: raw SHA-256, 1 thread, %llu x 4 KiB buffers (hot in cache), best of %d\n",
              (unsigned long long)entries, reps);
  std::printf("  time %.3f s, %.1f MiB/s\n\n", sha_s, sha_mibps);

  // Batches as large as all the windows together: the most the store can
  // have in flight per fsync.
  size_t batch = size_t(threads) * size_t(std::max(window, 1)) * kChunk;
  double disk_s = DiskSeconds(entries * kChunk, batch);
  double disk_mibps = double(entries) * kChunk / disk_s / (1 << 20);
  std::printf("context: the disk's ceiling, write(%zu KiB) + fsync in a loop, same bytes\n",
              batch >> 10);
  std::printf("  time %.3f s, %.1f MiB/s (= ratio %.3f against the baseline: the most any\n"
              "  store that fsyncs every byte can reach here)\n\n",
              disk_s, disk_mibps, disk_mibps / sha_mibps);

  RunResult main = Run(entries, threads, window);
  char label[128];
  std::snprintf(label, sizeof(label), "store: %d appenders, W=%d (the target figure)", threads,
                window);
  Report(label, main, sha_mibps);
  std::printf("  of the disk ceiling: %.0f%%\n",
              100.0 * double(main.entries) * kChunk / main.seconds / (1 << 20) / disk_mibps);

  if (w1_entries > 0) {
    RunResult w1 = Run(w1_entries, threads, 1);
    std::snprintf(label, sizeof(label),
                  "\nstore: %d appenders, W=1 (each append waits for its own fsync; for honesty)",
                  threads);
    Report(label, w1, sha_mibps);
  }
  std::printf("\nload average at end %s\n", LoadAverage().c_str());
  return 0;
}

}  // namespace
}  // namespace jitgate::bench

int main(int argc, char** argv) { return jitgate::bench::Main(argc, argv); }
