#include "protocol/faktory/service.h"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "server/connection.h"

namespace depot::faktory {

namespace asio = boost::asio;

FaktoryService::FaktoryService(std::unique_ptr<jobs::JobStore> store,
                               asio::any_io_executor executor, FaktoryOptions options)
    : store_(std::move(store)),
      executor_(std::move(executor)),
      options_(std::move(options)),
      maintenance_timer_(executor_) {}

FaktoryService::~FaktoryService() {
  stop();
}

void FaktoryService::start() {
  // A job can become ready from any connection's PUSH or from maintenance; both run on the
  // io_context, but post anyway so the store's lock is never held while waking fetchers.
  std::weak_ptr<FaktoryService> weak = weak_from_this();
  store_->set_ready_listener([weak, executor = executor_](const std::string&) {
    asio::post(executor, [weak] {
      if (auto self = weak.lock()) self->wake_fetchers();
    });
  });
  schedule_maintenance();
}

void FaktoryService::stop() {
  if (stopped_) return;
  stopped_ = true;
  maintenance_timer_.cancel();
  wake_fetchers();
  if (store_) {
    store_->set_ready_listener(nullptr);
    if (auto closed = store_->close(); !closed) {
      spdlog::error("jobs: closing the journal failed: {}", closed.error().message());
    }
  }
}

void FaktoryService::schedule_maintenance() {
  if (stopped_) return;
  maintenance_timer_.expires_after(options_.maintenance_interval);
  std::weak_ptr<FaktoryService> weak = weak_from_this();
  maintenance_timer_.async_wait([weak](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->stopped_) return;
    self->maintain();
    self->schedule_maintenance();
  });
}

void FaktoryService::maintain() {
  if (auto ticked = store_->tick(); !ticked) {
    spdlog::error("jobs: maintenance failed: {}", ticked.error().message());
  }
  const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  for (const auto& wid : workers_.reap(now)) {
    spdlog::info("jobs: worker {} sent no heartbeat for {} s; closing its connections", wid,
                 jobs::WorkerRegistry::kHeartbeatTimeoutSeconds);
    auto [begin, end] = worker_connections_.equal_range(wid);
    for (auto it = begin; it != end; ++it)
      it->second->close();
  }
}

void FaktoryService::wake_fetchers() {
  for (auto* timer : fetch_waiters_)
    timer->cancel();
}

asio::awaitable<void> FaktoryService::wait_for_jobs(
    std::chrono::steady_clock::time_point deadline) {
  if (stopped_) co_return;
  asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
  // Unregisters however the wait ends, even if the coroutine is destroyed while suspended (and
  // then only if the service still exists).
  struct Registration {
    std::weak_ptr<FaktoryService> service;
    asio::steady_timer* timer;
    ~Registration() {
      if (auto s = service.lock()) s->fetch_waiters_.erase(timer);
    }
  } registration{weak_from_this(), &timer};
  fetch_waiters_.insert(&timer);
  boost::system::error_code ignored;  // expiry and cancellation both mean "look again"
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

void FaktoryService::attach_worker(const std::string& wid, server::Connection* connection) {
  worker_connections_.emplace(wid, connection);
}

void FaktoryService::detach_worker(const std::string& wid, server::Connection* connection) {
  auto [begin, end] = worker_connections_.equal_range(wid);
  for (auto it = begin; it != end; ++it) {
    if (it->second == connection) {
      worker_connections_.erase(it);
      break;
    }
  }
}

}  // namespace depot::faktory
