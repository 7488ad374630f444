#include "protocol/faktory/json_read.h"

#include <fmt/format.h>

namespace depot::faktory::json {
namespace {

using boost::outcome_v2::success;

od::parser& thread_parser() {
  thread_local od::parser parser;
  return parser;
}

std::string_view type_name(od::json_type type) {
  switch (type) {
    case od::json_type::array:
      return "array";
    case od::json_type::object:
      return "object";
    case od::json_type::number:
      return "number";
    case od::json_type::string:
      return "string";
    case od::json_type::boolean:
      return "boolean";
    case od::json_type::null:
      return "null";
  }
  return "value";
}

Problem wrong_type(std::string_view field, std::string_view wanted, od::json_type got) {
  return {fmt::format("{} must be {}, not {}", field, wanted, type_name(got))};
}

bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Consumes a value whose first character says it is null, checking it really is "null".
Read<void> read_null(od::value& value) {
  bool is_null = false;
  if (auto e = value.is_null().get(is_null)) return syntax_error(e);
  if (!is_null) return syntax_error(simdjson::INCORRECT_TYPE);
  return success();
}

}  // namespace

Document::Document(std::string_view text) : text_(text) {
  error_ = thread_parser().iterate(text_).get(doc_);
}

Read<od::object> Document::root_object() {
  if (error_) return syntax_error(error_);
  od::json_type type;
  if (auto e = doc_.type().get(type)) return syntax_error(e);
  if (type != od::json_type::object) {
    return Problem{fmt::format("expected an object, not {}", type_name(type))};
  }
  od::object object;
  if (auto e = doc_.get_object().get(object)) return syntax_error(e);
  return object;
}

Read<od::array> Document::root_array() {
  if (error_) return syntax_error(error_);
  od::json_type type;
  if (auto e = doc_.type().get(type)) return syntax_error(e);
  if (type != od::json_type::array) {
    return Problem{fmt::format("expected an array, not {}", type_name(type))};
  }
  od::array array;
  if (auto e = doc_.get_array().get(array)) return syntax_error(e);
  return array;
}

Read<void> Document::expect_end() {
  // current_location() is out of bounds exactly when every token has been consumed.
  if (doc_.current_location().error() != simdjson::OUT_OF_BOUNDS) {
    return Problem{"unexpected text after the JSON value"};
  }
  return success();
}

const char* Document::position() {
  const char* at = nullptr;
  if (doc_.current_location().get(at)) return nullptr;
  return at;
}

Problem syntax_error(simdjson::error_code error) {
  // INCORRECT_TYPE after the type was checked means a malformed literal such as "tru".
  if (error == simdjson::INCORRECT_TYPE) return {"malformed value"};
  return {simdjson::error_message(error)};
}

bool key_is(std::string_view key, std::string_view name) {
  if (key.size() != name.size()) return false;
  for (std::size_t i = 0; i < key.size(); ++i) {
    char a = key[i];
    char b = name[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

Read<std::string> read_string(od::value value, std::string_view field) {
  od::json_type type;
  if (auto e = value.type().get(type)) return syntax_error(e);
  if (type == od::json_type::null) {
    auto null = read_null(value);
    if (!null) return null.error();
    return std::string();
  }
  if (type != od::json_type::string) return wrong_type(field, "a string", type);
  std::string_view text;
  if (auto e = value.get_string().get(text)) return syntax_error(e);
  return std::string(text);
}

Read<std::optional<int64_t>> read_int(od::value value, std::string_view field, int64_t min,
                                      int64_t max) {
  od::json_type type;
  if (auto e = value.type().get(type)) return syntax_error(e);
  if (type == od::json_type::null) {
    auto null = read_null(value);
    if (!null) return null.error();
    return std::optional<int64_t>();
  }
  if (type != od::json_type::number) return wrong_type(field, "an integer", type);
  int64_t number = 0;
  if (value.get_int64().get(number)) {
    // A well-formed number that is not an int64 (1.5, 1e3, 2^63) is the client's mistake; a
    // malformed one is a syntax error. get_int64 does not consume the value when it fails.
    double ignored = 0;
    if (auto e = value.get_double().get(ignored)) return syntax_error(e);
    return Problem{fmt::format("{} must be an integer", field)};
  }
  if (number < min || number > max) {
    return Problem{fmt::format("{} must be between {} and {}", field, min, max)};
  }
  return std::optional<int64_t>(number);
}

Read<std::vector<std::string>> read_strings(od::value value, std::string_view field) {
  od::json_type type;
  if (auto e = value.type().get(type)) return syntax_error(e);
  std::vector<std::string> out;
  if (type == od::json_type::null) {
    auto null = read_null(value);
    if (!null) return null.error();
    return out;
  }
  if (type != od::json_type::array) return wrong_type(field, "an array of strings", type);
  od::array array;
  if (auto e = value.get_array().get(array)) return syntax_error(e);
  for (auto element : array) {
    od::value item;
    if (auto e = element.get(item)) return syntax_error(e);
    auto text = read_string(item, fmt::format("{} items", field));
    if (!text) return text.error();
    out.push_back(std::move(text).value());
  }
  return out;
}

Read<void> for_each_field(
    od::object object,
    const std::function<Read<void>(std::string_view key, od::value value)>& visit) {
  for (auto member : object) {
    od::field field;
    if (auto e = std::move(member).get(field)) return syntax_error(e);
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return syntax_error(e);
    auto visited = visit(key, field.value());
    if (!visited) return visited;
  }
  return success();
}

Read<void> validate(od::value value, int depth) {
  if (depth > kMaxDepth) return Problem{fmt::format("nested deeper than {} levels", kMaxDepth)};
  od::json_type type;
  if (auto e = value.type().get(type)) return syntax_error(e);
  switch (type) {
    case od::json_type::array: {
      od::array array;
      if (auto e = value.get_array().get(array)) return syntax_error(e);
      for (auto element : array) {
        od::value item;
        if (auto e = element.get(item)) return syntax_error(e);
        auto valid = validate(item, depth + 1);
        if (!valid) return valid;
      }
      return success();
    }
    case od::json_type::object: {
      od::object object;
      if (auto e = value.get_object().get(object)) return syntax_error(e);
      return for_each_field(object, [depth](std::string_view, od::value member) {
        return validate(member, depth + 1);
      });
    }
    case od::json_type::number: {
      double number = 0;
      if (auto e = value.get_double().get(number)) return syntax_error(e);
      return success();
    }
    case od::json_type::string: {
      std::string_view text;
      if (auto e = value.get_string().get(text)) return syntax_error(e);
      return success();
    }
    case od::json_type::boolean: {
      bool flag = false;
      if (auto e = value.get_bool().get(flag)) return syntax_error(e);
      return success();
    }
    case od::json_type::null:
      return read_null(value);
  }
  return Problem{"unknown JSON value"};
}

Read<std::string_view> raw_text(od::value value, Document& doc, int depth) {
  const std::string_view token = value.raw_json_token();
  const char* begin = token.data();
  auto valid = validate(value, depth);
  if (!valid) return valid.error();
  return text_since(begin, doc);
}

Read<std::string_view> text_since(const char* begin, Document& doc) {
  // The value ends where the next token starts, less the whitespace between them. The values
  // captured here sit inside an object, so a next token ('}' at least) exists.
  const char* end = doc.position();
  if (end == nullptr || end < begin) return Problem{"truncated JSON"};
  std::string_view text(begin, static_cast<std::size_t>(end - begin));
  while (!text.empty() && is_json_space(text.back()))
    text.remove_suffix(1);
  return text;
}

}  // namespace depot::faktory::json
