#pragma once
// Kafka's SASL authentication, server side: PLAIN (RFC 4616) and SCRAM-SHA-256 (RFC 5802, 7677)
// against the configured users. One exchange per connection; tokens in, tokens out, no sockets.
// SCRAM credentials are derived per exchange from the configured password, with a fresh random
// salt and Kafka's minimum of 4096 iterations.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"

namespace depot::kafka {

class SaslExchange {
 public:
  // What SaslHandshake offers, in Kafka's spelling.
  static const std::vector<std::string>& mechanisms();
  static bool supported(std::string_view mechanism);

  SaslExchange(std::string mechanism, const std::map<std::string, std::string>& users);

  struct Step {
    enum class Outcome { challenge, success, failure } outcome = Outcome::failure;
    Bytes reply;        // the token for the client (empty for PLAIN)
    std::string error;  // why it failed, for the client and the log
  };
  // Feeds the client's next token.
  Step step(ByteSpan token);
  // The authenticated user, once step() has returned success.
  const std::string& user() const { return user_; }

 private:
  Step plain(std::string_view token);
  Step scram_first(std::string_view token);
  Step scram_final(std::string_view token);

  std::string mechanism_;
  const std::map<std::string, std::string>& users_;
  int round_ = 0;
  std::string user_;
  // SCRAM state between the two rounds.
  std::string gs2_header_;  // "n,," or "y,,", which the final message must repeat
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;
  std::string salted_password_;
};

}  // namespace depot::kafka
