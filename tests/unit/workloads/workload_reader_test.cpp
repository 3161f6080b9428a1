#include "workloads/workload_reader.h"

#include <gtest/gtest.h>

#include "base/error.h"
#include "tests/unit/workloads/error_of.h"

namespace tlbsim::workload {
namespace {

InputError error_of(const std::string& text, unsigned cpus = 2) {
  return test::error_of(text, cpus);
}

const char* kGood = R"({"processes":[{"threads":[{"cpu":0,"ops":[
  {"op":"mmap","name":"b","size":"1MiB"},
  {"op":"region","name":"r","ops":[{"op":"touch","mapping":"b","access":"read"}]},
  {"op":"munmap","mapping":"b"}]}]}]})";

TEST(WorkloadReader, ReadsOpsWithDefaults) {
  Workload w = read_workload(Json::parse(kGood), "/workload", 2);
  ASSERT_EQ(w.processes.size(), 1u);
  const auto& ops = w.processes[0].threads[0].ops;
  ASSERT_EQ(ops.size(), 3u);
  EXPECT_EQ(ops[0].size, 1u << 20);
  EXPECT_EQ(ops[1].body[0].access, AccessKind::kRead);
  EXPECT_EQ(ops[1].body[0].pointer, "/workload/processes/0/threads/0/ops/1/ops/0");
}

TEST(WorkloadReader, UnknownOpListsValidOnes) {
  InputError e = error_of(R"({"processes":[{"threads":[{"ops":[{"op":"munmapp"}]}]}]})");
  EXPECT_EQ(e.where(), "/workload/processes/0/threads/0/ops/0/op");
  EXPECT_NE(e.message().find("did you mean \"munmap\""), std::string::npos) << e.what();
  EXPECT_NE(e.message().find("valid ops:"), std::string::npos);
}

TEST(WorkloadReader, KnownButUnsupportedOpSaysSo) {
  InputError e = error_of(R"({"processes":[{"threads":[{"ops":[{"op":"mlock"}]}]}]})");
  EXPECT_NE(e.message().find("not supported yet"), std::string::npos) << e.what();
}

TEST(WorkloadReader, MremapChecksItsKeys) {
  const std::string pre = R"({"processes":[{"threads":[{"ops":[{"op":"mmap","name":"b","size":"1MiB"},)";
  auto err = [&](const std::string& op) { return error_of(pre + op + "]}]}]}"); };
  EXPECT_EQ(err(R"({"op":"mremap","mapping":"c","size":"2MiB"})").where(),
            "/workload/processes/0/threads/0/ops/1/mapping");
  EXPECT_EQ(err(R"({"op":"mremap","mapping":"b"})").where(), "/workload/processes/0/threads/0/ops/1");
  EXPECT_EQ(err(R"({"op":"mremap","mapping":"b","size":0})").where(),
            "/workload/processes/0/threads/0/ops/1/size");
  EXPECT_EQ(err(R"({"op":"mremap","mapping":"b","size":"2MiB","fixed":true})").where(),
            "/workload/processes/0/threads/0/ops/1/fixed");
  EXPECT_EQ(err(R"({"op":"mremap","mapping":"b","size":"2MiB","addr":"1GiB"})").where(),
            "/workload/processes/0/threads/0/ops/1/addr");
  EXPECT_EQ(err(R"({"op":"mremap","mapping":"b","size":"2MiB","addr":"1GiB","fixed":true,"maymove":false})")
                .where(),
            "/workload/processes/0/threads/0/ops/1/fixed");
  InputError d = err(R"({"op":"mremap","mapping":"b","size":"1MiB","dontunmap":true})");
  EXPECT_EQ(d.where(), "/workload/processes/0/threads/0/ops/1/dontunmap");
  EXPECT_NE(d.message().find("not supported yet"), std::string::npos) << d.what();
  // After the op, the mapping has its new size: a window beyond 1 MiB is valid.
  EXPECT_NO_THROW(read_workload(Json::parse(pre + R"({"op":"mremap","mapping":"b","size":"4MiB"},)"
                                                 R"({"op":"touch","mapping":"b","offset":"3MiB"}]}]}]})"),
                                "/workload", 2));
}

TEST(WorkloadReader, UnknownKeyInOp) {
  InputError e = error_of(R"({"processes":[{"threads":[{"ops":[{"op":"mmap","name":"b","size":"1MiB","szie":1}]}]}]})");
  EXPECT_EQ(e.where(), "/workload/processes/0/threads/0/ops/0/szie");
  EXPECT_NE(e.message().find("did you mean \"size\""), std::string::npos) << e.what();
}

TEST(WorkloadReader, BadSizeAndUnknownMapping) {
  EXPECT_EQ(error_of(R"({"processes":[{"threads":[{"ops":[{"op":"mmap","name":"b","size":"1 furlong"}]}]}]})").where(),
            "/workload/processes/0/threads/0/ops/0/size");
  InputError e = error_of(R"({"processes":[{"threads":[{"ops":[{"op":"touch","mapping":"nope"}]}]}]})");
  EXPECT_EQ(e.where(), "/workload/processes/0/threads/0/ops/0/mapping");
}

TEST(WorkloadReader, CpuOutOfRangeAndSharedCpus) {
  EXPECT_EQ(error_of(R"({"processes":[{"threads":[{"cpu":5,"ops":[]}]}]})").where(),
            "/workload/processes/0/threads/0/cpu");
  // Threads may share a CPU (the scheduler time-slices them); without "cpu" the
  // scheduler places them; a fork may name a busy CPU or none.
  Workload w = read_workload(Json::parse(R"({"processes":[
      {"threads":[{"cpu":0,"ops":[]},{"cpu":0,"ops":[{"op":"fork","cpu":0},{"op":"fork"}]}]},
      {"threads":[{"ops":[]}]}]})"), "/workload", 2);
  EXPECT_EQ(w.processes[0].threads[1].cpu, 0);
  EXPECT_EQ(w.processes[0].threads[1].ops[0].cpu, 0);
  EXPECT_EQ(w.processes[0].threads[1].ops[1].cpu, -1);
  EXPECT_EQ(w.processes[1].threads[0].cpu, -1);
}

TEST(WorkloadReader, MigrateAndSleepWait) {
  Workload w = read_workload(Json::parse(R"({"processes":[{"threads":[{"ops":[
      {"op":"migrate","cpu":1},{"op":"sleep","cycles":10},{"op":"sleep","cycles":10,"wait":"spin"}]}]}]})"),
                             "/workload", 2);
  const auto& ops = w.processes[0].threads[0].ops;
  EXPECT_EQ(ops[0].kind, OpKind::kMigrate);
  EXPECT_EQ(ops[0].cpu, 1);
  EXPECT_FALSE(ops[1].spin);
  EXPECT_TRUE(ops[2].spin);
  EXPECT_EQ(error_of(R"({"processes":[{"threads":[{"ops":[{"op":"migrate","cpu":2}]}]}]})").where(),
            "/workload/processes/0/threads/0/ops/0/cpu");
  EXPECT_NE(error_of(R"({"processes":[{"threads":[{"ops":[{"op":"migrate"}]}]}]})")
                .message().find("missing required key \"cpu\""), std::string::npos);
  EXPECT_EQ(error_of(R"({"processes":[{"threads":[{"ops":[{"op":"sleep","cycles":1,"wait":"nap"}]}]}]})").where(),
            "/workload/processes/0/threads/0/ops/0/wait");
}

// Regression (issue 16 item 1): substitution recursed once per level and copied the
// pointer each time; the pointer of a bad reference is still exact.
TEST(WorkloadReader, SubstitutionReportsTheExactPointerInDeepDocuments) {
  Json deep = "${nope}";
  for (int i = 0; i < 150; ++i) deep = Json::array({deep});
  Json w = Json::parse(R"({"params":{"x":1},"processes":[{"threads":[{"cpu":0,"ops":[]}]}]})");
  w["_c"] = deep;
  try {
    read_workload(w, "/workload", 2);
    FAIL() << "accepted an unknown parameter";
  } catch (const InputError& e) {
    std::string want = "/workload/_c";
    for (int i = 0; i < 150; ++i) want += "/0";
    EXPECT_EQ(e.where(), want);
    EXPECT_NE(e.message().find("unknown workload parameter \"nope\""), std::string::npos);
  }
}

// Regression (issue 16 item 11): "cpu": 2^32 was truncated to CPU 0.
TEST(WorkloadReader, CpuIsRangeCheckedBeforeItNarrows) {
  InputError e = error_of(R"({"processes":[{"threads":[{"cpu":4294967296,"ops":[]}]}]})");
  EXPECT_EQ(e.where(), "/workload/processes/0/threads/0/cpu");
  e = error_of(R"({"processes":[{"threads":[{"cpu":0,"ops":[{"op":"fork","cpu":4294967297}]}]}]})");
  EXPECT_EQ(e.where(), "/workload/processes/0/threads/0/ops/0/cpu");
}

// Regression (issue 16 item 15): windows beyond the mapping wrapped len - offset.
TEST(WorkloadReader, WindowsLieInsideTheirMapping) {
  auto window = [](const char* op) {
    return std::string(R"({"processes":[{"threads":[{"cpu":0,"ops":[{"op":"mmap","name":"b","size":"1MiB"},)") +
           op + "]}]}]}";
  };
  EXPECT_EQ(error_of(window(R"({"op":"munmap","mapping":"b","offset":18446744073709547520})").c_str()).where(),
            "/workload/processes/0/threads/0/ops/1/offset");
  EXPECT_EQ(error_of(window(R"({"op":"madvise","mapping":"b","advice":"free","offset":"512KiB","length":"1MiB"})").c_str())
                .where(),
            "/workload/processes/0/threads/0/ops/1/length");
  EXPECT_EQ(error_of(window(R"({"op":"touch","mapping":"b","count":17592186044416,"repeat":2})").c_str()).where(),
            "/workload/processes/0/threads/0/ops/1/repeat");
  EXPECT_NO_THROW(read_workload(Json::parse(window(R"({"op":"munmap","mapping":"b","offset":"1020KiB"})")),
                                "/workload", 2));
}

// Regression (issue 16 item 2): the reader refuses what no mmap can map on the machine.
TEST(WorkloadReader, MmapBeyondTheMachinesTaskSizeIsRefused) {
  const char* hi = R"({"processes":[{"threads":[{"cpu":0,"ops":[
    {"op":"mmap","name":"hi","size":"8KiB","addr":281475245146112,"fixed":true}]}]}]})";
  EXPECT_EQ(error_of(hi).where(), "/workload/processes/0/threads/0/ops/0/addr");
  EXPECT_NO_THROW(read_workload(Json::parse(hi), "/workload", 2, ".", kTaskSizeX86La57));
}

}  // namespace
}  // namespace tlbsim::workload

namespace tlbsim::workload {
namespace {

TEST(WorkloadReader, AThreadMayUseAMappingALaterThreadMakes) {
  // Thread 0 waits for thread 1's mmap (post/await) and reads the mapping; the
  // reader accepts it with the size thread 1 declares.
  Workload w = read_workload(Json::parse(R"({"processes": [{"threads": [
      {"ops": [{"op": "await", "name": "made"}, {"op": "touch", "mapping": "m", "length": "8KiB"}]},
      {"ops": [{"op": "mmap", "name": "m", "size": "64KiB"}, {"op": "post", "name": "made"}]}]}]})"),
                             "/workload", 2);
  EXPECT_EQ(w.processes[0].threads[0].ops[1].length, 8192u);
  // Within one thread the order still counts: a use before its own mmap is refused,
  // and so is a window beyond the other thread's size.
  InputError e = error_of(R"({"processes": [{"threads": [{"ops": [
      {"op": "touch", "mapping": "m"}, {"op": "mmap", "name": "m", "size": "64KiB"}]}]}]})");
  EXPECT_EQ(e.where(), "/workload/processes/0/threads/0/ops/0/mapping");
  e = error_of(R"({"processes": [{"threads": [
      {"ops": [{"op": "touch", "mapping": "m", "length": "128KiB"}]},
      {"ops": [{"op": "mmap", "name": "m", "size": "64KiB"}]}]}]})");
  EXPECT_EQ(e.where(), "/workload/processes/0/threads/0/ops/0/length");
}

}  // namespace
}  // namespace tlbsim::workload
