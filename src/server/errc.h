#pragma once
// Server errors as values (STYLE.md): connection-level conditions a protocol handler reacts to, and
// start-up failures that decide the process exit code.
#include <string>
#include <system_error>

#include "common/result.h"

namespace depot::server {

enum class errc {
  ok = 0,
  // Start-up.
  invalid_setting = 1,  // a setting does not parse (exit code 2, like a usage error)
  data_dir_locked,      // another depot serves the data directory
  data_dir_unusable,    // cannot create, lock or write the data directory
  low_disk_space,       // the data directory's file system is below the configured minimum
  listen_failed,        // a face could not bind its address
  storage_failed,       // a face's store in the data directory cannot be opened or recovered
  // Connection.
  request_too_large,  // the peer sent more than the read buffer holds without completing a request
  idle_timeout,       // the peer sent nothing for idle_timeout
  stopping,           // the server is shutting down: finish, do not start another request
  connection_closed,  // the connection was closed (by the peer, a force-close or an error)
};

const std::error_category& server_category();

inline std::error_code make_error_code(errc e) {
  return {static_cast<int>(e), server_category()};
}

// A start-up failure: a code for the exit status, a sentence for the operator that says what failed
// and what to do about it.
struct StartupError {
  std::error_code code;
  std::string message;
};

template <class T>
using StartupResult = boost::outcome_v2::std_checked<T, StartupError>;

// Exit status for a failed start: 2 for a bad setting (as for bad command-line usage), else 1.
int exit_code_for(const StartupError& error);

}  // namespace depot::server

template <>
struct std::is_error_code_enum<depot::server::errc> : std::true_type {};
