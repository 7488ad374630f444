#pragma once
// The seam between the server and a protocol face (Faktory, AMQP, Kafka, HTTP). The server accepts
// TCP connections and calls serve() once per connection in its own coroutine; the face parses
// requests from Connection::buffered(), calls its domain module and writes replies.
#include <utility>  // boost/asio/awaitable.hpp (1.74) uses std::exchange without it

#include <boost/asio/awaitable.hpp>

namespace depot::server {

class Connection;

class ProtocolHandler {
 public:
  virtual ~ProtocolHandler() = default;

  // Serves one connection until the peer leaves, a read fails or conn.stopping() is true between
  // requests; returning closes the connection after queued writes are flushed. Runs on the
  // connection's strand. May throw: the error is logged and only this connection is closed.
  //
  // Consume a request from the read buffer only once it is whole: an empty buffer is how the
  // server tells an idle connection (safe to stop at once) from one in the middle of a request.
  //
  // A face that also pushes data unasked (AMQP deliveries) may co_spawn helpers on
  // conn.executor() holding conn.shared_from_this(); they must end once conn.closed() or a
  // write fails, since the connection closes when serve() returns.
  virtual boost::asio::awaitable<void> serve(Connection& conn) = 0;
};

}  // namespace depot::server
