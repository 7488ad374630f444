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

// Whatever decodes must encode and decode again to what `same` calls equal.
template <class M, class Same>
void round_trip(depot::ByteSpan body, int16_t version, bool flexible, Same same) {
  auto decoded = decode<M>(body, version, flexible);
  if (!decoded) return;
  depot::Bytes again;
  encode(*decoded, version, flexible, again);
  auto back = decode<M>(again, version, flexible);
  check(back && same(*decoded, *back));
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
    case ApiKey::api_versions:
      round_trip<ApiVersionsRequest>(
          parsed->body, version, flexible, [](const auto& a, const auto& b) {
            return a.client_software_name == b.client_software_name &&
                   a.client_software_version == b.client_software_version;
          });
      break;
    case ApiKey::metadata:
      round_trip<MetadataRequest>(parsed->body, version, flexible,
                                  [](const auto& a, const auto& b) {
                                    if (a.topics.has_value() != b.topics.has_value()) return false;
                                    if (!a.topics) return true;
                                    if (a.topics->size() != b.topics->size()) return false;
                                    for (size_t i = 0; i < a.topics->size(); ++i) {
                                      if ((*a.topics)[i].name != (*b.topics)[i].name) return false;
                                    }
                                    return true;
                                  });
      break;
    default:
      break;
  }
  return 0;
}
