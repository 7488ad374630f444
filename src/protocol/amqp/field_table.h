#pragma once
// AMQP field tables on the wire: the binary form messaging/field.h defines (depot stores tables in
// it too), named here as the AMQP face uses it.
#include "messaging/field.h"

namespace depot::amqp {

using messaging::ByteArray;
using messaging::Decimal;
using messaging::FieldArray;
using messaging::FieldEntry;
using messaging::FieldTable;
using messaging::FieldValue;
using messaging::find_field;
using messaging::kMaxFieldDepth;
using messaging::read_table;
using messaging::read_table_body;
using messaging::Timestamp;
using messaging::Void;
using messaging::write_table;

}  // namespace depot::amqp
