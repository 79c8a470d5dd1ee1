#include "core/config/reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/config/sample_config_testonly.h"
#include "core/config/yaml.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::config {
namespace {

using ::jitgate::testing::StatusIs;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Node MustParse(std::string_view text) {
  auto r = ParseYaml(text, "jitgate.yaml");
  EXPECT_OK(r);
  return r.ok() ? *std::move(r) : Node::Null(Mark{});
}

// The broker's eventual validation, in miniature: the whole sample through
// the typed getters.
TEST(ReaderTest, SampleConfigThroughTypedGetters) {
  const Node root = MustParse(testonly::kSampleConfig);
  ASSERT_OK(CheckKeys(
      root, {"broker", "store", "ca", "bastion", "approvers", "policies"}));

  ASSERT_OK_AND_ASSIGN(const Node* broker, GetMapping(root, "broker", true));
  ASSERT_OK(CheckKeys(*broker, {"socket", "state_dir", "submitters"}));
  ASSERT_OK_AND_ASSIGN(std::string socket, GetString(*broker, "socket"));
  EXPECT_EQ(socket, "/run/jitgate/jitgated.sock");
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> submitters,
                       GetStringList(*broker, "submitters"));
  EXPECT_THAT(submitters, ElementsAre("root"));

  ASSERT_OK_AND_ASSIGN(const Node* ca, GetMapping(root, "ca", true));
  ASSERT_OK_AND_ASSIGN(nanoseconds max_ttl, GetDuration(*ca, "max_ttl"));
  EXPECT_EQ(max_ttl, hours(1));

  ASSERT_OK_AND_ASSIGN(const Node* bastion, GetMapping(root, "bastion", false));
  ASSERT_NE(bastion, nullptr);
  ASSERT_OK_AND_ASSIGN(const Node* targets,
                       GetMapping(*bastion, "targets", true));
  ASSERT_OK_AND_ASSIGN(const Node* db1, GetMapping(*targets, "db1", true));
  ASSERT_OK_AND_ASSIGN(int64_t port, GetInt64(*db1, "port", 1, 65535));
  EXPECT_EQ(port, 22);
  ASSERT_OK_AND_ASSIGN(const Node* users, GetMapping(*bastion, "users", true));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> alice_keys,
                       GetStringList(*users, "alice"));
  EXPECT_THAT(alice_keys, ElementsAre("ssh-ed25519 AAAA... alice@laptop"));

  ASSERT_OK_AND_ASSIGN(const Node* policies,
                       GetSequence(root, "policies", true));
  ASSERT_EQ(policies->items().size(), 2u);
  const Node& prod = policies->items()[1];
  ASSERT_OK(CheckKeys(prod, {"name", "match", "approve", "approvers", "quorum",
                             "reason", "timeout", "ttl"}));
  ASSERT_OK_AND_ASSIGN(std::string name, GetString(prod, "name"));
  EXPECT_EQ(name, "prod");
  ASSERT_OK_AND_ASSIGN(int64_t quorum, GetInt64(prod, "quorum", 1, 100));
  EXPECT_EQ(quorum, 1);
  ASSERT_OK_AND_ASSIGN(nanoseconds timeout, GetDuration(prod, "timeout"));
  EXPECT_EQ(timeout, minutes(5));
  ASSERT_OK_AND_ASSIGN(nanoseconds ttl, GetDuration(prod, "ttl"));
  EXPECT_EQ(ttl, minutes(30));
  ASSERT_OK_AND_ASSIGN(const Node* match, GetMapping(prod, "match", true));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> services,
                       GetStringList(*match, "service"));
  EXPECT_THAT(services, ElementsAre("sshd", "sudo", "bastion"));

  // Absent optional keys take their fallback.
  ASSERT_OK_AND_ASSIGN(std::string approve,
                       GetString(prod, "approve", "manual"));
  EXPECT_EQ(approve, "manual");
  ASSERT_OK_AND_ASSIGN(nanoseconds dev_ttl,
                       GetDuration(policies->items()[0], "ttl", hours(8)));
  EXPECT_EQ(dev_ttl, hours(8));
  ASSERT_OK_AND_ASSIGN(const Node* absent,
                       GetMapping(root, "notifications", false));
  EXPECT_EQ(absent, nullptr);
}

TEST(ReaderTest, UnknownKeyListsAllowedKeys) {
  const Node root = MustParse(
      "broker:\n"
      "  socket: /run/jitgate/jitgated.sock\n"
      "  state_dir: /var/lib/jitgate\n"
      "\n"
      "\n"
      "\n"
      "  sockett: /tmp/x\n");
  const Node* broker = Find(root, "broker");
  ASSERT_NE(broker, nullptr);
  EXPECT_THAT(CheckKeys(*broker, {"socket", "state_dir", "submitters"}),
              StatusIs(StatusCode::kInvalidArgument,
                       "jitgate.yaml:7: unknown key 'sockett' in 'broker' "
                       "(expected one of: socket, state_dir, submitters)"));
  EXPECT_THAT(CheckKeys(root, {"store"}),
              StatusIs(StatusCode::kInvalidArgument,
                       "jitgate.yaml:1: unknown key 'broker' at top level "
                       "(expected one of: store)"));
  // Nested paths name the whole way down.
  const Node p =
      MustParse("policies:\n  - name: a\n    match: {servce: [sshd]}\n");
  const Node& match = *Find(Find(p, "policies")->items()[0], "match");
  EXPECT_THAT(
      CheckKeys(match, {"service", "host", "user"}),
      StatusIs(StatusCode::kInvalidArgument,
               "jitgate.yaml:3: unknown key 'servce' in 'policies[0].match' "
               "(expected one of: service, host, user)"));
  EXPECT_THAT(CheckKeys(*Find(Find(p, "policies")->items()[0], "name"), {"x"}),
              StatusIs(StatusCode::kInvalidArgument,
                       "jitgate.yaml:2: 'policies[0].name': expected a "
                       "mapping, got a string"));
}

TEST(ReaderTest, MissingAndWrongTypes) {
  const Node root = MustParse(
      "broker:\n"
      "  state_dir: [a]\n"
      "  submitters: root\n"
      "  socket:\n"
      "  nested: {a: {b: 1}}\n");
  const Node& broker = *Find(root, "broker");
  EXPECT_THAT(
      GetString(broker, "missing"),
      StatusIs(StatusCode::kInvalidArgument,
               "jitgate.yaml:2: missing required key 'missing' in 'broker'"));
  EXPECT_THAT(
      GetString(broker, "state_dir"),
      StatusIs(
          StatusCode::kInvalidArgument,
          "jitgate.yaml:2: 'broker.state_dir': expected a string, got a list"));
  // An empty value is present-but-null: an error, not the fallback.
  EXPECT_THAT(
      GetString(broker, "socket", "/run/default.sock"),
      StatusIs(StatusCode::kInvalidArgument,
               "jitgate.yaml:4: 'broker.socket': expected a string, got null"));
  EXPECT_THAT(GetStringList(broker, "submitters"),
              StatusIs(StatusCode::kInvalidArgument,
                       "jitgate.yaml:3: 'broker.submitters': expected a list, "
                       "got a string"));
  EXPECT_THAT(
      GetStringList(*Find(broker, "nested"), "a"),
      StatusIs(
          StatusCode::kInvalidArgument,
          "jitgate.yaml:5: 'broker.nested.a': expected a list, got a mapping"));
  EXPECT_THAT(GetMapping(broker, "state_dir", false),
              StatusIs(StatusCode::kInvalidArgument,
                       "jitgate.yaml:2: 'broker.state_dir': expected a "
                       "mapping, got a list"));
  EXPECT_THAT(
      GetSequence(broker, "absent", true),
      StatusIs(StatusCode::kInvalidArgument,
               "jitgate.yaml:2: missing required key 'absent' in 'broker'"));
  EXPECT_THAT(GetString(*Find(broker, "submitters"), "x"),
              StatusIs(StatusCode::kInvalidArgument,
                       "jitgate.yaml:3: 'broker.submitters': expected a "
                       "mapping, got a string"));
  // A root that is not a mapping (an empty file).
  const Node empty = MustParse("");
  EXPECT_THAT(
      CheckKeys(empty, {"broker"}),
      StatusIs(StatusCode::kInvalidArgument,
               "jitgate.yaml:1: top level: expected a mapping, got null"));
  EXPECT_EQ(Find(empty, "broker"), nullptr);
}

TEST(ReaderTest, StringListItems) {
  const Node root =
      MustParse("a: []\nb: [x, 'y', 3]\nc:\n  - x\n  - [y]\nd: [x, ~]\n");
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> a, GetStringList(root, "a"));
  EXPECT_THAT(a, IsEmpty());
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> b, GetStringList(root, "b"));
  EXPECT_THAT(b, ElementsAre("x", "y", "3"));
  EXPECT_THAT(
      GetStringList(root, "c"),
      StatusIs(StatusCode::kInvalidArgument,
               "jitgate.yaml:5: 'c[1]': expected a string, got a list"));
  EXPECT_THAT(GetStringList(root, "d"),
              StatusIs(StatusCode::kInvalidArgument,
                       "jitgate.yaml:6: 'd[1]': expected a string, got null"));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> e,
                       GetStringList(root, "e", {"fallback"}));
  EXPECT_THAT(e, ElementsAre("fallback"));
}

TEST(ReaderTest, NulInStringIsRejected) {
  const Node root = MustParse("path: \"/etc/jitgate\\0/evil\"\n");
  EXPECT_THAT(GetString(root, "path"),
              StatusIs(StatusCode::kInvalidArgument,
                       "jitgate.yaml:1: 'path': contains a NUL byte"));
}

TEST(ReaderTest, Bools) {
  const Node root = MustParse(
      "a: true\nb: false\nc: yes\nd: \"true\"\ne: True\nf: [true]\ng:\n");
  ASSERT_OK_AND_ASSIGN(bool a, GetBool(root, "a"));
  EXPECT_TRUE(a);
  ASSERT_OK_AND_ASSIGN(bool b, GetBool(root, "b", true));
  EXPECT_FALSE(b);
  ASSERT_OK_AND_ASSIGN(bool missing, GetBool(root, "zz", true));
  EXPECT_TRUE(missing);
  EXPECT_THAT(
      GetBool(root, "c"),
      StatusIs(StatusCode::kInvalidArgument,
               "jitgate.yaml:3: 'c': expected true or false, got 'yes'"));
  EXPECT_THAT(GetBool(root, "d"),
              StatusIs(StatusCode::kInvalidArgument,
                       "jitgate.yaml:4: 'd': expected true or false, got a "
                       "quoted string 'true'"));
  EXPECT_THAT(
      GetBool(root, "e"),
      StatusIs(StatusCode::kInvalidArgument,
               "jitgate.yaml:5: 'e': expected true or false, got 'True'"));
  EXPECT_THAT(
      GetBool(root, "f"),
      StatusIs(StatusCode::kInvalidArgument,
               "jitgate.yaml:6: 'f': expected true or false, got a list"));
  EXPECT_THAT(
      GetBool(root, "g", false),
      StatusIs(StatusCode::kInvalidArgument,
               "jitgate.yaml:7: 'g': expected true or false, got null"));
}

TEST(ReaderTest, Int64) {
  struct Case {
    int line;
    std::string text;
    int64_t min, max;
    bool ok;
    int64_t want;
    std::string error;  // message after "jitgate.yaml:1: 'v': "
  };
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const Case kCases[] = {
      {__LINE__, "0", 0, 10, true, 0, ""},
      {__LINE__, "22", 1, 65535, true, 22, ""},
      {__LINE__, "-5", -10, 10, true, -5, ""},
      {__LINE__, "9223372036854775807", kMin, kMax, true, kMax, ""},
      {__LINE__, "-9223372036854775808", kMin, kMax, true, kMin, ""},
      {__LINE__, "9223372036854775808", kMin, kMax, false, 0,
       "out of range, got '9223372036854775808'"},
      {__LINE__, "-9223372036854775809", kMin, kMax, false, 0,
       "out of range, got '-9223372036854775809'"},
      {__LINE__, "99999999999999999999999", kMin, kMax, false, 0,
       "out of range, got '99999999999999999999999'"},
      {__LINE__, "65536", 1, 65535, false, 0,
       "expected an integer from 1 to 65535, got '65536'"},
      {__LINE__, "0", 1, 65535, false, 0,
       "expected an integer from 1 to 65535, got '0'"},
      {__LINE__, "010", 0, 100, false, 0,
       "leading zeros are not allowed, got '010'"},
      {__LINE__, "0x10", 0, 100, false, 0,
       "expected a decimal integer, got '0x10'"},
      {__LINE__, "+1", 0, 100, false, 0,
       "expected a decimal integer, got '+1'"},
      {__LINE__, "1.0", 0, 100, false, 0,
       "expected a decimal integer, got '1.0'"},
      {__LINE__, "1_000", 0, 10000, false, 0,
       "expected a decimal integer, got '1_000'"},
      {__LINE__, "--1", -5, 100, false, 0,
       "expected a decimal integer, got '--1'"},
      {__LINE__, "'5'", 0, 100, false, 0,
       "expected an integer, not a quoted string, got '5'"},
      {__LINE__, "[5]", 0, 100, false, 0, "expected an integer, got a list"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(::testing::Message()
                 << "row at " << __FILE__ << ":" << c.line << " v: " << c.text);
    const Node root = MustParse("v: " + c.text + "\n");
    auto r = GetInt64(root, "v", c.min, c.max);
    if (c.ok) {
      ASSERT_OK(r);
      EXPECT_EQ(*r, c.want);
    } else {
      EXPECT_THAT(r, StatusIs(StatusCode::kInvalidArgument,
                              "jitgate.yaml:1: 'v': " + c.error));
    }
  }
  const Node root = MustParse("a: 1\n");
  ASSERT_OK_AND_ASSIGN(int64_t fallback, GetInt64(root, "b", 0, 10, 7));
  EXPECT_EQ(fallback, 7);
}

TEST(ReaderTest, Durations) {
  struct Case {
    int line;
    std::string text;
    bool ok;
    nanoseconds want;
    std::string error;  // ParseDuration's message
  };
  const Case kCases[] = {
      {__LINE__, "30s", true, seconds(30), ""},
      {__LINE__, "5m", true, minutes(5), ""},
      {__LINE__, "1h", true, hours(1), ""},
      {__LINE__, "1h30m", true, minutes(90), ""},
      {__LINE__, "250ms", true, milliseconds(250), ""},
      {__LINE__, "2d", true, hours(48), ""},
      {__LINE__, "1d2h3m4s5ms", true,
       hours(26) + minutes(3) + seconds(4) + milliseconds(5), ""},
      {__LINE__, "0s", true, nanoseconds(0), ""},
      {__LINE__, "90m", true, minutes(90), ""},
      {__LINE__, "106751d", true, hours(24) * 106751, ""},
      {__LINE__, "5", false, {}, "bad duration '5': missing unit (s, m, h, d)"},
      {__LINE__,
       "1h30",
       false,
       {},
       "bad duration '1h30': missing unit (s, m, h, d)"},
      {__LINE__, "", false, {}, "bad duration '': empty"},
      {__LINE__,
       "-5m",
       false,
       {},
       "bad duration '-5m': negative durations are not allowed"},
      {__LINE__,
       "+5m",
       false,
       {},
       "bad duration '+5m': expected a digit at '+'"},
      {__LINE__,
       "5 m",
       false,
       {},
       "bad duration '5 m': unknown unit ' m' (expected ms, s, m, h, d)"},
      {__LINE__,
       "5w",
       false,
       {},
       "bad duration '5w': unknown unit 'w' (expected ms, s, m, h, d)"},
      {__LINE__,
       "5us",
       false,
       {},
       "bad duration '5us': unknown unit 'us' (expected ms, s, m, h, d)"},
      {__LINE__,
       "1.5h",
       false,
       {},
       "bad duration '1.5h': fractions are not supported (write e.g. 1h30m)"},
      {__LINE__, "h", false, {}, "bad duration 'h': expected a digit at 'h'"},
      {__LINE__,
       "30m1h",
       false,
       {},
       "bad duration '30m1h': unit 'h' repeated or out of order (write e.g. "
       "1h30m)"},
      {__LINE__,
       "1s1s",
       false,
       {},
       "bad duration '1s1s': unit 's' repeated or out of order (write e.g. "
       "1h30m)"},
      {__LINE__, "106752d", false, {}, "bad duration '106752d': too large"},
      {__LINE__,
       "9223372036854775808s",
       false,
       {},
       "bad duration '9223372036854775808s': too large"},
      {__LINE__, "106751d23h47m16s854ms", true,
       nanoseconds(9223372036854000000), ""},
      {__LINE__,
       "106751d23h47m16s855ms",
       false,
       {},
       "bad duration '106751d23h47m16s855ms': too large"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(::testing::Message() << "row at " << __FILE__ << ":" << c.line
                                      << " \"" << c.text << "\"");
    auto parsed = ParseDuration(c.text);
    // Through the tree as well (quoted, so that "" stays a string).
    const Node root = MustParse("\n\nttl: \"" + c.text + "\"\n");
    auto got = GetDuration(root, "ttl");
    if (c.ok) {
      ASSERT_OK(parsed);
      EXPECT_EQ(*parsed, c.want);
      ASSERT_OK(got);
      EXPECT_EQ(*got, c.want);
    } else {
      EXPECT_THAT(parsed, StatusIs(StatusCode::kInvalidArgument, c.error));
      EXPECT_THAT(got, StatusIs(StatusCode::kInvalidArgument,
                                "jitgate.yaml:3: 'ttl': " + c.error));
    }
  }
}

TEST(ReaderTest, DurationPlainAndFallback) {
  const Node root =
      MustParse("policies:\n  - timeout: 5\n    ttl: 10m\n    x: [1m]\n");
  const Node& p = Find(root, "policies")->items()[0];
  EXPECT_THAT(GetDuration(p, "timeout"),
              StatusIs(StatusCode::kInvalidArgument,
                       "jitgate.yaml:2: 'policies[0].timeout': bad duration "
                       "'5': missing unit (s, m, h, d)"));
  ASSERT_OK_AND_ASSIGN(nanoseconds ttl, GetDuration(p, "ttl"));
  EXPECT_EQ(ttl, minutes(10));
  ASSERT_OK_AND_ASSIGN(nanoseconds fallback,
                       GetDuration(p, "wait", seconds(3)));
  EXPECT_EQ(fallback, seconds(3));
  EXPECT_THAT(
      GetDuration(p, "x"),
      StatusIs(
          StatusCode::kInvalidArgument,
          "jitgate.yaml:4: 'policies[0].x': expected a duration, got a list"));
}

}  // namespace
}  // namespace jitgate::config
