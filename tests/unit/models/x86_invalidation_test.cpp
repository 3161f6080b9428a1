// x86 invalidation instructions as value objects (SDM Vol. 3A §4.10.4) and the
// hardware paging formats agreeing with the kernel's codec.
#include <gtest/gtest.h>

#include "models/arch/x86_64/invalidation.h"
#include "models/arch/arm64/descriptor.h"
#include "models/arch/x86_64/paging.h"

namespace tlbsim::x86 {
namespace {

TlbEntry entry(uint64_t va, uint16_t pcid, bool global = false) {
  TlbEntry e = TlbEntry::for_page(VirtAddr(va), PageSize::k4K, Pfn(7), pcid);
  e.global = global;
  return e;
}

TEST(X86Invalidation, InvlpgDropsTheAddressInTheCurrentPcidAndGlobalsOnly) {
  const auto inv = Invalidation::invlpg(VirtAddr(0x5000), 3);
  EXPECT_TRUE(inv.matches(entry(0x5000, 3)));
  EXPECT_TRUE(inv.matches(entry(0x5000, 9, /*global=*/true)));
  EXPECT_FALSE(inv.matches(entry(0x5000, 4))) << "INVLPG leaves other PCIDs' entries";
  EXPECT_FALSE(inv.matches(entry(0x6000, 3)));
}

TEST(X86Invalidation, InvpcidTypes) {
  Invalidation t0{Invalidation::Kind::kInvpcidAddress, VirtAddr(0x5000), 3, false};
  EXPECT_TRUE(t0.matches(entry(0x5000, 3)));
  EXPECT_FALSE(t0.matches(entry(0x5000, 3, true))) << "type 0 keeps global entries";
  Invalidation t1{Invalidation::Kind::kInvpcidContext, VirtAddr(), 3, false};
  EXPECT_TRUE(t1.matches(entry(0x9000, 3)));
  EXPECT_FALSE(t1.matches(entry(0x9000, 2)));
  Invalidation t2{Invalidation::Kind::kInvpcidAll, VirtAddr(), 0, false};
  EXPECT_TRUE(t2.matches(entry(0x9000, 2, true)));
  Invalidation t3{Invalidation::Kind::kInvpcidAllNonGlobal, VirtAddr(), 0, false};
  EXPECT_TRUE(t3.matches(entry(0x9000, 2)));
  EXPECT_FALSE(t3.matches(entry(0x9000, 2, true)));
}

TEST(X86Invalidation, Cr3WriteFlushesThePcidUnlessNoflush) {
  EXPECT_TRUE(Invalidation::cr3(5, false).matches(entry(0x1000, 5)));
  EXPECT_FALSE(Invalidation::cr3(5, false).matches(entry(0x1000, 5, true)));
  EXPECT_FALSE(Invalidation::cr3(5, true).matches(entry(0x1000, 5)));
  EXPECT_FALSE(Invalidation::cr3(5, true).drops_walk_cache_of(5));
}

TEST(X86Paging, KernelEntriesDecodeAsTheHardwareReadsThem) {
  const mm::PteCodec codec(mm::Arch::kX86_64);
  const uint64_t pte = codec.mkdirty(codec.mk_pte(Pfn(0x12345), mm::PgProt{.write = true}));
  const PagingEntry e = decode(pte);
  EXPECT_EQ(e.p, 1u);
  EXPECT_EQ(e.rw, 1u);
  EXPECT_EQ(e.us, 1u);
  EXPECT_EQ(e.a, 1u);
  EXPECT_EQ(e.d, 1u);
  EXPECT_EQ(e.xd, 1u);
  EXPECT_EQ(e.pfn, 0x12345u);
  EXPECT_EQ(decode(codec.mk_huge(Pfn(0x200), mm::PgProt{})).ps, 1u);
  EXPECT_EQ(encode(e), pte);
}

TEST(Arm64Descriptor, KernelEntriesDecodeAsTheHardwareReadsThem) {
  const mm::PteCodec codec(mm::Arch::kArm64);
  const uint64_t pte = codec.mkcont(codec.mk_pte(Pfn(0x4242), mm::PgProt{.write = true}));
  const arm64::Descriptor d = arm64::decode(pte);
  EXPECT_EQ(d.valid, 1u);
  EXPECT_EQ(d.table_or_page, 1u);
  EXPECT_EQ(d.af, 1u);
  EXPECT_EQ(d.ng, 1u);
  EXPECT_EQ(d.dbm, 1u);
  EXPECT_EQ(d.ap2_rdonly, 1u) << "writable-clean: DBM set, AP[2] read-only until the first store";
  EXPECT_EQ(d.contiguous, 1u);
  EXPECT_EQ(d.oa, 0x4242u);
  EXPECT_EQ(arm64::decode(codec.mk_huge(Pfn(0x200), mm::PgProt{})).table_or_page, 0u);
}

}  // namespace
}  // namespace tlbsim::x86
