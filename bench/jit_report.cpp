#include "jit_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace ember::bench {

std::string net_name(const std::string& kernel) { return kernel + "-empty"; }

// The median of the repetitions (or the one run, without repetitions), in
// ns. The time is the thread's CPU time, except for the kernel's manual time (its
// own measurement): on a shared machine, wall time would charge user-space
// engines for the time other processes hold the CPU, and the kernel's
// BPF_PROG_TEST_RUN stops its clock whenever it yields the CPU.
void JitReporter::ReportRuns(const std::vector<Run>& runs) {
  ConsoleReporter::ReportRuns(runs);
  for (const Run& r : runs) {
    bool single = r.aggregate_name.empty() && r.repetitions <= 1;
    if (r.error_occurred || !(r.aggregate_name == "median" || single)) continue;
    std::string name = r.run_name.function_name;
    size_t slash = name.rfind('/');
    std::string row = name.substr(0, slash);
    if (!medians_.count(row)) order_.push_back(row);
    bool manual = r.run_name.time_type == "manual_time";
    double t = manual ? r.GetAdjustedRealTime() : r.GetAdjustedCPUTime();  // in r.time_unit
    medians_[row][name.substr(slash + 1)] = t * 1e9 / benchmark::GetTimeUnitMultiplier(r.time_unit);
  }
}

double JitReporter::median(const std::string& row, const std::string& engine) const {
  auto r = medians_.find(row);
  if (r == medians_.end()) return NAN;
  if (engine == net_name(spec_.kernel))
    return median(row, spec_.kernel) - median(spec_.empty_row, spec_.kernel);
  auto e = r->second.find(engine);
  return e == r->second.end() ? NAN : e->second;
}

void JitReporter::Finalize() {
  ConsoleReporter::Finalize();
  print_medians();
  print_geomeans();
  print_compile();
}

void JitReporter::print_medians() const {
  std::printf(
      "\nmedian ns per run: CPU time; %s by its own clock, %s = %s minus the %s row's (the per-run "
      "overhead)\n",
      spec_.kernel.c_str(), net_name(spec_.kernel).c_str(), spec_.kernel.c_str(), spec_.empty_row.c_str());
  std::printf("%-14s", "program");
  for (const auto& e : spec_.engines) std::printf(" %12s", e.substr(0, 12).c_str());
  for (const auto& c : spec_.ratios)
    std::printf(" %15s", (c.numerator + "/" + c.denominator).substr(0, 15).c_str());
  std::printf("\n");
  for (const auto& row : order_) {
    if (medians_.at(row).count(spec_.compile_engine)) continue;
    std::printf("%-14s", row.c_str());
    for (const auto& e : spec_.engines) {
      double v = median(row, e);
      std::isnan(v) ? std::printf(" %12s", "-") : std::printf(" %12.1f", v);
    }
    for (const auto& c : spec_.ratios) {
      double q = median(row, c.numerator) / median(row, c.denominator);
      std::isnan(q) ? std::printf(" %15s", "-") : std::printf(" %15.2f", q);
    }
    std::printf("\n");
  }
}

// Geometric means over the rows where both engines ran, the empty row left
// out (it is the overhead, not work); a non-positive net time (a program
// faster than the overhead's noise) cannot enter a geometric mean and is
// counted as left out.
void JitReporter::print_geomeans() const {
  std::printf("geometric means (the %s row excluded):\n", spec_.empty_row.c_str());
  for (const auto& c : spec_.ratios) {
    double logs = 0;
    int n = 0, bad = 0;
    for (const auto& row : order_) {
      if (row == spec_.empty_row || medians_.at(row).count(spec_.compile_engine)) continue;
      double q = median(row, c.numerator) / median(row, c.denominator);
      if (std::isnan(q)) continue;
      if (q <= 0) {
        ++bad;
        continue;
      }
      logs += std::log(q), ++n;
    }
    double g = n ? std::exp(logs / n) : NAN;
    std::printf("  %s/%s = %.2f over %d programs", c.numerator.c_str(), c.denominator.c_str(), g, n);
    if (bad) std::printf(" (%d left out: not positive)", bad);
    if (!c.target.empty() && n) {
      double t = std::atof(c.target.c_str() + (c.target[1] == '=' ? 2 : 1));
      bool met = c.target[0] == '<' ? g <= t : c.target[1] == '=' ? g >= t : g > t;
      std::printf("; target %s: %s", c.target.c_str(), met ? "met" : "NOT met");
    }
    std::printf("\n");
  }
}

void JitReporter::print_compile() const {
  bool any = false;
  for (const auto& row : order_) {
    double v = median(row, spec_.compile_engine);
    if (std::isnan(v)) continue;
    if (!any) std::printf("\ncompile time (median per JitProgram::compile)\n");
    any = true;
    std::printf("  %-40s %10.3f ms", row.c_str(), v * 1e-6);
    if (row == spec_.compile_target_row)
      std::printf("  target < %.0f ms: %s", spec_.compile_target_ns * 1e-6,
                  v < spec_.compile_target_ns ? "met" : "NOT met");
    std::printf("\n");
  }
}

}  // namespace ember::bench
