#pragma once
// The live connections of every face, so that shutdown can reach each one on its own strand.
// Thread-safe; holds weak references (a connection lives as long as its coroutines).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace depot::server {

class Connection;

class ConnectionRegistry {
 public:
  // Called (on the removing thread) whenever the last connection is removed.
  void set_on_empty(std::function<void()> on_empty);

  void add(const std::shared_ptr<Connection>& conn);
  void remove(uint64_t id);
  std::size_t size() const;

  // Asks every connection to finish its current request (Connection::request_stop).
  void stop_all();
  // Closes every connection now (Connection::close).
  void close_all();

 private:
  void for_each(void (Connection::*action)());

  mutable std::mutex mutex_;
  std::unordered_map<uint64_t, std::weak_ptr<Connection>> connections_;
  std::function<void()> on_empty_;
};

}  // namespace depot::server
