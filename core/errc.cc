#include "core/errc.h"

#include <string>

namespace hubcache::core {
namespace {

class CoreCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "hubcache.core"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::kOk:
        return "ok";
      case Errc::kInvalidArgument:
        return "invalid argument";
      case Errc::kNotFound:
        return "not found";
      case Errc::kAlreadyExists:
        return "already exists";
      case Errc::kLocked:
        return "locked by another process";
      case Errc::kCorrupt:
        return "data is corrupt";
      case Errc::kUnavailable:
        return "unavailable";
    }
    return "unknown core error";
  }
};

}  // namespace

const boost::system::error_category& Category() {
  static const CoreCategory category;
  return category;
}

}  // namespace hubcache::core
