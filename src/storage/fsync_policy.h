#pragma once
// When an append counts as done. See README "Durability" for what each policy can lose.
#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"

namespace depot::storage {

enum class FsyncMode {
  always,    // an append completes only after fdatasync covers it (group commit shares the sync)
  interval,  // appends complete when written; a background fdatasync runs every `interval`
  never,     // appends complete when written; the OS decides when data reaches the disk
};

struct FsyncPolicy {
  FsyncMode mode = FsyncMode::always;
  std::chrono::milliseconds interval{1000};

  // Accepts "always", "never" and "interval:<ms>" (ms > 0).
  static Result<FsyncPolicy> parse(std::string_view text);
  std::string to_string() const;
};

}  // namespace depot::storage
