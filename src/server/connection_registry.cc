#include "server/connection_registry.h"

#include <vector>

#include <boost/asio/post.hpp>

#include "server/connection.h"

namespace depot::server {

void ConnectionRegistry::set_on_empty(std::function<void()> on_empty) {
  std::lock_guard lock(mutex_);
  on_empty_ = std::move(on_empty);
}

void ConnectionRegistry::add(const std::shared_ptr<Connection>& conn) {
  std::lock_guard lock(mutex_);
  connections_.emplace(conn->id(), conn);
}

void ConnectionRegistry::remove(uint64_t id) {
  std::function<void()> notify;
  {
    std::lock_guard lock(mutex_);
    connections_.erase(id);
    if (connections_.empty()) notify = on_empty_;
  }
  if (notify) notify();
}

std::size_t ConnectionRegistry::size() const {
  std::lock_guard lock(mutex_);
  return connections_.size();
}

void ConnectionRegistry::stop_all() {
  for_each(&Connection::request_stop);
}

void ConnectionRegistry::close_all() {
  for_each(&Connection::close);
}

void ConnectionRegistry::for_each(void (Connection::*action)()) {
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, weak] : connections_) {
      if (auto conn = weak.lock()) live.push_back(std::move(conn));
    }
  }
  // Connection state belongs to its strand: act there, not on the caller's thread.
  for (auto& conn : live) {
    boost::asio::post(conn->executor(), [conn, action] { ((*conn).*action)(); });
  }
}

}  // namespace depot::server
