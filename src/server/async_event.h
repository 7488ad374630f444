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

  void notify_all() { timer_.cancel(); }

 private:
  boost::asio::steady_timer timer_;
};

}  // namespace depot::server
