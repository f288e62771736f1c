// Archive names and retention. An archive's time is in its name (NAME-YYYYMMDDTHHMMSSZ), so
// retention never depends on a store's modification times (S3 copies, rsync'd NFS exports).
// Rules as restic's forget: the newest keep_last archives; the newest archive of each of the
// newest keep_daily days, keep_weekly ISO weeks and keep_monthly months (UTC). An archive any rule
// keeps stays; with no rule set nothing is ever deleted.
#include "modules/backup/backup.hpp"
#include "util/log.hpp"
#include "util/time.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <regex>
#include <set>

namespace nodectl::backup {

std::string make_id(const std::string& name, std::chrono::sys_seconds time) {
    return name + "-" + util::format_utc(time, util::k_utc_compact);
}

std::optional<Stored> parse_object_name(const std::string& object) {
    static const std::regex k_re(R"(^([A-Za-z0-9][A-Za-z0-9._-]*)-([0-9]{8}T[0-9]{6}Z)\.tar\.zst(\.enc)?$)");
    std::smatch m;
    if (!std::regex_match(object, m, k_re)) {
        return std::nullopt;
    }
    std::tm tm{};
    std::string ts = m[2].str();
    if (std::sscanf(ts.c_str(), "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                    &tm.tm_sec) != 6) {
        return std::nullopt;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    Stored s;
    s.id = m[1].str() + "-" + ts;
    s.object = object;
    s.encrypted = m[3].matched;
    s.time = std::chrono::sys_seconds(std::chrono::seconds(timegm(&tm)));
    return s;
}

std::vector<std::string> to_prune(const std::vector<Stored>& archives, const Retention& retention) {
    if (!retention.any()) {
        return {};
    }
    std::vector<const Stored*> sorted;
    for (const auto& a : archives) {
        sorted.push_back(&a);
    }
    std::sort(sorted.begin(), sorted.end(),
              [](const Stored* a, const Stored* b) { return a->time != b->time ? a->time > b->time : a->id > b->id; });
    std::set<std::string> keep;
    for (int i = 0; i < retention.keep_last && i < static_cast<int>(sorted.size()); ++i) {
        keep.insert(sorted[static_cast<size_t>(i)]->object);
    }
    // An archive is kept when it is the newest of its day, week or month (named by a strftime format).
    auto apply = [&](int count, const char* bucket_format) {
        std::set<std::string> buckets;
        for (const auto* a : sorted) {
            if (static_cast<int>(buckets.size()) >= count) {
                break;
            }
            if (buckets.insert(util::format_utc(a->time, bucket_format)).second) {
                keep.insert(a->object);
            }
        }
    };
    apply(retention.keep_daily, "%Y-%m-%d");
    apply(retention.keep_weekly, "%G-W%V");  // ISO year and week: 2024-12-30 is in 2025-W01
    apply(retention.keep_monthly, "%Y-%m");
    std::vector<std::string> out;
    for (const auto& a : archives) {
        if (!keep.contains(a.object)) {
            out.push_back(a.object);
        }
    }
    return out;
}

std::vector<Stored> own_archives(const std::vector<Stored>& listed, const std::string& name, bool encrypted_only,
                                 std::chrono::sys_seconds now, std::vector<std::string>* ignored) {
    std::vector<Stored> out;
    for (const auto& a : listed) {
        if (a.id.size() != name.size() + 17 || a.id.compare(0, name.size(), name) != 0 || a.id[name.size()] != '-') {
            continue;  // another backup's (another host's) archive
        }
        if (encrypted_only && !a.encrypted) {
            if (ignored) {
                ignored->push_back(a.object +
                                   " is not encrypted although a key is configured: not counted, not deleted");
            }
            continue;
        }
        if (a.time > now) {
            if (ignored) {
                ignored->push_back(a.object + " is dated in the future: not counted, not deleted");
            }
            continue;
        }
        out.push_back(a);
    }
    return out;
}

std::vector<std::string> prunable(const Settings& settings, const TargetSettings& target,
                                  const std::vector<Stored>& listed, std::chrono::sys_seconds now) {
    if (!target.retention.any()) {
        return {};
    }
    std::vector<std::string> ignored;
    auto own = own_archives(listed, settings.name, !settings.encryption_key_file.empty(), now, &ignored);
    for (const auto& why : ignored) {
        log::warn("backup", "target {}: retention: {}", target.name, why);
    }
    return to_prune(own, target.retention);
}

}  // namespace nodectl::backup
