#pragma once
// One client connection as a protocol face sees it: a bounded read buffer, a bounded write queue
// drained by its own coroutine, an idle watchdog and the server's stop flag. Every method must be
// called on the connection's strand (executor()), which is where serve() runs.
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>  // boost/asio/awaitable.hpp (1.74) uses std::exchange without it
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/bytes.h"
#include "common/file_range.h"
#include "common/result.h"
#include "server/async_event.h"

namespace depot::server {

class ProtocolHandler;

// An allocator that leaves new elements uninitialised: a read buffer is written by the socket
// before anything reads it, so zeroing it as it grows would be a pass over every byte for nothing.
template <class T>
struct UninitialisedAllocator : std::allocator<T> {
  UninitialisedAllocator() = default;
  template <class U>
  explicit UninitialisedAllocator(const UninitialisedAllocator<U>& /*other*/) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
};

struct ConnectionOptions {
  // The largest request the face accepts: read_some() fails with request_too_large when this
  // many bytes are buffered and the face still wants more.
  std::size_t max_read_buffer = 1 << 20;
  // Bytes queued for the peer beyond which write() waits, so a slow reader slows its producer.
  std::size_t max_write_queue = 4 << 20;
  // Close when the peer sends nothing for this long while we wait for it, or reads nothing for this
  // long while we write to it. nullopt takes the server's idle_timeout; zero disables.
  std::optional<std::chrono::milliseconds> idle_timeout;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Clock = std::chrono::steady_clock;

  Connection(boost::asio::ip::tcp::socket socket, std::string face, ConnectionOptions options);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // --- Reading
  // Bytes received and not yet consumed.
  ByteSpan buffered() const { return {read_buffer_.data() + read_begin_, read_end_ - read_begin_}; }
  // `view`, a part of buffered(), as bytes the face may rewrite in place (a request's record set
  // given its offsets): the buffer is the connection's own, const only to keep reads honest.
  std::span<std::byte> writable(ByteSpan view) {
    const auto at = static_cast<size_t>(view.data() - read_buffer_.data());
    assert(at >= read_begin_ && at + view.size() <= read_end_);
    return {read_buffer_.data() + at, view.size()};
  }
  // Drops the first n buffered bytes (a request the face has handled). They stay in place, so
  // views of them remain valid, until the next read_some().
  void consume(std::size_t n);
  // Waits for more bytes and appends them to buffered(); returns how many arrived. Errors
  // (errc in server/errc.h): request_too_large when max_read_buffer bytes are already buffered;
  // idle_timeout; stopping when the server shuts down and nothing is buffered; connection_closed
  // when the peer closed or reset, or the server force-closed the connection.
  boost::asio::awaitable<Result<std::size_t>> read_some();
  // read_some() until at least n bytes are buffered, making room for all n at once.
  boost::asio::awaitable<Result<void>> read_at_least(std::size_t n);

  // --- Writing
  // Queues bytes for the peer. Waits first while the queue holds more than max_write_queue bytes
  // (a single larger write is queued alone). Fails with connection_closed.
  boost::asio::awaitable<Result<void>> write(ByteSpan bytes);
  // The same, taking the buffer instead of copying it.
  boost::asio::awaitable<Result<void>> write(Bytes&& bytes);
  boost::asio::awaitable<Result<void>> write(std::string_view text) {
    return write(as_bytes(text));
  }
  // Queues a range of a file, which the kernel sends from the page cache (sendfile) without it
  // being read into memory. Should the file turn out shorter, the connection is closed.
  boost::asio::awaitable<Result<void>> write(const FileRange& range);
  // Waits until everything queued has been handed to the kernel.
  boost::asio::awaitable<Result<void>> flush();

  // --- State
  // The server is shutting down: finish the current request, then return from serve().
  bool stopping() const { return stop_requested_; }
  bool closed() const { return closed_; }
  // Closes the socket now; pending and later reads and writes fail with connection_closed.
  void close();
  // Discards what the peer sends until it closes its end (bounded in time; then the socket is
  // closed): for protocols where our last reply tells the peer to close first (AMQP's close-ok).
  // Closing ourselves while it still writes would reset the connection under its last frames.
  boost::asio::awaitable<void> wait_for_peer_close();

  const std::string& face() const { return face_; }
  uint64_t id() const { return id_; }
  const boost::asio::ip::tcp::endpoint& remote() const { return remote_; }
  // The address the peer reached us on (what a Kafka client is told to come back to).
  const boost::asio::ip::tcp::endpoint& local() const { return local_; }
  // "kafka#12 (127.0.0.1:50522)", for log lines.
  const std::string& name() const { return name_; }
  const boost::asio::any_io_executor& executor() const { return executor_; }

  // --- Used by the server
  // Runs handler.serve(*this) with the writer and the watchdog, then flushes and closes.
  boost::asio::awaitable<void> run(ProtocolHandler& handler);
  // Sets stopping(); an idle read (nothing buffered) is woken with errc::stopping.
  void request_stop();

 private:
  // A queued write: bytes, or a range of a file.
  struct Chunk {
    Bytes bytes;
    FileRange file;
    std::size_t size() const { return bytes.size() + file.size; }
  };
  boost::asio::awaitable<Result<void>> enqueue(Chunk chunk);
  boost::asio::awaitable<void> write_loop();
  // One system call's worth of the queue's front: the byte chunks up to the next file range, or
  // a file range. How many bytes went.
  boost::asio::awaitable<Result<std::size_t>> send_buffers();
  boost::asio::awaitable<Result<std::size_t>> send_file();
  boost::asio::awaitable<void> watchdog();
  // Closes after the last reply. With input still unread it first half-closes and discards what
  // the peer sends until it closes too (bounded in time): closing with unread input sends a reset,
  // which can destroy our last reply (say, "request too large") before the peer reads it.
  boost::asio::awaitable<void> linger_close();
  boost::asio::awaitable<void> discard_until_peer_closes();
  std::error_code read_error(const boost::system::error_code& ec) const;
  void shutdown_receive();
  bool make_read_room();
  // Moves the buffered bytes not yet consumed to the start of the buffer.
  void move_unfinished_to_front();

  boost::asio::any_io_executor executor_;
  boost::asio::ip::tcp::socket socket_;
  std::string face_;
  uint64_t id_;
  boost::asio::ip::tcp::endpoint remote_;
  boost::asio::ip::tcp::endpoint local_;
  std::string name_;
  ConnectionOptions options_;
  std::chrono::milliseconds idle_timeout_;

  std::vector<std::byte, UninitialisedAllocator<std::byte>> read_buffer_;
  std::size_t read_begin_ = 0;
  std::size_t read_end_ = 0;
  bool last_read_filled_ = false;  // it took all the room it was offered: more may be waiting
  // When the buffer last held more than it keeps when idle: a grown buffer is kept while the
  // connection keeps using it.
  Clock::time_point large_read_at_{};
  bool reading_ = false;
  Clock::time_point read_deadline_{};

  std::deque<Chunk> write_queue_;
  std::size_t write_offset_ = 0;  // bytes of write_queue_.front() already sent
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  Clock::time_point write_deadline_{};
  AsyncEvent queue_changed_;  // wakes the writer and writers waiting for room or a flush

  boost::asio::steady_timer watchdog_timer_;
  bool stop_requested_ = false;
  bool timed_out_ = false;
  bool closed_ = false;
};

}  // namespace depot::server
