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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  depot::ByteSpan input(reinterpret_cast<const std::byte*>(data), size);
  auto parsed = parse_request(input);
  if (!parsed) return 0;
  const int16_t version = parsed->header.api_version;
  const bool flexible = is_flexible(parsed->header.api_key, version);
  if (version < 0 || version > 12) return 0;
  switch (static_cast<ApiKey>(parsed->header.api_key)) {
    case ApiKey::api_versions: {
      auto request = decode<ApiVersionsRequest>(parsed->body, version, flexible);
      if (!request) return 0;
      depot::Bytes again;
      encode(*request, version, flexible, again);
      auto back = decode<ApiVersionsRequest>(again, version, flexible);
      check(back && back->client_software_name == request->client_software_name);
      break;
    }
    case ApiKey::metadata: {
      auto request = decode<MetadataRequest>(parsed->body, version, flexible);
      if (!request) return 0;
      depot::Bytes again;
      encode(*request, version, flexible, again);
      auto back = decode<MetadataRequest>(again, version, flexible);
      check(back && back->topics.has_value() == request->topics.has_value());
      if (back->topics) {
        check(back->topics->size() == request->topics->size());
        for (size_t i = 0; i < back->topics->size(); ++i)
          check((*back->topics)[i].name == (*request->topics)[i].name);
      }
      break;
    }
    default:
      break;
  }
  return 0;
}
