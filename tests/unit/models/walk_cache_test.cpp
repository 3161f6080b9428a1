#include "models/tlb/walk_cache.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

namespace tlbsim {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = 1024 * kMiB;

// Named default: an arm64-style mixed-level cache; tests override what they assert.
WalkCacheGeometry mixed(uint32_t entries = 16) {
  return WalkCacheGeometry{.name = "walk_cache",
                           .entries = entries,
                           .ways = entries,
                           .level_shift = kWalkShifts4K,
                           .hit_latency_cycles = 2};
}

TEST(WalkCache, MissesThenHitsPerLevel) {
  WalkCache wc(mixed());
  const VirtAddr va(0x7f1234567000);
  EXPECT_FALSE(wc.lookup(2, va, 1).has_value());
  wc.insert(2, va, 1, Pfn(0x222));
  wc.insert(3, va, 1, Pfn(0x333));
  EXPECT_EQ(wc.lookup(2, va, 1), Pfn(0x222));
  EXPECT_EQ(wc.lookup(3, va, 1), Pfn(0x333));
  EXPECT_FALSE(wc.lookup(4, va, 1).has_value());
  EXPECT_EQ(wc.stats.hits[2], 1u);
  EXPECT_EQ(wc.stats.misses[2], 1u);
  EXPECT_EQ(wc.stats.hits[3], 1u);
  EXPECT_EQ(wc.stats.misses[4], 1u);
  EXPECT_EQ(wc.stats.inserts, 2u);
}

TEST(WalkCache, EntryCoversExactlyItsLevelsRange) {
  WalkCache wc(mixed());
  const VirtAddr region(5 * kGiB + 6 * kMiB);  // 2 MiB aligned.
  wc.insert(2, region + 0x1000, 1, Pfn(7));
  EXPECT_EQ(wc.lookup(2, region, 1), Pfn(7));
  EXPECT_EQ(wc.lookup(2, region + 2 * kMiB - 1, 1), Pfn(7));
  EXPECT_FALSE(wc.lookup(2, region + 2 * kMiB, 1).has_value());
  wc.insert(3, region, 1, Pfn(8));
  EXPECT_EQ(wc.lookup(3, VirtAddr(5 * kGiB), 1), Pfn(8)) << "a PDPTE covers the whole GiB";
}

TEST(WalkCache, SameVaUnderAnotherAsidMisses) {
  WalkCache wc(mixed());
  wc.insert(2, VirtAddr(0x400000), 1, Pfn(1));
  EXPECT_FALSE(wc.lookup(2, VirtAddr(0x400000), 2).has_value());
  wc.insert(2, VirtAddr(0x400000), 2, Pfn(2));
  EXPECT_EQ(wc.lookup(2, VirtAddr(0x400000), 1), Pfn(1));
  EXPECT_EQ(wc.lookup(2, VirtAddr(0x400000), 2), Pfn(2));
}

TEST(WalkCache, InvalidateVaDropsEveryLevelCoveringIt) {
  WalkCache wc(mixed());
  const VirtAddr va(3 * kGiB + 4 * kMiB);
  const VirtAddr neighbour = va + 2 * kMiB;  // Same GiB, next PDE.
  for (unsigned level : {2u, 3u, 4u}) {
    wc.insert(level, va, 1, Pfn(level));
  }
  wc.insert(2, neighbour, 1, Pfn(20));
  wc.insert(2, va, 2, Pfn(21));
  std::vector<unsigned> levels;
  EXPECT_EQ(wc.invalidate_va(va, 1, [&](const WalkCacheEntry& e) { levels.push_back(e.level); }),
            3u);
  EXPECT_EQ(levels.size(), 3u);
  EXPECT_EQ(wc.lookup(2, neighbour, 1), Pfn(20));
  EXPECT_EQ(wc.lookup(2, va, 2), Pfn(21)) << "another ASID's entry survives";
  EXPECT_FALSE(wc.lookup(3, va, 1).has_value());
}

TEST(WalkCache, RangeInvalidationDropsEntriesOverlappingTheRange) {
  WalkCache wc(mixed());
  for (uint64_t i = 0; i < 4; ++i) {
    wc.insert(2, VirtAddr(i * 2 * kMiB), 1, Pfn(i));
  }
  wc.insert(3, VirtAddr(0), 1, Pfn(100));
  // [2 MiB + 4 KiB, 4 MiB + 4 KiB) touches PDEs 1 and 2 and the first PDPTE.
  EXPECT_EQ(wc.invalidate_va_range(VirtAddr(2 * kMiB + 4096), VirtAddr(4 * kMiB + 4096), 1), 3u);
  EXPECT_EQ(wc.lookup(2, VirtAddr(0), 1), Pfn(0));
  EXPECT_EQ(wc.lookup(2, VirtAddr(6 * kMiB), 1), Pfn(3));
  EXPECT_EQ(wc.occupancy(), 2u);
}

TEST(WalkCache, InvalidateAsidAndAll) {
  WalkCache wc(mixed());
  wc.insert(2, VirtAddr(0), 1, Pfn(1));
  wc.insert(3, VirtAddr(0), 1, Pfn(2));
  wc.insert(2, VirtAddr(0), 2, Pfn(3));
  EXPECT_EQ(wc.invalidate_asid(1), 2u);
  EXPECT_EQ(wc.occupancy(), 1u);
  EXPECT_EQ(wc.invalidate_all(), 1u);
  EXPECT_EQ(wc.stats.invalidations, 3u);
}

TEST(WalkCache, LruEvictsLeastRecentlyUsedEntry) {
  WalkCache wc(mixed(2));
  wc.insert(2, VirtAddr(0), 1, Pfn(1));
  wc.insert(2, VirtAddr(2 * kMiB), 1, Pfn(2));
  ASSERT_TRUE(wc.lookup(2, VirtAddr(0), 1).has_value());
  WalkCacheEntry evicted;
  wc.insert(2, VirtAddr(4 * kMiB), 1, Pfn(3), &evicted);
  ASSERT_TRUE(evicted.valid);
  EXPECT_EQ(evicted.table, Pfn(2));
  EXPECT_EQ(wc.stats.evictions, 1u);
  wc.insert(2, VirtAddr(4 * kMiB), 1, Pfn(4), &evicted);
  EXPECT_EQ(evicted.table, Pfn(3)) << "re-insert overwrites the same key";
  EXPECT_EQ(wc.stats.refills, 1u);
  EXPECT_EQ(wc.lookup(2, VirtAddr(4 * kMiB), 1), Pfn(4));
}

TEST(WalkCache, PerLevelCacheHoldsOnlyItsLevel) {
  WalkCacheGeometry g = mixed();
  g.name = "pde_cache";
  g.level_shift = {0, 0, 21, 0, 0, 0};
  WalkCache pde(g);
  EXPECT_TRUE(pde.caches_level(2));
  EXPECT_FALSE(pde.caches_level(3));
  EXPECT_FALSE(pde.lookup(3, VirtAddr(0), 1).has_value());
  EXPECT_EQ(pde.stats.misses[3], 0u) << "a level not held is not counted";
  EXPECT_THROW(pde.insert(3, VirtAddr(0), 1, Pfn(1)), std::logic_error);
}

TEST(WalkCache, RejectsInconsistentGeometry) {
  WalkCacheGeometry g = mixed();
  g.ways = 5;
  EXPECT_THROW(WalkCache{g}, std::invalid_argument);
  g = mixed();
  g.level_shift = {0, 0, 0, 0, 0, 0};
  EXPECT_THROW(WalkCache{g}, std::invalid_argument);
  g.level_shift = {0, 0, 30, 21, 0, 0};
  EXPECT_THROW(WalkCache{g}, std::invalid_argument);
}

}  // namespace
}  // namespace tlbsim
