#include "models/tlb/tlb.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

namespace tlbsim {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;
constexpr uint64_t k4KiB = 4 * kKiB;
constexpr uint64_t k2MiB = 2 * kMiB;

// Named defaults; each test overrides only what it asserts on.
TlbGeometry fully_associative(uint32_t entries, Replacement repl = Replacement::kLru) {
  return TlbGeometry{.name = "fa",
                     .entries = entries,
                     .ways = entries,
                     .sizes = {PageSize::k4K},
                     .repl = repl,
                     .hit_latency_cycles = 1,
                     .seed = 1};
}

TlbGeometry stlb_4k_2m() {
  return TlbGeometry{.name = "stlb",
                     .entries = 16,
                     .ways = 4,
                     .sizes = {PageSize::k4K, PageSize::k2M},
                     .repl = Replacement::kLru,
                     .hit_latency_cycles = 8,
                     .seed = 1};
}

// A 4 KiB entry for page number @page, mapped to frame 1000 + page.
TlbEntry page4k(uint64_t page, uint16_t asid = 1) {
  return TlbEntry::for_page(VirtAddr(page * k4KiB), PageSize::k4K, Pfn(1000 + page), asid);
}

VirtAddr page_va(uint64_t page) { return VirtAddr(page * k4KiB); }

// Inserts @e and returns the 4 KiB page number of the displaced entry, or -1 if none.
int64_t insert_and_get_victim_page(Tlb& tlb, const TlbEntry& e) {
  TlbEntry evicted;
  tlb.insert(e, &evicted);
  return evicted.valid ? static_cast<int64_t>(evicted.base().value() / k4KiB) : -1;
}

TEST(PageSize, HelpersMatchTheArchitectures) {
  EXPECT_EQ(page_shift(PageSize::k4K), 12u);
  EXPECT_EQ(page_bytes(PageSize::k16K), 16 * kKiB);
  EXPECT_EQ(page_bytes(PageSize::k64K), 64 * kKiB);
  EXPECT_EQ(page_bytes(PageSize::k2M), 2 * kMiB);
  EXPECT_EQ(page_bytes(PageSize::k32M), 32 * kMiB);
  EXPECT_EQ(page_bytes(PageSize::k1G), kGiB);
  EXPECT_EQ(page_size_name(PageSize::k64K), "64KiB");
  EXPECT_EQ(page_size_name(PageSize::k1G), "1GiB");
  for (PageSize s : kAllPageSizes) {
    EXPECT_EQ(parse_page_size(page_size_name(s)), s);
  }
  EXPECT_FALSE(parse_page_size("2M").has_value()) << "only the canonical names are accepted";
  EXPECT_EQ(parse_replacement("tree_plru"), Replacement::kTreePlru);
}

TEST(TlbEntry, TranslatesEveryAddressInsideItsPage) {
  const TlbEntry e = TlbEntry::for_page(VirtAddr(0x40123456), PageSize::k2M, Pfn(0x80000), 3);
  EXPECT_EQ(e.base(), VirtAddr(0x40000000));
  EXPECT_TRUE(e.covers(VirtAddr(0x401fffff)));
  EXPECT_FALSE(e.covers(VirtAddr(0x40200000)));
  EXPECT_EQ(e.pfn_for(VirtAddr(0x40123456)), Pfn(0x80000 + 0x123));
  EXPECT_EQ(e.translate(VirtAddr(0x40123456)), PhysAddr((uint64_t{0x80000} << 12) + 0x123456));
}

TEST(Tlb, RejectsInconsistentGeometry) {
  TlbGeometry g = stlb_4k_2m();
  g.ways = 5;
  EXPECT_THROW(Tlb{g}, std::invalid_argument) << "16 entries cannot be split into 5 ways";
  g = stlb_4k_2m();
  g.sizes = {};
  EXPECT_THROW(Tlb{g}, std::invalid_argument);
  g.sizes = {PageSize::k4K, PageSize::k4K};
  EXPECT_THROW(Tlb{g}, std::invalid_argument);
  g = stlb_4k_2m();
  g.entries = 0;
  EXPECT_THROW(Tlb{g}, std::invalid_argument);
}

TEST(Tlb, MissesUntilFilledThenHits) {
  Tlb tlb(fully_associative(4));
  EXPECT_EQ(tlb.lookup(page_va(7), 1), nullptr);
  const TlbEntry* stored = tlb.insert(page4k(7));
  ASSERT_NE(stored, nullptr);
  const TlbEntry* hit = tlb.lookup(page_va(7) + 0x123, 1);
  ASSERT_EQ(hit, stored);
  EXPECT_EQ(hit->pfn_for(page_va(7) + 0x123), Pfn(1007));
  EXPECT_EQ(tlb.lookup(page_va(8), 1), nullptr) << "the next page is not covered";
  EXPECT_EQ(tlb.occupancy(), 1u);
}

TEST(Tlb, LruEvictsLeastRecentlyUsedWay) {
  Tlb tlb(fully_associative(4, Replacement::kLru));
  for (uint64_t p : {0, 1, 2, 3}) {
    EXPECT_EQ(insert_and_get_victim_page(tlb, page4k(p)), -1);
  }
  ASSERT_NE(tlb.lookup(page_va(0), 1), nullptr);  // LRU order now 1 2 3 0.
  EXPECT_EQ(insert_and_get_victim_page(tlb, page4k(4)), 1);
  EXPECT_EQ(insert_and_get_victim_page(tlb, page4k(5)), 2);
  ASSERT_NE(tlb.lookup(page_va(3), 1), nullptr);  // 0 4 5 3.
  EXPECT_EQ(insert_and_get_victim_page(tlb, page4k(6)), 0);
  EXPECT_EQ(insert_and_get_victim_page(tlb, page4k(7)), 4);
  EXPECT_EQ(tlb.stats.evictions, 4u);
}

TEST(Tlb, SetAssociativeVictimsStayInTheirSet) {
  TlbGeometry g = fully_associative(8);
  g.ways = 2;  // 4 sets; pages 0, 4, 8 share set 0.
  Tlb tlb(g);
  tlb.insert(page4k(0));
  tlb.insert(page4k(4));
  tlb.insert(page4k(1));
  EXPECT_EQ(insert_and_get_victim_page(tlb, page4k(8)), 0);
  EXPECT_NE(tlb.peek(page_va(1), 1), nullptr) << "set 1 must not lose its entry";
  EXPECT_NE(tlb.peek(page_va(4), 1), nullptr);
}

TEST(Tlb, NonPowerOfTwoSetCountIndexesByModulo) {
  TlbGeometry g = fully_associative(48);
  g.ways = 4;  // 12 sets: pages 0, 12, 24, 36, 48 share set 0.
  Tlb tlb(g);
  for (uint64_t p : {0, 12, 24, 36, 1}) {
    tlb.insert(page4k(p));
  }
  EXPECT_EQ(insert_and_get_victim_page(tlb, page4k(48)), 0);
  for (uint64_t p : {1, 12, 24, 36, 48}) {
    EXPECT_NE(tlb.peek(page_va(p), 1), nullptr) << p;
  }
}

TEST(Tlb, TreePlruVictimSequenceForConsecutiveMisses) {
  Tlb tlb(fully_associative(4, Replacement::kTreePlru));
  ASSERT_EQ(tlb.replacement(), Replacement::kTreePlru);
  for (uint64_t p : {0, 1, 2, 3}) {
    tlb.insert(page4k(p));  // Ways 0..3.
  }
  // Each fill points the tree away from itself: victims walk ways 0, 2, 1, 3.
  EXPECT_EQ(insert_and_get_victim_page(tlb, page4k(10)), 0);
  EXPECT_EQ(insert_and_get_victim_page(tlb, page4k(11)), 2);
  EXPECT_EQ(insert_and_get_victim_page(tlb, page4k(12)), 1);
  EXPECT_EQ(insert_and_get_victim_page(tlb, page4k(13)), 3);
}

TEST(Tlb, TreePlruVictimDiffersFromLruAfterInterleavedHits) {
  Tlb plru(fully_associative(4, Replacement::kTreePlru));
  Tlb lru(fully_associative(4, Replacement::kLru));
  for (Tlb* tlb : {&plru, &lru}) {
    for (uint64_t p : {0, 1, 2, 3}) {
      tlb->insert(page4k(p));
    }
    ASSERT_NE(tlb->lookup(page_va(2), 1), nullptr);
    ASSERT_NE(tlb->lookup(page_va(0), 1), nullptr);
  }
  // The hit on way 2 pointed the root left, the hit on way 0 pointed it right again and
  // left the right subtree's node on way 3; true LRU evicts page 1.
  EXPECT_EQ(insert_and_get_victim_page(plru, page4k(9)), 3);
  EXPECT_EQ(insert_and_get_victim_page(lru, page4k(9)), 1);
}

TEST(Tlb, TreePlruFallsBackToLruForNonPowerOfTwoWays) {
  Tlb tlb(fully_associative(6, Replacement::kTreePlru));
  EXPECT_EQ(tlb.replacement(), Replacement::kLru);
  for (uint64_t p = 0; p < 6; ++p) {
    tlb.insert(page4k(p));
  }
  ASSERT_NE(tlb.lookup(page_va(0), 1), nullptr);
  EXPECT_EQ(insert_and_get_victim_page(tlb, page4k(6)), 1);
}

TEST(Tlb, RandomVictimsAreFixedBySeed) {
  auto victims = [](uint64_t seed) {
    TlbGeometry g = fully_associative(8, Replacement::kRandom);
    g.seed = seed;
    Tlb tlb(g);
    for (uint64_t p = 0; p < 8; ++p) {
      tlb.insert(page4k(p));
    }
    std::vector<int64_t> out;
    for (uint64_t p = 100; p < 110; ++p) {
      out.push_back(insert_and_get_victim_page(tlb, page4k(p)));
    }
    return out;
  };
  // Golden victims for seed 42, computed outside the simulator (xorshift64 with shifts
  // 13, 7, 17, modulo the ways): pins the stream so that statistics stay byte-identical
  // across versions. A way's page changes once it is refilled, hence victims from both
  // 0..7 and 100..109.
  const std::vector<int64_t> golden = {2, 7, 100, 0, 102, 3, 105, 104, 103, 5};
  EXPECT_EQ(victims(42), golden);
  EXPECT_EQ(victims(42), victims(42)) << "same seed must give the same victims";
  EXPECT_NE(victims(43), golden) << "a different seed should give different victims";
}

TEST(Tlb, UnifiedStructureHolds4KAnd2MEntries) {
  Tlb tlb(stlb_4k_2m());
  // Both entries have vtag 5; the key carries the size, so they do not alias.
  tlb.insert(TlbEntry::for_page(VirtAddr(5 * k4KiB), PageSize::k4K, Pfn(77), 1));
  tlb.insert(TlbEntry::for_page(VirtAddr(5 * k2MiB), PageSize::k2M, Pfn(9 * 512ull), 1));
  const TlbEntry* small = tlb.lookup(VirtAddr(5 * k4KiB + 8), 1);
  const TlbEntry* huge = tlb.lookup(VirtAddr(5 * k2MiB + 0x3000), 1);
  ASSERT_NE(small, nullptr);
  ASSERT_NE(huge, nullptr);
  EXPECT_EQ(small->size, PageSize::k4K);
  EXPECT_EQ(huge->size, PageSize::k2M);
  EXPECT_EQ(huge->pfn_for(VirtAddr(5 * k2MiB + 0x3000)), Pfn(9 * 512ull + 3));
  EXPECT_EQ(tlb.lookup(VirtAddr(6 * k4KiB), 1), nullptr);
  EXPECT_EQ(tlb.stats.hits_by_size[static_cast<size_t>(PageSize::k4K)], 1u);
  EXPECT_EQ(tlb.stats.hits_by_size[static_cast<size_t>(PageSize::k2M)], 1u);
}

TEST(Tlb, InsertOfSizeNotHeldThrows) {
  Tlb tlb(stlb_4k_2m());
  EXPECT_THROW(tlb.insert(TlbEntry::for_page(VirtAddr(0), PageSize::k1G, Pfn(0), 1)),
               std::logic_error);
}

TEST(Tlb, TwoMegEntryCoversEvery4KPageInside) {
  Tlb tlb(stlb_4k_2m());
  const VirtAddr base(3 * kGiB);
  tlb.insert(TlbEntry::for_page(base, PageSize::k2M, Pfn(0x100000), 1));
  for (uint64_t off = 0; off < 2 * kMiB; off += k4KiB) {
    const TlbEntry* e = tlb.lookup(base + off + 0xff8, 1);
    ASSERT_NE(e, nullptr) << "offset " << off;
    EXPECT_EQ(e->pfn_for(base + off), Pfn(0x100000 + off / k4KiB));
  }
  EXPECT_EQ(tlb.lookup(base - 1, 1), nullptr);
  EXPECT_EQ(tlb.lookup(base + 2 * kMiB, 1), nullptr);
  EXPECT_EQ(tlb.stats.hits, 512u);
}

TEST(Tlb, ContPte64KEntryCovers16Pages) {
  TlbGeometry g = fully_associative(48);
  g.sizes = {PageSize::k4K, PageSize::k64K};
  Tlb tlb(g);
  const VirtAddr block(0x7f0000010000);
  tlb.insert(TlbEntry::for_page(block, PageSize::k64K, Pfn(0x4440), 1));
  for (uint64_t p = 0; p < 16; ++p) {
    EXPECT_NE(tlb.lookup(block + p * k4KiB, 1), nullptr) << p;
  }
  EXPECT_EQ(tlb.lookup(block + 16 * k4KiB, 1), nullptr);
}

// Touching 64 MiB page by page through a 48-entry fully associative L1 that holds 4 KiB
// and 64 KiB (contpte) entries: with 4 KiB fills every page misses once; with 64 KiB
// fills only the first page of each 16-page block does.
TEST(Tlb, Sequential64MiBWith64KEntriesMisses16TimesLess) {
  auto touch_64mib = [](PageSize fill) {
    TlbGeometry g = fully_associative(48);
    g.sizes = {PageSize::k4K, PageSize::k64K};
    Tlb tlb(g);
    const uint64_t start = 0x7f0000000000;
    for (uint64_t va = start; va < start + 64 * kMiB; va += k4KiB) {
      if (tlb.lookup(VirtAddr(va), 1) == nullptr) {
        const VirtAddr base = VirtAddr(va).align_down(page_bytes(fill));
        tlb.insert(TlbEntry::for_page(base, fill, Pfn((base.value() - start) >> 12), 1));
      }
    }
    return tlb.stats;
  };
  const TlbStats small = touch_64mib(PageSize::k4K);
  const TlbStats contpte = touch_64mib(PageSize::k64K);
  EXPECT_EQ(small.lookups, 16384u);
  EXPECT_EQ(small.misses, 16384u);
  EXPECT_EQ(contpte.misses, 1024u);
  EXPECT_EQ(contpte.hits, 15360u);
  EXPECT_EQ(contpte.hits_by_size[static_cast<size_t>(PageSize::k64K)], 15360u);
  EXPECT_EQ(small.misses, 16 * contpte.misses);
}

TEST(Tlb, SameVaUnderAnotherAsidMisses) {
  Tlb tlb(stlb_4k_2m());
  tlb.insert(TlbEntry::for_page(page_va(5), PageSize::k4K, Pfn(111), 1));
  EXPECT_EQ(tlb.lookup(page_va(5), 2), nullptr) << "ASID 2 must not see ASID 1's entry";
  tlb.insert(TlbEntry::for_page(page_va(5), PageSize::k4K, Pfn(222), 2));
  EXPECT_EQ(tlb.occupancy(), 2u) << "one entry per ASID";
  EXPECT_EQ(tlb.lookup(page_va(5), 1)->pfn, Pfn(111));
  EXPECT_EQ(tlb.lookup(page_va(5), 2)->pfn, Pfn(222));
}

TEST(Tlb, GlobalEntriesHitUnderAnyAsidAndSurviveAsidFlushes) {
  Tlb tlb(stlb_4k_2m());
  TlbEntry kernel = TlbEntry::for_page(VirtAddr(0xffffffff81000000), PageSize::k2M, Pfn(0x1000), 0);
  kernel.global = true;
  tlb.insert(kernel);
  tlb.insert(page4k(1, 7));
  for (uint16_t asid : {0, 1, 7, 4095}) {
    EXPECT_NE(tlb.lookup(VirtAddr(0xffffffff81001234), asid), nullptr) << "asid " << asid;
  }
  EXPECT_EQ(tlb.invalidate_asid(0), 0u) << "the global entry's asid field does not matter";
  EXPECT_EQ(tlb.invalidate_asid(7), 1u);
  tlb.insert(page4k(1, 7));
  EXPECT_EQ(tlb.invalidate_all_non_global(), 1u);
  EXPECT_NE(tlb.peek(VirtAddr(0xffffffff81000000), 3), nullptr);
  EXPECT_EQ(tlb.invalidate_all(), 1u);
  EXPECT_EQ(tlb.occupancy(), 0u);
}

TEST(Tlb, InvalidateVaForOnePcidLeavesOtherPcids) {
  Tlb tlb(stlb_4k_2m());
  for (uint16_t pcid : {1, 2, 3}) {
    tlb.insert(page4k(9, pcid));
  }
  tlb.insert(page4k(10, 1));
  EXPECT_EQ(tlb.invalidate_va(page_va(9) + 0x80, 2, true), 1u);
  EXPECT_EQ(tlb.peek(page_va(9), 2), nullptr);
  EXPECT_NE(tlb.peek(page_va(9), 1), nullptr);
  EXPECT_NE(tlb.peek(page_va(9), 3), nullptr);
  EXPECT_NE(tlb.peek(page_va(10), 1), nullptr);
}

TEST(Tlb, InvalidateVaDropsGlobalOnlyWhenAsked) {
  Tlb tlb(stlb_4k_2m());
  TlbEntry e = page4k(20, 0);
  e.global = true;
  tlb.insert(e);
  EXPECT_EQ(tlb.invalidate_va(page_va(20), 5, false), 0u) << "INVPCID type 0 keeps globals";
  EXPECT_EQ(tlb.invalidate_va(page_va(20), 5, true), 1u) << "INVLPG drops globals";
}

TEST(Tlb, InvalidateVaDropsEverySizeCoveringTheAddress) {
  Tlb tlb(stlb_4k_2m());
  const VirtAddr va(0x40000000 + 0x5000);
  // A stale 4 KiB entry next to the 2 MiB entry that replaced it (THP collapse).
  tlb.insert(TlbEntry::for_page(va, PageSize::k4K, Pfn(1), 1));
  tlb.insert(TlbEntry::for_page(va, PageSize::k2M, Pfn(512), 1));
  EXPECT_EQ(tlb.invalidate_va(va, 1, true), 2u);
  EXPECT_EQ(tlb.occupancy(), 0u);
}

TEST(Tlb, RangeInvalidationDropsOverlappingEntriesOnly) {
  // 4 sets: one scan of the array; 1024 sets: one probe per page (927 of them).
  for (uint32_t entries : {16u, 4096u}) {
    TlbGeometry g = stlb_4k_2m();
    g.entries = entries;
    Tlb tlb(g);
    for (uint64_t p : {100, 101, 102, 103}) {
      tlb.insert(page4k(p, 1));
    }
    tlb.insert(page4k(101, 2));
    const VirtAddr huge_base(4 * kMiB);  // [4 MiB, 6 MiB) overlaps the range's end.
    tlb.insert(TlbEntry::for_page(huge_base, PageSize::k2M, Pfn(0), 1));
    // [page 101, 4 MiB + 1): pages 101..103 and the 2 MiB page.
    const size_t n = tlb.invalidate_va_range(page_va(101), huge_base + 1, 1);
    EXPECT_EQ(n, 4u) << entries << " entries";
    EXPECT_NE(tlb.peek(page_va(100), 1), nullptr);
    EXPECT_NE(tlb.peek(page_va(101), 2), nullptr) << "other ASID untouched";
    EXPECT_EQ(tlb.peek(huge_base, 1), nullptr);
    EXPECT_EQ(tlb.invalidate_va_range(page_va(100), page_va(100), 1), 0u) << "empty range";
  }
}

TEST(Tlb, InvalidationReportsEachDroppedEntry) {
  Tlb tlb(stlb_4k_2m());
  for (uint32_t i = 0; i < 4; ++i) {
    TlbEntry e = page4k(i, i % 2 == 0 ? 1 : 2);
    e.fill_id = 100 + i;
    tlb.insert(e);
  }
  std::vector<uint32_t> dropped;
  const size_t n = tlb.invalidate_asid(1, [&](const TlbEntry& e) { dropped.push_back(e.fill_id); });
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(dropped, (std::vector<uint32_t>{100, 102}));
  EXPECT_EQ(tlb.invalidate_if([](const TlbEntry& e) { return e.fill_id == 103; }), 1u);
  EXPECT_EQ(tlb.stats.invalidations, 3u);
}

TEST(Tlb, InsertOverwritesTheSameTranslation) {
  Tlb tlb(stlb_4k_2m());
  TlbEntry clean = page4k(5);
  clean.fill_id = 1;
  tlb.insert(clean);
  TlbEntry dirty = page4k(5);
  dirty.dirty = true;
  dirty.writable = true;
  dirty.fill_id = 2;
  TlbEntry old;
  tlb.insert(dirty, &old);
  EXPECT_TRUE(old.valid);
  EXPECT_EQ(old.fill_id, 1u) << "the overwritten fill is reported";
  EXPECT_EQ(tlb.occupancy(), 1u);
  EXPECT_TRUE(tlb.peek(page_va(5), 1)->dirty);
  EXPECT_EQ(tlb.stats.refills, 1u);
  EXPECT_EQ(tlb.stats.evictions, 0u);
}

TEST(Tlb, PeekChangesNeitherCountersNorReplacement) {
  Tlb tlb(fully_associative(2));
  tlb.insert(page4k(0));
  tlb.insert(page4k(1));
  ASSERT_NE(tlb.peek(page_va(0), 1), nullptr);
  EXPECT_EQ(tlb.stats.lookups, 0u);
  EXPECT_EQ(insert_and_get_victim_page(tlb, page4k(2)), 0) << "peek must not refresh LRU";
}

TEST(Tlb, CountersAddUp) {
  Tlb tlb(fully_associative(2));
  tlb.lookup(page_va(0), 1);
  tlb.insert(page4k(0));
  tlb.insert(page4k(1));
  tlb.lookup(page_va(0), 1);
  tlb.insert(page4k(2));  // Evicts page 1: page 0 was used more recently.
  tlb.lookup(page_va(1), 1);
  tlb.invalidate_all();
  const TlbStats& s = tlb.stats;
  EXPECT_EQ(s.lookups, 3u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.hits_by_size[0], 1u);
  EXPECT_EQ(s.inserts, 3u);
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_EQ(s.invalidations, 2u);
  EXPECT_EQ(tlb.occupancy(), 0u);
}

TEST(Tlb, ForEachValidVisitsOnlyValidEntries) {
  Tlb tlb(stlb_4k_2m());
  for (uint64_t p : {1, 2, 3}) {
    tlb.insert(page4k(p));
  }
  tlb.invalidate_va(page_va(2), 1, true);
  uint64_t sum = 0;
  tlb.for_each_valid([&](const TlbEntry& e) { sum += e.vtag; });
  EXPECT_EQ(sum, 4u);
}

// Random fills, lookups and invalidations against a reference list of the entries the
// TLB reported as present (filled and not yet reported evicted or dropped). Checks the
// bookkeeping behind the fast path: every hit is a present entry that covers the address,
// every miss has no such entry, and every invalidation leaves no entry it should drop.
TEST(Tlb, AgreesWithReferenceModelUnderRandomOperations) {
  std::vector<TlbGeometry> shapes;
  shapes.push_back(TlbGeometry{.name = "l1", .entries = 96, .ways = 6, .sizes = {PageSize::k4K}});
  shapes.push_back(stlb_4k_2m());
  TlbGeometry fa = fully_associative(24, Replacement::kRandom);
  fa.sizes = {PageSize::k4K, PageSize::k64K, PageSize::k2M};
  shapes.push_back(fa);
  TlbGeometry plru = fully_associative(32, Replacement::kTreePlru);
  plru.ways = 8;
  plru.sizes = {PageSize::k2M, PageSize::k4K};
  shapes.push_back(plru);
  TlbGeometry odd = fully_associative(60);
  odd.ways = 5;  // 12 sets.
  odd.sizes = {PageSize::k4K, PageSize::k64K};
  shapes.push_back(odd);

  for (const TlbGeometry& g : shapes) {
    Tlb tlb(g);
    std::vector<TlbEntry> present;
    auto forget = [&](const TlbEntry& gone) {
      auto it = std::find_if(present.begin(), present.end(),
                             [&](const TlbEntry& e) { return e.fill_id == gone.fill_id; });
      ASSERT_NE(it, present.end()) << g.name << ": reported an entry it never held";
      present.erase(it);
    };
    auto hits = [](const TlbEntry& e, VirtAddr va, uint16_t asid) {
      return e.covers(va) && (e.global || e.asid == asid);
    };
    std::mt19937_64 rng(7);
    auto pick = [&](uint64_t n) { return rng() % n; };
    uint32_t next_fill = 1;
    for (int step = 0; step < 20000; ++step) {
      const VirtAddr va(pick(8 * kMiB));  // Four 2 MiB regions: plenty of overlap.
      const uint16_t asid = static_cast<uint16_t>(1 + pick(3));
      const uint64_t op = pick(100);
      if (op < 45) {
        const PageSize size = g.sizes[pick(g.sizes.size())];
        TlbEntry e = TlbEntry::for_page(va, size, Pfn(pick(1 << 20)), asid);
        e.global = pick(10) == 0;
        e.fill_id = next_fill++;
        TlbEntry evicted;
        tlb.insert(e, &evicted);
        if (evicted.valid) forget(evicted);
        present.push_back(e);
      } else if (op < 90) {
        const TlbEntry* got = tlb.lookup(va, asid);
        const bool expected = std::any_of(present.begin(), present.end(),
                                          [&](const TlbEntry& e) { return hits(e, va, asid); });
        ASSERT_EQ(got != nullptr, expected) << g.name << " step " << step;
        if (got != nullptr) {
          EXPECT_TRUE(hits(*got, va, asid)) << g.name << " step " << step;
          EXPECT_TRUE(std::any_of(present.begin(), present.end(),
                                  [&](const TlbEntry& e) { return e.fill_id == got->fill_id; }));
        }
      } else if (op < 95) {
        const bool include_global = pick(2) == 0;
        tlb.invalidate_va(va, asid, include_global, forget);
        for (const TlbEntry& e : present) {
          ASSERT_FALSE(e.covers(va) && (e.global ? include_global : e.asid == asid))
              << g.name << " step " << step << ": invalidate_va missed an entry";
        }
      } else if (op < 99) {
        const VirtAddr end = va + 1 + pick(4 * kMiB);
        tlb.invalidate_va_range(va, end, asid, true, forget);
        for (const TlbEntry& e : present) {
          const bool overlaps = e.base() < end && e.base() + (e.bytes() - 1) >= va;
          ASSERT_FALSE(overlaps && (e.global || e.asid == asid))
              << g.name << " step " << step << ": invalidate_va_range missed an entry";
        }
      } else {
        tlb.invalidate_asid(asid, forget);
      }
      ASSERT_EQ(tlb.occupancy(), present.size()) << g.name << " step " << step;
    }
    EXPECT_EQ(tlb.stats.lookups, tlb.stats.hits + tlb.stats.misses);
  }
}

}  // namespace
}  // namespace tlbsim
