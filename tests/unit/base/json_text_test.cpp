#include "base/json_text.h"

#include <gtest/gtest.h>

#include "base/error.h"
#include "base/file_util.h"

namespace tlbsim {
namespace {

InputError parse_error_of(const std::string& text) {
  try {
    parse_json_text(text, "x.json");
  } catch (const InputError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << text.substr(0, 80);
  return InputError("", "");
}

// Regression (issue 16 item 1): 100,000 nested arrays under a comment key crashed
// the reader with a stack overflow (exit 139).
TEST(JsonText, NestingDeeperThanTheLimitIsBadInputWithItsPosition) {
  const std::string deep = "{\"_c\":\n" + std::string(100000, '[') + std::string(100000, ']') + "}";
  InputError e = parse_error_of(deep);
  EXPECT_EQ(e.file(), "x.json");
  EXPECT_EQ(e.where(), "line 2, column " + std::to_string(kMaxJsonDepth));
  EXPECT_NE(e.message().find("nested deeper than 200 levels"), std::string::npos) << e.what();
}

TEST(JsonText, NestingAtTheLimitParses) {
  const std::string ok = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_EQ(json_depth(parse_json_text(ok, "x.json")), kMaxJsonDepth);
}

TEST(JsonText, BracketsInsideStringsDoNotCount) {
  const std::string s = "{\"a\": \"" + std::string(1000, '[') + "\\\"{\"}";
  EXPECT_EQ(parse_json_text(s, "x.json")["a"].get<std::string>().size(), 1002u);
}

// Regression (issue 16 item 3): "seed": 1e400 was an internal error (out_of_range).
TEST(JsonText, NumberBeyondADoubleIsBadInputWithItsPosition) {
  InputError e = parse_error_of("{\"seed\": 1e400}");
  EXPECT_EQ(e.where(), "line 1, column 10");
  EXPECT_NE(e.message().find("\"1e400\" is out of range"), std::string::npos) << e.what();
  e = parse_error_of("[-" + std::string(400, '9') + "]");
  EXPECT_EQ(e.where(), "line 1, column 2");
  EXPECT_NO_THROW(parse_json_text("[1e-400, 18446744073709551615, 1e300]", "x.json"));
}

TEST(JsonText, ExcerptsAreShortOneLineAndCutAtACharacter) {
  const std::string big = "\"" + std::string(1000, 'a') + "\"";
  EXPECT_LE(json_excerpt(Json::parse(big)).size(), kExcerptChars + 3);
  EXPECT_EQ(json_excerpt(Json::parse("{\"a\": [1, 2]}")), "{\"a\": [1, 2]}");
  EXPECT_EQ(quote_excerpt("a\nb"), "\"a\\nb\"");
  // A cut never splits a UTF-8 sequence (é is two bytes).
  std::string accents;
  for (int i = 0; i < 50; ++i) accents += "\xc3\xa9";
  const std::string q = quote_excerpt(accents);
  EXPECT_EQ(q.substr(q.size() - 4), "...\"");
  EXPECT_NO_THROW(Json(q.substr(1, q.size() - 5)).dump());
  // Deep values are cut, not walked.
  Json deep = Json::array();
  Json* cur = &deep;
  for (int i = 0; i < 150; ++i) {
    cur->push_back(Json::array());
    cur = &(*cur)[0];
  }
  EXPECT_LE(json_excerpt(deep).size(), kExcerptChars + 3);
}

TEST(InputError, MessageIsAlwaysOneLine) {
  InputError e("/workload/processes/0/name", "unknown \"a\nb\"", "x.json");
  EXPECT_STREQ(e.what(), "x.json: /workload/processes/0/name: unknown \"a\\nb\"");
}

}  // namespace
}  // namespace tlbsim
