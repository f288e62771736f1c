// The Target base: shell quoting (checked through a real /bin/sh), and the file operations every
// target inherits (read_file, write_file, stat, upload), run for real through a LocalTarget in a
// temporary directory.
#include "test_support.hpp"

#include "target/local_target.hpp"
#include "target/read_only_target.hpp"
#include "util/file.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <sys/stat.h>
#include <unistd.h>

using namespace nodectl;
using nodectl::testing::CannedTarget;
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

// The base class's file operations, built on shell scripts: what an SSH target runs.
class ShellTarget final : public Target {
public:
    const std::string& name() const override { return m_name; }
    Result<CommandResult> run(const Command& cmd) override {
        return run_process({"/bin/sh", "-c", std::string(k_script_prologue) + cmd.script}, cmd.input, cmd.timeout);
    }
    Result<std::unique_ptr<HostLock>> lock(const std::string&) override {
        return make_error(ErrorCode::internal, "no lock");
    }

private:
    std::string m_name = "shell";
};

}  // namespace

TEST_CASE("shell_quote: the documented form") {
    CHECK(shell_quote("abc") == "'abc'");
    CHECK(shell_quote("") == "''");
    CHECK(shell_quote("a'b") == "'a'\\''b'");
}

TEST_CASE("shell_quote: every word survives /bin/sh unchanged") {
    for (std::string word : {std::string("plain"),
                             std::string(""),
                             std::string("a'b"),
                             std::string("'"),
                             std::string("''"),
                             std::string("'leading and trailing'"),
                             std::string("$HOME"),
                             std::string("${PATH}"),
                             std::string("`id`"),
                             std::string("$(id)"),
                             std::string("a\\b\\"),
                             std::string("\"double\""),
                             std::string("a b\tc\nd"),
                             std::string("*"),
                             std::string("?[a]"),
                             std::string("-n"),
                             std::string("%s %d %%"),
                             std::string("; rm -rf / #"),
                             std::string("a && b || c | d > e < f"),
                             std::string("~root"),
                             std::string("!event"),
                             std::string("caf\xc3\xa9 \xe2\x9c\x93")}) {
        CAPTURE(word);
        CHECK(through_sh(word) == word);
    }
}

TEST_CASE_TEMPLATE("write_file: content, mode and owner land atomically; no temporary file is left", T, LocalTarget,
                   ShellTarget) {
    TempDir dir;
    T t;
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

TEST_CASE_TEMPLATE("write_file: binary content and a path with spaces and quotes", T, LocalTarget, ShellTarget) {
    TempDir dir;
    T t;
    FileSpec f;
    f.path = dir.file("it's a file");
    f.content = std::string("\0\1\2\xff binary\n", 12);
    REQUIRE(t.write_file(f).ok());
    auto back = t.read_file(f.path);
    REQUIRE(back.ok());
    CHECK(**back == f.content);
    CHECK(t.stat(f.path)->size == 12);
}

TEST_CASE_TEMPLATE("write_file: an unknown owner fails and leaves neither file nor temporary", T, LocalTarget,
                   ShellTarget) {
    TempDir dir;
    T t;
    FileSpec f;
    f.path = dir.file("x");
    f.content = "x";
    f.owner = "no-such-user-nodectl";
    auto w = t.write_file(f);
    REQUIRE_FALSE(w.ok());
    CHECK(w.error().message.find("writing " + f.path) == 0);
    CHECK(w.error().message.find("no-such-user-nodectl") != std::string::npos);
    CHECK_FALSE(fs::exists(f.path));
    CHECK(leftovers(dir.path()).empty());
}

// A directory owned by a local user of the host (uid 64123 here), who swaps every temporary file
// nodectl creates there for a symbolic link to a file of root's, as fast as it can.
TEST_CASE_TEMPLATE("write_file in a directory a user owns: a racing symlink swap never makes root write elsewhere", T,
                   LocalTarget, ShellTarget) {
    REQUIRE(geteuid() == 0);
    TempDir dir;
    T t;
    std::string victim = dir.write("victim", "precious\n", 0600);  // someone else's file
    REQUIRE(chown(victim.c_str(), 64999, 64999) == 0);
    fs::path home = dir.path() / "home";
    fs::create_directory(home);
    REQUIRE(chown(home.c_str(), 64123, 64123) == 0);
    REQUIRE(chmod(home.c_str(), 0755) == 0);
    std::atomic<bool> stop{false};
    std::atomic<int> swaps{0};
    std::thread racer([&] {
        while (!stop) {
            try {
                std::error_code ec;
                for (const auto& e : fs::directory_iterator(home, ec)) {
                    auto n = e.path().filename().string();
                    if (n.rfind(".nodectl.", 0) == 0 && !e.is_symlink(ec) && ::unlink(e.path().c_str()) == 0 &&
                        ::symlink(victim.c_str(), e.path().c_str()) == 0) {
                        ++swaps;
                    }
                }
            } catch (const std::exception&) {
                // an entry vanished under the iterator: look again
            }
        }
    });
    FileSpec f;
    f.path = (home / "authorized_keys").string();
    f.mode = 0600;
    f.owner = "root";
    int written = 0;
    // At least 40 writes, and more (up to 400) until the racer has won a swap at least once, so
    // that a slow racer on a loaded machine cannot leave the race untested.
    for (int i = 0; i < 400 && (i < 40 || swaps.load() == 0); ++i) {
        f.content = "attempt " + std::to_string(i) + "\n";
        written += t.write_file(f).ok() ? 1 : 0;
    }
    stop = true;
    racer.join();
    MESSAGE(swaps.load(), " swaps, ", written, " writes succeeded");
    CHECK(swaps.load() > 0);
    CHECK(util::read_file(victim) == std::optional<std::string>("precious\n"));
    struct stat st {};
    REQUIRE(::stat(victim.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    CHECK(st.st_uid == 64999);

    // Without the racer the write succeeds, with the owner and mode asked for.
    for (const auto& e : fs::directory_iterator(home)) {
        fs::remove(e.path());
    }
    f.content = "final\n";
    auto w = t.write_file(f);
    REQUIRE_MESSAGE(w.ok(), (w.ok() ? "" : w.error().message));
    CHECK(util::read_file(f.path) == std::optional<std::string>("final\n"));
    CHECK(t.stat(f.path)->owner == "root");
    CHECK(t.stat(f.path)->mode == 0600);
    CHECK(leftovers(home).empty());
}

TEST_CASE_TEMPLATE("write_file: a directory reached through a symbolic link, or writable by others, is refused", T,
                   LocalTarget, ShellTarget) {
    TempDir dir;
    T t;
    fs::create_directory(dir.path() / "real");
    fs::create_directory_symlink(dir.path() / "real", dir.path() / "link");
    FileSpec f;
    f.path = dir.file("link/file");
    f.content = "x";
    auto w = t.write_file(f);
    REQUIRE_FALSE(w.ok());
    CHECK(w.error().message.find("writing " + f.path) != std::string::npos);
    CHECK_FALSE(fs::exists(dir.path() / "real/file"));

    fs::create_directory(dir.path() / "shared");
    REQUIRE(chmod((dir.path() / "shared").c_str(), 01777) == 0);
    f.path = dir.file("shared/file");
    w = t.write_file(f);
    REQUIRE_FALSE(w.ok());
    CHECK(w.error().message.find("writable by group or others") != std::string::npos);
    CHECK_FALSE(fs::exists(f.path));
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

TEST_CASE("stat: numbers a host prints are parsed without throwing") {
    for (std::string out : {"regular file|99999999999999999999999|root|root|5\n", "regular file|644|root|root|5x\n",
                            "regular file|9|root|root|5\n", "regular file|644|root|root|-1\n",
                            "regular file|644|root|root|99999999999999999999999\n"}) {
        CAPTURE(out);
        CannedTarget t(out);
        Result<FileStat> st = make_error(ErrorCode::internal, "not run");
        REQUIRE_NOTHROW(st = t.stat("/etc/x"));
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().message.find("unexpected stat output for /etc/x") == 0);
    }
    CannedTarget good("regular file|640|root|adm|12\n");
    auto st = good.stat("/etc/x");
    REQUIRE(st.ok());
    CHECK(st->mode == 0640);
    CHECK(st->size == 12);
}

TEST_CASE("LocalTarget run: output beyond the bound is an error, not memory") {
    LocalTarget t;
    Command cmd;
    cmd.script = "head -c " + std::to_string(k_max_command_output + 4096) + " /dev/zero";
    auto r = t.run(cmd);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("the command printed more than 16 MiB") != std::string::npos);
    cmd.script = "head -c 1000 /dev/zero";
    REQUIRE(t.run(cmd).ok());
}
