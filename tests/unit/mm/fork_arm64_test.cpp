// fork() on arm64 (InstantArm64Arch): copy_present_ptes reaches the PTEs only
// through the arch accessors, so contpte blocks survive the copy — oracle T28 of
// reference/linux-mm.md §11 (contpte_wrprotect_ptes, contpte_set_ptes, dup_mmap).
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "mm/folio.h"
#include "mm/instant_arch_arm64.h"
#include "tests/unit/mm/arm64_kernel_fixture.h"
#include "mm/invariants.h"
#include "mm/kernel.h"

namespace tlbsim::mm::testing {
namespace {

using Kind = Arm64ArchEvent::Kind;

class ForkArm64 : public Arm64KernelFixture {
 protected:
  void SetUp() override { build(); }
};

// T28: P (only on CPU0) owns 64K folio F as a writable contpte block; fork. The
// parent's wrprotect_ptes(16) covers the whole block: no unfold, PTE_CONT kept;
// the child's set_ptes(16) creates the block directly; no TLBI while copying; the
// end-of-fork flush_tlb_mm is 1 TLBI ASIDE1IS + 1 DSB ISH, no IPIs. rmap as T08.
TEST_F(ForkArm64, T28_ContBlockIsWriteProtectedAndCopiedWithoutUnfold) {
  Mm& p = kernel->mm_create(ctx);
  arch->switch_mm(ctx, p);
  MmapArgs a;
  a.len = 16 * kPageSize;
  const VirtAddr va(static_cast<uint64_t>(kernel->sys_mmap(ctx, p, a)));
  ASSERT_EQ(kernel->handle_mm_fault(ctx, p, va + 3 * kPageSize, kFaultWrite), FaultResult::kOk);
  const PteCodec& c = kernel->codec();
  uint64_t* pp = pte_of(p, va);
  ASSERT_NE(pp, nullptr);
  Folio f = Folio::of(*pm, c.pfn(pp[0]));
  ASSERT_EQ(f.order(), 4u);
  for (unsigned i = 0; i < 16; ++i) ASSERT_TRUE(c.cont(pp[i]) && c.write(pp[i])) << i;
  const uint64_t calls = kernel->vmstat().rmap_calls.value();
  arch->clear_events();
  Mm& child = kernel->dup_mmap(ctx, p);
  EXPECT_EQ(check_invariants(*kernel), "");
  uint64_t* cp = pte_of(child, va);
  ASSERT_NE(cp, nullptr);
  for (unsigned i = 0; i < 16; ++i) {
    EXPECT_TRUE(c.cont(pp[i])) << i << ": the parent's block is not unfolded";
    EXPECT_FALSE(c.write(pp[i])) << i;
    EXPECT_TRUE(c.cont(cp[i])) << i << ": the child's block is created directly";
    EXPECT_FALSE(c.write(cp[i])) << i;
    EXPECT_FALSE(c.young(cp[i])) << i;
    EXPECT_EQ(c.pfn(cp[i]), f.pfn() + i) << i;
  }
  EXPECT_EQ(kernel->vmstat().rmap_calls.value() - calls, 1u);
  EXPECT_EQ(f.large_mapcount(), 32);
  EXPECT_EQ(f.ref_count(), 32);
  EXPECT_TRUE(f.lf().maybe_mapped_shared);
  EXPECT_EQ(arch->count(Kind::kTlbi), 1u);
  EXPECT_EQ(arch->count_tlbi(arm64::TlbiKind::kAside1is), 1u);
  EXPECT_EQ(arch->count(Kind::kDsb), 1u);
}

// T30 (arm64): the deferred-split shrinker splits a partially mapped 64K folio
// (already unfolded by the DONTNEED of T07): 15 TLBI VALE1IS issued at unmap
// (arch_tlbbatch_add_pending) and one DSB ISH for the batch (arch_tlbbatch_flush);
// no IPIs; the remapped order-0 pages are not folded again.
TEST_F(ForkArm64, T30_DeferredSplitIssuesTlbisAndOneDsb) {
  Mm& p = kernel->mm_create(ctx);
  arch->switch_mm(ctx, p);
  MmapArgs a;
  a.len = 16 * kPageSize;
  const VirtAddr va(static_cast<uint64_t>(kernel->sys_mmap(ctx, p, a)));
  ASSERT_EQ(kernel->handle_mm_fault(ctx, p, va, kFaultWrite), FaultResult::kOk);
  ASSERT_EQ(kernel->sys_madvise(ctx, p, va + 5 * kPageSize, kPageSize, Advice::kDontneed), 0);
  ASSERT_EQ(kernel->deferred_split().length(), 1u);
  arch->clear_events();
  EXPECT_EQ(kernel->deferred_split_scan(ctx, 16), 1u);
  EXPECT_EQ(check_invariants(*kernel), "");
  EXPECT_EQ(arch->count(Kind::kTlbi), 15u);
  EXPECT_EQ(arch->count(Kind::kDsb), 1u);
  EXPECT_EQ(kernel->vmstat().mthp[4]->split.value(), 1u);
  const PteCodec& c = kernel->codec();
  EXPECT_FALSE(c.cont(*pte_of(p, va)));
  kernel->exit_mmap(ctx, p);
  EXPECT_EQ(check_invariants(*kernel), "");
}

// mm/mprotect.c:change_pte_range() on arm64, Linux 6.7-6.18: every present PTE goes
// through ptep_modify_prot_start/commit and the generic pte_needs_flush() (always
// true; arm64's own arrived in 6.19), so mprotect(PROT_READ) right after fork —
// whose PTEs are read-only already — still flushes each page (x86: nothing; see
// Mprotect.UnchangedPtesAreNotFlushedOnX86).
TEST_F(ForkArm64, MprotectFlushesUnchangedPtesWithGenericPteNeedsFlush) {
  Mm& p = kernel->mm_create(ctx);
  arch->switch_mm(ctx, p);
  MmapArgs a;
  a.len = 8 * kPageSize;
  const VirtAddr va(static_cast<uint64_t>(kernel->sys_mmap(ctx, p, a)));
  for (unsigned i = 0; i < 8; ++i)
    ASSERT_EQ(kernel->handle_mm_fault(ctx, p, va + i * kPageSize, kFaultWrite), FaultResult::kOk);
  Mm& child = kernel->dup_mmap(ctx, p);
  const PteCodec& c = kernel->codec();
  const uint64_t before = *pte_of(p, va);
  ASSERT_FALSE(c.write(before));
  arch->clear_events();
  ASSERT_EQ(kernel->sys_mprotect(ctx, p, va, 8 * kPageSize, true, false, false), 0);
  EXPECT_EQ(check_invariants(*kernel), "");
  EXPECT_EQ(c.pfn(*pte_of(p, va)), c.pfn(before));
  EXPECT_FALSE(c.write(*pte_of(p, va)));
  uint64_t tlbis = 0;
  for (const Arm64ArchEvent& e : arch->events())
    if (e.kind == Kind::kTlbi && e.cause == FlushCause::kMprotect) ++tlbis;
  EXPECT_GE(tlbis, 1u) << "the unchanged PTEs are flushed (generic pte_needs_flush)";
  EXPECT_EQ(arch->count(Kind::kDsb), 1u);
  kernel->exit_mmap(ctx, child);
  kernel->exit_mmap(ctx, p);
  EXPECT_EQ(check_invariants(*kernel), "");
}

// Linux 6.19 (c320dbb7c80d): arm64's own pte_needs_flush() flushes only when a valid
// entry changes a non-software bit: the same mprotect(PROT_READ) after fork flushes
// nothing.
TEST_F(ForkArm64, MprotectOfUnchangedPtesFlushesNothingFrom619) {
  profile.arm64_pte_needs_flush.set(true);
  kernel = std::make_unique<Kernel>(profile, *pm, *arch, stats.get());
  Mm& p = kernel->mm_create(ctx);
  arch->switch_mm(ctx, p);
  MmapArgs a;
  a.len = 8 * kPageSize;
  const VirtAddr va(static_cast<uint64_t>(kernel->sys_mmap(ctx, p, a)));
  for (unsigned i = 0; i < 8; ++i)
    ASSERT_EQ(kernel->handle_mm_fault(ctx, p, va + i * kPageSize, kFaultWrite), FaultResult::kOk);
  Mm& child = kernel->dup_mmap(ctx, p);
  arch->clear_events();
  ASSERT_EQ(kernel->sys_mprotect(ctx, p, va, 8 * kPageSize, true, false, false), 0);
  EXPECT_EQ(check_invariants(*kernel), "");
  EXPECT_EQ(arch->count(Kind::kTlbi), 0u);
  EXPECT_EQ(arch->count(Kind::kDsb), 0u);
  // A real downgrade still flushes: read-write again, the pages written (the child
  // is gone: each write fault reuses its page, writable), then read-only.
  kernel->exit_mmap(ctx, child);
  kernel->mm_destroy(child);
  ASSERT_EQ(kernel->sys_mprotect(ctx, p, va, 8 * kPageSize, true, true, false), 0);
  for (unsigned i = 0; i < 8; ++i)
    ASSERT_EQ(kernel->handle_mm_fault(ctx, p, va + i * kPageSize, kFaultWrite), FaultResult::kOk);
  ASSERT_TRUE(kernel->codec().write(*pte_of(p, va)));
  arch->clear_events();
  ASSERT_EQ(kernel->sys_mprotect(ctx, p, va, 8 * kPageSize, true, false, false), 0);
  EXPECT_GE(arch->count(Kind::kTlbi), 1u);
  kernel->exit_mmap(ctx, p);
  EXPECT_EQ(check_invariants(*kernel), "");
}

}  // namespace
}  // namespace tlbsim::mm::testing
