#include "messaging/field.h"

#include <algorithm>
#include <bit>
#include <type_traits>

namespace depot::messaging {

bool FieldValue::operator==(const FieldValue& other) const {
  return value == other.value;
}

std::optional<int64_t> FieldValue::as_integer() const {
  return std::visit(
      [](const auto& v) -> std::optional<int64_t> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          return static_cast<int64_t>(v);
        } else {
          return std::nullopt;
        }
      },
      value);
}

const FieldValue* find_field(const FieldTable& table, std::string_view name) {
  for (const FieldEntry& entry : table) {
    if (entry.name == name) return &entry.value;
  }
  return nullptr;
}

namespace {

bool read_value(ByteReader& in, FieldValue& out, int depth);

bool read_array(ByteReader& in, FieldArray& out, int depth) {
  const auto size = in.read_be<uint32_t>();
  ByteReader body(in.read_bytes(size));
  if (!in.ok()) return false;
  while (!body.at_end()) {
    FieldValue value;
    if (!read_value(body, value, depth)) {
      in.fail();
      return false;
    }
    out.push_back(std::move(value));
  }
  return true;
}

std::string read_long_string(ByteReader& in) {
  const auto size = in.read_be<uint32_t>();
  return std::string(as_chars(in.read_bytes(size)));
}

bool read_value(ByteReader& in, FieldValue& out, int depth) {
  if (depth > kMaxFieldDepth) {
    in.fail();
    return false;
  }
  const auto tag = static_cast<char>(in.read_be<uint8_t>());
  if (!in.ok()) return false;
  switch (tag) {
    case 't':
      out.value = in.read_be<uint8_t>() != 0;
      break;
    case 'b':
      out.value = in.read_be<int8_t>();
      break;
    case 'B':
      out.value = in.read_be<uint8_t>();
      break;
    case 's':
      out.value = in.read_be<int16_t>();
      break;
    case 'u':
      out.value = in.read_be<uint16_t>();
      break;
    case 'I':
      out.value = in.read_be<int32_t>();
      break;
    case 'i':
      out.value = in.read_be<uint32_t>();
      break;
    case 'l':
    case 'L':
      out.value = in.read_be<int64_t>();
      break;
    case 'f':
      out.value = std::bit_cast<float>(in.read_be<uint32_t>());
      break;
    case 'd':
      out.value = std::bit_cast<double>(in.read_be<uint64_t>());
      break;
    case 'D': {
      Decimal d;
      d.scale = in.read_be<uint8_t>();
      d.value = in.read_be<uint32_t>();
      out.value = d;
      break;
    }
    case 'S':
      out.value = read_long_string(in);
      break;
    case 'x':
      out.value = ByteArray{read_long_string(in)};
      break;
    case 'T':
      out.value = Timestamp{in.read_be<uint64_t>()};
      break;
    case 'F': {
      FieldTable table;
      if (!read_table(in, table, depth + 1)) return false;
      out.value = std::move(table);
      break;
    }
    case 'A': {
      FieldArray array;
      if (!read_array(in, array, depth + 1)) return false;
      out.value = std::move(array);
      break;
    }
    case 'V':
      out.value = Void{};
      break;
    default:
      in.fail();
      return false;
  }
  return in.ok();
}

bool read_entries(ByteReader& body, FieldTable& out, int depth) {
  while (!body.at_end()) {
    FieldEntry entry;
    const auto name_size = body.read_be<uint8_t>();
    entry.name = std::string(as_chars(body.read_bytes(name_size)));
    if (!body.ok() || !read_value(body, entry.value, depth)) return false;
    out.push_back(std::move(entry));
  }
  return true;
}

void write_long_string(ByteWriter& out, std::string_view s) {
  out.write_be<uint32_t>(static_cast<uint32_t>(s.size()));
  out.write_bytes(as_bytes(s));
}

void write_value(ByteWriter& out, const FieldValue& v);

struct ValueWriter {
  ByteWriter& out;
  void operator()(const Void&) const { out.write_be<uint8_t>('V'); }
  void operator()(bool b) const {
    out.write_be<uint8_t>('t');
    out.write_be<uint8_t>(b ? 1 : 0);
  }
  void operator()(int8_t v) const {
    out.write_be<uint8_t>('b');
    out.write_be<int8_t>(v);
  }
  void operator()(uint8_t v) const {
    out.write_be<uint8_t>('B');
    out.write_be<uint8_t>(v);
  }
  void operator()(int16_t v) const {
    out.write_be<uint8_t>('s');
    out.write_be<int16_t>(v);
  }
  void operator()(uint16_t v) const {
    out.write_be<uint8_t>('u');
    out.write_be<uint16_t>(v);
  }
  void operator()(int32_t v) const {
    out.write_be<uint8_t>('I');
    out.write_be<int32_t>(v);
  }
  void operator()(uint32_t v) const {
    out.write_be<uint8_t>('i');
    out.write_be<uint32_t>(v);
  }
  void operator()(int64_t v) const {
    out.write_be<uint8_t>('l');
    out.write_be<int64_t>(v);
  }
  void operator()(float v) const {
    out.write_be<uint8_t>('f');
    out.write_be<uint32_t>(std::bit_cast<uint32_t>(v));
  }
  void operator()(double v) const {
    out.write_be<uint8_t>('d');
    out.write_be<uint64_t>(std::bit_cast<uint64_t>(v));
  }
  void operator()(const Decimal& d) const {
    out.write_be<uint8_t>('D');
    out.write_be<uint8_t>(d.scale);
    out.write_be<uint32_t>(d.value);
  }
  void operator()(const std::string& s) const {
    out.write_be<uint8_t>('S');
    write_long_string(out, s);
  }
  void operator()(const ByteArray& b) const {
    out.write_be<uint8_t>('x');
    write_long_string(out, b.bytes);
  }
  void operator()(const Timestamp& t) const {
    out.write_be<uint8_t>('T');
    out.write_be<uint64_t>(t.seconds);
  }
  void operator()(const FieldTable& t) const {
    out.write_be<uint8_t>('F');
    write_table(out, t);
  }
  void operator()(const FieldArray& a) const {
    out.write_be<uint8_t>('A');
    const size_t at = out.size();
    out.write_be<uint32_t>(0);
    for (const FieldValue& v : a)
      write_value(out, v);
    out.patch_be<uint32_t>(at, static_cast<uint32_t>(out.size() - at - 4));
  }
};

void write_value(ByteWriter& out, const FieldValue& v) {
  std::visit(ValueWriter{out}, v.value);
}

}  // namespace

bool read_table(ByteReader& in, FieldTable& out, int depth) {
  const auto size = in.read_be<uint32_t>();
  ByteReader body(in.read_bytes(size));
  if (!in.ok()) return false;
  if (!read_entries(body, out, depth)) {
    in.fail();
    return false;
  }
  return true;
}

bool read_table_body(ByteSpan body, FieldTable& out) {
  ByteReader in(body);
  return read_entries(in, out, 0);
}

void write_table(ByteWriter& out, const FieldTable& table) {
  const size_t at = out.size();
  out.write_be<uint32_t>(0);
  for (const FieldEntry& entry : table) {
    out.write_be<uint8_t>(static_cast<uint8_t>(std::min<size_t>(entry.name.size(), 255)));
    out.write_bytes(as_bytes(std::string_view(entry.name).substr(0, 255)));
    write_value(out, entry.value);
  }
  out.patch_be<uint32_t>(at, static_cast<uint32_t>(out.size() - at - 4));
}

}  // namespace depot::messaging
