// Test-only record builders for tests that make recordings (never linked
// into a shipped binary; header-only).
#ifndef JITGATE_RECORDER_RECORDING_TESTONLY_H_
#define JITGATE_RECORDER_RECORDING_TESTONLY_H_

#include <cstdint>
#include <string_view>

#include "recorder/recording.h"

namespace jitgate::recorder::testonly {

inline Record Out(int64_t t, std::string_view data) {
  Record r;
  r.stream = Stream::kOutput;
  r.time_ns = t;
  r.data.assign(data.begin(), data.end());
  return r;
}

inline Record In(int64_t t, std::string_view data) {
  Record r = Out(t, data);
  r.stream = Stream::kInput;
  return r;
}

inline Record Err(int64_t t, std::string_view data) {
  Record r = Out(t, data);
  r.stream = Stream::kError;
  return r;
}

inline Record Suspend(int64_t t, std::string_view signal) {
  Record r = Out(t, signal);
  r.stream = Stream::kSuspend;
  return r;
}

inline Record Resize(int64_t t, uint16_t cols, uint16_t rows) {
  Record r;
  r.stream = Stream::kResize;
  r.time_ns = t;
  r.cols = cols;
  r.rows = rows;
  return r;
}

}  // namespace jitgate::recorder::testonly

#endif  // JITGATE_RECORDER_RECORDING_TESTONLY_H_
