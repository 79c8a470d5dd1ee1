#include "recorder/async_recorder.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <system_error>

#include "recorder/recording_client.h"

namespace jitgate::recorder {

namespace {
constexpr int kWorkerNice = 10;
}  // namespace

Status RecordingClientSink::Add(Record record) { return client_->Add(std::move(record)); }
Status RecordingClientSink::Flush() { return client_->Flush(); }
Status RecordingClientSink::Poll() { return client_->Poll(); }
Status RecordingClientSink::Tick() { return client_->Tick(); }
int RecordingClientSink::fd() { return client_->fd(); }
std::optional<std::string> RecordingClientSink::terminated_by() {
  return client_->terminated_by();
}
std::string RecordingClientSink::terminate_comment() { return client_->terminate_comment(); }

StatusOr<std::unique_ptr<AsyncRecorder>> AsyncRecorder::Start(RecordSink* sink,
                                                               AsyncRecorderOptions options) {
  std::unique_ptr<AsyncRecorder> r(new AsyncRecorder(sink, std::move(options)));
  for (UniqueFd* fd : {&r->wake_, &r->notify_}) {
    fd->reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!*fd) return ErrnoToStatus(errno, "eventfd");
  }
  // The relay's signals (RunRelay) are for the relay thread: the worker
  // blocks them, so its blocking calls are never interrupted by them. The
  // thread inherits the mask it is created with.
  sigset_t block, old;
  sigemptyset(&block);
  for (int sig : {SIGCHLD, SIGWINCH, SIGHUP, SIGTERM, SIGPIPE}) sigaddset(&block, sig);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  Status started;
  try {
    r->worker_ = std::thread([p = r.get()] { p->Run(); });
  } catch (const std::system_error& e) {  // std::thread reports by exception
    started = ErrnoToStatus(e.code().value(), "recording thread");
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (!started.ok()) return started;
  return r;
}

AsyncRecorder::~AsyncRecorder() { Finish().IgnoreError(); }

void AsyncRecorder::Signal(int fd) {
  const uint64_t one = 1;
  // EAGAIN only when the counter is about to overflow: it is readable.
  (void)!::write(fd, &one, sizeof(one));
}

Status AsyncRecorder::Push(Op op, size_t bytes) {
  bool wake = false;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!error_.ok()) return error_;
    if (finishing_) return FailedPreconditionError("recording: already finished");
    auto room = [&] {
      return !error_.ok() || queue_.empty() ||
             queued_bytes_ + bytes <= options_.max_queued_bytes;
    };
    if (!room()) {
      if (options_.on_queue_full) options_.on_queue_full();
      if (idle_) {  // whatever wake_bytes says: only the worker makes room
        idle_ = false;
        Signal(wake_.get());
      }
      space_cv_.wait(lock, room);
      if (!error_.ok()) return error_;
    }
    const bool is_record = op.type == OpType::kRecord;
    queue_.push_back(std::move(op));
    queued_bytes_ += bytes;
    if (idle_ && (!is_record || queued_bytes_ >= options_.wake_bytes)) {
      idle_ = false;
      wake = true;
    }
  }
  if (wake) Signal(wake_.get());
  return OkStatus();
}

Status AsyncRecorder::Add(Record record) {
  const size_t bytes = record.data.size();
  return Push(Op{OpType::kRecord, std::move(record)}, bytes);
}

Status AsyncRecorder::Flush() { return Push(Op{OpType::kFlush, {}}, 0); }

Status AsyncRecorder::Tick() { return Push(Op{OpType::kTick, {}}, 0); }

Status AsyncRecorder::Notified() {
  uint64_t n;
  while (::read(notify_.get(), &n, sizeof(n)) < 0 && errno == EINTR) {
  }
  return status();
}

std::optional<Termination> AsyncRecorder::terminated() const {
  std::lock_guard<std::mutex> lock(mu_);
  return terminated_;
}

bool AsyncRecorder::idle_for_testing() const {
  std::lock_guard<std::mutex> lock(mu_);
  return idle_;
}

Status AsyncRecorder::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

Status AsyncRecorder::Finish() {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return error_;
    finishing_ = true;
    if (idle_) {
      idle_ = false;
      wake = true;
    }
  }
  if (wake) Signal(wake_.get());
  if (worker_.joinable()) worker_.join();
  std::lock_guard<std::mutex> lock(mu_);
  finished_ = true;
  return error_;
}

void AsyncRecorder::Bind(RelayOptions* relay) {
  relay->on_record = [this](Record r) { return Add(std::move(r)); };
  relay->on_flush = [this] { return Flush(); };
  relay->extra_fd = [this] { return notify_fd(); };
  relay->on_extra_readable = [this] { return Notified(); };
  relay->on_tick = [this] { return Tick(); };
}

void AsyncRecorder::Fail(Status s) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.ok()) error_ = std::move(s);
    queue_.clear();
    queued_bytes_ = 0;
  }
  space_cv_.notify_all();
  Signal(notify_.get());
}

void AsyncRecorder::CheckTermination() {
  if (termination_seen_) return;
  std::optional<std::string> by = sink_->terminated_by();
  if (!by.has_value()) return;
  termination_seen_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    terminated_ = Termination{std::move(*by), sink_->terminate_comment()};
  }
  Signal(notify_.get());
}

void AsyncRecorder::Idle() {
  pollfd fds[2] = {{wake_.get(), POLLIN, 0}, {sink_->fd(), POLLIN, 0}};
  const nfds_t n = fds[1].fd >= 0 ? 2 : 1;
  int r = poll(fds, n, -1);
  {
    std::lock_guard<std::mutex> lock(mu_);
    idle_ = false;
  }
  if (r <= 0) return;  // EINTR: look again
  if ((fds[0].revents & POLLIN) != 0) {
    uint64_t v;
    (void)!::read(wake_.get(), &v, sizeof(v));
  }
  if (n == 2 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
    Status s = sink_->Poll();
    if (!s.ok()) return Fail(std::move(s));
    CheckTermination();
  }
}

void AsyncRecorder::Run() {
  // The relay is a chain of waits (the writer, the kernel's tty flush, the
  // relay's read); the worker only has to keep up on average, and the bounded
  // queue makes the relay wait for it if it does not. At nice 10 it runs in
  // the time the chain leaves idle instead of pre-empting a link of it (a
  // linux thread's own nice; a failure changes nothing but speed).
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kWorkerNice);
  std::deque<Op> batch;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_.ok()) return;
      if (queue_.empty()) {
        if (finishing_) return;
        idle_ = true;
      } else {
        batch.swap(queue_);
        queued_bytes_ = 0;
      }
    }
    if (batch.empty()) {
      Idle();
      continue;
    }
    space_cv_.notify_all();
    for (Op& op : batch) {
      Status s;
      switch (op.type) {
        case OpType::kRecord:
          s = sink_->Add(std::move(op.record));
          break;
        case OpType::kFlush:
          s = sink_->Flush();
          break;
        case OpType::kTick:
          s = sink_->Tick();
          break;
      }
      if (!s.ok()) return Fail(std::move(s));
      CheckTermination();
    }
    batch.clear();
  }
}

}  // namespace jitgate::recorder
