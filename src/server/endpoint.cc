#include "server/endpoint.h"

#include <cctype>
#include <charconv>

#include <boost/asio/ip/address.hpp>
#include <fmt/format.h>

namespace depot::server {
namespace {

ParseResult<uint16_t> parse_port(std::string_view text) {
  if (text.empty()) return std::string("the port is missing after ':'");
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range || (ec == std::errc{} && value > 65535)) {
    return std::string("the port must be between 0 and 65535");
  }
  if (ec != std::errc{} || end != text.data() + text.size()) {
    return fmt::format("the port \"{}\" is not a number", text);
  }
  return static_cast<uint16_t>(value);
}

bool is_host_name(std::string_view host) {
  for (char c : host) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
      return false;
    }
  }
  return !host.empty();
}

}  // namespace

std::string Endpoint::to_string() const {
  bool ipv6 = host.find(':') != std::string::npos;
  return ipv6 ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

std::string format_endpoint(const boost::asio::ip::tcp::endpoint& endpoint) {
  return Endpoint{endpoint.address().to_string(), endpoint.port()}.to_string();
}

bool is_loopback(const boost::asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6())
        .is_loopback();
  }
  return address.is_loopback();
}

ParseResult<Endpoint> parse_endpoint(std::string_view text) {
  if (text.empty()) return std::string("the address is empty");
  std::string_view host;
  std::string_view port;
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos)
      return std::string("the '[' before an IPv6 address is not closed");
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.starts_with(':')) return std::string("expected ':PORT' after ']'");
    port = rest.substr(1);
    boost::system::error_code ec;
    boost::asio::ip::make_address_v6(std::string(host), ec);
    if (ec) return fmt::format("\"{}\" is not an IPv6 address", host);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::string("the ':PORT' part is missing");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return std::string("IPv6 addresses must be in brackets, e.g. [::1]:7419");
    }
    if (host.empty()) return std::string("the host is missing (use 0.0.0.0 for every interface)");
    if (!is_host_name(host)) return fmt::format("\"{}\" is not a host name or address", host);
  }
  Endpoint endpoint{std::string(host), 0};
  DEPOT_TRY(endpoint.port, parse_port(port));
  return endpoint;
}

}  // namespace depot::server
