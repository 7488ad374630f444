// Links libdepot from its installed package and exercises a little of it (no server needed).
#include <depot/enumerators.h>
#include <depot/worker.h>
#include <iostream>

int main() {
  const auto address = depot::parse_server_url("tcp://:secret@jobs.example.com:7500");
  depot::Job job{.jobtype = "Resize", .args = {"a.png", 640}};
  const auto payload = job.to_json();
  int64_t sum = 0;
  auto numbers = depot::enumerate::range(0, 10, nullptr);
  while (auto step = numbers.next())
    sum += step->item;
  const bool ok = address.port == 7500 && address.password == "secret" &&
                  payload["jobtype"] == "Resize" && sum == 45;
  std::cout << (ok ? "libdepot package works" : "libdepot package is broken") << "\n";
  return ok ? 0 : 1;
}
