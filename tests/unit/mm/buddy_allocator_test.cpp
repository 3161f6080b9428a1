#include "mm/buddy_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

namespace tlbsim::mm {
namespace {

/// Free-block counts for orders 0..max_order, for comparing whole free-area states.
std::vector<uint64_t> free_counts(const BuddyAllocator& buddy) {
  std::vector<uint64_t> counts;
  for (unsigned order = 0; order <= buddy.max_order(); ++order) {
    counts.push_back(buddy.nr_free(order));
  }
  return counts;
}

TEST(BuddyAllocator, SeedsPowerOfTwoPoolWithMaxOrderBlocks) {
  BuddyAllocator buddy(uint64_t{1} << 20);  // 4 GiB, default max_order 18
  EXPECT_EQ(buddy.max_order(), 18u);
  EXPECT_EQ(buddy.nr_free(18), 4u);
  EXPECT_EQ(buddy.nr_free_pages(), uint64_t{1} << 20);
  for (unsigned order = 0; order < 18; ++order) {
    EXPECT_EQ(buddy.nr_free(order), 0u) << "order " << order;
  }
  EXPECT_EQ(buddy.largest_free_order(), 18);
  buddy.check_invariants();
}

TEST(BuddyAllocator, SeedsNonPowerOfTwoPoolWithLargestAlignedBlocks) {
  // 1000 = 512 + 256 + 128 + 64 + 32 + 8.
  BuddyAllocator buddy(1000);
  const std::vector<uint64_t> expected = {0, 0, 0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(free_counts(buddy), expected);
  EXPECT_EQ(buddy.nr_free_pages(), 1000u);
  EXPECT_EQ(buddy.largest_free_order(), 9);
  buddy.check_invariants();
}

TEST(BuddyAllocator, CapsSeedBlocksAtMaxOrder) {
  // 2^20 + 3 frames with max_order 10: 1024 blocks of order 10, then 2 + 1.
  BuddyAllocator buddy((uint64_t{1} << 20) + 3, 10);
  EXPECT_EQ(buddy.nr_free(10), 1024u);
  EXPECT_EQ(buddy.nr_free(1), 1u);
  EXPECT_EQ(buddy.nr_free(0), 1u);
  EXPECT_EQ(buddy.nr_free_pages(), (uint64_t{1} << 20) + 3);
  buddy.check_invariants();
}

TEST(BuddyAllocator, RepresentsSixtyFourMebiFrames) {
  BuddyAllocator buddy(uint64_t{1} << 26);  // 256 GiB of 4 KiB frames
  EXPECT_EQ(buddy.nr_free(18), 256u);
  EXPECT_EQ(buddy.alloc(18), Pfn(0));
  EXPECT_EQ(buddy.alloc(0), Pfn(uint64_t{1} << 18));
  EXPECT_EQ(buddy.nr_free_pages(), (uint64_t{1} << 26) - (uint64_t{1} << 18) - 1);
  EXPECT_TRUE(buddy.is_free(Pfn((uint64_t{1} << 26) - 1)));
  EXPECT_FALSE(buddy.is_free(Pfn((uint64_t{1} << 18) - 1)));
}

TEST(BuddyAllocator, RejectsInvalidConstruction) {
  EXPECT_THROW(BuddyAllocator(0), std::invalid_argument);
  EXPECT_THROW(BuddyAllocator(16, BuddyAllocator::kMaxOrderLimit + 1), std::invalid_argument);
  EXPECT_THROW(BuddyAllocator(BuddyAllocator::kMaxFrames + 1), std::invalid_argument);
}

TEST(BuddyAllocator, SplitsLargerBlockAndReturnsLowestHalf) {
  BuddyAllocator buddy(16, 4);
  EXPECT_EQ(buddy.alloc(0), Pfn(0));
  // expand(): the upper halves 8, 4, 2, 1 are now free blocks of orders 3, 2, 1, 0.
  EXPECT_EQ(free_counts(buddy), (std::vector<uint64_t>{1, 1, 1, 1, 0}));
  EXPECT_EQ(buddy.nr_splits(), 4u);
  EXPECT_EQ(buddy.nr_free_pages(), 15u);
  EXPECT_FALSE(buddy.is_free(Pfn(0)));
  for (uint64_t pfn = 1; pfn < 16; ++pfn) {
    EXPECT_TRUE(buddy.is_free(Pfn(pfn))) << "pfn " << pfn;
  }
  // The split remainders are where the next allocations come from.
  EXPECT_EQ(buddy.alloc(1), Pfn(2));
  EXPECT_EQ(buddy.alloc(3), Pfn(8));
  EXPECT_EQ(buddy.alloc(0), Pfn(1));
  EXPECT_EQ(buddy.nr_splits(), 4u);
  EXPECT_EQ(free_counts(buddy), (std::vector<uint64_t>{0, 0, 1, 0, 0}));
  buddy.check_invariants();
}

TEST(BuddyAllocator, FreshPoolHandsOutLowestFramesFirst) {
  BuddyAllocator buddy(4096);
  for (uint64_t expected = 0; expected < 100; ++expected) {
    EXPECT_EQ(buddy.alloc(0), Pfn(expected));
  }
  EXPECT_EQ(buddy.alloc(9), Pfn(512));
  buddy.check_invariants();
}

TEST(BuddyAllocator, TakesSmallestSufficientBlockFirst) {
  // 3077 frames: 0@11, 2048@10, 3072@2, 3076@0. Smallest fit, not lowest address.
  BuddyAllocator buddy(3 * 1024 + 5);
  EXPECT_EQ(buddy.alloc(0), Pfn(3076));
  EXPECT_EQ(buddy.alloc(0), Pfn(3072));
  EXPECT_EQ(buddy.alloc(3), Pfn(2048));
  EXPECT_EQ(buddy.alloc(11), Pfn(0));
  EXPECT_EQ(buddy.alloc(10), std::nullopt);
  buddy.check_invariants();
}

TEST(BuddyAllocator, SeedsEachOrderInAscendingAddressOrder) {
  BuddyAllocator buddy(4096, 9);  // eight order-9 blocks
  for (uint64_t i = 0; i < 8; ++i) {
    EXPECT_EQ(buddy.alloc(9), Pfn(i * 512));
  }
}

TEST(BuddyAllocator, ReusesMostRecentlyFreedBlockFirst) {
  BuddyAllocator buddy(16, 4);
  for (uint64_t pfn = 0; pfn < 8; ++pfn) {
    ASSERT_EQ(buddy.alloc(0), Pfn(pfn));
  }
  // 0, 2 and 4 have allocated buddies, so they stay order 0 on a LIFO list.
  buddy.free(Pfn(0), 0);
  buddy.free(Pfn(4), 0);
  buddy.free(Pfn(2), 0);
  EXPECT_EQ(buddy.alloc(0), Pfn(2));
  EXPECT_EQ(buddy.alloc(0), Pfn(4));
  EXPECT_EQ(buddy.alloc(0), Pfn(0));
}

TEST(BuddyAllocator, FreeCoalescesBackToSingleBlock) {
  BuddyAllocator buddy(16, 4);
  const Pfn pfn = *buddy.alloc(0);
  buddy.free(pfn, 0);
  EXPECT_EQ(free_counts(buddy), (std::vector<uint64_t>{0, 0, 0, 0, 1}));
  EXPECT_EQ(buddy.nr_merges(), 4u);
  EXPECT_EQ(buddy.nr_free_pages(), 16u);
  buddy.check_invariants();
}

TEST(BuddyAllocator, MergesOnlyWithBuddyOfSameOrder) {
  BuddyAllocator buddy(16, 4);
  EXPECT_EQ(buddy.alloc(0), Pfn(0));  // free: 1@0, 2@1, 4@2, 8@3
  EXPECT_EQ(buddy.alloc(1), Pfn(2));  // free: 1@0, 4@2, 8@3
  EXPECT_EQ(buddy.alloc(0), Pfn(1));  // free: 4@2, 8@3
  buddy.free(Pfn(0), 0);              // buddy 1 allocated
  buddy.free(Pfn(2), 1);              // buddy 0 is free but order 0, not 1
  EXPECT_EQ(buddy.nr_merges(), 0u);
  EXPECT_EQ(free_counts(buddy), (std::vector<uint64_t>{1, 1, 1, 1, 0}));
  buddy.check_invariants();

  buddy.free(Pfn(1), 0);  // 1+0 -> 0@1, +2 -> 0@2, +4 -> 0@3, +8 -> 0@4
  EXPECT_EQ(buddy.nr_merges(), 4u);
  EXPECT_EQ(free_counts(buddy), (std::vector<uint64_t>{0, 0, 0, 0, 1}));
  EXPECT_EQ(buddy.nr_allocs(0), 2u);
  EXPECT_EQ(buddy.nr_allocs(1), 1u);
  EXPECT_EQ(buddy.nr_frees(0), 2u);
  EXPECT_EQ(buddy.nr_frees(1), 1u);
  buddy.check_invariants();
}

TEST(BuddyAllocator, DoesNotMergeAcrossTheEndOfANonPowerOfTwoPool) {
  // 12 frames: 0@3 and 8@2. Block 8@2 has its order-2 buddy 12 outside the pool.
  BuddyAllocator buddy(12);
  EXPECT_EQ(buddy.alloc(2), Pfn(8));
  buddy.free(Pfn(8), 2);
  EXPECT_EQ(buddy.nr_merges(), 0u);
  EXPECT_EQ(buddy.nr_free(3), 1u);
  EXPECT_EQ(buddy.nr_free(2), 1u);
  EXPECT_EQ(buddy.alloc(4), std::nullopt);
  buddy.check_invariants();
}

TEST(BuddyAllocator, ExhaustionReturnsNullopt) {
  BuddyAllocator buddy(8, 3);
  for (uint64_t pfn = 0; pfn < 8; ++pfn) {
    EXPECT_EQ(buddy.alloc(0), Pfn(pfn));
  }
  EXPECT_EQ(buddy.nr_free_pages(), 0u);
  EXPECT_EQ(buddy.largest_free_order(), -1);
  EXPECT_EQ(buddy.alloc(0), std::nullopt);
  EXPECT_EQ(buddy.alloc(3), std::nullopt);
  EXPECT_EQ(buddy.nr_failed_allocs(0), 1u);
  EXPECT_EQ(buddy.nr_failed_allocs(3), 1u);
  EXPECT_EQ(buddy.nr_allocs(0), 8u);
  buddy.check_invariants();
}

TEST(BuddyAllocator, FailsWhenNoBlockIsLargeEnoughThoughPagesAreFree) {
  BuddyAllocator buddy(16, 4);
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(buddy.alloc(0));
  }
  for (uint64_t pfn = 0; pfn < 16; pfn += 2) {
    buddy.free(Pfn(pfn), 0);
  }
  EXPECT_EQ(buddy.nr_free_pages(), 8u);
  EXPECT_EQ(buddy.alloc(1), std::nullopt);
  EXPECT_EQ(buddy.nr_failed_allocs(1), 1u);
  EXPECT_EQ(buddy.alloc(0), Pfn(14));
}

TEST(BuddyAllocator, RejectsOrderAboveMaxOrderWithoutCounting) {
  BuddyAllocator buddy(1024, 4);
  EXPECT_EQ(buddy.alloc(5), std::nullopt);
  EXPECT_EQ(buddy.nr_failed_allocs(5), 0u);
  EXPECT_EQ(buddy.nr_free_pages(), 1024u);
}

TEST(BuddyAllocator, FreeingEverythingInRandomOrderRestoresInitialState) {
  const uint64_t nr_frames = 3 * 4096 + 777;
  BuddyAllocator buddy(nr_frames, 10);
  const std::vector<uint64_t> initial = free_counts(buddy);

  std::mt19937_64 rng(12345);
  std::uniform_int_distribution<unsigned> pick_order(0, 10);
  std::vector<std::pair<Pfn, unsigned>> blocks;
  std::vector<int> owner(nr_frames, 0);
  while (buddy.nr_free_pages() > 0) {
    // Linux-style caller fallback: retry smaller orders until something fits.
    for (int order = static_cast<int>(pick_order(rng)); order >= 0; --order) {
      if (auto pfn = buddy.alloc(order)) {
        ASSERT_EQ(pfn->value() % (uint64_t{1} << order), 0u);
        for (uint64_t f = pfn->value(); f < pfn->value() + (uint64_t{1} << order); ++f) {
          ASSERT_LT(f, nr_frames);
          ASSERT_EQ(owner[f]++, 0) << "frame " << f << " handed out twice";
        }
        blocks.emplace_back(*pfn, order);
        break;
      }
    }
  }
  buddy.check_invariants();
  EXPECT_EQ(buddy.largest_free_order(), -1);

  std::shuffle(blocks.begin(), blocks.end(), rng);
  for (size_t i = 0; i < blocks.size(); ++i) {
    buddy.free(blocks[i].first, blocks[i].second);
    if (i % 257 == 0) {
      buddy.check_invariants();
    }
  }
  buddy.check_invariants();
  EXPECT_EQ(free_counts(buddy), initial);
  EXPECT_EQ(buddy.nr_free_pages(), nr_frames);
  // Every split made one extra free block and every merge removed one; back at the start,
  // they balance.
  EXPECT_EQ(buddy.nr_splits(), buddy.nr_merges());
  uint64_t allocs = 0;
  uint64_t frees = 0;
  for (unsigned order = 0; order <= 10; ++order) {
    allocs += buddy.nr_allocs(order);
    frees += buddy.nr_frees(order);
  }
  EXPECT_EQ(allocs, blocks.size());
  EXPECT_EQ(frees, blocks.size());
}

TEST(BuddyAllocator, DetectsDoubleFree) {
  BuddyAllocator buddy(16, 4);
  const Pfn pfn = *buddy.alloc(0);
  buddy.free(pfn, 0);
  EXPECT_THROW(buddy.free(pfn, 0), std::logic_error);
  EXPECT_EQ(buddy.nr_free_pages(), 16u);
  EXPECT_EQ(buddy.nr_frees(0), 1u);
  buddy.check_invariants();
}

TEST(BuddyAllocator, DetectsDoubleFreeOfBlockThatStayedOnItsFreeList) {
  BuddyAllocator buddy(16, 4);
  const Pfn a = *buddy.alloc(0);
  ASSERT_TRUE(buddy.alloc(0));  // keeps a from merging
  buddy.free(a, 0);
  EXPECT_THROW(buddy.free(a, 0), std::logic_error);
  EXPECT_EQ(buddy.nr_free(0), 1u);
  buddy.check_invariants();
}

TEST(BuddyAllocator, RejectsMisalignedWrongOrderAndOutOfRangeFrees) {
  BuddyAllocator buddy(16, 4);
  const Pfn pfn = *buddy.alloc(2);
  ASSERT_EQ(pfn, Pfn(0));
  EXPECT_THROW(buddy.free(Pfn(1), 2), std::logic_error);   // misaligned
  EXPECT_THROW(buddy.free(Pfn(0), 1), std::logic_error);   // wrong order
  EXPECT_THROW(buddy.free(Pfn(2), 1), std::logic_error);   // piece of an unsplit block
  EXPECT_THROW(buddy.free(Pfn(16), 0), std::logic_error);  // outside the pool
  EXPECT_THROW(buddy.free(Pfn(0), 5), std::logic_error);   // above max_order
  EXPECT_EQ(buddy.nr_free_pages(), 12u);
  buddy.check_invariants();
  buddy.free(pfn, 2);
  EXPECT_EQ(buddy.nr_free(4), 1u);
}

TEST(BuddyAllocator, SplitLetsPiecesBeFreedIndividually) {
  BuddyAllocator buddy(16, 4);
  const Pfn pfn = *buddy.alloc(3);
  buddy.split(pfn, 3, 0);
  EXPECT_THROW(buddy.free(pfn, 3), std::logic_error);
  for (uint64_t f = 0; f < 8; f += 2) {
    buddy.free(Pfn(f), 0);
  }
  EXPECT_EQ(buddy.nr_free(0), 4u);
  EXPECT_EQ(buddy.nr_merges(), 0u);
  for (uint64_t f = 1; f < 8; f += 2) {
    buddy.free(Pfn(f), 0);
  }
  EXPECT_EQ(free_counts(buddy), (std::vector<uint64_t>{0, 0, 0, 0, 1}));
  EXPECT_EQ(buddy.nr_frees(0), 8u);
  buddy.check_invariants();
}

TEST(BuddyAllocator, SplitToIntermediateOrder) {
  BuddyAllocator buddy(16, 4);
  const Pfn pfn = *buddy.alloc(4);
  buddy.split(pfn, 4, 2);
  buddy.free(Pfn(4), 2);
  buddy.free(Pfn(12), 2);
  EXPECT_EQ(buddy.nr_free(2), 2u);
  EXPECT_THROW(buddy.split(Pfn(0), 2, 3), std::logic_error);
  EXPECT_THROW(buddy.free(Pfn(0), 4), std::logic_error);
  buddy.check_invariants();
}

TEST(BuddyAllocator, IsFreeReportsFramesInsideFreeBlocks) {
  BuddyAllocator buddy(20, 4);  // 0@4, 16@2
  EXPECT_EQ(buddy.alloc(2), Pfn(16));
  EXPECT_EQ(buddy.alloc(1), Pfn(0));
  for (uint64_t pfn = 0; pfn < 20; ++pfn) {
    const bool allocated = pfn < 2 || pfn >= 16;
    EXPECT_EQ(buddy.is_free(Pfn(pfn)), !allocated) << "pfn " << pfn;
  }
  EXPECT_FALSE(buddy.is_free(Pfn(20)));
}

TEST(BuddyAllocator, UnusableFreeIndexOnFragmentedPool) {
  BuddyAllocator buddy(16, 4);
  for (unsigned order = 0; order <= 4; ++order) {
    EXPECT_EQ(buddy.unusable_free_index(order), 0.0);
  }
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(buddy.alloc(0));
  }
  EXPECT_EQ(buddy.unusable_free_index(0), 1.0);  // nothing free counts as unusable

  for (uint64_t pfn = 0; pfn < 16; pfn += 2) {
    buddy.free(Pfn(pfn), 0);
  }
  buddy.free(Pfn(1), 0);  // 0+1 -> 0@1
  buddy.free(Pfn(5), 0);  // 4+5 -> 4@1
  buddy.free(Pfn(7), 0);  // 6+7 -> 6@1, + 4@1 -> 4@2
  // Free: 4@2 (4 pages), 0@1 (2 pages), 2, 8, 10, 12, 14 @0 (5 pages): 11 pages.
  EXPECT_EQ(free_counts(buddy), (std::vector<uint64_t>{5, 1, 1, 0, 0}));
  EXPECT_EQ(buddy.unusable_free_index(0), 0.0);
  EXPECT_DOUBLE_EQ(buddy.unusable_free_index(1), 5.0 / 11.0);
  EXPECT_DOUBLE_EQ(buddy.unusable_free_index(2), 7.0 / 11.0);
  EXPECT_EQ(buddy.unusable_free_index(3), 1.0);
  EXPECT_EQ(buddy.unusable_free_index(4), 1.0);
  EXPECT_EQ(buddy.unusable_free_index(5), 1.0);
  EXPECT_EQ(buddy.largest_free_order(), 2);
}

TEST(BuddyAllocator, MoveKeepsState) {
  BuddyAllocator buddy(64, 6);
  ASSERT_TRUE(buddy.alloc(3));
  BuddyAllocator moved = std::move(buddy);
  EXPECT_EQ(moved.nr_free_pages(), 56u);
  EXPECT_EQ(moved.nr_allocs(3), 1u);
  moved.check_invariants();
}

}  // namespace
}  // namespace tlbsim::mm
