#include "sudo/session_link.h"

#include <cstring>

#include "core/wire/messages.h"
#include "core/wire/wire_format.h"

namespace jitgate::sudo {
namespace {

char g_id[wire::kMaxRequestIdLength + 1] = {};

}  // namespace

void NoteApprovedRequest(std::string_view id) noexcept {
  g_id[0] = '\0';
  if (!wire::IsValidRequestId(id)) return;  // also bounds id.size()
  std::memcpy(g_id, id.data(), id.size());
  g_id[id.size()] = '\0';
}

void ForgetApprovedRequest() noexcept { g_id[0] = '\0'; }

std::string_view ApprovedRequest() noexcept { return std::string_view(g_id); }

}  // namespace jitgate::sudo
