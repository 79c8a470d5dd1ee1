#include "core/config/yaml.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/config/sample_config_testonly.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::config {
namespace {

using ::jitgate::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::vector<std::string> Keys(const Node& map) {
  std::vector<std::string> keys;
  for (const MappingEntry& e : map.entries()) keys.push_back(e.key);
  return keys;
}

const Node& At(const Node& map, std::string_view key) {
  for (const MappingEntry& e : map.entries()) {
    if (e.key == key) return e.value;
  }
  ADD_FAILURE() << "no key " << key << " in " << map.path();
  static const Node kMissing = Node::Null(Mark{});
  return kMissing;
}

TEST(ParseYamlTest, SampleConfigWalk) {
  ASSERT_OK_AND_ASSIGN(Node root,
                       ParseYaml(testonly::kSampleConfig, "jitgate.yaml"));
  ASSERT_TRUE(root.is_mapping());
  EXPECT_EQ(root.path(), "");
  EXPECT_EQ(root.mark().file, "jitgate.yaml");
  EXPECT_EQ(root.mark().line, 1);
  // Source order is kept.
  EXPECT_THAT(Keys(root), ElementsAre("broker", "store", "ca", "bastion",
                                      "approvers", "policies"));

  const Node& broker = At(root, "broker");
  EXPECT_EQ(broker.path(), "broker");
  EXPECT_THAT(Keys(broker), ElementsAre("socket", "state_dir", "submitters"));
  const Node& socket = At(broker, "socket");
  ASSERT_TRUE(socket.is_scalar());
  EXPECT_EQ(socket.value(), "/run/jitgate/jitgated.sock");  // comment stripped
  EXPECT_FALSE(socket.quoted());
  EXPECT_EQ(socket.path(), "broker.socket");
  EXPECT_EQ(socket.mark().line, 2);
  EXPECT_EQ(socket.mark().column, 11);
  EXPECT_EQ(broker.entries()[0].key_mark.line, 2);
  EXPECT_EQ(broker.entries()[0].key_mark.column, 3);
  const Node& submitters = At(broker, "submitters");
  ASSERT_TRUE(submitters.is_sequence());
  ASSERT_EQ(submitters.items().size(), 1u);
  EXPECT_EQ(submitters.items()[0].value(), "root");
  EXPECT_EQ(submitters.items()[0].path(), "broker.submitters[0]");

  EXPECT_EQ(At(At(root, "ca"), "max_ttl").value(), "1h");

  const Node& bastion = At(root, "bastion");
  const Node& alice = At(At(bastion, "users"), "alice");
  ASSERT_TRUE(alice.is_sequence());
  EXPECT_EQ(alice.items()[0].value(), "ssh-ed25519 AAAA... alice@laptop");
  EXPECT_TRUE(alice.items()[0].quoted());
  EXPECT_EQ(alice.mark().line, 15);
  const Node& db1 = At(At(bastion, "targets"), "db1");
  ASSERT_TRUE(db1.is_mapping());
  EXPECT_THAT(Keys(db1), ElementsAre("address", "port", "host_key"));
  EXPECT_EQ(At(db1, "address").value(), "10.0.0.5");
  EXPECT_EQ(At(db1, "port").value(),
            "22");  // scalars keep their text; typing is reader.h's job
  EXPECT_FALSE(At(db1, "port").quoted());
  EXPECT_EQ(At(db1, "port").path(), "bastion.targets.db1.port");
  EXPECT_EQ(At(db1, "port").mark().line, 17);

  EXPECT_THAT(At(At(root, "approvers"), "oncall").items().size(), 2u);

  const Node& policies = At(root, "policies");
  ASSERT_TRUE(policies.is_sequence());
  ASSERT_EQ(policies.items().size(), 2u);
  const Node& prod = policies.items()[1];
  EXPECT_EQ(prod.path(), "policies[1]");
  EXPECT_EQ(prod.mark().line, 24);
  EXPECT_THAT(Keys(prod), ElementsAre("name", "match", "approvers", "quorum",
                                      "reason", "timeout", "ttl"));
  const Node& match = At(prod, "match");
  EXPECT_EQ(match.path(), "policies[1].match");
  EXPECT_EQ(At(match, "user").items()[0].value(), "*");
  EXPECT_EQ(At(match, "user").items()[0].path(), "policies[1].match.user[0]");
  EXPECT_EQ(At(prod, "ttl").value(), "30m");
  EXPECT_EQ(At(prod, "ttl").mark().line, 30);

  // Every node in the tree has a mark inside the file.
  size_t nodes = 0;
  std::function<void(const Node&)> walk = [&](const Node& n) {
    ++nodes;
    EXPECT_EQ(n.mark().file, "jitgate.yaml");
    EXPECT_GE(n.mark().line, 1);
    EXPECT_LE(n.mark().line, 30);
    for (const Node& item : n.items()) walk(item);
    for (const MappingEntry& e : n.entries()) walk(e.value);
  };
  walk(root);
  EXPECT_EQ(nodes, 53u);
}

TEST(ParseYamlTest, NullsAndQuoting) {
  ASSERT_OK_AND_ASSIGN(
      Node root,
      ParseYaml("a:\nb: ~\nc: null\nd: 'null'\ne: \"\"\nf: |\n  text\n",
                "t.yaml"));
  EXPECT_TRUE(At(root, "a").is_null());
  EXPECT_EQ(At(root, "a").mark().line, 1);
  EXPECT_TRUE(At(root, "b").is_null());
  EXPECT_TRUE(At(root, "c").is_null());
  ASSERT_TRUE(At(root, "d").is_scalar());
  EXPECT_EQ(At(root, "d").value(), "null");
  EXPECT_TRUE(At(root, "d").quoted());
  ASSERT_TRUE(At(root, "e").is_scalar());
  EXPECT_EQ(At(root, "e").value(), "");
  EXPECT_EQ(At(root, "f").value(), "text\n");
  EXPECT_TRUE(At(root, "f").quoted());
}

TEST(ParseYamlTest, EmptyStreamIsNull) {
  for (const char* text :
       {"", "# only a comment\n", "\n\n", "---\n", "--- ~\n"}) {
    SCOPED_TRACE(text);
    ASSERT_OK_AND_ASSIGN(Node root, ParseYaml(text, "t.yaml"));
    EXPECT_TRUE(root.is_null());
  }
}

TEST(ParseYamlTest, EscapesAndNulArePreserved) {
  ASSERT_OK_AND_ASSIGN(Node root,
                       ParseYaml("a: \"x\\0y\\t\\u00e9\"\n", "t.yaml"));
  EXPECT_EQ(At(root, "a").value(), std::string("x\0y\t\xc3\xa9", 6));
}

// One rejected input and the exact message it must produce.
struct Rejection {
  int line;  // of this row, reported on failure
  std::string name;
  std::string text;
  std::string message;  // full message, or a prefix ending in ": " (see below)
  std::string contains = "";
};

// Each message starts with "t.yaml:<line>"; for libyaml's errors, which we
// do not word, the test asserts the location prefix and a substring.
TEST(ParseYamlTest, Rejections) {
  std::string deep(65, '[');
  deep += std::string(65, ']');
  std::string many_nodes = "[";
  for (int i = 0; i < 100000; ++i) many_nodes += "a,";
  many_nodes += "a]";  // 100,001 scalars + the sequence
  const std::string laughs =
      "a: &a "
      "[\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\","
      "\"lol\"]\n"
      "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
      "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n";

  const Rejection kCases[] = {
      {__LINE__, "second document", "a: 1\n---\nb: 2\n",
       "t.yaml:2: multiple documents are not supported (found a second '---')"},
      {__LINE__, "second explicit document", "--- a\n--- b\n",
       "t.yaml:2: multiple documents are not supported (found a second '---')"},
      {__LINE__, "anchor", "x: 1\na: &x 1\n",
       "t.yaml:2: anchors and aliases are not supported"},
      {__LINE__, "alias", "a: 1\nb: *x\n",
       "t.yaml:2: anchors and aliases are not supported"},
      {__LINE__, "anchored mapping", "a: &m\n  b: 1\n",
       "t.yaml:1: anchors and aliases are not supported"},
      {__LINE__, "billion laughs", laughs,
       "t.yaml:1: anchors and aliases are not supported"},
      {__LINE__, "merge key", "a: {b: 1}\nc:\n  <<: *a\n",
       "t.yaml:3: anchors and aliases are not supported"},
      {__LINE__, "duplicate top-level key", "a: 1\nb: 2\na: 3\n",
       "t.yaml:3: duplicate key 'a' at top level (first defined at line 1)"},
      {__LINE__, "duplicate nested key",
       "broker:\n  socket: /a\n  state_dir: /b\n  socket: /c\n",
       "t.yaml:4: duplicate key 'socket' in 'broker' (first defined at line "
       "2)"},
      {__LINE__, "duplicate key in flow mapping",
       "policies:\n  - {a: 1, a: 2}\n",
       "t.yaml:2: duplicate key 'a' in 'policies[0]' (first defined at line "
       "2)"},
      {__LINE__, "duplicate key, differently quoted", "a: 1\n'a': 2\n",
       "t.yaml:2: duplicate key 'a' at top level (first defined at line 1)"},
      {__LINE__, "sequence as key", "a: 1\n? [x, y]\n: 2\n",
       "t.yaml:2: mapping keys must be scalars, found a list"},
      {__LINE__, "mapping as flow key", "{{x: 1}: 2}\n",
       "t.yaml:1: mapping keys must be scalars, found a mapping"},
      {__LINE__, "tag", "a: 1\nb: !!str 2\n",
       "t.yaml:2: tags are not supported (found 'tag:yaml.org,2002:str')"},
      {__LINE__, "local tag", "a: !foo {x: 1}\n",
       "t.yaml:1: tags are not supported (found '!foo')"},
      {__LINE__, "nesting 65 deep", deep,
       "t.yaml:1: nesting deeper than 64 levels is not supported"},
      {__LINE__, "too many nodes", many_nodes,
       "t.yaml:1: too many nodes (the limit is 100000)"},
      {__LINE__, "tab indentation", "broker:\n  socket: /a\n\tstate_dir: /b\n",
       "t.yaml:3:1: ", "found a tab character that violates indentation"},
      {__LINE__, "tab as the only indentation", "a: 1\nbroker:\n\tsocket: /a\n",
       "t.yaml:3:", "tab"},
      {__LINE__, "unterminated quote", "a: \"abc\nb: 1\n", "t.yaml:3:1: ",
       "found unexpected end of stream while scanning a quoted scalar started "
       "at line 1"},
      {__LINE__, "bad indentation", "a:\n  b: 1\n c: 2\n",
       "t.yaml:3:2: ", "did not find expected key"},
      {__LINE__, "invalid UTF-8", "a: b\nc: \xff\n",
       "t.yaml:2:4: ", "invalid leading UTF-8 octet"},
      {__LINE__, "control character", "a: b\nc: d\x01\n",
       "t.yaml:2:5: ", "control characters are not allowed"},
      {__LINE__, "UTF-16 BOM",
       std::string("\xff\xfe"
                   "a\0:\0 \0b\0",
                   10),
       "t.yaml:1:1: ", "invalid leading UTF-8 octet"},
  };
  for (const Rejection& c : kCases) {
    SCOPED_TRACE(::testing::Message() << "row at " << __FILE__ << ":" << c.line
                                      << " (" << c.name << ")");
    auto result = ParseYaml(c.text, "t.yaml");
    if (c.contains.empty()) {
      EXPECT_THAT(result.status(),
                  StatusIs(StatusCode::kInvalidArgument, c.message));
    } else {
      EXPECT_THAT(result.status(), StatusIs(StatusCode::kInvalidArgument,
                                            StartsWith(c.message)));
      EXPECT_THAT(result.status(), StatusIs(StatusCode::kInvalidArgument,
                                            HasSubstr(c.contains)));
    }
  }
}

TEST(ParseYamlTest, LimitsAreInclusive) {
  std::string deep(64, '[');
  deep += std::string(64, ']');
  EXPECT_OK(ParseYaml(deep, "t.yaml"));

  std::string nodes = "[";
  for (int i = 0; i < 99998; ++i) nodes += "a,";
  nodes += "a]";  // 99,999 scalars + the sequence = 100,000
  EXPECT_OK(ParseYaml(nodes, "t.yaml"));

  std::string big = "a: \"" + std::string(kMaxYamlBytes - 6, 'x') + "\"\n";
  ASSERT_EQ(big.size(), kMaxYamlBytes);
  EXPECT_OK(ParseYaml(big, "t.yaml"));
  big += "\n";
  EXPECT_THAT(ParseYaml(big, "t.yaml").status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "t.yaml: larger than the limit of 1048576 bytes"));
}

TEST(ParseYamlTest, HostileKeysAreEscapedInMessages) {
  auto r =
      ParseYaml("\"\\e]0;pwned\\a\": 1\n\"\\e]0;pwned\\a\": 2\n", "t.yaml");
  EXPECT_THAT(
      r.status(),
      StatusIs(StatusCode::kInvalidArgument,
               "t.yaml:2: duplicate key '\\x1b]0;pwned\\x07' at top level "
               "(first defined at line 1)"));
  // Long keys are shortened.
  const std::string key(500, 'k');
  r = ParseYaml(key + ": 1\n" + key + ": 2\n", "t.yaml");
  EXPECT_THAT(r.status(),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("'" + std::string(64, 'k') + "...'")));
}

TEST(ParseYamlTest, PathsStayBounded) {
  std::string text;
  for (int i = 0; i < 60; ++i)
    text += std::string(size_t(i) * 2, ' ') + std::string(100, 'k') + ":\n";
  ASSERT_OK_AND_ASSIGN(Node root, ParseYaml(text, "t.yaml"));
  const Node* n = &root;
  while (n->is_mapping() && !n->entries().empty()) n = &n->entries()[0].value;
  EXPECT_TRUE(n->is_null());
  EXPECT_LE(n->path().size(), 200u);
  EXPECT_THAT(n->path(), StartsWith("..."));
  // The innermost keys survive: that is where the reader is looking.
  EXPECT_THAT(n->path(),
              ::testing::EndsWith("." + std::string(32, 'k') + "..."));
}

// ---------------------------------------------------------------- files

class LoadYamlFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& contents) {
    const std::string path = dir_.Join(name);
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  jitgate::testing::TempDir dir_;
};

TEST_F(LoadYamlFileTest, LoadsSample) {
  const std::string path = Write("jitgate.yaml", testonly::kSampleConfig);
  ASSERT_OK_AND_ASSIGN(Node root, LoadYamlFile(path));
  EXPECT_EQ(root.mark().file, path);
  EXPECT_EQ(At(At(root, "broker"), "state_dir").mark().ToString(), path + ":3");
}

TEST_F(LoadYamlFileTest, ErrorsNameTheFile) {
  const std::string path = Write("bad.yaml", "a: 1\na: 2\n");
  EXPECT_THAT(
      LoadYamlFile(path).status(),
      StatusIs(
          StatusCode::kInvalidArgument,
          path +
              ":2: duplicate key 'a' at top level (first defined at line 1)"));

  EXPECT_THAT(LoadYamlFile(dir_.Join("missing.yaml")).status(),
              StatusIs(StatusCode::kNotFound,
                       StartsWith(dir_.Join("missing.yaml") + ": ")));
  EXPECT_THAT(LoadYamlFile(dir_.path()).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       dir_.path() + ": not a regular file"));
}

TEST_F(LoadYamlFileTest, RejectsFifoWithoutBlocking) {
  const std::string path = dir_.Join("fifo");
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  EXPECT_THAT(
      LoadYamlFile(path).status(),
      StatusIs(StatusCode::kInvalidArgument, path + ": not a regular file"));
}

TEST_F(LoadYamlFileTest, RejectsLargeFile) {
  const std::string path =
      Write("big.yaml", "a: " + std::string(kMaxYamlBytes, 'x') + "\n");
  EXPECT_THAT(LoadYamlFile(path).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       path + ": larger than the limit of 1048576 bytes"));
}

}  // namespace
}  // namespace jitgate::config

namespace jitgate::config {
namespace {

// Regression: an empty string_view with a null data pointer aborted inside
// libyaml (found by the broker config fuzzer).
TEST(YamlRegressionTest, EmptyViewWithNullDataDoesNotAbort) {
  StatusOr<Node> n = ParseYaml(std::string_view(), "empty.yaml");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_TRUE(n->is_null());
}

}  // namespace
}  // namespace jitgate::config
