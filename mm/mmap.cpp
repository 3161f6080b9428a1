// mmap/munmap and VMA bookkeeping (mm/mmap.c, mm/vma.c).
#include <algorithm>
#include <cerrno>
#include <optional>

#include "mm/kernel.h"
#include "mm/mmap_lock.h"
#include "mm/mmu_gather.h"

namespace tlbsim::mm {

AnonVma* Kernel::anon_vma_prepare(ExecContext& ctx, Vma& vma) {
  // Mirrors mm/rmap.c:__anon_vma_prepare(): a new anon_vma, linked under its own
  // lock and mm->page_table_lock, where the VMA is checked again (another fault
  // may have prepared it meanwhile). Reusing a mergeable neighbour's anon_vma is
  // not modelled; each VMA that faults first gets its own.
  if (vma.anon_vma()) return vma.anon_vma();
  ctx.count(KOp::kAnonVmaLink);
  m_anon_vmas.push_back(std::make_unique<AnonVma>(nullptr));
  AnonVma* av = m_anon_vmas.back().get();
  ScopedLock av_lock(ctx, av->rwsem);
  ScopedLock ptl(ctx, vma.mm()->page_table_lock);
  if (vma.anon_vma()) return vma.anon_vma();  // lost the race: the new one stays unused
  av->vmas().push_back(&vma);
  vma.set_anon_vma(av);
  return av;
}

void Kernel::unlink_anon_vmas(ExecContext& ctx, Vma& vma) {
  // Mirrors mm/rmap.c:unlink_anon_vmas(): the VMA leaves its anon_vma under the
  // root's lock (rmap walks hold it for read while they visit the VMA).
  AnonVma* av = vma.anon_vma();
  if (!av) return;
  ScopedLock lock(ctx, av->root()->rwsem);
  std::erase(av->vmas(), &vma);
  vma.set_anon_vma(nullptr);
}

Vma* Kernel::vma_create(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end, uint64_t flags) {
  // Mirrors mm/vma.c:__mmap_region(): vma_merge_new_range() extends an adjacent
  // anonymous VMA with identical flags (and contiguous pgoff); otherwise a new VMA
  // (vm_area_alloc) is stored in the maple tree.
  ctx.count(KOp::kMapleStore);
  auto it = mm.vmas().lower_bound(start.value());
  Vma* next = it != mm.vmas().end() && it->second->start() == end && it->second->flags() == flags &&
                      it->second->is_anonymous() && it->second->pgoff() == end.vpn()
                  ? it->second.get()
                  : nullptr;
  if (it != mm.vmas().begin()) {
    Vma* prev = std::prev(it)->second.get();
    if (prev->end() == start && prev->flags() == flags && prev->is_anonymous() &&
        prev->pgoff() + prev->nr_pages() == start.vpn()) {
      ctx.count(KOp::kVmaModify);
      prev->set_range(prev->start(), end, prev->pgoff());
      // prev, the new range and next in one VMA (the anon_vmas must agree).
      if (next && (!prev->anon_vma() || !next->anon_vma() || prev->anon_vma() == next->anon_vma()))
        vma_merge_existing_range(ctx, mm, prev);
      return prev;
    }
  }
  if (next) {
    // The new range goes in front of next: next grows down (vma_expand).
    ctx.count(KOp::kVmaModify);
    auto node = mm.vmas().extract(next->start().value());
    next->set_range(start, next->end(), start.vpn());
    node.key() = start.value();
    mm.vmas().insert(std::move(node));
    return next;
  }
  ctx.count(KOp::kVmaAlloc);
  auto vma = std::make_unique<Vma>(&mm, start, end, flags, start.vpn());
  Vma* raw = vma.get();
  mm.vmas().emplace(start.value(), std::move(vma));
  return raw;
}

bool Kernel::vma_mergeable(const Vma& prev, const Vma& next) {
  // is_mergeable_vma() + is_mergeable_anon_vma() + the pgoff check of
  // can_vma_merge_after(): same flags and file, contiguous offsets, the same anon_vma
  // (or none on one side).
  if (prev.end() != next.start() || prev.flags() != next.flags() || prev.file() != next.file())
    return false;
  if (prev.pgoff() + prev.nr_pages() != next.pgoff()) return false;
  return !prev.anon_vma() || !next.anon_vma() || prev.anon_vma() == next.anon_vma();
}

Vma* Kernel::vma_merge_existing_range(ExecContext& ctx, Mm& mm, Vma* vma) {
  // Mirrors mm/vma.c:vma_merge_existing_range() after vma_modify(): a VMA whose flags
  // just changed merges with a compatible previous and/or next neighbour, so a
  // protect-and-restore round trip ends with the VMAs it started with. Returns the
  // VMA that now covers `vma`'s range.
  auto it = mm.vmas().find(vma->start().value());
  if (it != mm.vmas().begin()) {
    Vma* prev = std::prev(it)->second.get();
    if (vma_mergeable(*prev, *vma)) {
      ctx.count(KOp::kVmaModify);
      ctx.count(KOp::kMapleStore);
      vma_start_write(ctx, *prev);
      if (!prev->anon_vma() && vma->anon_vma()) {
        ScopedLock lock(ctx, vma->anon_vma()->root()->rwsem);  // vma_prepare
        prev->set_anon_vma(vma->anon_vma());
        vma->anon_vma()->vmas().push_back(prev);
      }
      prev->set_range(prev->start(), vma->end(), prev->pgoff());
      vma_remove(ctx, mm, vma);
      vma = prev;
      it = mm.vmas().find(vma->start().value());
    }
  }
  if (auto next = std::next(it); next != mm.vmas().end() && vma_mergeable(*vma, *next->second)) {
    Vma* nv = next->second.get();
    ctx.count(KOp::kVmaModify);
    ctx.count(KOp::kMapleStore);
    vma_start_write(ctx, *vma);
    vma_start_write(ctx, *nv);
    if (!vma->anon_vma() && nv->anon_vma()) {
      ScopedLock lock(ctx, nv->anon_vma()->root()->rwsem);  // vma_prepare
      vma->set_anon_vma(nv->anon_vma());
      nv->anon_vma()->vmas().push_back(vma);
    }
    vma->set_range(vma->start(), nv->end(), vma->pgoff());
    vma_remove(ctx, mm, nv);
  }
  return vma;
}

void Kernel::vma_split(ExecContext& ctx, Mm& mm, Vma& vma, VirtAddr at) {
  // Mirrors mm/vma.c:__split_vma(), mmap_lock held for write: the new VMA takes
  // [at, end) and shares anon_vma; vma_start_write() first (faults in flight on the
  // VMA finish), the anon_vma locked around the change (vma_prepare/vma_complete).
  // vma_adjust_trans_huge(): a PMD-mapped THP straddling `at` is split first.
  vma_start_write(ctx, vma);
  if (!at.is_aligned(kPmdSize)) split_huge_pmd_address(ctx, vma, at, false);
  ctx.count(KOp::kVmaAlloc);   // vm_area_dup
  ctx.count(KOp::kVmaModify);  // vma_adjust / vma_complete
  ctx.count(KOp::kMapleStore);
  if (vma.anon_vma()) ctx.count(KOp::kAnonVmaLink);  // anon_vma_clone
  auto tail = std::make_unique<Vma>(&mm, at, vma.end(), vma.flags(),
                                    vma.pgoff() + ((at - vma.start()) >> kPageShift));
  tail->set_file(vma.file());
  tail->vm_lock_seq = mm.mm_lock_seq;  // write-locked as it is created
  std::optional<ScopedLock> lock;
  if (vma.anon_vma()) {
    lock.emplace(ctx, vma.anon_vma()->root()->rwsem);
    tail->set_anon_vma(vma.anon_vma());
    vma.anon_vma()->vmas().push_back(tail.get());
  }
  vma.set_range(vma.start(), at, vma.pgoff());
  mm.vmas().emplace(at.value(), std::move(tail));
}

void Kernel::vma_remove(ExecContext& ctx, Mm& mm, Vma* vma) {
  // remove_vma() + vma_iter_clear: unlink_anon_vmas, vm_area_free. mmap_lock is
  // held for write; faults in flight on the VMA finish first (vma_start_write).
  ctx.count(KOp::kVmaFree);
  vma_start_write(ctx, *vma);
  unlink_anon_vmas(ctx, *vma);
  mm.vmas().erase(vma->start().value());
}

namespace {
// -errno as sys_mmap() returns it.
constexpr uint64_t mmap_error(int e) { return static_cast<uint64_t>(-static_cast<int64_t>(e)); }
}  // namespace

uint64_t Kernel::task_size() const {
  return m_arch.arch() == Arch::kArm64 ? kTaskSizeArm64
         : m_arch.pgtable_levels() == 5 ? kTaskSizeX86La57
                                        : kTaskSizeX86;
}

std::optional<VirtAddr> Kernel::unmapped_area_topdown(const Mm& mm, uint64_t len, uint64_t align,
                                                      uint64_t high_limit) const {
  // Mirrors mm/vma.c:unmapped_area_topdown(): walk the gaps between VMAs from
  // high_limit down; the first (highest) gap [gap_start, gap_end) that holds len at
  // `align` wins, the mapping placed at its top. The low limit is mmap_min_addr
  // (64 KiB, the x86-64 and arm64 default of CONFIG_DEFAULT_MMAP_MIN_ADDR).
  constexpr uint64_t kLowLimit = 64 << 10;
  if (len > high_limit || high_limit - len < kLowLimit) return std::nullopt;
  uint64_t gap_end = high_limit;
  auto it = mm.vmas().lower_bound(gap_end);  // the first VMA starting at or above it
  for (;;) {
    uint64_t gap_start = kLowLimit;
    const Vma* below = nullptr;
    if (it != mm.vmas().begin()) {
      below = std::prev(it)->second.get();
      gap_start = std::max(gap_start, below->end().value());
    }
    if (gap_start < gap_end && gap_end - gap_start >= len) {
      const uint64_t cand = (gap_end - len) & ~(align - 1);
      if (cand >= gap_start) return VirtAddr(cand);
    }
    if (!below) return std::nullopt;
    gap_end = std::min(gap_end, below->start().value());
    if (gap_end < kLowLimit + len) return std::nullopt;
    --it;
  }
}

std::optional<VirtAddr> Kernel::thp_get_unmapped_area(const Mm& mm, uint64_t len) const {
  // Mirrors mm/huge_memory.c:__thp_get_unmapped_area() for an anonymous mapping
  // (off = 0, no hint): search for len + PMD_SIZE, then place the mapping at the
  // first PMD boundary inside; top-down, an already aligned area gives its upper
  // part ("if (test_bit(MMF_TOPDOWN, ...) && !off_sub) return ret + size").
  if (len < kPmdSize || len + kPmdSize < len) return std::nullopt;
  auto ret = unmapped_area_topdown(mm, len + kPmdSize, kPageSize, mm.mmap_base.value());
  if (!ret) return std::nullopt;
  const uint64_t off_sub = (0 - ret->value()) & (kPmdSize - 1);
  if (off_sub == 0) return VirtAddr(ret->value() + kPmdSize);
  return VirtAddr(ret->value() + off_sub);
}

bool Kernel::thp_align_anon(uint64_t len) const {
  // __get_unmapped_area() (profile switch thp_anon_align): "len_ge_pmd" THP-aligns
  // every anonymous private mapping the padded search can align (len >= PMD_SIZE);
  // "pmd_multiple" only lengths that are a multiple of PMD_SIZE; "none" never.
  switch (m_thp_anon_align) {
    case ThpAnonAlign::kLenGePmd: return len >= kPmdSize;
    case ThpAnonAlign::kPmdMultiple: return (len & (kPmdSize - 1)) == 0;
    default: return false;
  }
}

std::optional<VirtAddr> Kernel::get_unmapped_area_anon(const Mm& mm, uint64_t len,
                                                       uint64_t align) const {
  // __get_unmapped_area() → arch_get_unmapped_area_topdown() → vm_unmapped_area():
  // the highest gap below mmap_base that holds len at the requested alignment; no
  // gap is left between mappings. Large anonymous mappings are THP-aligned first
  // (thp_get_unmapped_area_vmflags) where the version does it.
  std::optional<VirtAddr> found;
  if (align < kPmdSize && thp_align_anon(len)) found = thp_get_unmapped_area(mm, len);
  if (!found) found = unmapped_area_topdown(mm, len, align, mm.mmap_base.value());
  // arch_get_unmapped_area_topdown(): "A failed mmap() very likely causes
  // application failure, so fall back to the bottom-up function here". The
  // fallback here searches [mmap_base, TASK_SIZE) top-down as well (Linux:
  // bottom-up from mmap_legacy_base; reached only when everything below is full).
  if (!found) found = unmapped_area_topdown(mm, len, align, task_size());
  return found;
}

uint64_t Kernel::sys_mmap(ExecContext& ctx, Mm& mm, const MmapArgs& a) {
  // Mirrors mm/mmap.c:do_mmap() for anonymous mappings, with the argument checks of
  // do_mmap() and __get_unmapped_area() / arch_get_unmapped_area().
  ctx.count(KOp::kSyscallEntry);
  if (a.len == 0) return mmap_error(EINVAL);
  if (a.shared && a.file < 0) {
    // Shared anonymous memory is shmem in Linux; not modelled yet.
    throw InputError("", "not supported yet: MAP_SHARED anonymous mappings");
  }
  if (a.file >= 0 && !m_page_cache.valid(a.file)) return mmap_error(EBADF);
  if (a.file_offset & (kPageSize - 1)) return mmap_error(EINVAL);
  // len = PAGE_ALIGN(len); if (!len) return -ENOMEM: the rounding wrapped.
  const uint64_t len = (a.len + kPageSize - 1) & kPageMask;
  if (len == 0) return mmap_error(ENOMEM);
  // pgoff + (len >> PAGE_SHIFT) < pgoff: the file range wraps.
  const uint64_t pgoff = a.file_offset >> kPageShift;
  if (a.file >= 0 && pgoff + (len >> kPageShift) < pgoff) return mmap_error(EOVERFLOW);
  const uint64_t task_size = this->task_size();
  if (len > task_size) return mmap_error(ENOMEM);
  // vm_mmap_pgoff(): mmap_lock for write; MAP_POPULATE after it is dropped.
  MmapLockGuard lock(ctx, mm, LockMode::kExclusive);
  VirtAddr start;
  if (a.fixed) {
    // __get_unmapped_area(): if (addr > TASK_SIZE - len) return -ENOMEM;
    // if (offset_in_page(addr)) return -EINVAL.
    if (a.addr > task_size - len) return mmap_error(ENOMEM);
    if (a.addr & (kPageSize - 1)) return mmap_error(EINVAL);
    start = VirtAddr(a.addr);
    int r = do_munmap(ctx, mm, start, len, /*downgrade=*/false);  // MAP_FIXED replaces it
    if (r) return mmap_error(-r);
  } else {
    // __get_unmapped_area() → arch_get_unmapped_area_topdown() → vm_unmapped_area():
    // the highest gap below mmap_base that holds len at the requested alignment;
    // no gap is left between mappings. Large anonymous mappings are THP-aligned
    // first (thp_get_unmapped_area_vmflags) where the version does it.
    const uint64_t align = std::max<uint64_t>(a.align, kPageSize);
    if (align > task_size || (align & (align - 1))) return mmap_error(ENOMEM);
    std::optional<VirtAddr> found;
    if (a.file < 0 && !a.shared) {
      found = get_unmapped_area_anon(mm, len, align);
    } else {
      found = unmapped_area_topdown(mm, len, align, mm.mmap_base.value());
      if (!found) found = unmapped_area_topdown(mm, len, align, task_size);
    }
    if (!found) return mmap_error(ENOMEM);
    start = *found;
  }
  uint64_t flags = kVmMayWrite | a.extra_vm_flags;
  if (a.read) flags |= kVmRead;
  if (a.write) flags |= kVmWrite;
  if (a.exec) flags |= kVmExec;
  if (a.shared) flags |= kVmShared;
  if (a.file >= 0)
    mmap_file_vma(ctx, mm, start, start + len, flags, a.file, a.file_offset >> kPageShift);
  else
    vma_create(ctx, mm, start, start + len, flags);
  lock.unlock();
  // mm_populate() → __mm_populate(): mmap_lock for read; populate_vma_page_range()
  // with FOLL_WRITE only for private writable mappings. A PROT_NONE mapping
  // populates nothing: __get_user_pages() stops at check_vma_flags() (-EFAULT,
  // which mmap ignores).
  if (a.populate && (a.read || a.write || a.exec)) {
    const bool write = a.write && !a.shared;
    MmapLockGuard read(ctx, mm, LockMode::kShared);
    for (VirtAddr v = start; v < start + len; v += kPageSize) {
      if (populate_page(ctx, mm, v, write) == FaultResult::kOom) return mmap_error(ENOMEM);
      if (((v - start) >> kPageShift) % 512 == 511) ctx.progress();  // cond_resched
    }
  }
  return start.value();
}

int Kernel::sys_munmap(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t len) {
  // Mirrors mm/mmap.c:__vm_munmap(): mmap_lock for write, downgraded to read before
  // the page tables are zapped.
  ctx.count(KOp::kSyscallEntry);
  mmap_write_lock(ctx, mm);
  bool downgraded = false;
  const int r = do_munmap(ctx, mm, addr, len, /*downgrade=*/true, &downgraded);
  if (downgraded) {
    mmap_read_unlock(ctx, mm);
  } else {
    mmap_write_unlock(ctx, mm);
  }
  return r;
}

int Kernel::do_munmap(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t len, bool downgrade,
                      bool* downgraded) {
  // Mirrors mm/vma.c:do_vmi_munmap() → vms_gather_munmap_vmas() /
  // vms_complete_munmap_vmas(). mmap_lock is held for write; with `downgrade` it is
  // downgraded once the VMAs are detached (they are unreachable: their write locks
  // go with the downgrade), then the page tables are zapped and freed under the
  // read lock, the final flush included.
  CauseScope cause(ctx, ctx.cause == FlushCause::kNone ? FlushCause::kMunmap : ctx.cause);
  if (!addr.is_aligned(kPageSize) || len == 0) return -EINVAL;
  const VirtAddr start = addr;
  const VirtAddr end = addr + ((len + kPageSize - 1) & kPageMask);
  if (end <= start) return -EINVAL;
  // Split the VMAs straddling the edges.
  if (Vma* v = mm.find_vma(start); v && v->start() < start) vma_split(ctx, mm, *v, start);
  if (Vma* v = mm.find_vma(end - 1); v && v->end() > end) vma_split(ctx, mm, *v, end);
  std::vector<Vma*> victims;
  for (auto it = mm.vmas().lower_bound(start.value());
       it != mm.vmas().end() && it->second->start() < end; ++it)
    victims.push_back(it->second.get());
  if (victims.empty()) return 0;
  // Neighbours bound the page tables that may be freed.
  VirtAddr floor(0), ceiling(0);
  {
    auto first = mm.vmas().find(victims.front()->start().value());
    if (first != mm.vmas().begin()) floor = std::prev(first)->second->end();
    auto after = mm.vmas().find(victims.back()->start().value());
    if (++after != mm.vmas().end()) ceiling = after->second->start();
  }
  // vms_gather_munmap_vmas(): vma_start_write() each (faults in flight on them
  // finish first), then detach: a fault racing with the teardown finds no VMA.
  for (Vma* v : victims) vma_start_write(ctx, *v);
  std::vector<std::unique_ptr<Vma>> detached;
  ctx.count(KOp::kMapleStore);  // vma_iter_clear_gfp: one range cleared
  for (Vma* v : victims) {
    v->detached = true;
    detached.push_back(std::move(mm.vmas().extract(v->start().value()).mapped()));
  }
  if (downgrade) {
    mmap_write_downgrade(ctx, mm);
    *downgraded = true;
  }
  {
    // unmap_region(): zap, free_pgtables (unlink_anon_vmas first), tlb_finish_mmu.
    MmuGather tlb(*this, ctx, mm, /*fullmm=*/false);
    unmap_vmas(tlb, victims, start, end);
    for (Vma* v : victims) unlink_anon_vmas(ctx, *v);
    free_pgtables(tlb, victims.front()->start(), victims.back()->end(), floor, ceiling);
    tlb.tlb_finish_mmu();
  }
  ctx.count(KOp::kVmaFree, detached.size());  // remove_vma
  return 0;
}

}  // namespace tlbsim::mm
