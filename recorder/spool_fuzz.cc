// Fuzz target for the spool file reader (recorder/spool_format.h): spool
// files are read back by the forwarder, so their parser sees whatever a
// crash, a bad disk or a meddler left. Properties, beyond not crashing:
//   * every chunk SpoolReader yields belongs to the header's session and
//     carries the next index, and nothing follows the end;
//   * the prefix it accepted, written again frame by frame with
//     SpoolFrameBytes, is byte for byte the input up to offset() (frames are
//     canonical), and reading that prefix yields the same entries;
//   * ReadSpoolChunkAt agrees with the reader on every chunk frame.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/base/unique_fd.h"
#include "recorder/recording.h"
#include "recorder/spool.h"

namespace {

using namespace jitgate;
using namespace jitgate::recorder;

void Check(bool ok) {
  if (!ok) std::abort();
}

UniqueFd MemFile(const uint8_t* data, size_t size) {
  UniqueFd fd(::memfd_create("spool", MFD_CLOEXEC));
  Check(static_cast<bool>(fd));
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd.get(), data + done, size - done);
    Check(n > 0);
    done += static_cast<size_t>(n);
  }
  return fd;
}

struct Read {
  bool opened = false;
  std::vector<SpoolEntry> entries;
  uint64_t end = 0;  // offset() after the last entry
  bool failed = false;
};

Read ReadAll(const uint8_t* data, size_t size) {
  Read out;
  UniqueFd fd = MemFile(data, size);
  auto r = SpoolReader::Open(fd.get(), "fuzz");
  if (!r.ok()) return out;
  out.opened = true;
  out.end = (*r)->offset();
  while (true) {
    auto e = (*r)->Next();
    if (!e.ok()) {
      out.failed = true;
      // The error sticks.
      Check(!(*r)->Next().ok());
      break;
    }
    if (!e->has_value()) {
      Check((*r)->offset() + (*r)->torn_bytes() == size);
      break;
    }
    const SpoolEntry& entry = **e;
    if (entry.type == SpoolFrameType::kChunk) {
      auto h = DecodeChunkHeader(entry.chunk);
      Check(h.ok() && h->session == (*r)->session() && h->index == entry.index);
      auto again = ReadSpoolChunkAt(fd.get(), entry.offset, "fuzz");
      Check(again.ok() && *again == entry.chunk);
    } else {
      Check(entry.type == SpoolFrameType::kClose);
    }
    out.entries.push_back(entry);
    out.end = (*r)->offset();
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Read first = ReadAll(data, size);
  if (!first.opened) return 0;
  // Nothing after the end.
  for (size_t i = 0; i + 1 < first.entries.size(); ++i) {
    Check(first.entries[i].type == SpoolFrameType::kChunk);
  }
  // Re-encode the accepted prefix from its parts: the same bytes.
  UniqueFd fd = MemFile(data, size);
  auto r = SpoolReader::Open(fd.get(), "fuzz");
  Check(r.ok());
  auto header = SpoolHeaderPayload((*r)->first_index(), (*r)->meta());
  Check(header.ok());
  Bytes rebuilt(kSpoolMagic, kSpoolMagic + kSpoolMagicSize);
  Bytes h = SpoolFrameBytes(SpoolFrameType::kHeader, *header);
  rebuilt.insert(rebuilt.end(), h.begin(), h.end());
  for (const SpoolEntry& e : first.entries) {
    Bytes payload;
    if (e.type == SpoolFrameType::kChunk) {
      payload = e.chunk;
    } else {
      Check(wire::EncodeBody(e.close, &payload).ok());
    }
    Check(rebuilt.size() == e.offset);
    Bytes f = SpoolFrameBytes(e.type, payload);
    rebuilt.insert(rebuilt.end(), f.begin(), f.end());
  }
  Check(rebuilt.size() == first.end);
  Check(std::memcmp(rebuilt.data(), data, rebuilt.size()) == 0);
  Read second = ReadAll(rebuilt.data(), rebuilt.size());
  Check(second.opened && !second.failed &&
        second.entries.size() == first.entries.size());
  return 0;
}
