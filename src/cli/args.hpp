// A small command-line parser: positional arguments and --flags, each flag
// declared with whether it takes a value. Unknown flags are errors.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ember/result.hpp"

namespace ember::cli {

struct FlagSpec {
  std::string name;  // "--mem", "-o"
  bool takes_value;
};

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;
  std::set<std::string> present;

  bool has(const std::string& flag) const { return present.count(flag) != 0; }
  std::optional<std::string> get(const std::string& flag) const {
    auto it = values.find(flag);
    return it == values.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
};

inline Result<Args> parse_args(const std::vector<std::string>& argv, const std::vector<FlagSpec>& specs) {
  Args a;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& s = argv[i];
    if (s.size() < 2 || s[0] != '-' || a.has("--")) {
      a.positional.push_back(s);
      continue;
    }
    std::string name = s, value;
    bool inline_value = false;
    if (auto eq = s.find('='); eq != std::string::npos && s.starts_with("--"))
      name = s.substr(0, eq), value = s.substr(eq + 1), inline_value = true;
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& f : specs)
      if (f.name == name) spec = &f;
    if (!spec) return fail("unknown option '", name, "'");
    a.present.insert(name);
    if (!spec->takes_value) {
      if (inline_value) return fail("option ", name, " takes no value");
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argv.size()) return fail("option ", name, " needs a value");
      value = argv[++i];
    }
    a.values[name] = value;
  }
  return a;
}

}  // namespace ember::cli
