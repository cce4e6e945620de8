// Google Benchmark reporter that collects the median of each ROW/ENGINE
// benchmark and prints one table at the end: a column per engine and a
// ratio column per compared engine (engine / baseline: above 1 means the
// baseline is faster), with their geometric means.
#pragma once

#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <vector>

namespace ember::bench {

struct TableSpec {
  std::string title;                  // what the numbers are ("median ns per run")
  std::vector<std::string> engines;   // columns, in order
  std::string baseline;               // the engine ratios divide by
  std::vector<std::string> compared;  // engines that get a ratio column
  std::vector<std::string> excluded;  // rows kept out of the geometric means
};

class TableReporter : public benchmark::ConsoleReporter {
 public:
  explicit TableReporter(TableSpec spec) : spec_(std::move(spec)) {}
  void ReportRuns(const std::vector<Run>& runs) override;
  void Finalize() override;

 private:
  TableSpec spec_;
  std::map<std::string, std::map<std::string, double>> medians_;
};

}  // namespace ember::bench
