// errno <-> Status mapping.
#include "common/status_errno.h"

#include <cerrno>
#include <cstring>

namespace cairn {

StatusCode CodeFromErrno(int err) {
  switch (err) {
    case 0:
      return StatusCode::kOk;
    case ENOENT:
    case ENODATA:
    case ESTALE:
    case ENXIO:
      return StatusCode::kNotFound;
    case EEXIST:
      return StatusCode::kAlreadyExists;
    case EACCES:
    case EPERM:
      return StatusCode::kPermissionDenied;
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case EFBIG:
    case EMLINK:
      return StatusCode::kResourceExhausted;
    case ENOTEMPTY:
    case ENOTDIR:
    case EISDIR:
    case EXDEV:
    case ELOOP:
    case EBUSY:
    case EROFS:
    case ETXTBSY:
      return StatusCode::kFailedPrecondition;
    case EINVAL:
    case ENAMETOOLONG:
    case EBADF:
      return StatusCode::kInvalidArgument;
    case ERANGE:
    case E2BIG:
    case EOVERFLOW:
      return StatusCode::kOutOfRange;
    case EOPNOTSUPP:
    case ENOSYS:
    case ENOTTY:
      return StatusCode::kUnimplemented;
    case ETIMEDOUT:
      return StatusCode::kDeadlineExceeded;
    case ECONNREFUSED:
    case ECONNRESET:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENOTCONN:
    case EAGAIN:
      return StatusCode::kUnavailable;
    case ECANCELED:
    case EINTR:
      return StatusCode::kCancelled;
    case EDEADLK:
      return StatusCode::kAborted;
    default:
      return StatusCode::kInternal;  // EIO and the rest
  }
}

Status StatusFromErrno(int err, std::string_view context) {
  if (err == 0) return Status::Ok();
  std::string m(context);
  m += ": ";
  m += std::strerror(err);
  return Status(CodeFromErrno(err), std::move(m), err);
}

int ErrnoFromStatus(const Status& status) {
  if (status.ok()) return 0;
  if (status.posix_errno() != 0) return status.posix_errno();
  switch (status.code()) {
    case StatusCode::kOk:
      return 0;
    case StatusCode::kCancelled:
      return ECANCELED;
    case StatusCode::kInvalidArgument:
      return EINVAL;
    case StatusCode::kDeadlineExceeded:
      return ETIMEDOUT;
    case StatusCode::kNotFound:
      return ENOENT;
    case StatusCode::kAlreadyExists:
      return EEXIST;
    case StatusCode::kPermissionDenied:
      return EACCES;
    case StatusCode::kResourceExhausted:
      return ENOSPC;
    case StatusCode::kFailedPrecondition:
      return EPERM;
    case StatusCode::kOutOfRange:
      return ERANGE;
    case StatusCode::kUnimplemented:
      return EOPNOTSUPP;
    case StatusCode::kUnauthenticated:
      return EACCES;
    case StatusCode::kUnknown:
    case StatusCode::kAborted:
    case StatusCode::kInternal:
    case StatusCode::kUnavailable:
    case StatusCode::kDataLoss:
      return EIO;
  }
  return EIO;
}

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  return "E" + std::to_string(err);
}

}  // namespace cairn
