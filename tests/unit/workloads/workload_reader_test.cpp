#include "workloads/workload_reader.h"

#include <gtest/gtest.h>

#include "base/error.h"

namespace tlbsim::workload {
namespace {

InputError error_of(const char* text, unsigned cpus = 2) {
  try {
    read_workload(Json::parse(text), "/workload", cpus);
  } catch (const InputError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << text;
  return InputError("", "");
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
  InputError e = error_of(R"({"processes":[{"threads":[{"ops":[{"op":"mremap"}]}]}]})");
  EXPECT_NE(e.message().find("not supported yet"), std::string::npos) << e.what();
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

TEST(WorkloadReader, CpuOutOfRangeAndDoublePinning) {
  EXPECT_EQ(error_of(R"({"processes":[{"threads":[{"cpu":5,"ops":[]}]}]})").where(),
            "/workload/processes/0/threads/0/cpu");
  InputError e = error_of(R"({"processes":[{"threads":[{"cpu":0,"ops":[]},{"cpu":0,"ops":[]}]}]})");
  EXPECT_NE(e.message().find("not supported yet"), std::string::npos);
}

}  // namespace
}  // namespace tlbsim::workload
