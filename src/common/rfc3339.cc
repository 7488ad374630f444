#include "common/rfc3339.h"

#include <cstdint>
#include <limits>

namespace depot {
namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct Civil {
  int64_t year;
  int month;
  int day;
};

Civil civil_from_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return {yoe + era * 400 + (month <= 2 ? 1 : 0), month, day};
}

int days_in_month(int64_t year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// The decimal value of text[at, at + n), or -1 unless all n characters are digits.
int digits(std::string_view text, std::size_t at, std::size_t n) {
  int value = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (!is_digit(text[i])) return -1;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

}  // namespace

std::optional<int64_t> parse_rfc3339(std::string_view s) {
  // Fixed part: 2006-01-02T15:04:05
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  const int year = digits(s, 0, 4);
  const int month = digits(s, 5, 2);
  const int day = digits(s, 8, 2);
  const int hour = digits(s, 11, 2);
  const int minute = digits(s, 14, 2);
  const int second = digits(s, 17, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
      hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) {
    return std::nullopt;
  }
  std::size_t at = 19;
  int64_t fraction = 0;
  if (at < s.size() && s[at] == '.') {
    std::size_t first = ++at;
    int64_t scale = kNanosPerSecond;
    while (at < s.size() && is_digit(s[at])) {
      if (scale > 1) {
        scale /= 10;
        fraction += (s[at] - '0') * scale;
      }
      ++at;
    }
    if (at == first) return std::nullopt;
  }
  int64_t offset_seconds = 0;
  std::string_view zone = s.substr(at);
  if (zone != "Z") {
    if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':') {
      return std::nullopt;
    }
    const int zone_hours = digits(zone, 1, 2);
    const int zone_minutes = digits(zone, 4, 2);
    if (zone_hours < 0 || zone_hours > 23 || zone_minutes < 0 || zone_minutes > 59) {
      return std::nullopt;
    }
    offset_seconds = (zone_hours * 60 + zone_minutes) * 60 * (zone[0] == '-' ? -1 : 1);
  }
  const int64_t seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 +
                          second - offset_seconds;
  // Years 0..9999 reach past int64 nanoseconds; saturate rather than wrap.
  const __int128 nanos = static_cast<__int128>(seconds) * kNanosPerSecond + fraction;
  if (nanos > std::numeric_limits<int64_t>::max()) return std::numeric_limits<int64_t>::max();
  if (nanos < std::numeric_limits<int64_t>::min()) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(nanos);
}

std::string format_rfc3339(int64_t nanos) {
  // Floor division so times before 1970 get a positive fraction, as Go's do.
  int64_t seconds = nanos / kNanosPerSecond;
  int64_t fraction = nanos % kNanosPerSecond;
  if (fraction < 0) {
    fraction += kNanosPerSecond;
    seconds -= 1;
  }
  int64_t days = seconds / 86400;
  int64_t second_of_day = seconds % 86400;
  if (second_of_day < 0) {
    second_of_day += 86400;
    days -= 1;
  }
  const Civil date = civil_from_days(days);
  char buffer[40];
  auto put = [&buffer](std::size_t at, int64_t value, int width) {
    for (int i = width - 1; i >= 0; --i) {
      buffer[at + i] = static_cast<char>('0' + value % 10);
      value /= 10;
    }
  };
  // int64 nanoseconds span 1677..2262: the year always has four digits.
  put(0, date.year, 4);
  buffer[4] = '-';
  put(5, date.month, 2);
  buffer[7] = '-';
  put(8, date.day, 2);
  buffer[10] = 'T';
  put(11, second_of_day / 3600, 2);
  buffer[13] = ':';
  put(14, second_of_day / 60 % 60, 2);
  buffer[16] = ':';
  put(17, second_of_day % 60, 2);
  std::size_t size = 19;
  if (fraction != 0) {
    buffer[size++] = '.';
    put(size, fraction, 9);
    size += 9;
    while (buffer[size - 1] == '0')
      --size;
  }
  buffer[size++] = 'Z';
  return std::string(buffer, size);
}

}  // namespace depot
