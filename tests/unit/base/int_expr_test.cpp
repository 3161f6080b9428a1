#include "base/int_expr.h"

#include <gtest/gtest.h>

namespace tlbsim {
namespace {

std::optional<uint64_t> lookup(std::string_view name, std::string* why) {
  if (name == "n") return 4;
  if (name == "size") return uint64_t{1} << 30;
  *why = "unknown name " + std::string(name);
  return std::nullopt;
}

uint64_t ok(const char* text) {
  std::string why;
  auto v = eval_int_expr(text, lookup, &why);
  EXPECT_TRUE(v) << text << ": " << why;
  return v.value_or(~uint64_t{0});
}

std::string err(const char* text) {
  std::string why;
  auto v = eval_int_expr(text, lookup, &why);
  EXPECT_FALSE(v) << text << " = " << v.value_or(0);
  return why;
}

TEST(IntExpr, PrecedenceUnitsAndNames) {
  EXPECT_EQ(ok("1GiB / 4"), uint64_t{256} << 20);
  EXPECT_EQ(ok("size / n"), uint64_t{256} << 20);
  EXPECT_EQ(ok("2 + 3 * 4"), 14u);
  EXPECT_EQ(ok("(2 + 3) * 4"), 20u);
  EXPECT_EQ(ok("(n - 1) * 4KiB"), 12288u);
  EXPECT_EQ(ok("17 % n + 0x10"), 17u);
  EXPECT_EQ(ok("  7  "), 7u);
  EXPECT_EQ(ok("10 - 4 - 3"), 3u);  // left to right
  EXPECT_EQ(ok("64 / 4 / 2"), 8u);
}

TEST(IntExpr, ErrorsNeverWrap) {
  EXPECT_NE(err("1 - 2").find("negative"), std::string::npos);
  EXPECT_NE(err("n / (n - 4)").find("division by zero"), std::string::npos);
  EXPECT_NE(err("16TiB * 16TiB").find("overflows"), std::string::npos);
  EXPECT_NE(err("18446744073709551615 + 1").find("overflows"), std::string::npos);
  EXPECT_NE(err("0x1ffffffffffffffff").find("overflows"), std::string::npos);
  EXPECT_NE(err("m + 1").find("unknown name m"), std::string::npos);
  EXPECT_NE(err("4 +").find("ends"), std::string::npos);
  EXPECT_NE(err("(4 + 1").find("missing"), std::string::npos);
  EXPECT_NE(err("4 4").find("unexpected"), std::string::npos);
  EXPECT_NE(err("4XB").find("unit"), std::string::npos);
  std::string deep(40, '(');
  deep += "1" + std::string(40, ')');
  EXPECT_NE(err(deep.c_str()).find("nested deeper"), std::string::npos);
}

TEST(IntExpr, NamesAndOperators) {
  EXPECT_EQ(expr_names("(n - 1) * 4KiB + size"), (std::vector<std::string>{"n", "size"}));
  EXPECT_TRUE(has_expr_operator("a/2"));
  EXPECT_FALSE(has_expr_operator("4KiB"));
}

}  // namespace
}  // namespace tlbsim
