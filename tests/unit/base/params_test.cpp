#include "base/params.h"

#include <gtest/gtest.h>

namespace tlbsim {
namespace {

struct Inner : ParamSet {
  using ParamSet::ParamSet;
  Param<uint32_t> entries{this, "entries", 64, "entries", "Entries.", {min_value<uint32_t>(1)}};
};

struct Outer : ParamSet {
  Outer() : ParamSet("outer") { mode.one_of({"fast", "slow"}); }
  Param<std::string> mode{this, "mode", "fast", "", "Mode."};
  Param<Bytes> memory{this, "memory", Bytes{1 << 20}, "bytes", "Memory."};
  Param<bool> flag{this, "flag", false, "", "A flag."};
  Param<double> ghz{this, "ghz", 2.5, "GHz", "Clock."};
  Inner tlb{this, "tlb", "A TLB."};
};

InputError load_error(Outer& o, const char* text) {
  try {
    o.load(Json::parse(text), "/machine");
  } catch (const InputError& e) {
    return e;
  }
  ADD_FAILURE() << "no error for " << text;
  return InputError("", "");
}

TEST(Params, DefaultsAreTheDeclaredValues) {
  Outer o;
  EXPECT_EQ(o.tlb.entries(), 64u);
  EXPECT_EQ(o.memory().value, 1u << 20);
  EXPECT_EQ(o.to_json().dump(),
            R"({"mode":"fast","memory":"1MiB","flag":false,"ghz":2.5,"tlb":{"entries":64}})");
}

TEST(Params, LoadsNestedValuesAndSizeStrings) {
  Outer o;
  o.load(Json::parse(R"({"mode":"slow","memory":"2GiB","tlb":{"entries":128}})"), "");
  EXPECT_EQ(o.mode(), "slow");
  EXPECT_EQ(o.memory().value, 2ull << 30);
  EXPECT_EQ(o.tlb.entries(), 128u);
}

TEST(Params, UnknownKeySuggestsClosestAndListsValidOnes) {
  Outer o;
  InputError e = load_error(o, R"({"tlb":{"entires":4}})");
  EXPECT_EQ(e.where(), "/machine/tlb/entires");
  EXPECT_NE(e.message().find("did you mean \"entries\""), std::string::npos) << e.what();
  EXPECT_NE(e.message().find("valid keys: entries"), std::string::npos) << e.what();
}

TEST(Params, WrongTypeNamesExpectedAndFound) {
  Outer o;
  InputError e = load_error(o, R"({"tlb":{"entries":"many"}})");
  EXPECT_EQ(e.where(), "/machine/tlb/entries");
  EXPECT_EQ(e.message(), "expected a non-negative integer, got the string \"many\"");
}

TEST(Params, NegativeAndOutOfRangeValuesAreRejected) {
  Outer o;
  EXPECT_EQ(load_error(o, R"({"tlb":{"entries":-2}})").message(),
            "expected a positive integer, got -2");
  EXPECT_EQ(load_error(o, R"({"tlb":{"entries":0}})").message(),
            "expected a positive integer, got 0");
  EXPECT_EQ(load_error(o, R"({"tlb":{"entries":5000000000}})").message(),
            "expected a non-negative integer that fits in 32 bits, got 5000000000");
}

TEST(Params, UnitImpliesARangeWhereTheDeclarationNamesNone) {
  // Regression (issue 16 item 9): freq_ghz 0 was accepted and --trace wrote "ts": inf.
  Outer o;
  EXPECT_EQ(load_error(o, R"({"ghz":0})").message(), "expected a value >= 0.01, got 0");
  EXPECT_EQ(load_error(o, R"({"ghz":-1.5})").message(), "expected a value >= 0.01, got -1.5");
  EXPECT_EQ(load_error(o, R"({"memory":"4GiB"})").message(),
            "expected at most 2GiB, got the string \"4GiB\"");
  std::vector<ParamInfo> rows;
  o.describe("", rows);
  EXPECT_EQ(rows[1].range, "0B..2GiB");
  EXPECT_EQ(rows[3].range, "0.01..100");
  EXPECT_EQ(rows[4].range, "1..1048576") << "declared min, the unit's max";
}

TEST(Params, IntegerWrittenAsAHugeFloatIsRejectedNotConverted) {
  Outer o;
  EXPECT_EQ(load_error(o, R"({"tlb":{"entries":1e30}})").message(),
            "expected a non-negative integer that fits in 32 bits, got 1e+30");
  EXPECT_EQ(load_error(o, R"({"tlb":{"entries":-3.0}})").message(),
            "expected a non-negative integer, got -3.0");
}

TEST(Params, ChoicesAreListed) {
  Outer o;
  InputError e = load_error(o, R"({"mode":"medium"})");
  EXPECT_EQ(e.where(), "/machine/mode");
  EXPECT_EQ(e.message(), "expected one of fast or slow, got the string \"medium\"");
}

TEST(Params, BadSizeStringExplainsTheFormat) {
  Outer o;
  InputError e = load_error(o, R"({"memory":"12 parsecs"})");
  EXPECT_EQ(e.where(), "/machine/memory");
  EXPECT_NE(e.message().find("unknown unit"), std::string::npos) << e.what();
}

TEST(Params, CommentKeysAreIgnored) {
  Outer o;
  o.load(Json::parse(R"({"_doc":"x","tlb":{"_source":"SDM","entries":8}})"), "");
  EXPECT_EQ(o.tlb.entries(), 8u);
}

TEST(Params, DescribeListsEveryKeyWithUnitAndDoc) {
  Outer o;
  std::vector<ParamInfo> rows;
  o.describe("machine.", rows);
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[4].key, "machine.tlb.entries");
  EXPECT_EQ(rows[4].unit, "entries");
  EXPECT_EQ(rows[0].choices, (std::vector<std::string>{"fast", "slow"}));
  EXPECT_EQ(rows[1].default_value, Json("1MiB"));
}

}  // namespace
}  // namespace tlbsim
