// RFC 3339 timestamps as Go's time.RFC3339Nano parses and formats them.
#include "common/rfc3339.h"

#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

namespace depot {
namespace {

constexpr int64_t kMay1Noon = 1714564800000000000;  // 2024-05-01T12:00:00Z (Python datetime)
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

TEST(Rfc3339, ParsesUtcAndFractions) {
  EXPECT_EQ(parse_rfc3339("2024-05-01T12:00:00Z"), kMay1Noon);
  EXPECT_EQ(parse_rfc3339("2024-05-01T12:00:00.123456789Z"), kMay1Noon + 123456789);
  EXPECT_EQ(parse_rfc3339("2024-05-01T12:00:00.5Z"), kMay1Noon + 500000000);
  EXPECT_EQ(parse_rfc3339("2024-05-01T12:00:00.000001Z"), kMay1Noon + 1000);
  // Go drops digits past the ninth.
  EXPECT_EQ(parse_rfc3339("2024-05-01T12:00:00.1234567899Z"), kMay1Noon + 123456789);
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339("2000-02-29T00:00:00Z"), 951782400000000000);
  EXPECT_EQ(parse_rfc3339("1969-07-20T20:17:40Z"), -14182940000000000);
  EXPECT_EQ(parse_rfc3339("1969-12-31T23:59:59.999999999Z"), -1);
}

TEST(Rfc3339, ParsesOffsetsToUtc) {
  EXPECT_EQ(parse_rfc3339("2024-05-01T14:00:00+02:00"), kMay1Noon);
  EXPECT_EQ(parse_rfc3339("2024-05-01T07:30:00.25-04:30"), kMay1Noon + 250000000);
  EXPECT_EQ(parse_rfc3339("2024-05-02T11:59:00+23:59"), kMay1Noon);
  EXPECT_EQ(parse_rfc3339("2024-05-01T12:00:00+00:00"), kMay1Noon);
  EXPECT_EQ(parse_rfc3339("2024-05-01T12:00:00-00:00"), kMay1Noon);
}

TEST(Rfc3339, SaturatesOutsideInt64Nanoseconds) {
  EXPECT_EQ(parse_rfc3339("2262-04-11T23:47:16.854775807Z"), kMax);
  EXPECT_EQ(parse_rfc3339("2262-04-11T23:47:16.854775808Z"), kMax);
  EXPECT_EQ(parse_rfc3339("9999-12-31T23:59:59.999999999Z"), kMax);
  EXPECT_EQ(parse_rfc3339("1677-09-21T00:12:43.145224192Z"), kMin);
  EXPECT_EQ(parse_rfc3339("0000-01-01T00:00:00Z"), kMin);
}

TEST(Rfc3339, RejectsWhatGoRejects) {
  for (const char* bad : {"",
                          "2024-05-01",
                          "2024-05-01T12:00:00",
                          "2024-05-01 12:00:00Z",
                          "2024-05-01t12:00:00Z",
                          "2024-05-01T12:00:00z",
                          "2024-5-01T12:00:00Z",
                          "2024-05-01T24:00:00Z",
                          "2024-05-01T12:60:00Z",
                          "2024-05-01T12:00:60Z",
                          "2024-13-01T12:00:00Z",
                          "2024-00-01T12:00:00Z",
                          "2024-04-31T12:00:00Z",
                          "2023-02-29T12:00:00Z",
                          "1900-02-29T12:00:00Z",
                          "2024-05-01T12:00:00.Z",
                          "2024-05-01T12:00:00+0200",
                          "2024-05-01T12:00:00+24:00",
                          "2024-05-01T12:00:00+02:60",
                          "2024-05-01T12:00:00Z ",
                          " 2024-05-01T12:00:00Z",
                          "2024-05-01T12:00:00.1.2Z",
                          "+024-05-01T12:00:00Z",
                          "2024-05-01T12:00:00UTC"}) {
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
  }
}

TEST(Rfc3339, FormatsLikeGoRfc3339Nano) {
  EXPECT_EQ(format_rfc3339(kMay1Noon), "2024-05-01T12:00:00Z");
  EXPECT_EQ(format_rfc3339(kMay1Noon + 123456789), "2024-05-01T12:00:00.123456789Z");
  EXPECT_EQ(format_rfc3339(kMay1Noon + 120000000), "2024-05-01T12:00:00.12Z");
  EXPECT_EQ(format_rfc3339(kMay1Noon + 1000), "2024-05-01T12:00:00.000001Z");
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
  EXPECT_EQ(format_rfc3339(-14182940000000000), "1969-07-20T20:17:40Z");
  EXPECT_EQ(format_rfc3339(951782400000000000), "2000-02-29T00:00:00Z");
  EXPECT_EQ(format_rfc3339(kMax), "2262-04-11T23:47:16.854775807Z");
  EXPECT_EQ(format_rfc3339(kMin), "1677-09-21T00:12:43.145224192Z");
}

TEST(Rfc3339, RoundTripsEveryFormattedValue) {
  for (int64_t nanos : {int64_t{0}, int64_t{1}, int64_t{-1}, kMay1Noon, kMax, kMin,
                        int64_t{-86400} * 1000000000 - 1, int64_t{4102444800} * 1000000000 + 7}) {
    EXPECT_EQ(parse_rfc3339(format_rfc3339(nanos)), nanos) << nanos;
  }
  // And a sweep across leap years and month ends.
  for (int64_t nanos = kMin; nanos < kMax - 7919LL * 86400 * 1000000000;
       nanos += 7919LL * 86400 * 1000000000 + 123456789) {
    ASSERT_EQ(parse_rfc3339(format_rfc3339(nanos)), nanos) << format_rfc3339(nanos);
  }
}

}  // namespace
}  // namespace depot
