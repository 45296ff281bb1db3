// Logging: spdlog, human-readable or one JSON object per line.
//
//   InitLogging({.level = "info", .json = true, .name = "brickd"});
//   spdlog::info("attached brick={} path={}", id, path);
//
// Messages are written as "event key=value ..."; in JSON mode the whole
// message is escaped into the "msg" field. Secrets are never passed to a log call.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

#include "common/status.h"

namespace cairn {

struct LogOptions {
  std::string level = "info";  // trace, debug, info, warn, error, critical, off
  bool json = false;
  std::string name = "cairn";
};

// Installs the default logger (stderr). Returns InvalidArgument for an unknown level.
Status InitLogging(const LogOptions& options);

// Escapes `s` for inclusion inside a JSON string literal.
std::string JsonEscape(std::string_view s);

}  // namespace cairn
