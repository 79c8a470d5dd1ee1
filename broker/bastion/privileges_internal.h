// Capability sets of the calling thread, for privileges.cc and the tests
// that set up a process with given capabilities.
#ifndef JITGATE_BROKER_BASTION_PRIVILEGES_INTERNAL_H_
#define JITGATE_BROKER_BASTION_PRIVILEGES_INTERNAL_H_

#include <cstdint>

#include "core/base/status.h"

namespace jitgate::bastion {

// A thread's capability sets, one bit per CAP_* value (CapBit).
struct CapSets {
  uint64_t effective = 0;
  uint64_t permitted = 0;
  uint64_t inheritable = 0;
};

constexpr uint64_t CapBit(int cap) { return uint64_t{1} << cap; }

// GetCaps reads the calling thread's sets (capget); INTERNAL on failure.
[[nodiscard]] StatusOr<CapSets> GetCaps();

// SetCaps replaces the calling thread's sets (capset). The kernel allows
// effective within permitted, and permitted and inheritable only to shrink
// (without CAP_SETPCAP); INTERNAL with errno's text otherwise.
[[nodiscard]] Status SetCaps(const CapSets& caps);

}  // namespace jitgate::bastion

#endif  // JITGATE_BROKER_BASTION_PRIVILEGES_INTERNAL_H_
