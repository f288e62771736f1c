// The pieces of the backup pipeline: byte sinks and sources, the chunked AES-256-GCM layer, the
// archive writer and reader, child processes, and targets. Internal to src/modules/backup.
#pragma once

#include "modules/backup/backup.hpp"
#include "util/digest.hpp"

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

struct archive;

namespace nodectl::backup {

// A file descriptor closed when it goes out of scope.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : m_fd(fd) {}
    ~UniqueFd();
    UniqueFd(UniqueFd&& o) noexcept : m_fd(std::exchange(o.m_fd, -1)) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept;
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    int get() const { return m_fd; }
    explicit operator bool() const { return m_fd >= 0; }

private:
    int m_fd = -1;
};

// Where bytes go, in order. write() may be called with any size.
class Sink {
public:
    virtual ~Sink() = default;
    virtual Result<void> write(const char* data, size_t size) = 0;
    // No more data; flushes whatever the sink holds.
    virtual Result<void> close() = 0;
};

// Where bytes come from, in order. read() returns 0 at the end.
class Source {
public:
    virtual ~Source() = default;
    virtual Result<size_t> read(char* buf, size_t size) = 0;
};

// ---- encryption (crypto.cpp) ----

using Key = std::array<unsigned char, 32>;

// A key file holds 32 bytes: raw, or as 64 hex digits (a trailing newline is fine). It must not be
// readable by group or others.
Result<Key> load_key(const std::string& path);

// Encrypted stream format (all integers big-endian):
//   header  "NDCTLBK1" | u32 chunk_size | 16 bytes file id | 16 bytes key check
//   chunk   u8 final | u32 length | ciphertext (length bytes) | 16 bytes GCM tag
// A per-file key is HKDF-SHA256(key, salt = file id); the key check is HMAC-SHA256(file key,
// "key-check") cut to 16 bytes, so a wrong key is told from damage. Chunk i is sealed with nonce
// = u64 i | u32 0 and additional data = header | u64 i | u8 final: a flipped bit, a swapped or
// dropped chunk, a chunk from another file, or a missing final chunk all fail authentication.
inline constexpr size_t k_crypt_chunk = 1 << 20;
// The log's subject for everything the backup engine says.
inline constexpr const char* k_log = "backup";
std::unique_ptr<Sink> encrypting_sink(const Key& key, Sink& out, size_t chunk_size = k_crypt_chunk);
std::unique_ptr<Source> decrypting_source(const Key& key, Source& in);
// Marks data that failed authentication or framing: "backup verify" step (is_damaged()).
Error damaged(const std::string& what);

// ---- archive writing (archive.cpp) ----

struct ArchiveOptions {
    int level = 3;
    int threads = 1;
};

// A tar (pax) + zstd stream written by libarchive into `out`. Entries are written one after the
// other; each entry's size is known before its data (tar needs it).
class ArchiveWriter {
public:
    ArchiveWriter(Sink& out, const ArchiveOptions& options);
    ~ArchiveWriter();
    ArchiveWriter(const ArchiveWriter&) = delete;
    ArchiveWriter& operator=(const ArchiveWriter&) = delete;

    Result<void> open();
    struct Meta {
        unsigned mode = 0600;
        int64_t mtime = 0;
        int64_t uid = 0, gid = 0;
        std::string uname, gname;
    };
    Result<void> begin_file(const std::string& path, uint64_t size, const Meta& meta);
    Result<void> data(const char* p, size_t n);
    Result<void> end_file();  // records size and sha256 in entries()
    Result<void> add_directory(const std::string& path, const Meta& meta);
    Result<void> add_symlink(const std::string& path, const std::string& target, const Meta& meta);
    Result<void> add_buffer(const std::string& path, const std::string& content, const Meta& meta);
    Result<void> finish();
    const std::vector<EntryInfo>& entries() const { return m_entries; }
    uint64_t raw_bytes() const { return m_raw; }
    // The error the output sink gave, if any (libarchive reports only "write failed").
    const std::optional<Error>& sink_error() const { return m_sink_error; }

private:
    friend struct ArchiveCallbacks;
    Result<void> check(int r, const std::string& what);
    Sink& m_out;
    ArchiveOptions m_options;
    ::archive* m_a = nullptr;
    std::string m_current;
    uint64_t m_current_size = 0, m_current_written = 0;
    util::Sha256 m_sha;
    std::vector<EntryInfo> m_entries;
    uint64_t m_raw = 0;
    std::optional<Error> m_sink_error;
};

// ---- archive reading (archive.cpp) ----

// One pass over an archive. For each entry, `on_entry` is called with its header, then `on_data`
// with its bytes; hashes are checked against manifest.json at the end. Errors name the entry.
struct ReadEntry {
    std::string path;
    unsigned type = 0;  // AE_IFREG, AE_IFDIR, AE_IFLNK
    unsigned mode = 0;
    int64_t mtime = 0;
    int64_t uid = 0, gid = 0;
    std::string symlink;
    std::string hardlink;  // set when the entry is a hard link to an earlier one
    uint64_t size = 0;
};
struct ReadCallbacks {
    std::function<Result<void>(const ReadEntry&)> on_entry;
    std::function<Result<void>(const ReadEntry&, const char*, size_t)> on_data;
    std::function<Result<void>(const ReadEntry&)> on_end;
};
struct ReadResult {
    std::string manifest_text;
    std::vector<EntryInfo> entries;  // as found, checked
};
Result<ReadResult> read_archive(Source& in, const ReadCallbacks& callbacks);

// ---- sources (sources.cpp) ----

// Dumps every database of s.mariadb into the archive, in chunks; fills the manifest's "mariadb" part.
Result<void> dump_databases(const Settings& s, ArchiveWriter& w, nlohmann::json& out);
// Adds the file tree `t` beneath "files/NAME/"; appends its line to the manifest's "files" part.
Result<void> add_tree(ArchiveWriter& w, const FileTree& t, nlohmann::json& out);
// The metadata of a file nodectl writes into the archive itself (the manifest): 0600, now.
ArchiveWriter::Meta generated_meta();

// ---- child processes (process.cpp) ----

class Child {
public:
    Child() = default;
    ~Child();
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    // argv[0] is looked up in PATH. With `pipe_stdin`, stdin_fd() is writable; with `pipe_stdout`,
    // stdout_fd() is readable; stderr is kept (the last 4 KiB) for the error message.
    Result<void> start(const std::vector<std::string>& argv, bool pipe_stdin, bool pipe_stdout,
                       const std::vector<std::string>& extra_env = {});
    int stdin_fd() const { return m_in; }
    int stdout_fd() const { return m_out; }
    void close_stdin();
    // Waits for the exit; ok when it exited 0, else an error naming argv[0] with its stderr.
    Result<void> wait();
    void kill_now();

private:
    pid_t m_pid = -1;
    int m_in = -1, m_out = -1, m_err = -1;
    std::string m_name;
};

// Runs argv to completion; stdout returned.
Result<std::string> run_capture(const std::vector<std::string>& argv, const std::string& input = {});
// `/bin/sh -c command`, for hooks.
Result<void> run_hook(const std::string& command, const std::vector<std::string>& extra_env);

// A MariaDB client option file holding the credentials, so they never appear in argv or the
// environment of anything but the client: an anonymous memory file (memfd, 0600), never on disk,
// so a run that is killed leaves no password behind. The clients started while it exists (only
// the database clients of the dump or restore) inherit it and read it as /dev/fd/N; it is closed
// on destruction.
class ClientOptionFile {
public:
    ClientOptionFile() = default;
    ClientOptionFile(const ClientOptionFile&) = delete;
    ClientOptionFile& operator=(const ClientOptionFile&) = delete;
    ~ClientOptionFile();
    Result<void> create(const std::string& host, int port, const std::string& socket, const std::string& user,
                        const std::string& password);
    std::string arg() const { return "--defaults-extra-file=/dev/fd/" + std::to_string(m_fd); }

private:
    int m_fd = -1;
};

// ---- targets (target_dir.cpp, target_s3.cpp) ----

class Upload {
public:
    virtual ~Upload() = default;
    virtual Result<void> write(const char* data, size_t size) = 0;
    virtual Result<void> commit() = 0;  // the object appears under its final name
    virtual void abort() = 0;           // nothing is left behind
};

class BackupTarget {
public:
    virtual ~BackupTarget() = default;
    virtual const std::string& name() const = 0;
    // Checks before a run (free space, reachability); a failure skips the target.
    virtual Result<void> prepare() = 0;
    virtual Result<std::unique_ptr<Upload>> upload(const std::string& object) = 0;
    virtual Result<std::vector<Stored>> list() = 0;
    // The object's bytes, in order.
    virtual Result<std::unique_ptr<Source>> open(const std::string& object) = 0;
    virtual Result<void> remove(const std::string& object) = 0;
};

std::unique_ptr<BackupTarget> make_directory_target(const TargetSettings& settings);
Result<std::unique_ptr<BackupTarget>> make_s3_target(const TargetSettings& settings);
Result<std::unique_ptr<BackupTarget>> make_target(const TargetSettings& settings);

} // namespace nodectl::backup
