#include <gtest/gtest.h>

#include "ember/isa.hpp"

TEST(Decoder, Placeholder) { EXPECT_GT(ember::kNumOps, 100u); }
