#pragma once
// Faktory's password handshake (shared/reference/faktory.md §2). With a password configured the
// greeting carries an iteration count and a salt; the client answers with
// hex(SHA-256^iterations(password + salt)) in HELLO's pwdhash.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace depot::faktory {

struct Challenge {
  int iterations = 0;
  std::string salt;
};

// Fresh per connection, as Faktory does: iterations uniform in [4000, 8096), salt a random 63-bit
// integer in lowercase hex. Cryptographically random (OpenSSL).
Challenge random_challenge();

// The server's first line: "+HI {"v":2}\r\n", or with ,"i":N,"s":"salt" when a password is set.
// The JSON has no spaces: the Node client takes the text after the first space as the document.
std::string greeting(const std::optional<Challenge>& challenge);

// Lowercase hex of SHA-256 applied `iterations` times: first to password + salt, then to the raw
// 32-byte digest. Fewer than one iteration counts as one, like Faktory's loop.
std::string faktory_password_hash(std::string_view password, std::string_view salt, int iterations);

// Equality in time independent of where the inputs differ (only their lengths leak).
bool constant_time_equal(std::string_view a, std::string_view b);

// Whether HELLO's pwdhash answers the challenge. Clients of protocol version < 2 hash once.
bool password_matches(std::string_view pwdhash, std::string_view password,
                      const Challenge& challenge, int64_t client_version);

}  // namespace depot::faktory
