#pragma once
// HOST:PORT as written in settings: 127.0.0.1:7419, [::1]:5672, localhost:9092.
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

#include "server/errc.h"

namespace depot::server {

struct Endpoint {
  std::string host;   // an IP literal (IPv6 without brackets) or a host name
  uint16_t port = 0;  // 0 asks the kernel for a free port (tests)

  // Back to HOST:PORT, bracketing IPv6 literals.
  std::string to_string() const;
  bool operator==(const Endpoint&) const = default;
};

// Parses HOST:PORT. IPv6 literals must be bracketed ([::1]:7419) so the port is unambiguous.
ParseResult<Endpoint> parse_endpoint(std::string_view text);

// A socket address as HOST:PORT, bracketing IPv6.
std::string format_endpoint(const boost::asio::ip::tcp::endpoint& endpoint);

// 127.0.0.0/8 or ::1, also as an IPv4-mapped IPv6 address (::ffff:127.0.0.1), which is how an
// IPv4 client appears on a dual-stack socket listening on [::].
bool is_loopback(const boost::asio::ip::address& address);

}  // namespace depot::server
