// Test-only helpers for the sudo plugins' tests (never linked into a plugin).
#ifndef JITGATE_SUDO_SUDO_TESTONLY_H_
#define JITGATE_SUDO_SUDO_TESTONLY_H_

#include <string>
#include <utility>
#include <vector>

namespace jitgate::sudo::testonly {

// A NULL-terminated array of C strings, as sudo passes them (user_info,
// command_info, argv, plugin options). get() converts to both the
// `char* const*` the plugin entry points take and the `const char* const*`
// the internal helpers take.
class Argv {
 public:
  Argv(std::vector<std::string> items) : items_(std::move(items)) {
    for (std::string& s : items_) ptrs_.push_back(s.data());
    ptrs_.push_back(nullptr);
  }
  char* const* get() const { return ptrs_.data(); }

 private:
  std::vector<std::string> items_;
  std::vector<char*> ptrs_;
};

}  // namespace jitgate::sudo::testonly

#endif  // JITGATE_SUDO_SUDO_TESTONLY_H_
