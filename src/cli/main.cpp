// ember: the command-line front end of the runtime.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.hpp"

namespace {

void usage(std::FILE* out) {
  std::fputs(
      "usage: ember COMMAND [ARGS]\n"
      "Ember is a user-space eBPF runtime: it assembles, checks, runs and disassembles eBPF programs.\n\n"
      "commands:\n",
      out);
  for (const auto& c : ember::cli::commands()) std::fprintf(out, "  %-20s %s\n", c.name, c.summary);
  std::fputs("\n'ember COMMAND --help' describes a command.\n", out);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    usage(stderr);
    return 2;
  }
  std::string cmd = args[0];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    if (args.size() > 1)
      for (const auto& c : ember::cli::commands())
        if (args[1] == c.name) return std::fputs(c.usage, stdout), 0;
    usage(stdout);
    return 0;
  }
  if (cmd == "--version") return std::puts("ember 0.1.0"), 0;
  for (const auto& c : ember::cli::commands())
    if (cmd == c.name) return c.fn({args.begin() + 1, args.end()});
  std::fprintf(stderr, "ember: unknown command '%s'\n", cmd.c_str());
  usage(stderr);
  return 2;
}
