// mremap(2) of private anonymous memory (mm/mremap.c): shrink, grow in place, move
// by whole PTE tables (move_normal_pmd), by PTEs (move_ptes) and by PMD-mapped THPs
// (move_huge_pmd), MREMAP_FIXED, and the errnos of the argument checks. x86 on
// InstantArch: every flush request and IPI is recorded with its cause.
#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

#include "tests/unit/mm/arm64_kernel_fixture.h"
#include "tests/unit/mm/fault_fixture.h"

namespace tlbsim::mm::testing {
namespace {

using Kind = ArchEvent::Kind;

class Mremap : public FaultFixture {
 protected:
  void SetUp() override { build(); }
  uint64_t mremap(Mm& mm, VirtAddr a, uint64_t old_len, uint64_t new_len, unsigned flags,
                  VirtAddr to = VirtAddr(0)) {
    const uint64_t r = kernel->sys_mremap(ctx[0], mm, a, old_len, new_len, flags, to);
    check();
    return r;
  }
  static int err(uint64_t r) { return Kernel::mmap_errno(r); }
  uint64_t stat(const char* name) {
    const StatBase* s = stats->find("kernel.mremap." + std::string(name));
    EXPECT_NE(s, nullptr) << name;
    return s ? static_cast<uint64_t>(static_cast<const Scalar*>(s)->value()) : 0;
  }
  std::vector<Pfn> frames(Mm& mm, VirtAddr a, uint64_t pages) {
    std::vector<Pfn> out;
    for (uint64_t i = 0; i < pages; ++i) out.push_back(pfn_at(mm, a + i * kPageSize));
    return out;
  }
};

// The acceptance case of the issue: 1 GiB of 4 KiB folios on a PMD-aligned range,
// moved (MREMAP_FIXED) to a PMD-aligned free range 2 GiB below. move_page_tables() re-points all 512 PTE tables
// (move_normal_pmd) and flushes each old 2 MiB range at once, under the PMD lock:
// 512 flush_tlb_range calls, each more than 33 strides (a full flush) and one IPI to
// CPU1 that runs the mm. No page is copied or allocated, every frame is at its new
// address, the old range is gone, the PTE tables move with their entries.
TEST_F(Mremap, MoveOfAGibibyteMovesPteTablesNotPages) {
  build({.cpus = 2, .memory = 1536ull << 20});
  Mm& mm = process({0, 1});
  constexpr uint64_t kLen = 1ull << 30, kPages = kLen >> kPageShift;
  const VirtAddr a = mmap(mm, kLen);
  populate(mm, a, kLen);
  const std::vector<Pfn> before = frames(mm, a, kPages);
  const uint64_t free0 = pm->nr_free_pages();
  const uint64_t alloc0 = ctx[0].get(KOp::kPageAlloc), copy0 = ctx[0].get(KOp::kPageCopy);
  const uint64_t pt0 = ctx[0].get(KOp::kPtAlloc);
  arch->clear_events();
  const VirtAddr b = a - 2 * kLen;
  ASSERT_EQ(mremap(mm, a, kLen, kLen, kMremapMaymove | kMremapFixed, b), b.value());
  EXPECT_EQ(stat("pmd_tables_moved"), 512u);
  EXPECT_EQ(stat("ptes_moved"), 0u);
  EXPECT_EQ(stat("moved"), 1u);
  EXPECT_EQ(ctx[0].get(KOp::kPageCopy), copy0);
  EXPECT_EQ(ctx[0].get(KOp::kPageAlloc) - alloc0, ctx[0].get(KOp::kPtAlloc) - pt0)
      << "only page tables may be allocated";
  EXPECT_EQ(frames(mm, b, kPages), before);
  EXPECT_EQ(mm.find_vma(a), nullptr);
  EXPECT_EQ(mm.rss(kMmAnonPages), static_cast<int64_t>(kPages));
  // 512 moves, each its own flush of the old PMD's 2 MiB; then the munmap of the
  // (empty) old range frees the PMD table above the new range's (one more flush,
  // with freed tables). Each request reaches CPU1 once.
  EXPECT_EQ(events_where(Kind::kFlushRequest, FlushCause::kMremap), 513u);
  EXPECT_EQ(count(Kind::kIpi), 513u);
  EXPECT_EQ(count(Kind::kLocalFull), 2u * 512u) << "512 strides > the ceiling of 33";
  EXPECT_EQ(count(Kind::kLocalPartial), 2u)
      << "the freed PMD table's flush: one INVLPG at PUD stride on each CPU";
  EXPECT_LE(free0 - pm->nr_free_pages(), 2u) << "at most the new range's PMD tables";
  // The new range works without faults: every page translates (its PTE is present).
  for (uint64_t i = 0; i < kPages; i += 4099) EXPECT_TRUE(codec().present(pte(mm, b + i * kPageSize)));
}

// Not PMD-aligned in the same way: MREMAP_FIXED to a target whose offset inside
// the PMD differs, so every entry moves by move_ptes(); one flush_tlb_range of each
// moved piece of the old range (the pieces end at the PMD boundaries of either range).
TEST_F(Mremap, MisalignedMoveMovesEachPteAndFlushesEachPiece) {
  Mm& mm = process({0, 1});
  const VirtAddr a = mmap(mm, 64 * kPageSize);  // 2 MiB aligned
  populate(mm, a, 64 * kPageSize);
  const std::vector<Pfn> before = frames(mm, a, 64);
  const VirtAddr to = a - 8 * kPmdSize + kPmdSize - 16 * kPageSize;  // 16 pages below a PMD boundary
  arch->clear_events();
  ASSERT_EQ(mremap(mm, a, 64 * kPageSize, 64 * kPageSize, kMremapMaymove | kMremapFixed, to),
            to.value());
  EXPECT_EQ(stat("ptes_moved"), 64u);
  EXPECT_EQ(stat("pmd_tables_moved"), 0u);
  EXPECT_EQ(frames(mm, to, 64), before);
  // Pieces: [a, a+16 pages) to the new PMD boundary, then [a+16, a+64): 16 and 48
  // pages, each flushed once (16 ≤ 33: INVLPGs; 48 > 33: full), CPU1 reached by each.
  std::vector<uint64_t> pages;
  for (const auto& e : arch->events())
    if (e.kind == Kind::kFlushRequest && e.cause == FlushCause::kMremap && e.end != ~0ull)
      pages.push_back((e.end - e.start) >> kPageShift);
  ASSERT_GE(pages.size(), 1u);
  EXPECT_EQ(pages[0], 16u);
  EXPECT_EQ(mm.find_vma(a), nullptr);
}

TEST_F(Mremap, ShrinkUnmapsTheTail) {
  Mm& mm = process({0, 1});
  const VirtAddr a = mmap(mm, 64 * kPageSize);
  populate(mm, a, 64 * kPageSize);
  arch->clear_events();
  ASSERT_EQ(mremap(mm, a, 64 * kPageSize, 16 * kPageSize, 0), a.value());
  EXPECT_EQ(stat("shrunk"), 1u);
  EXPECT_EQ(mm.find_vma(a)->end(), a + 16 * kPageSize);
  EXPECT_EQ(mm.rss(kMmAnonPages), 16);
  EXPECT_EQ(events_where(Kind::kFlushRequest, FlushCause::kMremap), 1u);
  EXPECT_EQ(count(Kind::kIpi), 1u);
}

// vma_expandable(): nothing after the VMA, so it grows over the free range; no
// page table changes, no flush; the new part faults in as usual.
TEST_F(Mremap, GrowsInPlaceWhenTheRangeAfterIsFree) {
  Mm& mm = process({0});
  const VirtAddr a = mmap(mm, 16 * kPageSize);
  populate(mm, a, 16 * kPageSize);
  arch->clear_events();
  ASSERT_EQ(mremap(mm, a, 16 * kPageSize, 48 * kPageSize, 0), a.value());
  EXPECT_EQ(stat("grown_in_place"), 1u);
  EXPECT_EQ(mm.find_vma(a)->end(), a + 48 * kPageSize);
  EXPECT_EQ(count(Kind::kFlushRequest), 0u);
  touch(mm, a + 40 * kPageSize);
}

// The next VMA is in the way: without MREMAP_MAYMOVE ENOMEM, with it a move.
TEST_F(Mremap, GrowingIntoAMappingNeedsMaymove) {
  Mm& mm = process({0});
  const VirtAddr high = mmap(mm, 16 * kPageSize, false, kPageSize);
  const VirtAddr low = mmap(mm, 16 * kPageSize, false, kPageSize);
  ASSERT_EQ(low + 16 * kPageSize, high) << "top-down placement leaves no gap";
  populate(mm, low, 16 * kPageSize);
  EXPECT_EQ(err(mremap(mm, low, 16 * kPageSize, 32 * kPageSize, 0)), ENOMEM);
  const uint64_t r = mremap(mm, low, 16 * kPageSize, 32 * kPageSize, kMremapMaymove);
  ASSERT_EQ(err(r), 0);
  EXPECT_NE(VirtAddr(r), low);
  EXPECT_EQ(mm.find_vma(VirtAddr(r))->end(), VirtAddr(r) + 32 * kPageSize);
  EXPECT_NE(mm.find_vma(high), nullptr) << "the neighbour stays";
}

// A PMD-mapped THP between PMD-aligned ranges moves as one entry (move_huge_pmd):
// its deposited PTE table follows it, one flush_pmd_tlb_range of the old PMD.
TEST_F(Mremap, PmdMappedThpMovesAsOneEntry) {
  enable_thp_sizes({}, "always");
  per_size(kPmdOrder).set("inherit");
  build();
  Mm& mm = process({0, 1});
  const VirtAddr a = mmap(mm, kPmdSize);
  ASSERT_EQ(fault(mm, a, true), FaultResult::kOk);
  ASSERT_TRUE(codec().huge(pmd(mm, a)));
  const Pfn head = codec().pfn(pmd(mm, a));
  const int64_t tables = mm.nr_pgtables();
  arch->clear_events();
  const uint64_t r = mremap(mm, a, kPmdSize, kPmdSize, kMremapMaymove | kMremapFixed, a - 4 * kPmdSize);
  ASSERT_EQ(err(r), 0);
  EXPECT_EQ(stat("huge_pmds_moved"), 1u);
  EXPECT_TRUE(codec().huge(pmd(mm, VirtAddr(r))));
  EXPECT_EQ(codec().pfn(pmd(mm, VirtAddr(r))), head);
  EXPECT_LE(mm.nr_pgtables(), tables + 1) << "the deposit moved, not duplicated";
  EXPECT_GE(events_where(Kind::kFlushRequest, FlushCause::kMremap), 1u);
}

TEST_F(Mremap, ArgumentChecksReturnLinuxErrnos) {
  Mm& mm = process({0});
  const VirtAddr a = mmap(mm, 16 * kPageSize);
  EXPECT_EQ(err(mremap(mm, a, 16 * kPageSize, 32 * kPageSize, 8)), EINVAL) << "unknown flag";
  EXPECT_EQ(err(mremap(mm, a, 16 * kPageSize, 32 * kPageSize, kMremapFixed, a)), EINVAL)
      << "FIXED without MAYMOVE";
  EXPECT_EQ(err(mremap(mm, a + 1, 16 * kPageSize, 32 * kPageSize, kMremapMaymove)), EINVAL)
      << "unaligned address";
  EXPECT_EQ(err(mremap(mm, a, 16 * kPageSize, 0, kMremapMaymove)), EINVAL) << "new_len 0";
  EXPECT_EQ(err(mremap(mm, VirtAddr(0x10000000), kPageSize, 2 * kPageSize, kMremapMaymove)), EFAULT)
      << "nothing mapped there";
  EXPECT_EQ(err(mremap(mm, a, 32 * kPageSize, 64 * kPageSize, kMremapMaymove)), EFAULT)
      << "the old range runs past its VMA";
  EXPECT_EQ(err(mremap(mm, a, 16 * kPageSize, 16 * kPageSize, kMremapMaymove | kMremapFixed,
                       a + 8 * kPageSize)),
            EINVAL)
      << "overlapping ranges";
  EXPECT_EQ(err(mremap(mm, a, 16 * kPageSize, 16 * kPageSize, kMremapMaymove | kMremapFixed,
                       a + kPageSize / 2)),
            EINVAL)
      << "unaligned target";
  EXPECT_EQ(err(mremap(mm, a, 16 * kPageSize, 16 * kPageSize, 0)), 0) << "same size: nothing";
}

// MREMAP_FIXED replaces what is mapped at the target.
TEST_F(Mremap, FixedUnmapsTheTarget) {
  Mm& mm = process({0});
  const VirtAddr src = mmap(mm, 16 * kPageSize);
  const VirtAddr dst = mmap(mm, 16 * kPageSize);
  populate(mm, src, 16 * kPageSize);
  populate(mm, dst, 16 * kPageSize);
  const std::vector<Pfn> moving = frames(mm, src, 16);
  ASSERT_EQ(mremap(mm, src, 16 * kPageSize, 16 * kPageSize, kMremapMaymove | kMremapFixed, dst),
            dst.value());
  EXPECT_EQ(frames(mm, dst, 16), moving);
  EXPECT_EQ(mm.rss(kMmAnonPages), 16) << "the target's pages were unmapped";
}

}  // namespace
}  // namespace tlbsim::mm::testing

namespace tlbsim::mm::testing {
namespace {

// arm64, 64 KiB folios as contpte blocks, moved by PTEs (the target is 64 KiB- but
// not PMD-aligned like the source). Before 6.17 move_ptes() clears one PTE at a time:
// the first ptep_get_and_clear() of each block unfolds it (break-before-make: a
// TLBI of the block), then set_pte_at() one by one — the new blocks refold when their
// 16th entry lands (contpte_try_fold). From 6.17 (mremap_pte_batch) each block moves
// as one batch: get_and_clear_full_ptes(16) and set_ptes(16): no unfold, no fold,
// the new block written with PTE_CONT directly.
class MremapArm64 : public Arm64KernelFixture {};

TEST_F(MremapArm64, ContpteBlocksMoveAsBatchesFrom617) {
  for (bool batch : {false, true}) {
    profile.mremap_pte_batch.set(batch);
    build();
    Mm& mm = kernel->mm_create(ctx);
    arch->switch_mm(ctx, mm);
    MmapArgs a;
    a.len = 64 * kPageSize;  // four 64 KiB blocks
    a.align = kPmdSize;
    const VirtAddr va(kernel->sys_mmap(ctx, mm, a));
    for (uint64_t i = 0; i < 64; i += 16)
      ASSERT_EQ(kernel->handle_mm_fault(ctx, mm, va + i * kPageSize, kFaultWrite), FaultResult::kOk);
    const uint64_t unfolds0 = arch->vmstats().contpte_unfolds.value();
    const uint64_t folds0 = arch->vmstats().contpte_folds.value();
    const uint64_t set0 = arch->vmstats().contpte_blocks_set.value();
    const VirtAddr to = va - 4 * kPmdSize + 16 * kPageSize;
    ASSERT_EQ(kernel->sys_mremap(ctx, mm, va, a.len, a.len, kMremapMaymove | kMremapFixed, to),
              to.value());
    EXPECT_EQ(check_invariants(*kernel), "");
    const PteCodec& c = kernel->codec();
    for (uint64_t i = 0; i < 64; ++i) {
      const uint64_t* p = kernel->page_tables().walk(ctx, mm, to + i * kPageSize, 1, false);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(c.cont(*p)) << "page " << i << " of the moved blocks is contiguous again";
    }
    EXPECT_EQ(arch->vmstats().contpte_unfolds.value() - unfolds0, batch ? 0u : 4u) << batch;
    EXPECT_EQ(arch->vmstats().contpte_folds.value() - folds0, batch ? 0u : 4u) << batch;
    EXPECT_EQ(arch->vmstats().contpte_blocks_set.value() - set0, batch ? 4u : 0u) << batch;
  }
}

}  // namespace
}  // namespace tlbsim::mm::testing
