// get_user_pages with FOLL_PIN (mm/gup.c): pin_user_pages() of a range as io_uring
// fixed buffers (io_sqe_buffers_register) and RDMA memory registration
// (ib_umem_get) call it, FOLL_WRITE | FOLL_LONGTERM; unpin_user_pages().
//
// A pinned anonymous page is PageAnonExclusive and stays so: fork copies it for
// the child (copy_present_page, fork.cpp) instead of sharing it write-protected,
// so neither side takes a COW fault on it later. A pinned folio keeps its frame
// until the last unpin, whatever munmap or exit do to its mappings.
#include <cerrno>
#include <optional>
#include <stdexcept>

#include "mm/folio.h"
#include "mm/kernel.h"
#include "mm/mmap_lock.h"

namespace tlbsim::mm {

int Kernel::pin_user_pages(ExecContext& ctx, Mm& mm, VirtAddr start, uint64_t len,
                           std::vector<Pfn>& pages) {
  // Mirrors mm/gup.c:pin_user_pages_fast() (what io_uring's io_pin_pages and RDMA's
  // ib_umem_get call) with FOLL_WRITE | FOLL_LONGTERM: gup_fast pins, without
  // mmap_lock, the leading pages already mapped writable; the rest goes through
  // __gup_longterm_locked() → __get_user_pages() under mmap_read_lock:
  // check_vma_flags() (a hole or a VMA without VM_WRITE: -EFAULT), then
  // follow_page_mask() or faultin_page(). A short pin is unpinned by the caller,
  // which fails with -EFAULT (io_pin_pages); only a failure on the first page
  // passes its own errno (-ENOMEM). FOLL_LONGTERM would migrate pages out of
  // ZONE_MOVABLE / CMA first; this kernel has no zones.
  if (!start.is_aligned(kPageSize) || len == 0) return -EINVAL;
  const uint64_t nr = (len + kPageSize - 1) >> kPageShift;
  mm.has_pinned = true;  // gup_fast_fallback(): mm_set_has_pinned_flag() before any pin
  const size_t first = pages.size();
  uint64_t i = 0;
  for (; i < nr; ++i) {  // gup_fast_pgd_range(): lockless, interrupts off
    const std::optional<Pfn> page = try_grab_mapped_page(ctx, mm, start + (i << kPageShift));
    if (!page) break;
    pages.push_back(*page);
  }
  if (i == nr) return 0;
  int err = 0;
  {
    MmapLockGuard lock(ctx, mm, LockMode::kShared);
    for (; i < nr; ++i) {
      const VirtAddr va = start + (i << kPageShift);
      const Vma* vma = mm.find_vma(va);
      if (!vma || vma->start() > va || !vma->test(kVmWrite)) {
        err = -EFAULT;
        break;
      }
      const std::optional<Pfn> page = pin_user_page(ctx, mm, va);
      if (!page) {
        err = -ENOMEM;  // the VMA allows it: only the fault's allocation can fail
        break;
      }
      pages.push_back(*page);
      if (i % 512 == 511) ctx.progress();  // cond_resched() in __get_user_pages
    }
  }
  if (!err) return 0;
  if (pages.size() > first) err = -EFAULT;  // a short pin: io_pin_pages fails with -EFAULT
  std::vector<Pfn> got(pages.begin() + static_cast<std::ptrdiff_t>(first), pages.end());
  pages.resize(first);
  unpin_user_pages(ctx, got);
  return err;
}

void Kernel::unpin_user_pages(ExecContext& ctx, const std::vector<Pfn>& pages) {
  // mm/gup.c:unpin_user_pages(): one gup_put_folio() per page (the folio batching
  // of unpin_user_pages() merges consecutive pages of a folio; the count is the same).
  for (const Pfn p : pages) unpin_user_page(ctx, p);
}

std::optional<Pfn> Kernel::try_grab_mapped_page(ExecContext& ctx, Mm& mm, VirtAddr va) {
  // follow_page_mask() / gup_fast_pte_range() for FOLL_WRITE: a present, writable
  // mapping of a page other than the zero page gets try_grab_folio(FOLL_PIN).
  Pfn page;
  bool found = false;
  if (uint64_t* pte = m_pt.walk(ctx, mm, va, 1, false)) {
    const uint64_t e = m_arch.ptep_get(pte);
    ctx.count(KOp::kPteRead);
    found = m_codec.valid(e) && m_codec.write(e) && m_codec.pfn(e) != m_zero_pfn;
    page = m_codec.pfn(e);
  } else if (uint64_t* pmd = m_pt.walk(ctx, mm, va, 2, false);
             pmd && m_codec.huge(*pmd) && m_codec.valid(*pmd) && m_codec.write(*pmd)) {
    found = true;
    page = m_codec.pfn(*pmd) + ((va.value() & (kPmdSize - 1)) >> kPageShift);
  }
  if (!found) return std::nullopt;
  Folio folio = Folio::of(m_pm, page);
  ++m_vmstat.nr_foll_pin_acquired;  // node_stat_mod_folio(NR_FOLL_PIN_ACQUIRED, 1)
  if (folio.test_large()) {
    folio.ref_add(1);
    ++folio.lf().pincount;
    ctx.count(KOp::kAtomic, 2);
  } else {
    folio.ref_add(kGupPinCountingBias);
    ctx.count(KOp::kAtomic);
  }
  return page;
}

std::optional<Pfn> Kernel::pin_user_page(ExecContext& ctx, Mm& mm, VirtAddr va) {
  // One page of __get_user_pages(FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM) with
  // mmap_lock held for read: MMF_HAS_PINNED first; a page that is missing or not
  // mapped writable is write-faulted in by faultin_page() — handle_mm_fault() on the
  // VMA under the held lock, no FAULT_FLAG_USER — which breaks COW, so the pinned
  // anon page is PageAnonExclusive; then try_grab_folio(FOLL_PIN).
  mm.has_pinned = true;  // mm_set_has_pinned_flag()
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (const std::optional<Pfn> page = try_grab_mapped_page(ctx, mm, va)) return page;
    if (populate_page(ctx, mm, va, /*write=*/true) != FaultResult::kOk) return std::nullopt;
  }
  return std::nullopt;
}

void Kernel::unpin_user_page(ExecContext& ctx, Pfn page) {
  // Mirrors mm/gup.c:unpin_user_page() → gup_put_folio(folio, 1, FOLL_PIN).
  Folio folio = Folio::of(m_pm, page);
  if (!folio.maybe_dma_pinned()) throw std::logic_error("unpin_user_page of an unpinned page");
  ++m_vmstat.nr_foll_pin_released;  // NR_FOLL_PIN_RELEASED
  if (folio.test_large()) {
    --folio.lf().pincount;
    ctx.count(KOp::kAtomic);
    folio_put_refs(ctx, folio.pfn(), 1, "unpin_user_page");
  } else {
    folio_put_refs(ctx, folio.pfn(), kGupPinCountingBias, "unpin_user_page");
  }
}

}  // namespace tlbsim::mm
