// Status <-> HTTP.
#include "common/status_http.h"

namespace cairn {

int HttpStatusFromStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kFailedPrecondition:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kAborted:
      return 409;
    case StatusCode::kResourceExhausted:
      return 507;  // Insufficient Storage: the provisioner cannot place a volume
    case StatusCode::kCancelled:
      return 499;
    case StatusCode::kUnimplemented:
      return 501;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    case StatusCode::kUnknown:
    case StatusCode::kInternal:
    case StatusCode::kDataLoss:
      return 500;
  }
  return 500;
}

Status StatusFromHttp(int http_status, std::string body) {
  if (http_status >= 200 && http_status < 400) return Status::Ok();
  StatusCode code;
  switch (http_status) {
    case 400:
    case 422:
      code = StatusCode::kInvalidArgument;
      break;
    case 401:
      code = StatusCode::kUnauthenticated;
      break;
    case 403:
      code = StatusCode::kPermissionDenied;
      break;
    case 404:
      code = StatusCode::kNotFound;
      break;
    case 409:
      code = StatusCode::kAlreadyExists;
      break;
    case 429:
    case 507:
      code = StatusCode::kResourceExhausted;
      break;
    case 499:
      code = StatusCode::kCancelled;
      break;
    case 501:
      code = StatusCode::kUnimplemented;
      break;
    case 502:
    case 503:
      code = StatusCode::kUnavailable;
      break;
    case 504:
      code = StatusCode::kDeadlineExceeded;
      break;
    default:
      code = http_status < 500 ? StatusCode::kFailedPrecondition : StatusCode::kInternal;
  }
  if (body.empty()) body = "HTTP " + std::to_string(http_status);
  return Status(code, std::move(body));
}

}  // namespace cairn
