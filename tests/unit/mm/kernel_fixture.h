// A kernel on InstantArch for unit tests: named defaults, override what a test
// asserts. The invariant checker runs after every operation the fixture performs.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "mm/instant_arch.h"
#include "mm/invariants.h"
#include "mm/kernel.h"

namespace tlbsim::mm::testing {

struct KernelFixtureConfig {
  unsigned cpus = 2;
  uint64_t memory = 256ull << 20;
  unsigned pgtable_levels = 4;
};

class KernelFixture : public ::testing::Test {
 protected:
  void build(const KernelFixtureConfig& c = {}) {
    stats = std::make_unique<StatGroup>("");
    pm = std::make_unique<PhysMem>(c.memory);
    X86ArchConfig cfg;
    cfg.nr_cpus = c.cpus;
    cfg.pgtable_levels = c.pgtable_levels;
    cfg.apply(profile);
    arch = std::make_unique<InstantArch>(cfg, stats.get());
    pm->set_observer(arch.get());
    kernel = std::make_unique<Kernel>(profile, *pm, *arch, stats.get());
    ctx.clear();  // build() may run again with another CPU count
    for (unsigned i = 0; i < c.cpus; ++i) ctx.emplace_back(i);
  }
  void SetUp() override { build(); }

  /// A process whose mm runs on the given CPUs (switch_mm on each).
  Mm& process(std::initializer_list<unsigned> cpus) {
    Mm& mm = kernel->mm_create(ctx[0]);
    for (unsigned c : cpus) arch->switch_mm(ctx[c], mm);
    return mm;
  }
  /// An anonymous mapping; aligned to 2 MiB unless asked otherwise, so folios of
  /// every size fit from its start (Linux places it top-down below mmap_base at
  /// page alignment: pass kPageSize to get that).
  VirtAddr mmap(Mm& mm, uint64_t len, bool populate = false, uint64_t align = kPmdSize) {
    MmapArgs a;
    a.len = len;
    a.populate = populate;
    a.align = align;
    const int64_t r = kernel->sys_mmap(ctx[0], mm, a);
    EXPECT_GT(r, 0);
    check();
    return VirtAddr(static_cast<uint64_t>(r));
  }
  void touch(Mm& mm, VirtAddr a, bool write = true, unsigned cpu = 0) {
    EXPECT_EQ(kernel->handle_mm_fault(ctx[cpu], mm, a, write ? static_cast<uint32_t>(kFaultWrite) : 0u), FaultResult::kOk);
    check();
  }
  void populate(Mm& mm, VirtAddr a, uint64_t len) {
    for (uint64_t off = 0; off < len; off += kPageSize)
      ASSERT_EQ(kernel->handle_mm_fault(ctx[0], mm, a + off, kFaultWrite), FaultResult::kOk);
    check();
  }
  void munmap(Mm& mm, VirtAddr a, uint64_t len) {
    EXPECT_EQ(kernel->sys_munmap(ctx[0], mm, a, len), 0);
    check();
  }
  void check() {
    const std::string err = check_invariants(*kernel);
    EXPECT_EQ(err, "") << "invariants broken";
  }
  uint64_t count(ArchEvent::Kind k) const { return arch->count(k); }
  uint64_t events_where(ArchEvent::Kind k, FlushCause cause) const {
    uint64_t n = 0;
    for (auto& e : arch->events())
      if (e.kind == k && e.cause == cause) ++n;
    return n;
  }

  KernelProfile profile;
  std::unique_ptr<StatGroup> stats;
  std::unique_ptr<PhysMem> pm;
  std::unique_ptr<InstantArch> arch;
  std::unique_ptr<Kernel> kernel;
  std::vector<ExecContext> ctx;
};

}  // namespace tlbsim::mm::testing
