// Helpers shared by the fault tests: a KernelFixture that each test builds after
// setting the profile switches it asserts on, plus lookups of what the page
// tables map. The invariant checker runs after every fixture operation.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "base/error.h"
#include "mm/folio.h"
#include "tests/unit/mm/kernel_fixture.h"

namespace tlbsim::mm::testing {

class FaultFixture : public KernelFixture {
 protected:
  // Each test sets `profile` first and then calls build() itself (once).
  void SetUp() override {}

  /// Enables exactly the given mTHP sizes ("always"); every other size "never".
  void enable_thp_sizes(std::initializer_list<unsigned> orders, const char* top = "never") {
    profile.thp.enabled.set(top);
    for (unsigned o = kMinAnonThpOrder; o <= kPmdOrder; ++o) per_size(o).set("never");
    for (unsigned o : orders) per_size(o).set("always");
  }
  Param<std::string>& per_size(unsigned order) {
    return const_cast<Param<std::string>&>(profile.thp.per_size(order));
  }

  /// An anonymous private mapping aligned to `align`.
  VirtAddr map_anon(Mm& mm, uint64_t len, uint64_t align = kPmdSize, uint64_t vm_flags = 0,
                    bool write = true) {
    MmapArgs a;
    a.len = len;
    a.align = align;
    a.write = write;
    a.extra_vm_flags = vm_flags;
    const int64_t r = kernel->sys_mmap(ctx[0], mm, a);
    EXPECT_GT(r, 0);
    check();
    return VirtAddr(static_cast<uint64_t>(r));
  }
  /// A file mapping of `len` bytes of `file` at byte `offset`.
  VirtAddr map_file(Mm& mm, int64_t file, uint64_t len, bool shared, uint64_t offset = 0,
                    bool write = true, uint64_t align = kPmdSize) {
    MmapArgs a;
    a.len = len;
    a.file = file;
    a.file_offset = offset;
    a.shared = shared;
    a.write = write;
    a.align = align;
    const int64_t r = kernel->sys_mmap(ctx[0], mm, a);
    EXPECT_GT(r, 0);
    check();
    return VirtAddr(static_cast<uint64_t>(r));
  }

  /// The PTE mapping `va`, or 0 (no PTE table, or a huge PMD covers it).
  uint64_t pte(Mm& mm, VirtAddr va) {
    ExecContext scratch;
    uint64_t* p = kernel->page_tables().walk(scratch, mm, va, 1, false);
    return p ? *p : 0;
  }
  uint64_t pmd(Mm& mm, VirtAddr va) {
    ExecContext scratch;
    uint64_t* p = kernel->page_tables().walk(scratch, mm, va, 2, false);
    return p ? *p : 0;
  }
  /// The folio mapped at `va` by a PTE or a huge PMD (empty Folio if none).
  Folio folio_at(Mm& mm, VirtAddr va) {
    const uint64_t m = pmd(mm, va);
    if (kernel->codec().huge(m)) return Folio::of(*pm, kernel->codec().pfn(m));
    const uint64_t e = pte(mm, va);
    if (!kernel->codec().present(e)) return Folio();
    return Folio::of(*pm, kernel->codec().pfn(e));
  }
  Pfn pfn_at(Mm& mm, VirtAddr va) { return kernel->codec().pfn(pte(mm, va)); }
  const PteCodec& codec() const { return kernel->codec(); }
  VmStat& vmstat() { return kernel->vmstat(); }
  uint64_t rmap_calls() { return kernel->vmstat().rmap_calls.value(); }
  MthpStats& mthp(unsigned order) { return *kernel->vmstat().mthp[order]; }

  FaultResult fault(Mm& mm, VirtAddr va, bool write, unsigned cpu = 0) {
    const FaultResult r =
        kernel->handle_mm_fault(ctx[cpu], mm, va, write ? static_cast<uint32_t>(kFaultWrite) : 0u);
    check();
    return r;
  }
  /// The message of the InputError `fn` throws ("" if none).
  template <class Fn>
  std::string input_error(Fn fn) {
    try {
      fn();
    } catch (const InputError& e) {
      return e.message();
    }
    return "";
  }
};

}  // namespace tlbsim::mm::testing
