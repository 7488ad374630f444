#pragma once
// `depot serve`: every setting in server/config.h as a flag, documented with its env variable.
#include <map>
#include <string>

#include <CLI/App.hpp>

namespace depot::cli {

class ServeCommand {
 public:
  explicit ServeCommand(CLI::App& parent);
  // CLI11 keeps pointers into values_.
  ServeCommand(const ServeCommand&) = delete;
  ServeCommand& operator=(const ServeCommand&) = delete;
  bool parsed() const { return command_->parsed(); }
  // Loads the settings (flags > env > file > defaults) and serves; returns the exit code.
  int run() const;

 private:
  CLI::App* command_;
  std::map<std::string, std::string> values_;  // setting key -> flag text
  std::map<std::string, CLI::Option*> options_;
};

}  // namespace depot::cli
