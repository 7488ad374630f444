// The connection framework with a line-echo protocol: a real Server on 127.0.0.1:0, driven by
// blocking clients from the test thread while the server runs on its own thread.
#include "server/connection.h"

#include <atomic>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "server/protocol_handler.h"
#include "server/server.h"
#include "unit/server/test_support.h"

namespace depot::server {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::TestClient;
using Clock = std::chrono::steady_clock;

// One request per line:
//   "sleep MS TEXT"  replies TEXT after MS milliseconds (a slow request)
//   "flood BYTES"    replies BYTES bytes of 'x' in 4 KiB writes, then "\n"
//   "file PATH OFFSET SIZE"  replies "<", SIZE bytes of the file at OFFSET (sent from the file),
//                    ">\n"
//   "sized N"        then N bytes (read with read_at_least): replies "sized N SUM", SUM the sum
//                    of the bytes
//   "throw"          throws from the handler
//   anything else    is echoed
// Read errors are reported like a protocol would: "ERR too large" for an oversized request.
class EchoHandler : public ProtocolHandler {
 public:
  std::atomic<int> requests_started{0};
  std::atomic<size_t> flooded{0};

  asio::awaitable<void> serve(Connection& conn) override {
    while (!conn.stopping()) {
      std::string_view data = as_chars(conn.buffered());
      auto newline = data.find('\n');
      if (newline == std::string_view::npos) {
        auto read = co_await conn.read_some();
        if (!read) {
          if (read.error() == errc::request_too_large) co_await conn.write("ERR too large\n");
          co_return;
        }
        continue;
      }
      std::string line(data.substr(0, newline + 1));
      conn.consume(newline + 1);
      ++requests_started;
      if (line == "throw\n") throw std::runtime_error("handler failure for the test");
      if (line.starts_with("sized ")) {
        const size_t size = std::stoul(line.substr(6));
        if (!co_await conn.read_at_least(size)) co_return;
        uint64_t sum = 0;
        for (std::byte b : conn.buffered().first(size))
          sum += static_cast<uint8_t>(b);
        conn.consume(size);
        line = "sized " + std::to_string(size) + " " + std::to_string(sum) + "\n";
      }
      if (line.starts_with("sleep ")) {
        auto space = line.find(' ', 6);
        co_await sleep(conn, std::chrono::milliseconds(std::stoi(line.substr(6, space - 6))));
        line = line.substr(space + 1);
      }
      if (line.starts_with("file ")) {
        if (!co_await send_file(conn, line)) co_return;
        continue;
      }
      if (line.starts_with("flood ")) {
        co_await flood(conn, std::stoul(line.substr(6)));
        line = "\n";
      }
      if (!co_await conn.write(line)) co_return;
    }
  }

 private:
  // Waits in short steps so that a force-closed connection ends the request, as a real handler's
  // domain waits will.
  static asio::awaitable<void> sleep(Connection& conn, std::chrono::milliseconds duration) {
    asio::steady_timer timer(conn.executor());
    auto deadline = Clock::now() + duration;
    while (!conn.closed() && Clock::now() < deadline) {
      timer.expires_after(std::min<Clock::duration>(10ms, deadline - Clock::now()));
      boost::system::error_code ignored;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
  }

  static asio::awaitable<bool> send_file(Connection& conn, const std::string& line) {
    std::istringstream words(line.substr(5));
    std::string path;
    FileRange range;
    words >> path >> range.offset >> range.size;
    range.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (range.fd < 0) co_return false;
    range.owner = std::shared_ptr<void>(nullptr, [fd = range.fd](void*) { ::close(fd); });
    if (!co_await conn.write("<")) co_return false;
    if (!co_await conn.write(range)) co_return false;
    co_return static_cast<bool>(co_await conn.write(">\n"));
  }

  asio::awaitable<void> flood(Connection& conn, size_t bytes) {
    const std::string chunk(4096, 'x');
    for (size_t sent = 0; sent < bytes; sent += chunk.size()) {
      if (!co_await conn.write(chunk)) co_return;
      flooded += chunk.size();
    }
  }
};

class ServerConnectionTest : public ::testing::Test {
 protected:
  void start(ConnectionOptions options = {}, std::chrono::milliseconds grace = 2s) {
    ServerOptions server_options{{{"echo", Endpoint{"127.0.0.1", 0}}}, grace, 5min, false};
    server_ = std::make_unique<Server>(server_options);
    handler_ = std::make_shared<EchoHandler>();
    ASSERT_TRUE(server_->register_face("echo", handler_, options));
    auto started = server_->start();
    ASSERT_TRUE(started) << started.error().message;
    port_ = server_->local_endpoint("echo")->port();
    thread_ = std::thread([this] {
      server_->run();
      stopped_ = true;
    });
  }

  void TearDown() override {
    if (!server_) return;
    server_->stop();
    thread_.join();
  }

  // Polls until run() has returned; false if it does not within the timeout.
  bool wait_stopped(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (!stopped_ && Clock::now() < deadline)
      std::this_thread::sleep_for(5ms);
    return stopped_;
  }

  template <class Predicate>
  static bool eventually(Predicate predicate, std::chrono::milliseconds timeout = 2s) {
    auto deadline = Clock::now() + timeout;
    while (!predicate()) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(2ms);
    }
    return true;
  }

  std::unique_ptr<Server> server_;
  std::shared_ptr<EchoHandler> handler_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

TEST_F(ServerConnectionTest, EchoesRequestsIncludingPipelinedOnes) {
  start();
  TestClient client(port_);
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.send("hello\n"));
  EXPECT_EQ(client.read_line(), "hello\n");
  ASSERT_TRUE(client.send("one\ntwo\nthr"));
  ASSERT_TRUE(client.send("ee\n"));
  EXPECT_EQ(client.read_line(), "one\n");
  EXPECT_EQ(client.read_line(), "two\n");
  EXPECT_EQ(client.read_line(), "three\n");
}

// A burst of pipelined requests fills the read buffer again and again: it grows, and unfinished
// requests move to its front. Every request must come through whole and in order, including ones
// larger than the initial buffer and ones cut at every possible point.
TEST_F(ServerConnectionTest, BurstOfPipelinedRequestsOfMixedSizesIsReadWhole) {
  start();
  TestClient client(port_);
  std::vector<std::string> lines;
  std::string burst;
  for (int i = 0; i < 400; ++i) {
    const size_t length = (static_cast<size_t>(i) * 7919) % 700 + (i % 50 == 7 ? 9000 : 0);
    lines.push_back(std::string(length, static_cast<char>('a' + i % 26)) + std::to_string(i) +
                    "\n");
    burst += lines.back();
  }
  ASSERT_TRUE(client.send(burst));
  for (const std::string& line : lines)
    ASSERT_EQ(client.read_line(), line);
}

// Length-prefixed requests (read_at_least, as the Kafka face reads them) of every size up to the
// limit, pipelined between small ones: each is read whole, whether it starts at the buffer's front
// or after others, and whether the buffer was grown for an earlier one or not.
TEST_F(ServerConnectionTest, SizedRequestsUpToTheLimitArePipelinedWhole) {
  ConnectionOptions options;
  options.max_read_buffer = 2 << 20;
  start(options);
  TestClient client(port_);
  std::vector<std::string> replies;
  std::string burst;
  for (size_t i = 0; i < 40; ++i) {
    const size_t size = i % 4 == 3 ? (2 << 20) - 1 : (i * 104'729) % (1 << 20);
    std::string body(size, '\0');
    uint64_t sum = 0;
    for (size_t j = 0; j < size; ++j) {
      body[j] = static_cast<char>((i + j * 31) & 0xff);
      sum += static_cast<uint8_t>(body[j]);
    }
    burst += "sized " + std::to_string(size) + "\n" + body + "small " + std::to_string(i) + "\n";
    replies.push_back("sized " + std::to_string(size) + " " + std::to_string(sum) + "\n");
    replies.push_back("small " + std::to_string(i) + "\n");
  }
  std::thread sender([&] { EXPECT_TRUE(client.send(burst)); });
  for (const std::string& reply : replies)
    ASSERT_EQ(client.read_line(), reply);
  sender.join();
}

TEST_F(ServerConnectionTest, OversizedRequestIsReportedThenClosed) {
  ConnectionOptions options;
  options.max_read_buffer = 1024;
  start(options);
  TestClient client(port_);
  ASSERT_TRUE(client.send(std::string(4096, 'a')));  // no newline: a request that never ends
  EXPECT_EQ(client.read_line(), "ERR too large\n");
  EXPECT_TRUE(client.wait_closed());

  // A request just under the limit is fine, on a new connection.
  TestClient next(port_);
  std::string big(1023, 'b');
  ASSERT_TRUE(next.send(big + "\n"));
  EXPECT_EQ(next.read_line(), big + "\n");
}

TEST_F(ServerConnectionTest, IdleConnectionIsClosedActiveOneIsNot) {
  ConnectionOptions options;
  // Generous margins: a loaded CI machine may delay any of these steps by a few hundred ms.
  options.idle_timeout = 800ms;
  start(options);
  TestClient idle(port_);
  TestClient active(port_);
  auto begin = Clock::now();
  for (int i = 0; i < 6; ++i) {
    std::this_thread::sleep_for(200ms);
    ASSERT_TRUE(active.send("ping\n"));
    ASSERT_EQ(active.read_line(), "ping\n") << "active connection closed after " << i << " pings";
  }
  EXPECT_TRUE(idle.wait_closed(3s));
  EXPECT_GE(Clock::now() - begin, 790ms);
  ASSERT_TRUE(active.send("still here\n"));
  EXPECT_EQ(active.read_line(), "still here\n");
}

TEST_F(ServerConnectionTest, HandlerErrorClosesOnlyItsConnection) {
  start();
  TestClient bystander(port_);
  ASSERT_TRUE(bystander.send("before\n"));
  ASSERT_EQ(bystander.read_line(), "before\n");

  TestClient failing(port_);
  ASSERT_TRUE(failing.send("throw\n"));
  EXPECT_TRUE(failing.wait_closed());

  ASSERT_TRUE(bystander.send("after\n"));
  EXPECT_EQ(bystander.read_line(), "after\n");
  TestClient newcomer(port_);
  ASSERT_TRUE(newcomer.send("new\n"));
  EXPECT_EQ(newcomer.read_line(), "new\n");
}

TEST_F(ServerConnectionTest, WritesWaitForASlowReader) {
  ConnectionOptions options;
  options.max_write_queue = 64 * 1024;
  start(options);
  TestClient client(port_);
  constexpr size_t kTotal = 32u << 20;  // well beyond what kernel socket buffers absorb
  ASSERT_TRUE(client.send("flood " + std::to_string(kTotal) + "\n"));
  ASSERT_TRUE(eventually([&] { return handler_->flooded > 0; }));
  std::this_thread::sleep_for(100ms);
  size_t while_not_reading = handler_->flooded;
  EXPECT_LT(while_not_reading, kTotal) << "the handler was not held back";

  // Reading everything lets the handler finish.
  std::string received = client.read_bytes(kTotal + 1, 5s);
  ASSERT_EQ(received.size(), kTotal + 1);
  EXPECT_EQ(received.back(), '\n');
  EXPECT_EQ(handler_->flooded, kTotal);
}

TEST_F(ServerConnectionTest, FileRangesAreSentInOrderWithTheBytesAroundThem) {
  start();
  testing::TempDir dir;
  const std::filesystem::path path = dir.path() / "data";
  std::string content(12u << 20, '\0');  // beyond what socket buffers absorb at once
  for (size_t i = 0; i < content.size(); ++i)
    content[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  std::ofstream(path, std::ios::binary) << content;

  TestClient client(port_);
  const size_t offset = 4093;
  const size_t size = content.size() - 2 * offset;
  ASSERT_TRUE(client.send("file " + path.string() + " " + std::to_string(offset) + " " +
                          std::to_string(size) + "\nfile " + path.string() + " 0 3\nafter\n"));
  const std::string expected =
      "<" + content.substr(offset, size) + ">\n<" + content.substr(0, 3) + ">\nafter\n";
  EXPECT_EQ(client.read_bytes(expected.size(), 10s) == expected, true);
}

TEST_F(ServerConnectionTest, AFileShorterThanItsRangeClosesTheConnection) {
  start();
  testing::TempDir dir;
  const std::filesystem::path path = dir.path() / "data";
  std::ofstream(path, std::ios::binary) << "0123456789";
  TestClient client(port_);
  ASSERT_TRUE(client.send("file " + path.string() + " 4 100\n"));
  // What the file has goes out, then the connection closes instead of the reply going on.
  EXPECT_EQ(client.read_bytes(7), "<456789");
  EXPECT_TRUE(client.wait_closed());
}

TEST_F(ServerConnectionTest, StopLetsInFlightRequestFinishAndClosesIdleConnections) {
  start();
  TestClient busy(port_);
  TestClient idle(port_);
  ASSERT_TRUE(idle.send("warm up\n"));
  ASSERT_EQ(idle.read_line(), "warm up\n");
  ASSERT_TRUE(busy.send("sleep 1000 done\n"));
  ASSERT_TRUE(eventually([&] { return handler_->requests_started == 2; }));

  auto begin = Clock::now();
  server_->stop();
  EXPECT_TRUE(idle.wait_closed(3s));
  EXPECT_LT(Clock::now() - begin, 900ms) << "the idle connection waited for the busy one";
  EXPECT_TRUE(eventually([&] { return !TestClient(port_).connected(); }))
      << "still accepting after stop";

  EXPECT_EQ(busy.read_line(5s), "done\n");
  EXPECT_TRUE(busy.wait_closed(5s));
  EXPECT_TRUE(wait_stopped(3s));
}

TEST_F(ServerConnectionTest, GraceExpiryClosesWhatIsStillBusy) {
  start({}, /*grace=*/100ms);
  TestClient busy(port_);
  ASSERT_TRUE(busy.send("sleep 10000 never\n"));
  ASSERT_TRUE(eventually([&] { return handler_->requests_started == 1; }));
  auto begin = Clock::now();
  server_->stop();
  EXPECT_TRUE(busy.wait_closed(3s));
  EXPECT_TRUE(wait_stopped(3s));
  EXPECT_LT(Clock::now() - begin, 5s);
}

TEST_F(ServerConnectionTest, SecondStopClosesBusyConnectionsAtOnce) {
  start({}, /*grace=*/10s);
  TestClient busy(port_);
  ASSERT_TRUE(busy.send("sleep 10000 never\n"));
  ASSERT_TRUE(eventually([&] { return handler_->requests_started == 1; }));
  auto begin = Clock::now();
  server_->stop();
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(stopped_) << "the busy request was not given its grace period";
  server_->stop();
  EXPECT_TRUE(busy.wait_closed(3s));
  EXPECT_TRUE(wait_stopped(3s));
  EXPECT_LT(Clock::now() - begin, 5s);
}

TEST_F(ServerConnectionTest, RegisteringAnUnknownFaceFails) {
  Server server(ServerOptions{{{"echo", Endpoint{"127.0.0.1", 0}}}, 1s, 1s, false});
  auto registered = server.register_face("kafka", std::make_shared<EchoHandler>());
  ASSERT_FALSE(registered);
  EXPECT_NE(registered.error().message.find("kafka"), std::string::npos);
}

TEST_F(ServerConnectionTest, BindFailureNamesFaceAndAddress) {
  start();
  Server second(ServerOptions{{{"echo", Endpoint{"127.0.0.1", port_}}}, 1s, 1s, false});
  ASSERT_TRUE(second.register_face("echo", std::make_shared<EchoHandler>()));
  auto started = second.start();
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().code, errc::listen_failed);
  EXPECT_NE(started.error().message.find("echo on 127.0.0.1:" + std::to_string(port_)),
            std::string::npos)
      << started.error().message;
}

}  // namespace
}  // namespace depot::server
