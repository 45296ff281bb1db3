#include "common/jwt.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstddef>
#include <optional>
#include <utility>

namespace cairn {
namespace {

constexpr char kBase64UrlAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// The value of one base64url character, or -1.
int Base64UrlValue(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

using Sha256Digest = std::array<unsigned char, 32>;

// HMAC-SHA256 of `data` under `key`. False only if OpenSSL fails.
bool HmacSha256(std::string_view key, std::string_view data, Sha256Digest& out) {
  unsigned int len = 0;
  // An empty key is legal for HMAC; OpenSSL wants a non-null pointer for it.
  const void* key_ptr = key.empty() ? static_cast<const void*>("") : key.data();
  const auto* data_ptr = reinterpret_cast<const unsigned char*>(data.data());
  if (HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()), data_ptr, data.size(), out.data(),
           &len) == nullptr) {
    return false;
  }
  return len == out.size();
}

std::string HexLower(const unsigned char* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    s.push_back(kHex[p[i] >> 4]);
    s.push_back(kHex[p[i] & 0xf]);
  }
  return s;
}

// Dumps JSON without throwing on strings that are not valid UTF-8.
std::string DumpCompact(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Parses JSON without exceptions; nullopt on malformed input.
std::optional<nlohmann::json> ParseJson(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

// An attacker-controlled value made safe to put in a message: short, and only
// characters that cannot forge log lines.
std::string ForMessage(std::string_view s) {
  constexpr size_t kMax = 32;
  std::string out;
  for (char c : s.substr(0, kMax)) {
    const bool plain = Base64UrlValue(c) >= 0 || c == '.';
    out.push_back(plain ? c : '?');
  }
  if (s.size() > kMax) out += "...";
  return out;
}

// A token split at its dots, each part base64url-decoded.
struct DecodedJwt {
  std::string_view signing_input;  // "header.claims", as received
  std::string header;
  std::string claims;
  std::string signature;
};

StatusOr<DecodedJwt> DecodeJwt(std::string_view token) {
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Status::Unauthenticated("token is not a JWT");
  }
  StatusOr<std::string> header = Base64UrlDecode(token.substr(0, dot1));
  StatusOr<std::string> claims = Base64UrlDecode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  StatusOr<std::string> signature = Base64UrlDecode(token.substr(dot2 + 1));
  if (!header.ok() || !claims.ok() || !signature.ok()) {
    return Status::Unauthenticated("token is not a JWT");
  }
  return DecodedJwt{token.substr(0, dot2), std::move(header).value(), std::move(claims).value(),
                    std::move(signature).value()};
}

// A NumericDate claim as a number that holds every int64 and uint64 exactly.
std::optional<long double> NumericClaim(const nlohmann::json& claims, const char* name) {
  const auto it = claims.find(name);
  if (it == claims.end() || !it->is_number()) return std::nullopt;
  if (it->is_number_unsigned()) return static_cast<long double>(it->get<uint64_t>());
  if (it->is_number_integer()) return static_cast<long double>(it->get<int64_t>());
  return static_cast<long double>(it->get<double>());
}

}  // namespace

std::string JwtQsh(std::string_view method, std::string_view path) {
  std::string input;
  input.reserve(method.size() + 1 + path.size());
  input.append(method).append("&").append(path);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(input.data(), input.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    // Cannot happen with a working libcrypto; an empty qsh matches no request.
    return std::string();
  }
  return HexLower(md, len);
}

nlohmann::json MakeRequestClaims(std::string_view issuer, std::string_view method,
                                 std::string_view path, int64_t now_unix,
                                 std::chrono::seconds ttl) {
  return nlohmann::json{
      {"iss", std::string(issuer)},
      {"iat", now_unix},
      {"exp", now_unix + static_cast<int64_t>(ttl.count())},
      {"qsh", JwtQsh(method, path)},
  };
}

std::string SignJwt(std::string_view key, const nlohmann::json& claims) {
  static const std::string kHeader = Base64UrlEncode(R"({"alg":"HS256","typ":"JWT"})");
  std::string token = kHeader + "." + Base64UrlEncode(DumpCompact(claims));
  Sha256Digest mac{};
  // On an OpenSSL failure the signature is left empty: the token then fails
  // verification everywhere instead of carrying a wrong MAC.
  const bool signed_ok = HmacSha256(key, token, mac);
  token += ".";
  if (signed_ok) {
    token +=
        Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
  }
  return token;
}

StatusOr<nlohmann::json> VerifyJwt(std::string_view token, std::string_view key,
                                   const JwtCheck& check) {
  CAIRN_ASSIGN_OR_RETURN(DecodedJwt jwt, DecodeJwt(token));

  const std::optional<nlohmann::json> header = ParseJson(jwt.header);
  if (!header || !header->is_object()) {
    return Status::Unauthenticated("token header is not a JSON object");
  }
  const auto alg = header->find("alg");
  if (alg == header->end()) return Status::Unauthenticated("token header has no alg");
  if (!alg->is_string()) return Status::Unauthenticated("unsupported alg (not a string)");
  // Only HS256: never "none", never an algorithm the caller did not choose.
  if (alg->get_ref<const std::string&>() != "HS256") {
    return Status::Unauthenticated("unsupported alg " +
                                   ForMessage(alg->get_ref<const std::string&>()));
  }

  Sha256Digest expected{};
  if (!HmacSha256(key, jwt.signing_input, expected)) {
    return Status::Unauthenticated("bad signature (cannot compute HMAC)");
  }
  if (jwt.signature.size() != expected.size() ||
      CRYPTO_memcmp(jwt.signature.data(), expected.data(), expected.size()) != 0) {
    return Status::Unauthenticated("bad signature");
  }

  std::optional<nlohmann::json> claims = ParseJson(jwt.claims);
  if (!claims || !claims->is_object()) {
    return Status::Unauthenticated("token claims are not a JSON object");
  }

  const long double now = static_cast<long double>(check.now);
  const long double leeway = static_cast<long double>(check.leeway_s < 0 ? 0 : check.leeway_s);
  if (!claims->contains("exp")) return Status::Unauthenticated("token has no exp");
  const std::optional<long double> exp = NumericClaim(*claims, "exp");
  if (!exp) return Status::Unauthenticated("token exp is not a number");
  if (now > *exp + leeway) return Status::Unauthenticated("token expired");

  if (claims->contains("iat")) {
    const std::optional<long double> iat = NumericClaim(*claims, "iat");
    if (!iat) return Status::Unauthenticated("token iat is not a number");
    if (*iat > now + leeway) return Status::Unauthenticated("token issued in the future");
  }

  const auto qsh = claims->find("qsh");
  if (qsh == claims->end()) return Status::Unauthenticated("token has no qsh");
  if (!qsh->is_string() || qsh->get_ref<const std::string&>() != JwtQsh(check.method, check.path)) {
    return Status::Unauthenticated("qsh does not match " + check.method + "&" + check.path);
  }
  return std::move(*claims);
}

StatusOr<std::string> PeekJwtIssuer(std::string_view token) {
  CAIRN_ASSIGN_OR_RETURN(DecodedJwt jwt, DecodeJwt(token));
  const std::optional<nlohmann::json> claims = ParseJson(jwt.claims);
  if (!claims || !claims->is_object()) {
    return Status::Unauthenticated("token claims are not a JSON object");
  }
  const auto iss = claims->find("iss");
  if (iss == claims->end() || !iss->is_string()) {
    return Status::Unauthenticated("token has no iss");
  }
  return iss->get<std::string>();
}

std::string Base64UrlEncode(std::string_view data) {
  std::string out;
  out.reserve((data.size() * 4 + 2) / 3);
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out.push_back(kBase64UrlAlphabet[(v >> 18) & 63]);
    out.push_back(kBase64UrlAlphabet[(v >> 12) & 63]);
    out.push_back(kBase64UrlAlphabet[(v >> 6) & 63]);
    out.push_back(kBase64UrlAlphabet[v & 63]);
  }
  const size_t rest = data.size() - i;
  if (rest == 1) {
    const uint32_t v = uint32_t{p[i]} << 16;
    out.push_back(kBase64UrlAlphabet[(v >> 18) & 63]);
    out.push_back(kBase64UrlAlphabet[(v >> 12) & 63]);
  } else if (rest == 2) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    out.push_back(kBase64UrlAlphabet[(v >> 18) & 63]);
    out.push_back(kBase64UrlAlphabet[(v >> 12) & 63]);
    out.push_back(kBase64UrlAlphabet[(v >> 6) & 63]);
  }
  return out;
}

// Strict: padding ('='), the standard alphabet's '+' and '/', whitespace, a
// length of 4n+1 and non-zero unused bits in the last character are all
// rejected, so every byte string has exactly one accepted encoding (a token's
// signature cannot be altered without invalidating it).
StatusOr<std::string> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) {
    return Status::InvalidArgument("base64url text has an impossible length " +
                                   std::to_string(text.size()));
  }
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const int v = Base64UrlValue(text[i]);
    if (v < 0) {
      return Status::InvalidArgument("base64url text has an invalid character at offset " +
                                     std::to_string(i));
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
      acc &= (1u << bits) - 1;
    }
  }
  if (acc != 0) return Status::InvalidArgument("base64url text has non-zero trailing bits");
  return out;
}

}  // namespace cairn
