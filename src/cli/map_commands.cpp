// `ember map ...` and `ember prog show`: bpftool's commands over the maps
// and programs that running Ember runtimes publish (src/runtime/registry.hpp)
// and over pinned maps.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "cli/commands.hpp"
#include "cli/map_format.hpp"
#include "runtime/registry.hpp"

namespace ember::cli {
namespace {

int error(const std::string& msg, int code = 1) {
  std::fprintf(stderr, "ember: %s\n", msg.c_str());
  return code;
}

bool take_json(std::vector<std::string>& a) {
  bool json = false;
  std::erase_if(a, [&](const std::string& s) {
    if (s == "-j" || s == "--json") return json = true;
    return false;
  });
  return json;
}

// MAP := id ID [pid PID] | name NAME | pinned PATH; consumes its words.
Result<MapPtr> resolve_map(std::vector<std::string>& a) {
  if (a.size() < 2) return fail("expected a map: id ID [pid PID] | name NAME | pinned PATH");
  std::string how = a[0], what = a[1];
  a.erase(a.begin(), a.begin() + 2);
  if (how == "pinned") {
    std::string path = what.find('/') == std::string::npos ? pin_dir() + "/" + what : what;
    int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return fail("pinned map ", path, ": ", std::strerror(errno));
    auto m = Map::open(fd);
    close(fd);
    return m;
  }
  pid_t pid = 0;
  if (a.size() >= 2 && a[0] == "pid") {
    pid = static_cast<pid_t>(std::atol(a[1].c_str()));
    a.erase(a.begin(), a.begin() + 2);
  }
  if (how != "id" && how != "name") return fail("unknown map selector '", how, "'");
  std::vector<PublishedMap> maps;
  read_published(&maps, nullptr);
  std::vector<PublishedMap> hits;
  for (const auto& m : maps)
    if ((how == "id" ? std::to_string(m.id) == what : m.name == what) && (!pid || m.pid == pid))
      hits.push_back(m);
  if (hits.empty())
    return fail("no map with ", how, " ", what, " in a running Ember process (see 'ember map show')");
  if (hits.size() > 1) return fail(hits.size(), " maps match ", how, " ", what, "; add 'pid PID'");
  return open_published(hits[0]);
}

// bpftool's byte syntax: "0x01 2 0x03" or "hex 01 02 03", as many as `n`.
Result<std::vector<uint8_t>> take_bytes(std::vector<std::string>& a, size_t n, const char* what) {
  std::vector<uint8_t> out;
  bool hex = !a.empty() && a[0] == "hex";
  if (hex) a.erase(a.begin());
  while (out.size() < n && !a.empty()) {
    char* end = nullptr;
    unsigned long v = std::strtoul(a[0].c_str(), &end, hex ? 16 : 0);
    if (!end || *end || v > 255) return fail(what, ": '", a[0], "' is not a byte");
    out.push_back(static_cast<uint8_t>(v));
    a.erase(a.begin());
  }
  if (out.size() != n) return fail(what, ": expected ", n, " bytes, got ", out.size());
  return out;
}

Result<std::vector<uint8_t>> keyword_bytes(std::vector<std::string>& a, const char* kw, size_t n) {
  if (a.empty() || a[0] != kw) return fail("expected '", kw, "'");
  a.erase(a.begin());
  return take_bytes(a, n, kw);
}

int map_show(std::vector<std::string> a) {
  bool json = take_json(a);
  std::vector<PublishedMap> maps;
  read_published(&maps, nullptr);
  std::string out = "[";
  for (const auto& pm : maps) {
    auto m = open_published(pm);
    if (!m) {
      std::fprintf(stderr, "ember: %s\n", m.error().message.c_str());
      continue;
    }
    if (json) {
      std::string js = map_show_json(**m);
      js.insert(js.size() - 1, ",\"pid\":" + std::to_string(pm.pid));
      out += (out.size() > 1 ? "," : "") + js;
    } else {
      print_map_show(stdout, **m);
      std::printf("\tpid %d\n", pm.pid);
    }
  }
  if (json) std::printf("%s]\n", out.c_str());
  return 0;
}

int map_dump(std::vector<std::string> a) {
  bool json = take_json(a);
  auto m = resolve_map(a);
  if (!m) return error(m.error().message);
  if (json)
    std::printf("%s\n", map_dump_json(**m).c_str());
  else
    print_map_dump(stdout, **m);
  return 0;
}

int map_lookup(std::vector<std::string> a) {
  bool json = take_json(a);
  auto m = resolve_map(a);
  if (!m) return error(m.error().message);
  auto key = keyword_bytes(a, "key", (*m)->spec().key_size);
  if (!key) return error(key.error().message, 2);
  std::vector<uint8_t> value((*m)->host_value_size());
  int rc = (*m)->lookup(key->empty() ? nullptr : key->data(), value.data());
  if (rc) return error(std::string("lookup failed: ") + std::strerror(-rc));
  if (json) {
    std::printf("{\"key\":\"%s\",\"value\":\"%s\"}\n", hex_bytes(key->data(), key->size()).c_str(),
                hex_bytes(value.data(), value.size()).c_str());
  } else {
    std::printf("key: %s  value: %s\n", hex_bytes(key->data(), key->size()).c_str(),
                hex_bytes(value.data(), value.size()).c_str());
  }
  return 0;
}

int map_update(std::vector<std::string> a) {
  auto m = resolve_map(a);
  if (!m) return error(m.error().message);
  auto key = keyword_bytes(a, "key", (*m)->spec().key_size);
  if (!key) return error(key.error().message, 2);
  auto value = keyword_bytes(a, "value", (*m)->host_value_size());
  if (!value) return error(value.error().message, 2);
  uint64_t flags = kBpfAny;
  if (!a.empty()) {
    if (a[0] == "noexist")
      flags = kBpfNoexist;
    else if (a[0] == "exist")
      flags = kBpfExist;
    else if (a[0] != "any")
      return error("unknown update flag '" + a[0] + "' (any, exist, noexist)", 2);
  }
  int rc = (*m)->update(key->empty() ? nullptr : key->data(), value->data(), flags);
  if (rc) return error(std::string("update failed: ") + std::strerror(-rc));
  return 0;
}

int map_delete(std::vector<std::string> a) {
  auto m = resolve_map(a);
  if (!m) return error(m.error().message);
  auto key = keyword_bytes(a, "key", (*m)->spec().key_size);
  if (!key) return error(key.error().message, 2);
  int rc = (*m)->erase(key->empty() ? nullptr : key->data());
  if (rc) return error(std::string("delete failed: ") + std::strerror(-rc));
  return 0;
}

}  // namespace

int cmd_map(const std::vector<std::string>& argv) {
  if (argv.empty() || argv[0] == "--help" || argv[0] == "-h" || argv[0] == "help") {
    std::fputs(command_usage("map"), argv.empty() ? stderr : stdout);
    return argv.empty() ? 2 : 0;
  }
  std::vector<std::string> rest(argv.begin() + 1, argv.end());
  const std::string& verb = argv[0];
  if (verb == "show" || verb == "list") return map_show(rest);
  if (verb == "dump") return map_dump(rest);
  if (verb == "lookup") return map_lookup(rest);
  if (verb == "update") return map_update(rest);
  if (verb == "delete") return map_delete(rest);
  return error("map: unknown command '" + verb + "'\n" + command_usage("map"), 2);
}

int cmd_prog(const std::vector<std::string>& argv) {
  std::vector<std::string> a = argv;
  bool json = take_json(a);
  if (a.empty() || (a[0] != "show" && a[0] != "list")) {
    std::fputs(command_usage("prog"), a.empty() ? stderr : stdout);
    return a.size() == 1 && (a[0] == "--help" || a[0] == "-h") ? 0 : 2;
  }
  std::vector<PublishedProg> progs;
  read_published(nullptr, &progs);
  std::string out = "[";
  for (const auto& p : progs) {
    if (json) {
      out += (out.size() > 1 ? "," : "") + std::string("{\"id\":") + std::to_string(p.id) + ",\"type\":\"" +
             p.type + "\",\"name\":\"" + p.name + "\",\"section\":\"" + p.section +
             "\",\"pid\":" + std::to_string(p.pid) + ",\"bytes_xlated\":" + std::to_string(p.xlated_bytes) +
             ",\"jited\":" + (p.jited_bytes ? "true" : "false") +
             (p.jited_bytes ? ",\"bytes_jited\":" + std::to_string(p.jited_bytes) : "") + "}";
    } else {
      // bpftool: "ID: TYPE  name NAME  tag ..." and "xlated 440B  jited
      // 256B" (or "not jited"); Ember adds where it runs.
      std::printf("%u: %s  name %s  section %s\n\tpid %d\n\txlated %" PRIu64 "B  ", p.id, p.type.c_str(),
                  p.name.c_str(), p.section.c_str(), p.pid, p.xlated_bytes);
      if (p.jited_bytes)
        std::printf("jited %" PRIu64 "B\n", p.jited_bytes);
      else
        std::printf("not jited\n");
    }
  }
  if (json) std::printf("%s]\n", out.c_str());
  return 0;
}

}  // namespace ember::cli
