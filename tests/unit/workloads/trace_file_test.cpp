// The streaming replay trace reader (workloads/trace_file.h).
#include "workloads/trace_file.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "base/error.h"

namespace tlbsim::workload {
namespace {

std::string write_temp(const std::string& text) {
  char tmpl[] = "/tmp/tlbsim-trace-test-XXXXXX";
  const int fd = mkstemp(tmpl);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(tmpl, std::ios::binary) << text;
  return tmpl;
}

TEST(TraceFile, ReadsRunsFromAByteOffsetWithoutATrailingNewline) {
  const std::string head = "# comment\n0 1 r\n";
  const std::string path = write_temp(head + "1 ff w 3\r\n\n  0 0 x 4294967295");
  TraceReader r(path, head.size());
  TraceEntry e;
  ASSERT_TRUE(r.next(e));
  EXPECT_EQ(e.mapping, 1u);
  EXPECT_EQ(e.page, 0xffu);
  EXPECT_EQ(e.kind, AccessKind::kWrite);
  EXPECT_EQ(e.count, 3u);
  ASSERT_TRUE(r.next(e));
  EXPECT_EQ(e.kind, AccessKind::kExec);
  EXPECT_EQ(e.count, 0xffffffffu);
  EXPECT_FALSE(r.next(e));
  EXPECT_EQ(validate_trace_file(path, {2 * 4096, 256 * 4096}), 3u);
  EXPECT_EQ(validate_trace_file(path, {2 * 4096, 256 * 4096}, head.size(), 1), 1u);
  std::remove(path.c_str());
}

TEST(TraceFile, BadLinesNameTheLine) {
  auto err = [](const std::string& text, uint64_t runs = 0) {
    const std::string path = write_temp(text);
    try {
      validate_trace_file(path, {4096, 8192}, 0, runs);
    } catch (const InputError& e) {
      std::remove(path.c_str());
      return std::string(e.where()) + ": " + e.message();
    }
    std::remove(path.c_str());
    return std::string("accepted");
  };
  EXPECT_EQ(err("0 0 r\n0 1 r\n"), "line 2: page 0x1 lies beyond mapping 0 (1 pages)");
  EXPECT_EQ(err("2 0 r\n"), "line 1: mapping index 2 but the replay op names 2 mappings");
  EXPECT_NE(err("0 0 q\n").find("expected kind r, w or x"), std::string::npos);
  EXPECT_NE(err("0 0 r 0\n").find("between 1 and 2^32-1"), std::string::npos);
  EXPECT_NE(err("0 0 r 1 2\n").find("unexpected text"), std::string::npos);
  EXPECT_NE(err("0 zz r\n").find("hex page offset"), std::string::npos);
  EXPECT_NE(err("0 0 r\n", 2).find("asks for 2 runs"), std::string::npos);
  EXPECT_NE(err(std::string(5000, '1') + "\n").find("longer than 4096"), std::string::npos);
}

}  // namespace
}  // namespace tlbsim::workload
