#pragma once
// Reading Faktory's JSON payloads with simdjson's on-demand API: typed field readers that name the
// field when its type is wrong (never a crash), a full validation walk for values we keep as raw
// text (args, custom) or skip, and the exact source text of such values. Go's encoding/json, which
// Faktory uses, is the model: null leaves a field at its zero value, unknown keys are ignored and
// keys match case-insensitively.
#include <cstdint>
#include <functional>
#include <optional>
#include <simdjson.h>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/outcome/std_result.hpp>

namespace depot::faktory::json {

namespace od = simdjson::ondemand;

// What is wrong with a document ("jid must be a string"); callers prefix their command's text.
struct Problem {
  std::string text;
};
template <class T>
using Read = boost::outcome_v2::std_checked<T, Problem>;

// Deeper nesting than this is refused (Go allows 10000; simdjson's default is 1024).
constexpr int kMaxDepth = 1000;

// A parsed document: owns the padded copy of the text the document points into. One per thread
// at a time (documents share a thread-local parser, which keeps its buffers between commands).
class Document {
 public:
  explicit Document(std::string_view text);
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

  // The root as an object or an array (an error describes why not).
  Read<od::object> root_object();
  Read<od::array> root_array();
  // After the root has been read: nothing but whitespace may follow it.
  Read<void> expect_end();
  // Where the next token starts: the end of a value just read, plus trailing whitespace.
  const char* position();

 private:
  simdjson::padded_string text_;
  od::document doc_;
  simdjson::error_code error_ = simdjson::SUCCESS;
};

// simdjson's description of a syntax error.
Problem syntax_error(simdjson::error_code error);

// Object keys compare like Go's struct fields: ASCII case-insensitively.
bool key_is(std::string_view key, std::string_view name);

// Typed readers. A JSON null reads as the zero value (nullopt, "" or {}), as in Go.
Read<std::string> read_string(od::value value, std::string_view field);
Read<std::optional<int64_t>> read_int(od::value value, std::string_view field, int64_t min,
                                      int64_t max);
Read<std::vector<std::string>> read_strings(od::value value, std::string_view field);

// Moves a successful read into `target`, or passes its problem on.
template <class T, class U>
Read<void> assign(Read<T> result, U& target) {
  if (!result) return result.error();
  target = std::move(result).value();
  return boost::outcome_v2::success();
}

// Calls `visit` with each member of `object` in order; stops at the first error it returns.
Read<void> for_each_field(
    od::object object,
    const std::function<Read<void>(std::string_view key, od::value value)>& visit);

// Checks `value` and everything inside it is well-formed JSON.
Read<void> validate(od::value value, int depth);
// Validates `value` and returns its source text, exactly as the client wrote it.
Read<std::string_view> raw_text(od::value value, Document& doc, int depth);
// The source text of a value that starts at `begin` and has just been read completely.
Read<std::string_view> text_since(const char* begin, Document& doc);

}  // namespace depot::faktory::json
