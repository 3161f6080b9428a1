// A kernel on InstantArm64Arch for unit tests, 64 KiB mTHP on (contpte blocks):
// set `profile` switches in the test, then build().
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "mm/instant_arch_arm64.h"
#include "mm/kernel.h"

namespace tlbsim::mm::testing {

class Arm64KernelFixture : public ::testing::Test {
 protected:
  void build(unsigned cpus = 2, uint64_t memory = 256ull << 20) {
    profile.thp.enabled.set("never");
    profile.thp.hugepages_64kB.set("always");
    stats = std::make_unique<StatGroup>("");
    pm = std::make_unique<PhysMem>(memory);
    Arm64ArchConfig cfg;
    cfg.nr_cpus = cpus;
    cfg.phys = pm.get();
    arch = std::make_unique<InstantArm64Arch>(cfg, stats.get());
    pm->set_observer(arch.get());
    kernel = std::make_unique<Kernel>(profile, *pm, *arch, stats.get());
  }
  uint64_t* pte_of(Mm& mm, VirtAddr va) {
    return kernel->page_tables().walk(ctx, mm, va, 1, false);
  }

  KernelProfile profile;
  std::unique_ptr<StatGroup> stats;
  std::unique_ptr<PhysMem> pm;
  std::unique_ptr<InstantArm64Arch> arch;
  std::unique_ptr<Kernel> kernel;
  ExecContext ctx{0};
};

}  // namespace tlbsim::mm::testing
