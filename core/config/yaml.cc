#include "core/config/yaml.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/base/status_macros.h"
#include "core/base/unique_fd.h"
#include "core/config/yaml_internal.h"

namespace jitgate::config {

namespace internal {

namespace {

// Length of the well-formed UTF-8 sequence at s[i], or 0 if the bytes there
// are not one (overlong forms, surrogates and values above U+10FFFF are not).
// *cp receives the code point.
size_t Utf8SequenceLength(std::string_view s, size_t i, uint32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  const uint8_t lead = b(0);
  size_t n;
  uint32_t min;
  if (lead < 0x80) {
    *cp = lead;
    return 1;
  } else if ((lead & 0xe0) == 0xc0) {
    n = 2, min = 0x80, *cp = lead & 0x1f;
  } else if ((lead & 0xf0) == 0xe0) {
    n = 3, min = 0x800, *cp = lead & 0x0f;
  } else if ((lead & 0xf8) == 0xf0) {
    n = 4, min = 0x10000, *cp = lead & 0x07;
  } else {
    return 0;
  }
  if (s.size() - i < n) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80) return 0;
    *cp = (*cp << 6) | (b(k) & 0x3f);
  }
  if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff)) return 0;
  return n;
}

}  // namespace

std::string Truncate(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t cut = max;
  // Back up over UTF-8 continuation bytes so that the cut is between
  // characters.
  while (cut > 0 && (static_cast<uint8_t>(s[cut]) & 0xc0) == 0x80) --cut;
  return std::string(s.substr(0, cut)) + "...";
}

std::string Quote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::string t = Truncate(s);
  std::string out = "'";
  for (size_t i = 0; i < t.size();) {
    uint32_t cp = 0;
    const size_t n = Utf8SequenceLength(t, i, &cp);
    // C0 and C1 controls and DEL can drive a terminal; quotes and
    // backslashes would make the quoting ambiguous.
    const bool escape = n == 0 || cp < 0x20 || cp == 0x7f ||
                        (cp >= 0x80 && cp < 0xa0) || cp == '\\' || cp == '\'';
    const size_t len = n == 0 ? 1 : n;
    if (escape) {
      for (size_t k = 0; k < len; ++k) {
        const auto byte = static_cast<uint8_t>(t[i + k]);
        out += "\\x";
        out += kHex[byte >> 4];
        out += kHex[byte & 0xf];
      }
    } else {
      out.append(t, i, len);
    }
    i += len;
  }
  out += '\'';
  return out;
}

}  // namespace internal

using internal::Quote;
using internal::Truncate;

std::string Mark::ToString() const { return file + ":" + std::to_string(line); }

Node::Node(Kind kind, Mark mark) : kind_(kind), mark_(std::move(mark)) {}

Node Node::Null(Mark mark) { return Node(Kind::kNull, std::move(mark)); }

Node Node::Scalar(std::string value, bool quoted, Mark mark) {
  Node n(Kind::kScalar, std::move(mark));
  n.value_ = std::move(value);
  n.quoted_ = quoted;
  return n;
}

Node Node::Sequence(Mark mark) {
  return Node(Kind::kSequence, std::move(mark));
}

Node Node::Mapping(Mark mark) { return Node(Kind::kMapping, std::move(mark)); }

std::string_view KindName(Node::Kind kind) {
  switch (kind) {
    case Node::Kind::kNull:
      return "null";
    case Node::Kind::kScalar:
      return "a string";
    case Node::Kind::kSequence:
      return "a list";
    case Node::Kind::kMapping:
      return "a mapping";
  }
  return "an unknown node";
}

namespace {

// Paths are labels for messages, not addresses: they keep their tail when
// they grow past this, which bounds the memory a deep document can cost.
constexpr size_t kMaxPathBytes = 192;

// RAII for libyaml's parser and events. yaml_parser_t and yaml_event_t are
// caller-allocated structs, so the guards own the struct and its contents;
// a unique_ptr deleter (the form used for heap handles such as EVP_PKEY)
// would need an extra allocation per event for no gain.
class YamlParser {
 public:
  YamlParser() : initialized_(yaml_parser_initialize(&parser_) == 1) {}
  ~YamlParser() {
    if (initialized_) yaml_parser_delete(&parser_);
  }
  YamlParser(const YamlParser&) = delete;
  YamlParser& operator=(const YamlParser&) = delete;

  bool initialized() const { return initialized_; }
  yaml_parser_t* get() { return &parser_; }

 private:
  yaml_parser_t parser_{};
  bool initialized_;
};

class YamlEvent {
 public:
  YamlEvent() = default;
  ~YamlEvent() { Reset(); }
  YamlEvent(const YamlEvent&) = delete;
  YamlEvent& operator=(const YamlEvent&) = delete;

  // Replaces the held event with the parser's next one. False on a parse
  // error (the parser's error fields say why).
  bool Next(yaml_parser_t* parser) {
    Reset();
    if (yaml_parser_parse(parser, &event_) != 1) return false;
    owned_ = true;
    return true;
  }
  const yaml_event_t& operator*() const { return event_; }
  const yaml_event_t* operator->() const { return &event_; }

 private:
  void Reset() {
    if (owned_) yaml_event_delete(&event_);
    owned_ = false;
  }
  yaml_event_t event_{};
  bool owned_ = false;
};

// libyaml's marks are size_t; ours are int. Clamped one below INT_MAX so
// that the +1 to make them 1-based cannot overflow (inputs are capped at
// 1 MiB, so this never triggers in practice).
int ClampToInt(size_t v) {
  return v >= size_t{INT_MAX - 1} ? INT_MAX - 1 : static_cast<int>(v);
}

Status Error(const Mark& mark, std::string_view message) {
  return InvalidArgumentError(mark.ToString() + ": " + std::string(message));
}

// One open collection while the tree is being built.
struct Frame {
  explicit Frame(Node n) : node(std::move(n)) {}
  Node node;
  // Mappings alternate key, value. While have_key, the next completed node
  // is the value for key.
  bool have_key = false;
  std::string key;
  Mark key_mark;
  // Key -> line of its first occurrence, for duplicate detection in O(1).
  std::unordered_map<std::string, int> key_lines;
};

// Builds a Node tree from libyaml events, enforcing the structural rules and
// caps documented in yaml.h.
class TreeBuilder {
 public:
  TreeBuilder(std::string_view text, std::string_view file)
      : text_(text), file_(file) {}

  StatusOr<Node> Run() {
    YamlParser parser;
    if (!parser.initialized())
      return ResourceExhaustedError(file_ + ": out of memory");
    yaml_parser_set_input_string(
        parser.get(), reinterpret_cast<const unsigned char*>(text_.data()),
        text_.size());
    // UTF-8 only: no BOM sniffing into UTF-16.
    yaml_parser_set_encoding(parser.get(), YAML_UTF8_ENCODING);

    YamlEvent event;
    for (;;) {
      if (!event.Next(parser.get())) return LibyamlError(*parser.get());
      const Mark mark = MakeMark(event->start_mark);
      switch (event->type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
        case YAML_NO_EVENT:
          break;
        case YAML_STREAM_END_EVENT:
          if (root_.has_value()) return std::move(*root_);
          return Node::Null(Mark{file_, 1, 1});
        case YAML_DOCUMENT_START_EVENT:
          if (++documents_ > 1) {
            return Error(
                mark,
                "multiple documents are not supported (found a second '---')");
          }
          break;
        case YAML_ALIAS_EVENT:
          return Error(mark, "anchors and aliases are not supported");
        case YAML_SCALAR_EVENT: {
          const auto& e = event->data.scalar;
          RETURN_IF_ERROR(CheckProperties(mark, e.anchor, e.tag));
          RETURN_IF_ERROR(CountNode(mark));
          std::string value(reinterpret_cast<const char*>(e.value), e.length);
          if (ExpectingKey()) {
            RETURN_IF_ERROR(AddKey(std::move(value), mark));
            break;
          }
          const bool plain = e.style == YAML_PLAIN_SCALAR_STYLE;
          Node node = plain && IsNullText(value)
                          ? Node::Null(mark)
                          : Node::Scalar(std::move(value), !plain, mark);
          node.set_path(ChildPath());
          RETURN_IF_ERROR(Attach(std::move(node)));
          break;
        }
        case YAML_SEQUENCE_START_EVENT:
          RETURN_IF_ERROR(CheckProperties(mark,
                                          event->data.sequence_start.anchor,
                                          event->data.sequence_start.tag));
          RETURN_IF_ERROR(Open(Node::Sequence(mark)));
          break;
        case YAML_MAPPING_START_EVENT:
          RETURN_IF_ERROR(CheckProperties(mark,
                                          event->data.mapping_start.anchor,
                                          event->data.mapping_start.tag));
          RETURN_IF_ERROR(Open(Node::Mapping(mark)));
          break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
          // libyaml guarantees balanced start/end events.
          if (stack_.empty())
            return InternalError(mark.ToString() + ": unbalanced YAML events");
          Node node = std::move(stack_.back().node);
          stack_.pop_back();
          RETURN_IF_ERROR(Attach(std::move(node)));
          break;
        }
      }
    }
  }

 private:
  Mark MakeMark(const yaml_mark_t& m) const {
    return Mark{file_, ClampToInt(m.line) + 1, ClampToInt(m.column) + 1};
  }

  // Plain scalars that the YAML core schema resolves to null. A quoted
  // "null" stays a string.
  static bool IsNullText(std::string_view v) {
    return v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL";
  }

  bool ExpectingKey() const {
    return !stack_.empty() && stack_.back().node.is_mapping() &&
           !stack_.back().have_key;
  }

  Status CheckProperties(const Mark& mark, const yaml_char_t* anchor,
                         const yaml_char_t* tag) {
    if (anchor != nullptr)
      return Error(mark, "anchors and aliases are not supported");
    if (tag != nullptr) {
      return Error(mark, "tags are not supported (found " +
                             Quote(reinterpret_cast<const char*>(tag)) + ")");
    }
    return OkStatus();
  }

  Status CountNode(const Mark& mark) {
    if (++nodes_ > kMaxYamlNodes) {
      return Error(mark, "too many nodes (the limit is " +
                             std::to_string(kMaxYamlNodes) + ")");
    }
    return OkStatus();
  }

  // The path label of the node about to be attached to the innermost frame.
  std::string ChildPath() const {
    if (stack_.empty()) return "";
    const Frame& top = stack_.back();
    std::string path = top.node.path();
    if (top.node.is_sequence()) {
      path += "[" + std::to_string(top.node.items().size()) + "]";
    } else {
      if (!path.empty()) path += '.';
      path += Truncate(top.key, 32);
    }
    if (path.size() > kMaxPathBytes) {
      // Keep the innermost part, starting on a UTF-8 character boundary.
      size_t start = path.size() - kMaxPathBytes;
      while (start < path.size() &&
             (static_cast<uint8_t>(path[start]) & 0xc0) == 0x80) {
        ++start;
      }
      path = "..." + path.substr(start);
    }
    return path;
  }

  Status AddKey(std::string key, const Mark& mark) {
    Frame& top = stack_.back();
    auto [it, inserted] = top.key_lines.emplace(key, mark.line);
    if (!inserted) {
      const std::string& where = top.node.path();
      return Error(
          mark, "duplicate key " + Quote(key) +
                    (where.empty() ? " at top level" : " in " + Quote(where)) +
                    " (first defined at line " + std::to_string(it->second) +
                    ")");
    }
    top.have_key = true;
    top.key = std::move(key);
    top.key_mark = mark;
    return OkStatus();
  }

  Status Open(Node node) {
    if (ExpectingKey()) {
      return Error(node.mark(), "mapping keys must be scalars, found " +
                                    std::string(KindName(node.kind())));
    }
    RETURN_IF_ERROR(CountNode(node.mark()));
    if (stack_.size() >= size_t{kMaxYamlDepth}) {
      return Error(node.mark(), "nesting deeper than " +
                                    std::to_string(kMaxYamlDepth) +
                                    " levels is not supported");
    }
    node.set_path(ChildPath());
    stack_.emplace_back(std::move(node));
    return OkStatus();
  }

  // Hands a completed node to its parent (or makes it the root).
  Status Attach(Node node) {
    if (stack_.empty()) {
      root_ = std::move(node);
      return OkStatus();
    }
    Frame& top = stack_.back();
    if (top.node.is_sequence()) {
      top.node.mutable_items().push_back(std::move(node));
    } else {
      top.node.mutable_entries().push_back(MappingEntry{
          std::move(top.key), std::move(top.key_mark), std::move(node)});
      top.have_key = false;
    }
    return OkStatus();
  }

  // Formats libyaml's own error as "file:line:col: <problem> <context>".
  Status LibyamlError(const yaml_parser_t& p) const {
    if (p.error == YAML_MEMORY_ERROR)
      return ResourceExhaustedError(file_ + ": out of memory");
    Mark mark = MakeMark(p.problem_mark);
    if (p.error == YAML_READER_ERROR) {
      // Reader errors (bad UTF-8, control characters) carry a byte offset
      // instead of a mark.
      mark = OffsetMark(p.problem_offset);
    }
    std::string msg =
        mark.ToString() + ":" + std::to_string(mark.column) + ": ";
    msg += p.problem != nullptr ? p.problem : "syntax error";
    if (p.error == YAML_READER_ERROR && p.problem_value != -1) {
      msg += " (byte value " + std::to_string(p.problem_value) + ")";
    }
    // libyaml's message for a tab where indentation is expected ("found
    // character that cannot start any token") does not say which character.
    if (p.error == YAML_SCANNER_ERROR && p.problem_mark.index < text_.size() &&
        text_[p.problem_mark.index] == '\t' &&
        msg.find("tab") == std::string::npos) {
      msg += " (a tab; indent with spaces)";
    }
    if (p.context != nullptr) {
      msg += " ";
      msg += p.context;
      // The context usually starts elsewhere (an unclosed quote); say where.
      const Mark ctx = MakeMark(p.context_mark);
      if (ctx.line != mark.line)
        msg += " started at line " + std::to_string(ctx.line);
    }
    return InvalidArgumentError(std::move(msg));
  }

  Mark OffsetMark(size_t offset) const {
    offset = std::min(offset, text_.size());
    int line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < offset; ++i) {
      if (text_[i] == '\n') ++line, line_start = i + 1;
    }
    return Mark{file_, line, ClampToInt(offset - line_start) + 1};
  }

  std::string_view text_;
  std::string file_;
  std::vector<Frame> stack_;
  std::optional<Node> root_;
  size_t nodes_ = 0;
  int documents_ = 0;
};

}  // namespace

StatusOr<Node> ParseYaml(std::string_view text, std::string_view file_name) {
  if (text.size() > kMaxYamlBytes) {
    return InvalidArgumentError(std::string(file_name) +
                                ": larger than the limit of " +
                                std::to_string(kMaxYamlBytes) + " bytes");
  }
  // An empty view may carry a null pointer, which libyaml asserts against.
  if (text.data() == nullptr) text = std::string_view("", 0);
  return TreeBuilder(text, file_name).Run();
}

StatusOr<Node> LoadYamlFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadYamlFile(path));
  return ParseYaml(text, path);
}

StatusOr<std::string> ReadYamlFile(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not hang startup; it is rejected below.
  UniqueFd fd(
      ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) return ErrnoToStatus(errno, path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoToStatus(errno, path);
  if (!S_ISREG(st.st_mode))
    return InvalidArgumentError(path + ": not a regular file");
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) > kMaxYamlBytes) {
    return InvalidArgumentError(path + ": larger than the limit of " +
                                std::to_string(kMaxYamlBytes) + " bytes");
  }
  // Read up to one byte past the cap: the file may grow after fstat.
  std::string text(kMaxYamlBytes + 1, '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, path);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > kMaxYamlBytes) {
    return InvalidArgumentError(path + ": larger than the limit of " +
                                std::to_string(kMaxYamlBytes) + " bytes");
  }
  text.resize(got);
  return text;
}

}  // namespace jitgate::config
