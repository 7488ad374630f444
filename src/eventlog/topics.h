#pragma once
// The event log's topics: each a fixed number of partitions, each partition one storage-engine
// log in <dir>/<topic>-<partition> (Kafka's layout). Topics are created explicitly or on first
// use; the directory is the registry, so opening the store finds every topic again. No I/O
// beyond the storage engine's, no wire formats.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "storage/log.h"

namespace depot::eventlog {

struct TopicStoreOptions {
  std::filesystem::path dir;
  storage::SyncService* sync = nullptr;
  int32_t default_partitions = 1;  // Kafka's num.partitions
  bool auto_create = true;         // Kafka's auto.create.topics.enable
  storage::LogConfig log;          // each partition's log settings
};

struct TopicInfo {
  std::string name;
  int32_t partitions = 0;
};

enum class CreateResult { created, already_exists, invalid_name, invalid_partitions };

class TopicStore {
 public:
  static constexpr int32_t kMaxPartitions = 10000;

  // Opens every topic found in options.dir.
  static Result<std::unique_ptr<TopicStore>> open(TopicStoreOptions options);
  ~TopicStore();
  TopicStore(const TopicStore&) = delete;
  TopicStore& operator=(const TopicStore&) = delete;

  // Kafka's rules: 1 to 249 characters of [a-zA-Z0-9._-], not "." or "..". The reason, or
  // nullopt when the name is legal.
  static std::optional<std::string> invalid_name(std::string_view name);

  // `partitions` <= 0 takes the default.
  Result<CreateResult> create(const std::string& name, int32_t partitions = 0);
  std::optional<TopicInfo> find(const std::string& name) const;
  std::vector<TopicInfo> list() const;  // by name
  // nullptr when there is no such topic or partition.
  std::shared_ptr<storage::Log> partition(const std::string& name, int32_t index) const;

  bool auto_create() const { return options_.auto_create; }
  int32_t default_partitions() const { return options_.default_partitions; }
  Result<void> close();

 private:
  explicit TopicStore(TopicStoreOptions options) : options_(std::move(options)) {}
  Result<std::shared_ptr<storage::Log>> open_partition(const std::string& name, int32_t index);

  TopicStoreOptions options_;
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<std::shared_ptr<storage::Log>>, std::less<>> topics_;
};

}  // namespace depot::eventlog
