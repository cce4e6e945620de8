// The JIT benchmark's table: collects the median of each ROW/ENGINE
// benchmark and prints, at the end, a column per engine, the kernel's
// numbers with the empty program's per-run overhead subtracted, ratio
// columns against the baseline (Ember's JIT) with their geometric means,
// the targets met or not, and the compile times.
#pragma once

#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <vector>

namespace ember::bench {

// One ratio column: numerator / denominator (engine names), with an
// optional target on its geometric mean.
struct RatioColumn {
  std::string numerator, denominator;
  std::string target;  // "", "<= X", ">= X" or "> X"
};

struct JitTableSpec {
  std::vector<std::string> engines;  // the columns of medians, in order
  std::string kernel;                // the kernel's engine, whose net column is derived
  std::string empty_row;             // the row whose kernel time is the per-run overhead
  std::vector<RatioColumn> ratios;
  std::string compile_engine;      // rows timed for this engine go to the compile table
  double compile_target_ns = 0;    // the compile table's target (the generated program's row)
  std::string compile_target_row;  // the row the target applies to
};

class JitReporter : public benchmark::ConsoleReporter {
 public:
  explicit JitReporter(JitTableSpec spec) : spec_(std::move(spec)) {}
  void ReportRuns(const std::vector<Run>& runs) override;
  void Finalize() override;

 private:
  double median(const std::string& row, const std::string& engine) const;
  void print_medians() const;
  void print_geomeans() const;
  void print_compile() const;

  JitTableSpec spec_;
  std::map<std::string, std::map<std::string, double>> medians_;
  std::vector<std::string> order_;  // rows in the order they first ran
};

// The name of the derived column: the kernel's time minus the empty row's.
std::string net_name(const std::string& kernel);

}  // namespace ember::bench
