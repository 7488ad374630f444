#include "depot/enumerators.h"

namespace depot::enumerate {
namespace {

// A file read forward from a byte offset, one byte at a time through a buffer, so that the
// offset of every record boundary is known exactly.
class ByteReader {
 public:
  ByteReader(const std::filesystem::path& path, int64_t offset)
      : file_(path, std::ios::binary), offset_(offset) {
    if (!file_) throw Error("cannot read " + path.string());
    file_.seekg(offset);
    if (!file_)
      throw Error("cannot seek to byte " + std::to_string(offset) + " of " + path.string());
  }

  // The next byte, or -1 at the end of the file.
  int get() {
    if (pos_ == size_) {
      file_.read(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
      size_ = static_cast<size_t>(file_.gcount());
      pos_ = 0;
      if (size_ == 0) return -1;
    }
    ++offset_;
    return static_cast<unsigned char>(buffer_[pos_++]);
  }
  int peek() {
    if (pos_ == size_) {
      int c = get();
      if (c < 0) return -1;
      --pos_;
      --offset_;
      return c;
    }
    return static_cast<unsigned char>(buffer_[pos_]);
  }
  int64_t offset() const { return offset_; }

 private:
  std::ifstream file_;
  std::array<char, 64 * 1024> buffer_{};
  size_t pos_ = 0;
  size_t size_ = 0;
  int64_t offset_;
};

int64_t offset_from(const json& cursor) {
  return cursor.is_number_integer() ? cursor.get<int64_t>() : 0;
}

// One CSV record from the reader; nullopt at the end of the file.
std::optional<CsvRow> read_record(ByteReader& in, char separator, const std::string& path) {
  const int64_t start = in.offset();
  int c = in.get();
  if (c < 0) return std::nullopt;
  CsvRow row(1);
  bool quoted = false;
  bool field_start = true;
  for (;; c = in.get()) {
    if (quoted) {
      if (c < 0) {
        throw Error(path + ": a quoted field opened in the record at byte " +
                    std::to_string(start) + " never closes");
      }
      if (c == '"') {
        if (in.peek() == '"') {
          in.get();
          row.back() += '"';
        } else {
          quoted = false;
        }
      } else {
        row.back() += static_cast<char>(c);
      }
      continue;
    }
    if (c < 0 || c == '\n') break;
    if (c == '\r' && in.peek() == '\n') {
      in.get();
      break;
    }
    if (c == separator) {
      row.emplace_back();
      field_start = true;
      continue;
    }
    if (c == '"' && field_start) {
      quoted = true;
      field_start = false;
      continue;
    }
    field_start = false;
    row.back() += static_cast<char>(c);
  }
  return row;
}

}  // namespace

Enumerator<std::string> lines(const std::filesystem::path& path, const json& cursor) {
  auto in = std::make_shared<ByteReader>(path, offset_from(cursor));
  return Enumerator<std::string>([in]() -> std::optional<Step<std::string>> {
    int c = in->get();
    if (c < 0) return std::nullopt;
    std::string line;
    for (; c >= 0 && c != '\n'; c = in->get())
      line += static_cast<char>(c);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return Step<std::string>{std::move(line), in->offset()};
  });
}

Enumerator<CsvRow> csv_rows(const std::filesystem::path& path, const json& cursor,
                            CsvOptions options) {
  auto in = std::make_shared<ByteReader>(path, offset_from(cursor));
  const std::string name = path.string();
  if (cursor.is_null() && options.header) (void)read_record(*in, options.separator, name);
  return Enumerator<CsvRow>([in, options, name]() -> std::optional<Step<CsvRow>> {
    auto row = read_record(*in, options.separator, name);
    if (!row) return std::nullopt;
    return Step<CsvRow>{std::move(*row), in->offset()};
  });
}

}  // namespace depot::enumerate
