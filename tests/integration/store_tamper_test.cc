// The tamper campaign, on a real filesystem (sealed segments really are
// chattr +i here when run as root): flip every byte of every evidence file,
// truncate every file at every length, delete segments, swap records, replace
// a checkpoint with one signed by another key, roll the store back behind a
// saved checkpoint. Every case must be detected by verify (with the
// auditor's saved checkpoint), with the right entry named where an entry was
// hit, and the intact store must never raise a false alarm.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "core/crypto/crypto.h"
#include "store/format.h"
#include "store/note/checkpoint.h"
#include "store/reader.h"
#include "store/scanner.h"
#include "store/segments.h"
#include "store/store.h"
#include "store/verify.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::store {
namespace {

using ::jitgate::testing::StatusIs;
using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const std::string& data) {
  if (DefaultEnv()->FileExists(path)) ASSERT_OK(jitgate::testing::ClearImmutable(path));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), std::streamsize(data.size()));
  ASSERT_TRUE(out.good()) << path;
}

class TamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path() + "/store";
    key_ = tmp_.path() + "/log.key";
    auto signer = note::Signer::FromSeed("tamper.test/log", crypto::Sha256(AsBytes("tamper")));
    ASSERT_OK(signer);
    verifier_ = signer->GetVerifier();
    ASSERT_OK(DefaultEnv()->WriteFileAtomically(key_, signer->EncodeSignerKey().span(), 0600));
    ASSERT_OK(CreateStore(DefaultEnv(), dir_, key_));
    StoreOptions o;
    o.timed_checkpoints = false;
    o.segment_target_size = 700;
    auto st = Store::Open(dir_, o);
    ASSERT_OK(st);
    for (int i = 0; i < 14; ++i) {
      ASSERT_OK((*st)->Append(uint8_t(EntryType::kAuditEvent),
                              AsBytes("{\"n\":" + std::to_string(i) + ",\"pad\":\"" +
                                      std::string(size_t(i * 7), 'p') + "\"}")));
      if (i % 4 == 3) ASSERT_OK((*st)->PublishCheckpoint());
    }
    ASSERT_OK((*st)->Close());
    auto r = StoreReader::Open(dir_);
    ASSERT_OK(r);
    saved_ = (*r)->latest_checkpoint();
    ASSERT_OK(Verify().status) << Verify().Summary();

    // Map every byte of every segment to the entry whose record holds it.
    auto segs = ListSegments(DefaultEnv(), dir_);
    ASSERT_OK(segs);
    ASSERT_GE(segs->size(), 3u);
    for (const SegmentInfo& s : *segs) {
      segments_.push_back(s.path);
      auto f = DefaultEnv()->NewRandomAccessFile(s.path);
      ASSERT_OK(f);
      SegmentScanner sc(f->get(), s.file_size);
      ScannedRecord rec;
      uint64_t index = s.header.first_entry;
      while (true) {
        auto got = sc.Next(&rec);
        ASSERT_OK(got);
        if (!*got) break;
        if (rec.type == RecordType::kEntry) {
          for (uint64_t o = rec.offset; o < rec.offset + rec.size; ++o) {
            entry_at_[{s.path, o}] = index;
          }
          ++index;
        }
      }
    }
  }

  VerifyReport Verify(bool with_saved = true) {
    VerifyOptions o;
    if (with_saved) o.saved_checkpoint = saved_;
    return VerifyStore(dir_, *verifier_, o);
  }

  std::vector<std::string> EvidenceFiles() {
    std::vector<std::string> files = segments_;
    files.push_back(dir_ + "/tree.nodes");
    files.push_back(dir_ + "/STORE");
    return files;
  }

  jitgate::testing::TempDir tmp_;
  std::string dir_, key_, saved_;
  std::optional<note::Verifier> verifier_;
  std::vector<std::string> segments_;
  std::map<std::pair<std::string, uint64_t>, uint64_t> entry_at_;
};

TEST_F(TamperTest, EveryFlippedByteIsDetectedAndTheEntryNamed) {
  int cases = 0;
  for (const std::string& path : EvidenceFiles()) {
    const std::string original = ReadFile(path);
    ASSERT_FALSE(original.empty()) << path;
    // The STORE file's last line is the local path of the signing key:
    // operational configuration, not evidence (changing it makes the writer
    // refuse to open, checked in store_test). Every other byte is evidence.
    size_t limit = original.size();
    if (path == dir_ + "/STORE") limit = original.find("\nkey ") + 1;
    for (size_t i = 0; i < limit; ++i) {
      std::string bad = original;
      bad[i] = char(bad[i] ^ 0x01);
      WriteFile(path, bad);
      VerifyReport rep = Verify();
      ASSERT_FALSE(rep.status.ok()) << path << " byte " << i << " flip not detected";
      auto it = entry_at_.find({path, i});
      if (it != entry_at_.end()) {
        ASSERT_THAT(rep.status.message(), HasSubstr("entry " + std::to_string(it->second)))
            << path << " byte " << i;
      }
      ++cases;
    }
    WriteFile(path, original);
  }
  EXPECT_GT(cases, 2000);
  EXPECT_OK(Verify().status);
}

TEST_F(TamperTest, EveryTruncationIsDetected) {
  for (const std::string& path : EvidenceFiles()) {
    const std::string original = ReadFile(path);
    for (size_t len = 0; len < original.size(); ++len) {
      WriteFile(path, original.substr(0, len));
      VerifyReport rep = Verify();
      ASSERT_FALSE(rep.status.ok()) << path << " truncated to " << len << " not detected";
    }
    WriteFile(path, original);
  }
  EXPECT_OK(Verify().status);
}

TEST_F(TamperTest, DeletedSegmentsAreDetected) {
  for (const std::string& path : segments_) {
    const std::string original = ReadFile(path);
    ASSERT_OK(jitgate::testing::ClearImmutable(path));
    ASSERT_OK(DefaultEnv()->RemoveFile(path));
    VerifyReport rep = Verify();
    EXPECT_THAT(rep.status, StatusIs(StatusCode::kDataLoss, ::testing::_)) << path;
    WriteFile(path, original);
  }
  // The middle one is named as missing.
  ASSERT_OK(jitgate::testing::ClearImmutable(segments_[1]));
  ASSERT_OK(DefaultEnv()->RemoveFile(segments_[1]));
  EXPECT_THAT(Verify(false).status, StatusIs(StatusCode::kDataLoss, HasSubstr("0000000002.seg is missing")));
}

TEST_F(TamperTest, SwappedRecordsAreDetectedWithTheEntryNamed) {
  // Find two adjacent entry records in the first segment and swap them.
  const std::string path = segments_[0];
  std::string data = ReadFile(path);
  std::vector<std::pair<uint64_t, uint64_t>> records;  // offset, entry
  for (const auto& [k, idx] : entry_at_) {
    if (k.first == path && (records.empty() || records.back().second != idx)) {
      records.push_back({k.second, idx});
    }
  }
  ASSERT_GE(records.size(), 2u);
  uint64_t a = records[0].first, b = records[1].first;
  uint64_t b_end = b;
  while (entry_at_.count({path, b_end}) && entry_at_[{path, b_end}] == records[1].second) ++b_end;
  std::string swapped = data.substr(0, a) + data.substr(b, b_end - b) + data.substr(a, b - a) +
                        data.substr(b_end);
  WriteFile(path, swapped);
  VerifyReport rep = Verify();
  EXPECT_THAT(rep.status, StatusIs(StatusCode::kDataLoss,
                                   HasSubstr("entry " + std::to_string(records[0].second))));
}

TEST_F(TamperTest, CheckpointSignedByAnotherKeyIsDetected) {
  // Re-sign the last checkpoint with a different key of the same name and
  // write it back with a valid CRC: only the signature can tell.
  auto other = note::Signer::FromSeed("tamper.test/log", crypto::Sha256(AsBytes("mallory")));
  ASSERT_OK(other);
  const std::string path = segments_.back();
  std::string data = ReadFile(path);
  size_t at = data.rfind(saved_);
  ASSERT_NE(at, std::string::npos);
  auto cp = note::OpenCheckpoint(saved_, *verifier_, "tamper.test/log");
  ASSERT_OK(cp);
  auto forged = note::SignCheckpoint(*cp, *other);
  ASSERT_OK(forged);
  ASSERT_EQ(forged->size(), saved_.size());
  Bytes rec;
  AppendRecord(RecordType::kCheckpoint, AsBytes(*forged), &rec);
  data.replace(at - kRecordHeaderSize, rec.size(), std::string(AsChars(rec)));
  WriteFile(path, data);
  VerifyReport rep = Verify(false);
  EXPECT_THAT(rep.status, StatusIs(StatusCode::kDataLoss, HasSubstr("checkpoint")));
  EXPECT_THAT(rep.status.message(), HasSubstr("no signature from a known key"));
}

TEST_F(TamperTest, RollbackBehindASavedCheckpointIsDetected) {
  // Copy the store as it is now (the attacker's old copy), let it grow, save
  // the newer checkpoint as an auditor would, then restore the old copy.
  std::map<std::string, std::string> old;
  for (const std::string& f : EvidenceFiles()) old[f] = ReadFile(f);
  {
    StoreOptions o;
    o.segment_target_size = 700;
    auto st = Store::Open(dir_, o);
    ASSERT_OK(st);
    ASSERT_OK((*st)->Append(3, AsBytes("{\"text\":\"later\"}")));
    ASSERT_OK((*st)->Close());
  }
  auto r = StoreReader::Open(dir_);
  ASSERT_OK(r);
  saved_ = (*r)->latest_checkpoint();
  ASSERT_OK(Verify().status);
  for (const auto& [f, data] : old) WriteFile(f, data);
  {
    // A segment created after the copy: the attacker removes it too.
    auto names = DefaultEnv()->ListDir(dir_ + "/seg");
    ASSERT_OK(names);
    for (const std::string& n : *names) {
      std::string p = dir_ + "/seg/" + n;
      if (!old.count(p)) {
        ASSERT_OK(jitgate::testing::ClearImmutable(p));
        ASSERT_OK(DefaultEnv()->RemoveFile(p));
      }
    }
  }
  VerifyReport rep = Verify();
  EXPECT_THAT(rep.status, StatusIs(StatusCode::kDataLoss, HasSubstr("rolled back")));
  // Without the saved checkpoint the older store is, by nature, well-formed:
  // that is why auditors and witnesses keep checkpoints.
  EXPECT_OK(Verify(false).status);
}

}  // namespace
}  // namespace jitgate::store
