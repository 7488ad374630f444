// Cron schedules: parsing (fields, names, steps, macros, errors) and the next and latest ticks,
// checked against times worked out by hand (weekdays checked with `date -u`).
#include "jobs/cron.h"

#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/rfc3339.h"

namespace depot::jobs {
namespace {

using ::testing::HasSubstr;

constexpr UnixNanos kMinute = 60'000'000'000;

UnixNanos at(std::string_view rfc3339) {
  return parse_rfc3339(rfc3339).value();
}

std::string show(std::optional<UnixNanos> tick) {
  return tick ? format_rfc3339(*tick) : "never";
}

CronSchedule schedule(std::string_view text) {
  auto parsed = CronSchedule::parse(text);
  EXPECT_TRUE(parsed) << parsed.error();
  return parsed ? std::move(parsed).value() : CronSchedule::parse("* * * * *").value();
}

// The first tick strictly after `from`.
std::string next(std::string_view text, std::string_view from) {
  return show(schedule(text).next_after(at(from)));
}

// The last tick at or before `when`.
std::string latest(std::string_view text, std::string_view when) {
  return show(schedule(text).latest_at_or_before(at(when)));
}

std::string parse_error(std::string_view text) {
  auto parsed = CronSchedule::parse(text);
  return parsed ? "parsed" : parsed.error();
}

TEST(CronTest, EveryMinuteIsStrictlyAfterAndAtOrBefore) {
  EXPECT_EQ(next("* * * * *", "2024-05-01T12:00:30Z"), "2024-05-01T12:01:00Z");
  EXPECT_EQ(next("* * * * *", "2024-05-01T12:00:00Z"), "2024-05-01T12:01:00Z");
  EXPECT_EQ(next("* * * * *", "2024-05-01T12:00:59.999999999Z"), "2024-05-01T12:01:00Z");
  EXPECT_EQ(latest("* * * * *", "2024-05-01T12:00:30Z"), "2024-05-01T12:00:00Z");
  EXPECT_EQ(latest("* * * * *", "2024-05-01T12:00:00Z"), "2024-05-01T12:00:00Z");
  EXPECT_EQ(latest("* * * * *", "2024-05-01T11:59:59.999999999Z"), "2024-05-01T11:59:00Z");
  EXPECT_EQ(schedule("* * * * *").text(), "* * * * *");
}

TEST(CronTest, ListsRangesAndSteps) {
  EXPECT_EQ(next("*/15 * * * *", "2024-05-01T12:44:59Z"), "2024-05-01T12:45:00Z");
  EXPECT_EQ(next("*/15 * * * *", "2024-05-01T12:45:00Z"), "2024-05-01T13:00:00Z");
  EXPECT_EQ(next("5-20/5 * * * *", "2024-05-01T12:00:00Z"), "2024-05-01T12:05:00Z");
  EXPECT_EQ(next("5-20/5 * * * *", "2024-05-01T12:20:00Z"), "2024-05-01T13:05:00Z");
  // a/n runs from a to the end of the field.
  EXPECT_EQ(next("10/20 * * * *", "2024-05-01T12:30:00Z"), "2024-05-01T12:50:00Z");
  EXPECT_EQ(next("10/20 * * * *", "2024-05-01T12:50:00Z"), "2024-05-01T13:10:00Z");
  EXPECT_EQ(next("0,30 9-17/4 * * *", "2024-05-01T09:30:00Z"), "2024-05-01T13:00:00Z");
  EXPECT_EQ(next("0,30 9-17/4 * * *", "2024-05-01T17:30:00Z"), "2024-05-02T09:00:00Z");
  EXPECT_EQ(next("0 3 * * *", "2024-05-01T03:00:00Z"), "2024-05-02T03:00:00Z");
  // A step past the field's end leaves only its start.
  EXPECT_EQ(next("7/100 * * * *", "2024-05-01T12:07:00Z"), "2024-05-01T13:07:00Z");
  // Fields may be separated by any run of spaces and tabs.
  EXPECT_EQ(next("  0 \t 3  * * *\t", "2024-05-01T03:00:00Z"), "2024-05-02T03:00:00Z");
}

TEST(CronTest, MonthAndDayNamesInAnyCase) {
  EXPECT_EQ(next("0 0 1 jan,Jul *", "2024-02-01T00:00:00Z"), "2024-07-01T00:00:00Z");
  EXPECT_EQ(next("0 0 1 JUL-aug *", "2024-07-01T00:00:00Z"), "2024-08-01T00:00:00Z");
  // 2024-05-03 is a Friday.
  EXPECT_EQ(next("30 9 * * MON-FRI", "2024-05-03T09:30:00Z"), "2024-05-06T09:30:00Z");
  EXPECT_EQ(next("30 9 * * mon-fri", "2024-05-03T09:29:00Z"), "2024-05-03T09:30:00Z");
  EXPECT_EQ(next("0 0 * * sat,Sun", "2024-05-01T00:00:00Z"), "2024-05-04T00:00:00Z");
}

TEST(CronTest, SevenIsSunday) {
  EXPECT_EQ(next("0 0 * * 7", "2024-05-01T00:00:00Z"), "2024-05-05T00:00:00Z");
  EXPECT_EQ(next("0 0 * * 0", "2024-05-01T00:00:00Z"), "2024-05-05T00:00:00Z");
  EXPECT_EQ(next("0 0 * * 5-7", "2024-05-03T00:00:00Z"), "2024-05-04T00:00:00Z");
  EXPECT_EQ(next("0 0 * * 5-7", "2024-05-04T00:00:00Z"), "2024-05-05T00:00:00Z");
  EXPECT_EQ(next("0 0 * * 5-7", "2024-05-05T00:00:00Z"), "2024-05-10T00:00:00Z");
  EXPECT_EQ(next("0 0 * * */2", "2024-05-01T00:00:00Z"), "2024-05-02T00:00:00Z");  // Thu
  // A range may end on Sunday by name or as 0: FRI-SUN is 5-7.
  EXPECT_EQ(next("0 0 * * fri-sun", "2024-05-04T00:00:00Z"), "2024-05-05T00:00:00Z");
  EXPECT_EQ(next("0 0 * * fri-sun", "2024-05-05T00:00:00Z"), "2024-05-10T00:00:00Z");
  EXPECT_EQ(next("0 0 * * 5-0", "2024-05-05T00:00:00Z"), "2024-05-10T00:00:00Z");
  EXPECT_EQ(next("0 0 * * SUN-SUN", "2024-05-01T00:00:00Z"), "2024-05-05T00:00:00Z");
  EXPECT_EQ(next("0 0 * * SUN-SUN", "2024-05-05T00:00:00Z"), "2024-05-12T00:00:00Z");
}

TEST(CronTest, DayOfMonthOrDayOfWeekWhenBothAreRestricted) {
  // Every 13th and every Friday.
  EXPECT_EQ(next("0 0 13 * FRI", "2024-05-01T00:00:00Z"), "2024-05-03T00:00:00Z");
  EXPECT_EQ(next("0 0 13 * FRI", "2024-05-10T00:00:00Z"), "2024-05-13T00:00:00Z");
  EXPECT_EQ(next("0 0 13 * FRI", "2024-05-13T00:00:00Z"), "2024-05-17T00:00:00Z");
  // "The first Monday" cannot be written this way: days 1-7 and also every Monday.
  EXPECT_EQ(next("0 0 1-7 * MON", "2024-05-07T00:00:00Z"), "2024-05-13T00:00:00Z");
  EXPECT_EQ(next("0 0 1-7 * MON", "2024-05-31T00:00:00Z"), "2024-06-01T00:00:00Z");
  // A field containing * is unrestricted (crontab(5)), so both must match: odd days that are
  // Mondays (May 2024's Mondays are the 6th, 13th, 20th and 27th).
  EXPECT_EQ(next("0 0 */2 * MON", "2024-05-01T00:00:00Z"), "2024-05-13T00:00:00Z");
  EXPECT_EQ(next("0 0 */2 * MON", "2024-05-13T00:00:00Z"), "2024-05-27T00:00:00Z");
  EXPECT_EQ(next("0 0 13 * *", "2024-05-01T00:00:00Z"), "2024-05-13T00:00:00Z");
  EXPECT_EQ(next("0 0 * * FRI", "2024-05-03T00:00:00Z"), "2024-05-10T00:00:00Z");
}

TEST(CronTest, MonthEndsAndYearRollover) {
  EXPECT_EQ(next("0 12 31 * *", "2024-04-01T00:00:00Z"), "2024-05-31T12:00:00Z");
  EXPECT_EQ(next("0 12 31 * *", "2024-01-31T12:00:00Z"), "2024-03-31T12:00:00Z");
  EXPECT_EQ(latest("0 12 31 * *", "2024-05-30T00:00:00Z"), "2024-03-31T12:00:00Z");
  EXPECT_EQ(next("0 0 1 1 *", "2024-12-31T23:59:59Z"), "2025-01-01T00:00:00Z");
  EXPECT_EQ(next("59 23 31 12 *", "2024-12-31T23:59:00Z"), "2025-12-31T23:59:00Z");
  EXPECT_EQ(latest("0 0 1 1 *", "2025-06-01T00:00:00Z"), "2025-01-01T00:00:00Z");
  EXPECT_EQ(latest("59 23 31 12 *", "2025-01-01T00:00:00Z"), "2024-12-31T23:59:00Z");
  EXPECT_EQ(latest("0 0 * * *", "2025-01-01T00:00:00Z"), "2025-01-01T00:00:00Z");
  EXPECT_EQ(latest("30 23 * * *", "2025-01-01T00:00:00Z"), "2024-12-31T23:30:00Z");
}

TEST(CronTest, LeapYears) {
  EXPECT_EQ(next("0 0 29 2 *", "2024-02-28T00:00:00Z"), "2024-02-29T00:00:00Z");
  EXPECT_EQ(next("0 0 29 2 *", "2024-03-01T00:00:00Z"), "2028-02-29T00:00:00Z");
  EXPECT_EQ(next("0 0 29 2 *", "2096-03-01T00:00:00Z"), "2104-02-29T00:00:00Z");  // not 2100
  EXPECT_EQ(latest("0 0 29 2 *", "2024-02-28T23:59:00Z"), "2020-02-29T00:00:00Z");
  EXPECT_EQ(latest("0 0 29 2 *", "2104-01-01T00:00:00Z"), "2096-02-29T00:00:00Z");
  // Both must match (the weekday field contains *): Feb 29 on a Sunday is next in 2032.
  EXPECT_EQ(next("0 0 29 2 */7", "2024-03-01T00:00:00Z"), "2032-02-29T00:00:00Z");
  EXPECT_EQ(next("0 0 * 2 *", "2023-02-28T00:00:00Z"), "2024-02-01T00:00:00Z");
}

TEST(CronTest, Macros) {
  EXPECT_EQ(next("@hourly", "2024-05-01T12:00:30Z"), "2024-05-01T13:00:00Z");
  EXPECT_EQ(next("@daily", "2024-05-01T12:00:00Z"), "2024-05-02T00:00:00Z");
  EXPECT_EQ(next("@midnight", "2024-05-01T12:00:00Z"), "2024-05-02T00:00:00Z");
  EXPECT_EQ(next("@weekly", "2024-05-01T12:00:00Z"), "2024-05-05T00:00:00Z");  // Sunday
  EXPECT_EQ(next("@monthly", "2024-05-01T00:00:00Z"), "2024-06-01T00:00:00Z");
  EXPECT_EQ(next("@yearly", "2024-05-01T00:00:00Z"), "2025-01-01T00:00:00Z");
  EXPECT_EQ(next("@annually", "2024-05-01T00:00:00Z"), "2025-01-01T00:00:00Z");
  EXPECT_EQ(next(" @Daily ", "2024-05-01T12:00:00Z"), "2024-05-02T00:00:00Z");
  EXPECT_EQ(schedule("@daily").text(), "@daily");
}

TEST(CronTest, TimesBeforeTheEpochAndAtTheEndsOfUnixNanos) {
  EXPECT_EQ(latest("0 0 1 1 *", "1969-06-01T00:00:00Z"), "1969-01-01T00:00:00Z");
  EXPECT_EQ(next("* * * * *", "1969-12-31T23:59:30Z"), "1970-01-01T00:00:00Z");
  EXPECT_EQ(latest("* * * * *", "1969-12-31T23:59:30Z"), "1969-12-31T23:59:00Z");
  // UnixNanos ends in April 2262 and begins in September 1677.
  EXPECT_EQ(show(schedule("0 0 1 1 *").next_after(at("2262-01-01T00:00:00Z"))), "never");
  EXPECT_EQ(show(schedule("0 0 1 1 *").latest_at_or_before(at("1677-12-01T00:00:00Z"))), "never");
  EXPECT_EQ(show(schedule("* * * * *").next_after(std::numeric_limits<UnixNanos>::max())), "never");
  EXPECT_EQ(show(schedule("* * * * *").latest_at_or_before(std::numeric_limits<UnixNanos>::min())),
            "never");
}

// next_after and latest_at_or_before agree: no tick lies between t and the next one, and the
// latest tick at or before a tick is that tick.
TEST(CronTest, NextAndLatestAgree) {
  const char* schedules[] = {"* * * * *",      "*/7 */5 * * *", "0 0 29 2 *",    "0 0 13 * FRI",
                             "15 4 */3 * MON", "0 12 31 * *",   "1-5 0 1 1,7 *", "@weekly",
                             "59 23 * * 5-7",  "0 0 30 2 SUN"};
  for (const char* text : schedules) {
    const CronSchedule s = schedule(text);
    for (UnixNanos t = at("2023-12-30T00:00:00Z"); t < at("2025-01-03T00:00:00Z");
         t += 7 * 60 * kMinute + 13 * kMinute + 17'000'000'000) {
      auto tick = s.next_after(t);
      ASSERT_TRUE(tick) << text;
      EXPECT_GT(*tick, t) << text;
      EXPECT_EQ(*tick % kMinute, 0) << text;
      EXPECT_EQ(s.latest_at_or_before(*tick), tick) << text;
      EXPECT_LE(s.latest_at_or_before(*tick - 1), t) << text << " " << show(t);
    }
  }
}

TEST(CronTest, ImpossibleSchedulesAreRefused) {
  EXPECT_EQ(parse_error("0 0 30 2 *"),
            "cron schedule \"0 0 30 2 *\": never matches: day of month 30 does not occur in "
            "month 2");
  EXPECT_THAT(parse_error("0 0 31 4,6,9,11 *"), HasSubstr("never matches"));
  EXPECT_THAT(parse_error("0 0 30,31 FEB */2"), HasSubstr("never matches"));
  // February 29 exists, and with a restricted weekday the weekday alone can match.
  EXPECT_EQ(parse_error("0 0 29 2 *"), "parsed");
  EXPECT_EQ(parse_error("0 0 31 2,3 *"), "parsed");
  EXPECT_EQ(next("0 0 30 2 MON", "2024-02-01T00:00:00Z"), "2024-02-05T00:00:00Z");
}

TEST(CronTest, ErrorsNameTheFieldAndTheProblem) {
  EXPECT_EQ(parse_error("61 * * * *"),
            "cron schedule \"61 * * * *\": minute 61 is out of range 0-59");
  EXPECT_THAT(parse_error("* 24 * * *"), HasSubstr(": hour 24 is out of range 0-23"));
  EXPECT_THAT(parse_error("* * 0 * *"), HasSubstr(": day of month 0 is out of range 1-31"));
  EXPECT_THAT(parse_error("* * 32 * *"), HasSubstr(": day of month 32 is out of range 1-31"));
  EXPECT_THAT(parse_error("* * * 13 *"), HasSubstr(": month 13 is out of range 1-12"));
  EXPECT_THAT(parse_error("* * * * 8"), HasSubstr(": day of week 8 is out of range 0-7"));
  EXPECT_THAT(parse_error("99999999999 * * * *"), HasSubstr("minute 99999999999 is out of range"));
  EXPECT_THAT(parse_error("x * * * *"), HasSubstr(": minute \"x\" is not a number"));
  EXPECT_THAT(parse_error("+5 * * * *"), HasSubstr(": minute \"+5\" is not a number"));
  EXPECT_THAT(parse_error("* MON * * *"), HasSubstr(": hour \"MON\" is not a number"));
  EXPECT_THAT(parse_error("* * * FOO *"),
              HasSubstr(": month \"FOO\" is neither a number nor a month name (JAN-DEC)"));
  EXPECT_THAT(parse_error("* * * * MONDAY"),
              HasSubstr(": day of week \"MONDAY\" is neither a number nor a day name (SUN-SAT)"));
  EXPECT_THAT(parse_error("0 0 L 2 *"), HasSubstr("day of month \"L\" is not a number"));
  EXPECT_THAT(parse_error("5-1 * * * *"), HasSubstr(": minute range 5-1 runs backwards"));
  EXPECT_THAT(parse_error("* * * * FRI-MON"),
              HasSubstr("day of week range FRI-MON runs backwards"));
  EXPECT_THAT(parse_error("*/0 * * * *"),
              HasSubstr(": minute step \"0\" is not a whole number of at least 1"));
  EXPECT_THAT(parse_error("* */x * * *"), HasSubstr(": hour step \"x\""));
  EXPECT_THAT(parse_error("*/ * * * *"), HasSubstr(": minute step \"\""));
  EXPECT_THAT(parse_error("1,,2 * * * *"), HasSubstr(": minute \"1,,2\" has an empty list item"));
  EXPECT_THAT(parse_error("1, * * * *"), HasSubstr("has an empty list item"));
  EXPECT_THAT(parse_error("1-2-3 * * * *"), HasSubstr("minute \"2-3\" is not a number"));
  EXPECT_EQ(parse_error("* * * *"),
            "cron schedule \"* * * *\": expected 5 fields (minute hour day-of-month month "
            "day-of-week) or a macro such as @daily, found 4");
  EXPECT_THAT(parse_error("0 * * * * *"), HasSubstr("expected 5 fields"));
  EXPECT_THAT(parse_error(""), HasSubstr("found 0"));
  EXPECT_THAT(parse_error("@every 5m"), HasSubstr("\"@every 5m\": unknown macro; known: @yearly"));
  EXPECT_THAT(parse_error("@reboot"), HasSubstr("unknown macro"));
  EXPECT_THAT(parse_error("@daily 5"), HasSubstr("unknown macro"));
}

}  // namespace
}  // namespace depot::jobs
