#pragma once
// Process-wide logging: spdlog to stderr (stdout stays free for command output).
#include <spdlog/common.h>

namespace depot::server {

void configure_logging(spdlog::level::level_enum level);

}  // namespace depot::server
