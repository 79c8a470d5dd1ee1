// Checks the Merkle code against every vector in $JITGATE_TESTDATA/merkle:
// the transparency-dev/merkle inclusion and consistency probes, the RFC 6962
// reference tree and the derived byte-leaf tree (see SOURCES.md there).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/base/bytes.h"
#include "core/crypto/crypto.h"
#include "store/merkle/compact_range.h"
#include "store/merkle/merkle.h"
#include "store/merkle/merkle_test_util.h"
#include "store/merkle/proof.h"
#include "store/merkle/reference_test_util.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::merkle {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::ToBytes;

fs::path MerkleDir() {
  const char* root = std::getenv("JITGATE_TESTDATA");
  return fs::path(root != nullptr ? root : "JITGATE_TESTDATA-is-unset") /
         "merkle";
}

// Parses a JSON file; on failure records a test failure naming the file and
// returns a discarded value.
json ReadJson(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(in.good() && !j.is_discarded())
      << path << ": cannot read or parse";
  return j;
}

// All *.json files under dir, sorted so that failures are reproducible.
std::vector<fs::path> JsonFilesUnder(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->is_regular_file() && it->path().extension() == ".json")
      out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Bytes B64(const json& j, const fs::path& path) {
  Bytes out;
  EXPECT_TRUE(j.is_string() && crypto::Base64Decode(j.get<std::string>(), &out))
      << path << ": bad base64 " << j;
  return out;
}

std::vector<Bytes> B64List(const json& j, const fs::path& path) {
  std::vector<Bytes> out;
  if (j.is_null()) return out;  // upstream writes an empty proof as null
  for (const json& e : j) out.push_back(B64(e, path));
  return out;
}

Hash FromHex(const json& j) {
  Bytes b;
  EXPECT_TRUE(j.is_string() && HexDecode(j.get<std::string>(), &b) &&
              b.size() == kHashSize)
      << "bad hex hash " << j;
  Hash h{};
  std::copy_n(b.begin(), std::min(b.size(), h.size()), h.begin());
  return h;
}

Bytes HexBytes(const json& j) {
  Bytes b;
  EXPECT_TRUE(j.is_string() && HexDecode(j.get<std::string>(), &b))
      << "bad hex " << j;
  return b;
}

// The 8 standard CT test leaves of testonly/constants.go, as a MemoryTree.
struct ReferenceTree {
  std::vector<Bytes> leaves;
  MemoryTree tree;
};
ReferenceTree LoadReferenceTree() {
  ReferenceTree out;
  const json j = ReadJson(MerkleDir() / "rfc6962-reference-tree.json");
  if (j.is_discarded()) return out;
  for (const json& hex : j.at("leaf_inputs_hex"))
    out.leaves.push_back(HexBytes(hex));
  out.tree = testing::TreeOf(out.leaves);
  return out;
}

TEST(MerkleVectorsTest, InclusionProbes) {
  const auto files = JsonFilesUnder(MerkleDir() / "inclusion");
  ASSERT_FALSE(files.empty())
      << "no vectors under " << MerkleDir() / "inclusion";
  ReferenceTree ref = LoadReferenceTree();
  ASSERT_EQ(ref.tree.size(), 8u);
  int happy = 0;
  int rejected = 0;
  int rebuilt = 0;
  for (const fs::path& path : files) {
    SCOPED_TRACE(path.string());
    const json j = ReadJson(path);
    if (j.is_discarded()) continue;
    const uint64_t index = j.at("leafIdx").get<uint64_t>();
    const uint64_t size = j.at("treeSize").get<uint64_t>();
    const Bytes leaf = B64(j.at("leafHash"), path);
    const Bytes root = B64(j.at("root"), path);
    const std::vector<Bytes> proof = B64List(j.at("proof"), path);
    const bool want_err = j.at("wantErr").get<bool>();
    const Status s = VerifyInclusion(index, size, leaf, proof, root);
    if (want_err) {
      EXPECT_FALSE(s.ok()) << path << " (" << j.at("desc")
                           << ") verified but wantErr";
      ++rejected;
      continue;
    }
    EXPECT_OK(s) << path << " (" << j.at("desc") << ")";
    ++happy;
    // The upstream happy paths are over the reference tree: our builder
    // must reproduce them exactly.
    if (size <= ref.tree.size() && root.size() == kHashSize) {
      auto our_root = RootAt(ref.tree, size);
      ASSERT_OK(our_root);
      if (std::equal(root.begin(), root.end(), our_root->begin())) {
        auto our_proof = InclusionProof(ref.tree, index, size);
        ASSERT_OK(our_proof);
        EXPECT_EQ(ToBytes(*our_proof), proof) << path;
        ++rebuilt;
      }
    }
  }
  EXPECT_EQ(happy + rejected, int(files.size()));
  EXPECT_GT(happy, 0);
  EXPECT_GT(rejected, 0);
  EXPECT_GT(rebuilt, 0);
  RecordProperty("inclusion_files", int(files.size()));
  std::printf(
      "inclusion probes: %zu files, %d verified, %d rejected, %d rebuilt\n",
      files.size(), happy, rejected, rebuilt);
}

TEST(MerkleVectorsTest, ConsistencyProbes) {
  const auto files = JsonFilesUnder(MerkleDir() / "consistency");
  ASSERT_FALSE(files.empty())
      << "no vectors under " << MerkleDir() / "consistency";
  ReferenceTree ref = LoadReferenceTree();
  ASSERT_EQ(ref.tree.size(), 8u);
  int happy = 0;
  int rejected = 0;
  int rebuilt = 0;
  for (const fs::path& path : files) {
    SCOPED_TRACE(path.string());
    const json j = ReadJson(path);
    if (j.is_discarded()) continue;
    const uint64_t size1 = j.at("size1").get<uint64_t>();
    const uint64_t size2 = j.at("size2").get<uint64_t>();
    const Bytes root1 = B64(j.at("root1"), path);
    const Bytes root2 = B64(j.at("root2"), path);
    const std::vector<Bytes> proof = B64List(j.at("proof"), path);
    const bool want_err = j.at("wantErr").get<bool>();
    const Status s = VerifyConsistency(size1, size2, proof, root1, root2);
    if (want_err) {
      EXPECT_FALSE(s.ok()) << path << " (" << j.at("desc")
                           << ") verified but wantErr";
      ++rejected;
      continue;
    }
    EXPECT_OK(s) << path << " (" << j.at("desc") << ")";
    ++happy;
    if (size1 > 0 && size2 <= ref.tree.size() && root2.size() == kHashSize) {
      auto our_root = RootAt(ref.tree, size2);
      ASSERT_OK(our_root);
      if (std::equal(root2.begin(), root2.end(), our_root->begin())) {
        auto our_proof = ConsistencyProof(ref.tree, size1, size2);
        ASSERT_OK(our_proof);
        EXPECT_EQ(ToBytes(*our_proof), proof) << path;
        ++rebuilt;
      }
    }
  }
  EXPECT_EQ(happy + rejected, int(files.size()));
  EXPECT_GT(happy, 0);
  EXPECT_GT(rejected, 0);
  EXPECT_GT(rebuilt, 0);
  std::printf(
      "consistency probes: %zu files, %d verified, %d rejected, %d rebuilt\n",
      files.size(), happy, rejected, rebuilt);
}

TEST(MerkleVectorsTest, Rfc6962ReferenceTree) {
  const fs::path path = MerkleDir() / "rfc6962-reference-tree.json";
  ASSERT_TRUE(fs::is_regular_file(path)) << path;
  SCOPED_TRACE(path.string());
  const json j = ReadJson(path);
  ASSERT_FALSE(j.is_discarded());

  int hasher = 0;
  for (const json& v : j.at("hasher_vectors")) {
    const std::string op = v.at("op").get<std::string>();
    const Hash want = FromHex(v.at("want"));
    if (op == "empty_root") {
      EXPECT_EQ(EmptyRoot(), want) << v.at("desc");
    } else if (op == "leaf") {
      EXPECT_EQ(HashLeaf(HexBytes(v.at("input_hex"))), want) << v.at("desc");
    } else if (op == "node") {
      // Children deliberately not 32 bytes: checks the prefix constant.
      EXPECT_EQ(crypto::Sha256Node(kNodeHashPrefix, HexBytes(v.at("left_hex")),
                                   HexBytes(v.at("right_hex"))),
                want)
          << v.at("desc");
    } else {
      ADD_FAILURE() << "unknown hasher op " << op;
    }
    ++hasher;
  }
  EXPECT_EQ(hasher, 4);

  std::vector<Bytes> leaves;
  for (const json& hex : j.at("leaf_inputs_hex"))
    leaves.push_back(HexBytes(hex));
  ASSERT_EQ(leaves.size(), 8u);
  MemoryTree tree = testing::TreeOf(leaves);

  // Every complete node, both from the MemoryTree and from the compact
  // range's visitor.
  std::map<std::pair<int, uint64_t>, Hash> visited;
  CompactRange range;
  for (const Bytes& leaf : leaves) {
    range.Append(HashLeaf(leaf), [&](int level, uint64_t index, const Hash& h) {
      visited[{level, index}] = h;
    });
  }
  const json& levels = j.at("node_hashes_by_level");
  size_t nodes = 0;
  for (size_t level = 0; level < levels.size(); ++level) {
    for (size_t index = 0; index < levels[level].size(); ++index) {
      const Hash want = FromHex(levels[level][index]);
      auto got = tree.GetNode(int(level), index);
      ASSERT_OK(got);
      EXPECT_EQ(*got, want) << "node (" << level << ", " << index << ")";
      EXPECT_EQ((visited[{int(level), index}]), want)
          << "visited (" << level << ", " << index << ")";
      ++nodes;
    }
  }
  EXPECT_EQ(nodes, 15u);
  EXPECT_EQ(visited.size(), 15u);

  const json& roots = j.at("root_by_size");
  ASSERT_EQ(roots.size(), 9u);
  CompactRange growing;
  for (uint64_t n = 0; n <= 8; ++n) {
    const Hash want = FromHex(roots.at(std::to_string(n)));
    EXPECT_EQ(reference::Mth(std::span(leaves).first(n)), want)
        << "reference, size " << n;
    auto got = RootAt(tree, n);
    ASSERT_OK(got);
    EXPECT_EQ(*got, want) << "RootAt, size " << n;
    EXPECT_EQ(growing.Root(), want) << "CompactRange, size " << n;
    if (n < 8) growing.Append(HashLeaf(leaves[n]));
  }
}

std::string Hex(const Hash& h) { return HexEncode(h); }

TEST(MerkleVectorsTest, DerivedByteLeaves) {
  const fs::path path = MerkleDir() / "derived-bytes-0-129.json";
  ASSERT_TRUE(fs::is_regular_file(path)) << path;
  SCOPED_TRACE(path.string());
  const json j = ReadJson(path);
  ASSERT_FALSE(j.is_discarded());

  // d[i] = the single byte i.
  MemoryTree tree;
  for (int i = 0; i < 130; ++i) {
    const uint8_t b = uint8_t(i);
    tree.Append(HashLeaf(ByteSpan(&b, 1)));
  }
  const json& roots = j.at("root_by_size");
  ASSERT_EQ(roots.size(), 131u);
  for (uint64_t n = 0; n <= 130; ++n) {
    auto got = RootAt(tree, n);
    ASSERT_OK(got);
    EXPECT_EQ(Hex(*got), roots.at(std::to_string(n)).get<std::string>())
        << "size " << n;
  }

  auto hex_list = [](const std::vector<Hash>& proof) {
    std::vector<std::string> out;
    for (const Hash& h : proof) out.push_back(Hex(h));
    return out;
  };
  size_t inclusion = 0;
  for (const json& v : j.at("inclusion")) {
    const uint64_t index = v.at("index").get<uint64_t>();
    const uint64_t size = v.at("size").get<uint64_t>();
    auto proof = InclusionProof(tree, index, size);
    ASSERT_OK(proof);
    EXPECT_EQ(hex_list(*proof), v.at("proof").get<std::vector<std::string>>())
        << "inclusion " << index << " " << size;
    ++inclusion;
  }
  EXPECT_EQ(inclusion, 210u);  // every (index, size) with size <= 20
  size_t consistency = 0;
  for (const json& v : j.at("consistency")) {
    const uint64_t size1 = v.at("size1").get<uint64_t>();
    const uint64_t size2 = v.at("size2").get<uint64_t>();
    auto proof = ConsistencyProof(tree, size1, size2);
    ASSERT_OK(proof);
    EXPECT_EQ(hex_list(*proof), v.at("proof").get<std::vector<std::string>>())
        << "consistency " << size1 << " " << size2;
    ++consistency;
  }
  EXPECT_EQ(consistency, 210u);

  // Rolling digests: SHA-256 over "<i> <n>[ <hex>]...\n" for every proof of
  // every size 1..130 (format in the file's rolling_digests.format).
  crypto::Sha256Hasher incl;
  crypto::Sha256Hasher cons;
  auto line = [](uint64_t a, uint64_t b, const std::vector<Hash>& proof) {
    std::string s = std::to_string(a) + " " + std::to_string(b);
    for (const Hash& h : proof) s += " " + Hex(h);
    return s + "\n";
  };
  for (uint64_t n = 1; n <= 130; ++n) {
    for (uint64_t i = 0; i < n; ++i) {
      auto proof = InclusionProof(tree, i, n);
      ASSERT_OK(proof);
      incl.Update(AsBytes(line(i, n, *proof)));
    }
  }
  for (uint64_t n = 1; n <= 130; ++n) {
    for (uint64_t m = 1; m <= n; ++m) {
      auto proof = ConsistencyProof(tree, m, n);
      ASSERT_OK(proof);
      cons.Update(AsBytes(line(m, n, *proof)));
    }
  }
  const json& digests = j.at("rolling_digests");
  EXPECT_EQ(Hex(incl.Finish()),
            digests.at("inclusion_all_sizes_1_130").get<std::string>());
  EXPECT_EQ(Hex(cons.Finish()),
            digests.at("consistency_all_sizes_1_130").get<std::string>());
}

}  // namespace
}  // namespace jitgate::merkle
