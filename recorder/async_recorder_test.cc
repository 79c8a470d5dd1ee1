#include "recorder/async_recorder.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/base/unique_fd.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::recorder {
namespace {

using ::jitgate::testing::StatusIs;
using ::testing::_;
using ::testing::HasSubstr;

// Waits for conditions signalled by other threads; a bound only so that a
// broken recorder fails the test instead of hanging it.
constexpr auto kPatience = std::chrono::seconds(20);

// A sink that logs what it is asked to do, can hold Add until released,
// fail at a given Add, and hear of a termination.
class FakeSink : public RecordSink {
 public:
  FakeSink() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

  Status Add(Record record) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++adds_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !hold_; });
    if (adds_ == fail_at_) return DataLossError("store is gone");
    if (adds_ == terminate_at_) terminated_ = "alice";
    log_.push_back("R" + std::string(record.data.begin(), record.data.end()));
    return OkStatus();
  }
  Status Flush() override { return Log("F"); }
  Status Tick() override { return Log("T"); }
  Status Poll() override {
    uint64_t v;
    (void)!read(fd_.get(), &v, sizeof(v));
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_termination_) terminated_ = "bob";
    log_.push_back("P");
    return OkStatus();
  }
  int fd() override { return fd_.get(); }
  std::optional<std::string> terminated_by() override {
    std::lock_guard<std::mutex> lock(mu_);
    return terminated_;
  }
  std::string terminate_comment() override { return "enough"; }

  // Test controls.
  void Hold(bool hold) {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = hold;
    cv_.notify_all();
  }
  bool WaitForAdds(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kPatience, [&] { return adds_ >= n; });
  }
  void FailAt(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_at_ = n;
  }
  void TerminateAt(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    terminate_at_ = n;
  }
  void PushTermination() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_termination_ = true;
    }
    const uint64_t one = 1;
    ASSERT_EQ(write(fd_.get(), &one, sizeof(one)), 8);
  }
  std::vector<std::string> log() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }
  int adds() {
    std::lock_guard<std::mutex> lock(mu_);
    return adds_;
  }

 private:
  Status Log(const char* what) {
    std::lock_guard<std::mutex> lock(mu_);
    log_.push_back(what);
    return OkStatus();
  }

  UniqueFd fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false;
  int adds_ = 0;
  int fail_at_ = -1;
  int terminate_at_ = -1;
  bool pending_termination_ = false;
  std::optional<std::string> terminated_;
  std::vector<std::string> log_;
};

Record Output(const std::string& text, int64_t t = 0) {
  return Record{Stream::kOutput, t, Bytes(text.begin(), text.end()), 0, 0};
}

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kPatience).count())) == 1;
}

// Everything, records, flushes and ticks alike, reaches the sink in the
// order it was queued, across many small queues' worth.
TEST(AsyncRecorderTest, KeepsOrder) {
  FakeSink sink;
  AsyncRecorderOptions o;
  o.max_queued_bytes = 64;  // the producer waits for the worker often
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AsyncRecorder> rec, AsyncRecorder::Start(&sink, o));
  std::vector<std::string> want;
  for (int i = 0; i < 2000; ++i) {
    std::string text = std::to_string(i);
    ASSERT_OK(rec->Add(Output(text, i)));
    want.push_back("R" + text);
    if (i % 7 == 0) {
      ASSERT_OK(rec->Flush());
      want.push_back("F");
    }
    if (i % 13 == 0) {
      ASSERT_OK(rec->Tick());
      want.push_back("T");
    }
  }
  ASSERT_OK(rec->Finish());
  std::vector<std::string> got = sink.log();
  got.erase(std::remove(got.begin(), got.end(), "P"), got.end());  // idle polls
  EXPECT_EQ(got, want);
}

// A sink that does not keep up stops the producer once the queue is full,
// and memory stays bounded: at most the worker's batch and a full queue.
TEST(AsyncRecorderTest, BlocksWhenFull) {
  FakeSink sink;
  sink.Hold(true);
  std::mutex mu;
  std::condition_variable cv;
  bool full = false;
  AsyncRecorderOptions o;
  o.max_queued_bytes = 8 * 1024;
  o.on_queue_full = [&] {
    std::lock_guard<std::mutex> lock(mu);
    full = true;
    cv.notify_all();
  };
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AsyncRecorder> rec, AsyncRecorder::Start(&sink, o));
  std::atomic<int> queued{0};
  const std::string kilobyte(1024, 'x');
  std::thread producer([&] {
    for (int i = 0; i < 100; ++i) {
      EXPECT_OK(rec->Add(Output(kilobyte)));
      ++queued;
    }
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kPatience, [&] { return full; }))
        << "the producer never waited; " << queued.load() << " records queued";
  }
  EXPECT_LE(queued.load(), 16);  // 8 KiB in the queue, at most 8 KiB taken
  EXPECT_LE(sink.adds(), 1);     // the sink is still held on its first
  sink.Hold(false);
  producer.join();
  EXPECT_EQ(queued.load(), 100);
  ASSERT_OK(rec->Finish());
  std::vector<std::string> log = sink.log();
  EXPECT_EQ(std::count(log.begin(), log.end(), "R" + kilobyte), 100);
}

// The sink's first error is sticky: the relay hears of it through
// notify_fd, every later call returns it, and nothing after it is applied.
TEST(AsyncRecorderTest, ErrorIsStickyAndNotified) {
  FakeSink sink;
  sink.FailAt(3);
  sink.Hold(true);  // all five are queued before the sink fails
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AsyncRecorder> rec, AsyncRecorder::Start(&sink));
  for (int i = 0; i < 5; ++i) ASSERT_OK(rec->Add(Output(std::to_string(i))));
  ASSERT_OK(rec->Flush());  // wakes the worker (the relay's timer does)
  sink.Hold(false);
  ASSERT_TRUE(Readable(rec->notify_fd()));
  EXPECT_THAT(rec->Notified(), StatusIs(StatusCode::kDataLoss, HasSubstr("store is gone")));
  EXPECT_THAT(rec->Add(Output("late")), StatusIs(StatusCode::kDataLoss, _));
  EXPECT_THAT(rec->Flush(), StatusIs(StatusCode::kDataLoss, _));
  EXPECT_THAT(rec->Tick(), StatusIs(StatusCode::kDataLoss, _));
  EXPECT_THAT(rec->Finish(), StatusIs(StatusCode::kDataLoss, _));
  EXPECT_EQ(sink.log(), (std::vector<std::string>{"R0", "R1"}));  // no flush
  EXPECT_EQ(sink.adds(), 3);
}

// A producer waiting for room is released by the error, with the error.
TEST(AsyncRecorderTest, ErrorReleasesWaitingProducer) {
  FakeSink sink;
  sink.Hold(true);
  sink.FailAt(1);
  std::mutex mu;
  std::condition_variable cv;
  bool full = false;
  AsyncRecorderOptions o;
  o.max_queued_bytes = 10;
  o.on_queue_full = [&] {
    std::lock_guard<std::mutex> lock(mu);
    full = true;
    cv.notify_all();
  };
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AsyncRecorder> rec, AsyncRecorder::Start(&sink, o));
  Status last;
  std::thread producer([&] {
    for (int i = 0; i < 100 && last.ok(); ++i) last = rec->Add(Output("0123456789"));
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kPatience, [&] { return full; }));
  }
  sink.Hold(false);
  producer.join();
  EXPECT_THAT(last, StatusIs(StatusCode::kDataLoss, _));
  EXPECT_TRUE(sink.log().empty());
}

// A termination the sink reads while the worker is idle (a push from the
// broker) is published and wakes the relay; so is one found during Add.
TEST(AsyncRecorderTest, PublishesTerminationWhileIdle) {
  FakeSink sink;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AsyncRecorder> rec, AsyncRecorder::Start(&sink));
  ASSERT_OK(rec->Add(Output("a")));
  EXPECT_FALSE(rec->terminated().has_value());
  sink.PushTermination();
  ASSERT_TRUE(Readable(rec->notify_fd()));
  ASSERT_OK(rec->Notified());
  std::optional<Termination> t = rec->terminated();
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->by, "bob");
  EXPECT_EQ(t->comment, "enough");
  // Recording goes on after a termination (what the session still says).
  ASSERT_OK(rec->Add(Output("b")));
  ASSERT_OK(rec->Finish());
  std::vector<std::string> log = sink.log();
  EXPECT_EQ(std::count(log.begin(), log.end(), "Rb"), 1);
}

TEST(AsyncRecorderTest, PublishesTerminationFromAdd) {
  FakeSink sink;
  sink.TerminateAt(2);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AsyncRecorder> rec, AsyncRecorder::Start(&sink));
  ASSERT_OK(rec->Add(Output("a")));
  ASSERT_OK(rec->Add(Output("b")));
  ASSERT_OK(rec->Flush());
  ASSERT_TRUE(Readable(rec->notify_fd()));
  ASSERT_OK(rec->Notified());
  ASSERT_TRUE(rec->terminated().has_value());
  EXPECT_EQ(rec->terminated()->by, "alice");
}

// An idle worker is left idle by records below wake_bytes and woken once
// wake_bytes of them are queued. (The test waits for the worker to be idle
// first: a worker that has not yet gone idle takes whatever is queued.)
TEST(AsyncRecorderTest, WakesForABatchOfRecords) {
  FakeSink sink;
  AsyncRecorderOptions o;
  o.wake_bytes = 2048;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AsyncRecorder> rec, AsyncRecorder::Start(&sink, o));
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (!rec->idle_for_testing() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(rec->idle_for_testing());
  ASSERT_OK(rec->Add(Output(std::string(1024, 'a'))));
  EXPECT_TRUE(rec->idle_for_testing());
  EXPECT_EQ(sink.adds(), 0);
  ASSERT_OK(rec->Add(Output(std::string(1024, 'b'))));
  ASSERT_TRUE(sink.WaitForAdds(2));
  ASSERT_OK(rec->Finish());
}

// Finish applies everything still queued before it returns.
TEST(AsyncRecorderTest, FinishDrains) {
  FakeSink sink;
  sink.Hold(true);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AsyncRecorder> rec, AsyncRecorder::Start(&sink));
  for (int i = 0; i < 50; ++i) ASSERT_OK(rec->Add(Output(std::to_string(i))));
  ASSERT_OK(rec->Flush());
  ASSERT_TRUE(sink.WaitForAdds(1));
  Status finished;
  std::thread finisher([&] { finished = rec->Finish(); });
  sink.Hold(false);
  finisher.join();
  ASSERT_OK(finished);
  std::vector<std::string> log = sink.log();
  log.erase(std::remove(log.begin(), log.end(), "P"), log.end());
  ASSERT_EQ(log.size(), 51u);
  EXPECT_EQ(log.front(), "R0");
  EXPECT_EQ(log[49], "R49");
  EXPECT_EQ(log.back(), "F");
  EXPECT_THAT(rec->Add(Output("late")), StatusIs(StatusCode::kFailedPrecondition, _));
  EXPECT_OK(rec->Finish());  // again: the same answer
}

// Bound to the relay: the session's output is recorded in order, and a
// sink that fails ends the session with its error (fail closed).
TEST(AsyncRecorderTest, RelayRecordsThroughIt) {
  FakeSink sink;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AsyncRecorder> rec, AsyncRecorder::Start(&sink));
  UniqueFd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
  RelayOptions o;
  o.path = "/bin/sh";
  o.argv = {"sh", "-c", "printf one; printf two"};
  o.use_pty = false;
  o.in_fd = devnull.get();
  o.out_fd = devnull.get();
  o.err_fd = devnull.get();
  rec->Bind(&o);
  ASSERT_OK(RunRelay(o).status());
  ASSERT_OK(rec->Finish());
  std::string text;
  for (const std::string& e : sink.log()) {
    if (e[0] == 'R') text += e.substr(1);
  }
  EXPECT_EQ(text, "onetwo");
}

TEST(AsyncRecorderTest, RelayEndsOnSinkError) {
  FakeSink sink;
  sink.FailAt(1);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AsyncRecorder> rec, AsyncRecorder::Start(&sink));
  UniqueFd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
  RelayOptions o;
  o.path = "/bin/sh";
  // Says something, then would run for a long time: only the error ends it.
  o.argv = {"sh", "-c", "echo start; exec sleep 60"};
  o.use_pty = false;
  o.in_fd = devnull.get();
  o.out_fd = devnull.get();
  o.err_fd = devnull.get();
  o.kill_grace_ms = 100;
  rec->Bind(&o);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THAT(RunRelay(o).status(), StatusIs(StatusCode::kDataLoss, HasSubstr("store is gone")));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
  EXPECT_THAT(rec->Finish(), StatusIs(StatusCode::kDataLoss, _));
}

}  // namespace
}  // namespace jitgate::recorder
