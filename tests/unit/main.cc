// One binary for every unit test (fast to link). Quiet logs unless DEPOT_TEST_LOG is set.
#include <cstdlib>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  spdlog::set_level(std::getenv("DEPOT_TEST_LOG") ? spdlog::level::debug : spdlog::level::off);
  return RUN_ALL_TESTS();
}
