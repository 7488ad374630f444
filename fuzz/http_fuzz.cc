// The HTTP face's untrusted input: request bytes, split at a fuzzer-chosen point as a socket might
// deliver them, through the parser and every parsed request through the admin API.
#include <cstddef>
#include <cstdint>
#include <string>

#include "protocol/http/admin_api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace depot;
  if (size == 0) return 0;
  size_t split = data[0] % (size);
  std::string wire(reinterpret_cast<const char*>(data) + 1, size - 1);
  static const auto workers = [] {
    auto registry = std::make_shared<jobs::WorkerRegistry>();
    registry->connect({"w1", "host", 1, {}, jobs::WorkerState::running, 0, 0, 0}, 0);
    return registry;
  }();
  http::AdminApi api(workers);
  http::RequestParser parser(http::Limits{4096, 4096});
  std::string buffered;
  for (std::string_view piece : {std::string_view(wire).substr(0, split),
                                 std::string_view(wire).substr(std::min(split, wire.size()))}) {
    buffered += piece;
    for (;;) {
      auto fed = parser.feed(as_bytes(buffered));
      if (std::holds_alternative<http::ParseError>(fed)) return 0;
      buffered.erase(0, std::get<size_t>(fed));
      if (!parser.done()) break;
      auto taken = parser.take();
      if (std::holds_alternative<http::ParseError>(taken)) return 0;
      const http::Request& request = std::get<http::Request>(taken);
      (void)http::serialize(api.handle(request), request.keep_alive, request.method == "HEAD");
    }
  }
  return 0;
}
