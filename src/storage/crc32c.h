#pragma once
// CRC32C (Castagnoli), the checksum of Kafka RecordBatch v2. Uses the SSE4.2 crc32 instruction
// when the CPU has it and a slicing-by-8 table otherwise; both give identical results.
#include <cstdint>

#include "common/bytes.h"

namespace depot::storage {

// Extends `crc` (the CRC of preceding bytes, 0 for none) over `data`.
uint32_t crc32c(ByteSpan data, uint32_t crc = 0);

// The portable implementation, exposed so tests can check it against the hardware one.
uint32_t crc32c_portable(ByteSpan data, uint32_t crc = 0);

// True when crc32c() uses the SSE4.2 instruction on this CPU.
bool crc32c_hardware_accelerated();

}  // namespace depot::storage
