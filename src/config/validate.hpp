// Checking a parsed TOML table against the key table.
#pragma once

#include "nodectl/config.hpp"

#include <string>
#include <vector>

namespace nodectl {

using Diagnostics = std::vector<std::string>;

std::string location(const toml::source_region& src);
// Appends "file:line:col: reason" for every unknown key, wrong type and invalid value.
void validate_table(ConfigFile file, const toml::table& table, const std::string& prefix, Diagnostics& diags);
// Parses a TOML file; on a syntax error appends a diagnostic and returns nullopt.
std::optional<toml::table> parse_toml_file(const std::string& path, Diagnostics& diags);
// Parses TOML text; `path` names it in positions and diagnostics.
std::optional<toml::table> parse_toml_text(const std::string& text, const std::string& path, Diagnostics& diags);

}  // namespace nodectl
