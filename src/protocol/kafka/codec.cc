#include "protocol/kafka/codec.h"

#include <stdexcept>

namespace depot::kafka {

int64_t Reader::length(bool short_form) {
  if (flexible_) {
    const uint64_t raw = in_.read_uvarint(5);
    if (!in_.ok() || raw > 0x7fffffffULL) {
      in_.fail();
      return -1;
    }
    return static_cast<int64_t>(raw) - 1;
  }
  const int64_t n = short_form ? in_.read_be<int16_t>() : in_.read_be<int32_t>();
  if (n < -1) in_.fail();
  return n;
}

void Reader::uuid(Uuid& v) {
  ByteSpan raw = in_.read_bytes(v.size());
  if (raw.size() == v.size()) std::memcpy(v.data(), raw.data(), v.size());
}

void Reader::nullable_string(std::optional<std::string>& s) {
  const int64_t n = length(true);
  s.reset();
  if (n < 0 || !ok()) return;
  ByteSpan raw = in_.read_bytes(static_cast<size_t>(n));
  if (ok()) s.emplace(as_chars(raw));
}

void Reader::string(std::string& s) {
  std::optional<std::string> read;
  nullable_string(read);
  if (!read) {
    fail();
    return;
  }
  s = std::move(*read);
}

void Reader::classic_nullable_string(std::optional<std::string>& s) {
  const int16_t n = in_.read_be<int16_t>();
  s.reset();
  if (n < -1) in_.fail();
  if (n < 0 || !ok()) return;
  ByteSpan raw = in_.read_bytes(static_cast<size_t>(n));
  if (ok()) s.emplace(as_chars(raw));
}

void Reader::nullable_bytes(std::optional<ByteSpan>& b) {
  const int64_t n = length(false);
  b.reset();
  if (n < 0 || !ok()) return;
  ByteSpan raw = in_.read_bytes(static_cast<size_t>(n));
  if (ok()) b = raw;
}

void Reader::nullable_bytes(std::optional<Bytes>& b) {
  std::optional<ByteSpan> view;
  nullable_bytes(view);
  b.reset();
  if (view) b.emplace(view->begin(), view->end());
}

void Reader::bytes(Bytes& b) {
  std::optional<Bytes> read;
  nullable_bytes(read);
  if (!read) {
    fail();
    return;
  }
  b = std::move(*read);
}

void Reader::tagged_fields() {
  if (!flexible_) return;
  const uint64_t count = in_.read_uvarint(5);
  for (uint64_t i = 0; i < count && in_.ok(); ++i) {
    (void)in_.read_uvarint(5);  // tag
    const uint64_t size = in_.read_uvarint(5);
    if (size > in_.remaining()) {
      in_.fail();
      return;
    }
    (void)in_.read_bytes(static_cast<size_t>(size));
  }
}

void Writer::length(int64_t n, bool short_form) {
  if (flexible_) {
    w_.write_uvarint(static_cast<uint64_t>(n + 1));
  } else if (short_form) {
    w_.write_be<int16_t>(static_cast<int16_t>(n));
  } else {
    w_.write_be<int32_t>(static_cast<int32_t>(n));
  }
}

void Writer::uuid(const Uuid& v) {
  w_.write_bytes(ByteSpan(reinterpret_cast<const std::byte*>(v.data()), v.size()));
}

void Writer::string(const std::string& s) {
  length(static_cast<int64_t>(s.size()), true);
  w_.write_bytes(as_bytes(s));
}

void Writer::nullable_string(const std::optional<std::string>& s) {
  if (!s) {
    length(-1, true);
    return;
  }
  string(*s);
}

void Writer::classic_nullable_string(const std::optional<std::string>& s) {
  if (!s) {
    w_.write_be<int16_t>(-1);
    return;
  }
  w_.write_be<int16_t>(static_cast<int16_t>(s->size()));
  w_.write_bytes(as_bytes(*s));
}

void Writer::bytes(ByteSpan b) {
  length(static_cast<int64_t>(b.size()), false);
  w_.write_bytes(b);
}

void Writer::nullable_bytes(const std::optional<Bytes>& b) {
  nullable_bytes(b ? std::optional<ByteSpan>(*b) : std::nullopt);
}

void Writer::nullable_bytes(const std::optional<ByteSpan>& b) {
  if (!b) {
    length(-1, false);
    return;
  }
  bytes(*b);
}

void Writer::records(std::optional<Bytes>& b, FileRange& file) {
  if (file.size > 0) {
    if (splices_ == nullptr)
      throw std::logic_error("a record set in a file needs a spliced encode");
    length(static_cast<int64_t>(file.size), false);
    splices_->push_back({w_.size(), {}, std::move(file)});
    file = {};
    return;
  }
  // Below this a copy costs less than a buffer of its own in the gathered write.
  constexpr size_t kSpliceMin = 4096;
  if (!b || splices_ == nullptr || b->size() < kSpliceMin) {
    nullable_bytes(b);
    return;
  }
  length(static_cast<int64_t>(b->size()), false);
  splices_->push_back({w_.size(), std::move(*b), {}});
  b->clear();
}

}  // namespace depot::kafka
