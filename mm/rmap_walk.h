// rmap walks (mm/rmap.c): from a folio to every place that may map it.
//
// rmap_walk() visits each VMA that may map the folio at the address where the folio
// would sit in it; PageVmaMappedWalk (mm/page_vma_mapped.c) then finds the entries
// of that VMA that really map pages of the folio. Clients supply an RmapWalkControl
// (struct rmap_walk_control): folio_referenced() here; try_to_unmap() and
// try_to_migrate() use the same walk.
//
// Anon folios: folio->mapping is an anon_vma A; Linux searches A's interval tree,
// which holds every VMA whose anon_vma chain includes A — the VMAs of A and of the
// anon_vmas forked from A, transitively. Here that set is A's subtree (each VMA is
// listed under its own anon_vma; AnonVma::children() links the forks), restricted
// to VMAs whose page offsets overlap the folio's [index, index + nr_pages).
// File folios: every VMA of a live mm that maps the folio's file at an overlapping
// offset (Linux: the address_space's i_mmap tree).
//
// Locking: the walk holds the anon_vma root's lock for read (not when the caller
// holds it: RmapWalkControl::locked; try_lock: a contended lock ends the walk, as
// folio_referenced does); the file walk counts the i_mmap lock. PageVmaMappedWalk
// holds the PTE table's (or PMD table's) lock while positioned on an entry.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "base/addr.h"
#include "mm/exec_context.h"
#include "mm/folio.h"

namespace tlbsim::mm {

class Kernel;
class Vma;

/// struct rmap_walk_control.
struct RmapWalkControl {
  /// rmap_one(folio, vma, address): one candidate VMA; `address` is where the
  /// folio's first page (or the VMA start, if the folio begins before the VMA) would
  /// be mapped. Return false to stop the walk.
  std::function<bool(Folio, Vma&, VirtAddr)> rmap_one;
  /// rmap_walk_locked(): the caller holds the anon_vma lock (the walk takes none),
  /// so it also runs for an unmapped folio (remove_migration_ptes after a split).
  bool locked = false;
  /// Walk an unmapped folio too (remove_migration_ptes: its entries are migration
  /// entries, not mappings).
  bool unmapped = false;
  /// done(folio): checked after each rmap_one; true stops the walk. Optional.
  std::function<bool(Folio)> done;
  /// invalid_vma(vma): true skips the VMA. Optional.
  std::function<bool(const Vma&)> invalid_vma;
  /// rwc->try_lock: anon_vma_trylock_read(); on contention the walk does nothing and
  /// sets `contended`.
  bool try_lock = false;
  mutable bool contended = false;
};

/// rmap_walk(): visit the VMAs that may map `folio` (anon or file). The folio must
/// be mapped or locked; unmapped anon folios have a stale mapping and are skipped.
void rmap_walk(Kernel& kernel, ExecContext& ctx, Folio folio, const RmapWalkControl& rwc);

/// vma_address(vma, pgoff, nr_pages): the address of page offset `pgoff` in `vma`,
/// clamped to the VMA start for a range that begins before it; nullopt when the
/// range [pgoff, pgoff + nr_pages) does not overlap the VMA.
std::optional<VirtAddr> vma_address(const Vma& vma, uint64_t pgoff, uint64_t nr_pages);

/// page_vma_mapped_walk(): iterates the entries of `vma` that map pages of
/// `folio`, starting at `address` (from rmap_one) up to where the folio ends in the
/// VMA. Usage: `for (PageVmaMappedWalk w(k, ctx, f, vma, a); w.next();) ...`.
class PageVmaMappedWalk {
 public:
  /// `migration` (PVMW_MIGRATION): find migration entries naming pages of the
  /// folio instead of present PTEs.
  PageVmaMappedWalk(Kernel& kernel, ExecContext& ctx, Folio folio, Vma& vma, VirtAddr address,
                    bool migration = false);
  /// page_vma_mapped_walk_done(): releases the table lock held.
  ~PageVmaMappedWalk() { done(); }
  PageVmaMappedWalk(const PageVmaMappedWalk&) = delete;
  PageVmaMappedWalk& operator=(const PageVmaMappedWalk&) = delete;
  void done();

  /// Advances to the next PTE (or the PMD) mapping a page of the folio.
  bool next();

  /// The current mapping: its address, and either the PTE or (PMD-mapped) the PMD.
  VirtAddr address() const { return m_addr; }
  uint64_t* pte() const { return m_pte; }
  uint64_t* pmd() const { return m_pmd; }
  /// The page mapped at address() (the head page for a PMD mapping).
  Pfn page() const { return m_page; }
  Vma& vma() const { return m_vma; }

 private:
  Kernel& m_k;
  ExecContext& m_ctx;
  Folio m_folio;
  Vma& m_vma;
  VirtAddr m_next;  // next address to examine
  VirtAddr m_end;   // where the folio ends in the VMA
  VirtAddr m_addr;
  uint64_t* m_pte = nullptr;
  uint64_t* m_pmd = nullptr;
  uint64_t* m_table = nullptr;  // current PTE table (entries of m_next's PMD)
  VirtAddr m_table_end;         // end of the range m_table covers
  KernelLock* m_ptl = nullptr;  // the lock held (PTE table's, or PMD table's)
  Pfn m_page;
  bool m_migration = false;
};

/// folio_referenced(): how many VMAs map the folio with the accessed bit set,
/// clearing the bits (ptep_clear_flush_young: no flush on x86). *vm_flags collects
/// the flags of referencing VMAs; VM_LOCKED stops the walk (the folio is mlocked).
int folio_referenced(Kernel& kernel, ExecContext& ctx, Folio folio, uint64_t* vm_flags);

}  // namespace tlbsim::mm
