// Pushes jobs for the example worker: `depot-example-producer --count 10` enqueues ten Greet
// jobs; --fail adds one that throws (to see a retry scheduled), --in N schedules them N s ahead.
#include <chrono>
#include <depot/client.h>
#include <iostream>

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{"Push example jobs to depot (or any Faktory server)"};
  int count = 10;
  bool fail = false;
  int in_seconds = 0;
  std::string url;
  app.add_option("--count", count, "How many Greet jobs to push")->capture_default_str();
  app.add_flag("--fail", fail, "Also push a job that throws");
  app.add_option("--in", in_seconds, "Schedule the jobs this many seconds from now");
  app.add_option("--url", url,
                 "Server URL (default: DEPOT_URL, FAKTORY_URL, tcp://localhost:7419)");
  CLI11_PARSE(app, argc, argv);

  try {
    depot::Client client({.url = url});
    std::vector<depot::Job> jobs;
    for (int i = 0; i < count; ++i) {
      depot::Job job{.jobtype = "Greet", .args = {"world", i}};
      if (in_seconds > 0)
        job.at = std::chrono::system_clock::now() + std::chrono::seconds(in_seconds);
      jobs.push_back(std::move(job));
    }
    if (fail) jobs.push_back(depot::Job{.jobtype = "Explode", .args = {"on purpose"}, .retry = 3});
    auto refused = client.push_bulk(jobs);
    for (const auto& [jid, why] : refused)
      std::cerr << "refused " << jid << ": " << why << "\n";
    std::cout << "pushed " << jobs.size() - refused.size() << " job(s)\n";
    return refused.empty() ? 0 : 1;
  } catch (const depot::Error& e) {
    std::cerr << "producer: " << e.what() << "\n";
    return 1;
  }
}
