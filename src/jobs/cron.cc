#include "jobs/cron.h"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <chrono>
#include <limits>
#include <span>
#include <vector>

#include <fmt/format.h>

#include "common/result.h"

namespace depot::jobs {
namespace {

constexpr int64_t kNanosPerMinute = 60'000'000'000;
constexpr int64_t kMinutesPerDay = 24 * 60;
// The Gregorian calendar repeats every 400 years: a schedule with no tick in that span has none.
constexpr int kSearchYears = 400;

constexpr std::array<std::string_view, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> kDayNames = {"SUN", "MON", "TUE", "WED",
                                                       "THU", "FRI", "SAT"};

struct Field {
  std::string_view name;  // in messages
  int min;
  int max;
  int star_max;  // where `*` and `a/n` end: 6 for the day of week, whose 7 is Sunday again
  std::span<const std::string_view> names;  // names[i] stands for min + i
  std::string_view names_hint;
};

constexpr Field kMinute{"minute", 0, 59, 59, {}, ""};
constexpr Field kHour{"hour", 0, 23, 23, {}, ""};
constexpr Field kDayOfMonth{"day of month", 1, 31, 31, {}, ""};
constexpr Field kMonth{"month", 1, 12, 12, kMonthNames, "a month name (JAN-DEC)"};
constexpr Field kDayOfWeek{"day of week", 0, 7, 6, kDayNames, "a day name (SUN-SAT)"};

struct Macro {
  std::string_view name;
  std::string_view expression;
};
constexpr std::array<Macro, 7> kMacros = {{{"@yearly", "0 0 1 1 *"},
                                           {"@annually", "0 0 1 1 *"},
                                           {"@monthly", "0 0 1 * *"},
                                           {"@weekly", "0 0 * * 0"},
                                           {"@daily", "0 0 * * *"},
                                           {"@midnight", "0 0 * * *"},
                                           {"@hourly", "0 * * * *"}}};

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    return lower(x) == lower(y);
  });
}

std::vector<std::string_view> split(std::string_view text, std::string_view separators,
                                    bool keep_empty) {
  std::vector<std::string_view> parts;
  size_t at = 0;
  while (at <= text.size()) {
    size_t end = std::min(text.find_first_of(separators, at), text.size());
    if (keep_empty || end > at) parts.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return parts;
}

// Digits only: no sign, no space.
std::optional<unsigned> parse_digits(std::string_view text) {
  unsigned value = 0;
  const char* end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error == std::errc::invalid_argument || stop != end) return std::nullopt;
  if (error == std::errc::result_out_of_range) return std::numeric_limits<unsigned>::max();
  return value;
}

ParseResult<int> parse_value(std::string_view text, const Field& field) {
  for (size_t i = 0; i < field.names.size(); ++i) {
    if (equals_ignoring_case(text, field.names[i])) return field.min + static_cast<int>(i);
  }
  auto value = parse_digits(text);
  if (!value) {
    if (field.names.empty()) return fmt::format("{} \"{}\" is not a number", field.name, text);
    return fmt::format("{} \"{}\" is neither a number nor {}", field.name, text, field.names_hint);
  }
  if (*value < static_cast<unsigned>(field.min) || *value > static_cast<unsigned>(field.max)) {
    return fmt::format("{} {} is out of range {}-{}", field.name, text, field.min, field.max);
  }
  return static_cast<int>(*value);
}

// One item of a list: `*`, `a`, `a-b`, each optionally with `/step`.
ParseResult<uint64_t> parse_item(std::string_view item, const Field& field) {
  std::string_view range = item;
  std::optional<std::string_view> step_text;
  if (auto slash = item.find('/'); slash != std::string_view::npos) {
    range = item.substr(0, slash);
    step_text = item.substr(slash + 1);
  }
  int first = field.min;
  int last = field.star_max;
  if (range != "*") {
    if (auto dash = range.find('-'); dash != std::string_view::npos) {
      DEPOT_TRY(first, parse_value(range.substr(0, dash), field));
      DEPOT_TRY(last, parse_value(range.substr(dash + 1), field));
      // A week may end on Sunday, whatever its number: FRI-SUN is 5-7.
      if (last < first && last == field.min && field.max > field.star_max) last = field.max;
      if (first > last) return fmt::format("{} range {} runs backwards", field.name, range);
    } else {
      DEPOT_TRY(first, parse_value(range, field));
      last = step_text ? std::max(first, field.star_max) : first;
    }
  }
  int step = 1;
  if (step_text) {
    auto value = parse_digits(*step_text);
    if (!value || *value == 0) {
      return fmt::format("{} step \"{}\" is not a whole number of at least 1", field.name,
                         *step_text);
    }
    step = static_cast<int>(std::min(*value, unsigned{64}));  // larger steps take the first only
  }
  uint64_t bits = 0;
  for (int value = first; value <= last; value += step) {
    const int bit = value > field.star_max ? field.min : value;  // day of week 7 is Sunday (0)
    bits |= uint64_t{1} << bit;
  }
  return bits;
}

ParseResult<uint64_t> parse_field(std::string_view text, const Field& field) {
  uint64_t bits = 0;
  for (std::string_view item : split(text, ",", true)) {
    if (item.empty()) return fmt::format("{} \"{}\" has an empty list item", field.name, text);
    DEPOT_TRY(uint64_t item_bits, parse_item(item, field));
    bits |= item_bits;
  }
  return bits;
}

bool has_bit(uint64_t bits, int n) {
  return n >= 0 && n < 64 && ((bits >> n) & 1) != 0;
}

// The set value nearest `from`, `from` included, going up (step 1) or down (step -1). `from` may
// be one past either end of the field.
std::optional<int> nearest_bit(uint64_t bits, int from, int step) {
  uint64_t candidates = 0;
  if (step > 0) {
    candidates = from < 64 ? bits & (~uint64_t{0} << std::max(from, 0)) : 0;
    if (candidates == 0) return std::nullopt;
    return std::countr_zero(candidates);
  }
  candidates = from < 0 ? 0 : from >= 63 ? bits : bits & ((uint64_t{2} << from) - 1);
  if (candidates == 0) return std::nullopt;
  return std::bit_width(candidates) - 1;
}

int days_in_month(int year, int month) {
  using std::chrono::month_day_last;
  using std::chrono::year_month_day_last;
  const year_month_day_last last{std::chrono::year{year},
                                 month_day_last{std::chrono::month{static_cast<unsigned>(month)}}};
  return static_cast<int>(static_cast<unsigned>(last.day()));
}

std::chrono::sys_days date_of(int year, int month, int day) {
  return std::chrono::year_month_day{std::chrono::year{year},
                                     std::chrono::month{static_cast<unsigned>(month)},
                                     std::chrono::day{static_cast<unsigned>(day)}};
}

// A minute as calendar fields, UTC.
struct Moment {
  int year = 0;
  int month = 0;  // 1-12
  int day = 0;    // 1-31
  int hour = 0;
  int minute = 0;
};

int64_t floor_div(int64_t a, int64_t b) {
  return a / b - (a % b < 0 ? 1 : 0);
}

Moment moment_at(int64_t minute) {
  const int64_t day = floor_div(minute, kMinutesPerDay);
  const int64_t in_day = minute - day * kMinutesPerDay;
  const std::chrono::year_month_day date{std::chrono::sys_days{std::chrono::days{day}}};
  return {static_cast<int>(date.year()), static_cast<int>(static_cast<unsigned>(date.month())),
          static_cast<int>(static_cast<unsigned>(date.day())), static_cast<int>(in_day / 60),
          static_cast<int>(in_day % 60)};
}

int64_t minute_of(const Moment& m) {
  return date_of(m.year, m.month, m.day).time_since_epoch().count() * kMinutesPerDay + m.hour * 60 +
         m.minute;
}

std::optional<UnixNanos> nanos_of(std::optional<int64_t> minute) {
  constexpr int64_t kMax = std::numeric_limits<UnixNanos>::max() / kNanosPerMinute;
  constexpr int64_t kMin = std::numeric_limits<UnixNanos>::min() / kNanosPerMinute;
  if (!minute || *minute > kMax || *minute < kMin) return std::nullopt;
  return *minute * kNanosPerMinute;
}

}  // namespace

ParseResult<CronSchedule> CronSchedule::parse(std::string_view text) {
  auto fail = [text](std::string_view problem) {
    return fmt::format("cron schedule \"{}\": {}", text, problem);
  };
  std::string_view expression = text;
  const auto fields_of = [](std::string_view s) { return split(s, " \t", false); };
  if (auto words = fields_of(text); !words.empty() && words[0].starts_with('@')) {
    auto macro = std::ranges::find_if(
        kMacros, [&](const Macro& m) { return equals_ignoring_case(m.name, words[0]); });
    if (macro == kMacros.end() || words.size() > 1) {
      return fail(
          "unknown macro; known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, "
          "@hourly");
    }
    expression = macro->expression;
  }
  const auto fields = fields_of(expression);
  if (fields.size() != 5) {
    return fail(fmt::format(
        "expected 5 fields (minute hour day-of-month month day-of-week) or a macro such as "
        "@daily, found {}",
        fields.size()));
  }
  CronSchedule schedule;
  schedule.text_ = std::string(text);
  auto parsed = [&]() -> ParseResult<void> {
    DEPOT_TRY(schedule.minutes_, parse_field(fields[0], kMinute));
    DEPOT_TRY(schedule.hours_, parse_field(fields[1], kHour));
    DEPOT_TRY(schedule.days_, parse_field(fields[2], kDayOfMonth));
    DEPOT_TRY(schedule.months_, parse_field(fields[3], kMonth));
    DEPOT_TRY(schedule.weekdays_, parse_field(fields[4], kDayOfWeek));
    return boost::outcome_v2::success();
  }();
  if (!parsed) return fail(parsed.error());
  auto restricted = [](std::string_view field) {
    return field.find('*') == std::string_view::npos;
  };
  schedule.either_day_ = restricted(fields[2]) && restricted(fields[4]);
  // Unless the day of week alone can match, some selected month must have a selected day of month
  // (February has a 29th). Such a date falls on every weekday somewhere in the 400-year cycle, so
  // the day of week cannot make the schedule impossible.
  if (!schedule.either_day_) {
    bool possible = false;
    for (int month = 1; month <= 12; ++month) {
      const uint64_t month_days = (uint64_t{2} << days_in_month(2000, month)) - 2;
      possible |= has_bit(schedule.months_, month) && (schedule.days_ & month_days) != 0;
    }
    if (!possible) {
      return fail(fmt::format("never matches: day of month {} does not occur in month {}",
                              fields[2], fields[3]));
    }
  }
  return schedule;
}

bool CronSchedule::day_matches(int year, int month, int day) const {
  const bool by_day = has_bit(days_, day);
  const bool by_weekday = has_bit(
      weekdays_, static_cast<int>(std::chrono::weekday{date_of(year, month, day)}.c_encoding()));
  return either_day_ ? by_day || by_weekday : by_day && by_weekday;
}

std::optional<int64_t> CronSchedule::search(int64_t start, int step) const {
  const bool forward = step > 0;
  Moment m = moment_at(start);
  const int end_year = m.year + step * kSearchYears;
  // Entering a day, month or hour in the direction of travel starts at its first (forward) or
  // last (backward) minute.
  auto enter_hour = [&](int hour) {
    m.hour = hour;
    m.minute = forward ? 0 : 59;
  };
  auto enter_day = [&](int day) {
    m.day = day;
    enter_hour(forward ? 0 : 23);
  };
  auto enter_month = [&](int year, int month) {
    if (month < 1 || month > 12) {
      year += step;
      month = forward ? 1 : 12;
    }
    m.year = year;
    m.month = month;
    enter_day(forward ? 1 : days_in_month(year, month));
  };
  // Whole months, days and hours that cannot match are skipped, not walked minute by minute.
  while (forward ? m.year <= end_year : m.year >= end_year) {
    auto month = nearest_bit(months_, m.month, step);
    if (!month) {
      enter_month(m.year + step, *nearest_bit(months_, forward ? 1 : 12, step));
      continue;
    }
    if (*month != m.month) {
      enter_month(m.year, *month);
      continue;
    }
    if (m.day < 1 || m.day > days_in_month(m.year, m.month)) {
      enter_month(m.year, m.month + step);
      continue;
    }
    if (!day_matches(m.year, m.month, m.day)) {
      enter_day(m.day + step);
      continue;
    }
    auto hour = nearest_bit(hours_, m.hour, step);
    if (!hour) {
      enter_day(m.day + step);
      continue;
    }
    if (*hour != m.hour) enter_hour(*hour);
    auto minute = nearest_bit(minutes_, m.minute, step);
    if (!minute) {
      enter_hour(m.hour + step);
      continue;
    }
    m.minute = *minute;
    return minute_of(m);
  }
  return std::nullopt;
}

std::optional<UnixNanos> CronSchedule::next_after(UnixNanos t) const {
  return nanos_of(search(floor_div(t, kNanosPerMinute) + 1, 1));
}

std::optional<UnixNanos> CronSchedule::latest_at_or_before(UnixNanos t) const {
  return nanos_of(search(floor_div(t, kNanosPerMinute), -1));
}

}  // namespace depot::jobs
