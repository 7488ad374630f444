#pragma once
// The HTTP face: HTTP/1.1 with keep-alive on the server's connections, each request answered by
// the admin API.
#include <utility>

#include "protocol/http/admin_api.h"
#include "server/protocol_handler.h"

namespace depot::http {

class HttpHandler final : public server::ProtocolHandler {
 public:
  explicit HttpHandler(AdminApi api, Limits limits = {}) : api_(std::move(api)), limits_(limits) {}

  boost::asio::awaitable<void> serve(server::Connection& conn) override;

 private:
  AdminApi api_;
  Limits limits_;
};

}  // namespace depot::http
