#include "server/connection.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <exception>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "server/endpoint.h"
#include "server/errc.h"
#include "server/protocol_handler.h"

namespace depot::server {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr std::size_t kInitialReadBuffer = 4096;
// A buffer grown for large requests is given back once drained, so that idle connections stay
// small; but not while they keep coming (a Kafka producer's 1 MiB requests), since a buffer
// made again for each costs the kernel a page fault and a cleared page per 4 KiB. Unless it is
// larger than kKeepBusyReadBuffer: rare requests that size are not worth holding memory for.
constexpr std::size_t kKeepReadBuffer = 64 * 1024;
constexpr std::size_t kKeepBusyReadBuffer = 16 << 20;
constexpr std::chrono::seconds kKeepBusyReadBufferFor{1};
// Buffers per gathered write: enough to send many small replies in one system call.
constexpr std::size_t kMaxGather = 64;
// How long linger_close() and wait_for_peer_close() wait for the peer to finish sending and close.
constexpr std::chrono::seconds kLingerTimeout{2};
constexpr std::chrono::minutes kDefaultIdleTimeout{5};

std::atomic<uint64_t> next_connection_id{1};

}  // namespace

Connection::Connection(tcp::socket socket, std::string face, ConnectionOptions options)
    : executor_(socket.get_executor()),
      socket_(std::move(socket)),
      face_(std::move(face)),
      id_(next_connection_id.fetch_add(1, std::memory_order_relaxed)),
      options_(options),
      idle_timeout_(options.idle_timeout.value_or(kDefaultIdleTimeout)),
      queue_changed_(executor_),
      watchdog_timer_(executor_) {
  boost::system::error_code ec;
  remote_ = socket_.remote_endpoint(ec);
  local_ = socket_.local_endpoint(ec);
  name_ = fmt::format("{}#{} ({})", face_, id_, ec ? "unknown peer" : format_endpoint(remote_));
}

void Connection::consume(std::size_t n) {
  read_begin_ += std::min(n, read_end_ - read_begin_);
}

// Makes space after read_end_. The buffer grows when one request does not fit (up to
// max_read_buffer), and when the last read filled it (up to kKeepReadBuffer): then more is waiting
// in the socket, and a larger buffer takes a stream of requests in fewer system calls. The start of
// an unfinished request moves to the front once the room after it is less than half the buffer,
// so reads are not cut short by the buffer's end. False when the buffer is full of one unfinished
// request.
bool Connection::make_read_room() {
  if (read_begin_ == read_end_) {
    // Everything was consumed: start over at the front, and give back a buffer grown for large
    // requests once they have stopped coming.
    read_begin_ = read_end_ = 0;
    if (read_buffer_.size() > kKeepReadBuffer &&
        (read_buffer_.size() > kKeepBusyReadBuffer ||
         Clock::now() - large_read_at_ >= kKeepBusyReadBufferFor)) {
      decltype(read_buffer_)().swap(read_buffer_);
    }
  }
  const std::size_t size = read_buffer_.size();
  const std::size_t unfinished = read_end_ - read_begin_;
  std::size_t wanted = std::max(kInitialReadBuffer, size);
  if (last_read_filled_ && wanted < kKeepReadBuffer) wanted = std::min(kKeepReadBuffer, 2 * wanted);
  if (unfinished == size && size > 0) {
    if (size >= options_.max_read_buffer) return false;
    wanted = std::max(wanted, 2 * size);
  }
  wanted = std::max(size, std::min(wanted, options_.max_read_buffer));
  if (size - read_end_ < size / 2) move_unfinished_to_front();
  if (wanted > size) read_buffer_.resize(wanted);
  return true;
}

void Connection::move_unfinished_to_front() {
  if (read_begin_ == 0) return;
  const std::size_t unfinished = read_end_ - read_begin_;
  std::memmove(read_buffer_.data(), read_buffer_.data() + read_begin_, unfinished);
  read_end_ = unfinished;
  read_begin_ = 0;
}

std::error_code Connection::read_error(const boost::system::error_code& ec) const {
  if (timed_out_) return errc::idle_timeout;
  // Our own shutdown_receive() for a stop shows up as end of file.
  if (stop_requested_ && ec == asio::error::eof && !closed_) return errc::stopping;
  return errc::connection_closed;
}

asio::awaitable<Result<std::size_t>> Connection::read_some() {
  if (closed_) co_return make_error_code(errc::connection_closed);
  if (timed_out_) co_return make_error_code(errc::idle_timeout);
  if (stop_requested_ && read_begin_ == read_end_) co_return make_error_code(errc::stopping);
  if (!make_read_room()) co_return make_error_code(errc::request_too_large);

  reading_ = true;
  const Clock::time_point started = Clock::now();
  read_deadline_ = started + idle_timeout_;
  boost::system::error_code ec;
  std::size_t n = co_await socket_.async_read_some(
      asio::buffer(read_buffer_.data() + read_end_, read_buffer_.size() - read_end_),
      asio::redirect_error(asio::use_awaitable, ec));
  reading_ = false;
  if (ec) {
    spdlog::trace("{}: read ended: {}", name_, ec.message());
    co_return read_error(ec);
  }
  last_read_filled_ = n == read_buffer_.size() - read_end_;
  read_end_ += n;
  if (read_end_ > kKeepReadBuffer) large_read_at_ = started;
  co_return n;
}

asio::awaitable<Result<void>> Connection::read_at_least(std::size_t n) {
  if (n > options_.max_read_buffer) co_return make_error_code(errc::request_too_large);
  if (read_buffer_.size() - read_begin_ < n) {
    // Room for the whole request in one step, rather than doubling the buffer towards it (each
    // step a copy of what is buffered).
    move_unfinished_to_front();
    if (read_buffer_.size() < n) read_buffer_.resize(n);
  }
  while (buffered().size() < n) {
    auto read = co_await read_some();
    if (!read) co_return read.error();
  }
  co_return success();
}

asio::awaitable<Result<void>> Connection::write(ByteSpan bytes) {
  Bytes copy(bytes.begin(), bytes.end());
  co_return co_await write(std::move(copy));
}

asio::awaitable<Result<void>> Connection::write(Bytes&& bytes) {
  return enqueue(Chunk{std::move(bytes), {}});
}

asio::awaitable<Result<void>> Connection::write(const FileRange& range) {
  return enqueue(Chunk{{}, range});
}

asio::awaitable<Result<void>> Connection::enqueue(Chunk chunk) {
  const std::size_t size = chunk.size();
  while (!closed_ && queued_bytes_ > 0 && queued_bytes_ + size > options_.max_write_queue) {
    co_await queue_changed_.wait();
  }
  if (closed_) co_return make_error_code(errc::connection_closed);
  if (size == 0) co_return success();
  queued_bytes_ += size;
  write_queue_.push_back(std::move(chunk));
  queue_changed_.notify_all();
  co_return success();
}

asio::awaitable<Result<void>> Connection::flush() {
  while (!closed_ && queued_bytes_ > 0) {
    co_await queue_changed_.wait();
  }
  if (queued_bytes_ > 0) co_return make_error_code(errc::connection_closed);
  co_return success();
}

asio::awaitable<void> Connection::write_loop() {
  while (!closed_) {
    if (write_queue_.empty()) {
      co_await queue_changed_.wait();
      continue;
    }
    writing_ = true;
    write_deadline_ = Clock::now() + idle_timeout_;
    Result<std::size_t> sent = make_error_code(errc::connection_closed);
    if (write_queue_.front().file.size > 0) {
      sent = co_await send_file();
    } else {
      sent = co_await send_buffers();
    }
    writing_ = false;
    if (!sent) {
      close();
      break;
    }
    std::size_t n = sent.value();
    queued_bytes_ -= n;
    n += write_offset_;
    while (!write_queue_.empty() && n >= write_queue_.front().size()) {
      n -= write_queue_.front().size();
      write_queue_.pop_front();
    }
    write_offset_ = n;
    queue_changed_.notify_all();
  }
}

asio::awaitable<Result<std::size_t>> Connection::send_buffers() {
  std::array<asio::const_buffer, kMaxGather> buffers;
  std::size_t count = 0;
  bool file_follows = false;
  for (auto it = write_queue_.begin(); it != write_queue_.end() && count < kMaxGather; ++it) {
    if (it->file.size > 0) {
      file_follows = true;
      break;
    }
    std::size_t skip = count == 0 ? write_offset_ : 0;
    buffers[count++] = asio::buffer(it->bytes.data() + skip, it->bytes.size() - skip);
  }
  // Ahead of a file range (a response's header before its record set), the kernel may hold the
  // bytes back to send them in one segment with what follows.
  const tcp::socket::message_flags flags = file_follows ? MSG_MORE : 0;
  boost::system::error_code ec;
  std::size_t n = co_await socket_.async_send(std::span(buffers.data(), count), flags,
                                              asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    spdlog::debug("{}: write failed: {}", name_, ec.message());
    co_return make_error_code(errc::connection_closed);
  }
  co_return n;
}

asio::awaitable<Result<std::size_t>> Connection::send_file() {
  const FileRange& range = write_queue_.front().file;
  boost::system::error_code ec;
  if (!socket_.native_non_blocking()) socket_.native_non_blocking(true, ec);
  for (;;) {
    auto offset = static_cast<off_t>(range.offset + write_offset_);
    ssize_t n = ::sendfile(socket_.native_handle(), range.fd, &offset, range.size - write_offset_);
    if (n > 0) co_return static_cast<std::size_t>(n);
    if (n == 0) {
      // The file is shorter than the range it was queued as: the peer has part of a reply.
      spdlog::error("{}: closing, a file being sent ended {} bytes early", name_,
                    range.size - write_offset_);
      co_return make_error_code(errc::connection_closed);
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      spdlog::debug("{}: sendfile failed: {}", name_, std::strerror(errno));
      co_return make_error_code(errc::connection_closed);
    }
    co_await socket_.async_wait(tcp::socket::wait_write,
                                asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      spdlog::debug("{}: write failed: {}", name_, ec.message());
      co_return make_error_code(errc::connection_closed);
    }
  }
}

asio::awaitable<void> Connection::watchdog() {
  while (!closed_) {
    auto now = Clock::now();
    if (reading_ && !timed_out_ && now >= read_deadline_) {
      spdlog::info("{}: closing, idle for {} ms", name_, idle_timeout_.count());
      timed_out_ = true;
      shutdown_receive();  // the pending read ends; writes in flight (e.g. a goodbye) go on
    }
    if (writing_ && now >= write_deadline_) {
      spdlog::info("{}: closing, the peer has read nothing for {} ms", name_,
                   idle_timeout_.count());
      close();
      break;
    }
    // Without a pending read or write, wake one timeout from now: a read that starts meanwhile
    // has a later deadline, so it is never checked late.
    auto next = now + idle_timeout_;
    if (reading_ && !timed_out_) next = std::min(next, read_deadline_);
    if (writing_) next = std::min(next, write_deadline_);
    watchdog_timer_.expires_at(next);
    boost::system::error_code ignored;
    co_await watchdog_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

void Connection::shutdown_receive() {
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_receive, ignored);
}

void Connection::request_stop() {
  if (stop_requested_) return;
  stop_requested_ = true;
  // A read waiting on an empty buffer is idle: wake it. A partial request may finish (within the
  // shutdown grace period).
  if (reading_ && read_begin_ == read_end_) shutdown_receive();
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  watchdog_timer_.cancel();
  queue_changed_.notify_all();
}

asio::awaitable<void> Connection::linger_close() {
  if (closed_) co_return;
  boost::system::error_code ec;
  bool unread_input = read_begin_ != read_end_ || socket_.available(ec) > 0;
  if (!unread_input) {
    close();  // nothing unread, so closing sends a plain FIN after our last reply
    co_return;
  }
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  co_await discard_until_peer_closes();
  close();
}

asio::awaitable<void> Connection::wait_for_peer_close() {
  if (closed_) co_return;
  co_await discard_until_peer_closes();
}

asio::awaitable<void> Connection::discard_until_peer_closes() {
  asio::steady_timer timer(executor_, kLingerTimeout);
  timer.async_wait([self = shared_from_this()](const boost::system::error_code& waited) {
    if (!waited) self->close();
  });
  boost::system::error_code ec;
  std::array<std::byte, 4096> scratch;
  while (!closed_ && !ec) {
    co_await socket_.async_read_some(asio::buffer(scratch),
                                     asio::redirect_error(asio::use_awaitable, ec));
  }
  timer.cancel();
}

asio::awaitable<void> Connection::run(ProtocolHandler& handler) {
  // The lambdas hold the connection alive for as long as the writer and the watchdog run.
  auto self = shared_from_this();
  asio::co_spawn(
      executor_, [self] { return self->write_loop(); }, asio::detached);
  if (idle_timeout_.count() > 0) {
    asio::co_spawn(
        executor_, [self] { return self->watchdog(); }, asio::detached);
  }
  spdlog::debug("{}: connected", name_);

  bool failed = false;
  try {
    co_await handler.serve(*this);
  } catch (const std::exception& e) {
    spdlog::error("{}: closing after an error in the {} handler: {}", name_, face_, e.what());
    failed = true;
  } catch (...) {
    spdlog::error("{}: closing after an unknown error in the {} handler", name_, face_);
    failed = true;
  }
  if (failed) {
    close();  // queued bytes may be half a reply: do not send them
  } else {
    // Bounded by the watchdog when the peer stops reading; failing means the connection closed,
    // which leaves linger_close() nothing to do.
    (void)co_await flush();
    co_await linger_close();
  }
  spdlog::debug("{}: closed", name_);
}

}  // namespace depot::server
