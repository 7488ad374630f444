#include "jobs/errc.h"

#include <string>

namespace depot::jobs {
namespace {

class JobsCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "depot.jobs"; }
  std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::ok:
        return "ok";
      case errc::job_not_found:
        return "job not found";
      case errc::not_unique:
        return "job not unique";
      case errc::expired:
        return "job expired";
      case errc::corrupt_journal:
        return "job journal record is damaged";
      case errc::reserved_by_other:
        return "job reserved by another worker";
    }
    return "unknown jobs error " + std::to_string(code);
  }
};

}  // namespace

const std::error_category& jobs_category() {
  static const JobsCategory category;
  return category;
}

}  // namespace depot::jobs
