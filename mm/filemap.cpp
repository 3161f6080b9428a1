// File mappings: the page cache (mm/filemap.c) and the file fault paths of
// mm/memory.c built on it (do_fault → do_read_fault with fault-around,
// do_cow_fault, do_shared_fault; finish_fault and set_pte_range), kept together
// because each only makes sense with the other.
//
// The simulated files stand for a disk filesystem with dirty accounting and no
// ->page_mkwrite: shared writable mappings are write-notify (their PTEs start
// read-only, the first write to a page faults and dirties its folio in
// wp_page_shared), private ones COW into anonymous folios. Regular files are
// mapped one page per fault (finish_fault maps whole large folios only for shmem);
// fault-around maps runs of a large folio with one rmap call. PMD-sized
// page-cache folios (do_set_pmd, filemap_map_pmd) are not modelled.
#include <algorithm>
#include <bit>
#include <cerrno>
#include <stdexcept>
#include <string>

#include "mm/fault.h"
#include "mm/folio.h"
#include "mm/kernel.h"

namespace tlbsim::mm {

// --- the page cache --------------------------------------------------------------------

int64_t PageCache::create(uint64_t nr_pages, unsigned folio_order, uint64_t* allocated) {
  *allocated = 0;
  if (nr_pages == 0) return -EINVAL;
  const int64_t id = static_cast<int64_t>(m_files.size());
  File file;
  file.nr_pages = nr_pages;
  file.pfn.resize(nr_pages);
  std::vector<Pfn> heads;
  for (uint64_t index = 0; index < nr_pages;) {
    // Folios are naturally aligned in the file and do not extend past its end.
    unsigned order = folio_order;
    while (order > 0 &&
           ((index & ((uint64_t{1} << order) - 1)) || index + (uint64_t{1} << order) > nr_pages))
      --order;
    std::optional<Pfn> pfn;
    for (;; --order) {
      pfn = m_pm.alloc_folio(order);
      if (pfn || order == 0) break;
    }
    if (!pfn) {
      for (Pfn h : heads) {
        m_pm.page(h).refcount = 0;
        m_pm.free_folio(h, "PageCache::create (out of memory)");
      }
      *allocated = 0;
      return -ENOMEM;
    }
    const uint64_t nr = uint64_t{1} << order;
    Page& head = m_pm.page(*pfn);
    head.set(kPgFile);
    head.mapping = static_cast<uint64_t>(id);
    head.index = index;
    head.refcount = static_cast<int32_t>(nr);  // the page cache's references
    for (uint64_t i = 0; i < nr; ++i) file.pfn[index + i] = pfn->value() + i;
    heads.push_back(*pfn);
    index += nr;
    *allocated += nr;
  }
  m_files.push_back(std::move(file));
  return id;
}

int64_t Kernel::create_file(uint64_t nr_pages, unsigned folio_order) {
  if (folio_order >= kPmdOrder)
    throw InputError("", "not supported yet: PMD-sized page-cache folios (file folio order " +
                             std::to_string(folio_order) + "; at most " +
                             std::to_string(kPmdOrder - 1) + ")");
  uint64_t allocated = 0;
  const int64_t id = m_page_cache.create(nr_pages, folio_order, &allocated);
  m_vmstat.pgalloc += allocated;
  if (id >= 0) {
    // filemap_add_folio → folio_add_lru: page-cache folios are reclaimable.
    for (uint64_t i = 0; i < nr_pages;) {
      const Pfn head = *m_page_cache.lookup(id, i);
      m_lru.add(head);
      i += Folio(m_pm, head).nr_pages();
    }
  }
  return id;
}

unsigned Kernel::fault_around_pages_of(uint64_t bytes) {
  // Mirrors mm/memory.c:fault_around_bytes_set(): a power of two, at least one page,
  // at most one PTE table.
  const uint64_t pages = std::bit_floor(bytes) >> kPageShift;
  return static_cast<unsigned>(std::clamp<uint64_t>(pages, 1, kPtrsPerTable));
}

Vma* Kernel::mmap_file_vma(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end,
                           uint64_t flags, int64_t file, uint64_t pgoff) {
  // mmap_region() for a file: a VMA whose vm_pgoff is the file page at `start`.
  // Merging with a neighbouring mapping of the same file is not modelled.
  ctx.count(KOp::kVmaAlloc);
  ctx.count(KOp::kMapleStore);
  auto vma = std::make_unique<Vma>(&mm, start, end, flags, pgoff);
  vma->set_file(file);
  Vma* raw = vma.get();
  mm.vmas().emplace(start.value(), std::move(vma));
  return raw;
}

// --- do_fault -------------------------------------------------------------------------

FaultResult Kernel::do_fault(ExecContext& ctx, VmFault& vmf) {
  // Mirrors mm/memory.c:do_fault(): a none PTE in a file mapping.
  ++m_vmstat.pgfault_file;
  if (vmf.pgoff >= m_page_cache.nr_pages(vmf.vma.file()))
    return FaultResult::kSegv;  // VM_FAULT_SIGBUS: beyond the end of the file
  if (!vmf.write()) return do_read_fault(ctx, vmf);
  if (!vmf.vma.test(kVmShared)) return do_cow_fault(ctx, vmf);
  return do_shared_fault(ctx, vmf);
}

FaultResult Kernel::do_read_fault(ExecContext& ctx, VmFault& vmf) {
  // Mirrors mm/memory.c:do_read_fault(): ->map_pages (fault-around) first; ->fault
  // only when the faulting page was not mapped by it.
  if (m_fault_around_pages > 1 && do_fault_around(ctx, vmf)) return FaultResult::kOk;
  const Pfn page = filemap_fault(ctx, vmf);  // __do_fault
  if (!page.value()) return FaultResult::kOom;
  return finish_fault(ctx, vmf, Folio::of(m_pm, page), page);
}

FaultResult Kernel::do_cow_fault(ExecContext& ctx, VmFault& vmf) {
  // Mirrors mm/memory.c:do_cow_fault(): a write to a private file mapping copies
  // the cached page into a new anon folio mapped in its place.
  if (const FaultResult r = vmf_anon_prepare(ctx, vmf); r != FaultResult::kOk) return r;
  auto pfn = alloc_folio_reclaim(ctx, 0);  // folio_prealloc(need_zero = false)
  if (!pfn) {
    ++m_vmstat.oom;
    return FaultResult::kOom;
  }
  ++m_vmstat.pgalloc;
  const Pfn page = filemap_fault(ctx, vmf);
  if (!page.value()) {
    folio_put_refs(ctx, *pfn, 1, "do_cow_fault(oom)");
    return FaultResult::kOom;
  }
  ctx.copy_pages(*pfn, page);  // copy_mc_user_highpage
  const FaultResult r = finish_fault(ctx, vmf, Folio(m_pm, *pfn), *pfn);
  folio_put_refs(ctx, m_pm.folio_head(page), 1, "do_cow_fault");  // put_page(vmf->page)
  return r;
}

FaultResult Kernel::do_shared_fault(ExecContext& ctx, VmFault& vmf) {
  // Mirrors mm/memory.c:do_shared_fault(): map the cached page writable and dirty
  // the folio (fault_dirty_shared_page → folio_mark_dirty). No ->page_mkwrite.
  const Pfn page = filemap_fault(ctx, vmf);
  if (!page.value()) return FaultResult::kOom;
  Folio folio = Folio::of(m_pm, page);
  const FaultResult r = finish_fault(ctx, vmf, folio, page);
  folio.head().set(kPgDirty);
  return r;
}

bool Kernel::do_fault_around(ExecContext& ctx, VmFault& vmf) {
  // Mirrors mm/memory.c:do_fault_around(): fault_around_pages PTEs aligned to their
  // size, clamped to the VMA and to the PTE table. True when the faulting page was
  // mapped (VM_FAULT_NOPAGE).
  const uint64_t nr_pages = m_fault_around_pages;
  const uint64_t pte_off = level_index(vmf.address, 1);
  const uint64_t vma_off = vmf.pgoff - vmf.vma.pgoff();  // fault page's offset in the VMA
  const uint64_t from_pte =
      std::max(pte_off & ~(nr_pages - 1), pte_off - std::min(pte_off, vma_off));
  const uint64_t to_pte = std::min({from_pte + nr_pages, uint64_t{kPtrsPerTable},
                                    pte_off + vmf.vma.nr_pages() - vma_off}) - 1;
  return filemap_map_pages(ctx, vmf, vmf.pgoff + from_pte - pte_off,
                           vmf.pgoff + to_pte - pte_off);
}

bool Kernel::filemap_map_pages(ExecContext& ctx, VmFault& vmf, uint64_t start_pgoff,
                               uint64_t end_pgoff) {
  // Mirrors mm/filemap.c:filemap_map_pages(): every cached folio in [start_pgoff,
  // end_pgoff] (clamped to the end of the file) maps its runs of none PTEs, one
  // set_pte_range (one rmap call) and one folio_ref_add per run
  // (filemap_map_folio_range / filemap_map_order0_folio). All cached folios are
  // uptodate and unlocked here, so next_uptodate_folio() never skips one.
  Vma& vma = vmf.vma;
  const int64_t file = vma.file();
  end_pgoff = std::min(end_pgoff, m_page_cache.nr_pages(file) - 1);
  if (start_pgoff > end_pgoff) return false;
  auto addr_of = [&](uint64_t index) { return vma.start() + ((index - vma.pgoff()) << kPageShift); };
  Pfn table_pfn;
  KernelLock* ptl = pte_offset_map_lock(ctx, m_pm, m_codec, vmf.pmd, &table_pfn);
  if (!ptl) return false;
  uint64_t* table = m_pm.table(table_pfn).data();
  int64_t rss = 0;
  bool mapped_fault = false;
  for (uint64_t index = start_pgoff; index <= end_pgoff;) {
    const Pfn first = *m_page_cache.lookup(file, index);
    if (!first.value()) {  // dropped by reclaim: only ->fault reads it back
      ++index;
      continue;
    }
    Folio folio = Folio::of(m_pm, first);
    ctx.count(KOp::kAtomic);  // next_uptodate_folio: folio_try_get
    ctx.count(KOp::kLock);    // folio_trylock (and its unlock)
    const uint64_t last =
        std::min<uint64_t>(folio.head().index + folio.nr_pages() - 1, end_pgoff);
    unsigned count = 0;
    uint64_t run = index;
    auto map_run = [&] {
      if (!count) return;
      const VirtAddr a = addr_of(run);
      const Pfn page = folio.pfn() + (run - folio.head().index);
      set_pte_range(ctx, vmf, folio, page, count, a, table + level_index(a, 1));
      rss += count;
      folio.ref_add(static_cast<int32_t>(count));
      ctx.count(KOp::kAtomic);
      if (vmf.address >= a && vmf.address < a + uint64_t{count} * kPageSize) mapped_fault = true;
      count = 0;
    };
    for (uint64_t i = index; i <= last; ++i) {
      ctx.count(KOp::kPteRead);
      if (PteCodec::none(m_arch.ptep_get(table + level_index(addr_of(i), 1)))) {
        if (!count) run = i;
        ++count;
      } else {
        map_run();  // a mapped entry (or a marker) ends the run and is skipped
      }
    }
    map_run();
    ctx.count(KOp::kAtomic);  // folio_put
    index = last + 1;
  }
  ctx.unlock(*ptl);
  vmf.mm.add_rss(kMmFilePages, rss);
  m_vmstat.fault_around_pages += static_cast<uint64_t>(rss);
  return mapped_fault;
}

Pfn Kernel::filemap_fault(ExecContext& ctx, VmFault& vmf) {
  // Mirrors mm/filemap.c:filemap_fault() on a page-cache hit: the page, with a
  // reference for the caller and the folio locked (the lock/unlock is one
  // round trip). Every page of a simulated file is cached.
  auto page = m_page_cache.lookup(vmf.vma.file(), vmf.pgoff);
  if (!page) throw std::logic_error("filemap_fault beyond the end of the file");
  if (!page->value()) page = page_cache_read(ctx, vmf.vma.file(), vmf.pgoff);
  if (!page->value()) return Pfn();
  Folio::of(m_pm, *page).ref_add(1);
  ctx.count(KOp::kAtomic);
  ctx.count(KOp::kLock);
  return *page;
}

Pfn Kernel::page_cache_read(ExecContext& ctx, int64_t file, uint64_t index) {
  // Mirrors mm/filemap.c:page_cache_ra_order() for one order-0 folio (no
  // readahead): allocate, add to the page cache and the LRU, read from the file.
  // Pfn() when memory runs out even after direct reclaim.
  auto pfn = alloc_folio_reclaim(ctx, 0);
  if (!pfn) return Pfn();
  ++m_vmstat.pgalloc;
  ++m_vmstat.pgmajfault;
  ctx.zero_pages(*pfn);  // the read from the backing file fills the page
  Page& head = m_pm.page(*pfn);
  head.set(kPgFile);
  head.mapping = static_cast<uint64_t>(file);
  head.index = index;  // the allocation's reference becomes the cache's
  m_page_cache.insert(file, index, *pfn, 1);
  ctx.count(KOp::kLruAdd);
  m_lru.add(ctx, *pfn, false);
  return *pfn;
}

FaultResult Kernel::finish_fault(ExecContext& ctx, VmFault& vmf, Folio folio, Pfn page) {
  // Mirrors mm/memory.c:finish_fault() for a regular file: one page. The caller's
  // reference on `folio` becomes the mapping's (for COW, `folio` is the new anon
  // folio).
  const bool is_cow = vmf.write() && !vmf.vma.test(kVmShared);
  Pfn table;
  KernelLock* ptl = pte_offset_map_lock(ctx, m_pm, m_codec, vmf.pmd, &table);
  uint64_t* pte = ptl ? &m_pm.table(table)[level_index(vmf.address, 1)] : nullptr;
  ctx.count(KOp::kPteRead);
  if (!ptl || !PteCodec::none(m_arch.ptep_get(pte))) {
    // Another CPU mapped it meanwhile (vmf_pte_changed): drop our reference.
    if (ptl) ctx.unlock(*ptl);
    folio_put_refs(ctx, folio.pfn(), 1, "finish_fault(raced)");
    return FaultResult::kRetry;
  }
  set_pte_range(ctx, vmf, folio, page, 1, vmf.address, pte);
  vmf.mm.add_rss(is_cow ? kMmAnonPages : kMmFilePages, 1);
  ctx.unlock(*ptl);
  return FaultResult::kOk;
}

void Kernel::set_pte_range(ExecContext& ctx, VmFault& vmf, Folio folio, Pfn page, unsigned nr,
                           VirtAddr addr, uint64_t* ptep) {
  // Mirrors mm/memory.c:set_pte_range(): `nr` PTEs for pages [page, page + nr) of
  // `folio` at `addr`. Prefaulted (fault-around) entries are old where the arch
  // wants it (arm64 with hardware AF); a write maps writable and dirty; a write to
  // a private mapping maps the COW copy (folio_add_new_anon_rmap), otherwise one
  // folio_add_file_rmap_ptes call for the run.
  Vma& vma = vmf.vma;
  const bool write = vmf.write();
  const bool prefault = !(vmf.address >= addr && vmf.address < addr + uint64_t{nr} * kPageSize);
  uint64_t entry = m_codec.mk_pte(page, vm_page_prot(vma));
  if (prefault && m_codec.arch() == Arch::kArm64) entry = m_codec.mkold(entry);
  if (write) entry = maybe_mkwrite(m_codec, m_codec.mkdirty(entry), vma);
  if (write && !vma.test(kVmShared)) {
    if (nr != 1) throw std::logic_error("set_pte_range: COW of more than one page");
    m_rmap.folio_add_new_anon_rmap(ctx, folio, vma, addr, kRmapExclusive);
  } else if (m_rmap_batching) {
    m_rmap.folio_add_file_rmap_ptes(ctx, folio, page, nr, vma);
  } else {
    // Profiles without rmap batching: one rmap call per PTE.
    for (unsigned i = 0; i < nr; ++i) m_rmap.folio_add_file_rmap_pte(ctx, folio, page + i, vma);
  }
  m_arch.set_ptes(ctx, vmf.mm, addr, ptep, entry, nr);
  ctx.count(KOp::kPteWrite, nr);
}

}  // namespace tlbsim::mm
