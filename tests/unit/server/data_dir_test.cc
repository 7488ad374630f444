#include "server/data_dir.h"

#include <fstream>
#include <string>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "unit/server/test_support.h"

namespace depot::server {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

constexpr uint64_t kNoMinimum = 0;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(ServerDataDirTest, CreatesMissingDirectoryAndWritesPidIntoLockFile) {
  TempDir tmp;
  auto path = tmp.path() / "a" / "b";
  auto dir = DataDir::open(path, kNoMinimum);
  ASSERT_TRUE(dir) << dir.error().message;
  EXPECT_EQ(dir.value().path(), path);
  EXPECT_TRUE(std::filesystem::is_directory(path));
  EXPECT_EQ(read_file(path / DataDir::kLockFileName), std::to_string(::getpid()) + "\n");
  EXPECT_GT(dir.value().free_space(), 0u);
}

TEST(ServerDataDirTest, SecondOpenIsRefusedWithDirectoryAndHolderPid) {
  TempDir tmp;
  auto first = DataDir::open(tmp.path(), kNoMinimum);
  ASSERT_TRUE(first) << first.error().message;

  // flock conflicts between two open file descriptions even within one process.
  auto second = DataDir::open(tmp.path() / ".", kNoMinimum);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, errc::data_dir_locked);
  EXPECT_EQ(exit_code_for(second.error()), 1);
  EXPECT_THAT(second.error().message, HasSubstr(tmp.path().string()));
  EXPECT_THAT(second.error().message, HasSubstr("pid " + std::to_string(::getpid())));

  first.value().release();
  EXPECT_TRUE(DataDir::open(tmp.path(), kNoMinimum));
}

TEST(ServerDataDirTest, MovedFromDirectoryKeepsTheLock) {
  TempDir tmp;
  auto first = DataDir::open(tmp.path(), kNoMinimum);
  ASSERT_TRUE(first);
  DataDir moved = std::move(first).value();
  EXPECT_FALSE(DataDir::open(tmp.path(), kNoMinimum));
  moved.release();
  EXPECT_TRUE(DataDir::open(tmp.path(), kNoMinimum));
}

TEST(ServerDataDirTest, PathUnderARegularFileIsUnusable) {
  // Tests run as root, so permissions cannot make a directory unwritable; a file in the path can.
  TempDir tmp;
  auto file = tmp.write("plain-file", "x");
  auto dir = DataDir::open(file / "data", kNoMinimum);
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().code, errc::data_dir_unusable);
  EXPECT_THAT(dir.error().message, HasSubstr((file / "data").string()));
  EXPECT_THAT(dir.error().message, HasSubstr("Not a directory"));
  EXPECT_THAT(dir.error().message, HasSubstr("--data-dir"));
}

TEST(ServerDataDirTest, RegularFileIsUnusable) {
  TempDir tmp;
  auto file = tmp.write("plain-file", "x");
  auto dir = DataDir::open(file, kNoMinimum);
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().code, errc::data_dir_unusable);
  EXPECT_THAT(dir.error().message, HasSubstr("not a directory"));
}

TEST(ServerDataDirTest, TooLittleFreeSpaceIsRefused) {
  TempDir tmp;
  auto dir = DataDir::open(tmp.path(), 1ull << 60);
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().code, errc::low_disk_space);
  EXPECT_THAT(dir.error().message, HasSubstr(tmp.path().string()));
  EXPECT_THAT(dir.error().message, HasSubstr("required"));
  EXPECT_THAT(dir.error().message, HasSubstr("--min-free-space"));
}

}  // namespace
}  // namespace depot::server
