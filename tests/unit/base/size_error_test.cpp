#include <gtest/gtest.h>

#include "base/error.h"
#include "base/file_util.h"
#include "base/size.h"

namespace tlbsim {
namespace {

TEST(Size, ParsesBinaryUnits) {
  EXPECT_EQ(parse_size("4KiB"), 4096u);
  EXPECT_EQ(parse_size("2MiB"), 2u << 20);
  EXPECT_EQ(parse_size("1GiB"), 1u << 30);
  EXPECT_EQ(parse_size("64k"), 65536u);
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size(" 3 MB "), 3u << 20);
  EXPECT_EQ(parse_size("1TiB"), 1ull << 40);
}

TEST(Size, RejectsMalformedWithReason) {
  std::string why;
  EXPECT_FALSE(parse_size("KiB", &why));
  EXPECT_NE(why.find("start with a number"), std::string::npos);
  EXPECT_FALSE(parse_size("4XB", &why));
  EXPECT_NE(why.find("unknown unit"), std::string::npos);
  EXPECT_FALSE(parse_size("99999999999999999999", &why));
  EXPECT_FALSE(parse_size("20000000TiB", &why));
  EXPECT_NE(why.find("overflows"), std::string::npos);
}

TEST(Size, FormatsWithLargestExactUnit) {
  EXPECT_EQ(format_size(65536), "64KiB");
  EXPECT_EQ(format_size(3u << 20), "3MiB");
  EXPECT_EQ(format_size(1000), "1000B");
}

TEST(InputError, FormatsFilePointerMessage) {
  InputError e("/machine/cpus", "expected a positive integer, got -2", "quickstart.json");
  EXPECT_STREQ(e.what(), "quickstart.json: /machine/cpus: expected a positive integer, got -2");
  EXPECT_EQ(e.under("/x").where(), "/x/machine/cpus");
}

TEST(InputError, InvalidJsonReportsLineAndColumn) {
  try {
    parse_json_text("{\n  \"a\": 1,\n  \"b\": \n}\n", "bad.json");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), "bad.json");
    EXPECT_EQ(e.where(), "line 4, column 1");
    EXPECT_NE(e.message().find("invalid JSON"), std::string::npos);
  }
}

TEST(ClosestMatch, SuggestsOnlyPlausibleTypos) {
  EXPECT_EQ(closest_match("entires", {"entries", "ways"}), "entries");
  EXPECT_EQ(closest_match("zzzzzz", {"entries", "ways"}), "");
}

}  // namespace
}  // namespace tlbsim
