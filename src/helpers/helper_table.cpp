// HelperTable: lookup by id and name over definitions from src/helpers/.
#include <algorithm>

#include "ember/helpers.hpp"

namespace ember {

void HelperTable::add(std::span<const HelperDef> defs) {
  for (const HelperDef& d : defs) add(d);
}

void HelperTable::add(const HelperDef& def) {
  assert(def.id >= 0 && def.id < 100000);
  if (by_id_.size() <= static_cast<size_t>(def.id)) by_id_.resize(def.id + 1, nullptr);
  by_id_[def.id] = &def;
}

const HelperDef* HelperTable::find(std::string_view name) const {
  for (const HelperDef* d : by_id_)
    if (d && name == d->name) return d;
  return nullptr;
}

std::vector<const HelperDef*> HelperTable::all() const {
  std::vector<const HelperDef*> out;
  for (const HelperDef* d : by_id_)
    if (d) out.push_back(d);
  return out;
}

}  // namespace ember
