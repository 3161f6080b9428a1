// Randomized kernel-operation testing: long random sequences of mmap (anonymous,
// private and shared file mappings), touches (read/write), large anon folios,
// fork, COW writes, FOLL_PIN pins, munmap, mprotect, MADV_DONTNEED, MADV_FREE,
// MADV_COLD/PAGEOUT, reclaim, move_pages, the deferred-split shrinker, exit and CPU
// switches over up to six processes, with every invariant
// checked after every operation. Profiles linux-6.7, linux-6.9 and linux-6.15
// (2 seeds × 50,000 operations each), plus shorter runs with mTHP faults and with
// PMD THPs (PMD splits) on linux-6.15 and linux-6.7, and on arm64 (InstantArm64Arch,
// contpte blocks from 64 KiB folios: "@arm64"). Fixed seeds; a failure names the
// profile, the seed and the operation index, and
//   TLBSIM_PROPERTY_SEED=<seed> TLBSIM_PROPERTY_OPS=<index + 1>
//   mm_test --gtest_filter='*KernelProperty*<profile>'
// replays exactly the failing prefix.
//
// Checked after every operation: check_invariants() (mapcounts, refcounts, rss,
// MM-ID slots, free vs mapped frames, NR_ANON_MAPPED) plus the exclusivity rules
// of reference/linux-mm.md §1.5 (a writable anon PTE maps a PageAnonExclusive page;
// an exclusive page is mapped exactly once), one flush_tlb_mm(parent) per fork,
// and that an rmap walk from a random mapped folio finds exactly its mappings.
// At the end every process exits and every frame must be free again.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mm/kernel_versions.h"
#include "mm/folio.h"
#include "mm/instant_arch.h"
#include "mm/instant_arch_arm64.h"
#include "mm/invariants.h"
#include "mm/kernel.h"
#include "mm/rmap_walk.h"
#include "tests/unit/mm/anon_folio_helper.h"

namespace tlbsim::mm::testing {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kOpsPerSeed = 5'000;  // ASan is ~10x slower; keep the run short
#else
constexpr uint64_t kOpsPerSeed = 50'000;
#endif
constexpr uint64_t kSeeds[] = {0x5eed0001, 0x5eed0002};  // 2 × 50,000 ops per profile
constexpr unsigned kCpus = 4;
constexpr size_t kMaxProcs = 6;
constexpr size_t kMaxVmasPerProc = 6;
constexpr unsigned kMaxPinsPerProc = 3;
constexpr uint64_t kFilePages = 256;

/// The switches of configs/kernels/<name>.json; "<name>+mthp" also enables the
/// PTE-mapped anonymous THP sizes 16 KiB..1 MiB; "<name>+thp" enables PMD THPs
/// (and 64 KiB mTHP), so partial unmaps split PMDs.
void apply_profile(KernelProfile& p, const std::string& spec) {
  const std::string profile = spec.substr(0, spec.find('@'));
  const std::string name = profile.substr(0, profile.find('+'));
  p.name.set(name);
  p.version.set(name.substr(6));
  apply_version_defaults(p);  // mm/kernel_versions.cpp: the switches of that release
  const bool mthp_exists = *parse_kernel_version(p.version()) >= 608;
  if (profile.ends_with("+thp")) {
    // PMD THPs as well: partial unmaps split PMDs, the shrinker splits folios
    // (and 64 KiB mTHP from 6.8 on).
    p.thp.enabled.set("always");
    p.thp.hugepages_2048kB.set("inherit");
    if (mthp_exists) p.thp.hugepages_64kB.set("always");
  }
  if (profile.ends_with("+mthp")) {
    p.thp.enabled.set("never");
    for (auto* size : {&p.thp.hugepages_16kB, &p.thp.hugepages_32kB, &p.thp.hugepages_64kB,
                       &p.thp.hugepages_128kB, &p.thp.hugepages_256kB, &p.thp.hugepages_512kB,
                       &p.thp.hugepages_1024kB})
      size->set("always");
  }
  p.validate_all("");
}

uint64_t env_or(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 0) : fallback;
}

struct Proc {
  Mm* mm;
  std::vector<Pfn> pins;
};

/// One random run: a kernel on InstantArch and the processes living in it.
class PropertyRun {
 public:
  PropertyRun(const std::string& profile, uint64_t seed) : m_rng(seed) {
    apply_profile(m_profile, profile);
    m_stats = std::make_unique<StatGroup>("");
    m_pm = std::make_unique<PhysMem>(64ull << 20);
    if (profile.ends_with("@arm64")) {
      Arm64ArchConfig cfg;
      cfg.nr_cpus = kCpus;
      cfg.contpte = m_profile.arm64_contpte();
      cfg.phys = m_pm.get();
      auto a = std::make_unique<InstantArm64Arch>(cfg, m_stats.get());
      m_pm->set_observer(a.get());
      m_arch = std::move(a);
    } else {
      X86ArchConfig cfg;
      cfg.nr_cpus = kCpus;
      cfg.apply(m_profile);
      m_arch = std::make_unique<InstantArch>(cfg, m_stats.get());
    }
    m_k = std::make_unique<Kernel>(m_profile, *m_pm, *m_arch, m_stats.get());
    for (unsigned i = 0; i < kCpus; ++i) m_ctx.emplace_back(i);
    // Page-cache files to map (their folios stay cached: not part of the leak check).
    for (unsigned order : {0u, 2u, 4u}) m_files.push_back(m_k->create_file(kFilePages, order));
    m_initial_free = m_pm->nr_free_pages() + cached_pages();
  }
  /// Page-cache pages (reclaim drops some; faults read them back).
  uint64_t cached_pages() const {
    uint64_t n = 0;
    m_k->page_cache().for_each_folio([&](int64_t, Pfn head) { n += Folio(*m_pm, head).nr_pages(); });
    return n;
  }

  /// Runs one random operation; returns its description.
  std::string step() {
    if (m_procs.empty()) return new_process();
    const unsigned r = pick(100);
    if (r < 7) return op_mmap();
    if (r < 42) return op_touch(pick(100) < 60);
    if (r < 48) return op_touch_run();
    if (r < 56) return op_large();
    if (r < 62) return op_fork();
    if (r < 72) return op_cow_write();
    if (r < 78) return op_munmap();
    if (r < 81) return op_exit();
    if (r < 84) return op_pin();
    if (r < 87) return op_unpin();
    if (r < 91) return op_switch();
    if (r < 93) return pick(3) ? op_mprotect() : op_free();
    if (r < 95) return op_dontneed();
    if (r < 96) return op_shrink();
    if (r < 97) return pick(2) ? op_reclaim() : op_pageout();
    if (r < 98) return op_move_pages();
    return new_process_or_touch();
  }

  /// Every check of the file header; "" when all hold.
  std::string check() {
    std::string err = check_invariants(*m_k);
    if (err.empty()) err = check_exclusive();
    if (err.empty() &&
        m_k->flush_stats().by_cause[static_cast<size_t>(FlushCause::kFork)]->full_mm.value() !=
            m_forks)
      err = "fork flushes != forks (" + std::to_string(m_forks) + ")";
    if (err.empty()) err = check_rmap_walk();
    return err;
  }

  /// Unpins and exits everything; every frame must be free again.
  std::string teardown() {
    while (!m_procs.empty()) exit_proc(0);
    if (m_k->swap().stats().slots_used.value() != 0) {
      std::string d;
      for (uint64_t slot = 1; slot < m_k->swap().nr_slots(); ++slot) {
        const Pfn c = m_k->swap().cached(slot);
        if (!c.value()) continue;
        const Page& p = m_pm->page(c);
        d += " slot " + std::to_string(slot) + " count " + std::to_string(m_k->swap().count(slot)) +
             " ref " + std::to_string(p.refcount) + " map " + std::to_string(p.mapcount) +
             " flags " + std::to_string(p.flags & 0xffff);
      }
      return "swap slots still in use at the end:" + d;
    }
    if (m_pm->nr_free_pages() + cached_pages() != m_initial_free)
      return "leak: " + std::to_string(m_initial_free - m_pm->nr_free_pages() - cached_pages()) +
             " frames still allocated after every process exited";
    if (m_k->vmstat().nr_anon_mapped.value() != 0) return "NR_ANON_MAPPED != 0 at the end";
    return "";
  }

  uint64_t forks() const { return m_forks; }

 private:
  unsigned pick(unsigned n) { return static_cast<unsigned>(m_rng() % n); }
  ExecContext& ctx() { return m_ctx[0]; }
  Proc& any_proc() { return m_procs[pick(static_cast<unsigned>(m_procs.size()))]; }
  Vma* any_vma(Mm& mm) {
    if (mm.vmas().empty()) return nullptr;
    auto it = mm.vmas().begin();
    std::advance(it, pick(static_cast<unsigned>(mm.vmas().size())));
    return it->second.get();
  }
  /// A random page-aligned range inside `v`: its start and length in bytes.
  std::pair<VirtAddr, uint64_t> any_range(const Vma& v) {
    const uint64_t n = v.nr_pages();
    const uint64_t s = pick(static_cast<unsigned>(n));
    return {v.start() + s * kPageSize, (1 + pick(static_cast<unsigned>(n - s))) * kPageSize};
  }
  VirtAddr any_page(const Vma& v) {
    return v.start() + pick(static_cast<unsigned>(v.nr_pages())) * kPageSize;
  }
  uint64_t* pte_of(Mm& mm, VirtAddr va) { return m_k->page_tables().walk(ctx(), mm, va, 1, false); }
  static std::string at(const Mm& mm, VirtAddr va) {
    std::ostringstream s;
    s << " mm " << mm.mm_id() << " va 0x" << std::hex << va.value();
    return s.str();
  }

  std::string new_process() {
    Mm& mm = m_k->mm_create(ctx());
    m_arch->switch_mm(m_ctx[pick(kCpus)], mm);
    m_procs.push_back(Proc{&mm, {}});
    return "new process mm " + std::to_string(mm.mm_id());
  }
  std::string new_process_or_touch() {
    if (m_procs.size() < 2) return new_process();
    return op_touch(true);
  }

  std::string op_mmap() {
    Proc& p = any_proc();
    std::string what;
    if (p.mm->vmas().size() >= kMaxVmasPerProc) {
      // Make room: the whole VMA goes.
      Vma* v = any_vma(*p.mm);
      what = "munmap" + at(*p.mm, v->start()) + ", then ";
      if (m_k->sys_munmap(ctx(), *p.mm, v->start(), v->end() - v->start()) != 0)
        throw std::runtime_error("munmap failed");
    }
    MmapArgs a;
    const unsigned kind = pick(100);
    a.len = (kind < 85 ? 1 + pick(48) : 64 + pick(96)) * kPageSize;
    if (pick(100) < 25) {
      // A file mapping: private (COW) or shared.
      a.file = m_files[pick(static_cast<unsigned>(m_files.size()))];
      const uint64_t off = pick(static_cast<unsigned>(kFilePages - a.len / kPageSize));
      a.file_offset = off * kPageSize;
      a.shared = pick(100) < 40;
    }
    const unsigned flags = pick(100);
    if (flags < 3) {
      a.extra_vm_flags = kVmDontCopy;
    } else if (flags < 6) {
      a.extra_vm_flags = kVmWipeOnFork;
    }
    a.populate = pick(100) < 10;
    const int64_t r = m_k->sys_mmap(ctx(), *p.mm, a);
    if (r < 0) return "mmap failed " + std::to_string(r);
    return what + "mmap" + at(*p.mm, VirtAddr(static_cast<uint64_t>(r))) + " len " +
           std::to_string(a.len);
  }

  std::string op_touch(bool write) {
    Proc& p = any_proc();
    Vma* v = any_vma(*p.mm);
    if (!v) return op_mmap();
    const VirtAddr va = any_page(*v);
    const unsigned cpu = pick(kCpus);
    m_arch->switch_mm(m_ctx[cpu], *p.mm);
    const FaultResult fr = m_k->handle_mm_fault(m_ctx[cpu], *p.mm, va, write ? kFaultWrite : 0u);
    if (fr == FaultResult::kSegv && write && !v->test(kVmWrite))
      return "write to read-only" + at(*p.mm, va) + ": SIGSEGV";
    if (fr == FaultResult::kSegv && !v->test(kVmRead))
      return "read of PROT_NONE" + at(*p.mm, va) + ": SIGSEGV";
    if (fr != FaultResult::kOk) throw std::runtime_error("fault failed at" + at(*p.mm, va));
    return std::string(write ? "write" : "read") + at(*p.mm, va);
  }

  std::string op_touch_run() {
    // Write-fault a run of consecutive pages (populates whole PTE-table stretches).
    Proc& p = any_proc();
    Vma* v = any_vma(*p.mm);
    if (!v) return op_mmap();
    if (!v->test(kVmWrite)) return op_touch(false);
    const VirtAddr start = any_page(*v);
    const uint64_t n = std::min<uint64_t>(8 + pick(25), (v->end() - start) >> kPageShift);
    m_arch->switch_mm(ctx(), *p.mm);
    for (uint64_t i = 0; i < n; ++i) {
      const VirtAddr va = start + i * kPageSize;
      if (m_k->handle_mm_fault(ctx(), *p.mm, va, kFaultWrite) != FaultResult::kOk)
        throw std::runtime_error("fault failed at" + at(*p.mm, va));
    }
    return "write run of " + std::to_string(n) + at(*p.mm, start);
  }

  std::string op_large() {
    // What an mTHP fault would map: an aligned window of none PTEs.
    Proc& p = any_proc();
    Vma* v = any_vma(*p.mm);
    if (!v || !v->anon_vma() || !v->test(kVmWrite)) return op_touch(true);
    for (int attempt = 0; attempt < 8; ++attempt) {
      const unsigned order = 2 + pick(4);
      const VirtAddr va = any_page(*v).align_down(kPageSize << order);
      if (!anon_folio_fits(*m_k, ctx(), *p.mm, va, order)) continue;
      if (!map_anon_folio(*m_k, ctx(), *p.mm, va, order))
        throw std::runtime_error("out of memory mapping a large folio");
      return "large order " + std::to_string(order) + at(*p.mm, va);
    }
    return op_cow_write();
  }

  std::string op_fork() {
    if (m_procs.size() >= kMaxProcs) return op_exit();
    Proc& p = any_proc();
    const unsigned cpu = pick(kCpus);
    m_arch->switch_mm(m_ctx[cpu], *p.mm);
    Mm& child = m_k->dup_mmap(m_ctx[cpu], *p.mm);
    ++m_forks;
    const std::string what =
        "fork mm " + std::to_string(p.mm->mm_id()) + " -> " + std::to_string(child.mm_id());
    m_arch->switch_mm(m_ctx[pick(kCpus)], child);
    m_procs.push_back(Proc{&child, {}});
    return what;
  }

  std::string op_cow_write() {
    // Look for a present read-only PTE in a writable VMA and write to it.
    Proc& p = any_proc();
    Vma* v = any_vma(*p.mm);
    if (!v) return op_mmap();
    if (!v->test(kVmWrite)) return op_touch(false);
    const uint64_t n = v->nr_pages(), first = pick(static_cast<unsigned>(n));
    for (uint64_t i = 0; i < n; ++i) {
      const VirtAddr va = v->start() + ((first + i) % n) * kPageSize;
      uint64_t* pte = pte_of(*p.mm, va);
      if (pte && m_k->codec().present(*pte) && !m_k->codec().write(*pte)) {
        const unsigned cpu = pick(kCpus);
        m_arch->switch_mm(m_ctx[cpu], *p.mm);
        if (m_k->handle_mm_fault(m_ctx[cpu], *p.mm, va, kFaultWrite) != FaultResult::kOk)
          throw std::runtime_error("COW fault failed at" + at(*p.mm, va));
        return "cow write" + at(*p.mm, va);
      }
    }
    return op_touch(true);
  }

  std::string op_munmap() {
    Proc& p = any_proc();
    Vma* v = any_vma(*p.mm);
    if (!v) return op_mmap();
    VirtAddr start = v->start();
    uint64_t len = v->end() - v->start();
    if (pick(100) < 75) std::tie(start, len) = any_range(*v);
    if (m_k->sys_munmap(ctx(), *p.mm, start, len) != 0) throw std::runtime_error("munmap failed");
    return "munmap" + at(*p.mm, start) + " len " + std::to_string(len);
  }

  std::string op_dontneed() {
    Proc& p = any_proc();
    Vma* v = any_vma(*p.mm);
    if (!v) return op_mmap();
    const auto [start, len] = any_range(*v);
    if (m_k->sys_madvise(ctx(), *p.mm, start, len, Advice::kDontneed) != 0)
      throw std::runtime_error("MADV_DONTNEED failed");
    return "dontneed" + at(*p.mm, start) + " len " + std::to_string(len);
  }

  /// mprotect() of a random range of one VMA: PROT_NONE, read-only, read-write or
  /// read-write-exec (a shared file mapping may refuse write: -EACCES).
  std::string op_mprotect() {
    Proc& p = any_proc();
    Vma* v = any_vma(*p.mm);
    if (!v) return op_mmap();
    const auto [start, len] = any_range(*v);
    const unsigned prot = pick(4);
    const int r = m_k->sys_mprotect(ctx(), *p.mm, start, len, prot != 0, prot >= 2, prot == 3);
    if (r != 0 && r != -EACCES) throw std::runtime_error("mprotect failed: " + std::to_string(r));
    static const char* kProt[] = {"none", "r", "rw", "rwx"};
    return std::string("mprotect ") + kProt[prot] + at(*p.mm, start) + " len " +
           std::to_string(len) + (r ? " -> EACCES" : "");
  }

  /// MADV_FREE of a random range of one VMA (anonymous private only; else EINVAL).
  std::string op_free() {
    Proc& p = any_proc();
    Vma* v = any_vma(*p.mm);
    if (!v) return op_mmap();
    const auto [start, len] = any_range(*v);
    const int r = m_k->sys_madvise(ctx(), *p.mm, start, len, Advice::kFree);
    return "free" + at(*p.mm, start) + " len " + std::to_string(len) + " -> " + std::to_string(r);
  }

  /// The deferred-split shrinker (splits partially mapped folios, batched flush).
  std::string op_shrink() {
    const uint64_t n = m_k->deferred_split_scan(ctx(), 1 + pick(8));
    return "deferred_split_scan split " + std::to_string(n);
  }

  std::string op_reclaim() {
    const uint64_t n = m_k->reclaim(m_ctx[pick(kCpus)], 1 + pick(64));
    return "reclaim freed " + std::to_string(n);
  }
  std::string op_pageout() {
    Proc& p = any_proc();
    Vma* v = any_vma(*p.mm);
    if (!v) return "pageout (no VMA)";
    const VirtAddr a = any_page(*v);
    const uint64_t len = std::min<uint64_t>(v->end() - a, (1 + pick(32)) * kPageSize);
    const int r = m_k->sys_madvise(ctx(), *p.mm, a, len, pick(2) ? Advice::kPageout : Advice::kCold);
    if (r != 0) return "pageout/cold -> " + std::to_string(r);
    return "pageout/cold" + at(*p.mm, a);
  }
  std::string op_move_pages() {
    Proc& p = any_proc();
    Vma* v = any_vma(*p.mm);
    if (!v) return "move_pages (no VMA)";
    const VirtAddr a = any_page(*v);
    const uint64_t len = std::min<uint64_t>(v->end() - a, (1 + pick(32)) * kPageSize);
    const int64_t r = m_k->move_pages(m_ctx[pick(kCpus)], *p.mm, a, len);
    return "move_pages" + at(*p.mm, a) + " -> " + std::to_string(r);
  }

  std::string op_exit() {
    if (m_procs.size() < 2) return op_touch(false);
    const size_t i = pick(static_cast<unsigned>(m_procs.size()));
    const std::string what = "exit mm " + std::to_string(m_procs[i].mm->mm_id());
    exit_proc(i);
    return what;
  }
  void exit_proc(size_t i) {
    Proc p = m_procs[i];
    m_procs.erase(m_procs.begin() + static_cast<std::ptrdiff_t>(i));
    for (Pfn pin : p.pins) m_k->unpin_user_page(ctx(), pin);
    m_k->exit_mmap(ctx(), *p.mm);
    m_k->mm_destroy(*p.mm);
  }

  std::string op_pin() {
    Proc& p = any_proc();
    Vma* v = any_vma(*p.mm);
    if (!v || p.pins.size() >= kMaxPinsPerProc) return op_unpin();
    const VirtAddr va = any_page(*v);
    auto pin = m_k->pin_user_page(ctx(), *p.mm, va);
    // FOLL_WRITE on a VMA mprotect()ed read-only fails (check_vma_flags: -EFAULT).
    if (!pin && !v->test(kVmWrite)) return "pin of read-only" + at(*p.mm, va) + ": EFAULT";
    if (!pin) throw std::runtime_error("pin failed at" + at(*p.mm, va));
    p.pins.push_back(*pin);
    return "pin" + at(*p.mm, va);
  }

  std::string op_unpin() {
    Proc& p = any_proc();
    if (p.pins.empty()) return op_touch(false);
    const size_t i = pick(static_cast<unsigned>(p.pins.size()));
    m_k->unpin_user_page(ctx(), p.pins[i]);
    p.pins.erase(p.pins.begin() + static_cast<std::ptrdiff_t>(i));
    return "unpin mm " + std::to_string(p.mm->mm_id());
  }

  std::string op_switch() {
    const unsigned cpu = pick(kCpus);
    if (pick(100) < 30) {
      m_arch->enter_lazy_tlb(m_ctx[cpu]);
      return "cpu " + std::to_string(cpu) + " lazy";
    }
    Proc& p = any_proc();
    m_arch->switch_mm(m_ctx[cpu], *p.mm);
    return "cpu " + std::to_string(cpu) + " runs mm " + std::to_string(p.mm->mm_id());
  }

  /// §1.5: every writable anon PTE maps a PageAnonExclusive page, and an exclusive
  /// page is mapped by exactly one PTE.
  std::string check_exclusive() {
    std::unordered_map<uint64_t, unsigned> maps;
    std::string err;
    const PteCodec& c = m_k->codec();
    for (const Proc& p : m_procs) {
      for (auto& [start, v] : p.mm->vmas()) {
        for (VirtAddr va = v->start(); va < v->end();) {
          uint64_t* pte = pte_of(*p.mm, va);
          if (!pte) {
            va = va.align_down(kPmdSize) + kPmdSize;
            continue;
          }
          const VirtAddr table_end = std::min(v->end(), va.align_down(kPmdSize) + kPmdSize);
          for (; va < table_end; va += kPageSize, ++pte) {
            if (!c.present(*pte) || c.pfn(*pte) == m_k->zero_pfn()) continue;
            const Pfn pfn = c.pfn(*pte);
            ++maps[pfn.value()];
            const bool excl = m_pm->page(pfn).test(kPgAnonExclusive);
            if (c.write(*pte) && Folio::of(*m_pm, pfn).test_anon() && !excl && err.empty())
              err = "writable PTE of a non-exclusive anon page at" + at(*p.mm, va);
          }
        }
      }
    }
    for (auto& [pfn, n] : maps)
      if (n != 1 && m_pm->page(Pfn(pfn)).test(kPgAnonExclusive) && err.empty())
        err = "PageAnonExclusive page " + std::to_string(pfn) + " mapped " + std::to_string(n) +
              " times";
    return err;
  }

  /// An rmap walk from a random mapped folio finds every one of its PTE mappings.
  std::string check_rmap_walk() {
    if (m_procs.empty()) return "";
    Proc& p = any_proc();
    Vma* v = any_vma(*p.mm);
    if (!v) return "";
    const VirtAddr va = any_page(*v);
    uint64_t* pte = pte_of(*p.mm, va);
    if (!pte || !m_k->codec().present(*pte) || m_k->codec().pfn(*pte) == m_k->zero_pfn()) return "";
    Folio f = Folio::of(*m_pm, m_k->codec().pfn(*pte));
    int64_t found = 0;
    bool saw_origin = false;
    RmapWalkControl rwc;
    rwc.rmap_one = [&](Folio fo, Vma& vma, VirtAddr address) {
      for (PageVmaMappedWalk w(*m_k, ctx(), fo, vma, address); w.next();) {
        ++found;
        saw_origin |= vma.mm() == p.mm && w.address() == va;
      }
      return true;
    };
    rmap_walk(*m_k, ctx(), f, rwc);
    if (found != f.mapcount() || !saw_origin)
      return "rmap walk of folio " + std::to_string(f.pfn().value()) + " found " +
             std::to_string(found) + " mappings, folio_mapcount " + std::to_string(f.mapcount()) +
             (saw_origin ? "" : ", not the one") + " at" + at(*p.mm, va);
    return "";
  }

  std::mt19937_64 m_rng;
  KernelProfile m_profile;
  std::unique_ptr<StatGroup> m_stats;
  std::unique_ptr<PhysMem> m_pm;
  std::unique_ptr<ArchMmu> m_arch;
  std::unique_ptr<Kernel> m_k;
  std::vector<ExecContext> m_ctx;
  std::vector<Proc> m_procs;
  std::vector<int64_t> m_files;
  uint64_t m_initial_free = 0;
  uint64_t m_forks = 0;
};

class KernelProperty : public ::testing::TestWithParam<const char*> {};

TEST_P(KernelProperty, RandomOperationSequencesKeepEveryInvariant) {
  const std::string profile = GetParam();
  // The mTHP variant is extra coverage beyond the three profiles: one shorter run.
  const bool variant = profile.find('+') != std::string::npos;
  const uint64_t ops = env_or("TLBSIM_PROPERTY_OPS", variant ? kOpsPerSeed * 3 / 5 : kOpsPerSeed);
  std::vector<uint64_t> seeds(std::begin(kSeeds), std::end(kSeeds));
  if (variant) seeds.resize(1);
  if (std::getenv("TLBSIM_PROPERTY_SEED")) seeds = {env_or("TLBSIM_PROPERTY_SEED", 0)};
  for (uint64_t seed : seeds) {
    PropertyRun run(profile, seed);
    std::string last;
    for (uint64_t i = 0; i < ops; ++i) {
      std::string err;
      last = "an operation that threw before describing itself";
      try {
        last = run.step();
        err = run.check();
      } catch (const std::exception& e) {
        err = std::string("exception: ") + e.what();
      }
      ASSERT_EQ(err, "") << profile << " seed " << seed << " op " << i << " (" << last
                         << "): reproduce with TLBSIM_PROPERTY_SEED=" << seed
                         << " TLBSIM_PROPERTY_OPS=" << i + 1;
    }
    EXPECT_GT(run.forks(), ops / 50) << "the mix must exercise fork";
    EXPECT_EQ(run.teardown(), "") << profile << " seed " << seed;
  }
}

INSTANTIATE_TEST_SUITE_P(Profiles, KernelProperty,
                         ::testing::Values("linux-6.7", "linux-6.9", "linux-6.15",
                                           "linux-6.15+mthp", "linux-6.15+thp",
                                           "linux-6.7+thp", "linux-6.8+mthp",
                                           "linux-6.12+mthp", "linux-6.15+mthp@arm64",
                                           "linux-6.9+mthp@arm64", "linux-6.18+thp@arm64"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (ch == '-' || ch == '.' || ch == '+' || ch == '@') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace tlbsim::mm::testing
