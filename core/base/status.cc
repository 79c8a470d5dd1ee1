#include "core/base/status.h"

#include <cerrno>
#include <cstring>

namespace jitgate {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kCancelled: return "CANCELLED";
    case StatusCode::kUnknown: return "UNKNOWN";
    case StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case StatusCode::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
    case StatusCode::kNotFound: return "NOT_FOUND";
    case StatusCode::kAlreadyExists: return "ALREADY_EXISTS";
    case StatusCode::kPermissionDenied: return "PERMISSION_DENIED";
    case StatusCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case StatusCode::kFailedPrecondition: return "FAILED_PRECONDITION";
    case StatusCode::kAborted: return "ABORTED";
    case StatusCode::kOutOfRange: return "OUT_OF_RANGE";
    case StatusCode::kUnimplemented: return "UNIMPLEMENTED";
    case StatusCode::kInternal: return "INTERNAL";
    case StatusCode::kUnavailable: return "UNAVAILABLE";
    case StatusCode::kDataLoss: return "DATA_LOSS";
    case StatusCode::kUnauthenticated: return "UNAUTHENTICATED";
  }
  return "UNKNOWN_CODE";
}

Status::Status(StatusCode code, std::string message)
    : code_(code), message_(code == StatusCode::kOk ? std::string() : std::move(message)) {}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(StatusCodeName(code_));
  out += ": ";
  out += message_;
  return out;
}

Status Status::WithContext(std::string_view prefix) const {
  if (ok()) return *this;
  std::string msg(prefix);
  msg += ": ";
  msg += message_;
  return Status(code_, std::move(msg));
}

#define JITGATE_DEFINE_ERROR_(Name, Code) \
  Status Name(std::string message) { return Status(StatusCode::Code, std::move(message)); }
JITGATE_DEFINE_ERROR_(CancelledError, kCancelled)
JITGATE_DEFINE_ERROR_(UnknownError, kUnknown)
JITGATE_DEFINE_ERROR_(InvalidArgumentError, kInvalidArgument)
JITGATE_DEFINE_ERROR_(DeadlineExceededError, kDeadlineExceeded)
JITGATE_DEFINE_ERROR_(NotFoundError, kNotFound)
JITGATE_DEFINE_ERROR_(AlreadyExistsError, kAlreadyExists)
JITGATE_DEFINE_ERROR_(PermissionDeniedError, kPermissionDenied)
JITGATE_DEFINE_ERROR_(ResourceExhaustedError, kResourceExhausted)
JITGATE_DEFINE_ERROR_(FailedPreconditionError, kFailedPrecondition)
JITGATE_DEFINE_ERROR_(AbortedError, kAborted)
JITGATE_DEFINE_ERROR_(OutOfRangeError, kOutOfRange)
JITGATE_DEFINE_ERROR_(UnimplementedError, kUnimplemented)
JITGATE_DEFINE_ERROR_(InternalError, kInternal)
JITGATE_DEFINE_ERROR_(UnavailableError, kUnavailable)
JITGATE_DEFINE_ERROR_(DataLossError, kDataLoss)
JITGATE_DEFINE_ERROR_(UnauthenticatedError, kUnauthenticated)
#undef JITGATE_DEFINE_ERROR_

Status ErrnoToStatus(int err, std::string_view context) {
  StatusCode code;
  switch (err) {
    case 0: code = StatusCode::kUnknown; break;
    case ENOENT: case ENOTDIR: code = StatusCode::kNotFound; break;
    case EEXIST: code = StatusCode::kAlreadyExists; break;
    case EACCES: case EPERM: case EROFS: code = StatusCode::kPermissionDenied; break;
    case ENOSPC: case EDQUOT: case ENOMEM: case EMFILE: case ENFILE: case EFBIG:
      code = StatusCode::kResourceExhausted; break;
    case EINVAL: case ENAMETOOLONG: case E2BIG: code = StatusCode::kInvalidArgument; break;
    case EAGAIN: case EBUSY: case ECONNREFUSED: case ECONNRESET: case EPIPE: case EINTR:
      code = StatusCode::kUnavailable; break;
    case ETIMEDOUT: code = StatusCode::kDeadlineExceeded; break;
    case EIO: code = StatusCode::kDataLoss; break;
    case ENOSYS: case EOPNOTSUPP: code = StatusCode::kUnimplemented; break;
    default: code = StatusCode::kUnknown; break;
  }
  std::string msg(context);
  msg += ": ";
  msg += std::strerror(err);
  return Status(code, std::move(msg));
}

}  // namespace jitgate
