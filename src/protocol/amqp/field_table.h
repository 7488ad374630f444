#pragma once
// The wire form of AMQP field tables and arrays (the values are messaging/field.h's), with every
// type RabbitMQ reads. Decoding is bounded: lengths are checked against the bytes present, and
// nesting deeper than kMaxFieldDepth is refused.
#include "common/bytes.h"
#include "messaging/field.h"

namespace depot::amqp {

using messaging::ByteArray;
using messaging::Decimal;
using messaging::FieldArray;
using messaging::FieldEntry;
using messaging::FieldTable;
using messaging::FieldValue;
using messaging::find_field;
using messaging::Timestamp;
using messaging::Void;

inline constexpr int kMaxFieldDepth = 32;

// A table (u32 byte length, then entries) from the reader; false (and the reader failed) when it
// is malformed: a length past the end, an unknown type tag, or nesting too deep.
bool read_table(ByteReader& in, FieldTable& out, int depth = 0);
// A table's entries without the length prefix (AMQPLAIN's response is one).
bool read_table_body(ByteSpan body, FieldTable& out);
void write_table(ByteWriter& out, const FieldTable& table);

}  // namespace depot::amqp
