#include "protocol/faktory/command.h"

#include <cstdint>
#include <limits>

#include <fmt/format.h>

#include "protocol/faktory/json_read.h"

namespace depot::faktory {
namespace {

namespace od = simdjson::ondemand;
using json::Problem;
using json::Read;

constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr std::size_t kMaxErrtypeBytes = 100;
constexpr std::size_t kMaxMessageBytes = 1000;
constexpr std::size_t kMaxBacktraceLines = 50;

// Space-separated words; runs of spaces make no empty words.
std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find(' ', at);
    if (end == std::string_view::npos) end = text.size();
    if (end > at) out.emplace_back(text.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

// Reads every member of a JSON object payload through `on_field(key, value)`, which returns
// Read<void>; unknown keys are the callback's to validate.
template <class OnField>
Read<void> read_object(std::string_view payload, OnField on_field) {
  json::Document doc(payload);
  auto object = doc.root_object();
  if (!object) return object.error();
  auto fields = json::for_each_field(object.value(), [&](std::string_view key, od::value value) {
    // The key view dies with the next string read; the callback gets its own copy.
    return on_field(std::string(key), value);
  });
  if (!fields) return fields;
  return doc.expect_end();
}

ParseResult<Command> parse_hello(std::string_view payload) {
  // Faktory requires the line to start with "HELLO {" literally.
  if (payload.empty() || payload.front() != '{') {
    return error(fmt::format("{}expected a JSON object", text::kInvalidHello));
  }
  Hello hello;
  auto read = read_object(payload, [&](const std::string& key, od::value value) -> Read<void> {
    if (json::key_is(key, "v")) {
      // Faktory's field is a uint8.
      std::optional<int64_t> version;
      auto r = json::assign(json::read_int(value, "v", 0, 255), version);
      hello.version = version.value_or(0);
      return r;
    }
    if (json::key_is(key, "hostname"))
      return json::assign(json::read_string(value, key), hello.hostname);
    if (json::key_is(key, "wid")) return json::assign(json::read_string(value, key), hello.wid);
    if (json::key_is(key, "pid")) {
      std::optional<int64_t> pid;
      auto r = json::assign(json::read_int(value, "pid", kInt64Min, kInt64Max), pid);
      hello.pid = pid.value_or(0);
      return r;
    }
    if (json::key_is(key, "labels"))
      return json::assign(json::read_strings(value, key), hello.labels);
    if (json::key_is(key, "pwdhash"))
      return json::assign(json::read_string(value, key), hello.pwdhash);
    if (json::key_is(key, "username"))
      return json::assign(json::read_string(value, key), hello.username);
    return json::validate(value, 2);
  });
  if (!read) return error(fmt::format("{}{}", text::kInvalidHello, read.error().text));
  return Command{std::move(hello)};
}

ParseResult<Command> parse_fetch(std::string_view payload) {
  Fetch fetch{words(payload)};
  // Faktory 1.10 refuses an empty FETCH, its spec says "default": the spec works with both.
  if (fetch.queues.empty()) fetch.queues.emplace_back("default");
  return Command{std::move(fetch)};
}

ParseResult<Command> parse_ack(std::string_view payload) {
  // Faktory decodes ACK into map[string]string: every value must be a string (or null), and the
  // key "jid" must be present, spelled exactly.
  std::optional<std::string> jid;
  auto read = read_object(payload, [&](const std::string& key, od::value value) -> Read<void> {
    std::string text;
    auto r = json::assign(json::read_string(value, key), text);
    if (r && key == "jid") jid = std::move(text);
    return r;
  });
  if (!read || !jid) return error(fmt::format("{}{}", text::kInvalidAck, payload));
  return Command{Ack{std::move(*jid)}};
}

ParseResult<Command> parse_fail(std::string_view payload) {
  Fail fail;
  auto read = read_object(payload, [&](const std::string& key, od::value value) -> Read<void> {
    if (json::key_is(key, "jid")) return json::assign(json::read_string(value, key), fail.jid);
    if (json::key_is(key, "errtype"))
      return json::assign(json::read_string(value, key), fail.errtype);
    if (json::key_is(key, "message"))
      return json::assign(json::read_string(value, key), fail.message);
    if (json::key_is(key, "backtrace")) {
      return json::assign(json::read_strings(value, key), fail.backtrace);
    }
    return json::validate(value, 2);
  });
  if (!read) return error(fmt::format("{}{}", text::kInvalidFail, payload));
  if (fail.jid.empty()) return error(std::string(text::kMissingJid));
  // Faktory's cleanse() (manager/retry.go).
  fail.errtype = truncate_utf8(trim_space(fail.errtype), kMaxErrtypeBytes);
  if (fail.errtype.empty()) fail.errtype = "unknown";
  fail.message = truncate_utf8(trim_space(fail.message), kMaxMessageBytes);
  if (fail.message.empty()) fail.message = "unknown";
  if (fail.backtrace.size() > kMaxBacktraceLines) fail.backtrace.resize(kMaxBacktraceLines);
  return Command{std::move(fail)};
}

ParseResult<Command> parse_beat(std::string_view payload) {
  Beat beat;
  std::string state;
  auto read = read_object(payload, [&](const std::string& key, od::value value) -> Read<void> {
    if (json::key_is(key, "wid")) return json::assign(json::read_string(value, key), beat.wid);
    if (json::key_is(key, "current_state"))
      return json::assign(json::read_string(value, key), state);
    if (json::key_is(key, "rss_kb")) {
      std::optional<int64_t> rss;
      auto r = json::assign(json::read_int(value, "rss_kb", kInt64Min, kInt64Max), rss);
      beat.rss_kb = rss.value_or(0);
      return r;
    }
    return json::validate(value, 2);
  });
  if (!read) return error(fmt::format("{}{}", text::kInvalidBeat, payload));
  // As Faktory's stateFromString: an unknown name means running.
  if (state == "quiet") {
    beat.current_state = WorkerState::quiet;
  } else if (state == "terminate") {
    beat.current_state = WorkerState::terminate;
  } else if (!state.empty()) {
    beat.current_state = WorkerState::running;
  }
  return Command{std::move(beat)};
}

ParseResult<Command> parse_queue(std::string_view payload) {
  std::vector<std::string> args = words(payload);
  std::string sub = args.empty() ? std::string() : args.front();
  for (char& c : sub) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  QueueCommand queue;
  if (sub == "PAUSE") {
    queue.op = QueueOp::pause;
  } else if (sub == "RESUME") {
    queue.op = QueueOp::resume;
  } else if (sub == "REMOVE") {
    queue.op = QueueOp::remove;
  } else if (sub == "LATENCY") {
    queue.op = QueueOp::latency;
  } else {
    return error(fmt::format("{}{}", text::kNoSuchQueueSubcommand, sub));
  }
  if (args.size() < 2) return error(std::string(text::kNoQueueNames));
  queue.names.assign(args.begin() + 1, args.end());
  if (queue.op == QueueOp::latency) {
    if (queue.names.size() == 1 && queue.names.front() == "*") {
      return error(std::string(text::kLatencyWildcard));
    }
  } else if (queue.names.front() == "*") {
    // Faktory looks only at the first name for "*".
    queue.all = true;
    queue.names.clear();
  }
  return Command{std::move(queue)};
}

Read<MutateFilter> read_filter(od::value filter_value) {
  MutateFilter filter;
  od::object object;
  if (auto e = filter_value.get_object().get(object)) return json::syntax_error(e);
  auto fields =
      json::for_each_field(object, [&](std::string_view key, od::value value) -> Read<void> {
        Read<void> read = boost::outcome_v2::success();
        if (json::key_is(key, "jids")) {
          read = json::assign(json::read_strings(value, "filter.jids"), filter.jids);
        } else if (json::key_is(key, "regexp")) {
          read = json::assign(json::read_string(value, "filter.regexp"), filter.regexp);
        } else if (json::key_is(key, "jobtype")) {
          read = json::assign(json::read_string(value, "filter.jobtype"), filter.jobtype);
        } else {
          read = json::validate(value, 3);
        }
        return read;
      });
  if (!fields) return fields.error();
  return filter;
}

ParseResult<Command> parse_mutate(std::string_view payload) {
  if (payload.empty()) return error(std::string(text::kInvalidFormat));
  std::string cmd;
  std::string target;
  std::optional<MutateFilter> filter;
  auto read = read_object(payload, [&](const std::string& key, od::value value) -> Read<void> {
    if (json::key_is(key, "cmd")) return json::assign(json::read_string(value, key), cmd);
    if (json::key_is(key, "target")) return json::assign(json::read_string(value, key), target);
    if (json::key_is(key, "filter")) {
      od::json_type type;
      if (auto e = value.type().get(type)) return json::syntax_error(e);
      if (type == od::json_type::null) {
        filter.reset();
        return json::validate(value, 2);
      }
      if (type != od::json_type::object) return Problem{"filter must be an object"};
      return json::assign(read_filter(value), filter);
    }
    return json::validate(value, 2);
  });
  if (!read) return error(fmt::format("{}{}", text::kInvalidJson, read.error().text));
  // Faktory checks the operation first, then the target.
  Mutate mutate;
  if (cmd == "kill") {
    mutate.op = MutateOp::kill;
  } else if (cmd == "requeue") {
    mutate.op = MutateOp::requeue;
  } else if (cmd == "discard") {
    mutate.op = MutateOp::discard;
  } else if (cmd == "clear") {
    mutate.op = MutateOp::clear;
  } else {
    return error(std::string(text::kUnknownMutateOp));
  }
  if (target == "retries") {
    mutate.target = MutateTarget::retries;
  } else if (target == "dead") {
    mutate.target = MutateTarget::dead;
  } else if (target == "scheduled") {
    mutate.target = MutateTarget::scheduled;
  } else {
    return error(std::string(text::kInvalidTarget));
  }
  mutate.filter = std::move(filter);
  return Command{std::move(mutate)};
}

// CHECKPOINT's custom: the members to merge, each value as the client wrote it.
Read<std::optional<std::vector<JsonMember>>> read_patch(od::value value, json::Document& doc) {
  od::json_type type;
  if (auto e = value.type().get(type)) return json::syntax_error(e);
  if (type == od::json_type::null) {
    auto null = json::validate(value, 2);
    if (!null) return null.error();
    return std::optional<std::vector<JsonMember>>();
  }
  if (type != od::json_type::object) return Problem{"custom must be an object"};
  od::object object;
  if (auto e = value.get_object().get(object)) return json::syntax_error(e);
  std::vector<JsonMember> members;
  auto fields =
      json::for_each_field(object, [&](std::string_view key, od::value member) -> Read<void> {
        std::string name(key);  // the key view dies with the next string read
        auto text = json::raw_text(member, doc, 3);
        if (!text) return text.error();
        members.push_back({std::move(name), std::string(text.value())});
        return boost::outcome_v2::success();
      });
  if (!fields) return fields.error();
  return std::optional<std::vector<JsonMember>>(std::move(members));
}

Read<std::optional<jobs::Progress>> read_progress(od::value value) {
  od::json_type type;
  if (auto e = value.type().get(type)) return json::syntax_error(e);
  if (type == od::json_type::null) {
    auto null = json::validate(value, 2);
    if (!null) return null.error();
    return std::optional<jobs::Progress>();
  }
  if (type != od::json_type::object) return Problem{"progress must be an object"};
  od::object object;
  if (auto e = value.get_object().get(object)) return json::syntax_error(e);
  std::optional<int64_t> done;
  jobs::Progress progress;
  auto fields =
      json::for_each_field(object, [&](std::string_view key, od::value member) -> Read<void> {
        if (json::key_is(key, "done")) {
          return json::assign(json::read_int(member, "progress.done", 0, kInt64Max), done);
        }
        if (json::key_is(key, "total")) {
          return json::assign(json::read_int(member, "progress.total", 0, kInt64Max),
                              progress.total);
        }
        return json::validate(member, 3);
      });
  if (!fields) return fields.error();
  if (!done) return Problem{"progress.done is required (an integer >= 0)"};
  progress.done = *done;
  return std::optional<jobs::Progress>(progress);
}

ParseResult<Command> parse_checkpoint(std::string_view payload) {
  auto invalid = [](const Problem& problem) {
    return error(fmt::format("{}{}", text::kInvalidCheckpoint, problem.text));
  };
  if (payload.empty()) return invalid(Problem{"expected a JSON object"});
  Checkpoint checkpoint;
  json::Document doc(payload);
  auto object = doc.root_object();
  if (!object) return invalid(object.error());
  auto fields = json::for_each_field(
      object.value(), [&](std::string_view key, od::value value) -> Read<void> {
        if (json::key_is(key, "jid")) {
          return json::assign(json::read_string(value, "jid"), checkpoint.jid);
        }
        if (json::key_is(key, "custom")) {
          return json::assign(read_patch(value, doc), checkpoint.custom);
        }
        if (json::key_is(key, "progress")) {
          return json::assign(read_progress(value), checkpoint.progress);
        }
        return json::validate(value, 2);
      });
  if (!fields) return invalid(fields.error());
  if (auto end = doc.expect_end(); !end) return invalid(end.error());
  if (checkpoint.jid.empty()) return invalid(Problem{"jid is required"});
  return Command{std::move(checkpoint)};
}

// The code point of the UTF-8 sequence at text[at] and its length; {0, 1} for a stray byte.
std::pair<uint32_t, std::size_t> decode_utf8(std::string_view text, std::size_t at) {
  const auto b0 = static_cast<uint8_t>(text[at]);
  std::size_t n = b0 < 0x80 ? 1 : b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 0;
  if (n == 0 || at + n > text.size()) return {0, 1};
  uint32_t cp = n == 1 ? b0 : b0 & (0x7F >> n);
  for (std::size_t i = 1; i < n; ++i) {
    const auto b = static_cast<uint8_t>(text[at + i]);
    if ((b & 0xC0) != 0x80) return {0, 1};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, n};
}

// Go's unicode.IsSpace.
bool is_space(uint32_t cp) {
  switch (cp) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

}  // namespace

std::string trim_space(std::string_view text) {
  std::size_t begin = 0;
  while (begin < text.size()) {
    auto [cp, n] = decode_utf8(text, begin);  // a stray byte decodes as 0: not a space
    if (!is_space(cp)) break;
    begin += n;
  }
  std::size_t end = text.size();
  while (end > begin) {
    // Step back to the start of the last character.
    std::size_t start = end - 1;
    while (start > begin && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80 && end - start < 4)
      --start;
    auto [cp, n] = decode_utf8(text, start);
    if (start + n != end || !is_space(cp)) break;
    end = start;
  }
  return std::string(text.substr(begin, end - begin));
}

std::string truncate_utf8(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  std::size_t end = max_bytes;
  // Never cut a multi-byte character in two: the JSON written later must stay valid UTF-8.
  while (end > 0 && (static_cast<uint8_t>(text[end]) & 0xC0) == 0x80)
    --end;
  return std::string(text.substr(0, end));
}

ParseResult<Command> parse_command(std::string_view verb, std::string_view payload) {
  if (verb == "PUSH") {
    auto job = parse_job(payload);
    if (!job) return job.error();
    return Command{Push{std::move(job).value()}};
  }
  if (verb == "PUSHB") {
    auto items = parse_jobs(payload);
    if (!items) return items.error();
    return Command{PushBulk{std::move(items).value()}};
  }
  if (verb == "FETCH") return parse_fetch(payload);
  if (verb == "ACK") return parse_ack(payload);
  if (verb == "FAIL") return parse_fail(payload);
  if (verb == "BEAT") return parse_beat(payload);
  if (verb == "INFO") return Command{Info{}};
  if (verb == "FLUSH") return Command{Flush{}};
  if (verb == "END") return Command{End{}};
  if (verb == "QUEUE") return parse_queue(payload);
  if (verb == "MUTATE") return parse_mutate(payload);
  if (verb == "HELLO") return parse_hello(payload);
  if (verb == "CHECKPOINT") return parse_checkpoint(payload);
  if (verb == "BATCH") return error(std::string(text::kBatchEnterprise));
  if (verb == "TRACK") return error(std::string(text::kTrackEnterprise));
  return error(fmt::format("{}{}", text::kUnknownCommand, verb));
}

}  // namespace depot::faktory
