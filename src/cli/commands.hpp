#pragma once

#include <string>
#include <vector>

namespace ember::cli {

// Each returns the process exit code: 0 success, 1 bad input or a failed
// run, 2 a usage error.
int cmd_asm(const std::vector<std::string>& args);
int cmd_disasm(const std::vector<std::string>& args);
int cmd_run(const std::vector<std::string>& args);
int cmd_check(const std::vector<std::string>& args);
int cmd_conformance_plugin(const std::vector<std::string>& args);
int cmd_map(const std::vector<std::string>& args);
int cmd_objdump(const std::vector<std::string>& args);
int cmd_verify(const std::vector<std::string>& args);
int cmd_tracelog(const std::vector<std::string>& args);
int cmd_prog(const std::vector<std::string>& args);
int cmd_trace(const std::vector<std::string>& args);

struct Command {
  const char* name;
  const char* summary;
  const char* usage;
  int (*fn)(const std::vector<std::string>&);
};
const std::vector<Command>& commands();
const char* command_usage(const char* name);

}  // namespace ember::cli
