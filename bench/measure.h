#pragma once
// What the load generators share: a clock, a stop flag for their threads, percentiles.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace depot::bench {

inline int64_t now_nanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// When the n-th event of a series paced at `rate` a second, begun at `start`, is due.
inline std::chrono::steady_clock::time_point paced_due(std::chrono::steady_clock::time_point start,
                                                       uint64_t n, double rate) {
  return start +
         std::chrono::nanoseconds(static_cast<int64_t>(1e9 * static_cast<double>(n) / rate));
}

[[noreturn]] inline void fail(const std::string& what) {
  throw std::runtime_error(what);
}

// The stop flag a measurement's threads share, and the error that raised it first. Errors after
// the stop (connections interrupted on purpose) are not kept.
class StopFlag {
 public:
  bool stopped() const { return stopped_; }
  void stop() { stopped_ = true; }
  // Runs `body`; an exception stops every thread and is kept if it came first.
  void run(const std::function<void()>& body) {
    try {
      body();
    } catch (const std::exception& e) {
      std::lock_guard lock(mutex_);
      if (!stopped_.exchange(true)) error_ = e.what();
    }
  }
  std::string error() const {
    std::lock_guard lock(mutex_);
    return error_;
  }

 private:
  std::atomic<bool> stopped_{false};
  mutable std::mutex mutex_;
  std::string error_;
};

inline double percentile_ms(std::vector<int64_t>& samples, double fraction) {
  if (samples.empty()) return 0;
  auto index = static_cast<size_t>(fraction * static_cast<double>(samples.size() - 1));
  std::nth_element(samples.begin(), samples.begin() + static_cast<ptrdiff_t>(index), samples.end());
  return static_cast<double>(samples[index]) / 1e6;
}

// The median of values already sorted (the mean of the middle two for an even count).
inline double median(const std::vector<double>& sorted) {
  if (sorted.empty()) return 0;
  const size_t middle = sorted.size() / 2;
  return sorted.size() % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

struct Percentiles {
  double p50_ms = 0;
  double p99_ms = 0;
};
inline Percentiles percentiles(std::vector<int64_t>& samples) {
  return {percentile_ms(samples, 0.50), percentile_ms(samples, 0.99)};
}

}  // namespace depot::bench
