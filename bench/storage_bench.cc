// `depot bench storage`: the storage engine measured against the disk under it, in one run.
//   (a) raw pwrite+fdatasync of 1 MiB chunks: the disk's durable sequential bandwidth
//   (b) Log appends of 64 KiB batches of 1 KiB records, fsync=always, 1/8/64 appenders
//   (c) 4 KiB appends/s: one fdatasync per append (raw) vs the log's group commit, 64 appenders
//       (run first, on a quiet disk; each later step starts after a sync() and a pause)
//   (d) sequential reads through Log::read from the page cache
#include "bench/storage_bench.h"

#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <functional>
#include <thread>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include "bench/measure.h"
#include "storage/log.h"
#include "storage/record_batch.h"
#include "storage/sync_service.h"

namespace depot::bench {
namespace {

using Clock = std::chrono::steady_clock;
namespace st = depot::storage;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

void progress(const std::string& line) {
  std::fprintf(stderr, "bench: %s\n", line.c_str());
  std::fflush(stderr);
}

Bytes make_batch(uint32_t record_bytes, uint32_t batch_bytes) {
  st::RecordBatchBuilder builder;
  std::string value(record_bytes, 'x');
  while (builder.size_bytes() + record_bytes + 16 <= batch_bytes || builder.empty()) {
    builder.add(std::nullopt, as_bytes(value), 0);
  }
  return builder.build();
}

// Bytes/s of pwrite+fdatasync in `chunk`-sized pieces.
double raw_write_fsync(const std::filesystem::path& file, size_t chunk, uint64_t total) {
  int fd = ::open(file.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + file.string());
  std::vector<char> buf(chunk, 'x');
  auto start = Clock::now();
  for (uint64_t at = 0; at < total; at += chunk) {
    if (::pwrite(fd, buf.data(), chunk, static_cast<off_t>(at)) != static_cast<ssize_t>(chunk) ||
        ::fdatasync(fd) != 0) {
      ::close(fd);
      throw std::runtime_error("write/fdatasync failed");
    }
  }
  double secs = seconds_since(start);
  ::close(fd);
  std::filesystem::remove(file);
  return static_cast<double>(total) / secs;
}

// Appends/s of pwrite+fdatasync per `size`-byte append, for `seconds`.
double raw_appends_per_second(const std::filesystem::path& file, size_t size, double seconds) {
  int fd = ::open(file.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + file.string());
  std::vector<char> buf(size, 'x');
  auto start = Clock::now();
  uint64_t n = 0;
  while (seconds_since(start) < seconds) {
    if (::pwrite(fd, buf.data(), size, static_cast<off_t>(n * size)) !=
            static_cast<ssize_t>(size) ||
        ::fdatasync(fd) != 0) {
      ::close(fd);
      throw std::runtime_error("write/fdatasync failed");
    }
    ++n;
  }
  double secs = seconds_since(start);
  ::close(fd);
  std::filesystem::remove(file);
  return static_cast<double>(n) / secs;
}

std::vector<int64_t> raw_append_latencies(const std::filesystem::path& file, size_t size,
                                          double rate, double seconds) {
  int fd = ::open(file.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + file.string());
  const auto count = static_cast<uint64_t>(rate * seconds);
  if (::posix_fallocate(fd, 0, static_cast<off_t>(count * size)) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot allocate " + file.string());
  }
  std::vector<char> buf(size, 'x');
  std::vector<int64_t> samples;
  samples.reserve(count);
  const auto start = Clock::now();
  for (uint64_t n = 0; n < count; ++n) {
    std::this_thread::sleep_until(paced_due(start, n, rate));
    const auto before = Clock::now();
    if (::pwrite(fd, buf.data(), size, static_cast<off_t>(n * size)) !=
            static_cast<ssize_t>(size) ||
        ::fdatasync(fd) != 0) {
      ::close(fd);
      throw std::runtime_error("write/fdatasync failed");
    }
    samples.push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - before).count());
  }
  ::close(fd);
  std::filesystem::remove(file);
  return samples;
}

// `appenders` appends kept in flight on one event-loop thread, as depot's protocol faces use the
// log: each appender appends, and when the group commit reports its batch durable, the completion
// is posted back to the loop, which appends that appender's next batch. Runs until `total` bytes
// are appended or, when total is 0, for `seconds`.
AppendRun log_appends(const std::filesystem::path& dir, const Bytes& batch, unsigned appenders,
                      uint64_t total, double seconds) {
  std::filesystem::remove_all(dir);
  st::SyncService sync(st::FsyncPolicy{});
  auto log = st::Log::open({dir, {}, &sync, nullptr, {}}).value();
  boost::asio::io_context loop;
  auto work = boost::asio::make_work_guard(loop);
  const uint64_t wanted = total ? total / batch.size() : UINT64_MAX;
  uint64_t started = 0, completed = 0;
  unsigned running = appenders;
  std::string failure;
  std::vector<Bytes> buffers(appenders, batch);
  const auto start = Clock::now();

  std::function<void(unsigned)> step = [&](unsigned id) {
    if (started >= wanted || (total == 0 && seconds_since(start) >= seconds) || !failure.empty()) {
      if (--running == 0) work.reset();
      return;
    }
    ++started;
    auto appended = log->append(buffers[id]);
    if (!appended) {
      failure = appended.error().message();
      if (--running == 0) work.reset();
      return;
    }
    log->when_durable(appended.value().last_offset, [&, id](std::error_code ec) {
      boost::asio::post(loop, [&, id, ec] {
        if (ec) failure = ec.message();
        ++completed;
        step(id);
      });
    });
  };
  for (unsigned id = 0; id < appenders; ++id)
    boost::asio::post(loop, [&step, id] { step(id); });
  loop.run();
  const double secs = seconds_since(start);
  if (!failure.empty()) throw std::runtime_error("append failed: " + failure);
  (void)log->close();
  const double n = static_cast<double>(completed);
  return {n * static_cast<double>(batch.size()) / secs, n / secs};
}

// Bytes/s of reading the whole log sequentially, 1 MiB per read (second pass: page cache).
double log_reads(const std::filesystem::path& dir) {
  st::SyncService sync(st::FsyncPolicy{st::FsyncMode::never, {}});
  auto log = st::Log::open({dir, {}, &sync, nullptr, {}}).value();
  double rate = 0;
  for (int pass = 0; pass < 2; ++pass) {
    uint64_t bytes = 0;
    auto start = Clock::now();
    for (int64_t offset = log->log_start_offset(); offset < log->log_end_offset();) {
      auto r = log->read(offset, 1 << 20);
      if (!r || r.value().data.empty()) throw std::runtime_error("read failed");
      bytes += r.value().data.size();
      offset = r.value().next_offset;
    }
    rate = static_cast<double>(bytes) / seconds_since(start);
  }
  return rate;
}

// Lets the kernel finish writing back what earlier steps left (and their deleted files), so each
// measurement starts from a quiet disk.
void settle() {
  ::sync();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
}

std::string gbps(double bytes_per_second) {
  return fmt::format("{:.2f} GB/s", bytes_per_second / 1e9);
}

int run_storage_bench(const StorageBenchOptions& options) {
  try {
    // Only a subdirectory of its own is emptied and removed: --dir may hold other things.
    const auto work = options.dir / "depot-bench-storage";
    std::filesystem::remove_all(work);
    std::filesystem::create_directories(work);
    const auto raw_file = work / "raw.bin";
    const Bytes batch = make_batch(options.record_bytes, options.batch_bytes);
    const Bytes small = make_batch(1000, 4096);

    progress(fmt::format("(c) 4 KiB appends, one fdatasync each, {:.0f} s",
                         options.seconds_per_rate_test));
    const double one_sync_each =
        raw_appends_per_second(raw_file, small.size(), options.seconds_per_rate_test);
    progress(fmt::format("    {:.0f} appends/s", one_sync_each));
    progress(fmt::format("(c) 4 KiB appends through the log, group commit, 64 appenders, {:.0f} s",
                         options.seconds_per_rate_test));
    const AppendRun grouped =
        log_appends(work / "log-small", small, 64, 0, options.seconds_per_rate_test);
    progress(fmt::format("    {:.0f} appends/s", grouped.appends_per_second));

    settle();
    progress(
        fmt::format("(a) raw pwrite+fdatasync, 1 MiB chunks, {} MiB", options.total_bytes >> 20));
    const double raw = raw_write_fsync(raw_file, 1 << 20, options.total_bytes);
    progress(fmt::format("    {}", gbps(raw)));

    std::vector<std::pair<unsigned, AppendRun>> appends;
    for (unsigned n : options.appenders) {
      progress(fmt::format("(b) log appends, {} B batches, fsync=always, {} appender(s)",
                           batch.size(), n));
      settle();
      appends.emplace_back(
          n, log_appends(work / fmt::format("log-{}", n), batch, n, options.total_bytes, 0));
      progress(fmt::format("    {} ({:.0f}% of raw)", gbps(appends.back().second.bytes_per_second),
                           100 * appends.back().second.bytes_per_second / raw));
    }

    const unsigned last = options.appenders.back();
    progress(fmt::format("(d) sequential reads of the {}-appender log (page cache)", last));
    const double reads = log_reads(work / fmt::format("log-{}", last));
    progress(fmt::format("    {}", gbps(reads)));

    std::printf("\n| measurement | result | ratio |\n|---|---|---|\n");
    std::printf("| (a) raw pwrite+fdatasync, 1 MiB chunks | %s | 1.00 |\n", gbps(raw).c_str());
    for (const auto& [n, run] : appends) {
      std::printf(
          "| (b) log append, %zu B batches, fsync=always, %u appender(s) | %s | %.2f of (a) |\n",
          batch.size(), n, gbps(run.bytes_per_second).c_str(), run.bytes_per_second / raw);
    }
    std::printf("| (c) 4 KiB appends, one fdatasync each | %.0f appends/s | 1.00 |\n",
                one_sync_each);
    std::printf("| (c) 4 KiB appends, log group commit, 64 appenders | %.0f appends/s | %.1fx |\n",
                grouped.appends_per_second, grouped.appends_per_second / one_sync_each);
    std::printf("| (d) log reads from page cache, 1 MiB reads | %s | %.2f of 1 GB/s goal |\n",
                gbps(reads).c_str(), reads / 1e9);
    std::filesystem::remove_all(work);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench: failed: %s\n", e.what());
    return 1;
  }
}

}  // namespace depot::bench
