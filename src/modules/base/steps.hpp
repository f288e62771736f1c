// The steps of the base module. Each is usable on its own (the unit tests build them directly).
#pragma once

#include "nodectl/step.hpp"

#include <optional>
#include <string>
#include <vector>

namespace nodectl::base {

// A file with exact content, owner and mode; or, with `absent`, no file at all.
struct ManagedFile {
    FileSpec spec;  // path, owner, group, mode; content when inline
    std::string source;  // local file to upload instead of inline content
    bool sensitive = false;  // never show content in plans
    bool absent = false;
};

class WriteFile final : public Step {
public:
    WriteFile(std::string id, ManagedFile file) : m_id(std::move(id)), m_file(std::move(file)) {}
    std::string id() const override { return m_id; }
    std::string title() const override { return "file " + m_file.spec.path; }
    Result<Plan> probe(Target& target) override;
    Result<void> apply(Target& target, const Plan& plan) override;

private:
    Result<std::string> desired_content() const;
    std::string m_id;
    ManagedFile m_file;
};

class SetHostname final : public Step {
public:
    explicit SetHostname(std::string name) : m_name(std::move(name)) {}
    std::string id() const override { return "base/hostname"; }
    std::string title() const override { return "hostname " + m_name; }
    Result<Plan> probe(Target& target) override;
    Result<void> apply(Target& target, const Plan& plan) override;

private:
    std::string m_name;
};

class SetTimezone final : public Step {
public:
    explicit SetTimezone(std::string zone) : m_zone(std::move(zone)) {}
    std::string id() const override { return "base/timezone"; }
    std::string title() const override { return "timezone " + m_zone; }
    Result<Plan> probe(Target& target) override;
    Result<void> apply(Target& target, const Plan& plan) override;

private:
    std::string m_zone;
};

// Keeps a marked block of lines in /etc/hosts; lines outside the block are left alone.
class ManageHostsBlock final : public Step {
public:
    explicit ManageHostsBlock(std::vector<std::string> lines) : m_lines(std::move(lines)) {}
    std::string id() const override { return "base/hosts"; }
    std::string title() const override { return "/etc/hosts entries"; }
    Result<Plan> probe(Target& target) override;
    Result<void> apply(Target& target, const Plan& plan) override;

private:
    Result<std::pair<std::string, std::string>> current_and_desired(Target& target) const;
    std::vector<std::string> m_lines;
};

class EnsurePackages final : public Step {
public:
    // `apt_sources`: a sources.list that replaces the host's own (an offline bundle's packages);
    // empty for the host's configured sources.
    EnsurePackages(std::string id, std::vector<std::string> present, std::vector<std::string> absent,
                   std::string apt_sources = "")
        : m_id(std::move(id)), m_present(std::move(present)), m_absent(std::move(absent)),
          m_apt_sources(std::move(apt_sources)) {}
    std::string id() const override { return m_id; }
    std::string title() const override { return "packages"; }
    Result<Plan> probe(Target& target) override;
    Result<void> apply(Target& target, const Plan& plan) override;

private:
    Result<std::pair<std::vector<std::string>, std::vector<std::string>>> pending(Target& target) const;
    std::string m_id;
    std::vector<std::string> m_present;
    std::vector<std::string> m_absent;
    std::string m_apt_sources;
};

class EnsureUnits final : public Step {
public:
    EnsureUnits(std::vector<std::string> enabled, std::vector<std::string> disabled)
        : m_enabled(std::move(enabled)), m_disabled(std::move(disabled)) {}
    std::string id() const override { return "base/units"; }
    std::string title() const override { return "systemd units"; }
    Result<Plan> probe(Target& target) override;
    Result<void> apply(Target& target, const Plan& plan) override;

private:
    // unit -> whether it must end up enabled, for the units that are not yet right
    Result<std::vector<std::pair<std::string, bool>>> pending(Target& target) const;
    std::vector<std::string> m_enabled;
    std::vector<std::string> m_disabled;
};

// Content of the apt proxy drop-in. The URL is written between quotes into apt's configuration,
// which has no escaping: anything but the characters of scheme://host[:port][/] is refused.
Result<std::string> apt_proxy_conf(const std::string& url);
constexpr const char* k_apt_proxy_path = "/etc/apt/apt.conf.d/01nodectl-proxy";

}  // namespace nodectl::base
