// Helpers shared by the Merkle tests and fuzzers (test-only).
#ifndef JITGATE_STORE_MERKLE_MERKLE_TEST_UTIL_H_
#define JITGATE_STORE_MERKLE_MERKLE_TEST_UTIL_H_

#include <cstdint>
#include <random>
#include <vector>

#include "core/base/bytes.h"
#include "store/merkle/merkle.h"
#include "store/merkle/proof.h"

namespace jitgate::merkle::testing {

// Proof components as raw byte strings, the verifiers' input form.
inline std::vector<Bytes> ToBytes(const std::vector<Hash>& proof) { return ProofBytes(proof); }

// n leaf inputs of random length 0..40, deterministic for a given rng.
inline std::vector<Bytes> RandomLeaves(std::mt19937_64& rng, size_t n) {
  std::vector<Bytes> leaves(n);
  for (Bytes& leaf : leaves) {
    leaf.resize(rng() % 41);
    for (uint8_t& b : leaf) b = static_cast<uint8_t>(rng());
  }
  return leaves;
}

inline MemoryTree TreeOf(const std::vector<Bytes>& leaves) {
  MemoryTree tree;
  for (const Bytes& leaf : leaves) tree.Append(HashLeaf(leaf));
  return tree;
}

// A NodeSource that counts GetNode calls on another one.
class CountingSource : public NodeSource {
 public:
  explicit CountingSource(NodeSource& base) : base_(base) {}
  StatusOr<Hash> GetNode(int level, uint64_t index) override {
    ++calls_;
    return base_.GetNode(level, index);
  }
  int calls() const { return calls_; }
  void Reset() { calls_ = 0; }

 private:
  NodeSource& base_;
  int calls_ = 0;
};

}  // namespace jitgate::merkle::testing

#endif  // JITGATE_STORE_MERKLE_MERKLE_TEST_UTIL_H_
