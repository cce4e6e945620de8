// The agent's constructor, in an object of its own that the link places
// after the static C++ runtime (see ember_agent in CMakeLists.txt). A
// shared library runs its initializers in link order, and the runtime's
// (libstdc++'s exception emergency pool, a malloc of ~70 KiB) must run
// before the session attaches probes: a probe on malloc would otherwise
// count an allocation of the agent's as the target's.
namespace ember::attach {
void agent_init();  // agent_main.cpp
}  // namespace ember::attach

// Referenced by the link (--undefined), so that the linker takes this
// object from its archive where the link line puts it.
extern "C" __attribute__((visibility("hidden"))) const int ember_agent_start_anchor = 1;

namespace {
__attribute__((constructor)) void ember_agent_start() { ember::attach::agent_init(); }
}  // namespace
