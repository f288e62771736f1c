#include "cli/cli.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <libssh/libssh.h>

#include <csignal>
#include <iostream>

namespace nodectl::cli {

namespace {

constexpr const char* k_footer =
    "\nExit codes: 0 ok, 2 usage error, 3 invalid profile or inventory, 4 some hosts failed,\n"
    "5 every host failed, 6 stack status: a site not ready, 7 check found drift, 8 not an intact bundle,\n"
    "10/11/12 status: first boot running/"
    "failed/not started, 69 command not available yet, 1 internal error.\n"
    "`backup run`: 4 some targets failed, 5 every target failed; 8 also a damaged backup archive.\n"
    "Logs go to stderr (one line per event, prefixed with the host); results go to stdout.\n"
    "Run `nodectl COMMAND --help` for a command's options.";

// While the command runs, everything it writes to std::cerr leaves through util::printable: error
// messages carry text from hosts, bundles, sticks and backup targets (names, command output), and
// none of it may move the cursor, retitle the terminal or hide lines. The log's own sink does the
// same (util/log.cpp); stdout is escaped where host output is printed (hosts_cmd.cpp, util::json_text).
class PrintableStderr {
public:
    PrintableStderr() : m_buf(std::cerr.rdbuf()), m_old(std::cerr.rdbuf(&m_buf)) {}
    ~PrintableStderr() {
        std::cerr.flush();
        std::cerr.rdbuf(m_old);
    }
    PrintableStderr(const PrintableStderr&) = delete;
    PrintableStderr& operator=(const PrintableStderr&) = delete;

private:
    util::PrintableBuf m_buf;
    std::streambuf* m_old;
};

}  // namespace

int main(int argc, char** argv) {
    PrintableStderr printable_stderr;
    std::signal(SIGPIPE, SIG_IGN);
    log::init();
    ssh_init();

    // The first word that is not an option names the command.
    for (int i = 1; i < argc; ++i) {
        std::string_view word = argv[i];
        if (word.starts_with("-")) {
            i += word == "--log-level" || word == "--parallel" || word == "-j";  // options taking a value
            continue;
        }
        for (const auto& spec : commands()) {
            if (spec.name == word && !spec.run) {
                std::cerr << "nodectl " << word
                          << ": not available yet in this build (the capability is planned; see docs/status.md). "
                             "Nothing was done.\n";
                return k_exit_unavailable;
            }
        }
        break;
    }

    Context ctx;
    CLI::App app{"nodectl: turn bare-metal and edge Linux machines into hardened, working nodes.\n"
                 "Describe a node in a TOML profile, then plan and apply it over SSH or locally.",
                 "nodectl"};
    app.footer(k_footer);
    app.require_subcommand(1);
    app.fallthrough();
    app.add_option("--log-level", ctx.global.log_level, "trace, debug, info, warn, error or off")
        ->capture_default_str();
    app.add_flag("--json", ctx.global.json, "Print command output as JSON (plan, apply, check, version, profile keys)");
    app.add_option("--parallel,-j", ctx.global.parallel, "Hosts worked on at once")
        ->capture_default_str()
        ->check(CLI::Range(1, 256));

    std::vector<std::pair<CLI::App*, const CommandSpec*>> subs;
    for (const auto& spec : commands()) {
        auto* sub = app.add_subcommand(std::string(spec.name), std::string(spec.summary));
        if (!spec.description.empty()) {
            sub->footer("\n" + std::string(spec.description));
        }
        if (spec.configure) {
            spec.configure(*sub, ctx);
        }
        subs.emplace_back(sub, &spec);
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "nodectl: " << e.what() << "\nRun `nodectl --help` or `nodectl COMMAND --help` for usage.\n";
        return k_exit_usage;
    }
    if (!log::set_level(ctx.global.log_level)) {
        std::cerr << "nodectl: unknown --log-level '" << ctx.global.log_level << "'\n";
        return k_exit_usage;
    }
    for (auto& [sub, spec] : subs) {
        if (sub->parsed()) {
            return spec->run(*sub, ctx);
        }
    }
    return k_exit_usage;
}

}  // namespace nodectl::cli
