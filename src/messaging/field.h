#pragma once
// Typed values as AMQP carries them in field tables: message headers, and the arguments of
// declares, binds and consumes. The messaging domain reads them (headers exchanges, x-arguments,
// x-death) and stores them in the binary form AMQP gives them, so the face passes tables through
// and the definitions journal keeps every value's type. Decoding is bounded: lengths are checked
// against the bytes present, and nesting deeper than kMaxFieldDepth is refused.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/bytes.h"

namespace depot::messaging {

inline constexpr int kMaxFieldDepth = 32;

struct Decimal {
  uint8_t scale = 0;
  uint32_t value = 0;
  bool operator==(const Decimal&) const = default;
};
struct Timestamp {  // seconds since the epoch ('T')
  uint64_t seconds = 0;
  bool operator==(const Timestamp&) const = default;
};
struct ByteArray {  // 'x': bytes, as opposed to 'S' text
  std::string bytes;
  bool operator==(const ByteArray&) const = default;
};
struct Void {  // 'V'
  bool operator==(const Void&) const = default;
};

struct FieldValue;
struct FieldEntry;
using FieldTable = std::vector<FieldEntry>;  // in wire order; names may repeat on the wire
using FieldArray = std::vector<FieldValue>;

struct FieldValue {
  // 'L' (RabbitMQ reads it as signed) decodes as int64_t like 'l'.
  std::variant<Void, bool, int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t, int64_t, float,
               double, Decimal, std::string, ByteArray, Timestamp, FieldTable, FieldArray>
      value;

  bool operator==(const FieldValue& other) const;

  // The value as a signed integer when it is one of the integer types.
  std::optional<int64_t> as_integer() const;
  // The text of an 'S' value.
  const std::string* as_string() const { return std::get_if<std::string>(&value); }
  const FieldTable* as_table() const { return std::get_if<FieldTable>(&value); }
};

struct FieldEntry {
  std::string name;
  FieldValue value;
  bool operator==(const FieldEntry&) const = default;
};

// The value of the first entry named `name`, or nullptr.
const FieldValue* find_field(const FieldTable& table, std::string_view name);

// A table (u32 byte length, then entries) from the reader; false (and the reader failed) when it
// is malformed: a length past the end, an unknown type tag, or nesting too deep.
bool read_table(ByteReader& in, FieldTable& out, int depth = 0);
// A table's entries without the length prefix (AMQPLAIN's response is one).
bool read_table_body(ByteSpan body, FieldTable& out);
void write_table(ByteWriter& out, const FieldTable& table);

}  // namespace depot::messaging
