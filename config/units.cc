#include "config/units.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <limits>
#include <vector>

namespace hubcache::config {
namespace {

struct Unit {
  std::string_view name;
  std::uint64_t factor;
};

constexpr std::array<Unit, 5> kDurationUnits = {{
    {"d", 86'400'000},
    {"h", 3'600'000},
    {"m", 60'000},
    {"s", 1'000},
    {"ms", 1},
}};

constexpr std::uint64_t kKi = 1024;
constexpr std::array<Unit, 16> kSizeUnits = {{
    {"b", 1},
    {"k", 1000},
    {"kb", 1000},
    {"kib", kKi},
    {"m", 1000'000},
    {"mb", 1000'000},
    {"mib", kKi * kKi},
    {"g", 1000'000'000},
    {"gb", 1000'000'000},
    {"gib", kKi * kKi * kKi},
    {"t", 1000'000'000'000},
    {"tb", 1000'000'000'000},
    {"tib", kKi * kKi * kKi * kKi},
    {"p", 1000'000'000'000'000},
    {"pb", 1000'000'000'000'000},
    {"pib", kKi * kKi * kKi * kKi * kKi},
}};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads decimal digits at `pos` into `value`; false on no digits or overflow.
bool ReadInteger(std::string_view text, std::size_t& pos, std::uint64_t& value) {
  const std::size_t start = pos;
  value = 0;
  while (pos < text.size() && IsDigit(text[pos])) {
    const std::uint64_t digit = static_cast<std::uint64_t>(text[pos] - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
      return false;
    }
    value = value * 10 + digit;
    ++pos;
  }
  return pos > start;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::size_t pos = 0;
  std::uint64_t total = 0;
  bool bare = true;
  while (pos < text.size()) {
    std::uint64_t value = 0;
    if (!ReadInteger(text, pos, value)) return std::nullopt;
    std::size_t unit_end = pos;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end]))) {
      ++unit_end;
    }
    std::string_view unit = text.substr(pos, unit_end - pos);
    std::uint64_t factor = 0;
    if (unit.empty()) {
      // A bare number means seconds, and only on its own ("30", not "1m30").
      if (!bare || unit_end != text.size()) return std::nullopt;
      factor = 1000;
    } else {
      for (const Unit& u : kDurationUnits) {
        if (u.name == unit) factor = u.factor;
      }
      if (factor == 0) return std::nullopt;
    }
    bare = false;
    if (value > std::numeric_limits<std::int64_t>::max() / factor) return std::nullopt;
    const std::uint64_t term = value * factor;
    if (total > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) - term) {
      return std::nullopt;
    }
    total += term;
    pos = unit_end;
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(total));
}

std::string FormatDuration(std::chrono::milliseconds d) {
  std::int64_t ms = d.count();
  if (ms <= 0) return "0s";
  std::string out;
  for (const Unit& u : kDurationUnits) {
    const std::int64_t factor = static_cast<std::int64_t>(u.factor);
    if (ms >= factor) {
      out += std::to_string(ms / factor);
      out += u.name;
      ms %= factor;
    }
  }
  return out;
}

std::optional<std::uint64_t> ParseSize(std::string_view text) {
  std::size_t pos = 0;
  std::uint64_t whole = 0;
  if (!ReadInteger(text, pos, whole)) return std::nullopt;
  // Fraction digits, kept exactly as an integer numerator over 10^n.
  std::uint64_t frac = 0;
  std::uint64_t frac_div = 1;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const std::size_t start = pos;
    while (pos < text.size() && IsDigit(text[pos])) {
      if (frac_div >= 1000'000'000'000ULL) return std::nullopt;  // 12 digits max
      frac = frac * 10 + static_cast<std::uint64_t>(text[pos] - '0');
      frac_div *= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  if (pos < text.size() && text[pos] == ' ') ++pos;
  const std::string unit = Lower(text.substr(pos));
  std::uint64_t factor = 1;
  if (!unit.empty()) {
    factor = 0;
    for (const Unit& u : kSizeUnits) {
      if (u.name == unit) factor = u.factor;
    }
    if (factor == 0) return std::nullopt;
  }
  if (whole > std::numeric_limits<std::uint64_t>::max() / factor) return std::nullopt;
  std::uint64_t bytes = whole * factor;
  if (frac != 0) {
    // frac/frac_div < 1, so frac * (factor / frac_div) stays below factor;
    // compute in long double only for the sub-unit part.
    const long double part = static_cast<long double>(frac) *
                             static_cast<long double>(factor) /
                             static_cast<long double>(frac_div);
    const std::uint64_t rounded = static_cast<std::uint64_t>(std::llround(part));
    if (bytes > std::numeric_limits<std::uint64_t>::max() - rounded) return std::nullopt;
    bytes += rounded;
  }
  return bytes;
}

std::string FormatSize(std::uint64_t bytes) {
  if (bytes == 0) return "0";
  // Prefer the largest unit that divides exactly; between a decimal and a
  // binary unit of equal exactness, the larger factor wins.
  std::string_view best_name;
  std::uint64_t best_factor = 1;
  for (const Unit& u : kSizeUnits) {
    if (u.name.size() < 2) continue;  // print "GB", not "G"
    if (u.factor > best_factor && bytes % u.factor == 0) {
      best_factor = u.factor;
      best_name = u.name;
    }
  }
  if (best_factor == 1) return std::to_string(bytes);
  std::string name(best_name);
  // Canonical capitalisation: KB MB GB, KiB MiB GiB.
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (i == 0 || name[i] == 'b') {
      name[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[i])));
    }
  }
  return std::to_string(bytes / best_factor) + name;
}

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace hubcache::config
