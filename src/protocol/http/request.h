#pragma once
// HTTP/1.1 on a connection's read buffer: an incremental request parser (Boost.Beast's, fed the
// bytes the connection has buffered) and a response writer. No sockets: the handler moves bytes.
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace depot::http {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // the target without its query string, as sent (for messages)
  // The path split at '/' and then percent-decoded, so an encoded "%2F" stays inside its
  // segment; a trailing '/' adds nothing.
  std::vector<std::string> segments;
  std::string query;  // after '?', undecoded; empty when there is none
  std::string body;
  std::string host;           // Host header
  std::string origin;         // Origin header, sent by browsers on cross-site requests
  std::string authorization;  // Authorization header
  bool keep_alive = true;
};

struct Response {
  Response() = default;
  Response(int status_code, std::string json_body)
      : status(status_code), body(std::move(json_body)) {}

  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra ones (Allow, ...)
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

  // Parses from `bytes` and returns how many it consumed; the caller drops those, reads more and
  // calls again with what is buffered. Once done() the request is whole; take() returns it and
  // readies the parser for the next one on the connection. A path with an escaped NUL is a 400.
  std::variant<size_t, ParseError> feed(ByteSpan bytes);
  bool done() const;
  std::variant<Request, ParseError> take();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Limits limits_;
};

std::string_view status_text(int status);

// Splits a request path into percent-decoded segments. nullopt when an escape decodes to NUL.
std::optional<std::vector<std::string>> path_segments(std::string_view path);

// The response's bytes: status line, Content-Type, Content-Length, the extra headers,
// Connection, and the body unless `head` (the answer to a HEAD request).
std::string serialize(const Response& response, bool keep_alive, bool head = false);

}  // namespace depot::http
