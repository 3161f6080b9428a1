// struct vm_fault (include/linux/mm.h): the state one page fault carries through
// handle_mm_fault() → __handle_mm_fault() → handle_pte_fault() and the fault
// handlers of mm/memory.c, mm/huge_memory.c and mm/filemap.c. Shared by
// memory.cpp, huge_memory.cpp and filemap.cpp; nothing outside the fault path
// needs it.
#pragma once

#include <bit>
#include <cstdint>
#include <string>

#include "base/error.h"

#include "mm/kernel.h"

namespace tlbsim::mm {

struct Kernel::VmFault {
  VmFault(Mm& m, Vma& v, VirtAddr addr, uint32_t f)
      : mm(m), vma(v), address(addr.page_align_down()), flags(f),
        pgoff(v.linear_page_index(address)) {}

  Mm& mm;
  Vma& vma;
  VirtAddr address;  // the faulting page (vmf->address is page aligned)
  uint32_t flags;    // FaultFlags
  uint64_t pgoff;    // linear_page_index(vma, address)
  /// The PMD entry covering `address` and the PMD table holding it (the deposit
  /// list of PMD-mapped THPs hangs off that table, like Linux's pmd_huge_pte).
  uint64_t* pmd = nullptr;
  Pfn pmd_table;
  uint64_t orig_pmd = 0;
  /// The PTE (valid once the PMD points at a PTE table) and its value at entry.
  uint64_t* pte = nullptr;
  uint64_t orig_pte = 0;
  /// The PTE table's lock while the handler holds it (vmf->ptl).
  KernelLock* ptl = nullptr;

  bool write() const { return flags & kFaultWrite; }
  /// Under the per-VMA lock rather than mmap_lock (FAULT_FLAG_VMA_LOCK).
  bool vma_locked() const { return flags & kFaultVmaLock; }
};


/// vm_page_prot: what a freshly faulted PTE may allow before maybe_mkwrite().
/// Private mappings never have the write bit in vm_page_prot (protection_map's
/// PAGE_COPY: the first write goes through COW, or maybe_mkwrite on a write
/// fault); shared file mappings are write-notify (the simulated files do dirty
/// accounting), so their PTEs also start read-only and the first write faults.
inline PgProt vm_page_prot(const Vma& vma) {
  PgProt p = vma.page_prot();
  p.write = false;
  return p;
}

/// maybe_mkwrite(): the entry made writable when the VMA allows writes.
inline uint64_t maybe_mkwrite(const PteCodec& c, uint64_t entry, const Vma& vma) {
  return vma.test(kVmWrite) ? c.mkwrite(entry) : entry;
}

/// THP_ORDERS_ALL_ANON: anonymous THP orders 2..PMD_ORDER (order 1 cannot be
/// queued for deferred split, so it is never THP).
inline constexpr uint32_t kThpOrdersAllAnon = ((1u << (kPmdOrder + 1)) - 1) & ~3u;

/// highest_order(): the largest order in a bitmap of orders (which must not be empty).
inline unsigned highest_order(uint32_t orders) {
  return 31u - static_cast<unsigned>(std::countl_zero(orders));
}
/// next_order(): drops `prev` from `orders`; the next highest order (0 when none is left).
inline unsigned next_order(uint32_t& orders, unsigned prev) {
  orders &= ~(1u << prev);
  return orders ? highest_order(orders) : 0;
}

/// A Linux path the simulator does not model yet: a clear error, never a silent
/// substitute.
[[noreturn]] inline void fault_not_supported(const std::string& what) {
  throw InputError("", "not supported yet: " + what);
}

}  // namespace tlbsim::mm
