// Run reports: text and --json, fed with what a host may send back.
#include "cli/cli.hpp"
#include "cli/report.hpp"
#include "util/json.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

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

TEST_CASE("nodectl's error messages on stderr: control characters from a bundle are escaped") {
    // A "bundle" whose first entry's name carries an OSC title sequence, a bell and a cursor move:
    // the refusal quotes the name, and what reaches stderr must not drive the terminal.
    std::string file = "/tmp/nodectl-unit-escape-" + std::to_string(::getpid()) + ".tar";
    {
        archive* a = archive_write_new();
        REQUIRE(archive_write_set_format_ustar(a) == ARCHIVE_OK);
        REQUIRE(archive_write_open_filename(a, file.c_str()) == ARCHIVE_OK);
        archive_entry* e = archive_entry_new();
        archive_entry_set_pathname(e, "x\x1b]0;owned\x07\x1b[2Ay\xc2\x9b");
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, 1);
        REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
        REQUIRE(archive_write_data(a, "x", 1) == 1);
        archive_entry_free(e);
        REQUIRE(archive_write_close(a) == ARCHIVE_OK);
        archive_write_free(a);
    }
    std::ostringstream captured;
    auto* old = std::cerr.rdbuf(captured.rdbuf());
    std::vector<std::string> args = {"nodectl", "bundle", "verify", file};
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    int rc = cli::main(static_cast<int>(argv.size()), argv.data());
    std::cerr.rdbuf(old);
    std::remove(file.c_str());
    std::string err = captured.str();
    INFO(err);
    CHECK(rc == 8);
    CHECK(err.find("the first entry is") != std::string::npos);
    CHECK(err.find('\x1b') == std::string::npos);
    CHECK(err.find('\x07') == std::string::npos);
    CHECK(err.find("\xc2\x9b") == std::string::npos);
    CHECK(err.find("x\\x1b]0;owned\\x07\\x1b[2Ay\\xc2\\x9b") != std::string::npos);
}
