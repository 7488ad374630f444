#include "protocol/http/request.h"

#include <optional>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <fmt/format.h>

namespace depot::http {

namespace beast_http = boost::beast::http;

struct RequestParser::Impl {
  std::optional<beast_http::request_parser<beast_http::string_body>> parser;
};

namespace {

void reset(std::optional<beast_http::request_parser<beast_http::string_body>>& parser,
           const Limits& limits) {
  parser.emplace();
  parser->header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
  parser->body_limit(limits.max_body_bytes);
  parser->eager(true);
}

}  // namespace

RequestParser::RequestParser(Limits limits) : impl_(std::make_unique<Impl>()), limits_(limits) {
  reset(impl_->parser, limits_);
}

RequestParser::~RequestParser() = default;

std::variant<size_t, ParseError> RequestParser::feed(ByteSpan bytes) {
  size_t consumed = 0;
  while (!impl_->parser->is_done() && consumed < bytes.size()) {
    boost::beast::error_code ec;
    size_t n = impl_->parser->put(
        boost::asio::const_buffer(bytes.data() + consumed, bytes.size() - consumed), ec);
    consumed += n;
    if (ec == beast_http::error::need_more) {
      // An incomplete header fits within the limit until the parser says otherwise.
      break;
    }
    if (ec == beast_http::error::header_limit) {
      return ParseError{431, "the request header is larger than " +
                                 std::to_string(limits_.max_header_bytes) + " bytes"};
    }
    if (ec == beast_http::error::body_limit) {
      return ParseError{413, "the request body is larger than " +
                                 std::to_string(limits_.max_body_bytes) + " bytes"};
    }
    if (ec) return ParseError{400, "malformed HTTP request: " + ec.message()};
    if (n == 0) break;
  }
  return consumed;
}

bool RequestParser::done() const {
  return impl_->parser->is_done();
}

std::variant<Request, ParseError> RequestParser::take() {
  auto message = impl_->parser->release();
  reset(impl_->parser, limits_);
  Request request;
  request.method = std::string(message.method_string());
  std::string_view target(message.target().data(), message.target().size());
  auto question = target.find('?');
  request.path = std::string(target.substr(0, question));
  auto segments = path_segments(request.path);
  if (!segments) return ParseError{400, "the request path holds an escaped NUL"};
  request.segments = std::move(segments).value();
  if (question != std::string_view::npos) request.query = std::string(target.substr(question + 1));
  auto header = [&message](beast_http::field field) {
    auto it = message.find(field);
    return it == message.end() ? std::string() : std::string(it->value());
  };
  request.host = header(beast_http::field::host);
  request.origin = header(beast_http::field::origin);
  request.authorization = header(beast_http::field::authorization);
  request.body = std::move(message.body());
  request.keep_alive = message.keep_alive();
  return request;
}

std::optional<std::vector<std::string>> path_segments(std::string_view path) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::vector<std::string> segments;
  if (path.starts_with('/')) path.remove_prefix(1);
  while (!path.empty()) {
    auto slash = path.find('/');
    std::string_view raw = path.substr(0, slash);
    path.remove_prefix(slash == std::string_view::npos ? path.size() : slash + 1);
    std::string& segment = segments.emplace_back();
    for (size_t i = 0; i < raw.size(); ++i) {
      // A malformed escape is kept as it is.
      if (raw[i] == '%' && i + 2 < raw.size() && hex(raw[i + 1]) >= 0 && hex(raw[i + 2]) >= 0) {
        char decoded = static_cast<char>(hex(raw[i + 1]) * 16 + hex(raw[i + 2]));
        if (decoded == '\0') return std::nullopt;
        segment += decoded;
        i += 2;
      } else {
        segment += raw[i];
      }
    }
  }
  return segments;
}

std::string_view status_text(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Payload Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return status < 500 ? "Client Error" : "Server Error";
  }
}

std::string serialize(const Response& response, bool keep_alive, bool head) {
  std::string out =
      fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n", response.status,
                  status_text(response.status), response.content_type, response.body.size());
  for (const auto& [name, value] : response.headers)
    out += fmt::format("{}: {}\r\n", name, value);
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  if (!head) out += response.body;
  return out;
}

}  // namespace depot::http
