// util::parse_json: the one way nodectl reads JSON; never throws, whatever it is given.
#include "util/json.hpp"

#include <doctest/doctest.h>

#include <string>

TEST_CASE("parse_json: JSON in, the document out; anything else is the parser's reason and place") {
    auto ok = util::parse_json(R"({"a": [1, 2], "b": "x"})");
    REQUIRE(ok);
    CHECK((*ok)["a"][1] == 2);
    CHECK((*ok)["b"] == "x");

    auto bad = util::parse_json("{\"a\": 1,}");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().find("parse error at line 1, column 9") != std::string::npos);
    CHECK_FALSE(util::parse_json(""));
    CHECK_FALSE(util::parse_json("{\"a\": 1} trailing"));
    CHECK_FALSE(util::parse_json("\"\xff\""));  // not UTF-8

    // Nesting a hostile file could hold: an error, not a crash.
    CHECK_FALSE(util::parse_json(std::string(200000, '[')));
    auto deep = util::parse_json(std::string(20000, '[') + std::string(20000, ']'));
    CHECK(deep);
}
