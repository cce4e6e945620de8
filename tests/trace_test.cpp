// `ember trace`: the log2 histogram it prints on exit (BCC's layout).
#include <gtest/gtest.h>

#include <cstring>

#include "cli/log2_hist.hpp"

namespace ember::cli {
namespace {

TEST(Log2Hist, BccLayout) {
  const uint64_t slots[] = {3, 1, 0, 6};
  EXPECT_EQ(format_log2_hist(slots),
            "     value               : count     distribution\n"
            "         0 -> 1          : 3        |********************                    |\n"
            "         2 -> 3          : 1        |******                                  |\n"
            "         4 -> 7          : 0        |                                        |\n"
            "         8 -> 15         : 6        |****************************************|\n");
  EXPECT_EQ(format_log2_hist(std::vector<uint64_t>{0, 0}), "") << "nothing counted: nothing printed";
  EXPECT_EQ(format_log2_hist(std::vector<uint64_t>{}), "");
  const uint64_t one[] = {0, 2};
  EXPECT_EQ(format_log2_hist(one, "bytes"),
            "     bytes               : count     distribution\n"
            "         0 -> 1          : 0        |                                        |\n"
            "         2 -> 3          : 2        |****************************************|\n");
}

TEST(Log2Hist, WideSlotsWidenTheColumns) {
  std::vector<uint64_t> slots(41);
  slots[40] = 1;
  std::string h = format_log2_hist(slots);
  EXPECT_TRUE(h.starts_with("               value                         : count     distribution\n")) << h;
  EXPECT_NE(h.find("       1099511627776 -> 2199023255551        : 1        |********************|\n"),
            std::string::npos)
      << h;
}

MapPtr make_map(MapType type, uint32_t key_size, uint32_t value_size) {
  MapSpec spec;
  spec.name = "hist";
  spec.type = type;
  spec.key_size = key_size;
  spec.value_size = value_size;
  spec.max_entries = 64;
  auto m = Map::create(spec, MapOptions{.ncpus = 2});
  EXPECT_TRUE(m) << m.error().message;
  return *m;
}

TEST(Log2Hist, SlotsFromHashArrayAndPerCpuMaps) {
  auto hash = make_map(MapType::Hash, 4, 8);
  uint32_t k = 5;
  uint64_t v = 7;
  ASSERT_EQ(hash->update(&k, &v, 0), 0);
  k = 1, v = 2;
  ASSERT_EQ(hash->update(&k, &v, 0), 0);
  auto s = log2_slots(*hash);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(*s, (std::vector<uint64_t>{0, 2, 0, 0, 0, 7}));

  auto arr = make_map(MapType::Array, 4, 4);
  uint32_t c = 9;
  k = 2;
  ASSERT_EQ(arr->update(&k, &c, 0), 0);
  s = log2_slots(*arr);
  ASSERT_TRUE(s);
  ASSERT_EQ(s->size(), 64u);
  EXPECT_EQ((*s)[2], 9u);
  EXPECT_EQ((*s)[3], 0u);

  auto pc = make_map(MapType::PercpuArray, 4, 8);
  uint64_t per[2] = {4, 5};
  k = 3;
  ASSERT_EQ(pc->update(&k, per, 0), 0);
  s = log2_slots(*pc);
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)[3], 9u) << "per-CPU counts are summed";
}

TEST(Log2Hist, RefusesMapsThatAreNoHistogram) {
  auto odd = make_map(MapType::Hash, 16, 8);
  auto s = log2_slots(*odd);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("'hist'"), std::string::npos) << s.error().message;
  auto big = make_map(MapType::Hash, 4, 8);
  uint32_t k = 1000;
  uint64_t v = 1;
  ASSERT_EQ(big->update(&k, &v, 0), 0);
  s = log2_slots(*big);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("1000"), std::string::npos) << s.error().message;
}

}  // namespace
}  // namespace ember::cli
