// The HTTP edge: Status <-> HTTP status codes, for the provisioner's REST API
// and its clients (cairnctl, the CSI driver).
//
//   res.status = HttpStatusFromStatus(s);   // 404 for kNotFound
#pragma once

#include <string>

#include "common/status.h"

namespace cairn {

// Returns the HTTP status code for `status` (200 for ok).
int HttpStatusFromStatus(const Status& status);

// Returns the Status a client reports for an HTTP reply with code `http_status`
// and error text `body` (ok for 2xx and 3xx).
Status StatusFromHttp(int http_status, std::string body);

}  // namespace cairn
