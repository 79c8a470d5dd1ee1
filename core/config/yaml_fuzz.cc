// Fuzz target: ParseYaml plus every typed getter over whatever it parsed.
//
// Properties checked beyond "no crash": every error message starts with the
// file name (so it can be located), every node's mark and path are within
// bounds, and the caps in yaml.h hold.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/config/reader.h"
#include "core/config/yaml.h"

namespace {

using jitgate::config::MappingEntry;
using jitgate::config::Node;

constexpr std::string_view kFile = "fuzz.yaml";

void Check(bool ok) {
  if (!ok) abort();
}

void CheckError(const jitgate::Status& s) {
  if (!s.ok()) Check(s.message().substr(0, kFile.size()) == kFile);
}

void Visit(const Node& node, int depth, size_t* count) {
  Check(depth <= jitgate::config::kMaxYamlDepth + 1);
  Check(++*count <= jitgate::config::kMaxYamlNodes);
  Check(node.mark().line >= 1 && node.mark().column >= 1);
  Check(node.path().size() <= 256);

  // Scalar conversions never crash and always locate their errors.
  CheckError(jitgate::config::AsString(node).status());
  CheckError(jitgate::config::AsBool(node).status());
  CheckError(jitgate::config::AsInt64(node, INT64_MIN, INT64_MAX).status());
  CheckError(jitgate::config::AsDuration(node).status());
  CheckError(jitgate::config::AsStringList(node).status());
  if (node.is_scalar()) {
    auto d = jitgate::config::ParseDuration(node.value());
    if (d.ok()) Check(d->count() >= 0);
  }

  if (node.is_mapping()) {
    CheckError(jitgate::config::CheckKeys(
        node, {"socket", "state_dir", "submitters"}));
    for (std::string_view key :
         {"socket", "timeout", "quorum", "submitters", "debug"}) {
      CheckError(jitgate::config::GetString(node, key, "x").status());
      CheckError(jitgate::config::GetString(node, key).status());
      CheckError(jitgate::config::GetBool(node, key, false).status());
      CheckError(jitgate::config::GetInt64(node, key, 0, 100, 1).status());
      CheckError(jitgate::config::GetDuration(node, key).status());
      CheckError(jitgate::config::GetStringList(node, key, {}).status());
      CheckError(jitgate::config::GetMapping(node, key, false).status());
      CheckError(jitgate::config::GetSequence(node, key, true).status());
    }
    // Find is linear; probe only the first entries to keep huge mappings fast.
    for (size_t i = 0; i < node.entries().size() && i < 16; ++i) {
      Check(jitgate::config::Find(node, node.entries()[i].key) ==
            &node.entries()[i].value);
    }
    for (const MappingEntry& e : node.entries())
      Visit(e.value, depth + 1, count);
  }
  for (const Node& item : node.items()) Visit(item, depth + 1, count);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto root = jitgate::config::ParseYaml(text, kFile);
  if (!root.ok()) {
    CheckError(root.status());
    return 0;
  }
  size_t count = 0;
  Visit(*root, 0, &count);
  return 0;
}
