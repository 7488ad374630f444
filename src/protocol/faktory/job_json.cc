#include "protocol/faktory/job_json.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "common/json_write.h"
#include "common/rfc3339.h"
#include "protocol/faktory/json_read.h"

namespace depot::faktory {
namespace {

namespace od = simdjson::ondemand;
using json::Problem;
using json::Read;

constexpr int64_t kInt32Min = std::numeric_limits<int32_t>::min();
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kMaxReserveFor = jobs::kMaxReserveForSeconds;

// A job read from JSON, and the first PUSH validation rule it breaks, if any. Kept apart from
// malformed JSON because PUSHB rejects the two differently.
struct JobRead {
  jobs::Job job;
  std::optional<std::string> invalid;
};

// Go's %q, for quoting client text in an error message.
std::string go_quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

// Timestamps the server writes (created_at, enqueued_at, failure times) are read leniently:
// Faktory stores them as opaque strings, so a value we cannot read means "unset", not an error.
Read<jobs::UnixNanos> read_server_time(od::value value, std::string_view field) {
  auto text = json::read_string(value, field);
  if (!text) return text.error();
  return parse_rfc3339(text.value()).value_or(0);
}

Read<int32_t> read_int32(od::value value, std::string_view field) {
  auto number = json::read_int(value, field, kInt32Min, kInt32Max);
  if (!number) return number.error();
  return static_cast<int32_t>(number.value().value_or(0));
}

Read<jobs::Failure> read_failure(od::object object) {
  jobs::Failure failure;
  auto fields =
      json::for_each_field(object, [&](std::string_view key, od::value value) -> Read<void> {
        Read<void> read = boost::outcome_v2::success();
        if (json::key_is(key, "retry_count")) {
          read = json::assign(read_int32(value, "failure.retry_count"), failure.retry_count);
        } else if (json::key_is(key, "remaining")) {
          read = json::assign(read_int32(value, "failure.remaining"), failure.remaining);
        } else if (json::key_is(key, "failed_at")) {
          read = json::assign(read_server_time(value, "failure.failed_at"), failure.failed_at);
        } else if (json::key_is(key, "next_at")) {
          read = json::assign(read_server_time(value, "failure.next_at"), failure.next_at);
        } else if (json::key_is(key, "message")) {
          read = json::assign(json::read_string(value, "failure.message"), failure.message);
        } else if (json::key_is(key, "errtype")) {
          read = json::assign(json::read_string(value, "failure.errtype"), failure.errtype);
        } else if (json::key_is(key, "backtrace")) {
          read = json::assign(json::read_strings(value, "failure.backtrace"), failure.backtrace);
        } else {
          read = json::validate(value, 3);
        }
        return read;
      });
  if (!fields) return fields.error();
  return failure;
}

// depot's extensions read from custom (Faktory Enterprise's names): unique_for in seconds and
// expires_at as RFC 3339. A value of another type is the client's business and is ignored.
Read<void> read_custom_fields(od::object object, jobs::Job& job) {
  auto fields =
      json::for_each_field(object, [&](std::string_view key, od::value value) -> Read<void> {
        od::json_type type;
        if (auto e = value.type().get(type)) return json::syntax_error(e);
        // Custom is a Go map: its keys match exactly, not case-insensitively.
        if (key == "unique_for" && type == od::json_type::number) {
          int64_t seconds = 0;
          if (value.get_int64().get(seconds)) {
            double real = 0;
            if (auto e = value.get_double().get(real)) return json::syntax_error(e);
            // Clamped before the conversion, which is undefined out of range.
            real = std::clamp(real, -9.2e18, 9.2e18);
            seconds = static_cast<int64_t>(real);
          }
          job.unique_for = seconds;
        } else if (key == "expires_at" && type == od::json_type::string) {
          std::string_view text;
          if (auto e = value.get_string().get(text)) return json::syntax_error(e);
          job.expires_at = parse_rfc3339(text).value_or(0);
        } else {
          auto valid = json::validate(value, 4);
          if (!valid) return valid;
        }
        return boost::outcome_v2::success();
      });
  if (!fields) return fields.error();
  return boost::outcome_v2::success();
}

// custom: the client's exact text (empty for null), and the fields depot reads from it.
Read<void> read_custom(od::value value, json::Document& doc, jobs::Job& job) {
  job.custom.clear();
  job.unique_for.reset();
  job.expires_at = 0;
  od::json_type type;
  if (auto e = value.type().get(type)) return json::syntax_error(e);
  if (type == od::json_type::null) return json::validate(value, 2);
  if (type != od::json_type::object) return Problem{"custom must be an object"};
  const std::string_view token = value.raw_json_token();
  od::object object;
  if (auto e = value.get_object().get(object)) return json::syntax_error(e);
  auto fields = read_custom_fields(object, job);
  if (!fields) return fields;
  auto text = json::text_since(token.data(), doc);
  if (!text) return text.error();
  job.custom = std::string(text.value());
  return boost::outcome_v2::success();
}

// args: the client's exact text; nullopt for null, which Faktory treats as missing.
Read<std::optional<std::string>> read_args(od::value value, json::Document& doc) {
  od::json_type type;
  if (auto e = value.type().get(type)) return json::syntax_error(e);
  if (type == od::json_type::null) {
    auto null = json::validate(value, 2);
    if (!null) return null.error();
    return std::optional<std::string>();
  }
  if (type != od::json_type::array) return Problem{"args must be an array"};
  auto text = json::raw_text(value, doc, 2);
  if (!text) return text.error();
  return std::optional<std::string>(text.value());
}

Read<std::optional<jobs::Failure>> read_optional_failure(od::value value) {
  od::json_type type;
  if (auto e = value.type().get(type)) return json::syntax_error(e);
  if (type == od::json_type::null) {
    auto null = json::validate(value, 2);
    if (!null) return null.error();
    return std::optional<jobs::Failure>();
  }
  if (type != od::json_type::object) return Problem{"failure must be an object"};
  od::object object;
  if (auto e = value.get_object().get(object)) return json::syntax_error(e);
  auto failure = read_failure(object);
  if (!failure) return failure.error();
  return std::optional<jobs::Failure>(std::move(failure).value());
}

// Reads the members of a job object (at the root for PUSH, in an array for PUSHB). A template
// (a periodic job's definition) has no jid of its own.
Read<JobRead> read_job(od::object object, json::Document& doc, bool is_template = false) {
  JobRead out;
  jobs::Job& job = out.job;
  std::optional<std::string> args;
  std::string at;
  std::optional<int64_t> reserve_for;
  std::optional<int64_t> retry;
  auto fields =
      json::for_each_field(object, [&](std::string_view key, od::value value) -> Read<void> {
        Read<void> read = boost::outcome_v2::success();
        if (json::key_is(key, "jid")) {
          read = json::assign(json::read_string(value, "jid"), job.jid);
        } else if (json::key_is(key, "jobtype")) {
          read = json::assign(json::read_string(value, "jobtype"), job.jobtype);
        } else if (json::key_is(key, "queue")) {
          read = json::assign(json::read_string(value, "queue"), job.queue);
        } else if (json::key_is(key, "args")) {
          read = json::assign(read_args(value, doc), args);
        } else if (json::key_is(key, "custom")) {
          read = read_custom(value, doc, job);
        } else if (json::key_is(key, "created_at")) {
          read = json::assign(read_server_time(value, "created_at"), job.created_at);
        } else if (json::key_is(key, "enqueued_at")) {
          read = json::assign(read_server_time(value, "enqueued_at"), job.enqueued_at);
        } else if (json::key_is(key, "at")) {
          read = json::assign(json::read_string(value, "at"), at);
        } else if (json::key_is(key, "reserve_for")) {
          // Below int32 is refused as malformed; above 86400 with Faktory's own message, below.
          read =
              json::assign(json::read_int(value, "reserve_for", kInt32Min, kInt64Max), reserve_for);
        } else if (json::key_is(key, "retry")) {
          read = json::assign(json::read_int(value, "retry", kInt32Min, kInt32Max), retry);
        } else if (json::key_is(key, "backtrace")) {
          std::optional<int64_t> lines;
          read = json::assign(json::read_int(value, "backtrace", kInt32Min, kInt32Max), lines);
          job.backtrace =
              lines ? std::optional<int32_t>(static_cast<int32_t>(*lines)) : std::nullopt;
        } else if (json::key_is(key, "failure")) {
          read = json::assign(read_optional_failure(value), job.failure);
        } else {
          // Fields Faktory's Job has no place for (priority, ...) are dropped, but must be valid.
          read = json::validate(value, 2);
        }
        return read;
      });
  if (!fields) return fields.error();

  // Faktory's checks, in its order (manager.Push).
  if (!is_template && job.jid.size() < 8) {
    out.invalid = std::string(text::kBadJid);
  } else if (job.jobtype.empty()) {
    out.invalid = std::string(text::kNoJobtype);
  } else if (!args) {
    out.invalid = std::string(text::kNoArgs);
  } else if (reserve_for && *reserve_for > kMaxReserveFor) {
    out.invalid = std::string(text::kReserveTooLong);
  } else if (!at.empty()) {
    auto when = parse_rfc3339(at);
    if (when) {
      job.at = *when;
    } else {
      out.invalid = fmt::format("{}{}: not an RFC 3339 time", text::kInvalidAt, go_quote(at));
    }
  }
  job.args = args ? std::move(*args) : std::string("[]");
  if (job.queue.empty()) job.queue = "default";
  // 0 means "the default" in Faktory too (its reservation code substitutes 1800 for 0).
  job.reserve_for = reserve_for && *reserve_for != 0 ? static_cast<int32_t>(*reserve_for)
                                                     : jobs::kDefaultReserveForSeconds;
  job.retry = retry ? static_cast<int32_t>(*retry) : jobs::kDefaultRetry;
  return out;
}

Error invalid_json(const Problem& problem) {
  return error(fmt::format("{}{}", text::kInvalidJson, problem.text));
}

// One job object: a PUSH's, or a template.
ParseResult<jobs::Job> parse_single(std::string_view json, bool is_template) {
  json::Document doc(json);
  auto object = doc.root_object();
  if (!object) return invalid_json(object.error());
  auto read = read_job(object.value(), doc, is_template);
  if (!read) return invalid_json(read.error());
  if (auto end = doc.expect_end(); !end) return invalid_json(end.error());
  if (read.value().invalid) return error(std::move(*read.value().invalid));
  return std::move(read.value().job);
}

}  // namespace

ParseResult<jobs::Job> parse_job(std::string_view json) {
  return parse_single(json, false);
}

ParseResult<jobs::Job> parse_job_template(std::string_view json) {
  return parse_single(json, true);
}

ParseResult<std::vector<BulkItem>> parse_jobs(std::string_view json) {
  json::Document doc(json);
  auto array = doc.root_array();
  if (!array) return invalid_json(array.error());
  std::vector<BulkItem> items;
  for (auto element : array.value()) {
    od::value value;
    if (auto e = element.get(value)) return invalid_json(json::syntax_error(e));
    od::json_type type;
    if (auto e = value.type().get(type)) return invalid_json(json::syntax_error(e));
    if (type == od::json_type::null) {
      // Go decodes null into an empty job, which fails the jid check.
      if (auto valid = json::validate(value, 1); !valid) return invalid_json(valid.error());
      items.emplace_back(RejectedJob{"", std::string(text::kBadJid)});
      continue;
    }
    if (type != od::json_type::object) {
      return invalid_json(Problem{"each job must be an object"});
    }
    od::object object;
    if (auto e = value.get_object().get(object)) return invalid_json(json::syntax_error(e));
    auto read = read_job(object, doc);
    if (!read) return invalid_json(read.error());
    if (read.value().invalid) {
      items.emplace_back(RejectedJob{read.value().job.jid, std::move(*read.value().invalid)});
    } else {
      items.emplace_back(std::move(read.value().job));
    }
  }
  if (auto end = doc.expect_end(); !end) return invalid_json(end.error());
  return items;
}

ParseResult<void> merge_custom(jobs::Job& job, const std::vector<JsonMember>& patch) {
  std::vector<JsonMember> members;
  if (!job.custom.empty()) {
    json::Document doc(job.custom);
    auto object = doc.root_object();
    if (!object) return invalid_json(object.error());
    auto fields = json::for_each_field(
        object.value(), [&](std::string_view key, od::value value) -> Read<void> {
          std::string name(key);  // the key view dies with the next string read
          auto text = json::raw_text(value, doc, 2);
          if (!text) return text.error();
          members.push_back({std::move(name), std::string(text.value())});
          return boost::outcome_v2::success();
        });
    if (!fields) return invalid_json(fields.error());
    if (auto end = doc.expect_end(); !end) return invalid_json(end.error());
  }
  for (const JsonMember& given : patch) {
    bool replaced = false;
    for (JsonMember& member : members) {
      if (member.key != given.key) continue;
      member.json = given.json;
      replaced = true;
    }
    if (!replaced) members.push_back(given);
  }
  std::string custom = "{";
  for (const JsonMember& member : members) {
    if (custom.size() > 1) custom += ',';
    append_json_string(custom, member.key);
    custom += ':';
    custom += member.json;
  }
  custom += '}';
  // unique_for and expires_at, read from the merged text as PUSH reads them.
  jobs::Job read;
  json::Document doc(custom);
  auto object = doc.root_object();
  if (!object) return invalid_json(object.error());
  if (auto fields = read_custom_fields(object.value(), read); !fields) {
    return invalid_json(fields.error());
  }
  if (auto end = doc.expect_end(); !end) return invalid_json(end.error());
  job.custom = std::move(custom);
  job.unique_for = read.unique_for;
  job.expires_at = read.expires_at;
  return boost::outcome_v2::success();
}

void append_job(std::string& out, const jobs::Job& job) {
  auto key = [&out](std::string_view name) {
    out += ",\"";
    out += name;
    out += "\":";
  };
  auto time = [&](std::string_view name, jobs::UnixNanos nanos) {
    if (nanos == 0) return;  // unset; Go omits the empty string
    key(name);
    append_json_string(out, format_rfc3339(nanos));
  };
  out += "{\"jid\":";
  append_json_string(out, job.jid);
  key("queue");
  append_json_string(out, job.queue);
  key("jobtype");
  append_json_string(out, job.jobtype);
  key("args");
  out += job.args.empty() ? std::string_view("[]") : std::string_view(job.args);
  time("created_at", job.created_at);
  time("enqueued_at", job.enqueued_at);
  time("at", job.at);
  key("reserve_for");
  fmt::format_to(std::back_inserter(out), "{}", job.reserve_for);
  key("retry");
  fmt::format_to(std::back_inserter(out), "{}", job.retry);
  if (job.backtrace) {
    key("backtrace");
    fmt::format_to(std::back_inserter(out), "{}", *job.backtrace);
  }
  if (job.failure) {
    const jobs::Failure& failure = *job.failure;
    key("failure");
    fmt::format_to(std::back_inserter(out), "{{\"retry_count\":{},\"remaining\":{}",
                   failure.retry_count, failure.remaining);
    time("failed_at", failure.failed_at);
    time("next_at", failure.next_at);
    key("message");
    append_json_string(out, failure.message);
    key("errtype");
    append_json_string(out, failure.errtype);
    key("backtrace");
    out += '[';
    for (std::size_t i = 0; i < failure.backtrace.size(); ++i) {
      if (i > 0) out += ',';
      append_json_string(out, failure.backtrace[i]);
    }
    out += "]}";
  }
  if (!job.custom.empty()) {
    key("custom");
    out += job.custom;
  }
  out += '}';
}

std::string write_job(const jobs::Job& job) {
  std::string out;
  out.reserve(256 + job.args.size() + job.custom.size());
  append_job(out, job);
  return out;
}

std::string write_rejections(const std::vector<RejectedJob>& rejected) {
  // Sorted by jid like Go's encoding of a map, the last error of a jid winning.
  std::map<std::string_view, std::string_view> by_jid;
  for (const RejectedJob& r : rejected)
    by_jid[r.jid] = r.error;
  std::string out = "{";
  for (const auto& [jid, message] : by_jid) {
    if (out.size() > 1) out += ',';
    append_json_string(out, jid);
    out += ':';
    append_json_string(out, message);
  }
  out += '}';
  return out;
}

void append_reservation_members(std::string& out, const jobs::ReservedJob& reserved) {
  out += R"("jid":)";
  append_json_string(out, reserved.jid);
  out += R"(,"jobtype":)";
  append_json_string(out, reserved.jobtype);
  out += R"(,"queue":)";
  append_json_string(out, reserved.queue);
  out += R"(,"wid":)";
  append_json_string(out, reserved.wid);
}

void append_progress_members(std::string& out, const jobs::ReservedJob& reserved) {
  out += fmt::format(R"("done":{})", reserved.progress->done);
  if (reserved.progress->total) out += fmt::format(R"(,"total":{})", *reserved.progress->total);
  out += fmt::format(R"(,"updated_at":"{}")", format_rfc3339(reserved.progress_at));
}

}  // namespace depot::faktory
