// The fixture of the fork tests: a kernel on InstantArch (KernelFixture) plus
// helpers to build the states reference/linux-mm.md §11 starts from.
#pragma once

#include <gtest/gtest.h>

#include "mm/folio.h"
#include "tests/unit/mm/anon_folio_helper.h"
#include "tests/unit/mm/kernel_fixture.h"

namespace tlbsim::mm::testing {

class ForkFixture : public KernelFixture {
 protected:
  /// A private anonymous VMA of `len` bytes (2 MiB aligned) that already has its
  /// anon_vma, and no pages mapped: a page past the end is written, then unmapped.
  VirtAddr anon_area(Mm& mm, uint64_t len, uint64_t extra_vm_flags = 0) {
    MmapArgs a;
    a.len = len + kPageSize;
    a.align = kPmdSize;  // an aligned area (top-down placement aligns only 2 MiB multiples)
    a.extra_vm_flags = extra_vm_flags;
    const int64_t r = kernel->sys_mmap(ctx[0], mm, a);
    EXPECT_GT(r, 0);
    const VirtAddr va(static_cast<uint64_t>(r));
    touch(mm, va + len);
    munmap(mm, va + len, kPageSize);
    arch->clear_events();
    return va;
  }
  /// A 2^order anon folio mapped writable at `va` (see anon_folio_helper.h).
  Folio large(Mm& mm, VirtAddr va, unsigned order) {
    EXPECT_TRUE(anon_folio_fits(*kernel, ctx[0], mm, va, order));
    Folio f = map_anon_folio(*kernel, ctx[0], mm, va, order);
    EXPECT_TRUE(f);
    check();
    arch->clear_events();
    return f;
  }
  uint64_t pte(Mm& mm, VirtAddr va) {
    uint64_t* p = kernel->page_tables().walk(ctx[0], mm, va, 1, false);
    return p ? *p : 0;
  }
  Folio folio_at(Mm& mm, VirtAddr va) { return Folio::of(*pm, codec().pfn(pte(mm, va))); }
  const PteCodec& codec() const { return kernel->codec(); }
  Mm& fork(Mm& parent, unsigned cpu = 0) {
    Mm& child = kernel->dup_mmap(ctx[cpu], parent);
    check();
    return child;
  }
  uint64_t rmap_calls() const { return kernel->vmstat_const().rmap_calls.value(); }
  uint64_t fork_flushes() {
    return kernel->flush_stats().by_cause[static_cast<size_t>(FlushCause::kFork)]->full_mm.value();
  }
  /// The effect of dup_mmap's single flush_tlb_mm(parent) when the parent runs only
  /// on the forking CPU: one full local flush, no IPI.
  void expect_one_local_fork_flush() {
    EXPECT_EQ(events_where(ArchEvent::Kind::kFlushRequest, FlushCause::kFork), 1u);
    EXPECT_EQ(count(ArchEvent::Kind::kFlushRequest), 1u);
    EXPECT_EQ(count(ArchEvent::Kind::kLocalFull), 1u);
    EXPECT_EQ(count(ArchEvent::Kind::kIpi), 0u);
  }
  void exit(Mm& mm) {
    kernel->exit_mmap(ctx[0], mm);
    kernel->mm_destroy(mm);
    check();
  }
};

}  // namespace tlbsim::mm::testing
