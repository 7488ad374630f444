// An iteration job over a large CSV file that survives interruption:
//
//   depot-example-csv_import generate --rows 1000000 --csv rows.csv
//   depot-example-csv_import enqueue --csv rows.csv --out totals.bin
//   depot-example-csv_import work          # SIGTERM it mid-way, start it again: it resumes
//
// Each row (id,name,amount) gives one 8-byte result written at offset 8*id of --out, so doing
// a row twice changes nothing: after any number of interruptions the output equals that of one
// uninterrupted run, and a row that was skipped would leave a zero.
#include <atomic>
#include <cstdio>
#include <depot/enumerators.h>
#include <depot/worker.h>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>
#include <unistd.h>

#include <CLI/CLI.hpp>

namespace {

struct Settings {
  int64_t item_delay_us = 0;
  std::string pause_file;  // throttled while this file exists
  bool exit_when_done = false;
};
Settings settings;
std::atomic<depot::Worker*> running_worker{nullptr};

int64_t row_result(int64_t id, const std::string& name, int64_t amount) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a of the name, mixed with the amount
  for (unsigned char c : name)
    h = (h ^ c) * 1099511628211ULL;
  return static_cast<int64_t>(h ^ static_cast<uint64_t>(amount * 31 + id));
}

class ImportCsv : public depot::IterationJob<depot::enumerate::CsvRow> {
 public:
  ~ImportCsv() override {
    if (out_ >= 0) ::close(out_);
  }

  depot::Enumerator<depot::enumerate::CsvRow> build_enumerator(const depot::json& args,
                                                               const depot::json& cursor) override {
    auto rows = depot::enumerate::csv_rows(args.at(0).get<std::string>(), cursor);
    // The row count, when the producer knew it, makes the progress a fraction.
    std::optional<int64_t> total;
    if (args.size() > 2) total = args[2].get<int64_t>();
    return depot::Enumerator<depot::enumerate::CsvRow>([rows]() mutable { return rows.next(); },
                                                       total);
  }

  void each_iteration(depot::enumerate::CsvRow& row, const depot::json& args) override {
    if (out_ < 0) {
      out_ = ::open(args.at(1).get<std::string>().c_str(), O_WRONLY | O_CLOEXEC);
      if (out_ < 0) throw depot::TracedError("cannot open " + args.at(1).get<std::string>());
    }
    if (row.size() != 3) throw depot::TracedError("a row needs 3 fields: id,name,amount");
    const int64_t id = std::stoll(row[0]);
    const int64_t value = row_result(id, row[1], std::stoll(row[2]));
    if (::pwrite(out_, &value, sizeof value, id * 8) != sizeof value) {
      throw depot::TracedError("cannot write the result of row " + row[0]);
    }
    if (settings.item_delay_us > 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(settings.item_delay_us));
    }
  }

  std::optional<std::chrono::milliseconds> throttle() override {
    if (!settings.pause_file.empty() && std::filesystem::exists(settings.pause_file)) {
      return std::chrono::milliseconds(1000);
    }
    return std::nullopt;
  }

  void on_start() override { context().log(depot::LogLevel::info, "import started"); }
  void on_resume() override {
    context().log(depot::LogLevel::info, "import resumed",
                  {{"done", std::to_string(state().done)}, {"cursor", state().cursor.dump()}});
  }
  void on_complete() override {
    context().log(depot::LogLevel::info, "import complete",
                  {{"rows", std::to_string(state().done)},
                   {"times_interrupted", std::to_string(state().times_interrupted)}});
    if (settings.exit_when_done) {
      if (auto* worker = running_worker.load()) worker->terminate();
    }
  }

 private:
  int out_ = -1;
};

int generate(const std::string& csv, int64_t rows) {
  std::ofstream out(csv, std::ios::binary | std::ios::trunc);
  out << "id,name,amount\n";
  for (int64_t id = 0; id < rows; ++id) {
    // Every 7th name is quoted with a comma inside, every 13th holds a quote: real CSV.
    if (id % 13 == 0) {
      out << id << ",\"O\"\"Brien " << id << "\"," << (id * 7919) % 10007 << "\n";
    } else if (id % 7 == 0) {
      out << id << ",\"Lovelace, Ada " << id << "\"," << (id * 7919) % 10007 << "\n";
    } else {
      out << id << ",name" << id << "," << (id * 7919) % 10007 << "\n";
    }
    if (rows >= 100000 && id % (rows / 10) == 0 && id > 0) {
      std::cerr << "generate: " << id * 100 / rows << "%\n";
    }
  }
  if (!out) {
    std::cerr << "generate: cannot write " << csv << "\n";
    return 1;
  }
  std::cout << "wrote " << rows << " rows to " << csv << "\n";
  return 0;
}

int enqueue(const std::string& url, const std::string& csv, const std::string& out, int64_t rows) {
  if (rows < 0) {  // count them
    rows = 0;
    std::ifstream in(csv);
    std::string line;
    while (std::getline(in, line))
      ++rows;
    rows = std::max<int64_t>(0, rows - 1);
  }
  { std::ofstream create(out, std::ios::binary | std::ios::trunc); }
  std::filesystem::resize_file(out, static_cast<uintmax_t>(rows) * 8);
  depot::Client client({.url = url});
  depot::Job job{.jobtype = "ImportCsv",
                 .args = {std::filesystem::absolute(csv).string(),
                          std::filesystem::absolute(out).string(), rows},
                 .queue = "imports"};
  client.push(job);
  std::cout << job.jid << "\n";
  return 0;
}

int work(depot::WorkerOptions options) {
  depot::Worker worker(std::move(options));
  worker.register_job<ImportCsv>("ImportCsv");
  running_worker = &worker;
  auto report = worker.run();
  running_worker = nullptr;
  return report.abandoned == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"An interruptible CSV import on depot's iteration jobs"};
  app.require_subcommand(1);
  std::string url;
  app.add_option("--url", url,
                 "Server URL (default: DEPOT_URL, FAKTORY_URL, tcp://localhost:7419)");

  std::string csv = "rows.csv";
  std::string out = "totals.bin";
  int64_t rows = 1'000'000;
  auto* gen = app.add_subcommand("generate", "Write a CSV file of id,name,amount rows");
  gen->add_option("--csv", csv, "File to write")->capture_default_str();
  gen->add_option("--rows", rows, "Rows to write")->capture_default_str();

  int64_t enqueue_rows = -1;
  auto* enq = app.add_subcommand("enqueue", "Push one ImportCsv job for a CSV file");
  enq->add_option("--csv", csv, "The CSV file")->capture_default_str();
  enq->add_option("--out", out, "Results file (created, 8 bytes per row)")->capture_default_str();
  enq->add_option("--rows", enqueue_rows, "Rows in the file (counted when not given)");

  depot::WorkerOptions options;
  options.queues = {{"imports", 1}};
  options.concurrency = 2;
  int64_t max_runtime_ms = options.iteration.max_job_runtime.count();
  int64_t checkpoint_ms = options.iteration.checkpoint_every.count();
  auto* wrk = app.add_subcommand("work", "Run ImportCsv jobs until SIGTERM");
  wrk->add_option("--concurrency", options.concurrency, "Jobs run at once")->capture_default_str();
  wrk->add_option("--checkpoint-items", options.iteration.checkpoint_every_items,
                  "Checkpoint after this many rows")
      ->capture_default_str();
  wrk->add_option("--checkpoint-ms", checkpoint_ms, "... or after this many milliseconds")
      ->capture_default_str();
  wrk->add_option("--max-runtime-ms", max_runtime_ms, "Interrupt and re-enqueue a run after this")
      ->capture_default_str();
  wrk->add_option("--item-delay-us", settings.item_delay_us, "Sleep after each row (demos, tests)");
  wrk->add_option("--pause-file", settings.pause_file,
                  "Throttle the import while this file exists");
  wrk->add_flag("--exit-when-done", settings.exit_when_done, "Stop once an import completes");
  CLI11_PARSE(app, argc, argv);

  try {
    if (gen->parsed()) return generate(csv, rows);
    if (enq->parsed()) return enqueue(url, csv, out, enqueue_rows);
    options.client.url = url;
    options.iteration.max_job_runtime = std::chrono::milliseconds(max_runtime_ms);
    options.iteration.checkpoint_every = std::chrono::milliseconds(checkpoint_ms);
    return work(std::move(options));
  } catch (const depot::Error& e) {
    std::cerr << "csv_import: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "csv_import: " << e.what() << "\n";
    return 1;
  }
}
