// Page-walker step sequences and latencies (plain C++: the core MMUs need no
// SystemC). Page tables are built by the real kernel (mm/) on InstantArch /
// InstantArm64Arch; the walker reads them from the simulated frames. Latencies
// follow the presets: cold = every read from DRAM, warm = walk-cache / PWC hit and
// the PTE line in the walker's L1.
#include <gtest/gtest.h>

#include <memory>

#include "base/file_util.h"
#include "mm/folio.h"
#include "mm/instant_arch.h"
#include "mm/instant_arch_arm64.h"
#include "mm/kernel.h"
#include "mm/page_table.h"
#include "models/arm64/arm64_core_mmu.h"
#include "models/x86/x86_core_mmu.h"

#ifndef TLBSIM_SOURCE_DIR
#define TLBSIM_SOURCE_DIR "."
#endif

namespace tlbsim {
namespace {

/// A kernel of either architecture with one mm, plus a core MMU reading its tables.
struct Machine {
  explicit Machine(const std::string& preset, unsigned levels = 4, bool contig = true) {
    Json j =
        read_json_file(std::string(TLBSIM_SOURCE_DIR) + "/configs/machines/" + preset + ".json");
    j["pgtable_levels"] = levels;
    if (j.contains("arm64")) j["arm64"]["contig_as_one_entry"] = contig;
    mp.load(j, "/machine");
    mem = std::make_unique<CacheHierarchy>(mp.cache, std::vector<unsigned>{0});
    pm = std::make_unique<mm::PhysMem>(512ull << 20);
    arm = mp.arch() == "arm64";
    if (arm) {
      mm::Arm64ArchConfig cfg;
      cfg.phys = pm.get();
      a64 = std::make_unique<mm::InstantArm64Arch>(cfg, &stats);
      kernel = std::make_unique<mm::Kernel>(profile, *pm, *a64, &stats);
      core64 = std::make_unique<arm64::Arm64CoreMmu>(0, mp, *pm, *mem, &stats);
    } else {
      mm::X86ArchConfig cfg;
      cfg.pgtable_levels = levels;
      ax86 = std::make_unique<mm::InstantArch>(cfg, &stats);
      kernel = std::make_unique<mm::Kernel>(profile, *pm, *ax86, &stats);
      corex86 = std::make_unique<x86::X86CoreMmu>(0, mp, *pm, *mem, &stats);
    }
    mm = &kernel->mm_create(ctx);
    kernel->arch().switch_mm(ctx, *mm);
  }
  VirtAddr mmap(uint64_t len) {
    mm::MmapArgs a;
    a.len = len;
    a.align = 2ull << 20;
    return VirtAddr(static_cast<uint64_t>(kernel->sys_mmap(ctx, *mm, a)));
  }
  void fault(VirtAddr va) {
    ASSERT_EQ(kernel->handle_mm_fault(ctx, *mm, va, mm::kFaultWrite), mm::FaultResult::kOk);
  }
  /// A PMD (2 MiB) leaf at va, as a PMD-mapped THP would be.
  void map_huge(VirtAddr va) {
    auto pfn = pm->alloc_folio(9);
    uint64_t* pmd = kernel->page_tables().walk(ctx, *mm, va, 2, true);
    *pmd = kernel->codec().mk_huge(*pfn, mm::PgProt{true, false, true});
  }
  /// A 64 KiB anon folio mapped with one set_ptes(16) (contpte on arm64).
  void map_folio64k(VirtAddr va) {
    auto pfn = pm->alloc_folio(4);
    uint64_t* pte = kernel->page_tables().walk(ctx, *mm, va, 1, true);
    const auto& c = kernel->codec();
    kernel->arch().set_ptes(
        ctx, *mm, va, pte, c.mkwrite(c.mkdirty(c.mk_pte(*pfn, mm::PgProt{true, false, true}))), 16);
  }
  XlatResult xlat(VirtAddr va, Access a = Access::kRead) {
    return arm ? core64->translate(va, a, mm->asid(), mm->pgd())
               : corex86->translate(va, a, mm::x86::kern_pcid(0), mm->pgd());
  }
  const CoreMmuCounters& counters() const { return arm ? core64->counters() : corex86->counters(); }
  const Tlb* l2() const { return arm ? core64->l2() : corex86->l2(); }

  MachineParams mp;
  mm::KernelProfile profile;
  StatGroup stats{""};
  std::unique_ptr<CacheHierarchy> mem;
  std::unique_ptr<mm::PhysMem> pm;
  bool arm = false;
  std::unique_ptr<mm::InstantArch> ax86;
  std::unique_ptr<mm::InstantArm64Arch> a64;
  std::unique_ptr<mm::Kernel> kernel;
  std::unique_ptr<x86::X86CoreMmu> corex86;
  std::unique_ptr<arm64::Arm64CoreMmu> core64;
  mm::ExecContext ctx{0};
  mm::Mm* mm = nullptr;
};

struct WalkCase {
  const char* preset;
  unsigned levels;
  uint64_t l2_hit, pwc_probe, dram, l1;
};

void check_cold_and_warm(const WalkCase& c) {
  Machine m(c.preset, c.levels);
  const VirtAddr va = m.mmap(4ull << 20);
  m.fault(va);
  m.fault(va + kPageSize);
  // Cold: every level read from memory; PWC / walk-cache probes miss.
  XlatResult r = m.xlat(va);
  ASSERT_FALSE(r.fault);
  EXPECT_EQ(m.counters().walk_reads, c.levels) << c.preset << ": one read per level";
  // x86 probes the PDE, PDPTE and PML4E caches (deepest first); arm64 probes its
  // walk cache once.
  const uint64_t probes = m.arm ? 1 : 3;
  EXPECT_EQ(r.cycles, c.l2_hit + probes * c.pwc_probe + c.levels * c.dram)
      << c.preset << " " << c.levels << "-level cold walk";
  // Warm: the next page shares the PTE table (walk-cache hit at the lowest non-leaf
  // level) and the PTE's cache line (walker L1 hit).
  r = m.xlat(va + kPageSize);
  EXPECT_EQ(m.counters().walk_reads, c.levels + 1u) << c.preset << ": warm walk reads the PTE only";
  EXPECT_EQ(r.cycles, c.l2_hit + c.pwc_probe + c.l1) << c.preset << " warm walk";
  // TLB hit: no walk.
  r = m.xlat(va + 8);
  EXPECT_EQ(r.cycles, 0u);
  EXPECT_EQ(m.counters().walks, 2u);
}

TEST(Walker, X86FourLevelColdAndWarm) {
  check_cold_and_warm({"x86_small", 4, 8, 1, 280, 5});
}
TEST(Walker, X86FiveLevelLa57ColdAndWarm) {
  check_cold_and_warm({"x86_small", 5, 8, 1, 280, 5});
}
TEST(Walker, Arm64FourLevel4KGranuleColdAndWarm) {
  check_cold_and_warm({"arm64_small", 4, 3, 1, 330, 4});
}

TEST(Walker, LargePagesEndTheWalkAtThePmd) {
  for (const char* preset : {"x86_small", "arm64_small"}) {
    Machine m(preset);
    const VirtAddr va = m.mmap(4ull << 20);
    m.map_huge(va);
    ASSERT_FALSE(m.xlat(va + 12345).fault) << preset;
    EXPECT_EQ(m.counters().walk_reads, 3u) << preset << ": a 2 MiB leaf is found at level 2";
    // The whole 2 MiB is one entry.
    for (uint64_t off = 0; off < (2ull << 20); off += kPageSize)
      EXPECT_FALSE(m.xlat(va + off).fault);
    EXPECT_EQ(m.counters().walks, 1u) << preset;
  }
}

TEST(Walker, Arm64AccessFlagAndDbmUpdates) {
  Machine m("arm64_small");
  const VirtAddr va = m.mmap(4ull << 20);
  m.fault(va);
  uint64_t* pte = m.kernel->page_tables().walk(m.ctx, *m.mm, va, 1, false);
  const auto& c = m.kernel->codec();
  *pte = c.mkold(c.mkclean(*pte));  // writable-clean (DBM, RDONLY), old
  ASSERT_FALSE(m.xlat(va).fault);
  EXPECT_TRUE(c.young(*pte)) << "hardware access flag update";
  EXPECT_FALSE(c.dirty(*pte)) << "a read does not dirty";
  ASSERT_FALSE(m.xlat(va, Access::kWrite).fault) << "DBM: a store to writable-clean succeeds";
  EXPECT_TRUE(c.dirty(*pte)) << "hardware dirty-state update cleared AP[2]";
  EXPECT_EQ(m.counters().ad_updates, 2u);
  *pte = c.wrprotect(*pte) & ~mm::arm64_bits::kDbm & ~mm::arm64_bits::kSwDirty;
  m.core64->tlbi(mm::arm64::TlbiOp{mm::arm64::TlbiKind::kVale1is, 3, m.mm->asid(), va.value(), 1});
  EXPECT_TRUE(m.xlat(va, Access::kWrite).fault) << "read-only without DBM: permission fault";
}

// Access rights on a hit and on a walk (issue 11). A TLB entry caches the rights it
// was filled with; an access it does not allow faults (and drops the entry) whether
// the entry came from a hit or a walk. x86 (SDM vol. 3A §4.6.1): a user access
// needs U/S at every level, a fetch needs XD clear at every level; arm64 (Arm ARM
// D8.4): an EL0 fetch needs UXN clear, checked on the TLB hit too.
TEST(Walker, X86NxAndUserSupervisorAreEnforcedOnWalkAndHit) {
  Machine m("x86_small");
  const VirtAddr va = m.mmap(4ull << 20);
  m.fault(va);
  m.fault(va + kPageSize);
  uint64_t* pte = m.kernel->page_tables().walk(m.ctx, *m.mm, va, 1, false);
  ASSERT_TRUE(*pte & mm::x86_bits::kNx) << "anonymous memory without PROT_EXEC is NX";
  ASSERT_FALSE(m.xlat(va).fault);
  EXPECT_TRUE(m.xlat(va, Access::kExec).fault) << "fetch through an NX entry (TLB hit)";
  EXPECT_TRUE(m.xlat(va, Access::kExec).fault) << "fetch through an NX PTE (walk)";
  *pte &= ~mm::x86_bits::kNx;
  EXPECT_FALSE(m.xlat(va, Access::kExec).fault) << "executable once XD is clear";
  // XD in a PMD entry forbids fetches from the whole table's range.
  uint64_t* pmd = m.kernel->page_tables().walk(m.ctx, *m.mm, va, 2, false);
  *pmd |= mm::x86_bits::kNx;
  m.corex86->invlpg(va, mm::x86::kern_pcid(0));
  EXPECT_TRUE(m.xlat(va, Access::kExec).fault) << "XD at the PMD level";
  EXPECT_FALSE(m.xlat(va).fault) << "reads are still allowed";
  // U/S clear at the leaf: a user access faults.
  uint64_t* pte2 = m.kernel->page_tables().walk(m.ctx, *m.mm, va + kPageSize, 1, false);
  *pte2 &= ~mm::x86_bits::kUser;
  EXPECT_TRUE(m.xlat(va + kPageSize).fault) << "supervisor page";
}

TEST(Walker, Arm64UxnIsCheckedOnATlbHit) {
  Machine m("arm64_small");
  const VirtAddr va = m.mmap(4ull << 20);
  m.fault(va);
  uint64_t* pte = m.kernel->page_tables().walk(m.ctx, *m.mm, va, 1, false);
  ASSERT_TRUE(*pte & mm::arm64_bits::kUxn) << "anonymous memory without PROT_EXEC is UXN";
  ASSERT_FALSE(m.xlat(va).fault);
  EXPECT_EQ(m.counters().walks, 1u);
  EXPECT_TRUE(m.xlat(va, Access::kExec).fault) << "EL0 fetch through a UXN entry (TLB hit)";
  EXPECT_EQ(m.counters().walk_faults, 1u) << "the hit faulted, dropped the entry and re-walked";
  *pte &= ~mm::arm64_bits::kUxn;
  EXPECT_FALSE(m.xlat(va, Access::kExec).fault) << "executable once UXN is clear";
}

TEST(Walker, ContpteBlockIsOne64KEntryAndTlbiByVaDropsIt) {
  Machine m("arm64_small");
  const VirtAddr va = m.mmap(4ull << 20);
  m.map_folio64k(va);
  for (unsigned i = 0; i < 16; ++i) ASSERT_FALSE(m.xlat(va + i * kPageSize).fault);
  EXPECT_EQ(m.counters().walks, 1u) << "16 pages, one 64 KiB entry";
  EXPECT_EQ(m.core64->contpte_fills, 1u);
  // A TLBI for any page inside the block drops the block's entry.
  m.core64->tlbi(mm::arm64::TlbiOp{mm::arm64::TlbiKind::kVale1is, 3, m.mm->asid(),
                                   (va + 9 * kPageSize).value(), 1});
  EXPECT_FALSE(m.core64->holds(va, m.mm->asid()));
}

TEST(Walker, Contpte64MiBSequentialTouchMisses16xLess) {
  // 64 MiB backed by 64 KiB folios, touched page by page: with contig_as_one_entry
  // the L2 TLB misses (= walks) once per block, without it once per page.
  uint64_t walks[2] = {0, 0};
  for (bool contig : {true, false}) {
    Machine m("arm64_small", 4, contig);
    const uint64_t len = 64ull << 20;
    const VirtAddr va = m.mmap(len);
    for (uint64_t off = 0; off < len; off += 64 * 1024) m.map_folio64k(va + off);
    for (uint64_t off = 0; off < len; off += kPageSize) ASSERT_FALSE(m.xlat(va + off).fault);
    walks[contig] = m.counters().walks;
    EXPECT_EQ(m.l2()->stats.misses, walks[contig]);
  }
  EXPECT_EQ(walks[1], (64ull << 20) / (64 * 1024));
  EXPECT_EQ(walks[0], 16 * walks[1]) << "contpte must cut misses exactly 16x on this pattern";
}

}  // namespace
}  // namespace tlbsim
