#include "server/units.h"

#include <gtest/gtest.h>

namespace depot::server {
namespace {

using std::chrono::milliseconds;

TEST(ServerUnitsTest, Durations) {
  EXPECT_EQ(parse_duration("250ms").value(), milliseconds(250));
  EXPECT_EQ(parse_duration("10s").value(), milliseconds(10'000));
  EXPECT_EQ(parse_duration("5m").value(), milliseconds(300'000));
  EXPECT_EQ(parse_duration("1h").value(), milliseconds(3'600'000));
  EXPECT_EQ(parse_duration("0s").value(), milliseconds(0));
  EXPECT_FALSE(parse_duration("10"));  // a unit is required
  EXPECT_FALSE(parse_duration("1.5s"));
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration("-1s"));
  EXPECT_FALSE(parse_duration("10 s"));
  EXPECT_FALSE(parse_duration("10d"));

  EXPECT_EQ(format_duration(milliseconds(10'000)), "10s");
  EXPECT_EQ(format_duration(milliseconds(300'000)), "5m");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(milliseconds(0)), "0ms");
}

TEST(ServerUnitsTest, Sizes) {
  EXPECT_EQ(parse_size("1048576").value(), 1u << 20);
  EXPECT_EQ(parse_size("512KiB").value(), 512u << 10);
  EXPECT_EQ(parse_size("64MiB").value(), 64u << 20);
  EXPECT_EQ(parse_size("64M").value(), 64u << 20);
  EXPECT_EQ(parse_size("2GiB").value(), 2ull << 30);
  EXPECT_EQ(parse_size("0B").value(), 0u);
  EXPECT_FALSE(parse_size("64mb"));
  EXPECT_FALSE(parse_size("MiB"));
  EXPECT_FALSE(parse_size("99999999999TiB"));  // overflows 64 bits

  EXPECT_EQ(format_size(64u << 20), "64MiB");
  EXPECT_EQ(format_size(1000), "1000B");
  EXPECT_EQ(describe_size(1536u << 10), "1.5MiB");
  EXPECT_EQ(describe_size(100), "100B");
}

TEST(ServerUnitsTest, LogLevels) {
  EXPECT_EQ(parse_log_level("trace").value(), spdlog::level::trace);
  EXPECT_EQ(parse_log_level("warning").value(), spdlog::level::warn);
  EXPECT_EQ(parse_log_level("error").value(), spdlog::level::err);
  EXPECT_EQ(parse_log_level("off").value(), spdlog::level::off);
  EXPECT_FALSE(parse_log_level("INFO"));
  EXPECT_FALSE(parse_log_level("verbose"));
  EXPECT_EQ(log_level_name(spdlog::level::err), "error");
}

}  // namespace
}  // namespace depot::server
