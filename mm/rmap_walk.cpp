#include "mm/rmap_walk.h"

#include <algorithm>
#include <vector>

#include "mm/kernel.h"
#include "mm/page_table.h"

namespace tlbsim::mm {

std::optional<VirtAddr> vma_address(const Vma& vma, uint64_t pgoff, uint64_t nr_pages) {
  // Mirrors mm/internal.h:vma_address().
  if (pgoff >= vma.pgoff()) {
    const uint64_t off = pgoff - vma.pgoff();
    if (off >= vma.nr_pages()) return std::nullopt;
    return vma.start() + (off << kPageShift);
  }
  if (pgoff + nr_pages - 1 >= vma.pgoff()) return vma.start();
  return std::nullopt;
}

namespace {

/// Calls rmap_one for `vma` if it overlaps the folio; false when the walk must stop.
bool visit(Folio folio, Vma& vma, uint64_t pgoff, const RmapWalkControl& rwc) {
  const std::optional<VirtAddr> address = vma_address(vma, pgoff, folio.nr_pages());
  if (!address) return true;  // outside the interval-tree query
  if (rwc.invalid_vma && rwc.invalid_vma(vma)) return true;
  if (!rwc.rmap_one(folio, vma, *address)) return false;
  return !(rwc.done && rwc.done(folio));
}

void rmap_walk_anon(ExecContext& ctx, Folio folio, const RmapWalkControl& rwc) {
  // Mirrors mm/rmap.c:rmap_walk_anon(): the folio's anon_vma and every anon_vma
  // forked from it (see rmap_walk.h for why that is Linux's interval tree).
  auto* anon_vma = reinterpret_cast<AnonVma*>(folio.head().mapping);
  if (!anon_vma || (!rwc.locked && !rwc.unmapped && !folio.mapped())) return;
  KernelLock& lock = anon_vma->root()->rwsem;
  if (!rwc.locked) {
    // folio_lock_anon_vma_read() / anon_vma_trylock_read().
    if (rwc.try_lock) {
      if (!ctx.trylock(lock, LockMode::kShared)) {
        rwc.contended = true;
        return;
      }
    } else {
      ctx.lock(lock, LockMode::kShared);
    }
  }
  struct Unlock {
    ExecContext& ctx;
    KernelLock& lock;
    bool held;
    ~Unlock() {
      if (held) ctx.unlock(lock, LockMode::kShared);
    }
  } unlock{ctx, lock, !rwc.locked};
  const uint64_t pgoff = folio.head().index;
  std::vector<AnonVma*> stack{anon_vma};
  while (!stack.empty()) {
    AnonVma* av = stack.back();
    stack.pop_back();
    for (Vma* vma : av->vmas())
      if (!visit(folio, *vma, pgoff, rwc)) return;
    // Reverse so that older forks are visited first.
    for (auto it = av->children().rbegin(); it != av->children().rend(); ++it) stack.push_back(*it);
  }
}

void rmap_walk_file(Kernel& kernel, ExecContext& ctx, Folio folio, const RmapWalkControl& rwc) {
  // Mirrors mm/rmap.c:rmap_walk_file(): the VMAs of every live mm that map the
  // folio's file (folio->mapping holds the file id) over the folio's offsets.
  const auto file = static_cast<int64_t>(folio.head().mapping);
  ctx.count(KOp::kLock);  // i_mmap_lock_read
  const uint64_t pgoff = folio.head().index;
  for (const auto& mm : kernel.mms()) {
    for (auto& [start, vma] : mm->vmas()) {
      if (vma->file() != file) continue;
      if (!visit(folio, *vma, pgoff, rwc)) return;
    }
  }
}

}  // namespace

void rmap_walk(Kernel& kernel, ExecContext& ctx, Folio folio, const RmapWalkControl& rwc) {
  // Mirrors mm/rmap.c:rmap_walk() (KSM folios are not modelled).
  if (folio.test_anon()) {
    rmap_walk_anon(ctx, folio, rwc);
  } else if (folio.head().test(kPgFile)) {
    rmap_walk_file(kernel, ctx, folio, rwc);
  }
}

// --- page_vma_mapped_walk ---------------------------------------------------------------

PageVmaMappedWalk::PageVmaMappedWalk(Kernel& kernel, ExecContext& ctx, Folio folio, Vma& vma,
                                     VirtAddr address, bool migration)
    : m_k(kernel), m_ctx(ctx), m_folio(folio), m_vma(vma), m_next(address),
      m_migration(migration) {
  // vma_address_end(): where the folio's last page would end in this VMA.
  const auto end_off = static_cast<int64_t>(folio.head().index + folio.nr_pages()) -
                       static_cast<int64_t>(vma.pgoff());
  const auto nr = static_cast<int64_t>(vma.nr_pages());
  m_end = end_off < 0 || end_off > nr
              ? vma.end()
              : vma.start() + (static_cast<uint64_t>(end_off) << kPageShift);
}

void PageVmaMappedWalk::done() {
  if (m_ptl) m_ctx.unlock(*m_ptl);
  m_ptl = nullptr;
  m_table = nullptr;
}

bool PageVmaMappedWalk::next() {
  // Mirrors mm/page_vma_mapped.c:page_vma_mapped_walk(): PTEs whose pfn lies in the
  // folio, or a PMD mapping the folio, each returned with its table's lock held.
  const PteCodec& codec = m_k.codec();
  PhysMem& pm = m_k.phys();
  const Pfn first = m_folio.pfn();
  const uint64_t nr = m_folio.nr_pages();
  Mm& mm = *m_vma.mm();
  if (m_pmd) {  // a PMD mapping is returned once
    done();
    m_pmd = nullptr;
  }
  while (m_next < m_end) {
    if (!m_table || m_next >= m_table_end) {
      done();
      const VirtAddr pmd_end = std::min(m_end, m_next.align_down(kPmdSize) + kPmdSize);
      Pfn pmd_table;
      uint64_t* pmd = m_k.page_tables().walk(m_ctx, mm, m_next, 2, false, nullptr, &pmd_table);
      if (!pmd || PteCodec::none(*pmd)) {
        m_next = pmd_end;
        continue;
      }
      if (codec.huge(*pmd)) {
        const VirtAddr at = m_next;
        m_next = pmd_end;
        if (!m_migration && codec.present(*pmd) && codec.pfn(*pmd) == first) {
          m_ptl = &pm.ptl(pmd_table);  // pmd_lock
          m_ctx.lock(*m_ptl);
          if (!codec.huge(*pmd) || codec.pfn(*pmd) != first) {
            done();
            continue;
          }
          m_pmd = pmd;
          m_pte = nullptr;
          m_addr = at;
          m_page = first;
          return true;
        }
        continue;
      }
      Pfn table;
      m_ptl = pte_offset_map_lock(m_ctx, pm, codec, pmd, &table);
      if (!m_ptl) {
        m_next = pmd_end;
        continue;
      }
      m_table = pm.table(table).data();
      m_table_end = pmd_end;
    }
    uint64_t* ptep = &m_table[level_index(m_next, 1)];
    const uint64_t e = m_k.arch().ptep_get(ptep);
    m_ctx.count(KOp::kPteRead);
    const VirtAddr at = m_next;
    m_next += kPageSize;
    Pfn pfn;
    if (m_migration) {
      if (!codec.is_migration_pte(e)) continue;
      pfn = codec.migration_pfn(e);
    } else {
      if (!codec.present(e)) continue;
      pfn = codec.pfn(e);
    }
    if (pfn < first || pfn - first >= nr) continue;
    m_pte = ptep;
    m_pmd = nullptr;
    m_addr = at;
    m_page = pfn;
    return true;
  }
  done();
  return false;
}

// --- folio_referenced ---------------------------------------------------------------------

int folio_referenced(Kernel& kernel, ExecContext& ctx, Folio folio, uint64_t* vm_flags) {
  // Mirrors mm/rmap.c:folio_referenced() → folio_referenced_one(). Memcg filtering,
  // idle-page tracking and the exiting-mm shortcut are not modelled (an exited mm
  // has no VMAs left here).
  *vm_flags = 0;
  int64_t mapcount = folio.mapcount();
  if (mapcount == 0 || folio.head().mapping == 0) return 0;
  const PteCodec& codec = kernel.codec();
  int referenced = 0;
  RmapWalkControl rwc;
  rwc.try_lock = true;
  rwc.rmap_one = [&](Folio f, Vma& vma, VirtAddr address) {
    int young = 0;
    for (PageVmaMappedWalk w(kernel, ctx, f, vma, address); w.next();) {
      if (vma.test(kVmLocked)) {
        // mlock_vma_folio(): mlocked folios are not reclaimed; stop here.
        *vm_flags |= kVmLocked;
        return false;
      }
      uint64_t* e = w.pte() ? w.pte() : w.pmd();
      if (codec.young(*e)) {
        // ptep_clear_flush_young(): x86 clears the accessed bit without a flush (a
        // stale TLB entry only delays the next A-bit update); arm64 issues a TLBI.
        *e = codec.mkold(*e);
        ctx.count(KOp::kPteWrite);
        if (codec.arch() == Arch::kArm64) kernel.flush_tlb_page(ctx, *vma.mm(), w.address());
        ++young;
      }
      --mapcount;
    }
    if (young) {
      ++referenced;
      *vm_flags |= vma.flags() & ~static_cast<uint64_t>(kVmLocked);
    }
    return mapcount > 0;
  };
  rmap_walk(kernel, ctx, folio, rwc);
  if (rwc.contended) return -1;  // the rmap lock was contended: treat as referenced
  return referenced;
}

}  // namespace tlbsim::mm
