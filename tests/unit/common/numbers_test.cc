// Whole-string integer parsing: the whole text or nothing.
#include "common/numbers.h"

#include <cstdint>

#include <gtest/gtest.h>

namespace depot {
namespace {

TEST(ParseInteger, TakesTheWholeTextOrNothing) {
  EXPECT_EQ(parse_integer<int32_t>("42"), 42);
  EXPECT_EQ(parse_integer<int64_t>("-7"), -7);
  EXPECT_EQ(parse_integer<int64_t>("00000000000000000042"), 42);  // segment file names
  EXPECT_EQ(parse_integer<int32_t>("2147483647"), INT32_MAX);
  EXPECT_EQ(parse_integer<int32_t>("2147483648"), std::nullopt);  // out of range
  EXPECT_EQ(parse_integer<uint32_t>("-1"), std::nullopt);         // no sign for unsigned types
  for (const char* bad : {"", " 42", "42 ", "42x", "+42", "4 2", "0x10", "-"})
    EXPECT_EQ(parse_integer<int64_t>(bad), std::nullopt) << '"' << bad << '"';
}

}  // namespace
}  // namespace depot
