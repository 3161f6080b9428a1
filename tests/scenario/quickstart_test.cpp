// The quickstart slice end to end: fault → walk → TLB → munmap → IPI shootdown,
// through every layer, with exact counts. One SystemC simulation per process, so
// this executable holds one simulation.
#include <gtest/gtest.h>

#include <systemc>

#include "models/system.h"
#include "tools/tlbsim/experiment.h"

#ifndef TLBSIM_SOURCE_DIR
#define TLBSIM_SOURCE_DIR "."
#endif

namespace tlbsim {
namespace {

uint64_t value(const StatGroup& root, const std::string& path) {
  const StatBase* s = root.find(path);
  EXPECT_NE(s, nullptr) << "no stat " << path;
  if (!s) return 0;
  Json j = s->to_json();
  return j["value"].get<uint64_t>();
}

TEST(Quickstart, FaultsWalksShootdownAndFreesExactly) {
  SearchPaths paths;
  paths.root = TLBSIM_SOURCE_DIR;
  auto ex = load_experiment(std::string(TLBSIM_SOURCE_DIR) + "/configs/experiments/quickstart.json",
                            {}, paths);
  StatGroup root("");
  System sys(*ex->machine, *ex->kernel, ex->workload, ex->seed, &root);
  sys.run();
  const uint64_t pages = (64ull << 20) / 4096;
  // Faults = pages touched by the first toucher (thread 0); thread 1 only walks.
  EXPECT_EQ(value(root, "system.cpu[0].faults"), pages);
  EXPECT_EQ(value(root, "system.cpu[1].faults"), 0u);
  EXPECT_EQ(value(root, "system.kernel.vmstat.pgfault"), pages);
  // 16,384 pages exceed one gather (9,678 items): one forced flush + the final one.
  // Each must reach CPU1, which runs the mm: one IPI per flush call.
  EXPECT_EQ(value(root, "system.regions.region[munmap].flush_requests"), 2u);
  EXPECT_EQ(value(root, "system.cpu[0].ipis_sent"), 2u);
  EXPECT_EQ(value(root, "system.cpu[1].ipis_received"), 2u);
  // > 33 pages: full flushes, no INVLPG loop (tlb_single_page_flush_ceiling).
  EXPECT_EQ(value(root, "system.x86_tlbflush.nr_tlb_local_flush_all"), 2u);
  EXPECT_EQ(value(root, "system.x86_tlbflush.nr_tlb_local_flush_one"), 0u);
  EXPECT_EQ(value(root, "system.regions.region[munmap].full_flushes"), 2u);
  // Translation really happened: walks and TLB hits (thread 1 writes every 1 KiB).
  EXPECT_EQ(value(root, "system.cpu[1].walker.walks"), pages);
  EXPECT_EQ(value(root, "system.cpu[1].dtlb.hits"), 3 * pages);
  EXPECT_GT(value(root, "system.cpu[0].walker.walks"), 0u);
  // munmap gave back every frame that populate took (pages and page tables).
  EXPECT_EQ(value(root, "system.regions.region[populate].free_pages_at_entry"),
            value(root, "system.regions.region[munmap].free_pages_at_exit"));
  EXPECT_EQ(value(root, "system.coherence.stale_tlb_violations"), 0u);
  EXPECT_GT(value(root, "system.regions.region[munmap].cycles"), 0u);
  EXPECT_GT(value(root, "system.regions.region[munmap].ipi_wait_cycles"), 0u);
}

}  // namespace
}  // namespace tlbsim

int sc_main(int argc, char* argv[]) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
