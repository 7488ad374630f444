#include "eventlog/topics.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "storage/file.h"

namespace depot::eventlog {
namespace {

constexpr size_t kMaxNameLength = 249;

// "<topic>-<partition>" -> (topic, partition); the topic may itself contain '-'.
std::optional<std::pair<std::string, int32_t>> parse_partition_dir(std::string_view name) {
  const auto dash = name.rfind('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == name.size()) return std::nullopt;
  int32_t index = -1;
  const std::string_view digits = name.substr(dash + 1);
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
  if (error != std::errc() || end != digits.data() + digits.size() || index < 0) {
    return std::nullopt;
  }
  return std::pair{std::string(name.substr(0, dash)), index};
}

}  // namespace

std::optional<std::string> TopicStore::invalid_name(std::string_view name) {
  if (name.empty()) return std::string("the topic name is empty");
  if (name == "." || name == "..") return fmt::format("topic name '{}' is not allowed", name);
  if (name.size() > kMaxNameLength) {
    return fmt::format("topic name is {} characters, over the limit of {}", name.size(),
                       kMaxNameLength);
  }
  const bool legal = std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
  if (!legal) {
    return fmt::format(
        "topic name '{}' has characters other than ASCII letters, digits, '.', "
        "'_' and '-'",
        name);
  }
  return std::nullopt;
}

Result<std::unique_ptr<TopicStore>> TopicStore::open(TopicStoreOptions options) {
  std::unique_ptr<TopicStore> store(new TopicStore(std::move(options)));
  storage::FileSystem& fs = storage::posix_file_system();
  DEPOT_TRY(fs.create_directories(store->options_.dir));
  DEPOT_TRY(auto names, fs.list(store->options_.dir));
  std::map<std::string, std::vector<int32_t>> found;
  for (const auto& name : names) {
    auto parsed = parse_partition_dir(name);
    if (!parsed || invalid_name(parsed->first)) continue;
    found[parsed->first].push_back(parsed->second);
  }
  for (auto& [topic, indexes] : found) {
    std::sort(indexes.begin(), indexes.end());
    // Partitions are 0..N-1; a gap means a damaged directory, and what follows it is left alone.
    auto& logs = store->topics_[topic];
    for (int32_t expected = 0; expected < static_cast<int32_t>(indexes.size()); ++expected) {
      if (indexes[static_cast<size_t>(expected)] != expected) {
        spdlog::warn("eventlog: topic '{}' has no partition {}; partitions after it are ignored",
                     topic, expected);
        break;
      }
      DEPOT_TRY(auto log, store->open_partition(topic, expected));
      logs.push_back(std::move(log));
    }
  }
  return store;
}

TopicStore::~TopicStore() {
  (void)close();
}

Result<std::shared_ptr<storage::Log>> TopicStore::open_partition(const std::string& name,
                                                                 int32_t index) {
  return storage::Log::open(
      {options_.dir / fmt::format("{}-{}", name, index), options_.log, options_.sync, nullptr, {}});
}

Result<CreateResult> TopicStore::create(const std::string& name, int32_t partitions) {
  if (invalid_name(name)) return CreateResult::invalid_name;
  if (partitions <= 0) partitions = options_.default_partitions;
  if (partitions > kMaxPartitions) return CreateResult::invalid_partitions;
  std::lock_guard lock(mutex_);
  if (topics_.contains(name)) return CreateResult::already_exists;
  std::vector<std::shared_ptr<storage::Log>> logs;
  for (int32_t i = 0; i < partitions; ++i) {
    DEPOT_TRY(auto log, open_partition(name, i));
    logs.push_back(std::move(log));
  }
  topics_.emplace(name, std::move(logs));
  spdlog::info("eventlog: created topic '{}' with {} partition(s)", name, partitions);
  return CreateResult::created;
}

std::optional<TopicInfo> TopicStore::find(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = topics_.find(name);
  if (it == topics_.end()) return std::nullopt;
  return TopicInfo{it->first, static_cast<int32_t>(it->second.size())};
}

std::vector<TopicInfo> TopicStore::list() const {
  std::lock_guard lock(mutex_);
  std::vector<TopicInfo> out;
  out.reserve(topics_.size());
  for (const auto& [name, logs] : topics_)
    out.push_back({name, static_cast<int32_t>(logs.size())});
  return out;
}

std::shared_ptr<storage::Log> TopicStore::partition(const std::string& name, int32_t index) const {
  std::lock_guard lock(mutex_);
  auto it = topics_.find(name);
  if (it == topics_.end() || index < 0 || index >= static_cast<int32_t>(it->second.size())) {
    return nullptr;
  }
  return it->second[static_cast<size_t>(index)];
}

Result<void> TopicStore::close() {
  std::lock_guard lock(mutex_);
  for (auto& [name, logs] : topics_) {
    for (auto& log : logs)
      DEPOT_TRY(log->close());
  }
  return success();
}

}  // namespace depot::eventlog
