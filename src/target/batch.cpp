#include "target/batch.hpp"

#include "target/local_target.hpp"
#include "util/strings.hpp"
#include "util/text.hpp"

namespace nodectl {

namespace {

constexpr std::string_view k_header = "@@nodectl-batch";  // the first line
constexpr int k_timed_out = 124;  // coreutils timeout's exit status

// The next line of `out` from `pos` (which moves past it); nullopt when there is none.
std::optional<std::string_view> next_line(std::string_view out, size_t& pos) {
    auto eol = out.find('\n', pos);
    if (eol == std::string_view::npos) {
        return std::nullopt;
    }
    auto line = out.substr(pos, eol - pos);
    pos = eol + 1;
    return line;
}

}  // namespace

std::string batch_script(const std::vector<Command>& commands) {
    // The commands run side by side (they only read), each into files of its own in a private
    // directory; then come their exit statuses, the files' sizes (one `stat`) and the files'
    // bytes (one `cat`), in order. Files, not the shell's variables: those would lose NUL bytes
    // and trailing newlines.
    std::string script = "d=$(mktemp -d) || exit 1; trap 'rm -rf -- \"$d\"' EXIT\n"
                         "b() { { timeout -k 5 \"$2\" sh -c \"$3\" </dev/null >\"$d/$1.o\" 2>\"$d/$1.e\"; "
                         "echo $? >\"$d/$1.x\"; } & }\n";
    std::string statuses, files;
    for (size_t i = 0; i < commands.size(); ++i) {
        auto n = std::to_string(i);
        script += "b " + n + " " + std::to_string(commands[i].timeout.count()) + " " +
                  shell_quote(k_script_prologue + commands[i].script) + "\n";
        statuses += "read x <" + n + ".x && s=\"$s $x\" && ";
        files += " " + n + ".o " + n + ".e";
    }
    return script + "wait\ncd -- \"$d\" && s= && " + statuses + "printf '%s\\n%s\\n' " + std::string(k_header) +
           " \"$s\" && stat -c %s --" + files + " && cat --" + files + "\n";
}

Result<std::vector<Result<CommandResult>>> parse_batch_output(const std::vector<Command>& commands,
                                                              const std::string& text) {
    auto bad = [&](const std::string& what) {
        return make_error(ErrorCode::command, "unexpected output of a batch of " + std::to_string(commands.size()) +
                                                  " commands (" + what + "): " + util::printable(text.substr(0, 120)));
    };
    std::string_view out(text);
    size_t pos = 0;
    if (next_line(out, pos) != k_header) {
        return bad("no header");
    }
    auto status_line = next_line(out, pos);
    auto statuses = status_line ? util::split(util::trim(*status_line), ' ') : std::vector<std::string>();
    if (statuses.size() != commands.size()) {
        return bad("exit statuses");
    }
    std::vector<uint64_t> sizes;
    for (size_t i = 0; i < 2 * commands.size(); ++i) {
        auto line = next_line(out, pos);
        auto n = line ? util::parse_uint(*line) : std::nullopt;
        if (!n) {
            return bad("sizes");
        }
        sizes.push_back(*n);
    }
    std::vector<Result<CommandResult>> results;
    for (size_t i = 0; i < commands.size(); ++i) {
        auto exit_code = util::parse_uint(statuses[i], {.max = 255});
        if (!exit_code || sizes[2 * i] > out.size() - pos || sizes[2 * i + 1] > out.size() - pos - sizes[2 * i]) {
            return bad("command " + std::to_string(i));
        }
        CommandResult r{static_cast<int>(*exit_code), std::string(out.substr(pos, sizes[2 * i])),
                        std::string(out.substr(pos + sizes[2 * i], sizes[2 * i + 1]))};
        pos += sizes[2 * i] + sizes[2 * i + 1];
        if (r.exit_code == k_timed_out) {
            results.emplace_back(make_error(ErrorCode::timeout, "command timed out after " +
                                                                    std::to_string(commands[i].timeout.count()) + "s"));
        } else {
            results.emplace_back(std::move(r));
        }
    }
    if (pos != out.size()) {
        return bad("bytes after the last command");
    }
    return results;
}

Result<std::vector<Result<CommandResult>>> run_batch(Target& target, const std::vector<Command>& commands) {
    if (commands.empty()) {
        return std::vector<Result<CommandResult>>();
    }
    Command batch;
    batch.script = batch_script(commands);
    batch.mutates = false;
    batch.timeout = std::chrono::seconds(10);
    for (const auto& c : commands) {
        batch.timeout += c.timeout;
    }
    auto r = TRY(target.run(batch));
    if (r.exit_code != 0) {
        return make_error(ErrorCode::command, "a batch of " + std::to_string(commands.size()) +
                                                  " commands failed (exit " + std::to_string(r.exit_code) +
                                                  "): " + util::trim(r.err));
    }
    return parse_batch_output(commands, r.out);
}

}  // namespace nodectl
