#pragma once
// HTTP/1.1 on a connection's read buffer: an incremental request parser (Boost.Beast's, fed the
// bytes the connection has buffered) and a response writer. No sockets: the handler moves bytes.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "common/bytes.h"
#include "common/result.h"

namespace depot::http {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // the target without its query string
  std::string query;   // after '?', undecoded; empty when there is none
  std::string body;
  bool keep_alive = true;
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

struct Limits {
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1 << 20;
};

// Why a request could not be parsed, as the 4xx status and text to answer with before closing.
struct ParseError {
  int status = 400;
  std::string message;
};

class RequestParser {
 public:
  explicit RequestParser(Limits limits = {});
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses from `bytes` and returns how many it consumed (0 while the header is incomplete: the
  // caller reads more and calls again with everything buffered). Once done() the request is
  // whole; take() returns it and readies the parser for the next one on the connection.
  std::variant<size_t, ParseError> feed(ByteSpan bytes);
  bool done() const;
  Request take();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Limits limits_;
};

std::string_view status_text(int status);

// The response's bytes: status line, Content-Type, Content-Length, Connection, body.
std::string serialize(const Response& response, bool keep_alive);

}  // namespace depot::http
