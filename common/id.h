// Ids: 128-bit volume-wide object ids (GlusterFS's gfid) and random tokens.
//
//   Uuid id = Uuid::Random();
//   std::string s = id.ToString();   // "3f2c9a8e-...."
//   StatusOr<Uuid> back = Uuid::Parse(s);
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cairn {

// A 16-byte id, printed in the canonical 8-4-4-4-12 hex form.
class Uuid {
 public:
  static constexpr size_t kSize = 16;
  // The all-zero id, which names nothing.
  Uuid() = default;
  explicit Uuid(const std::array<uint8_t, kSize>& bytes) : bytes_(bytes) {}

  // A random (version 4) id from the kernel's CSPRNG.
  static Uuid Random();
  // The id of every volume's root directory: 00000000-0000-0000-0000-000000000001.
  static Uuid Root();
  // Parses the canonical form or 32 hex digits.
  static StatusOr<Uuid> Parse(std::string_view text);
  // Takes exactly 16 raw bytes (as carried in protobuf `bytes` fields).
  static StatusOr<Uuid> FromBytes(std::string_view raw);

  bool IsZero() const;
  const std::array<uint8_t, kSize>& bytes() const { return bytes_; }
  // The 16 raw bytes as a string, for protobuf `bytes` fields.
  std::string Raw() const;
  // "3f2c9a8e-1b2c-4d5e-8f90-123456789abc".
  std::string ToString() const;
  // 32 lower-case hex digits, no dashes (used for on-disk names).
  std::string ToHex() const;
  uint64_t Hash() const;

  friend bool operator==(const Uuid&, const Uuid&) = default;
  friend auto operator<=>(const Uuid&, const Uuid&) = default;

 private:
  std::array<uint8_t, kSize> bytes_{};
};

// Fills `n` bytes at `out` from the kernel's CSPRNG (getrandom).
void RandomBytes(void* out, size_t n);

// A random token of `bytes` bytes as lower-case hex, for secrets.
std::string RandomHexToken(size_t bytes = 32);

// Hex encoding of arbitrary bytes.
std::string HexEncode(std::string_view raw);

}  // namespace cairn

template <>
struct std::hash<cairn::Uuid> {
  size_t operator()(const cairn::Uuid& id) const noexcept { return id.Hash(); }
};
