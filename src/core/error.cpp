#include "core/error.hpp"

namespace shoal {

namespace {
class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "shoal"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::ok:
        return "success";
      case errc::syntax:
        return "malformed input";
      case errc::limit_exceeded:
        return "limit exceeded";
      case errc::non_canonical:
        return "non-canonical encoding";
      case errc::bad_metainfo:
        return "invalid torrent";
      case errc::bad_magnet:
        return "invalid magnet link";
      case errc::io:
        return "input/output error";
      case errc::invalid_argument:
        return "invalid argument";
    }
    return "unknown error";
  }
};
}  // namespace

const std::error_category& shoal_category() noexcept {
  static const category c;
  return c;
}

std::string error::message() const {
  std::string m = detail.empty() ? shoal_category().message(static_cast<int>(code)) : detail;
  if (offset != no_offset) m += " (at byte " + std::to_string(offset) + ")";
  return m;
}

}  // namespace shoal
