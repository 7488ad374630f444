// A worker process: `depot-example-worker --concurrency 4` runs Greet and Explode jobs until
// SIGTERM (or the server's "terminate"); SIGTSTP quiets it.
#include <depot/worker.h>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>

namespace {

// A job as a class: a new instance for every job.
struct Greet {
  void perform(const depot::json& args) {
    std::cout << "hello, " << args.at(0).get<std::string>() << " #" << args.at(1) << std::endl;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Run example jobs from depot (or any Faktory server)"};
  depot::WorkerOptions options;
  std::vector<std::string> queues{"default"};
  app.add_option("--concurrency", options.concurrency, "Jobs run at once")->capture_default_str();
  app.add_option("--queue", queues, "Queues in strict order")->capture_default_str();
  app.add_option("--url", options.client.url,
                 "Server URL (default: DEPOT_URL, FAKTORY_URL, tcp://localhost:7419)");
  CLI11_PARSE(app, argc, argv);
  options.queues.clear();
  for (const auto& q : queues)
    options.queues.push_back({q, 1});

  try {
    depot::Worker worker(options);
    worker.use(depot::middleware::logging());
    worker.register_job<Greet>("Greet");
    // A job as a callable; its exception FAILs the job and the server schedules a retry.
    worker.register_job("Explode", [](const depot::json& args) {
      throw depot::TracedError("exploded: " + args.at(0).get<std::string>());
    });
    auto report = worker.run();
    return report.abandoned == 0 ? 0 : 1;
  } catch (const depot::Error& e) {
    std::cerr << "worker: " << e.what() << "\n";
    return 1;
  }
}
