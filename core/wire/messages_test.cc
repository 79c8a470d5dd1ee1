#include "core/wire/messages.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "core/wire/framing.h"
#include "core/wire/wire_testonly.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::wire {
namespace {

using ::jitgate::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

Bytes Body(const Message& m) {
  Bytes b;
  EXPECT_OK(EncodeBody(m, &b));
  return b;
}

// A SubmitRequest body from raw parts, so that tests can write what the
// encoder refuses to.
struct RawSubmit {
  std::vector<std::string> fields = {"sshd", "alice", "alice", "db1", "10.0.0.7", "ssh", "", "", "", ""};
  uint32_t ttl = 0;
  uint32_t timeout = 300;
  uint8_t flags = 1;
  Bytes Encode() const {
    ByteWriter w;
    for (const auto& f : fields) w.PutU32Prefixed(f);
    w.PutU32(ttl);
    w.PutU32(timeout);
    w.PutU8(flags);
    return w.Release();
  }
};

Status DecodeStatus(MessageType t, const Bytes& body) {
  return DecodeMessage(uint8_t(t), body).status();
}

TEST(MessagesTest, SamplesCoverEveryType) {
  std::set<uint8_t> seen;
  for (const Message& m : testonly::SampleMessages()) seen.insert(uint8_t(TypeOf(m)));
  int known = 0;
  for (int t = 0; t < 256; ++t) known += IsKnownMessageType(uint8_t(t));
  EXPECT_EQ(seen.size(), size_t(known));
  EXPECT_EQ(known, 40);
}

TEST(MessagesTest, EveryMessageRoundTripsThroughAFrame) {
  for (const Message& m : testonly::SampleMessages()) {
    SCOPED_TRACE(MessageTypeName(TypeOf(m)));
    ASSERT_OK_AND_ASSIGN(Bytes frame, EncodeMessage(m));
    ASSERT_GE(frame.size(), kFrameHeaderSize);
    EXPECT_EQ(LoadU32BE(frame.data()), frame.size() - 4);
    EXPECT_EQ(frame[4], uint8_t(TypeOf(m)));
    FrameReader reader;
    ASSERT_OK_AND_ASSIGN(size_t used, reader.Feed(frame));
    EXPECT_EQ(used, frame.size());
    ASSERT_TRUE(reader.HasFrame());
    Frame f = reader.TakeFrame();
    ASSERT_OK_AND_ASSIGN(Message back, DecodeMessage(f.type, f.body));
    EXPECT_TRUE(back == m);
    ASSERT_OK_AND_ASSIGN(Bytes again, EncodeMessage(back));
    EXPECT_EQ(again, frame);
  }
}

TEST(MessagesTest, DefaultMessagesRoundTripWhereValid) {
  // Messages whose defaults are valid encode; the others fail on a named field.
  EXPECT_OK(EncodeMessage(Cancel{}).status());
  EXPECT_OK(EncodeMessage(Hello{}).status());
  EXPECT_OK(EncodeMessage(Decision{}).status());  // outcome error, no id
  EXPECT_THAT(EncodeMessage(SubmitRequest{}).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "SubmitRequest: field service: must not be empty"));
  EXPECT_THAT(EncodeMessage(GetRequest{}).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "GetRequest: field id: not a request id (1-32 characters [0-9a-z])"));
}

TEST(MessagesTest, TruncationAtEveryByteIsRejected) {
  for (const Message& m : testonly::SampleMessages()) {
    SCOPED_TRACE(MessageTypeName(TypeOf(m)));
    Bytes body = Body(m);
    for (size_t n = 0; n < body.size(); ++n) {
      Bytes cut(body.begin(), body.begin() + n);
      EXPECT_THAT(DecodeStatus(TypeOf(m), cut),
                  StatusIs(StatusCode::kInvalidArgument,
                           ::testing::AllOf(StartsWith(MessageTypeName(TypeOf(m)) + ": field "),
                                            HasSubstr(": truncated"))))
          << "cut at " << n;
    }
  }
}

TEST(MessagesTest, TrailingBytesAreRejected) {
  for (const Message& m : testonly::SampleMessages()) {
    SCOPED_TRACE(MessageTypeName(TypeOf(m)));
    Bytes body = Body(m);
    body.push_back(0);
    EXPECT_THAT(DecodeStatus(TypeOf(m), body),
                StatusIs(StatusCode::kInvalidArgument,
                         MessageTypeName(TypeOf(m)) + ": 1 trailing bytes"));
  }
}

TEST(MessagesTest, UnknownTypeIsRejected) {
  for (uint8_t t : {0x00, 0x04, 0x0f, 0x18, 0x1f, 0x2e, 0x2f, 0x3f, 0x7f, 0xff}) {
    EXPECT_THAT(DecodeMessage(t, {}).status(),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr("unknown message type")));
  }
  EXPECT_THAT(DecodeMessage(0x7f, {}).status(),
              StatusIs(StatusCode::kInvalidArgument, "type 0x7f: unknown message type"));
}

TEST(MessagesTest, RawSubmitHelperMatchesEncoder) {
  RawSubmit raw;
  ASSERT_OK_AND_ASSIGN(Message m, DecodeMessage(uint8_t(MessageType::kSubmitRequest), raw.Encode()));
  EXPECT_EQ(Body(m), raw.Encode());
}

TEST(MessagesTest, OverCapStringIsRejectedBeforeTrustingItsLength) {
  RawSubmit raw;
  raw.fields[1] = std::string(kMaxNameField + 1, 'u');
  EXPECT_THAT(DecodeStatus(MessageType::kSubmitRequest, raw.Encode()),
              StatusIs(StatusCode::kInvalidArgument,
                       "SubmitRequest: field user: length 257 exceeds the cap of 256"));
  // A hostile length with no bytes behind it is reported as over the cap: the
  // length is compared with the cap before anything else.
  ByteWriter w;
  w.PutU32(0xffffffff);
  EXPECT_THAT(DecodeStatus(MessageType::kProvideReason, w.Release()),
              StatusIs(StatusCode::kInvalidArgument,
                       "ProvideReason: field reason: length 4294967295 exceeds the cap of 1024"));
  // Exactly at the cap is fine.
  raw.fields[6] = std::string(kMaxCommandField, 'c');
  raw.fields[1] = "alice";
  EXPECT_OK(DecodeStatus(MessageType::kSubmitRequest, raw.Encode()));
  raw.fields[6].push_back('c');
  EXPECT_THAT(DecodeStatus(MessageType::kSubmitRequest, raw.Encode()),
              StatusIs(StatusCode::kInvalidArgument,
                       "SubmitRequest: field command: length 32769 exceeds the cap of 32768"));
}

TEST(MessagesTest, EveryRequestFieldCapIsEnforced) {
  const std::vector<std::pair<const char*, size_t>> caps = {
      {"service", kMaxNameField}, {"user", kMaxNameField},         {"target_user", kMaxNameField},
      {"host", kMaxNameField},    {"remote_addr", kMaxAddressField}, {"tty", kMaxNameField},
      {"command", kMaxCommandField}, {"cwd", kMaxCwdField},         {"reason", kMaxReasonField},
      {"public_key", kMaxPublicKeyField}};
  for (size_t i = 0; i < caps.size(); ++i) {
    SCOPED_TRACE(caps[i].first);
    RawSubmit raw;
    raw.fields[i] = std::string(caps[i].second, 'x');
    EXPECT_OK(DecodeStatus(MessageType::kSubmitRequest, raw.Encode()));
    raw.fields[i].push_back('x');
    EXPECT_THAT(DecodeStatus(MessageType::kSubmitRequest, raw.Encode()),
                StatusIs(StatusCode::kInvalidArgument,
                         std::string("SubmitRequest: field ") + caps[i].first + ": length " +
                             std::to_string(caps[i].second + 1) + " exceeds the cap of " +
                             std::to_string(caps[i].second)));
    // The encoder enforces the same cap.
    SubmitRequest s{testonly::SampleFields(), 0, false};
    std::string* fields[] = {&s.fields.service, &s.fields.user, &s.fields.target_user,
                             &s.fields.host,    &s.fields.remote_addr, &s.fields.tty,
                             &s.fields.command, &s.fields.cwd,  &s.fields.reason,
                             &s.fields.public_key};
    *fields[i] = std::string(caps[i].second + 1, 'x');
    EXPECT_THAT(EncodeMessage(s).status(),
                StatusIs(StatusCode::kInvalidArgument,
                         std::string("SubmitRequest: field ") + caps[i].first + ": " +
                             std::to_string(caps[i].second + 1) + " bytes exceeds the cap of " +
                             std::to_string(caps[i].second)));
  }
}

TEST(MessagesTest, NulInStringIsRejected) {
  RawSubmit raw;
  raw.fields[1] = std::string("ali\0ce", 6);
  EXPECT_THAT(DecodeStatus(MessageType::kSubmitRequest, raw.Encode()),
              StatusIs(StatusCode::kInvalidArgument,
                       "SubmitRequest: field user: contains a NUL byte"));
  raw.fields[1] = "alice";
  raw.fields[6] = std::string("ls\0-la", 6);
  EXPECT_THAT(DecodeStatus(MessageType::kSubmitRequest, raw.Encode()),
              StatusIs(StatusCode::kInvalidArgument,
                       "SubmitRequest: field command: contains a NUL byte"));
  SubmitRequest s{testonly::SampleFields(), 0, false};
  s.fields.host = std::string("db1\0evil", 8);
  EXPECT_THAT(EncodeMessage(s).status(),
              StatusIs(StatusCode::kInvalidArgument, "SubmitRequest: field host: contains a NUL byte"));
}

TEST(MessagesTest, RequiredFieldsMustNotBeEmpty) {
  for (size_t i : {0, 1, 2, 3}) {
    RawSubmit raw;
    raw.fields[i] = "";
    EXPECT_THAT(DecodeStatus(MessageType::kSubmitRequest, raw.Encode()),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(": must not be empty")));
  }
}

TEST(MessagesTest, ReservedFlagBitsAreRejected) {
  RawSubmit raw;
  raw.flags = 0x03;
  EXPECT_THAT(DecodeStatus(MessageType::kSubmitRequest, raw.Encode()),
              StatusIs(StatusCode::kInvalidArgument,
                       "SubmitRequest: field flags: reserved bits set (0x02)"));
  raw.flags = 0x80;
  EXPECT_THAT(DecodeStatus(MessageType::kSubmitRequest, raw.Encode()),
              StatusIs(StatusCode::kInvalidArgument,
                       "SubmitRequest: field flags: reserved bits set (0x80)"));
  raw.flags = 0;
  EXPECT_OK(DecodeStatus(MessageType::kSubmitRequest, raw.Encode()));
}

// Replaces the byte at `offset` of the encoded body of m.
Bytes Patched(const Message& m, size_t offset, uint8_t value) {
  Bytes b = Body(m);
  b.at(offset) = value;
  return b;
}

TEST(MessagesTest, EnumsOutOfRangeAreRejected) {
  // Error.code is the first u16.
  Bytes err = Body(Error{ErrorCode::kBusy, "x"});
  err[1] = 15;
  EXPECT_THAT(DecodeStatus(MessageType::kError, err),
              StatusIs(StatusCode::kInvalidArgument, "Error: field code: unknown value 15"));
  err[1] = 0;
  EXPECT_THAT(DecodeStatus(MessageType::kError, err),
              StatusIs(StatusCode::kInvalidArgument, "Error: field code: unknown value 0"));

  // Decision.outcome follows id (4 + 10) and digest (32).
  Decision d{"7f3a9c02e1", {}, Outcome::kDenied, {}, "", "denied", 0, ""};
  for (uint8_t v : {0, 6, 255}) {
    EXPECT_THAT(DecodeStatus(MessageType::kDecision, Patched(d, 46, v)),
                StatusIs(StatusCode::kInvalidArgument,
                         "Decision: field outcome: unknown value " + std::to_string(v)));
  }
  EXPECT_THAT(DecodeStatus(MessageType::kListRequests, Patched(ListRequests{}, 0, 3)),
              StatusIs(StatusCode::kInvalidArgument, "ListRequests: field filter: unknown value 3"));
  EXPECT_THAT(DecodeStatus(MessageType::kFollow, Patched(Follow{}, 0, 0)),
              StatusIs(StatusCode::kInvalidArgument, "Follow: field filter: unknown value 0"));

  // RequestInfo.state follows id (4 + 10), the fields and the digest.
  RequestInfo info = testonly::SampleInfo();
  size_t fields_size = 0;
  {
    ByteWriter w;
    for (const std::string* f : {&info.fields.service, &info.fields.user, &info.fields.target_user,
                                 &info.fields.host, &info.fields.remote_addr, &info.fields.tty,
                                 &info.fields.command, &info.fields.cwd, &info.fields.reason,
                                 &info.fields.public_key}) {
      w.PutU32Prefixed(*f);
    }
    w.PutU32(info.fields.ttl_seconds);
    fields_size = w.size();
  }
  const size_t state_at = 4 + info.id.size() + fields_size + 32;
  EXPECT_EQ(Body(info)[state_at], 1);
  EXPECT_THAT(DecodeStatus(MessageType::kRequestInfo, Patched(info, state_at, 7)),
              StatusIs(StatusCode::kInvalidArgument, "RequestInfo: field state: unknown value 7"));
  // The first vote's verdict: after filed_by, approvers, u16, 2 x u64, u16 count.
  const size_t verdict_at = state_at + 1 + 4 + info.filed_by.size() + 4 + info.approvers.size() +
                            2 + 8 + 8 + 2;
  EXPECT_EQ(Body(info)[verdict_at], 1);
  EXPECT_THAT(DecodeStatus(MessageType::kRequestInfo, Patched(info, verdict_at, 3)),
              StatusIs(StatusCode::kInvalidArgument, "RequestInfo: field verdict: unknown value 3"));
}

TEST(MessagesTest, CertificateOnlyWithAnApproval) {
  Decision d{"7f3a9c02e1", {}, Outcome::kDenied, {"bob"}, "", "denied", 0, "ssh-ed25519-cert-v01@openssh.com AAAA"};
  EXPECT_THAT(EncodeMessage(d).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "Decision: field certificate: must be empty unless approved"));
  d.outcome = Outcome::kApproved;
  d.valid_until = 1;
  EXPECT_OK(EncodeMessage(d).status());
  d.certificate = std::string(kMaxCertificateField + 1, 'c');
  EXPECT_THAT(EncodeMessage(d).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("field certificate: 16385 bytes")));
}

TEST(MessagesTest, RevokeNamesExactlyOneTarget) {
  EXPECT_OK(EncodeMessage(Revoke{42, "", ""}).status());
  EXPECT_OK(EncodeMessage(Revoke{0, "7f3a", "stolen"}).status());
  EXPECT_THAT(EncodeMessage(Revoke{42, "7f3a", ""}).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "Revoke: fields serial, id: exactly one must be set"));
  EXPECT_THAT(EncodeMessage(Revoke{}).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "Revoke: fields serial, id: exactly one must be set"));
  EXPECT_THAT(EncodeMessage(Revoke{0, "7F3A", ""}).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("field id: not a request id")));
}

TEST(MessagesTest, HostSigningNeedsPrincipalsAndCertsASerial) {
  SignHostKey s{testonly::SamplePublicKey(), {}, 0};
  EXPECT_THAT(EncodeMessage(s).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "SignHostKey: field principals: must not be empty"));
  s.principals.assign(kMaxCertPrincipals + 1, "h");
  EXPECT_THAT(EncodeMessage(s).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("33 items exceed the cap of 32")));
  CertList list{false, {testonly::SampleCert()}};
  list.items[0].serial = 0;
  EXPECT_THAT(EncodeMessage(list).status(),
              StatusIs(StatusCode::kInvalidArgument, "CertList: field serial: must not be 0"));
}

TEST(MessagesTest, SessionChunksAreBinaryAndCapped) {
  // Chunks carry raw bytes: NUL is fine, empty and over-cap are not.
  SessionData d{Bytes{0, 0, 0}};
  ASSERT_OK_AND_ASSIGN(Bytes frame, EncodeMessage(d));
  EXPECT_OK(DecodeMessage(uint8_t(MessageType::kSessionData), ByteSpan(frame).subspan(5)).status());
  EXPECT_THAT(EncodeMessage(SessionData{}).status(),
              StatusIs(StatusCode::kInvalidArgument, "SessionData: field chunk: must not be empty"));
  EXPECT_THAT(EncodeMessage(SessionData{Bytes(kMaxSessionChunk + 1, 'x')}).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("61441 bytes exceeds the cap of 61440")));
  ByteWriter w;
  w.PutU32(0xffffffff);
  EXPECT_THAT(DecodeStatus(MessageType::kSessionData, w.Release()),
              StatusIs(StatusCode::kInvalidArgument,
                       "SessionData: field chunk: length 4294967295 exceeds the cap of 61440"));
  EXPECT_THAT(EncodeMessage(CloseSession{0, false, 3, "", "", 0, 0, 0}).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("must be 0 when has_exit_status is 0")));
  OpenSession o = testonly::SampleOpenSession();
  o.session = "NOT-AN-ID";
  EXPECT_THAT(EncodeMessage(o).status(), StatusIs(StatusCode::kInvalidArgument, HasSubstr("field session")));
}

TEST(MessagesTest, TerminationFieldsAreChecked) {
  EXPECT_THAT(EncodeMessage(TerminateSession{"", ""}).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("TerminateSession: field session: not a request id")));
  EXPECT_THAT(EncodeMessage(TerminateSession{"K3N8", ""}).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("field session: not a request id")));
  EXPECT_THAT(
      EncodeMessage(TerminateSession{"k3n8", std::string(kMaxCommentField + 1, 'c')}).status(),
      StatusIs(StatusCode::kInvalidArgument,
               "TerminateSession: field comment: 513 bytes exceeds the cap of 512"));
  EXPECT_THAT(EncodeMessage(SessionTerminated{"", "x"}).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "SessionTerminated: field by: must not be empty"));
  EXPECT_THAT(EncodeMessage(SessionTerminated{std::string("b\0b", 3), ""}).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "SessionTerminated: field by: contains a NUL byte"));
  // On the wire: a length over the cap is refused before it is trusted, the
  // bool is 0 or 1, and the session id is checked.
  ByteWriter w;
  w.PutU32Prefixed(std::string_view("k3n8"));
  w.PutU32(0x10000);
  EXPECT_THAT(DecodeStatus(MessageType::kTerminateSession, w.Release()),
              StatusIs(StatusCode::kInvalidArgument,
                       "TerminateSession: field comment: length 65536 exceeds the cap of 512"));
  EXPECT_THAT(DecodeStatus(MessageType::kSessionTerminateAck,
                           Patched(SessionTerminateAck{"k3n8v2x9q4m1", false}, 16, 2)),
              StatusIs(StatusCode::kInvalidArgument,
                       "SessionTerminateAck: field already_ended: bool must be 0 or 1, got 2"));
  ByteWriter bad;
  bad.PutU32Prefixed(std::string_view("k3n8-v2"));
  bad.PutU8(0);
  EXPECT_THAT(DecodeStatus(MessageType::kSessionTerminateAck, bad.Release()),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("SessionTerminateAck: field session: not a request id")));
  ByteWriter big;
  big.PutU32Prefixed(std::string(kMaxLabelField + 1, 'b'));
  big.PutU32Prefixed(std::string_view(""));
  EXPECT_THAT(DecodeStatus(MessageType::kSessionTerminated, big.Release()),
              StatusIs(StatusCode::kInvalidArgument,
                       "SessionTerminated: field by: length 257 exceeds the cap of 256"));
  // Exact bytes: string "k3n8" | u8 1.
  ASSERT_OK_AND_ASSIGN(Bytes frame, EncodeMessage(SessionTerminateAck{"k3n8", true}));
  EXPECT_EQ(HexEncode(frame), "0000000a37" "000000046b336e38" "01");
}

TEST(MessagesTest, DigestOfRequestsWithoutAKeyIsUnchanged) {
  // The value RequestDigest gave before public_key and ttl_seconds existed:
  // label, then the nine strings, nothing after.
  RequestFields f = testonly::SampleFields();
  ByteWriter w;
  w.PutU32Prefixed(std::string_view("jitgate request digest v1"));
  for (const std::string* s : {&f.service, &f.user, &f.target_user, &f.host, &f.remote_addr,
                               &f.tty, &f.command, &f.cwd, &f.reason}) {
    w.PutU32Prefixed(*s);
  }
  EXPECT_EQ(RequestDigest(f), crypto::Sha256(w.span()));
  RequestFields keyed = f;
  keyed.public_key = testonly::SamplePublicKey();
  EXPECT_NE(RequestDigest(keyed), RequestDigest(f));
  RequestFields ttl = f;
  ttl.ttl_seconds = 600;
  EXPECT_NE(RequestDigest(ttl), RequestDigest(f));
  keyed.ttl_seconds = 600;
  EXPECT_NE(RequestDigest(keyed), RequestDigest(ttl));
}

TEST(MessagesTest, BoolsMustBeZeroOrOne) {
  EXPECT_THAT(DecodeStatus(MessageType::kNeedReason, Patched(NeedReason{true, "Reason: "}, 0, 2)),
              StatusIs(StatusCode::kInvalidArgument,
                       "NeedReason: field required: bool must be 0 or 1, got 2"));
  EXPECT_THAT(DecodeStatus(MessageType::kRequestList, Patched(RequestList{}, 0, 0xff)),
              StatusIs(StatusCode::kInvalidArgument,
                       "RequestList: field more: bool must be 0 or 1, got 255"));
}

TEST(MessagesTest, RequestIdsAreChecked) {
  for (const std::string& bad : std::vector<std::string>{"", "7F3A", "7f3a-1", "7f 3a", std::string(33, 'a')}) {
    SCOPED_TRACE(bad);
    ByteWriter w;
    w.PutU32Prefixed(bad);
    EXPECT_THAT(DecodeStatus(MessageType::kGetRequest, w.Release()),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr("GetRequest: field id: ")));
    EXPECT_FALSE(IsValidRequestId(bad));
  }
  EXPECT_TRUE(IsValidRequestId("7f3a"));
  EXPECT_TRUE(IsValidRequestId(std::string(32, 'z')));
}

TEST(MessagesTest, ListCountsAreCapped) {
  RequestInfo info = testonly::SampleInfo();
  info.votes.assign(kMaxVotes + 1, info.votes[0]);
  EXPECT_THAT(EncodeMessage(info).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "RequestInfo: field votes: 17 items exceed the cap of 16"));
  // On the wire: a Decision whose decided_by count is 17 is rejected before
  // any name is read.
  ByteWriter w;
  w.PutU32Prefixed(std::string_view("7f3a9c02e1"));
  w.PutBytes(ByteSpan(crypto::Sha256Digest{}));
  w.PutU8(uint8_t(Outcome::kApproved));
  w.PutU16(17);
  EXPECT_THAT(DecodeStatus(MessageType::kDecision, w.Release()),
              StatusIs(StatusCode::kInvalidArgument,
                       "Decision: field decided_by: 17 items exceed the cap of 16"));
}

TEST(MessagesTest, CrossFieldInvariants) {
  EXPECT_THAT(EncodeMessage(Hello{2, 1, "x"}).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "Hello: versions: need 1 <= min_version <= max_version"));
  EXPECT_THAT(DecodeStatus(MessageType::kHello, Patched(Hello{1, 1, "x"}, 1, 0)),
              StatusIs(StatusCode::kInvalidArgument,
                       "Hello: versions: need 1 <= min_version <= max_version"));
  EXPECT_THAT(EncodeMessage(HelloAck{0, "x"}).status(),
              StatusIs(StatusCode::kInvalidArgument, "HelloAck: field version: must be at least 1"));
  Decision d{"7f3a9c02e1", {}, Outcome::kDenied, {"carol"}, "", "denied", 5, ""};
  EXPECT_THAT(EncodeMessage(d).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "Decision: field valid_until: must be 0 unless approved"));
  d.valid_until = 0;
  d.id = "";
  EXPECT_THAT(EncodeMessage(d).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "Decision: field id: may be empty only for outcome error"));
  d.outcome = Outcome::kError;
  d.digest[0] = 1;
  EXPECT_THAT(EncodeMessage(d).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "Decision: field digest: must be zero when id is empty"));
  d.digest[0] = 0;
  EXPECT_OK(EncodeMessage(d).status());
}

TEST(MessagesTest, LargestRequestInfoFitsAFrame) {
  RequestInfo max = testonly::MaxInfo();
  ASSERT_OK_AND_ASSIGN(Bytes frame, EncodeMessage(max));
  // docs/protocol.md §3.2 states this size.
  EXPECT_EQ(frame.size() - kFrameHeaderSize, 56733u);
  EXPECT_LE(frame.size() - 4, kMaxFrameLength);
  RequestList one{false, {max}};
  EXPECT_OK(EncodeMessage(one).status());
  RequestList two{true, {max, max}};
  EXPECT_THAT(EncodeMessage(two).status(),
              StatusIs(StatusCode::kOutOfRange,
                       "RequestList: body of 113469 bytes exceeds the frame cap of 65535"));
}

TEST(MessagesTest, HealthMessagesCheckTheirFields) {
  EXPECT_THAT(EncodeMessage(SpoolReport{"", 1, 2}).status(),
              StatusIs(StatusCode::kInvalidArgument, "SpoolReport: field host: must not be empty"));
  StatusReport r = testonly::SampleStatusReport();
  r.spools[1].host.clear();
  EXPECT_THAT(EncodeMessage(r).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "StatusReport: field spools.host: must not be empty"));
  r = testonly::SampleStatusReport();
  r.spools.assign(kMaxSpoolHosts + 1, r.spools[0]);
  EXPECT_THAT(EncodeMessage(r).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "StatusReport: field spools: 257 items exceed the cap of 256"));
  // The verify state byte follows 13 fixed and string fields; 4 is no state.
  r = testonly::SampleStatusReport();
  Bytes body;
  ASSERT_OK(EncodeBody(r, &body));
  size_t at = 4 + r.version.size() + 8 + 8 + 4 + r.config_file.size() + 8 + 8 + 8 + 4 +
              r.store_dir.size() + 8 * 6;
  ASSERT_EQ(body[at], uint8_t(CheckState::kOk));
  body[at] = 4;
  EXPECT_THAT(DecodeStatus(MessageType::kStatusReport, body),
              StatusIs(StatusCode::kInvalidArgument, "StatusReport: field verify: unknown value 4"));
  EXPECT_THAT(DecodeStatus(MessageType::kGetStatus, Bytes{0}),
              StatusIs(StatusCode::kInvalidArgument, "GetStatus: 1 trailing bytes"));
}

TEST(MessagesTest, DecodeRejectsOverCapBody) {
  Bytes big(kMaxBodySize + 1, 0);
  EXPECT_THAT(DecodeMessage(uint8_t(MessageType::kCancel), big).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "Cancel: body of 65536 bytes exceeds the frame cap"));
}

TEST(MessagesTest, EncodeBodyLeavesOutputUnchangedOnFailure) {
  Bytes out = {1, 2, 3};
  EXPECT_FALSE(EncodeBody(GetRequest{"BAD"}, &out).ok());
  EXPECT_EQ(out, (Bytes{1, 2, 3}));
}

TEST(MessagesTest, ExactBytesOfASmallMessage) {
  ASSERT_OK_AND_ASSIGN(Bytes frame, EncodeMessage(Hello{1, 1, "pj"}));
  EXPECT_EQ(HexEncode(frame), "0000000b01" "0001" "0001" "00000002" "706a");
  ASSERT_OK_AND_ASSIGN(Bytes cancel, EncodeMessage(Cancel{}));
  EXPECT_EQ(HexEncode(cancel), "0000000117");
}

}  // namespace
}  // namespace jitgate::wire
