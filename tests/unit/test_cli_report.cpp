// Run reports: text and --json, fed with what a host may send back.
#include "cli/report.hpp"
#include "util/json.hpp"

#include <doctest/doctest.h>

using namespace nodectl;

TEST_CASE("reports_json and reports_text: invalid UTF-8 and control characters from a host") {
    HostReport r;
    r.host = "node1";
    r.ok = false;
    r.error = std::string("cat: \xff\xfe bad bytes \x1b]0;owned\x07 from the host");
    std::string json;
    REQUIRE_NOTHROW(json = cli::reports_json({r}, RunMode::plan));
    CHECK(json.find("\xef\xbf\xbd") != std::string::npos);  // U+FFFD for each bad byte
    CHECK(nlohmann::json::parse(json)["hosts"][0]["host"] == "node1");
    CHECK(util::json_text(nlohmann::json("\xc3\x28")) == "\"\xef\xbf\xbd(\"");
}
