#include "messaging/field.h"

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

}  // namespace depot::messaging
