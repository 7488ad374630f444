#pragma once
// Length-prefixed fields (an int32 length, then the bytes) in the records of the messaging
// journals: the definitions journal and the message store.
#include <cstdint>
#include <string>
#include <string_view>

#include "common/bytes.h"

namespace depot::messaging {

inline void write_field(ByteWriter& w, ByteSpan bytes) {
  w.write_be<uint32_t>(static_cast<uint32_t>(bytes.size()));
  w.write_bytes(bytes);
}

// The field's bytes (empty, with r failed, when it is cut short).
inline ByteSpan read_field(ByteReader& r) {
  const auto size = r.read_be<uint32_t>();
  return r.read_bytes(size);
}

inline void write_string(ByteWriter& w, std::string_view s) {
  write_field(w, as_bytes(s));
}

inline std::string read_string(ByteReader& r) {
  return std::string(as_chars(read_field(r)));
}

}  // namespace depot::messaging
