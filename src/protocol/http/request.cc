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

// %XX escapes decoded; a malformed escape is kept as it is.
std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
      out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
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

Request RequestParser::take() {
  auto message = impl_->parser->release();
  Request request;
  request.method = std::string(message.method_string());
  std::string_view target(message.target().data(), message.target().size());
  auto question = target.find('?');
  request.path = percent_decode(target.substr(0, question));
  if (question != std::string_view::npos) request.query = std::string(target.substr(question + 1));
  request.body = std::move(message.body());
  request.keep_alive = message.keep_alive();
  reset(impl_->parser, limits_);
  return request;
}

std::string_view status_text(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
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

std::string serialize(const Response& response, bool keep_alive) {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{}",
      response.status, status_text(response.status), response.content_type, response.body.size(),
      keep_alive ? "keep-alive" : "close", response.body);
}

}  // namespace depot::http
