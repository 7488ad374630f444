// Fuzzes the RecordBatch v2 decoder with untrusted bytes: header parsing, CRC validation and
// record decoding must never read out of bounds, and whatever decodes must re-encode to records
// that decode to the same values.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "storage/record_batch.h"

using namespace depot;
using namespace depot::storage;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteSpan input(reinterpret_cast<const std::byte*>(data), size);
  (void)validate_batch(input);
  auto header = parse_batch_header(input);
  auto records = decode_records(input);  // decodes without the CRC, so the fuzzer gets deep
  if (!header || !records) return 0;

  RecordBatchBuilder builder(header.value().base_offset);
  std::vector<HeaderInput> headers;
  for (const auto& r : records.value()) {
    headers.clear();
    for (const auto& h : r.headers)
      headers.push_back({h.key, h.value});
    builder.add(r.key, r.value, r.timestamp, headers,
                static_cast<int32_t>(r.offset - header.value().base_offset));
  }
  Bytes rebuilt = builder.build();
  if (!validate_batch(rebuilt)) std::abort();
  auto again = decode_records(rebuilt);
  if (!again || again.value().size() != records.value().size()) std::abort();
  for (size_t i = 0; i < records.value().size(); ++i) {
    const auto& a = records.value()[i];
    const auto& b = again.value()[i];
    auto same = [](const std::optional<ByteSpan>& x, const std::optional<ByteSpan>& y) {
      return x.has_value() == y.has_value() && (!x || as_chars(*x) == as_chars(*y));
    };
    if (a.offset != b.offset || !same(a.key, b.key) || !same(a.value, b.value) ||
        a.headers.size() != b.headers.size()) {
      std::abort();
    }
  }
  return 0;
}
