#include "adapters/time_parse.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace sluice::adapters {

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Reads exactly n digits at text[pos].
bool digits(std::string_view text, std::size_t pos, std::size_t n, unsigned& out) {
  if (pos + n > text.size()) return false;
  out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[pos + i];
    if (!is_digit(c)) return false;
    out = out * 10 + static_cast<unsigned>(c - '0');
  }
  return true;
}

bool leap(unsigned y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned days_in_month(unsigned y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDays[m - 1];
}

std::optional<UnixSeconds> parse_unix(std::string_view text) {
  std::size_t i = 0;
  std::int64_t value = 0;
  for (; i < text.size() && is_digit(text[i]); ++i) {
    if (i >= 12) return std::nullopt;  // beyond year 33000: not a timestamp
    value = value * 10 + (text[i] - '0');
  }
  if (i == 0) return std::nullopt;
  if (i < text.size()) {
    if (text[i] != '.') return std::nullopt;
    for (++i; i < text.size(); ++i) {
      if (!is_digit(text[i])) return std::nullopt;
    }
  }
  return value;
}

}  // namespace

std::optional<UnixSeconds> parse_time(std::string_view text) {
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  if (text.size() < 19 || text[4] != '-') return parse_unix(text);
  unsigned year, month, day, hour, minute, second;
  if (!digits(text, 0, 4, year) || !digits(text, 5, 2, month) || text[7] != '-' ||
      !digits(text, 8, 2, day) || (text[10] != ' ' && text[10] != 'T' && text[10] != 't') ||
      !digits(text, 11, 2, hour) || text[13] != ':' || !digits(text, 14, 2, minute) ||
      text[16] != ':' || !digits(text, 17, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
      minute > 59 || second > 60) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
    ++pos;
    const std::size_t start = pos;
    while (pos < text.size() && is_digit(text[pos])) ++pos;
    if (pos == start) return std::nullopt;
  }
  if (pos < text.size() && text[pos] == ' ') ++pos;
  std::int64_t offset = 0;
  if (pos < text.size()) {
    const char sign = text[pos];
    if ((sign == 'Z' || sign == 'z') && pos + 1 == text.size()) {
      pos = text.size();
    } else if (sign == '+' || sign == '-') {
      unsigned oh, om;
      std::size_t p = pos + 1;
      if (!digits(text, p, 2, oh)) return std::nullopt;
      p += 2;
      if (p < text.size() && text[p] == ':') ++p;
      if (!digits(text, p, 2, om) || p + 2 != text.size() || oh > 23 || om > 59) {
        return std::nullopt;
      }
      offset = (sign == '+' ? 1 : -1) * static_cast<std::int64_t>(oh * 3600 + om * 60);
      pos = text.size();
    } else {
      return std::nullopt;
    }
  }
  const std::int64_t days = days_from_civil(year, month, day);
  return days * 86400 + hour * 3600 + minute * 60 + std::min(second, 59u) - offset;
}

std::optional<UnixSeconds> StreamTimeParser::parse(std::string_view text) {
  constexpr std::size_t kSeconds = 17;  // "2026-11-27 10:00:SS..."
  const bool iso_shape = text.size() >= 19 && text[4] == '-' && text[16] == ':' &&
                         is_digit(text[kSeconds]) && is_digit(text[kSeconds + 1]);
  if (!iso_shape) return parse_time(text);
  const unsigned seconds = static_cast<unsigned>(text[kSeconds] - '0') * 10 +
                           static_cast<unsigned>(text[kSeconds + 1] - '0');
  const std::string_view head = text.substr(0, kSeconds);
  const std::string_view tail = text.substr(kSeconds + 2);
  if (seconds < 60 && !minute_key_.empty() && minute_key_.size() == head.size() + tail.size() &&
      std::string_view(minute_key_).substr(0, kSeconds) == head &&
      std::string_view(minute_key_).substr(kSeconds) == tail) {
    return minute_start_ + seconds;
  }
  const std::optional<UnixSeconds> t = parse_time(text);
  if (t && seconds < 60) {
    minute_key_.assign(head);
    minute_key_.append(tail);
    minute_start_ = *t - seconds;
  }
  return t;
}

std::optional<UnixSeconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  UnixSeconds total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t start = i;
    std::int64_t n = 0;
    while (i < text.size() && is_digit(text[i])) {
      if (i - start >= 9) return std::nullopt;
      n = n * 10 + (text[i++] - '0');
    }
    if (i == start || i == text.size()) return std::nullopt;
    switch (text[i++]) {
      case 's':
        total += n;
        break;
      case 'm':
        total += n * 60;
        break;
      case 'h':
        total += n * 3600;
        break;
      case 'd':
        total += n * 86400;
        break;
      case 'w':
        total += n * 7 * 86400;
        break;
      default:
        return std::nullopt;
    }
  }
  return total;
}

}  // namespace sluice::adapters
