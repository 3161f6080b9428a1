#include "base/stats.h"

#include <gtest/gtest.h>

namespace tlbsim {
namespace {

struct TlbStats : StatGroup {
  using StatGroup::StatGroup;
  Scalar lookups{this, "lookups", "count", "Lookups."};
  Scalar misses{this, "misses", "count", "Misses."};
  Formula miss_rate{this, "miss_rate", "ratio", "misses / lookups.",
                    [this] { return ratio(misses, lookups); }};
  Histogram latency{this, "latency", "cycles", "Latency."};
};

TEST(Stats, PathsIndexAndNest) {
  StatGroup root("system");
  StatGroup cpu(&root, "cpu[0]");
  TlbStats dtlb(&cpu, "dtlb");
  EXPECT_EQ(dtlb.path(), "system.cpu[0].dtlb");
  ++dtlb.misses;
  dtlb.lookups += 4;
  std::vector<StatRow> rows;
  root.rows(rows);
  ASSERT_GE(rows.size(), 3u);
  EXPECT_EQ(rows[0].path, "system.cpu[0].dtlb.lookups");
  EXPECT_EQ(rows[0].value, "4");
  EXPECT_EQ(rows[2].path, "system.cpu[0].dtlb.miss_rate");
  EXPECT_EQ(rows[2].value, "0.25");
  EXPECT_EQ(root.find("cpu[0].dtlb.misses")->unit(), std::string("count"));
}

TEST(Stats, JsonLeavesCarryUnitAndDescription) {
  StatGroup root("");
  TlbStats t(&root, "stlb");
  ++t.lookups;
  Json j = root.to_json();
  EXPECT_EQ(j["stlb"]["lookups"]["value"], 1);
  EXPECT_EQ(j["stlb"]["lookups"]["unit"], "count");
  EXPECT_EQ(j["stlb"]["miss_rate"]["value"], 0);
}

TEST(Stats, HistogramLog2Buckets) {
  StatGroup root("");
  TlbStats t(&root, "x");
  for (uint64_t v : {0, 1, 2, 3, 4, 100}) t.latency.sample(v);
  EXPECT_EQ(t.latency.count(), 6u);
  EXPECT_EQ(t.latency.sum(), 110u);
  EXPECT_EQ(t.latency.min(), 0u);
  EXPECT_EQ(t.latency.max(), 100u);
  Json b = t.latency.to_json()["value"]["buckets"];
  // [0,1):1  [1,2):1  [2,4):2  [4,8):1  [64,128):1
  ASSERT_EQ(b.size(), 5u);
  EXPECT_EQ(b[2]["lo"], 2);
  EXPECT_EQ(b[2]["count"], 2);
  EXPECT_EQ(b[4]["lo"], 64);
}

TEST(Stats, ResetZeroesTheSubtree) {
  StatGroup root("");
  TlbStats t(&root, "x");
  t.misses += 3;
  root.reset();
  EXPECT_EQ(t.misses.value(), 0u);
}

}  // namespace
}  // namespace tlbsim

#include "base/trace_writer.h"
#include "base/file_util.h"

namespace tlbsim {
namespace {

TEST(TraceWriter, WritesChromeTraceJson) {
  TraceWriter t(2.5, "tlbsim");
  t.thread_name(0, "cpu0");
  t.complete(0, "kernel", "munmap", 2500, 5000, R"({"pages":16})");
  t.flow(1, 0, 2500, 1, 5000, "ipi");
  t.instant(1, "tlb", "flush", 6000);
  const std::string path = ::testing::TempDir() + "/trace.json";
  t.write(path);
  Json j = read_json_file(path);
  ASSERT_TRUE(j["traceEvents"].is_array());
  bool found = false;
  for (const auto& e : j["traceEvents"]) {
    if (e["name"] == "munmap") {
      found = true;
      EXPECT_EQ(e["ph"], "X");
      EXPECT_DOUBLE_EQ(e["ts"].get<double>(), 1.0);   // 2500 cycles at 2.5 GHz = 1 us
      EXPECT_DOUBLE_EQ(e["dur"].get<double>(), 2.0);
      EXPECT_EQ(e["args"]["pages"], 16);
    }
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace tlbsim
