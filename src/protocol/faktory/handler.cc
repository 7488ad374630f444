#include "protocol/faktory/handler.h"

#include <chrono>
#include <functional>
#include <optional>
#include <system_error>
#include <unordered_set>

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/json_write.h"
#include "common/rfc3339.h"
#include "jobs/errc.h"
#include "protocol/faktory/auth.h"
#include "protocol/faktory/command.h"
#include "server/connection.h"
#include "server/durable_wait.h"
#include "server/errc.h"

namespace depot::faktory {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
using server::DurableWait;

constexpr std::string_view kFaktoryVersion = "1.10.0";
constexpr std::chrono::milliseconds kHandshakeTimeout{2000};

jobs::UnixNanos now_nanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One connection's session.
class Session {
 public:
  Session(FaktoryService& service, server::Connection& conn) : service_(service), conn_(conn) {}

  awaitable<void> run();

 private:
  // Reads one line; nullopt when the connection is done (closed, stopping, too long: the last
  // already answered).
  awaitable<std::optional<std::pair<std::string, std::string>>> read_line();
  awaitable<bool> handshake();
  awaitable<void> reply(std::string bytes) {
    if (auto written = co_await conn_.write(bytes); !written) conn_.close();
  }
  awaitable<void> reply_error(const Error& error) { co_await reply(error_reply(error)); }
  // Waits for durability and answers +OK, or the failure.
  awaitable<void> reply_when_durable(DurableWait& wait);

  awaitable<void> handle(Push& push);
  awaitable<void> handle(PushBulk& bulk);
  awaitable<void> handle(const Fetch& fetch);
  awaitable<void> handle(const Ack& ack);
  awaitable<void> handle(Fail& fail);
  awaitable<void> handle(const Beat& beat);
  awaitable<void> handle_info();
  awaitable<void> handle_flush();
  awaitable<void> handle(const QueueCommand& queue);
  awaitable<void> handle(const Mutate& mutate);
  awaitable<void> handle(const Checkpoint& checkpoint);

  FaktoryService& service_;
  server::Connection& conn_;
  std::string wid_;
};

awaitable<std::optional<std::pair<std::string, std::string>>> Session::read_line() {
  for (;;) {
    auto line = next_line(conn_.buffered(), service_.options().max_job_bytes + 4096);
    if (!line) {
      co_await reply_error(line.error());
      co_return std::nullopt;
    }
    if (line.value()) {
      std::pair<std::string, std::string> out{std::string(line.value()->verb),
                                              std::string(line.value()->payload)};
      conn_.consume(line.value()->consumed);
      co_return out;
    }
    auto more = co_await conn_.read_some();
    if (!more) {
      if (more.error() == server::errc::request_too_large) {
        co_await reply_error(error(std::string(text::kLineTooLong)));
      }
      co_return std::nullopt;
    }
  }
}

awaitable<bool> Session::handshake() {
  // Faktory gives a client 2 s to complete the handshake; a silent one is closed.
  asio::steady_timer deadline(conn_.executor(), kHandshakeTimeout);
  deadline.async_wait([&conn = conn_](const boost::system::error_code& ec) {
    if (!ec) {
      spdlog::info("{}: no HELLO within {} ms; closing", conn.name(), kHandshakeTimeout.count());
      conn.close();
    }
  });
  struct CancelOnExit {
    asio::steady_timer& timer;
    ~CancelOnExit() { timer.cancel(); }
  } cancel_on_exit{deadline};
  std::optional<Challenge> challenge;
  if (service_.options().password) challenge = random_challenge();
  co_await reply(greeting(challenge));
  auto line = co_await read_line();
  if (!line || line->first != "HELLO") co_return false;  // Faktory just closes
  auto parsed = parse_command(line->first, line->second);
  if (!parsed || !std::holds_alternative<Hello>(parsed.value())) {
    co_await reply_error(parsed ? error(std::string(text::kInvalidHello) + "not a HELLO")
                                : parsed.error());
    co_return false;
  }
  const Hello& hello = std::get<Hello>(parsed.value());
  if (challenge &&
      !password_matches(hello.pwdhash, *service_.options().password, *challenge, hello.version)) {
    spdlog::warn("{}: wrong or missing password", conn_.name());
    co_await reply_error(error(std::string(text::kInvalidPassword)));
    co_return false;
  }
  if (!hello.wid.empty()) {
    wid_ = hello.wid;
    service_.workers().connect(
        {hello.wid, hello.hostname, hello.pid, hello.labels, jobs::WorkerState::running, 0, 0, 0},
        now_nanos());
    service_.attach_worker(wid_, &conn_);
  }
  co_await reply(simple_reply("OK"));
  co_return true;
}

awaitable<void> Session::run() {
  service_.connection_opened();
  struct Leave {
    Session& s;
    ~Leave() {
      s.service_.connection_closed();
      if (!s.wid_.empty()) {
        s.service_.detach_worker(s.wid_, &s.conn_);
        s.service_.workers().disconnect(s.wid_);
      }
    }
  } leave{*this};
  if (!co_await handshake()) co_return;
  while (!conn_.stopping() && !conn_.closed()) {
    auto line = co_await read_line();
    if (!line) co_return;
    service_.count_command();
    if (line->first == "HELLO") {  // only the first line may be a HELLO
      co_await reply_error(error(std::string(text::kUnknownCommand) + "HELLO"));
      continue;
    }
    if (line->first == "PUSH" && line->second.size() > service_.options().max_job_bytes) {
      co_await reply_error(
          error(fmt::format("job too large: {} bytes, the limit is {} bytes", line->second.size(),
                            service_.options().max_job_bytes)));
      continue;
    }
    auto parsed = parse_command(line->first, line->second);
    if (!parsed) {
      co_await reply_error(parsed.error());
      continue;
    }
    Command& command = parsed.value();
    if (auto* c = std::get_if<Push>(&command)) {
      co_await handle(*c);
    } else if (auto* pb = std::get_if<PushBulk>(&command)) {
      co_await handle(*pb);
    } else if (auto* f = std::get_if<Fetch>(&command)) {
      co_await handle(*f);
    } else if (auto* a = std::get_if<Ack>(&command)) {
      co_await handle(*a);
    } else if (auto* fl = std::get_if<Fail>(&command)) {
      co_await handle(*fl);
    } else if (auto* b = std::get_if<Beat>(&command)) {
      co_await handle(*b);
    } else if (std::holds_alternative<Info>(command)) {
      co_await handle_info();
    } else if (std::holds_alternative<Flush>(command)) {
      co_await handle_flush();
    } else if (std::holds_alternative<End>(command)) {
      co_return;  // Faktory closes without a reply
    } else if (auto* q = std::get_if<QueueCommand>(&command)) {
      co_await handle(*q);
    } else if (auto* m = std::get_if<Mutate>(&command)) {
      co_await handle(*m);
    } else if (auto* cp = std::get_if<Checkpoint>(&command)) {
      co_await handle(*cp);
    }
  }
}

awaitable<void> Session::reply_when_durable(DurableWait& wait) {
  if (std::error_code ec = co_await wait.wait()) {
    spdlog::error("{}: journal write failed: {}", conn_.name(), ec.message());
    co_await reply_error(error(std::string(text::kInternalError)));
    co_return;
  }
  co_await reply(simple_reply("OK"));
}

awaitable<void> Session::handle(Push& push) {
  DurableWait wait(conn_.executor());
  auto pushed = service_.store().push(std::move(push.job), wait.callback());
  if (!pushed) {
    if (pushed.error() == jobs::errc::not_unique) {
      // A named value: GCC 12 destroys a braced temporary in a co_await expression twice (a
      // NOTUNIQUE reply crashed depot with "munmap_chunk(): invalid pointer").
      const Error not_unique{std::string(text::kNotUniqueCode), std::string(text::kNotUnique)};
      co_await reply_error(not_unique);
    } else if (pushed.error() == jobs::errc::expired) {
      co_await reply(simple_reply("OK"));  // already past expires_at: dropped, as it would be
    } else {
      spdlog::error("{}: push failed: {}", conn_.name(), pushed.error().message());
      co_await reply_error(error(std::string(text::kInternalError)));
    }
    co_return;
  }
  co_await reply_when_durable(wait);
}

awaitable<void> Session::handle(PushBulk& bulk) {
  std::vector<RejectedJob> rejected;
  // The journal is ordered: once the last accepted job is durable, so are the others.
  std::optional<DurableWait> last;
  for (auto& item : bulk.items) {
    if (auto* r = std::get_if<RejectedJob>(&item)) {
      rejected.push_back(*r);
      continue;
    }
    jobs::Job& job = std::get<jobs::Job>(item);
    std::string jid = job.jid;
    DurableWait wait(conn_.executor());
    auto pushed = service_.store().push(std::move(job), wait.callback());
    if (pushed) {
      last = std::move(wait);
    } else if (pushed.error() == jobs::errc::not_unique) {
      rejected.push_back({jid, std::string(text::kNotUnique)});
    } else if (pushed.error() != jobs::errc::expired) {
      rejected.push_back({jid, std::string(text::kInternalError)});
    }
  }
  if (last) {
    if (std::error_code ec = co_await last->wait()) {
      spdlog::error("{}: journal write failed: {}", conn_.name(), ec.message());
      co_await reply_error(error(std::string(text::kInternalError)));
      co_return;
    }
  }
  co_await reply(bulk_reply(write_rejections(rejected)));
}

awaitable<void> Session::handle(const Fetch& fetch) {
  const auto deadline = Clock::now() + service_.options().fetch_wait;
  for (;;) {
    // A quiet or terminating worker gets no more jobs: Faktory makes it wait, then says none.
    auto state = wid_.empty() ? std::nullopt : service_.workers().state(wid_);
    if (!state || *state == jobs::WorkerState::running) {
      auto job = service_.store().fetch(fetch.queues, wid_);
      if (!job) {
        spdlog::error("{}: fetch failed: {}", conn_.name(), job.error().message());
        co_await reply_error(error(std::string(text::kInternalError)));
        co_return;
      }
      if (job.value()) {
        co_await reply(bulk_reply(write_job(*job.value())));
        co_return;
      }
    }
    if (Clock::now() >= deadline || conn_.stopping()) break;
    co_await service_.wait_for_jobs(deadline);
  }
  co_await reply(null_reply());
}

awaitable<void> Session::handle(const Ack& ack) {
  DurableWait wait(conn_.executor());
  auto acked = service_.store().ack(ack.jid, wait.callback());
  if (!acked) {
    spdlog::error("{}: ack failed: {}", conn_.name(), acked.error().message());
    co_await reply_error(error(std::string(text::kInternalError)));
    co_return;
  }
  co_await reply_when_durable(wait);
}

awaitable<void> Session::handle(Fail& fail) {
  DurableWait wait(conn_.executor());
  auto failed = service_.store().fail(
      fail.jid,
      jobs::FailInfo{std::move(fail.errtype), std::move(fail.message), std::move(fail.backtrace)},
      wait.callback());
  if (!failed) {
    if (failed.error() == jobs::errc::job_not_found) {
      co_await reply_error(error(std::string(text::kJobNotFound) + fail.jid));
    } else {
      spdlog::error("{}: fail failed: {}", conn_.name(), failed.error().message());
      co_await reply_error(error(std::string(text::kInternalError)));
    }
    co_return;
  }
  co_await reply_when_durable(wait);
}

awaitable<void> Session::handle(const Checkpoint& checkpoint) {
  if (wid_.empty()) {
    co_await reply_error(error(std::string(text::kCheckpointNeedsWorker)));
    co_return;
  }
  // The merge runs in the store, under its lock, on the reserved job as it is then.
  std::optional<Error> merge_error;
  std::function<Result<void>(jobs::Job&)> edit;
  if (checkpoint.custom) {
    edit = [&](jobs::Job& job) -> Result<void> {
      auto merged = merge_custom(job, *checkpoint.custom);
      if (!merged) {
        merge_error = merged.error();
        return std::make_error_code(std::errc::invalid_argument);
      }
      return success();
    };
  }
  DurableWait wait(conn_.executor());
  auto updated = service_.store().update_reserved(checkpoint.jid, wid_, edit, checkpoint.progress,
                                                  wait.callback());
  if (!updated) {
    if (merge_error) {
      co_await reply_error(*merge_error);
    } else if (updated.error() == jobs::errc::job_not_found) {
      co_await reply_error(error(std::string(text::kJobNotReserved) + checkpoint.jid));
    } else if (updated.error() == jobs::errc::reserved_by_other) {
      co_await reply_error(error(std::string(text::kReservedByOther) + checkpoint.jid));
    } else {
      spdlog::error("{}: checkpoint failed: {}", conn_.name(), updated.error().message());
      co_await reply_error(error(std::string(text::kInternalError)));
    }
    co_return;
  }
  co_await reply_when_durable(wait);
}

awaitable<void> Session::handle(const Beat& beat) {
  std::optional<jobs::WorkerState> reported;
  if (beat.current_state) reported = *beat.current_state;
  auto state = service_.workers().beat(beat.wid, reported, now_nanos());
  if (!state) {
    co_await reply_error(error(std::string(text::kUnknownWorker) + beat.wid));
  } else if (*state == jobs::WorkerState::quiet) {
    co_await reply(bulk_reply(R"({"state":"quiet"})"));
  } else if (*state == jobs::WorkerState::terminate) {
    co_await reply(bulk_reply(R"({"state":"terminate"})"));
  } else {
    co_await reply(simple_reply("OK"));
  }
}

awaitable<void> Session::handle_info() {
  const jobs::StoreStats s = service_.store().stats();
  const jobs::UnixNanos now = now_nanos();
  std::string queues;
  size_t enqueued = 0;
  for (const auto& [name, size] : s.queues) {
    if (!queues.empty()) queues += ',';
    append_json_string(queues, name);
    queues += fmt::format(":{}", size);
    enqueued += size;
  }
  // depot's own key: reservations and what their jobs last reported (CHECKPOINT).
  std::string depot = fmt::format(R"({{"working":{},"progress":[)", s.working);
  for (size_t i = 0; i < s.progress.size(); ++i) {
    depot += i == 0 ? "{" : ",{";
    append_reservation_members(depot, s.progress[i]);
    depot += ',';
    append_progress_members(depot, s.progress[i]);
    depot += '}';
  }
  depot += "]}";
  const std::string stamp = format_rfc3339(now);
  const auto uptime =
      std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - service_.started());
  std::string out = fmt::format(
      R"({{"now":"{}","server_utc_time":"{} UTC","faktory":{{"total_failures":{},)"
      R"("total_processed":{},"total_enqueued":{},"total_queues":{},"queues":{{{}}},)"
      R"("sets":{{"scheduled":{},"retries":{},"dead":{},"working":{}}},"tasks":{{}}}},)"
      R"("server":{{"description":"depot, a Faktory-compatible broker","faktory_version":"{}",)"
      R"("uptime":{},"connections":{},"command_count":{},"used_memory_mb":0}},"depot":{}}})",
      stamp, stamp.substr(11, 8), s.total_failures, s.total_processed, enqueued, s.queues.size(),
      queues, s.scheduled, s.retries, s.dead, s.working, kFaktoryVersion, uptime.count(),
      service_.connections(), service_.command_count(), depot);
  co_await reply(bulk_reply(out));
}

awaitable<void> Session::handle_flush() {
  DurableWait wait(conn_.executor());
  if (auto flushed = service_.store().flush(wait.callback()); !flushed) {
    co_await reply_error(error(std::string(text::kInternalError)));
    co_return;
  }
  co_await reply_when_durable(wait);
}

awaitable<void> Session::handle(const QueueCommand& queue) {
  std::vector<std::string> names = queue.all ? std::vector<std::string>{"*"} : queue.names;
  Result<void> done = success();
  switch (queue.op) {
    case QueueOp::pause:
      done = service_.store().pause_queues(names);
      break;
    case QueueOp::resume:
      done = service_.store().resume_queues(names);
      break;
    case QueueOp::remove: {
      DurableWait wait(conn_.executor());
      if (auto removed = service_.store().remove_queues(names, wait.callback()); !removed) {
        done = removed.error();
        break;
      }
      co_await reply_when_durable(wait);
      co_return;
    }
    case QueueOp::latency: {
      std::string out = "{";
      for (const auto& name : queue.names) {
        if (out.size() > 1) out += ',';
        append_json_string(out, name);
        out += fmt::format(":{}", service_.store().queue_latency(name));
      }
      out += '}';
      co_await reply(bulk_reply(out));
      co_return;
    }
  }
  if (!done) {
    co_await reply_error(error(std::string(text::kInternalError)));
    co_return;
  }
  co_await reply(simple_reply("OK"));
}

awaitable<void> Session::handle(const Mutate& mutate) {
  std::function<bool(const jobs::Job&)> matches = [](const jobs::Job&) { return true; };
  if (mutate.filter) {
    const MutateFilter& f = *mutate.filter;
    if (!f.jids.empty()) {
      auto jids = std::make_shared<std::unordered_set<std::string>>(f.jids.begin(), f.jids.end());
      matches = [jids](const jobs::Job& job) { return jids->count(job.jid) > 0; };
    } else {
      matches = [f](const jobs::Job& job) {
        if (!f.jobtype.empty() && job.jobtype != f.jobtype) return false;
        return f.regexp.empty() || glob_match(f.regexp, write_job(job));
      };
    }
  }
  DurableWait wait(conn_.executor());
  auto changed = service_.store().mutate(mutate.op, mutate.target, matches, wait.callback());
  if (!changed) {
    co_await reply_error(error(std::string(text::kInternalError)));
    co_return;
  }
  co_await reply_when_durable(wait);
}

}  // namespace

awaitable<void> FaktoryHandler::serve(server::Connection& conn) {
  Session session(*service_, conn);
  co_await session.run();
}

}  // namespace depot::faktory
