// Fuzzes the Faktory wire layer with untrusted bytes: framing, every command parser, the job codec,
// CHECKPOINT's custom merge and RFC 3339 timestamps. Nothing may crash or read out of bounds; every
// error must encode as a single reply line; whatever parses as a job must survive write_job ->
// parse_job unchanged; and a CHECKPOINT's custom merged into a job's must leave a job that does.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "common/rfc3339.h"
#include "protocol/faktory/command.h"
#include "protocol/faktory/framing.h"
#include "protocol/faktory/job_json.h"

using namespace depot;
using namespace depot::faktory;

namespace {

// Small, so the fuzzer reaches the limit.
constexpr std::size_t kMaxLine = 4096;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_round_trip(const jobs::Job& job) {
  const std::string written = write_job(job);
  auto again = parse_job(written);
  check(again && again.value() == job);
  check(write_job(again.value()) == written);
}

void check_error_line(const Error& error) {
  const std::string reply = error_reply(error);
  check(reply.size() >= 3 && reply.front() == '-' && reply.ends_with("\r\n"));
  check(reply.find_first_of("\r\n") == reply.size() - 2);
}

void check_time(std::string_view text) {
  auto nanos = parse_rfc3339(text);
  if (nanos) check(parse_rfc3339(format_rfc3339(*nanos)) == nanos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  for (;;) {
    auto line = next_line(rest, kMaxLine);
    if (!line) {
      check_error_line(line.error());
      break;
    }
    if (!line.value()) break;
    const Line& current = *line.value();
    check(current.consumed > 0 && current.consumed <= rest.size());
    check(current.verb.size() + current.payload.size() <= kMaxLine);

    auto command = parse_command(current);
    if (!command) {
      check_error_line(command.error());
    } else if (auto* push = std::get_if<Push>(&command.value())) {
      check_round_trip(push->job);
    } else if (auto* bulk = std::get_if<PushBulk>(&command.value())) {
      std::vector<RejectedJob> rejected;
      for (const BulkItem& item : bulk->items) {
        if (auto* job = std::get_if<jobs::Job>(&item)) {
          check_round_trip(*job);
        } else {
          rejected.push_back(std::get<RejectedJob>(item));
        }
      }
      (void)write_rejections(rejected);
    } else if (auto* cp = std::get_if<Checkpoint>(&command.value()); cp && cp->custom) {
      auto job = parse_job(R"({"jid":"abcdefgh","jobtype":"J","args":[],)"
                           R"("custom":{"cursor":1,"unique_for":60,"keep":[{"a":null}]}})");
      check(job.has_value());
      auto merged = merge_custom(job.value(), *cp->custom);
      check(merged.has_value());  // a parsed patch always merges into a valid custom
      check_round_trip(job.value());
    }

    // Whatever the verb, the payload also goes through the codecs directly.
    auto job = parse_job(current.payload);
    if (job) {
      check_round_trip(job.value());
    } else {
      check_error_line(job.error());
    }
    auto jobs_list = parse_jobs(current.payload);
    if (jobs_list) {
      for (const BulkItem& item : jobs_list.value()) {
        if (auto* j = std::get_if<jobs::Job>(&item)) check_round_trip(*j);
      }
    }
    check_time(current.payload);
    (void)simple_reply(current.payload);
    (void)bulk_reply(current.payload);
    rest.remove_prefix(current.consumed);
  }
  return 0;
}
