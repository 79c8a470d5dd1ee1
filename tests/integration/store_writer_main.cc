// store_writer: a real writer process for the SIGKILL crash test. Opens the
// store and appends entries from several threads as fast as it can, printing
// "ack <index> <body>" on stdout for each entry only after it is durable.
// Runs until killed (or until COUNT entries when given). COUNT 0 holds the
// store open without appending until killed (a lock holder for tests).
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: store_writer DIR TAG [COUNT]\n");
    return 2;
  }
  std::string dir = argv[1], tag = argv[2];
  long count = argc > 3 ? std::atol(argv[3]) : -1;
  jitgate::store::StoreOptions opts;
  opts.segment_target_size = 32 * 1024;  // rotate often, to crash during rotation too
  opts.checkpoint_interval_nanos = 2'000'000;
  auto st = jitgate::store::Store::Open(dir, opts);
  if (!st.ok()) {
    std::fprintf(stderr, "store_writer: %s\n", st.status().ToString().c_str());
    return 1;
  }
  std::fprintf(stdout, "open %llu\n", static_cast<unsigned long long>((*st)->size()));
  std::fflush(stdout);
  if (count == 0) {
    for (;;) pause();
  }
  std::mutex out_mu;
  std::atomic<long> n{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (long i = 0;; ++i) {
        if (count >= 0 && n.fetch_add(1) >= count) return;
        std::string body = tag + "-" + std::to_string(t) + "-" + std::to_string(i) +
                           std::string(size_t(i % 300), 'x');
        auto idx = (*st)->Append(2, jitgate::AsBytes(body));
        if (!idx.ok()) {
          std::fprintf(stderr, "store_writer: %s\n", idx.status().ToString().c_str());
          std::_Exit(1);
        }
        std::lock_guard<std::mutex> l(out_mu);
        // One write(2) per line so that a kill never splits an ack line.
        std::string line = "ack " + std::to_string(*idx) + " " + body + "\n";
        if (write(STDOUT_FILENO, line.data(), line.size()) != ssize_t(line.size())) std::_Exit(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  return (*st)->Close().ok() ? 0 : 1;
}
