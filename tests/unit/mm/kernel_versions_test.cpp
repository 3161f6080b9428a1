// Kernel versions (mm/kernel_versions.cpp): every behaviour switch of KernelProfile has
// a history, every history names a real switch, the defaults are linux-6.15, and the
// version rules refuse what a release cannot have.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "base/error.h"
#include "mm/kernel_profile.h"
#include "mm/kernel_versions.h"
#include "mm/phys_mem.h"

namespace tlbsim::mm::testing {
namespace {

std::vector<std::string> profile_keys() {
  KernelProfile p;
  std::vector<ParamInfo> rows;
  p.describe("", rows);
  std::vector<std::string> keys;
  for (const auto& r : rows) keys.push_back(r.key);
  return keys;
}

TEST(KernelVersions, EverySwitchHasAHistoryAndEveryHistoryASwitch) {
  std::set<std::string> table;
  for (const auto& sw : kernel_version_table()) {
    EXPECT_TRUE(table.insert(sw.key).second) << "twice in the table: " << sw.key;
    ASSERT_FALSE(sw.steps.empty()) << sw.key;
    EXPECT_EQ(sw.steps.front().since, kOldestKernelVersion) << sw.key;
    for (size_t i = 1; i < sw.steps.size(); ++i)
      EXPECT_LT(sw.steps[i - 1].since, sw.steps[i].since) << sw.key;
  }
  std::set<std::string> keys;
  for (const std::string& k : profile_keys()) {
    keys.insert(k);
    if (is_unversioned_key(k)) {
      EXPECT_EQ(table.count(k), 0u) << k << " is unversioned and in the table";
      continue;
    }
    EXPECT_EQ(table.count(k), 1u) << "KernelProfile key without a release history: " << k;
  }
  for (const std::string& k : table) EXPECT_EQ(keys.count(k), 1u) << "not a KernelProfile key: " << k;
}

TEST(KernelVersions, DefaultsAreLinux615) {
  KernelProfile defaults, v615;
  v615.version.set("6.15");
  apply_version_defaults(v615);
  EXPECT_EQ(defaults.to_json().dump(), v615.to_json().dump());
}

TEST(KernelVersions, ValuesFollowTheReleases) {
  auto at = [](const char* v) {
    auto p = std::make_unique<KernelProfile>();
    p->version.set(v);
    apply_version_defaults(*p);
    return p;
  };
  EXPECT_FALSE(at("6.7")->rmap_batching());
  EXPECT_TRUE(at("6.8")->rmap_batching());
  EXPECT_FALSE(at("6.8")->zap_batching());
  EXPECT_TRUE(at("6.9")->zap_batching());
  EXPECT_EQ(at("6.9")->sharers_estimate(), "estimated_sharers");
  EXPECT_EQ(at("6.10")->sharers_estimate(), "likely_mapped_shared");
  EXPECT_EQ(at("6.14")->sharers_estimate(), "likely_mapped_shared");
  EXPECT_EQ(at("6.15")->sharers_estimate(), "maybe_mapped_shared");
  EXPECT_FALSE(at("6.9")->deferred_split_partial_only());
  EXPECT_TRUE(at("6.10")->deferred_split_partial_only());
  EXPECT_FALSE(at("6.11")->thp.shrink_underused());
  EXPECT_TRUE(at("6.12")->thp.shrink_underused());
  EXPECT_FALSE(at("6.12")->huge_zero_wp_thp());
  EXPECT_TRUE(at("6.13")->huge_zero_wp_thp());
  EXPECT_FALSE(at("6.13")->pt_reclaim());
  EXPECT_TRUE(at("6.14")->pt_reclaim());
  EXPECT_FALSE(at("6.13")->x86_lazy_cpumask());
  EXPECT_TRUE(at("6.14")->x86_lazy_cpumask());
  EXPECT_FALSE(at("6.15")->madvise_vma_lock());
  EXPECT_TRUE(at("6.18")->madvise_vma_lock());
  EXPECT_EQ(at("6.11")->thp_anon_align(), "len_ge_pmd");
  EXPECT_EQ(at("6.12")->thp_anon_align(), "pmd_multiple");
  EXPECT_FALSE(at("6.15")->arm64_batched_pending_flush_mm());
  EXPECT_TRUE(at("6.16")->arm64_batched_pending_flush_mm());
  EXPECT_EQ(at("6.8")->folio_batch_size(), 15u);
  EXPECT_EQ(at("6.9")->folio_batch_size(), 31u);
}

// "anonymous mTHP needs 6.8+": a 64 KiB per-size control on 6.7 is refused, on 6.8 not.
TEST(KernelVersions, AnonymousMthpNeedsLinux68) {
  KernelProfile p;
  p.version.set("6.7");
  apply_version_defaults(p);
  p.validate_all("/kernel");
  p.thp.hugepages_64kB.set("always");
  try {
    p.validate_all("/kernel");
    FAIL() << "6.7 with hugepages-64kB accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(e.where(), "/kernel/thp/hugepages_64kB");
    EXPECT_NE(e.message().find("needs Linux 6.8+"), std::string::npos) << e.message();
  }
  p.version.set("6.8");
  EXPECT_NO_THROW(p.validate_all("/kernel"));
  p.version.set("6.7");
  p.thp.hugepages_64kB.set("never");
  p.thp.hugepages_2048kB.set("always");  // PMD THP existed
  EXPECT_NO_THROW(p.validate_all("/kernel"));
}

TEST(KernelVersions, UnmodelledVersionsAndImpossibleCombinationsAreRefused) {
  for (const char* v : {"5.15", "6.6", "6.20", "7.0", "6", "6.x", "", "6.9.1"}) {
    KernelProfile p;
    p.version.set(v);
    EXPECT_THROW(p.validate_all(""), InputError) << v;
  }
  KernelProfile p;
  p.version.set("6.9");
  apply_version_defaults(p);
  p.cow_reuse_large.set(true);
  EXPECT_THROW(p.validate_all(""), InputError);
  p.cow_reuse_large.set(false);
  p.sharers_estimate.set("maybe_mapped_shared");
  EXPECT_THROW(p.validate_all(""), InputError);
  p.mm_id.set(true);  // a 6.9 with MM-ID backported: allowed, it is a what-if
  EXPECT_NO_THROW(p.validate_all(""));
}

}  // namespace
}  // namespace tlbsim::mm::testing

namespace tlbsim::mm::testing {
namespace {
// MAX_PAGE_ORDER = 10 on x86-64 and arm64 with 4 KiB pages: the buddy allocator's
// largest free blocks are 4 MiB.
TEST(PhysMemOrders, LargestBuddyOrderIsMaxPageOrder) {
  PhysMem pm(64ull << 20);
  EXPECT_EQ(pm.buddy().largest_free_order(), 10);
}
}  // namespace
}  // namespace tlbsim::mm::testing
