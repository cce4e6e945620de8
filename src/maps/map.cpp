// Map: creation, attachment and the operations a type does not support
// (answered with the kernel's errno: EINVAL or ENOTSUPP).
#include <fcntl.h>
#include <sched.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "maps/map_impl.hpp"

namespace ember {

namespace {

constexpr int kEnotsupp = 524;  // the kernel's ENOTSUPP, what bpf() returns for unsupported ops

constexpr MapType kDatapathTypes[] = {MapType::Devmap,  MapType::DevmapHash, MapType::Cpumap,
                                      MapType::Sockmap, MapType::Sockhash,   MapType::Xskmap};

}  // namespace

std::string_view map_type_name(MapType t) {
  switch (t) {
#define EMBER_X(e, v, n) \
  case MapType::e: return n;
    EMBER_MAP_TYPES(EMBER_X)
#undef EMBER_X
  }
  return "unknown";
}

Result<MapType> map_type_from_name(std::string_view name) {
#define EMBER_X(e, v, n) \
  if (name == n) return MapType::e;
  EMBER_MAP_TYPES(EMBER_X)
#undef EMBER_X
  return fail("unknown map type '", name, "'");
}

MapSpec MapSpec::from_def(const MapDef& def) {
  MapSpec s;
  s.name = def.name;
  s.type = static_cast<MapType>(def.type);
  s.key_size = def.key_size;
  s.value_size = def.value_size;
  s.max_entries = def.max_entries;
  s.map_flags = def.map_flags;
  s.map_extra = def.map_extra;
  if (def.inner) s.inner = std::make_shared<MapSpec>(from_def(*def.inner));
  return s;
}

uint32_t possible_cpus() {
  int n = get_nprocs_conf();
  return n > 0 ? static_cast<uint32_t>(n) : 1;
}

uint32_t current_cpu(uint32_t ncpus) {
  // glibc serves sched_getcpu from rseq: a load, not a system call.
  int cpu = sched_getcpu();
  return cpu < 0 ? 0 : static_cast<uint32_t>(cpu) % ncpus;
}

namespace maps {

Status check_flags(const MapSpec& spec, uint32_t allowed) {
  if (spec.map_flags & ~allowed)
    return fail("map '", spec.name, "': map_flags 0x", spec.map_flags, " include flags a ",
                map_type_name(spec.type), " map does not take");
  return ok_status();
}

const MapImpl* find_impl(MapType type) {
  static const MapImpl* const kAll[] = {
      &kArrayImpl,         &kPercpuArrayImpl,   &kHashImpl,       &kPercpuHashImpl,  &kLruHashImpl,
      &kLruPercpuHashImpl, &kQueueImpl,         &kStackImpl,      &kBloomFilterImpl, &kProgArrayImpl,
      &kLpmTrieImpl,       &kArrayOfMapsImpl,   &kStackTraceImpl, &kHashOfMapsImpl,  &kCgroupArrayImpl,
      &kRingbufImpl,       &kPerfEventArrayImpl};
  for (const MapImpl* m : kAll)
    if (m->type == type) return m;
  return nullptr;
}

}  // namespace maps

namespace {

Status check_common(const MapSpec& spec) {
  for (MapType t : kDatapathTypes)
    if (spec.type == t)
      return fail("map '", spec.name, "': ", map_type_name(t),
                  " maps belong to the packet datapath, which Ember does not support yet");
  if (!maps::find_impl(spec.type))
    return fail("map '", spec.name, "': map type ", map_type_name(spec.type), " (",
                static_cast<uint32_t>(spec.type), ") is not supported");
  // The kernel caps key and value sizes well below these; ours only guard
  // the size arithmetic.
  if (spec.key_size > (1u << 16) || spec.value_size > (1u << 24))
    return fail("map '", spec.name, "': key_size ", spec.key_size, " or value_size ", spec.value_size,
                " is too large");
  return ok_status();
}

void write_header(shm::Header& h, const MapSpec& spec, uint32_t ncpus, size_t size) {
  std::memcpy(h.magic, shm::kMagic, sizeof h.magic);
  h.version = shm::kVersion;
  h.type = static_cast<uint32_t>(spec.type);
  h.key_size = spec.key_size;
  h.value_size = spec.value_size;
  h.max_entries = spec.max_entries;
  h.map_flags = spec.map_flags;
  h.map_extra = spec.map_extra;
  h.ncpus = ncpus;
  if (spec.inner) {
    h.has_inner = 1;
    h.inner = {static_cast<uint32_t>(spec.inner->type),
               spec.inner->key_size,
               spec.inner->value_size,
               spec.inner->max_entries,
               spec.inner->map_flags,
               0};
  }
  std::strncpy(h.name, spec.name.c_str(), sizeof h.name - 1);
  h.size = size;
}

MapSpec read_header(const shm::Header& h) {
  MapSpec s;
  s.name.assign(h.name, strnlen(h.name, sizeof h.name));
  s.type = static_cast<MapType>(h.type);
  s.key_size = h.key_size;
  s.value_size = h.value_size;
  s.max_entries = h.max_entries;
  s.map_flags = h.map_flags;
  s.map_extra = h.map_extra;
  if (h.has_inner) {
    auto in = std::make_shared<MapSpec>();
    in->type = static_cast<MapType>(h.inner.type);
    in->key_size = h.inner.key_size;
    in->value_size = h.inner.value_size;
    in->max_entries = h.inner.max_entries;
    in->map_flags = h.inner.map_flags;
    s.inner = std::move(in);
  }
  return s;
}

}  // namespace

Result<MapPtr> Map::create(const MapSpec& spec_in, const MapOptions& opts) {
  MapSpec spec = spec_in;
  if (spec.name.size() > 15) spec.name.resize(15);
  if (auto st = check_common(spec); !st) return st.error();
  const maps::MapImpl* impl = maps::find_impl(spec.type);
  if (auto st = impl->check(spec); !st) return st.error();
  uint32_t ncpus = opts.ncpus ? opts.ncpus : possible_cpus();
  size_t size = impl->segment_size(spec, ncpus);
  if (!opts.pin_path.empty()) {
    if (auto pinned = reuse_pinned(spec, opts.pin_path)) return std::move(*pinned);
  }
  auto seg =
      opts.pin_path.empty() ? shm::create(spec.name.c_str(), size) : shm::create_file(opts.pin_path, size);
  if (!seg) return seg.error();
  write_header(*reinterpret_cast<shm::Header*>(seg->base), spec, ncpus, size);
  return impl->make(spec, *seg, ncpus, true);
}

// libbpf's map_is_reuse_compat: a pinned map is reused when it matches the
// definition; a mismatch is an error, never a silent replacement.
std::optional<Result<MapPtr>> Map::reuse_pinned(const MapSpec& spec, const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  auto m = open(fd);
  close(fd);
  if (!m) return Result<MapPtr>(fail("pinned map ", path, ": ", m.error().message));
  const MapSpec& have = (*m)->spec();
  if (have.type != spec.type || have.key_size != spec.key_size || have.value_size != spec.value_size ||
      have.max_entries != spec.max_entries || have.map_flags != spec.map_flags)
    return Result<MapPtr>(fail("pinned map ", path, " does not match the definition of '", spec.name,
                               "' (type, key, value, max_entries or flags differ)"));
  return m;
}

Result<MapPtr> Map::open(int fd) {
  auto seg = shm::attach(fd);
  if (!seg) return seg.error();
  const auto& h = *reinterpret_cast<const shm::Header*>(seg->base);
  auto bad = [&](const std::string& why) -> Error {
    shm::release(*seg);
    return fail("map fd ", fd, ": ", why);
  };
  if (std::memcmp(h.magic, shm::kMagic, sizeof h.magic) != 0) return bad("not an Ember map segment");
  if (h.version != shm::kVersion) return bad("segment layout version " + std::to_string(h.version));
  MapSpec spec = read_header(h);
  if (auto st = check_common(spec); !st) return bad(st.error().message);
  const maps::MapImpl* impl = maps::find_impl(spec.type);
  if (auto st = impl->check(spec); !st) return bad(st.error().message);
  if (h.ncpus == 0 || h.size != seg->size || impl->segment_size(spec, h.ncpus) != seg->size)
    return bad("header does not match the segment's size");
  return impl->make(spec, *seg, h.ncpus, false);
}

Map::Map(MapSpec spec, int fd, uint8_t* base, size_t size, uint32_t ncpus)
    : spec_(std::move(spec)), fd_(fd), base_(base), size_(size), ncpus_(ncpus) {}

Map::~Map() {
  shm::Segment s{fd_, base_, size_};
  shm::release(s);
}

bool Map::percpu() const {
  switch (spec_.type) {
    case MapType::PercpuArray:
    case MapType::PercpuHash:
    case MapType::LruPercpuHash:
    case MapType::PercpuCgroupStorage: return true;
    default: return false;
  }
}

uint32_t Map::host_value_size() const {
  return percpu() ? maps::value_stride(spec_) * ncpus_ : spec_.value_size;
}

// Batches walk get_next_key order; the cursor is the last key handed out
// (opaque to callers, like the kernel's bucket numbers).
int Map::lookup_batch(const void* in_batch, void* out_batch, void* keys, void* values, uint32_t* count,
                      bool and_delete) {
  const uint32_t ks = spec_.key_size, vs = host_value_size();
  if (ks == 0 || *count == 0) return -EINVAL;
  std::vector<uint8_t> cur(ks), next(ks);
  bool have_cur = in_batch != nullptr;
  if (have_cur) std::memcpy(cur.data(), in_batch, ks);
  uint32_t n = 0;
  int rc = 0;
  while (n < *count) {
    rc = next_key(have_cur ? cur.data() : nullptr, next.data());
    if (rc) break;
    uint8_t* k = static_cast<uint8_t*>(keys) + static_cast<size_t>(n) * ks;
    uint8_t* v = static_cast<uint8_t*>(values) + static_cast<size_t>(n) * vs;
    int lr = and_delete ? lookup_and_delete(next.data(), v) : lookup(next.data(), v);
    if (and_delete && lr == -kEnotsupp) {  // types without lookup_and_delete: two steps
      lr = lookup(next.data(), v);
      if (lr == 0) lr = erase(next.data());
    }
    cur = next;
    have_cur = true;
    if (lr == -ENOENT) continue;  // deleted meanwhile
    if (lr) {
      rc = lr;
      break;
    }
    std::memcpy(k, next.data(), ks);
    ++n;
  }
  *count = n;
  if (have_cur && out_batch) std::memcpy(out_batch, cur.data(), ks);
  return rc;
}

int Map::update_batch(const void* keys, const void* values, uint32_t* count, uint64_t flags) {
  const uint32_t ks = spec_.key_size, vs = host_value_size();
  for (uint32_t i = 0; i < *count; ++i) {
    int rc = update(static_cast<const uint8_t*>(keys) + static_cast<size_t>(i) * ks,
                    static_cast<const uint8_t*>(values) + static_cast<size_t>(i) * vs, flags);
    if (rc) {
      *count = i;
      return rc;
    }
  }
  return 0;
}

int Map::delete_batch(const void* keys, uint32_t* count) {
  for (uint32_t i = 0; i < *count; ++i) {
    int rc = erase(static_cast<const uint8_t*>(keys) + static_cast<size_t>(i) * spec_.key_size);
    if (rc) {
      *count = i;
      return rc;
    }
  }
  return 0;
}

// Defaults: what the kernel answers for an operation a type lacks.
int Map::lookup(const void*, void*) const { return -kEnotsupp; }
int Map::update(const void*, const void*, uint64_t) { return -kEnotsupp; }
int Map::erase(const void*) { return -kEnotsupp; }
int Map::next_key(const void*, void*) const { return -kEnotsupp; }
int Map::lookup_and_delete(const void*, void*) { return -kEnotsupp; }
void* Map::prog_lookup(const void*) { return nullptr; }
long Map::prog_update(const void*, const void*, uint64_t) { return -kEnotsupp; }
long Map::prog_delete(const void*) { return -kEnotsupp; }
long Map::prog_push(const void*, uint64_t) { return -kEnotsupp; }
long Map::prog_pop(void*) { return -kEnotsupp; }
long Map::prog_peek(void*) { return -kEnotsupp; }
long Map::prog_for_each(const std::function<uint64_t(const void*, void*)>&) { return -kEnotsupp; }

}  // namespace ember
