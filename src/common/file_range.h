#pragma once
// Bytes of an open file that a socket writer hands to the kernel (sendfile) instead of reading them
// into memory and writing them out: how a Kafka Fetch serves record sets from segment files.
#include <cstdint>
#include <memory>

namespace depot {

struct FileRange {
  std::shared_ptr<const void> owner;  // keeps `fd` open while the range is queued
  int fd = -1;
  uint64_t offset = 0;
  uint64_t size = 0;
};

}  // namespace depot
