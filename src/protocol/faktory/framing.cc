#include "protocol/faktory/framing.h"

#include <iterator>

#include <fmt/format.h>

namespace depot::faktory {

ParseResult<std::optional<Line>> next_line(std::string_view buffer, std::size_t max_line_bytes) {
  std::size_t newline = buffer.find('\n');
  if (newline == std::string_view::npos) {
    // A lone '\r' at the end may still become the start of "\r\n", so it does not count yet.
    if (buffer.size() > max_line_bytes + 1 ||
        (buffer.size() == max_line_bytes + 1 && buffer.back() != '\r')) {
      return error(fmt::format("{} (max {} bytes)", text::kLineTooLong, max_line_bytes));
    }
    return std::optional<Line>{};
  }
  std::string_view text = buffer.substr(0, newline);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  if (text.size() > max_line_bytes) {
    return error(fmt::format("{} (max {} bytes)", text::kLineTooLong, max_line_bytes));
  }
  Line line;
  line.consumed = newline + 1;
  std::size_t space = text.find(' ');
  if (space == std::string_view::npos) {
    line.verb = text;
  } else {
    line.verb = text.substr(0, space);
    line.payload = text.substr(space + 1);
  }
  return std::optional<Line>{line};
}

namespace {

// Appends `text` with CR and LF made spaces, so a reply line cannot be split or forged.
void append_one_line(std::string& out, std::string_view text) {
  std::size_t at = out.size();
  out.append(text);
  for (std::size_t i = at; i < out.size(); ++i) {
    if (out[i] == '\r' || out[i] == '\n') out[i] = ' ';
  }
}

}  // namespace

void append_simple(std::string& out, std::string_view text) {
  out.push_back('+');
  append_one_line(out, text);
  out.append("\r\n");
}

void append_ok(std::string& out) {
  out.append("+OK\r\n");
}

void append_bulk(std::string& out, std::string_view data) {
  fmt::format_to(std::back_inserter(out), "${}\r\n", data.size());
  out.append(data);
  out.append("\r\n");
}

void append_null(std::string& out) {
  out.append("$-1\r\n");
}

void append_error(std::string& out, const Error& error) {
  out.push_back('-');
  // The code is one word: clients split it from the message at the first space.
  std::size_t at = out.size();
  append_one_line(out, error.code.empty() ? std::string_view("ERR") : error.code);
  for (std::size_t i = at; i < out.size(); ++i) {
    if (out[i] == ' ') out[i] = '_';
  }
  out.push_back(' ');
  append_one_line(out, error.message);
  out.append("\r\n");
}

std::string simple_reply(std::string_view text) {
  std::string out;
  append_simple(out, text);
  return out;
}

std::string bulk_reply(std::string_view data) {
  std::string out;
  append_bulk(out, data);
  return out;
}

std::string null_reply() {
  return "$-1\r\n";
}

std::string error_reply(const Error& error) {
  std::string out;
  append_error(out, error);
  return out;
}

}  // namespace depot::faktory
