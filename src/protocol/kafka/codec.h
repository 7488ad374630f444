#pragma once
// Kafka's primitive types, in both directions. Each message's fields are listed once, as
//   template <class IO> void io(IO& io, Message& m, int16_t version)
// and that list serves decoding (Reader) and encoding (Writer), so the two cannot disagree.
// In flexible versions (KIP-482) strings, arrays and bytes are compact (unsigned-varint lengths
// plus one) and every struct ends with a tagged-field section; Reader and Writer are told which
// at construction. Reading is bounded: lengths and counts are checked against the bytes present
// before anything is allocated, and the first failure sticks (ok() is then false).
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/file_range.h"

namespace depot::kafka {

using Uuid = std::array<uint8_t, 16>;

// A record set left out of an encoded body and sent as its own buffer, so that fetched bytes are
// not copied into the response: `at` is its place in the body.
struct Splice {
  size_t at = 0;
  Bytes data;
  FileRange file;  // instead of `data`: bytes the connection sends from a file
  size_t size() const { return data.size() + file.size; }
};

class Reader {
 public:
  static constexpr bool kDecoding = true;
  Reader(ByteSpan data, bool flexible) : in_(data), flexible_(flexible) {}

  bool ok() const { return in_.ok(); }
  bool flexible() const { return flexible_; }
  bool at_end() const { return in_.at_end(); }
  size_t position() const { return in_.position(); }
  void fail() { in_.fail(); }

  void int8(int8_t& v) { v = in_.read_be<int8_t>(); }
  void int16(int16_t& v) { v = in_.read_be<int16_t>(); }
  void int32(int32_t& v) { v = in_.read_be<int32_t>(); }
  void int64(int64_t& v) { v = in_.read_be<int64_t>(); }
  void boolean(bool& v) { v = in_.read_be<uint8_t>() != 0; }
  void uuid(Uuid& v);
  // A string that may not be null (a null one fails the read).
  void string(std::string& s);
  void nullable_string(std::optional<std::string>& s);
  // A field that became nullable in some version: nullable when `nullable`, else required.
  void string(std::optional<std::string>& s, bool nullable) {
    if (nullable) {
      nullable_string(s);
      return;
    }
    s.emplace();
    string(*s);
  }
  void bytes(Bytes& b);
  void nullable_bytes(std::optional<Bytes>& b);
  // A view of the bytes in the input, not a copy: valid while the input is.
  void nullable_bytes(std::optional<ByteSpan>& b);
  // A RECORDS field: nullable bytes (compact in flexible versions). `file` is the encoder's.
  void records(std::optional<Bytes>& b, FileRange& /*file*/) { nullable_bytes(b); }
  // The request header's client_id: an int16-length nullable string even in flexible headers.
  void classic_nullable_string(std::optional<std::string>& s);

  template <class T, class Each>
  void array(std::vector<T>& items, Each&& each) {
    std::optional<std::vector<T>> read;
    nullable_array(read, each);
    if (!read) {
      fail();
      return;
    }
    items = std::move(*read);
  }
  template <class T, class Each>
  void nullable_array(std::optional<std::vector<T>>& items, Each&& each) {
    const int64_t count = length(false);
    items.reset();
    if (count < 0) return;
    // Every element takes at least one byte: a larger count is a lie, not a reason to allocate.
    if (static_cast<uint64_t>(count) > in_.remaining()) {
      fail();
      return;
    }
    items.emplace(static_cast<size_t>(count));
    for (T& item : *items) {
      if (!ok()) return;
      each(item);
    }
  }
  void int32_array(std::vector<int32_t>& v) {
    array(v, [this](int32_t& x) { int32(x); });
  }
  // Skips every tagged field (none is one we read); nothing in non-flexible versions.
  void tagged_fields();

 private:
  // A length or count: int16 (`short_form`) or int32 in classic versions, unsigned varint minus
  // one in flexible ones. -1 means null; a negative other than -1 fails.
  int64_t length(bool short_form);

  ByteReader in_;
  bool flexible_;
};

class Writer {
 public:
  static constexpr bool kDecoding = false;
  // With `splices`, large record sets are moved out of the message into it instead of being
  // copied into `out`.
  Writer(Bytes& out, bool flexible, std::vector<Splice>* splices = nullptr)
      : w_(out), flexible_(flexible), splices_(splices) {}

  bool ok() const { return true; }
  bool flexible() const { return flexible_; }

  void int8(const int8_t& v) { w_.write_be<int8_t>(v); }
  void int16(const int16_t& v) { w_.write_be<int16_t>(v); }
  void int32(const int32_t& v) { w_.write_be<int32_t>(v); }
  void int64(const int64_t& v) { w_.write_be<int64_t>(v); }
  void boolean(const bool& v) { w_.write_be<uint8_t>(v ? 1 : 0); }
  void uuid(const Uuid& v);
  void string(const std::string& s);
  void nullable_string(const std::optional<std::string>& s);
  // Written as given; a null where the version has no null is a caller's bug.
  void string(const std::optional<std::string>& s, bool nullable) {
    if (nullable) {
      nullable_string(s);
    } else {
      string(s.value());
    }
  }
  void bytes(ByteSpan b);
  void nullable_bytes(const std::optional<Bytes>& b);
  void nullable_bytes(const std::optional<ByteSpan>& b);
  // The record set `b`, or when `file` holds it, a range of a file (only into splices).
  void records(std::optional<Bytes>& b, FileRange& file);
  void classic_nullable_string(const std::optional<std::string>& s);

  template <class T, class Each>
  void array(std::vector<T>& items, Each&& each) {
    length(static_cast<int64_t>(items.size()), false);
    for (T& item : items)
      each(item);
  }
  template <class T, class Each>
  void nullable_array(std::optional<std::vector<T>>& items, Each&& each) {
    if (!items) {
      length(-1, false);
      return;
    }
    array(*items, each);
  }
  void int32_array(std::vector<int32_t>& v) {
    array(v, [this](int32_t& x) { int32(x); });
  }
  // An empty tagged-field section in flexible versions (we send no tagged fields).
  void tagged_fields() {
    if (flexible_) w_.write_uvarint(0);
  }

 private:
  void length(int64_t n, bool short_form);

  ByteWriter w_;
  bool flexible_;
  std::vector<Splice>* splices_;
};

// Encodes `m` at `version`. The field lists take a mutable message (one list serves both
// directions); encoding only reads it.
template <class M>
void encode(const M& m, int16_t version, bool flexible, Bytes& out) {
  Writer w(out, flexible);
  io(w, const_cast<M&>(m), version);
}

// Encodes `m`, moving its large record sets into `splices` (which empties them in `m`).
template <class M>
void encode_spliced(M& m, int16_t version, bool flexible, Bytes& out,
                    std::vector<Splice>& splices) {
  Writer w(out, flexible, &splices);
  io(w, m, version);
}

// Decodes a whole body: every byte must belong to the message.
template <class M>
std::optional<M> decode(ByteSpan body, int16_t version, bool flexible) {
  Reader r(body, flexible);
  M m;
  io(r, m, version);
  if (!r.ok() || !r.at_end()) return std::nullopt;
  return m;
}

}  // namespace depot::kafka
