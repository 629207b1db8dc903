// Secret: a string that must never be printed, logged or stored.
//
// HF tokens, proxy passwords and cluster keys live in a Secret. Formatting it
// (fmt, spdlog, the log field helpers) prints a fixed placeholder, so a token
// that reaches a log call by mistake still does not reach the log. Reading the
// value takes an explicit call to Reveal(), which is easy to audit by grep.
// Thread safety: a plain value type.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace hubcache {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}

  bool empty() const { return value_.empty(); }
  // The raw value, for the one place that must send it (an HTTP header).
  const std::string& Reveal() const { return value_; }

  friend bool operator==(const Secret&, const Secret&) = default;

  static constexpr std::string_view kPlaceholder = "[redacted]";

 private:
  std::string value_;
};

}  // namespace hubcache

template <>
struct fmt::formatter<hubcache::Secret> : fmt::formatter<std::string_view> {
  template <class Context>
  auto format(const hubcache::Secret&, Context& ctx) const {
    return fmt::formatter<std::string_view>::format(
        hubcache::Secret::kPlaceholder, ctx);
  }
};
