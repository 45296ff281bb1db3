// JSON Web Tokens, HS256 only, as Heketi uses them on its REST API.
//
// A token carries `iss` (who: "admin", "user", or "node" for a storaged
// registering itself), `iat` (issued at, seconds), `exp` (expiry, seconds,
// required) and `qsh`: the hex SHA-256 of "METHOD&PATH" (the request's method
// and path without the query string), so a token is good for one request
// shape only.
//
//   std::string t = SignJwt(key, MakeRequestClaims("admin", "GET", "/volumes", now));
//   auto claims = VerifyJwt(t, key, {.method = "GET", .path = "/volumes", .now = now});
//
// Keys are secrets: no function here logs them or puts them in a Status.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cairn {

// Hex SHA-256 of "METHOD&PATH" (Heketi's query string hash).
std::string JwtQsh(std::string_view method, std::string_view path);

// Claims for one request: iss, iat = now, exp = now + ttl, qsh.
nlohmann::json MakeRequestClaims(std::string_view issuer, std::string_view method,
                                 std::string_view path, int64_t now_unix,
                                 std::chrono::seconds ttl = std::chrono::seconds(300));

// header {"alg":"HS256","typ":"JWT"} . claims . HMAC-SHA256(key), base64url
// without padding.
std::string SignJwt(std::string_view key, const nlohmann::json& claims);

struct JwtCheck {
  std::string method;  // e.g. "POST"
  std::string path;    // e.g. "/volumes" (no query string)
  int64_t now = 0;     // unix seconds
  int64_t leeway_s = 120;
};

// Verifies a token and returns its claims. Every failure is Unauthenticated
// with the reason ("token is not a JWT", "unsupported alg none", "bad
// signature", "token expired", "token has no exp", "token issued in the
// future", "qsh does not match GET&/volumes", ...). Checks, in order: three
// base64url parts; header alg == HS256; signature (constant-time compare);
// claims is an object; `exp` present, a number, and now <= exp + leeway;
// `iat` when present: iat <= now + leeway; `qsh` present and equal to
// JwtQsh(method, path). Does not check `iss` (the caller maps it to a role
// and a key first: see PeekJwtIssuer).
StatusOr<nlohmann::json> VerifyJwt(std::string_view token, std::string_view key,
                                   const JwtCheck& check);

// The `iss` claim of a token, without verifying it (to pick the key to verify
// with). Unauthenticated if the token cannot be decoded or has no string iss.
StatusOr<std::string> PeekJwtIssuer(std::string_view token);

// Base64url (RFC 4648 §5) without padding, and back (InvalidArgument on bad
// input). Exposed for tests.
std::string Base64UrlEncode(std::string_view data);
StatusOr<std::string> Base64UrlDecode(std::string_view text);

}  // namespace cairn
