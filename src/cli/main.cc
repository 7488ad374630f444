// The `depot` command. Output for people goes to stdout (help, version); logs go to stderr.
// Exit codes: 0 success, 1 failure at run time, 2 bad usage or an invalid setting.
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/bench_command.h"
#include "cli/serve_command.h"

namespace {

constexpr int kUsageError = 2;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "depot: one broker for background jobs (Faktory), message queues (AMQP 0-9-1) and event "
      "logs (Kafka), on one storage engine",
      "depot"};
  app.set_version_flag("--version", DEPOT_VERSION);
  CLI::App* version = app.add_subcommand("version", "Print the version");
  depot::cli::ServeCommand serve(app);
  depot::cli::BenchCommand bench(app);
  app.require_subcommand(0, 1);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kUsageError;
  }

  if (version->parsed()) {
    std::cout << "depot " << DEPOT_VERSION << "\n";
    return 0;
  }
  if (serve.parsed()) return serve.run();
  if (bench.parsed()) return bench.run();
  std::cerr << app.help();
  return kUsageError;
}
