// Thread and process templates, arithmetic in "${...}" and integer fields, and the
// built-in nr_cpus parameter of the workload language (docs/workloads.md).
#include <gtest/gtest.h>

#include "base/error.h"
#include "tests/unit/workloads/error_of.h"
#include "workloads/workload_reader.h"

namespace tlbsim::workload {
namespace {

InputError error_of(const std::string& text, unsigned cpus = 4) {
  return test::error_of(text, cpus);
}

TEST(WorkloadTemplates, ThreadTemplateMakesOneThreadPerCopyWithItsIndex) {
  // Thread 0 maps; nr_cpus - 1 readers, one per remaining CPU, each touching its
  // own page of the mapping.
  Workload w = read_workload(Json::parse(R"({"processes": [{"threads": [
      {"cpu": 0, "ops": [{"op": "mmap", "name": "m", "size": "${nr_cpus * 4KiB}"}]},
      {"count": "${nr_cpus - 1}", "index": "k", "name": "r${k}", "cpu": "${k + 1}",
       "ops": [{"op": "touch", "mapping": "m", "offset": "${(k + 1) * 4KiB}",
                "length": "4KiB"}]}]}]})"),
                             "/workload", 8);
  const auto& ts = w.processes[0].threads;
  ASSERT_EQ(ts.size(), 8u);
  EXPECT_EQ(ts[0].ops[0].size, 8u * 4096);
  for (size_t k = 1; k < 8; ++k) {
    EXPECT_EQ(ts[k].name, "r" + std::to_string(k - 1));
    EXPECT_EQ(ts[k].cpu, static_cast<int>(k));
    EXPECT_EQ(ts[k].ops[0].offset, k * 4096);
    // Every copy reports the pointer of the template it came from.
    EXPECT_EQ(ts[k].ops[0].pointer, "/workload/processes/0/threads/1/ops/0");
  }
}

TEST(WorkloadTemplates, OneTemplateObjectAndNestedProcessTemplates) {
  // "processes" as one template; each process's "threads" as one template that
  // sees both indices.
  Workload w = read_workload(Json::parse(R"({"processes": {"count": 2, "index": "p",
      "name": "proc${p}", "threads": {"count": 2, "cpu": "${p * 2 + i}",
      "ops": [{"op": "sleep", "cycles": "${p * 100 + i}"}]}}})"),
                             "/workload", 4);
  ASSERT_EQ(w.processes.size(), 2u);
  for (unsigned p = 0; p < 2; ++p) {
    EXPECT_EQ(w.processes[p].name, "proc" + std::to_string(p));
    ASSERT_EQ(w.processes[p].threads.size(), 2u);
    for (unsigned i = 0; i < 2; ++i) {
      EXPECT_EQ(w.processes[p].threads[i].cpu, static_cast<int>(p * 2 + i));
      EXPECT_EQ(w.processes[p].threads[i].ops[0].cycles, p * 100 + i);
    }
  }
}

TEST(WorkloadTemplates, RepeatInsideATemplateSeesBothIndices) {
  Workload w = read_workload(Json::parse(R"({"processes": [{"threads": {"count": 2,
      "cpu": "${i}", "ops": [{"op": "repeat", "count": "${i + 2}", "index": "j",
      "ops": [{"op": "sleep", "cycles": "${i * 10 + j + 1}"}]}]}}]})"),
                             "/workload", 2);
  const auto& ts = w.processes[0].threads;
  ASSERT_EQ(ts.size(), 2u);
  ASSERT_EQ(ts[0].ops.size(), 2u);
  ASSERT_EQ(ts[1].ops.size(), 3u);
  EXPECT_EQ(ts[0].ops[1].cycles, 2u);
  EXPECT_EQ(ts[1].ops[2].cycles, 13u);
}

TEST(WorkloadTemplates, IntegerFieldsTakeExpressionsOfParameters) {
  Workload w = read_workload(Json::parse(R"({"params": {"n": 3, "sz": "64KiB"},
      "processes": [{"threads": [{"cpu": "${n - 2}", "ops": [
        {"op": "mmap", "name": "m", "size": "${sz * n}"},
        {"op": "touch", "mapping": "m", "count": "${n * n}", "access": "read"},
        {"op": "munmap", "mapping": "m", "offset": "${sz}", "length": "${sz / 2 + sz / 2}"}]}]}]})"),
                             "/workload", 2);
  const auto& ops = w.processes[0].threads[0].ops;
  EXPECT_EQ(w.processes[0].threads[0].cpu, 1);
  EXPECT_EQ(ops[0].size, 3u * 65536);
  EXPECT_EQ(ops[1].count, 9u);
  EXPECT_EQ(ops[2].offset, 65536u);
  EXPECT_EQ(ops[2].length, 65536u);
}

TEST(WorkloadTemplates, NrCpusIsTheMachinesAndCannotBeDeclared) {
  Workload w = read_workload(Json::parse(R"({"processes": [{"threads": {"count": "${nr_cpus}",
      "cpu": "${i}", "ops": [{"op": "sleep", "cycles": 1}]}}]})"),
                             "/workload", 6);
  EXPECT_EQ(w.processes[0].threads.size(), 6u);
  InputError e =
      error_of(R"({"params": {"nr_cpus": 2}, "processes": [{"threads": [{"ops": []}]}]})");
  EXPECT_EQ(e.where(), "/workload/params/nr_cpus");
}

TEST(WorkloadTemplates, ParametersMayUseEarlierOnesAndNrCpus) {
  Workload w = read_workload(Json::parse(R"({"params": {"threads": 3, "child": "${threads}",
      "last": "${nr_cpus - 1}", "name": "buf${threads}"}, "processes": [{"threads": [{"cpu": 0,
      "ops": [{"op": "mmap", "name": "${name}", "size": "4KiB"},
              {"op": "fork", "cpu": "${child}"}, {"op": "migrate", "cpu": "${last}"}]}]}]})"),
                             "/workload", 8);
  const auto& ops = w.processes[0].threads[0].ops;
  EXPECT_EQ(ops[0].mapping, "buf3");
  EXPECT_EQ(ops[1].cpu, 3);
  EXPECT_EQ(ops[2].cpu, 7);
  // A later parameter is not known yet.
  InputError e = error_of(R"({"params": {"a": "${b}", "b": 1}, "processes": [{"threads": [{"ops": []}]}]})");
  EXPECT_EQ(e.where(), "/workload/params/a");
  EXPECT_NE(e.message().find("unknown workload parameter \"b\""), std::string::npos) << e.what();
}

TEST(WorkloadTemplates, BadTemplatesAndExpressionsNameTheirPointer) {
  // A count of 0, past the limit, or not a number.
  EXPECT_EQ(error_of(R"({"processes": [{"threads": {"count": 0, "ops": []}}]})").where(),
            "/workload/processes/0/threads/count");
  EXPECT_EQ(error_of(R"({"processes": [{"threads": {"count": 65537, "ops": []}}]})").where(),
            "/workload/processes/0/threads/count");
  EXPECT_EQ(error_of(R"({"processes": [{"threads": {"count": "many", "ops": []}}]})").where(),
            "/workload/processes/0/threads/count");
  // An object without "count" is not a template.
  InputError e = error_of(R"({"processes": [{"threads": {"cpu": 0, "ops": []}}]})");
  EXPECT_EQ(e.where(), "/workload/processes/0/threads");
  EXPECT_NE(e.message().find("template with a \"count\""), std::string::npos) << e.what();
  // A CPU computed past the machine is range-checked like a literal one.
  // The pointer is the template's; the message names the copy.
  e = error_of(R"({"processes": [{"threads": {"count": 2, "cpu": "${i + 3}", "ops": []}}]})");
  EXPECT_EQ(e.where(), "/workload/processes/0/threads/cpu");
  EXPECT_NE(e.message().find("below 4"), std::string::npos) << e.what();
  EXPECT_NE(e.message().find("(in the copy with i = 1)"), std::string::npos) << e.what();
  e = error_of(R"({"processes": {"count": 2, "index": "p", "threads": {"count": 2,
      "cpu": "${p * 2 + i + 3}", "ops": []}}})");
  EXPECT_EQ(e.where(), "/workload/processes/threads/cpu");
  EXPECT_NE(e.message().find("(in the copy with p = 0, i = 1)"), std::string::npos) << e.what();
  // Arithmetic never wraps: 0 - 1, division by zero, overflow.
  e = error_of(R"({"processes": [{"threads": {"count": 1, "cpu": "${i - 1}", "ops": []}}]})");
  EXPECT_EQ(e.where(), "/workload/processes/0/threads/cpu");
  EXPECT_NE(e.message().find("negative"), std::string::npos) << e.what();
  e = error_of(R"({"params": {"z": 0}, "processes": [{"threads": [{"ops": [
      {"op": "sleep", "cycles": "${10 / z}"}]}]}]})");
  EXPECT_EQ(e.where(), "/workload/processes/0/threads/0/ops/0/cycles");
  EXPECT_NE(e.message().find("zero"), std::string::npos) << e.what();
  e = error_of(R"({"processes": [{"threads": [{"ops": [
      {"op": "sleep", "cycles": "${16TiB * 16TiB * 16TiB}"}]}]}]})");
  EXPECT_NE(e.message().find("overflow"), std::string::npos) << e.what();
  // An unknown name in an expression lists nothing but says which.
  e = error_of(
      R"({"processes": [{"threads": [{"ops": [{"op": "sleep", "cycles": "${nn + 1}"}]}]}]})");
  EXPECT_NE(e.message().find("unknown workload parameter \"nn\""), std::string::npos) << e.what();
}

TEST(WorkloadTemplates, TheWholeWorkloadIsBoundedInThreads) {
  // 300 processes of 300 threads: 90,000 > 65,536.
  InputError e = error_of(R"({"processes": {"count": 300, "threads": {"count": 300,
      "ops": [{"op": "sleep", "cycles": 1}]}}})");
  EXPECT_NE(e.message().find("more than 65536 threads"), std::string::npos) << e.what();
}

}  // namespace
}  // namespace tlbsim::workload
