// Tests for common/jwt.h.
#include "common/jwt.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <limits>
#include <string>
#include <vector>

namespace cairn {
namespace {

constexpr int64_t kNow = 1700000000;
constexpr char kKey[] = "My Secret";

// Expected values computed independently at authoring time with Python:
//   hashlib.sha256(b"GET&/volumes").hexdigest()
//   base64.urlsafe_b64encode(...).rstrip(b"="), hmac.new(key, input, hashlib.sha256)
constexpr char kQshGetVolumes[] =
    "c162acc9024272120bacfff7709c932cc252337d0a30fa15b025010066662bea";
constexpr char kQshPostVolumes[] =
    "3a9831a9908924e3f78fe948585f41849e92724522f5153cb91aff7f8ea48eac";

// HS256 of header {"alg":"HS256","typ":"JWT"} and claims
// {"exp":1700000300,"iat":1700000000,"iss":"admin","qsh":<kQshGetVolumes>}
// (compact, sorted keys) under "My Secret".
constexpr char kKatToken[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJleHAiOjE3MDAwMDAzMDAsImlhdCI6MTcwMDAwMDAwMCwiaXNzIjoiYWRtaW4iLCJxc2giOiJjMTYyYWNjOTAyNDI3Mj"
    "EyMGJhY2ZmZjc3MDljOTMyY2MyNTIzMzdkMGEzMGZhMTViMDI1MDEwMDY2NjYyYmVhIn0."
    "uMwsZWJLMpqzPE0Ua8tszdZ61WQqO7JbXQqbbalyXMo";

// The same claims signed with an empty key.
constexpr char kKatTokenEmptyKey[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJleHAiOjE3MDAwMDAzMDAsImlhdCI6MTcwMDAwMDAwMCwiaXNzIjoiYWRtaW4iLCJxc2giOiJjMTYyYWNjOTAyNDI3Mj"
    "EyMGJhY2ZmZjc3MDljOTMyY2MyNTIzMzdkMGEzMGZhMTViMDI1MDEwMDY2NjYyYmVhIn0."
    "wpEqfX0eAhoRUj_5ixTVBR9WFsE6Jz5VY3DSj0oOevE";

// A token made by another implementation: header {"typ": "JWT", "alg": "HS256"}
// and claims with spaces and unsorted keys (iss "node", qsh of POST&/volumes,
// iat 1700000000, exp 1700000060) under "node-key".
constexpr char kForeignToken[] =
    "eyJ0eXAiOiAiSldUIiwgImFsZyI6ICJIUzI1NiJ9."
    "eyJpc3MiOiAibm9kZSIsICJxc2giOiAiM2E5ODMxYTk5MDg5MjRlM2Y3OGZlOTQ4NTg1ZjQxODQ5ZTkyNzI0NTIyZjUxNT"
    "NjYjkxYWZmN2Y4ZWE0OGVhYyIsICJpYXQiOiAxNzAwMDAwMDAwLCAiZXhwIjogMTcwMDAwMDA2MH0."
    "A2rAiIVvqIRabE40k1H1X0xJBY8Ls3OPn5b-ucjaPgU";

JwtCheck GetVolumes(int64_t now = kNow) {
  return {.method = "GET", .path = "/volumes", .now = now};
}

// A correctly signed token over arbitrary header and claims text, to reach the
// checks that come after the signature.
std::string SignRaw(std::string_view key, std::string_view header, std::string_view claims) {
  std::string input = Base64UrlEncode(header) + "." + Base64UrlEncode(claims);
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + Base64UrlEncode(std::string_view(reinterpret_cast<char*>(mac), len));
}

std::string SignClaimsText(std::string_view claims) {
  return SignRaw(kKey, R"({"alg":"HS256","typ":"JWT"})", claims);
}

// Asserts `r` failed as Unauthenticated with `message`, and leaked no key.
template <typename T>
void ExpectUnauthenticated(const StatusOr<T>& r, std::string_view message) {
  ASSERT_FALSE(r.ok()) << "expected failure: " << message;
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated) << r.status().ToString();
  EXPECT_EQ(r.status().message(), message);
  EXPECT_EQ(r.status().message().find(kKey), std::string::npos);
}

std::vector<std::string> SplitDots(const std::string& token) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot; (dot = token.find('.', start)) != std::string::npos; start = dot + 1) {
    parts.push_back(token.substr(start, dot - start));
  }
  parts.push_back(token.substr(start));
  return parts;
}

// ---------------------------------------------------------------------------
// Qsh and claims

TEST(JwtQsh, IsLowercaseHexSha256OfMethodAmpersandPath) {
  EXPECT_EQ(JwtQsh("GET", "/volumes"), kQshGetVolumes);
  EXPECT_EQ(JwtQsh("POST", "/volumes"), kQshPostVolumes);
  EXPECT_EQ(JwtQsh("", ""), "951dcee3a7a4f3aac67ec76a2ce4469cc76df650f134bf2572bf60a65c982338");
}

TEST(JwtClaims, MakeRequestClaimsSetsIssIatExpQsh) {
  nlohmann::json c = MakeRequestClaims("admin", "GET", "/volumes", kNow, std::chrono::seconds(60));
  EXPECT_EQ(c["iss"], "admin");
  EXPECT_EQ(c["iat"], kNow);
  EXPECT_EQ(c["exp"], kNow + 60);
  EXPECT_EQ(c["qsh"], kQshGetVolumes);
  EXPECT_EQ(MakeRequestClaims("user", "GET", "/x", kNow)["exp"], kNow + 300);
}

// ---------------------------------------------------------------------------
// Signing and verifying

TEST(JwtSign, MatchesIndependentlyComputedToken) {
  EXPECT_EQ(SignJwt(kKey, MakeRequestClaims("admin", "GET", "/volumes", kNow)), kKatToken);
  EXPECT_EQ(SignJwt("", MakeRequestClaims("admin", "GET", "/volumes", kNow)), kKatTokenEmptyKey);
}

TEST(JwtVerify, AcceptsKnownAnswerToken) {
  StatusOr<nlohmann::json> claims = VerifyJwt(kKatToken, kKey, GetVolumes());
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ((*claims)["iss"], "admin");
  EXPECT_EQ((*claims)["exp"], kNow + 300);
}

TEST(JwtVerify, AcceptsTokenFromAnotherImplementation) {
  StatusOr<nlohmann::json> claims =
      VerifyJwt(kForeignToken, "node-key", {.method = "POST", .path = "/volumes", .now = kNow});
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ((*claims)["iss"], "node");
}

TEST(JwtVerify, RoundTripReturnsTheClaims) {
  nlohmann::json in = MakeRequestClaims("user", "DELETE", "/volumes/abc", kNow);
  in["extra"] = {{"nested", true}};
  StatusOr<nlohmann::json> out = VerifyJwt(
      SignJwt("k", in), "k", {.method = "DELETE", .path = "/volumes/abc", .now = kNow + 10});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, in);
}

TEST(JwtVerify, EmptyKeyRoundTrips) {
  EXPECT_TRUE(VerifyJwt(kKatTokenEmptyKey, "", GetVolumes()).ok());
  ExpectUnauthenticated(VerifyJwt(kKatTokenEmptyKey, kKey, GetVolumes()), "bad signature");
}

TEST(JwtVerify, RejectsTamperedClaims) {
  std::vector<std::string> parts = SplitDots(kKatToken);
  nlohmann::json claims = MakeRequestClaims("admin", "GET", "/volumes", kNow);
  claims["exp"] = kNow + 999999;
  const std::string forged = parts[0] + "." + Base64UrlEncode(claims.dump()) + "." + parts[2];
  ExpectUnauthenticated(VerifyJwt(forged, kKey, GetVolumes()), "bad signature");

  // A single flipped character of the payload.
  std::string flipped = kKatToken;
  flipped[parts[0].size() + 5] ^= 1;
  ExpectUnauthenticated(VerifyJwt(flipped, kKey, GetVolumes()), "bad signature");
}

TEST(JwtVerify, RejectsTamperedSignature) {
  std::string token = kKatToken;
  const size_t sig = token.rfind('.') + 1;
  for (size_t i = sig; i < token.size(); ++i) {
    std::string t = token;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    StatusOr<nlohmann::json> r = VerifyJwt(t, kKey, GetVolumes());
    ASSERT_FALSE(r.ok()) << "accepted with signature char " << (i - sig) << " changed";
    EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  }
  // Truncated, extended, and empty signatures.
  EXPECT_EQ(VerifyJwt(token.substr(0, token.size() - 4), kKey, GetVolumes()).status().code(),
            StatusCode::kUnauthenticated);
  ExpectUnauthenticated(VerifyJwt(token + "AAAA", kKey, GetVolumes()), "bad signature");
  ExpectUnauthenticated(VerifyJwt(token.substr(0, sig), kKey, GetVolumes()), "bad signature");
}

TEST(JwtVerify, RejectsSignatureWithNonCanonicalLastCharacter) {
  // 32 bytes encode to 43 characters; the last one carries 2 unused bits.
  // "uMwsZ...yXMo" with 'o' (40) -> 'p' (41) decodes to the same bytes in a
  // lax decoder; ours refuses it.
  std::string token = kKatToken;
  ASSERT_EQ(token.back(), 'o');
  token.back() = 'p';
  ExpectUnauthenticated(VerifyJwt(token, kKey, GetVolumes()), "token is not a JWT");
}

TEST(JwtVerify, RejectsWrongKey) {
  ExpectUnauthenticated(VerifyJwt(kKatToken, "My Secret ", GetVolumes()), "bad signature");
  ExpectUnauthenticated(VerifyJwt(kKatToken, "", GetVolumes()), "bad signature");
}

TEST(JwtVerify, RefusesAlgNoneAndOtherAlgorithms) {
  const std::string claims = MakeRequestClaims("admin", "GET", "/volumes", kNow).dump();
  // alg none with an empty signature, the classic downgrade.
  const std::string none =
      Base64UrlEncode(R"({"alg":"none","typ":"JWT"})") + "." + Base64UrlEncode(claims) + ".";
  ExpectUnauthenticated(VerifyJwt(none, kKey, GetVolumes()), "unsupported alg none");
  // Even when the "signature" is a valid HS256 MAC, the header decides nothing.
  ExpectUnauthenticated(VerifyJwt(SignRaw(kKey, R"({"alg":"none"})", claims), kKey, GetVolumes()),
                        "unsupported alg none");
  ExpectUnauthenticated(
      VerifyJwt(SignRaw(kKey, R"({"alg":"HS512","typ":"JWT"})", claims), kKey, GetVolumes()),
      "unsupported alg HS512");
  ExpectUnauthenticated(VerifyJwt(SignRaw(kKey, R"({"alg":"hs256"})", claims), kKey, GetVolumes()),
                        "unsupported alg hs256");
  ExpectUnauthenticated(VerifyJwt(SignRaw(kKey, R"({"typ":"JWT"})", claims), kKey, GetVolumes()),
                        "token header has no alg");
  ExpectUnauthenticated(VerifyJwt(SignRaw(kKey, R"({"alg":256})", claims), kKey, GetVolumes()),
                        "unsupported alg (not a string)");
  // A hostile alg is shortened and stripped of control characters.
  StatusOr<nlohmann::json> r = VerifyJwt(
      SignRaw(kKey, R"({"alg":"x\ny\u001b[31mzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"})",
              claims),
      kKey, GetVolumes());
  ExpectUnauthenticated(r, "unsupported alg x?y??31m" + std::string(24, 'z') + "...");
}

TEST(JwtVerify, ChecksAlgBeforeSignature) {
  // A forged HS512 token with a garbage signature reports the alg, which is
  // checked first.
  const std::string t =
      Base64UrlEncode(R"({"alg":"HS512"})") + "." + Base64UrlEncode("{}") + ".AAAA";
  ExpectUnauthenticated(VerifyJwt(t, kKey, GetVolumes()), "unsupported alg HS512");
}

TEST(JwtVerify, ChecksSignatureBeforeClaims) {
  const std::string t = Base64UrlEncode(R"({"alg":"HS256"})") + "." + Base64UrlEncode("[1]") + ".";
  ExpectUnauthenticated(VerifyJwt(t, kKey, GetVolumes()), "bad signature");
}

TEST(JwtVerify, RequiresExp) {
  nlohmann::json c = MakeRequestClaims("admin", "GET", "/volumes", kNow);
  c.erase("exp");
  ExpectUnauthenticated(VerifyJwt(SignJwt(kKey, c), kKey, GetVolumes()), "token has no exp");
  c["exp"] = "1700000300";
  ExpectUnauthenticated(VerifyJwt(SignJwt(kKey, c), kKey, GetVolumes()),
                        "token exp is not a number");
  c["exp"] = nullptr;
  ExpectUnauthenticated(VerifyJwt(SignJwt(kKey, c), kKey, GetVolumes()),
                        "token exp is not a number");
  c["exp"] = true;
  ExpectUnauthenticated(VerifyJwt(SignJwt(kKey, c), kKey, GetVolumes()),
                        "token exp is not a number");
}

TEST(JwtVerify, ExpiryHonoursLeeway) {
  const std::string t =
      SignJwt(kKey, MakeRequestClaims("admin", "GET", "/volumes", kNow, std::chrono::seconds(300)));
  const int64_t exp = kNow + 300;
  EXPECT_TRUE(VerifyJwt(t, kKey, GetVolumes(exp)).ok());
  EXPECT_TRUE(VerifyJwt(t, kKey, GetVolumes(exp + 1)).ok());    // within the 120 s leeway
  EXPECT_TRUE(VerifyJwt(t, kKey, GetVolumes(exp + 120)).ok());  // at its edge
  ExpectUnauthenticated(VerifyJwt(t, kKey, GetVolumes(exp + 121)), "token expired");
  ExpectUnauthenticated(VerifyJwt(t, kKey, GetVolumes(exp + 100000)), "token expired");

  JwtCheck strict = GetVolumes(exp + 1);
  strict.leeway_s = 0;
  ExpectUnauthenticated(VerifyJwt(t, kKey, strict), "token expired");
  strict.now = exp;
  EXPECT_TRUE(VerifyJwt(t, kKey, strict).ok());
}

TEST(JwtVerify, AcceptsFractionalAndExtremeNumericDates) {
  nlohmann::json c = MakeRequestClaims("admin", "GET", "/volumes", kNow);
  c["exp"] = kNow + 0.5;
  c["iat"] = kNow - 0.5;
  JwtCheck check = GetVolumes(kNow);
  check.leeway_s = 0;
  EXPECT_TRUE(VerifyJwt(SignJwt(kKey, c), kKey, check).ok());
  check.now = kNow + 1;
  ExpectUnauthenticated(VerifyJwt(SignJwt(kKey, c), kKey, check), "token expired");

  // No overflow at the ends of the ranges.
  c["exp"] = std::numeric_limits<uint64_t>::max();
  c["iat"] = std::numeric_limits<int64_t>::min();
  EXPECT_TRUE(
      VerifyJwt(SignJwt(kKey, c), kKey, GetVolumes(std::numeric_limits<int64_t>::max())).ok());
  c["exp"] = std::numeric_limits<int64_t>::min();
  ExpectUnauthenticated(VerifyJwt(SignJwt(kKey, c), kKey, GetVolumes(kNow)), "token expired");
}

TEST(JwtVerify, RejectsIatInTheFutureBeyondLeeway) {
  const std::string t = SignJwt(kKey, MakeRequestClaims("admin", "GET", "/volumes", kNow));
  EXPECT_TRUE(VerifyJwt(t, kKey, GetVolumes(kNow - 120)).ok());  // clock skew within leeway
  ExpectUnauthenticated(VerifyJwt(t, kKey, GetVolumes(kNow - 121)), "token issued in the future");

  nlohmann::json c = MakeRequestClaims("admin", "GET", "/volumes", kNow);
  c.erase("iat");  // optional
  EXPECT_TRUE(VerifyJwt(SignJwt(kKey, c), kKey, GetVolumes(kNow - 1000)).ok());
  c["iat"] = "now";
  ExpectUnauthenticated(VerifyJwt(SignJwt(kKey, c), kKey, GetVolumes()),
                        "token iat is not a number");
}

TEST(JwtVerify, RejectsQshMismatch) {
  const std::string t = SignJwt(kKey, MakeRequestClaims("admin", "GET", "/volumes", kNow));
  ExpectUnauthenticated(VerifyJwt(t, kKey, {.method = "POST", .path = "/volumes", .now = kNow}),
                        "qsh does not match POST&/volumes");
  ExpectUnauthenticated(VerifyJwt(t, kKey, {.method = "GET", .path = "/volumes/1", .now = kNow}),
                        "qsh does not match GET&/volumes/1");
  ExpectUnauthenticated(VerifyJwt(t, kKey, {.method = "get", .path = "/volumes", .now = kNow}),
                        "qsh does not match get&/volumes");

  nlohmann::json c = MakeRequestClaims("admin", "GET", "/volumes", kNow);
  c.erase("qsh");
  ExpectUnauthenticated(VerifyJwt(SignJwt(kKey, c), kKey, GetVolumes()), "token has no qsh");
  c["qsh"] = 42;
  ExpectUnauthenticated(VerifyJwt(SignJwt(kKey, c), kKey, GetVolumes()),
                        "qsh does not match GET&/volumes");
  c["qsh"] = std::string(kQshGetVolumes).substr(0, 63);
  ExpectUnauthenticated(VerifyJwt(SignJwt(kKey, c), kKey, GetVolumes()),
                        "qsh does not match GET&/volumes");
}

TEST(JwtVerify, DoesNotCheckIss) {
  nlohmann::json c = MakeRequestClaims("admin", "GET", "/volumes", kNow);
  c.erase("iss");
  EXPECT_TRUE(VerifyJwt(SignJwt(kKey, c), kKey, GetVolumes()).ok());
}

TEST(JwtVerify, RejectsClaimsThatAreNotAnObject) {
  for (const char* claims : {"[1,2,3]", "\"exp\"", "42", "null", "{", "", "{\"exp\":1}x"}) {
    ExpectUnauthenticated(VerifyJwt(SignClaimsText(claims), kKey, GetVolumes()),
                          "token claims are not a JSON object");
  }
}

TEST(JwtVerify, GarbageNeverCrashesAndIsUnauthenticated) {
  const std::string ok_claims = Base64UrlEncode("{}");
  const std::vector<std::string> garbage = {
      "",
      ".",
      "..",
      "...",
      "a",
      "a.b",
      "abc.def",
      "a.b.c.d",
      "!!!.###.$$$",
      "eyJhbGciOiJIUzI1NiJ9.eyJ9.sig=",
      "eyJhbGciOiJIUzI1NiJ9=.e30.AAAA",
      std::string("eyJhbGciOiJIUzI1NiJ9.e30\0.AAAA", 30),
      Base64UrlEncode("not json") + "." + ok_claims + ".AAAA",
      Base64UrlEncode("[\"alg\",\"HS256\"]") + "." + ok_claims + ".AAAA",
      Base64UrlEncode("\xff\xfe") + "." + ok_claims + ".AAAA",
      Base64UrlEncode(std::string(100000, '[')) + "." + ok_claims + ".AAAA",
      std::string(200000, 'A') + "." + std::string(3, 'A') + "." + std::string(43, 'A'),
      std::string(kKatToken) + ".",
      "." + std::string(kKatToken),
      " " + std::string(kKatToken),
  };
  for (const std::string& t : garbage) {
    StatusOr<nlohmann::json> r = VerifyJwt(t, kKey, GetVolumes());
    ASSERT_FALSE(r.ok()) << t.substr(0, 80);
    EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated) << r.status().ToString();
    EXPECT_EQ(r.status().message().find(kKey), std::string::npos);
    StatusOr<std::string> iss = PeekJwtIssuer(t);
    ASSERT_FALSE(iss.ok()) << t.substr(0, 80);
    EXPECT_EQ(iss.status().code(), StatusCode::kUnauthenticated);
  }
  ExpectUnauthenticated(VerifyJwt("", kKey, GetVolumes()), "token is not a JWT");
  ExpectUnauthenticated(VerifyJwt("a.b", kKey, GetVolumes()), "token is not a JWT");
  ExpectUnauthenticated(VerifyJwt("a.b.c.d", kKey, GetVolumes()), "token is not a JWT");
  ExpectUnauthenticated(VerifyJwt("!!!.###.$$$", kKey, GetVolumes()), "token is not a JWT");
  ExpectUnauthenticated(VerifyJwt(garbage[12], kKey, GetVolumes()),
                        "token header is not a JSON object");
  ExpectUnauthenticated(VerifyJwt(garbage[13], kKey, GetVolumes()),
                        "token header is not a JSON object");
}

TEST(JwtVerify, MessagesNeverContainTheKey) {
  // A key that also looks like every string the verifier might echo back.
  const std::string key = "GET&/volumes";
  const std::string t = SignJwt(key, MakeRequestClaims("admin", "GET", "/volumes", kNow));
  for (const std::string& k : {key, std::string("HS256"), std::string("none")}) {
    StatusOr<nlohmann::json> r = VerifyJwt(t, k, {.method = "PUT", .path = "/x", .now = kNow});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().message().find(k), std::string::npos) << r.status().message();
  }
}

// ---------------------------------------------------------------------------
// PeekJwtIssuer

TEST(JwtPeekIssuer, ReturnsIssWithoutVerifying) {
  StatusOr<std::string> iss = PeekJwtIssuer(kKatToken);
  ASSERT_TRUE(iss.ok()) << iss.status().ToString();
  EXPECT_EQ(*iss, "admin");
  EXPECT_EQ(*PeekJwtIssuer(kForeignToken), "node");

  // The signature is not checked: a token signed with any key still tells its issuer.
  EXPECT_EQ(*PeekJwtIssuer(SignJwt("other", MakeRequestClaims("user", "GET", "/", kNow))), "user");
}

TEST(JwtPeekIssuer, FailsWithoutStringIss) {
  nlohmann::json c = MakeRequestClaims("admin", "GET", "/volumes", kNow);
  c.erase("iss");
  ExpectUnauthenticated(PeekJwtIssuer(SignJwt(kKey, c)), "token has no iss");
  c["iss"] = 7;
  ExpectUnauthenticated(PeekJwtIssuer(SignJwt(kKey, c)), "token has no iss");
  ExpectUnauthenticated(PeekJwtIssuer(SignClaimsText("[\"iss\"]")),
                        "token claims are not a JSON object");
  ExpectUnauthenticated(PeekJwtIssuer("x"), "token is not a JWT");
}

// ---------------------------------------------------------------------------
// Base64url

TEST(Base64Url, EncodesRfc4648VectorsWithoutPadding) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode("fooba"), "Zm9vYmE");
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
}

TEST(Base64Url, UsesUrlSafeAlphabet) {
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff\xbf"), "-_-_");
  EXPECT_EQ(Base64UrlEncode(std::string(1, '\0')), "AA");
  EXPECT_EQ(Base64UrlEncode(std::string(2, '\0')), "AAA");
  EXPECT_EQ(Base64UrlEncode(std::string(3, '\0')), "AAAA");
}

TEST(Base64Url, DecodesZeroToThreeBytes) {
  EXPECT_EQ(*Base64UrlDecode(""), "");
  EXPECT_EQ(*Base64UrlDecode("Zg"), "f");
  EXPECT_EQ(*Base64UrlDecode("Zm8"), "fo");
  EXPECT_EQ(*Base64UrlDecode("Zm9v"), "foo");
  EXPECT_EQ(*Base64UrlDecode("-_8"), "\xfb\xff");
  EXPECT_EQ(*Base64UrlDecode("-_-_"), "\xfb\xff\xbf");
}

TEST(Base64Url, RoundTripsEveryByteAndLength) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t n = 0; n <= all.size(); ++n) {
    const std::string in = all.substr(256 - n);
    StatusOr<std::string> out = Base64UrlDecode(Base64UrlEncode(in));
    ASSERT_TRUE(out.ok()) << n;
    EXPECT_EQ(*out, in);
  }
}

// Padding is rejected, not tolerated: JWTs (RFC 7515) never carry it, and one
// accepted spelling per value keeps signatures non-malleable.
TEST(Base64Url, RejectsPadding) {
  for (const char* padded : {"Zg==", "Zm8=", "Zg=", "=", "===="}) {
    StatusOr<std::string> r = Base64UrlDecode(padded);
    ASSERT_FALSE(r.ok()) << padded;
    EXPECT_TRUE(r.status().IsInvalidArgument());
  }
}

TEST(Base64Url, RejectsInvalidCharactersAndLengths) {
  for (const char* bad :
       {"Zm+v", "Zm/v", "Zm9v\n", " Zm9v", "Zm 9v", "Z", "Zm9vY", "Zm.v", "\xc3\xa9"}) {
    StatusOr<std::string> r = Base64UrlDecode(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(r.status().IsInvalidArgument());
  }
  EXPECT_FALSE(Base64UrlDecode(std::string_view("Zm\0v", 4)).ok());
  EXPECT_NE(Base64UrlDecode("Zm+v").status().message().find("offset 2"), std::string::npos);
}

TEST(Base64Url, RejectsNonZeroTrailingBits) {
  EXPECT_TRUE(Base64UrlDecode("Zg").ok());
  EXPECT_FALSE(Base64UrlDecode("Zh").ok());  // "f" with a stray low bit
  EXPECT_TRUE(Base64UrlDecode("Zm8").ok());
  EXPECT_FALSE(Base64UrlDecode("Zm9").ok());  // "fo" with stray bits
}

}  // namespace
}  // namespace cairn
