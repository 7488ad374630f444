#pragma once
// Big-endian fixed-width integers and Kafka's zigzag varints over byte spans. ByteReader never
// reads past its span: every read reports failure instead, so decoders of untrusted input stay in
// bounds.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace depot {

using Bytes = std::vector<std::byte>;
using ByteSpan = std::span<const std::byte>;

inline ByteSpan as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

inline Bytes to_bytes(std::string_view s) {
  const ByteSpan span = as_bytes(s);
  return {span.begin(), span.end()};
}
inline std::string_view as_chars(ByteSpan b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

template <class U>
constexpr U byteswap(U v) {
  if constexpr (sizeof(U) == 2) return __builtin_bswap16(v);
  if constexpr (sizeof(U) == 4) return __builtin_bswap32(v);
  if constexpr (sizeof(U) == 8) return __builtin_bswap64(v);
  return v;
}

template <class T>
T load_be(const std::byte* p) {
  static_assert(std::is_integral_v<T>);
  std::make_unsigned_t<T> v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::little && sizeof(T) > 1) v = byteswap(v);
  return static_cast<T>(v);
}

template <class T>
void store_be(std::byte* p, T value) {
  static_assert(std::is_integral_v<T>);
  auto v = static_cast<std::make_unsigned_t<T>>(value);
  if constexpr (std::endian::native == std::endian::little && sizeof(T) > 1) v = byteswap(v);
  std::memcpy(p, &v, sizeof v);
}

constexpr uint64_t zigzag_encode(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
constexpr int64_t zigzag_decode(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

// Bounds-checked cursor over untrusted bytes. After any failed read ok() is false and every later
// read fails too, so a decoder may read a whole structure and check once at the end.
class ByteReader {
 public:
  explicit ByteReader(ByteSpan data) : data_(data) {}

  bool ok() const { return ok_; }
  size_t remaining() const { return data_.size() - pos_; }
  size_t position() const { return pos_; }
  bool at_end() const { return pos_ == data_.size(); }

  template <class T>
  T read_be() {
    if (!require(sizeof(T))) return T{};
    T v = load_be<T>(data_.data() + pos_);
    pos_ += sizeof(T);
    return v;
  }

  ByteSpan read_bytes(size_t n) {
    if (!require(n)) return {};
    ByteSpan out = data_.subspan(pos_, n);
    pos_ += n;
    return out;
  }

  // Unsigned LEB128 varint of at most `max_bytes` bytes (5 for 32-bit, 10 for 64-bit values).
  uint64_t read_uvarint(int max_bytes = 10) {
    uint64_t value = 0;
    for (int i = 0; i < max_bytes; ++i) {
      if (!require(1)) return 0;
      auto b = static_cast<uint8_t>(data_[pos_++]);
      value |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) return value;
    }
    ok_ = false;  // too many continuation bytes
    return 0;
  }
  int64_t read_varlong() { return zigzag_decode(read_uvarint(10)); }
  int32_t read_varint() {
    uint64_t raw = read_uvarint(5);
    if (raw > 0xffffffffULL) ok_ = false;
    return static_cast<int32_t>(zigzag_decode(raw & 0xffffffffULL));
  }

  void fail() { ok_ = false; }

 private:
  bool require(size_t n) {
    if (!ok_ || n > remaining()) {
      ok_ = false;
      return false;
    }
    return true;
  }

  ByteSpan data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Appends encoded values to a byte vector.
class ByteWriter {
 public:
  explicit ByteWriter(Bytes& out) : out_(out) {}

  size_t size() const { return out_.size(); }

  template <class T>
  void write_be(T v) {
    size_t at = out_.size();
    out_.resize(at + sizeof(T));
    store_be<T>(out_.data() + at, v);
  }
  void write_bytes(ByteSpan b) { out_.insert(out_.end(), b.begin(), b.end()); }
  // Overwrites a value written earlier at `at` (a length known only once what follows is written).
  template <class T>
  void patch_be(size_t at, T v) {
    store_be<T>(out_.data() + at, v);
  }
  void write_uvarint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<std::byte>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<std::byte>(v));
  }
  void write_varlong(int64_t v) { write_uvarint(zigzag_encode(v)); }
  void write_varint(int32_t v) { write_uvarint(static_cast<uint32_t>(zigzag_encode(v))); }

 private:
  Bytes& out_;
};

// Number of bytes write_uvarint would produce.
constexpr size_t uvarint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}
constexpr size_t varint_size(int64_t v) {
  return uvarint_size(zigzag_encode(v));
}

}  // namespace depot
