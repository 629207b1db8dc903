// Parsing and printing of the human units used in configuration and on the
// command line: durations (`30s`, `5m`, `1h30m`, `250ms`) and byte sizes
// (`500GB`, `8MiB`, `1.5TB`, `1048576`).
//
// Pure functions, thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hubcache::config {

// Parses a duration: one or more `<integer><unit>` terms with units ms, s, m,
// h, d (`1h30m`), or a bare non-negative integer meaning seconds. Returns
// nullopt on anything else, including negative values and overflow.
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);

// The shortest exact spelling that ParseDuration reads back: "30s", "5m",
// "1h30m", "250ms", "0s".
std::string FormatDuration(std::chrono::milliseconds d);

// Parses a size: a non-negative number (integer or decimal) with an optional
// unit: B, KB/MB/GB/TB/PB (powers of 1000) or KiB/MiB/GiB/TiB/PiB (powers of
// 1024); K/M/G/T/P alone mean the decimal units. Units are case-insensitive
// and may follow a space. Returns nullopt on anything else or on overflow.
std::optional<std::uint64_t> ParseSize(std::string_view text);

// The shortest exact spelling: "500GB", "8MiB", "1234".
std::string FormatSize(std::uint64_t bytes);

// Levenshtein edit distance, for "did you mean" suggestions.
std::size_t EditDistance(std::string_view a, std::string_view b);

}  // namespace hubcache::config
