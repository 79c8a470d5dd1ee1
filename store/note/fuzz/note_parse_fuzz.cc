// libFuzzer target: ParseNote with the property that parse -> format is
// byte-identical, and OpenNote with a fixed verifier (the derived log key).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "store/note/keys.h"
#include "store/note/note.h"

namespace {

using jitgate::note::Verifier;

const Verifier& LogKey() {
  static const Verifier* v = [] {
    auto parsed = Verifier::Parse(
        "log.jitgate.test/v1+1c71b808+ARURKIcaDBZQGPlRaNqseG6nxIVs+s5u+KdD0fO5JmR8");
    if (!parsed.ok()) std::abort();
    return new Verifier(*parsed);
  }();
  return *v;
}

const Verifier& WitnessKey() {
  static const Verifier* v = [] {
    auto parsed = Verifier::Parse(
        "witness.jitgate.test/w1+58755f17+BLrspiz/j0rq710v2QlxUXlpGqQ/IJFSiQaNHgqWLx0B");
    if (!parsed.ok()) std::abort();
    return new Verifier(*parsed);
  }();
  return *v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view msg(reinterpret_cast<const char*>(data), size);
  auto note = jitgate::note::ParseNote(msg);
  if (note.ok()) {
    if (jitgate::note::FormatNote(*note) != msg) std::abort();
    if (note->signatures.empty() || note->text.empty() || note->text.back() != '\n') std::abort();
  }
  auto opened = jitgate::note::OpenNote(msg, {LogKey(), WitnessKey()});
  if (opened.ok()) {
    if (!note.ok() || opened->verified.empty() || opened->text != note->text) std::abort();
  }
  return 0;
}
