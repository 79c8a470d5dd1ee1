// Cleanup: a scope guard that runs a callback when it goes out of scope,
// unless cancelled (after absl::Cleanup).
//
//   Cleanup remove_tmp = [&] { env->RemoveFile(tmp).IgnoreError(); };
//   RETURN_IF_ERROR(file->Sync());
//   std::move(remove_tmp).Cancel();  // success: keep the file
//
// The callback runs at most once and must not throw. Cleanup is move-only;
// a moved-from Cleanup does nothing. Not thread-safe (an ordinary local).
#ifndef JITGATE_CORE_BASE_CLEANUP_H_
#define JITGATE_CORE_BASE_CLEANUP_H_

#include <optional>
#include <type_traits>
#include <utility>

namespace jitgate {

template <typename Callback>
class [[nodiscard]] Cleanup {
 public:
  static_assert(std::is_invocable_r_v<void, Callback>,
                "Cleanup needs a void() callable");

  Cleanup(Callback callback)
      : callback_(std::move(callback)) {}  // NOLINT: CTAD use
  Cleanup(Cleanup&& other) noexcept : callback_(std::move(other.callback_)) {
    other.callback_.reset();
  }
  Cleanup(const Cleanup&) = delete;
  Cleanup& operator=(const Cleanup&) = delete;
  Cleanup& operator=(Cleanup&&) = delete;

  ~Cleanup() { Invoke(); }

  // Disarms the guard: the callback will never run. Callable as
  // guard.Cancel() or std::move(guard).Cancel() (Abseil's spelling).
  void Cancel() { callback_.reset(); }

  // Runs the callback now, if still armed, and disarms the guard.
  void Invoke() {
    if (callback_.has_value()) {
      // Reset before calling so that the callback runs at most once even if
      // it re-enters through the guard.
      Callback cb = std::move(*callback_);
      callback_.reset();
      std::move(cb)();
    }
  }

 private:
  std::optional<Callback> callback_;
};

template <typename Callback>
Cleanup(Callback) -> Cleanup<Callback>;

}  // namespace jitgate

#endif  // JITGATE_CORE_BASE_CLEANUP_H_
