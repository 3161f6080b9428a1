// arm64 kernel-side TLB decisions on InstantArm64Arch (zero time, recorded TLBIs):
// __flush_tlb_range's TLBI decomposition (linux-mm.md §5.6 worked counts, T18),
// the mmu_gather tlb_flush rules (T32), contpte set_ptes / unfold / fold (§7, T07,
// T27) and the global ASID allocator.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "mm/instant_arch_arm64.h"
#include "mm/kernel.h"

namespace tlbsim::mm {
namespace {

using arm64::TlbiKind;
using arm64::TlbiOp;
using Kind = Arm64ArchEvent::Kind;

constexpr uint64_t kVa = 0x7f0000000000ull;

std::vector<TlbiOp> plan(uint64_t pages, bool range, bool* asid = nullptr, bool last = true) {
  std::vector<TlbiOp> ops;
  auto p = arm64::flush_tlb_range_ops(7, kVa, kVa + pages * kPageSize, kPageSize, last, 3, range,
                                      512, ops);
  if (asid) *asid = p.asid_flush;
  return ops;
}

TEST(Arm64FlushRange, WorkedCountsOfLinuxMmSection56) {
  // Without FEAT_TLBIRANGE: n pages → n TLBIs if n < 512, else one ASID flush.
  for (uint64_t n : {1, 2, 16, 33, 40, 100, 511}) {
    bool asid = true;
    EXPECT_EQ(plan(n, false, &asid).size(), n) << n << " pages without range TLBI";
    EXPECT_FALSE(asid) << n;
  }
  for (uint64_t n : {512, 1000, 1024}) {
    bool asid = false;
    EXPECT_TRUE(plan(n, false, &asid).empty()) << n;
    EXPECT_TRUE(asid) << n << " pages must become TLBI ASIDE1IS (MAX_DVM_OPS = 512)";
  }
  // With FEAT_TLBIRANGE: 1 → 1; 16 → 1; 33 → 2; 40 → 1; 100 → 2; 512 → 1; 1000 → 2.
  const std::pair<uint64_t, size_t> expect[] = {{1, 1},   {16, 1},  {33, 2},  {40, 1},
                                                {100, 2}, {512, 1}, {1000, 2}};
  for (auto [n, ops] : expect) EXPECT_EQ(plan(n, true).size(), ops) << n << " pages with range";
}

TEST(Arm64FlushRange, RangeOpsTileTheRangeExactlyForOneTo1024Pages) {
  for (uint64_t n = 1; n <= 1024; ++n) {
    const auto ops = plan(n, true);
    uint64_t at = kVa;
    for (const TlbiOp& op : ops) {
      EXPECT_EQ(op.va, at) << n;
      EXPECT_EQ(op.range(), op.pages > 1) << n;
      EXPECT_TRUE(op.last_level());
      at = op.end();
    }
    EXPECT_EQ(at, kVa + n * kPageSize) << n << " pages: ops must cover exactly the range";
    EXPECT_LE(ops.size(), 5u) << n << " pages: at most 4 range TLBIs + 1 single";
    const auto single = plan(n, false);
    EXPECT_EQ(single.size(), n < 512 ? n : 0) << n;
  }
}

TEST(Arm64FlushRange, NonLastLevelUsesVae1AndRvae1) {
  auto ops = plan(40, true, nullptr, false);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].kind, TlbiKind::kRvae1is);
  ops = plan(3, false, nullptr, false);
  ASSERT_EQ(ops.size(), 3u);
  EXPECT_EQ(ops[0].kind, TlbiKind::kVae1is);
}

class Arm64Kernel : public ::testing::Test {
 protected:
  void build(bool range, bool broken_unfold = false) {
    profile.debug_no_contpte_unfold_flush.set(broken_unfold);
    stats = std::make_unique<StatGroup>("");
    pm = std::make_unique<PhysMem>(256ull << 20);
    Arm64ArchConfig cfg;
    cfg.nr_cpus = 2;
    cfg.range_tlbi = range;
    cfg.phys = pm.get();
    cfg.debug_no_contpte_unfold_flush = broken_unfold;
    arch = std::make_unique<InstantArm64Arch>(cfg, stats.get());
    pm->set_observer(arch.get());
    kernel = std::make_unique<Kernel>(profile, *pm, *arch, stats.get());
    ctx.clear();
    ctx.emplace_back(0);
    ctx.emplace_back(1);
    mm = &kernel->mm_create(ctx[0]);
    arch->switch_mm(ctx[0], *mm);
    arch->switch_mm(ctx[1], *mm);
  }
  VirtAddr mmap_populated(uint64_t len) {
    MmapArgs a;
    a.len = len;
    const int64_t r = kernel->sys_mmap(ctx[0], *mm, a);
    EXPECT_GT(r, 0);
    const VirtAddr base(static_cast<uint64_t>(r));
    for (uint64_t off = 0; off < len; off += kPageSize)
      EXPECT_EQ(kernel->handle_mm_fault(ctx[0], *mm, base + off, kFaultWrite), FaultResult::kOk);
    return base;
  }
  uint64_t* pte_of(VirtAddr va) { return kernel->page_tables().walk(ctx[0], *mm, va, 1, true); }

  KernelProfile profile;
  std::unique_ptr<StatGroup> stats;
  std::unique_ptr<PhysMem> pm;
  std::unique_ptr<InstantArm64Arch> arch;
  std::unique_ptr<Kernel> kernel;
  std::vector<ExecContext> ctx;
  Mm* mm = nullptr;
};

TEST_F(Arm64Kernel, MunmapIssuesT18TlbiCountsAndNoIpis) {
  for (bool range : {false, true}) {
    for (uint64_t n : {1, 40, 511, 512, 1000}) {
      build(range);
      const VirtAddr base = mmap_populated(8ull << 20);
      // Inside one VMA, away from its ends: no page table is freed.
      const VirtAddr at = base + (2ull << 20);
      arch->clear_events();
      ASSERT_EQ(kernel->sys_munmap(ctx[0], *mm, at, n * kPageSize), 0);
      const uint64_t va = arch->count_tlbi(TlbiKind::kVale1is);
      const uint64_t rva = arch->count_tlbi(TlbiKind::kRvale1is);
      const uint64_t asid = arch->count_tlbi(TlbiKind::kAside1is);
      if (!range) {
        EXPECT_EQ(va, n < 512 ? n : 0) << n << " pages, no range";
        EXPECT_EQ(asid, n < 512 ? 0u : 1u) << n;
      } else {
        const uint64_t expect_ops = n == 1 ? 1 : n == 40 ? 1 : n == 511 ? 3 : n == 512 ? 1 : 2;
        EXPECT_EQ(va + rva, expect_ops) << n << " pages with range TLBI";
        EXPECT_EQ(asid, 0u) << n;
      }
      // One DSB ISH for the leaf flush at the VMA end, one more when a whole PTE table
      // was freed (a non-last-level flush at tlb_finish_mmu).
      const uint64_t tables_freed =
          arch->count_tlbi(TlbiKind::kVae1is) + arch->count_tlbi(TlbiKind::kRvae1is) > 0;
      EXPECT_EQ(arch->count(Kind::kDsb), 1u + tables_freed) << n;
      // Every free comes after the DSB.
      bool dsb_seen = false;
      for (const auto& e : arch->events()) {
        if (e.kind == Kind::kDsb) dsb_seen = true;
        if (e.kind == Kind::kFramesFreed) {
          EXPECT_TRUE(dsb_seen) << "frame freed before DSB ISH";
        }
      }
    }
  }
}

// Regression (issue 16 item 2): arm64 with 4 KiB pages has a 48-bit user VA
// (TASK_SIZE_64 = 2^48); a fixed mapping above it failed only as stale-TLB violations.
TEST_F(Arm64Kernel, MmapFixedBeyondThe48BitTaskSizeFailsWithEnomem) {
  build(false);
  MmapArgs a;
  a.len = 8192;
  a.fixed = true;
  a.addr = kTaskSizeArm64 - 8192;
  EXPECT_EQ(Kernel::mmap_errno(kernel->sys_mmap(ctx[0], *mm, a)), 0);
  a.addr = (1ull << 48) + (16ull << 20);
  EXPECT_EQ(Kernel::mmap_errno(kernel->sys_mmap(ctx[0], *mm, a)), ENOMEM);
  a.addr = kTaskSizeArm64 - 4096;
  EXPECT_EQ(Kernel::mmap_errno(kernel->sys_mmap(ctx[0], *mm, a)), ENOMEM);
}

TEST_F(Arm64Kernel, ExitIssuesOneAsidFlushOnlyForFreedTables) {
  build(false);
  mmap_populated(64 * kPageSize);
  arch->clear_events();
  kernel->exit_mmap(ctx[0], *mm);
  EXPECT_EQ(arch->count(Kind::kTlbi), 1u) << "fullmm: leaf clears issue no TLBI (T32)";
  EXPECT_EQ(arch->count_tlbi(TlbiKind::kAside1is), 1u);
  EXPECT_EQ(arch->count(Kind::kDsb), 1u);
}

class Arm64Contpte : public Arm64Kernel {
 protected:
  /// A 64 KiB folio mapped at a 64 KiB-aligned VA with set_ptes(16).
  void map_block(VirtAddr va) {
    folio = *pm->alloc_folio(4);
    ASSERT_EQ(folio.value() % 16, 0u);
    ptep = pte_of(va);
    const uint64_t pte = kernel->codec().mkwrite(
        kernel->codec().mkdirty(kernel->codec().mk_pte(folio, PgProt{true, false, true})));
    arch->set_ptes(ctx[0], *mm, va, ptep, pte, 16);
  }
  Pfn folio;
  uint64_t* ptep = nullptr;
};

TEST_F(Arm64Contpte, SetPtesOfAWholeAlignedBlockSetsContWithoutTlbi) {
  build(false);
  arch->clear_events();
  map_block(VirtAddr(kVa));
  for (unsigned i = 0; i < 16; ++i) {
    EXPECT_TRUE(kernel->codec().cont(ptep[i])) << i;
    EXPECT_EQ(kernel->codec().pfn(ptep[i]), folio + i);
  }
  EXPECT_EQ(arch->count(Kind::kTlbi), 0u) << "T01: an mTHP fault issues no TLBI";
  // Misaligned VA: no PTE_CONT.
  folio = *pm->alloc_folio(4);
  uint64_t* p = pte_of(VirtAddr(kVa + 0x11000));
  arch->set_ptes(ctx[0], *mm, VirtAddr(kVa + 0x11000), p, kernel->codec().mk_pte(folio, {}), 16);
  for (unsigned i = 0; i < 16; ++i) EXPECT_FALSE(kernel->codec().cont(p[i])) << i;
}

TEST_F(Arm64Contpte, ClearingOnePteUnfoldsWithBreakBeforeMake) {
  for (bool range : {false, true}) {
    build(range);
    map_block(VirtAddr(kVa));
    arch->clear_events();
    const VirtAddr va6(kVa + 5 * kPageSize);
    arch->ptep_get_and_clear(ctx[0], *mm, va6, ptep + 5);
    EXPECT_EQ(ptep[5], 0u);
    for (unsigned i = 0; i < 16; ++i)
      if (i != 5) {
        EXPECT_FALSE(kernel->codec().cont(ptep[i])) << "entry " << i << " still cont";
      }
    uint64_t unfold_tlbis = 0;
    for (const auto& e : arch->events())
      if (e.kind == Kind::kTlbi && e.cause == FlushCause::kContpteUnfold) ++unfold_tlbis;
    EXPECT_EQ(unfold_tlbis, range ? 1u : 16u) << "T07: 16 VALE1IS or 1 RVALE1IS";
    // Break, flush (DSB), then make.
    ASSERT_GE(arch->events().size(), 2u);
    EXPECT_EQ(arch->events().back().kind, Kind::kMake);
    EXPECT_EQ(arch->events()[arch->events().size() - 2].kind, Kind::kDsb);
    EXPECT_EQ(arch->vmstats().contpte_unfolds.value(), 1u);
  }
}

TEST_F(Arm64Contpte, BrokenSwitchSkipsTheUnfoldFlush) {
  build(false, /*broken_unfold=*/true);
  map_block(VirtAddr(kVa));
  arch->clear_events();
  arch->ptep_get_and_clear(ctx[0], *mm, VirtAddr(kVa), ptep);
  EXPECT_EQ(arch->count(Kind::kTlbi), 0u);
  EXPECT_EQ(arch->count(Kind::kMake), 1u);
}

TEST_F(Arm64Contpte, ZapOfWholeBlocksDoesNotUnfoldButPartialEdgesDo) {
  build(false);
  map_block(VirtAddr(kVa));
  arch->clear_events();
  arch->get_and_clear_full_ptes(ctx[0], *mm, VirtAddr(kVa), ptep, 16, false);
  EXPECT_EQ(arch->count(Kind::kTlbi), 0u) << "a fully covered block is cleared without unfold";
  build(false);
  map_block(VirtAddr(kVa));
  arch->clear_events();
  arch->get_and_clear_full_ptes(ctx[0], *mm, VirtAddr(kVa + 4 * kPageSize), ptep + 4, 4, false);
  EXPECT_EQ(arch->vmstats().contpte_unfolds.value(), 1u);
}

TEST_F(Arm64Contpte, AscendingSinglePteWritesFoldOnTheLastEntry) {
  build(false);
  folio = *pm->alloc_folio(4);
  ptep = pte_of(VirtAddr(kVa));
  const uint64_t pte = kernel->codec().mk_pte(folio, PgProt{true, false, true});
  arch->clear_events();
  for (unsigned i = 0; i < 16; ++i)
    arch->set_ptes(ctx[0], *mm, VirtAddr(kVa + i * kPageSize), ptep + i,
                   kernel->codec().advance_pfn(pte, i), 1);
  EXPECT_EQ(arch->vmstats().contpte_folds.value(), 1u) << "T27: fold on the 16th entry";
  EXPECT_EQ(arch->count(Kind::kTlbi), 16u);
  for (unsigned i = 0; i < 16; ++i) EXPECT_TRUE(kernel->codec().cont(ptep[i])) << i;
  // Descending order: no fold.
  build(false);
  folio = *pm->alloc_folio(4);
  ptep = pte_of(VirtAddr(kVa));
  arch->clear_events();
  for (int i = 15; i >= 0; --i)
    arch->set_ptes(ctx[0], *mm, VirtAddr(kVa + i * kPageSize), ptep + i,
                   kernel->codec().advance_pfn(kernel->codec().mk_pte(folio, {}), i), 1);
  EXPECT_EQ(arch->vmstats().contpte_folds.value(), 0u);
  EXPECT_EQ(arch->count(Kind::kTlbi), 0u);
}

TEST_F(Arm64Contpte, PtepGetGathersDirtyAndYoungOverTheBlock) {
  build(false);
  map_block(VirtAddr(kVa));
  const PteCodec& c = kernel->codec();
  for (unsigned i = 0; i < 16; ++i) ptep[i] = c.mkold(c.mkclean(ptep[i]));
  ptep[9] = c.mkdirty(ptep[9]);
  EXPECT_TRUE(c.dirty(arch->ptep_get(ptep + 2)));
  EXPECT_FALSE(c.young(arch->ptep_get(ptep + 2)));
}

TEST(Arm64Asid, RolloverInvalidatesEveryTlbBeforeAsidsAreReused) {
  StatGroup stats("");
  Arm64ArchConfig cfg;
  cfg.nr_cpus = 1;
  cfg.asid_bits = 2;  // ASIDs 1..3
  InstantArm64Arch arch(cfg, &stats);
  ExecContext ctx(0);
  std::vector<std::unique_ptr<Mm>> mms;
  for (unsigned i = 0; i < 3; ++i) {
    mms.push_back(std::make_unique<Mm>(i + 1, i + 1, 1));
    arch.init_new_context(*mms.back());
    EXPECT_EQ(mms.back()->asid(), i + 1);
  }
  arch.destroy_context(*mms[1]);
  mms.push_back(std::make_unique<Mm>(9, 9, 1));
  arch.init_new_context(*mms.back());
  EXPECT_EQ(mms.back()->asid(), 2u) << "the dead mm's ASID is recycled after the rollover";
  EXPECT_EQ(arch.vmstats().asid_rollovers.value(), 1u);
  arch.switch_mm(ctx, *mms.back());
  EXPECT_EQ(arch.count_tlbi(TlbiKind::kVmalle1is), 1u);
}

}  // namespace
}  // namespace tlbsim::mm
