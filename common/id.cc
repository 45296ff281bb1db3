// Uuid and random tokens.
#include "common/id.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace cairn {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

void RandomBytes(void* out, size_t n) {
  auto* p = static_cast<uint8_t*>(out);
  while (n > 0) {
    ssize_t got = ::getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      // getrandom cannot fail on Linux >= 3.17 once the pool is initialised;
      // there is no safe fallback for key material.
      std::abort();
    }
    p += got;
    n -= static_cast<size_t>(got);
  }
}

Uuid Uuid::Random() {
  std::array<uint8_t, kSize> b;
  RandomBytes(b.data(), b.size());
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  return Uuid(b);
}

Uuid Uuid::Root() {
  std::array<uint8_t, kSize> b{};
  b[15] = 1;
  return Uuid(b);
}

StatusOr<Uuid> Uuid::Parse(std::string_view text) {
  std::array<uint8_t, kSize> b{};
  size_t nibbles = 0;
  bool dashed = text.size() == 36;
  if (!dashed && text.size() != 32) {
    return Status::InvalidArgument("id must be 32 hex digits or 8-4-4-4-12 form, got '" +
                                   std::string(text.substr(0, 64)) + "'");
  }
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (dashed && (i == 8 || i == 13 || i == 18 || i == 23)) {
      if (c != '-') return Status::InvalidArgument("malformed id '" + std::string(text) + "'");
      continue;
    }
    int v = HexValue(c);
    if (v < 0) return Status::InvalidArgument("malformed id '" + std::string(text) + "'");
    b[nibbles / 2] = static_cast<uint8_t>(b[nibbles / 2] | (nibbles % 2 == 0 ? v << 4 : v));
    ++nibbles;
  }
  return Uuid(b);
}

StatusOr<Uuid> Uuid::FromBytes(std::string_view raw) {
  if (raw.size() != kSize) {
    return Status::InvalidArgument("id must be 16 bytes, got " + std::to_string(raw.size()));
  }
  std::array<uint8_t, kSize> b;
  std::memcpy(b.data(), raw.data(), kSize);
  return Uuid(b);
}

bool Uuid::IsZero() const {
  for (uint8_t v : bytes_) {
    if (v != 0) return false;
  }
  return true;
}

std::string Uuid::Raw() const {
  return std::string(reinterpret_cast<const char*>(bytes_.data()), bytes_.size());
}

std::string Uuid::ToHex() const { return HexEncode(Raw()); }

std::string Uuid::ToString() const {
  std::string hex = ToHex();
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

uint64_t Uuid::Hash() const {
  uint64_t a, b;
  std::memcpy(&a, bytes_.data(), 8);
  std::memcpy(&b, bytes_.data() + 8, 8);
  return a * 0x9e3779b97f4a7c15ULL ^ (b + 0x632be59bd9b4e019ULL + (a << 6));
}

std::string HexEncode(std::string_view raw) {
  std::string out(raw.size() * 2, '0');
  for (size_t i = 0; i < raw.size(); ++i) {
    auto v = static_cast<uint8_t>(raw[i]);
    out[2 * i] = kHexDigits[v >> 4];
    out[2 * i + 1] = kHexDigits[v & 0xf];
  }
  return out;
}

std::string RandomHexToken(size_t bytes) {
  std::string raw(bytes, '\0');
  RandomBytes(raw.data(), raw.size());
  return HexEncode(raw);
}

}  // namespace cairn
