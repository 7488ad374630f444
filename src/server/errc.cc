#include "server/errc.h"

namespace depot::server {
namespace {

class ServerCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "depot.server"; }
  std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::ok:
        return "ok";
      case errc::invalid_setting:
        return "invalid setting";
      case errc::data_dir_locked:
        return "data directory is in use by another depot";
      case errc::data_dir_unusable:
        return "data directory cannot be used";
      case errc::low_disk_space:
        return "too little free space for the data directory";
      case errc::listen_failed:
        return "cannot listen on the configured address";
      case errc::storage_failed:
        return "a store in the data directory cannot be opened";
      case errc::request_too_large:
        return "request is larger than the connection's read buffer";
      case errc::idle_timeout:
        return "connection idle for longer than the idle timeout";
      case errc::stopping:
        return "server is shutting down";
      case errc::connection_closed:
        return "connection is closed";
    }
    return "unknown server error " + std::to_string(code);
  }
};

}  // namespace

const std::error_category& server_category() {
  static const ServerCategory category;
  return category;
}

int exit_code_for(const StartupError& error) {
  return error.code == errc::invalid_setting ? 2 : 1;
}

}  // namespace depot::server
