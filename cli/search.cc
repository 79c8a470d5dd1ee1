#include "cli/search.h"

#include <algorithm>
#include <functional>

namespace jitgate::cli {

namespace {

char Fold(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

}  // namespace

TranscriptSearch::TranscriptSearch(std::string needle, bool ignore_case, size_t max_hits)
    : needle_(std::move(needle)), ignore_case_(ignore_case), max_hits_(max_hits) {}

void TranscriptSearch::Add(const recorder::Record& r) {
  if (r.stream == recorder::Stream::kResize || r.stream == recorder::Stream::kSuspend ||
      r.data.empty() || needle_.empty()) {
    return;
  }
  StreamState& st = r.stream == recorder::Stream::kInput   ? input_
                    : r.stream == recorder::Stream::kError ? error_
                                                           : output_;
  const std::string_view data = AsChars(ByteSpan(r.data));

  // Context after hits found earlier.
  for (size_t& h : st.open) {
    std::string& after = hits_[h].after;
    after.append(data.substr(0, kSearchContext - after.size()));
  }
  std::erase_if(st.open, [&](size_t h) { return hits_[h].after.size() >= kSearchContext; });

  // Matches that end in the new bytes (those inside the tail were found
  // when it was added).
  const size_t m = needle_.size();
  const size_t tail = st.tail.size();
  const size_t from = tail - std::min(tail, m - 1);
  std::string buf = std::move(st.tail);
  buf.append(data);
  auto time_at = [&](size_t i) { return i < st.times.size() ? st.times[i] : r.time_ns; };
  auto equal = [&](char a, char b) { return ignore_case_ ? Fold(a) == Fold(b) : a == b; };
  for (auto it = buf.begin() + ptrdiff_t(from);;) {
    it = std::search(it, buf.end(), needle_.begin(), needle_.end(), equal);
    if (it == buf.end()) break;
    const size_t p = size_t(it - buf.begin());
    ++count_;
    if (hits_.size() < max_hits_) {
      SearchHit hit;
      hit.stream = r.stream;
      hit.time_ns = time_at(p);
      const size_t b = p - std::min(p, kSearchContext);
      hit.before = buf.substr(b, p - b);
      hit.match = buf.substr(p, m);
      hit.after = buf.substr(p + m, kSearchContext);
      hits_.push_back(std::move(hit));
      if (hits_.back().after.size() < kSearchContext) st.open.push_back(hits_.size() - 1);
    }
    ++it;
  }

  // Keep what a later match or a later hit's context may need.
  const size_t keep = std::min(buf.size(), m - 1 + kSearchContext);
  std::vector<int64_t> times;
  times.reserve(keep);
  for (size_t i = buf.size() - keep; i < buf.size(); ++i) times.push_back(time_at(i));
  st.tail = buf.substr(buf.size() - keep);
  st.times = std::move(times);
}

}  // namespace jitgate::cli
