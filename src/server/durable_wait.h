#pragma once
// Waiting, in a coroutine, for storage callbacks that arrive on other threads (a journal's or a
// log's "this is durable now"). Each callback() hands out one completion; wait() returns once
// every one handed out has run, with the first error among them. Completions are posted to the
// waiter's executor, so its state is only touched there.
#include <functional>
#include <memory>
#include <system_error>
#include <utility>  // boost/asio/awaitable.hpp (1.74) uses std::exchange without it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace depot::server {

class DurableWait {
 public:
  explicit DurableWait(const boost::asio::any_io_executor& executor)
      : state_(std::make_shared<State>(executor)) {}

  std::function<void(std::error_code)> callback() {
    ++state_->pending;
    return [state = state_](std::error_code ec) {
      boost::asio::post(state->timer.get_executor(), [state, ec] {
        if (ec && !state->result) state->result = ec;
        if (--state->pending == 0) state->timer.cancel();
      });
    };
  }

  boost::asio::awaitable<std::error_code> wait() {
    while (state_->pending > 0) {
      boost::system::error_code ignored;  // operation_aborted is the wake-up
      co_await state_->timer.async_wait(
          boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
    }
    co_return state_->result;
  }

 private:
  struct State {
    explicit State(const boost::asio::any_io_executor& executor)
        : timer(executor, boost::asio::steady_timer::time_point::max()) {}
    boost::asio::steady_timer timer;
    std::error_code result;
    int pending = 0;
  };
  std::shared_ptr<State> state_;
};

}  // namespace depot::server
