#pragma once
// A directory under $TMPDIR for one test, removed with everything in it when the test ends.
#include <filesystem>
#include <fstream>
#include <stdlib.h>
#include <string>
#include <string_view>
#include <system_error>

namespace depot::testing {

class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "depot-test-XXXXXX").string();
    path_ = ::mkdtemp(templ.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

  // Writes a file under the directory and returns its path.
  std::filesystem::path write(const std::string& name, std::string_view contents) const {
    auto file = path_ / name;
    std::ofstream(file) << contents;
    return file;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace depot::testing
