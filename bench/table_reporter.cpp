#include "table_reporter.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ember::bench {

void TableReporter::ReportRuns(const std::vector<Run>& runs) {
  ConsoleReporter::ReportRuns(runs);
  for (const Run& r : runs) {
    if (r.error_occurred || r.aggregate_name != "median") continue;
    std::string name = r.run_name.function_name;
    size_t slash = name.rfind('/');
    medians_[name.substr(0, slash)][name.substr(slash + 1)] = r.GetAdjustedRealTime();
  }
}

void TableReporter::Finalize() {
  ConsoleReporter::Finalize();
  std::printf("\n%s (ratio = engine / %s; >1 means %s is faster)\n", spec_.title.c_str(),
              spec_.baseline.c_str(), spec_.baseline.c_str());
  std::printf("%-22s", "");
  for (const auto& e : spec_.engines) std::printf(" %14s", e.c_str());
  for (const auto& c : spec_.compared) std::printf(" %14s", (c + "/" + spec_.baseline).substr(0, 14).c_str());
  std::printf("\n");
  std::vector<double> logs(spec_.compared.size(), 0);
  std::vector<int> counts(spec_.compared.size(), 0);
  for (auto& [row, by_engine] : medians_) {
    std::printf("%-22s", row.c_str());
    for (const auto& e : spec_.engines) {
      auto it = by_engine.find(e);
      it == by_engine.end() ? std::printf(" %14s", "-") : std::printf(" %14.1f", it->second);
    }
    double base = by_engine.count(spec_.baseline) ? by_engine[spec_.baseline] : NAN;
    bool excluded = std::find(spec_.excluded.begin(), spec_.excluded.end(), row) != spec_.excluded.end();
    for (size_t i = 0; i < spec_.compared.size(); ++i) {
      double ratio = by_engine.count(spec_.compared[i]) ? by_engine[spec_.compared[i]] / base : NAN;
      std::printf(" %14.2f", ratio);
      if (!excluded && !std::isnan(ratio)) logs[i] += std::log(ratio), ++counts[i];
    }
    std::printf("\n");
  }
  std::printf("geometric mean:");
  for (size_t i = 0; i < spec_.compared.size(); ++i)
    std::printf(" %s/%s %.2f (%d rows)", spec_.compared[i].c_str(), spec_.baseline.c_str(),
                counts[i] ? std::exp(logs[i] / counts[i]) : NAN, counts[i]);
  std::printf("\n");
}

}  // namespace ember::bench
