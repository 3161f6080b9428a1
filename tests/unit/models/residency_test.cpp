// The Residency contract of Tlb and WalkCache (models/tlb/residency.h): every stored
// entry is offered to filled(), and every tracked entry leaves exactly once — by an
// invalidation, a displacement (eviction or refill of the same translation) or
// untrack_if() — so a checker's per-frame counts return to zero.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>

#include "models/tlb/residency.h"
#include "models/tlb/tlb.h"
#include "models/tlb/walk_cache.h"

namespace tlbsim {
namespace {

// Counts live entries per frame; refuses (does not track) entries of ASID 9.
struct Counter final : Residency {
  std::map<uint64_t, int> by_frame;
  int fills = 0, leaves = 0;
  bool filled(unsigned, const TlbEntry& e) override {
    ++fills;
    if (e.asid == 9) return false;
    ++by_frame[e.pfn.value()];
    return true;
  }
  void left(const TlbEntry& e) override {
    ++leaves;
    --by_frame[e.pfn.value()];
  }
  bool filled(unsigned, const WalkCacheEntry& e) override {
    ++fills;
    ++by_frame[e.table.value()];
    return true;
  }
  void left(const WalkCacheEntry& e) override {
    ++leaves;
    --by_frame[e.table.value()];
  }
  void attach(unsigned, Tlb&) override {}
  void attach(unsigned, WalkCache&) override {}
  int live() const {
    int n = 0;
    for (const auto& [f, c] : by_frame) {
      EXPECT_GE(c, 0) << "frame " << f << " left more often than it was filled";
      n += c;
    }
    return n;
  }
};

TlbEntry page(uint64_t vpage, uint64_t pfn, uint16_t asid) {
  return TlbEntry::for_page(VirtAddr(vpage << 12), PageSize::k4K, Pfn(pfn), asid);
}

TEST(Residency, TlbReportsEveryFillAndEveryDeparture) {
  Tlb tlb(TlbGeometry{.name = "t", .entries = 4, .ways = 2, .sizes = {PageSize::k4K}});
  Counter c;
  tlb.set_residency(&c, 3);
  // Set 0 holds vpages 0, 2, 4 … : the third insert evicts one of the first two.
  tlb.insert(page(0, 100, 1));
  tlb.insert(page(2, 102, 1));
  EXPECT_EQ(c.live(), 2);
  tlb.insert(page(4, 104, 1));
  EXPECT_EQ(c.live(), 2) << "the evicted entry left";
  tlb.insert(page(4, 105, 1));
  EXPECT_EQ(c.by_frame[104], 0) << "a refill of the same translation replaces its frame";
  EXPECT_EQ(c.by_frame[105], 1);
  tlb.insert(page(1, 101, 9));
  EXPECT_EQ(c.live(), 2) << "an untracked fill counts nothing";
  EXPECT_EQ(tlb.untrack_if([](const TlbEntry& e) { return e.pfn == Pfn(105); }), 1u);
  EXPECT_EQ(c.by_frame[105], 0);
  EXPECT_NE(tlb.peek(VirtAddr(4ull << 12), 1), nullptr) << "untracked entries stay cached";
  tlb.invalidate_all();
  EXPECT_EQ(c.live(), 0);
  EXPECT_EQ(c.fills, 5);
  EXPECT_EQ(c.leaves, 4) << "untracked entries (ASID 9, and 105 after untrack_if) never leave twice";
}

TEST(Residency, WalkCacheReportsEveryFillAndEveryDeparture) {
  WalkCache wc(WalkCacheGeometry{.name = "w", .entries = 2, .ways = 2});
  Counter c;
  wc.set_residency(&c, 0);
  wc.insert(2, VirtAddr(0), 1, Pfn(10));
  wc.insert(2, VirtAddr(2ull << 20), 1, Pfn(11));
  wc.insert(2, VirtAddr(4ull << 20), 1, Pfn(12));  // evicts the LRU one
  EXPECT_EQ(c.live(), 2);
  wc.insert(2, VirtAddr(4ull << 20), 1, Pfn(13));  // same key, new table
  EXPECT_EQ(c.by_frame[12], 0);
  EXPECT_EQ(wc.invalidate_asid(1), 2u);
  EXPECT_EQ(c.live(), 0);
  EXPECT_EQ(c.fills, 4);
  EXPECT_EQ(c.leaves, 4);
}

}  // namespace
}  // namespace tlbsim
