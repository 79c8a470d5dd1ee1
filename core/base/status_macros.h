// RETURN_IF_ERROR and ASSIGN_OR_RETURN, for functions returning Status or
// StatusOr<T>.
#ifndef JITGATE_CORE_BASE_STATUS_MACROS_H_
#define JITGATE_CORE_BASE_STATUS_MACROS_H_

#include "core/base/status.h"

#define JITGATE_CONCAT_INNER_(a, b) a##b
#define JITGATE_CONCAT_(a, b) JITGATE_CONCAT_INNER_(a, b)

// Evaluates expr (a Status); returns it from the enclosing function if not OK.
#define RETURN_IF_ERROR(expr)                                  \
  do {                                                         \
    ::jitgate::Status jitgate_status_ = (expr);                \
    if (!jitgate_status_.ok()) return jitgate_status_;         \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): evaluates expr (a StatusOr<T>); on error
// returns its Status, else moves the value into lhs (which may declare a
// variable, e.g. `auto x`).
#define ASSIGN_OR_RETURN(lhs, expr) \
  JITGATE_ASSIGN_OR_RETURN_IMPL_(JITGATE_CONCAT_(jitgate_statusor_, __LINE__), lhs, expr)
#define JITGATE_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return std::move(tmp).status();       \
  lhs = std::move(tmp).value()

#endif  // JITGATE_CORE_BASE_STATUS_MACROS_H_
