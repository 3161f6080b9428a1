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
  // Mirrors mm/gup.c:pin_user_pages() → __gup_longterm_locked() → __get_user_pages()
  // under mmap_read_lock: check_vma_flags() per VMA (no VMA or a hole: -EFAULT;
  // FOLL_WRITE on a VMA without VM_WRITE: -EFAULT), then per page follow_page_mask
  // or a write fault. A failure after some pages were pinned: the caller (io_uring,
  // ib_umem) unpins what it got and fails with the error, as here. FOLL_LONGTERM
  // would migrate pages out of ZONE_MOVABLE / CMA first; this kernel has no zones.
  if (!start.is_aligned(kPageSize) || len == 0) return -EINVAL;
  const uint64_t nr = (len + kPageSize - 1) >> kPageShift;
  MmapLockGuard lock(ctx, mm, LockMode::kShared);
  const size_t first = pages.size();
  int err = 0;
  for (uint64_t i = 0; i < nr; ++i) {
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
  if (!err) return 0;
  lock.unlock();
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

std::optional<Pfn> Kernel::pin_user_page(ExecContext& ctx, Mm& mm, VirtAddr va) {
  // Mirrors pin_user_pages(FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM) of one page
  // (mm/gup.c): MMF_HAS_PINNED is set first; a page that is missing or not mapped
  // writable is faulted in for write (which breaks COW, so the pinned anon page is
  // PageAnonExclusive); then try_grab_folio(FOLL_PIN).
  mm.has_pinned = true;  // mm_set_has_pinned_flag()
  for (int attempt = 0; attempt < 2; ++attempt) {
    Pfn page;
    bool found = false;
    if (uint64_t* pte = m_pt.walk(ctx, mm, va, 1, false)) {
      const uint64_t e = m_arch.ptep_get(pte);
      ctx.count(KOp::kPteRead);
      found = m_codec.present(e) && m_codec.write(e) && m_codec.pfn(e) != m_zero_pfn;
      page = m_codec.pfn(e);
    } else if (uint64_t* pmd = m_pt.walk(ctx, mm, va, 2, false);
               pmd && m_codec.huge(*pmd) && m_codec.write(*pmd)) {
      found = true;
      page = m_codec.pfn(*pmd) + ((va.value() & (kPmdSize - 1)) >> kPageShift);
    }
    if (found) {
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
    if (handle_mm_fault(ctx, mm, va, kFaultWrite | kFaultUser) != FaultResult::kOk)
      return std::nullopt;
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
