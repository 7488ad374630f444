#include "protocol/http/handler.h"

#include <spdlog/spdlog.h>

#include "server/connection.h"

namespace depot::http {

boost::asio::awaitable<void> HttpHandler::serve(server::Connection& conn) {
  RequestParser parser(limits_);
  while (!conn.closed()) {
    auto fed = parser.feed(conn.buffered());
    if (const ParseError* error = std::get_if<ParseError>(&fed)) {
      spdlog::info("{}: {}", conn.name(), error->message);
      (void)co_await conn.write(serialize(error_response(error->status, error->message), false));
      co_return;
    }
    conn.consume(std::get<size_t>(fed));
    if (parser.done()) {
      auto taken = parser.take();
      if (const ParseError* error = std::get_if<ParseError>(&taken)) {
        (void)co_await conn.write(serialize(error_response(error->status, error->message), false));
        co_return;
      }
      const Request& request = std::get<Request>(taken);
      Response response = api_.handle(request);
      bool keep_alive = request.keep_alive && !conn.stopping();
      if (!co_await conn.write(serialize(response, keep_alive, request.method == "HEAD")) ||
          !keep_alive) {
        co_return;
      }
      continue;
    }
    if (conn.stopping() && conn.buffered().empty()) co_return;
    if (!co_await conn.read_some()) co_return;
  }
}

}  // namespace depot::http
