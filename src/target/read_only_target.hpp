// The target a plan runs on: probes pass through to the real host, anything that would change it
// is refused. This is what makes `plan` and `--dry-run` unable to touch a host, whatever a step does.
#pragma once

#include "nodectl/target.hpp"

namespace nodectl {

class ReadOnlyTarget final : public Target {
public:
    explicit ReadOnlyTarget(Target& inner) : m_inner(inner) {}
    const std::string& name() const override { return m_inner.name(); }
    bool read_only() const override { return true; }
    bool batches_probes() const override { return m_inner.batches_probes(); }

    Result<CommandResult> run(const Command& cmd) override {
        if (cmd.mutates) {
            return refused("run a changing command");
        }
        return m_inner.run(cmd);
    }
    Result<std::optional<std::string>> read_file(const std::string& path) override { return m_inner.read_file(path); }
    Result<FileStat> stat(const std::string& path) override { return m_inner.stat(path); }
    Result<void> write_file(const FileSpec& file) override { return refused("write " + file.path); }
    Result<void> upload(const std::string&, const FileSpec& file) override { return refused("upload " + file.path); }
    Result<std::unique_ptr<HostLock>> lock(const std::string&) override { return refused("take the host lock"); }
    std::string login_user() const override { return m_inner.login_user(); }

private:
    static Error refused(const std::string& what) {
        return make_error(ErrorCode::internal, "dry run: refused to " + what);
    }
    Target& m_inner;
};

}  // namespace nodectl
