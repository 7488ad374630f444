#pragma once
// Who may do what in a virtual host, as RabbitMQ's permissions say it: per user and vhost, three
// regular expressions over resource names, for configure (declare, delete), write (publish, bind
// to) and read (consume, get, purge, bind from). The default exchange is named "amq.default".
// A user with no entries at all may use every vhost fully (depot's users are trusted unless
// restricted); a user with entries may open only the vhosts they name.
#include <map>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "messaging/vhost.h"

namespace depot::messaging {

struct PermissionEntry {
  std::string user;
  std::string vhost;
  std::string configure = ".*";
  std::string write = ".*";
  std::string read = ".*";
};

enum class Access { configure, write, read };
enum class Resource { exchange, queue };

class Permissions {
 public:
  Permissions() = default;
  // Throws std::regex_error for an expression that does not compile (config checks first).
  explicit Permissions(const std::vector<PermissionEntry>& entries);

  bool may_open(const std::string& user, const std::string& vhost) const;
  // 403 ACCESS_REFUSED in RabbitMQ's words when refused.
  Outcome<void> check(const std::string& user, const std::string& vhost, Access access,
                      Resource resource, std::string_view name) const;

 private:
  struct Compiled {
    std::regex configure;
    std::regex write;
    std::regex read;
  };
  // user -> vhost -> expressions
  std::map<std::string, std::map<std::string, Compiled>, std::less<>> users_;
};

// Parses "USER VHOST CONFIGURE WRITE READ" entries separated by ';' (rabbitmqctl set_permissions'
// order). Returns what is wrong, or nullopt.
std::optional<std::string> parse_permissions(std::string_view text,
                                             std::vector<PermissionEntry>& out);

}  // namespace depot::messaging
