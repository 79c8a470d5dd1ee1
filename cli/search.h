// Finding text in recorded transcripts (`jitgate search`, docs/auditor.md).
//
// TranscriptSearch is fed a session's records in order and finds every
// occurrence of a byte string in the input stream (what was typed) and in
// the output stream (what the terminal showed), each stream on its own, also
// where an occurrence spans records and chunks (typing arrives a byte per
// record). The bytes are matched as recorded: escape sequences and line
// editing (a typed backspace) are not interpreted. Overlapping occurrences
// are all reported ("aa" occurs twice in "aaa").
//
// Each hit carries the time of the record that holds its first byte and up
// to kSearchContext bytes of context on each side, the context after it
// possibly from later records. Memory is bounded by the needle, the context
// and max_hits, whatever the session's size. Thread-compatible.
#ifndef JITGATE_CLI_SEARCH_H_
#define JITGATE_CLI_SEARCH_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "recorder/recording.h"

namespace jitgate::cli {

inline constexpr size_t kSearchContext = 32;

struct SearchHit {
  recorder::Stream stream = recorder::Stream::kOutput;
  int64_t time_ns = 0;  // since the session started
  std::string before;   // raw bytes, up to kSearchContext
  std::string match;    // the bytes matched (original case)
  std::string after;    // raw bytes, up to kSearchContext
};

class TranscriptSearch {
 public:
  // needle must not be empty. ignore_case folds ASCII letters only (bytes
  // are not text). At most max_hits hits are kept; all are counted.
  TranscriptSearch(std::string needle, bool ignore_case, size_t max_hits);

  // Resize records are ignored.
  void Add(const recorder::Record& r);

  // The hits kept, in the order found; count() is all of them.
  const std::vector<SearchHit>& hits() const { return hits_; }
  uint64_t count() const { return count_; }

 private:
  struct StreamState {
    std::string tail;               // the last bytes seen (needle - 1 + context)
    std::vector<int64_t> times;     // the time of each byte of tail
    std::vector<size_t> open;       // hits still gathering context after them
  };

  std::string needle_;
  bool ignore_case_;
  size_t max_hits_;
  StreamState input_, output_, error_;
  std::vector<SearchHit> hits_;
  uint64_t count_ = 0;
};

}  // namespace jitgate::cli

#endif  // JITGATE_CLI_SEARCH_H_
