// YAML documents as a small tree of Nodes that remember where they came from.
//
// jitgate reads one configuration file (jitgate.yaml) and rejects anything it
// does not understand with "file:line: message". This header is the syntax
// layer: ParseYaml/LoadYamlFile turn text into a Node tree through libyaml's
// event API, with caps that make hostile input cheap to reject. Typed access
// (strings, booleans, integers, durations, unknown-key checks) lives in
// core/config/reader.h.
//
// Deliberately unsupported, because a configuration file never needs them and
// each one is a way to make two readers disagree about the same file: more
// than one document, anchors and aliases, explicit tags ("!!str"), non-scalar
// mapping keys and duplicate keys. Input must be UTF-8.
#ifndef JITGATE_CORE_CONFIG_YAML_H_
#define JITGATE_CORE_CONFIG_YAML_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"

namespace jitgate::config {

// Mark is a position in a YAML source. line and column are 1-based.
struct Mark {
  std::string file;
  int line = 0;
  int column = 0;

  // Returns "file:line", the prefix of every configuration error.
  std::string ToString() const;
};

struct MappingEntry;

// Node is one YAML value: null, a scalar (always kept as its source text), a
// sequence or a mapping. Mappings keep their entries in source order. A Node
// owns its children; it is a plain value type (copyable, movable) and is not
// thread-safe to mutate.
class Node {
 public:
  enum class Kind { kNull, kScalar, kSequence, kMapping };

  // Factories. The parser sets path() afterwards.
  static Node Null(Mark mark);
  static Node Scalar(std::string value, bool quoted, Mark mark);
  static Node Sequence(Mark mark);
  static Node Mapping(Mark mark);

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::kNull; }
  bool is_scalar() const { return kind_ == Kind::kScalar; }
  bool is_sequence() const { return kind_ == Kind::kSequence; }
  bool is_mapping() const { return kind_ == Kind::kMapping; }

  // Where the node starts in the source.
  const Mark& mark() const { return mark_; }

  // Where the node sits in the document, for messages: "" for the root,
  // "broker", "broker.socket", "policies[1].match". Long keys are shortened,
  // so the label is bounded (about 200 bytes) however deep or wide the input.
  const std::string& path() const { return path_; }
  void set_path(std::string path) { path_ = std::move(path); }

  // The scalar's text, exactly as libyaml decoded it (escapes resolved, may
  // contain any byte including NUL). Empty unless is_scalar().
  const std::string& value() const { return value_; }
  // True unless the scalar was written plain: a quoted, literal (|) or folded
  // (>) scalar is always a string, never null, a boolean or a number.
  bool quoted() const { return quoted_; }

  // Sequence items; empty unless is_sequence().
  const std::vector<Node>& items() const { return items_; }
  std::vector<Node>& mutable_items() { return items_; }

  // Mapping entries in source order, keys unique; empty unless is_mapping().
  const std::vector<MappingEntry>& entries() const { return entries_; }
  std::vector<MappingEntry>& mutable_entries() { return entries_; }

 private:
  // Out of line: MappingEntry is incomplete here.
  Node(Kind kind, Mark mark);

  Kind kind_;
  Mark mark_;
  std::string path_;
  std::string value_;
  bool quoted_ = false;
  std::vector<Node> items_;
  std::vector<MappingEntry> entries_;
};

// MappingEntry is one "key: value" pair. Keys are always scalars.
struct MappingEntry {
  std::string key;
  Mark key_mark;
  Node value;
};

// KindName returns "null", "a string", "a list" or "a mapping", for messages
// such as "expected a list, got a string".
std::string_view KindName(Node::Kind kind);

// Limits applied to every document. They bound memory and time on hostile
// input (billion-laughs expansions are impossible anyway without aliases).
inline constexpr size_t kMaxYamlBytes = size_t{1} << 20;  // 1 MiB
inline constexpr int kMaxYamlDepth = 64;                  // nested collections
inline constexpr size_t kMaxYamlNodes = 100000;           // keys count as nodes

// ParseYaml parses text, a single YAML document, into a Node tree. file_name
// is used only in marks and messages. An empty stream yields a null root.
//
// Fails with INVALID_ARGUMENT and a message starting "file:line" on:
//   - libyaml syntax errors: "file:line:col: <problem> <context>";
//   - more than one document;
//   - anchors or aliases ("anchors and aliases are not supported");
//   - explicit tags;
//   - duplicate keys in one mapping (naming both lines);
//   - non-scalar mapping keys;
//   - more than kMaxYamlBytes of text, nesting deeper than kMaxYamlDepth or
//     more than kMaxYamlNodes nodes.
// Thread-safe (no shared state).
StatusOr<Node> ParseYaml(std::string_view text, std::string_view file_name);

// LoadYamlFile reads the regular file at path (at most kMaxYamlBytes) and
// parses it with ParseYaml, using path as the file name in messages. Reading
// does not go through Env: configuration is read once at startup, before any
// Env exists. Fails with the errno-derived code (NOT_FOUND, PERMISSION_DENIED,
// ...) if the file cannot be read, INVALID_ARGUMENT if it is not a regular
// file, too large, or not valid YAML.
StatusOr<Node> LoadYamlFile(const std::string& path);

// ReadYamlFile is LoadYamlFile's reading half: the file's bytes, unparsed,
// with the same checks and errors (for a caller that must keep the exact
// bytes it validated, e.g. to record their digest).
StatusOr<std::string> ReadYamlFile(const std::string& path);

}  // namespace jitgate::config

#endif  // JITGATE_CORE_CONFIG_YAML_H_
