#pragma once
// The Faktory face: one coroutine per connection speaking the work protocol (handshake, then one
// command and one reply at a time) on top of the job store. Replies that acknowledge a change
// (PUSH, PUSHB, ACK, FAIL, FLUSH, QUEUE REMOVE, MUTATE) are sent only once the change is durable
// under the fsync policy.
#include <memory>

#include "protocol/faktory/service.h"
#include "server/protocol_handler.h"

namespace depot::faktory {

class FaktoryHandler final : public server::ProtocolHandler {
 public:
  explicit FaktoryHandler(std::shared_ptr<FaktoryService> service) : service_(std::move(service)) {}
  boost::asio::awaitable<void> serve(server::Connection& conn) override;

 private:
  std::shared_ptr<FaktoryService> service_;
};

// Redis-style glob (MUTATE's "regexp" filter): * any run, ? any byte, [abc] [a-z] [^a] classes,
// \x a literal x.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace depot::faktory
