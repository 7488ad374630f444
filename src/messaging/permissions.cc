#include "messaging/permissions.h"

#include <sstream>

#include <fmt/format.h>

namespace depot::messaging {

Permissions::Permissions(const std::vector<PermissionEntry>& entries) {
  constexpr auto kFlags = std::regex::ECMAScript | std::regex::optimize;
  for (const PermissionEntry& e : entries) {
    users_[e.user].insert_or_assign(
        e.vhost, Compiled{std::regex(e.configure, kFlags), std::regex(e.write, kFlags),
                          std::regex(e.read, kFlags)});
  }
}

bool Permissions::may_open(const std::string& user, const std::string& vhost) const {
  auto it = users_.find(user);
  return it == users_.end() || it->second.contains(vhost);
}

Outcome<void> Permissions::check(const std::string& user, const std::string& vhost, Access access,
                                 Resource resource, std::string_view name) const {
  auto it = users_.find(user);
  if (it == users_.end()) return boost::outcome_v2::success();
  auto host = it->second.find(vhost);
  const std::string_view subject = name.empty() ? std::string_view("amq.default") : name;
  if (host != it->second.end()) {
    const Compiled& c = host->second;
    const std::regex& pattern = access == Access::configure ? c.configure
                                : access == Access::write   ? c.write
                                                            : c.read;
    // RabbitMQ anchors nothing itself: a pattern matches anywhere in the name unless it says
    // ^ and $.
    if (std::regex_search(subject.begin(), subject.end(), pattern)) {
      return boost::outcome_v2::success();
    }
  }
  return Error{
      ErrorKind::access_refused,
      fmt::format("access to {} '{}' in vhost '{}' refused for user '{}'",
                  resource == Resource::exchange ? "exchange" : "queue", subject, vhost, user)};
}

std::optional<std::string> parse_permissions(std::string_view text,
                                             std::vector<PermissionEntry>& out) {
  out.clear();
  while (!text.empty()) {
    const auto semicolon = text.find(';');
    const std::string entry(text.substr(0, semicolon));
    text = semicolon == std::string_view::npos ? std::string_view{} : text.substr(semicolon + 1);
    std::istringstream fields(entry);
    std::vector<std::string> parts;
    for (std::string part; fields >> part;)
      parts.push_back(part);
    if (parts.empty()) continue;
    if (parts.size() != 5) {
      return fmt::format(
          "'{}' is not USER VHOST CONFIGURE WRITE READ (entries are separated by "
          "';', e.g. \"alice / .* .* .*\")",
          entry);
    }
    PermissionEntry e{parts[0], parts[1], parts[2], parts[3], parts[4]};
    for (const std::string* pattern : {&e.configure, &e.write, &e.read}) {
      try {
        std::regex compiled(*pattern);
      } catch (const std::regex_error& error) {
        return fmt::format("'{}' in '{}' is not a regular expression: {}", *pattern, entry,
                           error.what());
      }
    }
    out.push_back(std::move(e));
  }
  return std::nullopt;
}

}  // namespace depot::messaging
