// The archive as a stream: libarchive writes tar (pax), unblocked, into our own callback
// (archive_write_open2), which hands it to zstd on the compressing thread (compress.cpp); it
// reads through a callback that pulls from a Source, and its zstd filter. Nothing is spooled to
// disk.
#include "modules/backup/detail.hpp"
#include "nodectl/target.hpp"
#include "util/json.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <map>
#include <set>

namespace nodectl::backup {

struct ArchiveCallbacks {
    static la_ssize_t write(struct archive* a, void* self, const void* buf, size_t n) {
        auto* w = static_cast<ArchiveWriter*>(self);
        auto r = w->m_zstd->write(static_cast<const char*>(buf), n);
        if (!r) {
            w->m_sink_error = r.error();
            archive_set_error(a, EIO, "%s", r.error().message.c_str());
            return -1;
        }
        return static_cast<la_ssize_t>(n);
    }
};

namespace {

using EntryPtr = std::unique_ptr<archive_entry, decltype(&archive_entry_free)>;

EntryPtr make_entry(const std::string& path, const ArchiveWriter::Meta& meta) {
    EntryPtr e(archive_entry_new(), &archive_entry_free);
    archive_entry_set_pathname_utf8(e.get(), path.c_str());
    archive_entry_set_perm(e.get(), meta.mode & 07777);
    archive_entry_set_mtime(e.get(), meta.mtime, 0);
    archive_entry_set_uid(e.get(), meta.uid);
    archive_entry_set_gid(e.get(), meta.gid);
    if (!meta.uname.empty()) {
        archive_entry_set_uname(e.get(), meta.uname.c_str());
    }
    if (!meta.gname.empty()) {
        archive_entry_set_gname(e.get(), meta.gname.c_str());
    }
    return e;
}

}  // namespace

ArchiveWriter::ArchiveWriter(Sink& out, const ArchiveOptions& options) : m_out(out), m_options(options) {}

ArchiveWriter::~ArchiveWriter() {
    if (m_a) {
        archive_write_free(m_a);
    }
}

Result<void> ArchiveWriter::check(int r, const std::string& what) {
    if (r >= ARCHIVE_WARN) {
        return Ok{};
    }
    if (m_sink_error) {
        return *m_sink_error;
    }
    const char* msg = archive_error_string(m_a);
    return make_error(ErrorCode::io, what + ": " + (msg ? msg : "libarchive error"));
}

Result<void> ArchiveWriter::open() {
    m_zstd = threaded_sink(TRY(zstd_sink(m_out, m_options)), m_options.times);
    m_a = archive_write_new();
    archive_write_set_format_pax_restricted(m_a);
    // Unblocked: libarchive hands each piece to the callback as it is (no copy into 10 KiB
    // records), and pads nothing after the end-of-archive blocks; the tar bytes are the same.
    archive_write_set_bytes_per_block(m_a, 0);
    return check(archive_write_open2(m_a, this, nullptr, &ArchiveCallbacks::write, nullptr, nullptr), "open archive");
}

Result<void> ArchiveWriter::begin_file(const std::string& path, uint64_t size, const Meta& meta) {
    auto e = make_entry(path, meta);
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
    StageClock clock(m_options.times, Stage::tar);
    TRY_VOID(check(archive_write_header(m_a, e.get()), path));
    m_current = path;
    m_current_size = size;
    m_current_written = 0;
    return Ok{};
}

Result<void> ArchiveWriter::data(const char* p, size_t n) {
    if (m_current_written + n > m_current_size) {
        return make_error(ErrorCode::internal, m_current + ": more data than the size in its header");
    }
    while (n > 0) {
        la_ssize_t w = 0;
        {
            StageClock clock(m_options.times, Stage::tar);
            w = archive_write_data(m_a, p, n);
        }
        if (w < 0) {
            TRY_VOID(check(ARCHIVE_FATAL, m_current));
        }
        {
            StageClock clock(m_options.times, Stage::hash);
            m_sha.update(p, static_cast<size_t>(w));
        }
        m_current_written += static_cast<uint64_t>(w);
        m_raw += static_cast<uint64_t>(w);
        p += w;
        n -= static_cast<size_t>(w);
    }
    return Ok{};
}

Result<void> ArchiveWriter::end_file() {
    if (m_current_written != m_current_size) {
        return make_error(ErrorCode::internal, m_current + ": " + std::to_string(m_current_written) + " of " +
                                                   std::to_string(m_current_size) + " bytes written");
    }
    {
        StageClock clock(m_options.times, Stage::tar);
        TRY_VOID(check(archive_write_finish_entry(m_a), m_current));
    }
    m_entries.push_back({m_current, m_current_size, m_sha.final_hex()});
    m_current.clear();
    return Ok{};
}

Result<void> ArchiveWriter::add_directory(const std::string& path, const Meta& meta) {
    auto e = make_entry(path, meta);
    archive_entry_set_filetype(e.get(), AE_IFDIR);
    StageClock clock(m_options.times, Stage::tar);
    TRY_VOID(check(archive_write_header(m_a, e.get()), path));
    m_entries.push_back({path, 0, ""});  // listed, so an added entry is noticed; nothing to hash
    return Ok{};
}

Result<void> ArchiveWriter::add_symlink(const std::string& path, const std::string& target, const Meta& meta) {
    auto e = make_entry(path, meta);
    archive_entry_set_filetype(e.get(), AE_IFLNK);
    archive_entry_set_symlink_utf8(e.get(), target.c_str());
    StageClock clock(m_options.times, Stage::tar);
    TRY_VOID(check(archive_write_header(m_a, e.get()), path));
    m_entries.push_back({path, 0, ""});
    return Ok{};
}

Result<void> ArchiveWriter::add_buffer(const std::string& path, const std::string& content, const Meta& meta) {
    TRY_VOID(begin_file(path, content.size(), meta));
    TRY_VOID(data(content.data(), content.size()));
    return end_file();
}

Result<void> ArchiveWriter::finish() {
    {
        StageClock clock(m_options.times, Stage::tar);
        TRY_VOID(check(archive_write_close(m_a), "finish archive"));
    }
    return m_zstd->close();  // the end of the zstd frame, then m_out.close()
}

// ---- reading ----

namespace {

struct ReadState {
    Source* in;
    std::vector<char> buf = std::vector<char>(1 << 20);
    std::optional<Error> error;
};

la_ssize_t read_cb(struct archive* a, void* self, const void** out) {
    auto* st = static_cast<ReadState*>(self);
    auto r = st->in->read(st->buf.data(), st->buf.size());
    if (!r) {
        st->error = r.error();
        archive_set_error(a, EIO, "%s", r.error().message.c_str());
        return -1;
    }
    *out = st->buf.data();
    return static_cast<la_ssize_t>(*r);
}

constexpr size_t k_max_backup_manifest = 64 << 20;

}  // namespace

namespace {

// An entry's header as a ReadEntry (tar's trailing '/' of a directory dropped).
ReadEntry entry_from_header(archive_entry* e) {
    ReadEntry entry;
    entry.path = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    while (entry.path.size() > 1 && entry.path.back() == '/') {
        entry.path.pop_back();
    }
    entry.type = archive_entry_filetype(e);
    entry.mode = archive_entry_perm(e);
    entry.mtime = archive_entry_mtime(e);
    entry.uid = archive_entry_uid(e);
    entry.gid = archive_entry_gid(e);
    entry.size = static_cast<uint64_t>(archive_entry_size(e));
    if (archive_entry_symlink(e)) {
        entry.symlink = archive_entry_symlink(e);
    }
    if (archive_entry_hardlink(e)) {
        entry.hardlink = archive_entry_hardlink(e);
    }
    return entry;
}

// The entries manifest.json lists, in its order, each checked against what the archive held
// (`seen`): none missing, none unlisted, sizes and digests equal.
Result<std::vector<EntryInfo>> entries_matching_manifest(const std::string& text,
                                                         const std::map<std::string, EntryInfo>& seen) {
    auto parsed = util::parse_json(text);
    if (!parsed) {
        return damaged("manifest.json is not valid JSON: " + parsed.error());
    }
    const nlohmann::json& m = *parsed;
    if (!m.is_object() || !m.contains("entries") || !m["entries"].is_array() ||
        m.value("format", 0) != k_format_version) {
        return damaged("manifest.json is not a nodectl backup manifest (format " + std::to_string(k_format_version) +
                       ")");
    }
    std::vector<EntryInfo> entries;
    std::set<std::string> listed;
    try {
        for (const auto& je : m["entries"]) {
            EntryInfo want{je.at("path").get<std::string>(), je.value("size", uint64_t{0}),
                           je.value("sha256", std::string())};
            listed.insert(want.path);
            auto it = seen.find(want.path);
            if (it == seen.end()) {
                return damaged("entry " + shell_quote(want.path) +
                               " is listed in manifest.json but missing from the archive");
            }
            if (!want.sha256.empty() && (it->second.size != want.size || it->second.sha256 != want.sha256)) {
                return damaged("entry " + shell_quote(want.path) + " does not match manifest.json (size " +
                               std::to_string(it->second.size) + " vs " + std::to_string(want.size) + ", sha256 " +
                               it->second.sha256 + " vs " + want.sha256 + ")");
            }
            entries.push_back(it->second);
        }
    } catch (const std::exception& ex) {
        return damaged(std::string("manifest.json: ") + ex.what());
    }
    for (const auto& [path, info] : seen) {
        if (!listed.contains(path)) {
            return damaged("entry " + shell_quote(path) + " is not listed in manifest.json");
        }
    }
    return entries;
}

// One pass over an archive: each entry's header checked, its data hashed and handed to the
// callbacks (the manifest's kept), then the whole checked against the manifest.
class ArchiveReader {
public:
    ArchiveReader(Source& in, const ReadCallbacks& callbacks)
        : m_st{&in}, m_callbacks(callbacks), m_holder(archive_read_new(), &archive_read_free), m_a(m_holder.get()) {}

    Result<ReadResult> read() {
        archive_read_support_format_tar(m_a);
        archive_read_support_filter_zstd(m_a);
        if (archive_read_open2(m_a, &m_st, nullptr, &read_cb, nullptr, nullptr) != ARCHIVE_OK) {
            return fail("not a nodectl backup archive");
        }
        for (;;) {
            archive_entry* e = nullptr;
            int r = archive_read_next_header(m_a, &e);
            if (r == ARCHIVE_EOF) {
                break;
            }
            if (r < ARCHIVE_WARN) {
                return fail("damaged after entry " + shell_quote(m_last_good));
            }
            TRY_VOID(read_entry(entry_from_header(e)));
        }
        if (!m_manifest_seen) {
            return damaged("the archive ends without manifest.json (truncated after entry " + shell_quote(m_last_good) +
                           ")");
        }
        m_result.entries = TRY(entries_matching_manifest(m_result.manifest_text, m_seen));
        return std::move(m_result);
    }

private:
    // The reader's error, or libarchive's, said of `where`.
    Error fail(const std::string& where) const {
        if (m_st.error) {
            if (m_st.error->code == ErrorCode::damaged || m_st.error->code == ErrorCode::auth) {
                auto e = *m_st.error;
                e.message = where + ": " + e.message;
                return e;
            }
            return *m_st.error;
        }
        const char* msg = archive_error_string(m_a);
        return damaged(where + ": " + (msg ? msg : "unreadable"));
    }

    Result<void> read_entry(const ReadEntry& entry) {
        if (m_manifest_seen) {
            return damaged("entry " + shell_quote(entry.path) + " follows manifest.json (the manifest must be last)");
        }
        if (m_seen.contains(entry.path)) {
            return damaged("entry " + shell_quote(entry.path) + " appears twice");
        }
        bool is_manifest = entry.path == k_manifest_name;
        if (is_manifest && (entry.type != AE_IFREG || entry.size > k_max_backup_manifest)) {
            return damaged("manifest.json is not a regular file of sensible size");
        }
        if (!is_manifest && m_callbacks.on_entry) {
            TRY_VOID(m_callbacks.on_entry(entry));
        }
        util::Sha256 sha;
        uint64_t total = 0;
        for (;;) {
            la_ssize_t n = archive_read_data(m_a, m_buf.data(), m_buf.size());
            if (n < 0) {
                return fail("entry " + shell_quote(entry.path));
            }
            if (n == 0) {
                break;
            }
            sha.update(m_buf.data(), static_cast<size_t>(n));
            total += static_cast<uint64_t>(n);
            if (is_manifest) {
                m_result.manifest_text.append(m_buf.data(), static_cast<size_t>(n));
            } else if (m_callbacks.on_data) {
                TRY_VOID(m_callbacks.on_data(entry, m_buf.data(), static_cast<size_t>(n)));
            }
        }
        if (is_manifest) {
            m_manifest_seen = true;
        } else {
            bool regular = entry.type == AE_IFREG;
            m_seen[entry.path] = {entry.path, regular ? total : 0, regular ? sha.final_hex() : ""};
            if (m_callbacks.on_end) {
                TRY_VOID(m_callbacks.on_end(entry));
            }
        }
        m_last_good = entry.path;
        return Ok{};
    }

    ReadState m_st;
    const ReadCallbacks& m_callbacks;
    std::unique_ptr<archive, decltype(&archive_read_free)> m_holder;
    archive* m_a;
    std::vector<char> m_buf = std::vector<char>(1 << 20);
    std::map<std::string, EntryInfo> m_seen;
    std::string m_last_good = "(start of archive)";
    bool m_manifest_seen = false;
    ReadResult m_result;
};

}  // namespace

Result<ReadResult> read_archive(Source& in, const ReadCallbacks& callbacks) {
    return ArchiveReader(in, callbacks).read();
}

}  // namespace nodectl::backup
