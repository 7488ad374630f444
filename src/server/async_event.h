#pragma once
// A condition variable for coroutines on one strand (Asio 1.74 has no channels): waiters park on a
// timer that never expires and notify_all() cancels it. Waiters re-check their condition in a loop.
#include <chrono>
#include <utility>  // boost/asio/awaitable.hpp (1.74) uses std::exchange without it

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace depot::server {

class AsyncEvent {
 public:
  explicit AsyncEvent(const boost::asio::any_io_executor& executor)
      : timer_(executor, boost::asio::steady_timer::time_point::max()) {}

  boost::asio::awaitable<void> wait() {
    boost::system::error_code ignored;  // operation_aborted is the notification
    co_await timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
  }

  // wait(), for at most until `deadline`. Other waiters may wake then too (they re-check).
  boost::asio::awaitable<void> wait_until(boost::asio::steady_timer::time_point deadline) {
    timer_.expires_at(deadline);
    co_await wait();
    timer_.expires_at(boost::asio::steady_timer::time_point::max());
  }

  void notify_all() { timer_.cancel(); }

 private:
  boost::asio::steady_timer timer_;
};

}  // namespace depot::server
