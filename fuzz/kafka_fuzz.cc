// libFuzzer target for the Kafka face's request decoding: headers (classic and flexible) and the
// bodies of the APIs decoded so far, at whatever version the request names. Whatever decodes
// must encode and decode again to the same thing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "protocol/kafka/header.h"
#include "protocol/kafka/messages.h"

namespace {

using namespace depot::kafka;

void check(bool ok) {
  if (!ok) std::abort();
}

// Whatever decodes must encode, decode again, and encode to the same bytes.
template <class M>
void round_trip(depot::ByteSpan body, int16_t version, bool flexible) {
  auto decoded = decode<M>(body, version, flexible);
  if (!decoded) return;
  depot::Bytes once;
  encode(*decoded, version, flexible, once);
  auto back = decode<M>(once, version, flexible);
  check(back.has_value());
  depot::Bytes twice;
  encode(*back, version, flexible, twice);
  check(once == twice);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  depot::ByteSpan input(reinterpret_cast<const std::byte*>(data), size);
  auto parsed = parse_request(input);
  if (!parsed) return 0;
  const int16_t version = parsed->header.api_version;
  const bool flexible = is_flexible(parsed->header.api_key, version);
  if (version < 0 || version > 17) return 0;
  switch (static_cast<ApiKey>(parsed->header.api_key)) {
    case ApiKey::api_versions:
      round_trip<ApiVersionsRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::metadata:
      round_trip<MetadataRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::produce:
      round_trip<ProduceRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::fetch:
      round_trip<FetchRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::list_offsets:
      round_trip<ListOffsetsRequest>(parsed->body, version, flexible);
      break;
    case ApiKey::init_producer_id:
      round_trip<InitProducerIdRequest>(parsed->body, version, flexible);
      break;
    default:
      break;
  }
  return 0;
}
