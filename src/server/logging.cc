#include "server/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace depot::server {

void configure_logging(spdlog::level::level_enum level) {
  auto logger = spdlog::get("depot");
  if (!logger) logger = spdlog::stderr_color_mt("depot");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  logger->set_level(level);
  // Warnings reach the terminal (or journal) at once, even when stderr is a pipe.
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

}  // namespace depot::server
