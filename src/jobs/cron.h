#pragma once
// Cron schedules for periodic jobs, as crontab(5) writes them: five fields (minute, hour, day of
// month, month, day of week) of `*`, numbers, ranges `a-b`, lists `a,b`, steps `*/n`, `a-b/n` and
// `a/n` (from a to the field's end), month names JAN-DEC and day names SUN-SAT (any case), 7 for
// Sunday (a range may end on Sunday: FRI-SUN), and the macros @yearly (@annually), @monthly,
// @weekly, @daily (@midnight), @hourly.
// When both day fields are restricted (neither contains `*`) a day matches if either matches,
// else if both do (crontab(5)'s rule). Times are UTC, at minute resolution.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "jobs/job.h"

namespace depot::jobs {

class CronSchedule {
 public:
  // Also refuses a schedule that can never match, such as "0 0 30 2 *".
  static ParseResult<CronSchedule> parse(std::string_view text);

  // The first tick strictly after `t`; nullopt if none is left before the year 2262, the end of
  // UnixNanos.
  std::optional<UnixNanos> next_after(UnixNanos t) const;
  // The last tick at or before `t`; nullopt if there was none since 1677.
  std::optional<UnixNanos> latest_at_or_before(UnixNanos t) const;

  // The schedule as written.
  const std::string& text() const { return text_; }

 private:
  CronSchedule() = default;  // only parse() makes one: an empty schedule would match nothing

  // The matching minute nearest `start` (minutes since the epoch), searching forward (step 1)
  // or backward (step -1), or nullopt if none is within a 400-year Gregorian cycle.
  std::optional<int64_t> search(int64_t start, int step) const;
  bool day_matches(int year, int month, int day) const;

  std::string text_;
  // Bit n set: value n matches.
  uint64_t minutes_ = 0;
  uint64_t hours_ = 0;
  uint64_t days_ = 0;        // 1-31
  uint64_t months_ = 0;      // 1-12
  uint64_t weekdays_ = 0;    // 0-6, Sunday = 0
  bool either_day_ = false;  // both day fields restricted: one matching is enough
};

}  // namespace depot::jobs
