#pragma once
// Faktory's wire framing. Requests are text lines, "VERB[ payload]" ended by "\r\n" or a bare
// "\n"; replies are the Redis RESP subset Faktory uses. Pure functions over buffers: the
// connection handler owns the socket and the read buffer.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "protocol/faktory/errors.h"

namespace depot::faktory {

// A job may be up to 1 MiB of JSON; the verb, a space and some slack ride on top of that.
constexpr std::size_t kDefaultMaxLineBytes = (std::size_t{1} << 20) + 4096;

// One request line. The views point into the buffer given to next_line().
struct Line {
  std::string_view verb;     // text before the first space (the whole line when it has none)
  std::string_view payload;  // text after the first space; empty when there is none
  std::size_t consumed = 0;  // bytes to drop from the buffer, terminator included
};

// The first complete line of `buffer`; nullopt while no terminator has arrived. Fails (with the
// error to send before closing) when the line, not counting its terminator, is longer than
// `max_line_bytes`, whether or not its end has arrived.
ParseResult<std::optional<Line>> next_line(std::string_view buffer,
                                           std::size_t max_line_bytes = kDefaultMaxLineBytes);
inline ParseResult<std::optional<Line>> next_line(
    ByteSpan buffer, std::size_t max_line_bytes = kDefaultMaxLineBytes) {
  return next_line(as_chars(buffer), max_line_bytes);
}

// RESP replies, appended to `out`. A simple string or an error is a single line, so CR and LF in
// its text are replaced by spaces (an error message may quote client input).
void append_simple(std::string& out, std::string_view text);  // "+text\r\n"
void append_ok(std::string& out);                             // "+OK\r\n"
void append_bulk(std::string& out, std::string_view data);    // "$<len>\r\n<data>\r\n"
void append_null(std::string& out);                           // "$-1\r\n"
void append_error(std::string& out, const Error& error);      // "-<code> <message>\r\n"

// The same as whole replies.
std::string simple_reply(std::string_view text);
std::string bulk_reply(std::string_view data);
std::string null_reply();
std::string error_reply(const Error& error);

}  // namespace depot::faktory
