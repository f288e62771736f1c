// The Target base: shell quoting (checked through a real /bin/sh), and the file operations every
// target inherits (read_file, write_file, stat, upload), run for real through a LocalTarget in a
// temporary directory.
#include "test_support.hpp"

#include "target/local_target.hpp"
#include "target/read_only_target.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <unistd.h>

using namespace nodectl;
using nodectl::testing::TempDir;

namespace fs = std::filesystem;

namespace {

// What /bin/sh makes of a quoted word.
std::string through_sh(const std::string& word) {
    auto r = run_process({"/bin/sh", "-c", "printf %s " + shell_quote(word)}, "", std::chrono::seconds(10));
    REQUIRE(r.ok());
    REQUIRE(r->exit_code == 0);
    return r->out;
}

std::vector<std::string> leftovers(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().filename().string().rfind(".nodectl.", 0) == 0) {
            out.push_back(e.path().string());
        }
    }
    return out;
}

} // namespace

TEST_CASE("shell_quote: the documented form") {
    CHECK(shell_quote("abc") == "'abc'");
    CHECK(shell_quote("") == "''");
    CHECK(shell_quote("a'b") == "'a'\\''b'");
}

TEST_CASE("shell_quote: every word survives /bin/sh unchanged") {
    for (std::string word : {std::string("plain"), std::string(""), std::string("a'b"), std::string("'"),
                             std::string("''"), std::string("'leading and trailing'"), std::string("$HOME"),
                             std::string("${PATH}"), std::string("`id`"), std::string("$(id)"), std::string("a\\b\\"),
                             std::string("\"double\""), std::string("a b\tc\nd"), std::string("*"), std::string("?[a]"),
                             std::string("-n"), std::string("%s %d %%"), std::string("; rm -rf / #"),
                             std::string("a && b || c | d > e < f"), std::string("~root"), std::string("!event"),
                             std::string("caf\xc3\xa9 \xe2\x9c\x93")}) {
        CAPTURE(word);
        CHECK(through_sh(word) == word);
    }
}

TEST_CASE("LocalTarget write_file: content, mode and owner land atomically; no temporary file is left") {
    TempDir dir;
    LocalTarget t;
    FileSpec f;
    f.path = dir.file("sub/dir/config");  // parent folders are created
    f.content = "line 1\nline 2 with 'quotes' and $dollar\n";
    f.mode = 0640;
    auto w = t.write_file(f);
    REQUIRE_MESSAGE(w.ok(), (w.ok() ? "" : w.error().message));

    auto back = t.read_file(f.path);
    REQUIRE(back.ok());
    REQUIRE(back->has_value());
    CHECK(**back == f.content);
    CHECK((fs::status(f.path).permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read));
    CHECK(leftovers(dir.path() / "sub/dir").empty());

    auto st = t.stat(f.path);
    REQUIRE(st.ok());
    CHECK(st->exists);
    CHECK_FALSE(st->is_dir);
    CHECK_FALSE(st->is_symlink);
    CHECK(st->mode == 0640);
    CHECK(st->owner == "root");
    CHECK(st->group == "root");
    CHECK(st->size == f.content.size());

    // Overwriting replaces the content and the mode.
    f.content = "short\n";
    f.mode = 0600;
    REQUIRE(t.write_file(f).ok());
    CHECK(t.read_file(f.path)->value() == "short\n");
    CHECK(t.stat(f.path)->mode == 0600);
    CHECK(leftovers(dir.path() / "sub/dir").empty());
}

TEST_CASE("LocalTarget write_file: binary content and a path with spaces and quotes") {
    TempDir dir;
    LocalTarget t;
    FileSpec f;
    f.path = dir.file("it's a file");
    f.content = std::string("\0\1\2\xff binary\n", 12);
    REQUIRE(t.write_file(f).ok());
    auto back = t.read_file(f.path);
    REQUIRE(back.ok());
    CHECK(**back == f.content);
    CHECK(t.stat(f.path)->size == 12);
}

TEST_CASE("LocalTarget write_file: an unknown owner fails and leaves neither file nor temporary") {
    TempDir dir;
    LocalTarget t;
    FileSpec f;
    f.path = dir.file("x");
    f.content = "x";
    f.owner = "no-such-user-nodectl";
    auto w = t.write_file(f);
    REQUIRE_FALSE(w.ok());
    CHECK(w.error().code == ErrorCode::command);
    CHECK(w.error().message.find("writing " + f.path + " failed") == 0);
    CHECK_FALSE(fs::exists(f.path));
    CHECK(leftovers(dir.path()).empty());
}

TEST_CASE("LocalTarget read_file and stat: missing files, directories and symlinks") {
    TempDir dir;
    LocalTarget t;
    auto missing = t.read_file(dir.file("none"));
    REQUIRE(missing.ok());
    CHECK_FALSE(missing->has_value());
    auto st = t.stat(dir.file("none"));
    REQUIRE(st.ok());
    CHECK_FALSE(st->exists);

    auto d = t.stat(dir.path().string());
    REQUIRE(d.ok());
    CHECK(d->exists);
    CHECK(d->is_dir);
    CHECK(d->mode == 0700);  // mkdtemp

    fs::create_symlink("/usr/share/zoneinfo/Etc/UTC", dir.path() / "localtime");
    auto l = t.stat(dir.file("localtime"));
    REQUIRE(l.ok());
    CHECK(l->exists);
    CHECK(l->is_symlink);
    CHECK(l->link_target == "/usr/share/zoneinfo/Etc/UTC");

    fs::create_symlink(dir.path() / "dangling-target", dir.path() / "dangling");
    auto dl = t.stat(dir.file("dangling"));
    REQUIRE(dl.ok());
    CHECK(dl->exists);  // the link itself exists
    CHECK(dl->is_symlink);

    auto unreadable = t.read_file(dir.path().string());
    CHECK_FALSE(unreadable.ok());  // a directory is not a file
}

TEST_CASE("LocalTarget upload: copies a local file with owner and mode") {
    TempDir dir;
    LocalTarget t;
    std::string src = dir.write("src", "uploaded\n");
    FileSpec dest;
    dest.path = dir.file("dest");
    dest.mode = 0600;
    REQUIRE(t.upload(src, dest).ok());
    CHECK(**t.read_file(dest.path) == "uploaded\n");
    CHECK(t.stat(dest.path)->mode == 0600);

    auto missing = t.upload(dir.file("no-such-source"), dest);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code == ErrorCode::io);
}

TEST_CASE("run_checked: a non-zero exit is a command error naming what failed and why") {
    LocalTarget t;
    Command cmd;
    cmd.script = "echo 'it broke' >&2; exit 7";
    auto r = t.run_checked(cmd, "frobnicating");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::command);
    CHECK(r.error().message == "frobnicating failed (exit 7): it broke");

    cmd.script = "echo only stdout; exit 2";
    CHECK(t.run_checked(cmd, "x").error().message == "x failed (exit 2): only stdout");

    cmd.script = "echo fine";
    auto ok = t.run_checked(cmd, "x");
    REQUIRE(ok.ok());
    CHECK(ok->out == "fine\n");
}

TEST_CASE("ReadOnlyTarget over a LocalTarget: reads pass, writes never reach the disk") {
    TempDir dir;
    LocalTarget local;
    ReadOnlyTarget ro(local);
    std::string path = dir.write("f", "original\n");
    CHECK(**ro.read_file(path) == "original\n");
    CHECK(ro.stat(path)->exists);
    CHECK_FALSE(ro.write_file({path, "changed\n", 0644, "root", "root"}).ok());
    Command touch;
    touch.script = "echo changed > " + shell_quote(path);
    CHECK_FALSE(ro.run(touch).ok());
    Command probe;
    probe.script = "cat " + shell_quote(path);
    probe.mutates = false;
    CHECK(ro.run(probe)->out == "original\n");
    CHECK(**local.read_file(path) == "original\n");
}
