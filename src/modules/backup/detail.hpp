// The pieces of the backup pipeline: byte sinks and sources, the chunked AES-256-GCM layer, the
// archive writer and reader, the queue between the reading threads and the archive, child
// processes, and targets. Internal to src/modules/backup.
#pragma once

#include "modules/backup/backup.hpp"
#include "util/bounded_queue.hpp"
#include "util/digest.hpp"
#include "util/fd.hpp"
#include "util/subprocess.hpp"

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

struct archive;

namespace nodectl::backup {

// ---- time per stage (stages.cpp), logged at --log-level debug ----

// What a thread of `backup run` is doing. The reading threads (the dumps; the file trees) read
// (read; hash of a whole dump) and wait for their turn, a block or room in the entry queue
// (reader_waits). The archiving thread hashes
// entries, writes tar and copies it for the compressor, waits for entries (archive_waits_reader)
// and for room in the compressor's queue (archive_waits_compressor). The compressing thread
// runs zstd (compress), encrypts, hands bytes to the targets (upload: includes waiting for S3
// parts in flight) and waits for tar (compressor_waits).
enum class Stage {
    read,
    hash,
    tar,
    compress,
    encrypt,
    upload,
    reader_waits,
    archive_waits_reader,
    archive_waits_compressor,
    compressor_waits,
    count
};

struct StageTimes {
    static constexpr size_t k_count = static_cast<size_t>(Stage::count);
    std::array<std::atomic<int64_t>, k_count> wall_ns{}, cpu_ns{};
    std::atomic<uint64_t> zstd_in{0}, zstd_out{0};
};

// Charges the time from construction to destruction to `stage`, minus the time of any StageClock
// made inside it on the same thread (which charges its own stage): the stages of a thread add up
// to its time. Does nothing when `times` is null.
class StageClock {
public:
    StageClock(StageTimes* times, Stage stage);
    ~StageClock();
    StageClock(const StageClock&) = delete;
    StageClock& operator=(const StageClock&) = delete;

private:
    StageTimes* m_times;
    int m_outer = -1;  // the stage this thread was in before, or -1
};

// One debug line per stage, and zstd's speed (bytes in per second of its CPU time).
void log_stage_times(const StageTimes& times, double seconds);

// Where bytes go, in order. write() may be called with any size.
class Sink {
public:
    virtual ~Sink() = default;
    virtual Result<void> write(const char* data, size_t size) = 0;
    // No more data; flushes whatever the sink holds.
    virtual Result<void> close() = 0;
};

// A buffer handed from one thread to another, from a fixed pool of its owner's (the memory bound).
struct Block {
    std::unique_ptr<char[]> bytes;
    size_t size = 0;  // bytes used
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
// An error about data that failed authentication or framing (ErrorCode::damaged).
Error damaged(const std::string& what);

// ---- archive writing (archive.cpp) ----

struct ArchiveOptions {
    int level = 3;
    int threads = 1;  // zstd threads: 1 is the compressing thread alone; more are zstd's own workers
    StageTimes* times = nullptr;
};

// zstd (libzstd) into `out`, as one frame. With options.threads > 1, zstd's own workers compress
// jobs of k_zstd_job_bytes (not its default of 4 windows, 8 MiB at level 3: memory stays small).
inline constexpr size_t k_zstd_job_bytes = 1 << 20;
Result<std::unique_ptr<Sink>> zstd_sink(Sink& out, const ArchiveOptions& options);
// Hands what is written to it to a thread of its own that writes it to `inner` (zstd, the
// encryption and the targets), so the writer goes on meanwhile; at most k_handoff_blocks blocks
// of k_handoff_block_bytes wait between the two. An error of the thread is returned by the next
// write() or close(); destroying it before close() stops and joins the thread.
inline constexpr size_t k_handoff_block_bytes = 256 << 10;
inline constexpr size_t k_handoff_blocks = 4;
std::unique_ptr<Sink> threaded_sink(std::unique_ptr<Sink> inner, StageTimes* times);

// A tar (pax) stream written by libarchive, compressed by zstd_sink() on a threaded_sink() into
// `out`. Entries are written one after the other; each entry's size is known before its data
// (tar needs it).
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
    std::unique_ptr<Sink> m_zstd;  // on its own thread: threaded_sink(zstd_sink(m_out))
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

// ---- from the reading threads to the archive (entry_queue.cpp) ----

// An entry queue's blocks hold k_block_bytes.
inline constexpr size_t k_block_bytes = 1 << 20;
// While a dump runs, a file larger than this waits for it to end rather than be interleaved
// with its pieces: mariadb-dump stalls (its pipe full) while a file's entry is written, and the
// server drops a client that does not read for net_write_timeout (60 s by default).
inline constexpr uint64_t k_interleave_max_bytes = 64ull << 20;

// The sources' entries on their way from the reading threads to the archiving one, in one queue:
// an entry goes in whole (its header, all its data, its end), one reader at a time, so the
// archive holds each entry in one piece while the dumps and the file trees are read at once. The
// dump reader goes first whenever it has a piece; the file reader fills the time the dump leaves.
// Either side stops the other: a reader's finish() with an error, or cancel().
class EntryQueue {
public:
    EntryQueue(size_t readers, StageTimes* times);
    EntryQueue(const EntryQueue&) = delete;
    EntryQueue& operator=(const EntryQueue&) = delete;

    // Writes every entry to `w` until all readers finished; a reader's error, or the writer's.
    Result<void> drain(ArchiveWriter& w);
    // Stops the readers: their next call (or their wait on a pipe) fails.
    void cancel();
    // Readable once the queue was cancelled: a reader that waits on a pipe polls it too.
    int cancel_fd() const { return m_cancel_fd.get(); }
    StageTimes* times() const { return m_times; }

private:
    friend class EntrySource;
    struct Op {
        enum class Kind { file, data, end, directory, symlink } kind = Kind::file;
        std::string path, target;
        uint64_t size = 0;
        ArchiveWriter::Meta meta;
        Block block;
        util::BoundedQueue<Block>* pool = nullptr;  // where `block` goes back
    };
    Result<void> push(Op op);
    Result<void> apply(ArchiveWriter& w, Op& op);
    // One reader at a time between these; `first` readers before the others, and a `large` entry
    // only once no `first` reader is left.
    Result<void> take_turn(bool first, bool large);
    void end_turn();
    void reader_done(bool first, const Result<void>& outcome);

    StageTimes* m_times;
    util::BoundedQueue<Op> m_ops;
    std::mutex m_mutex;
    std::condition_variable m_turn_free;
    bool m_turn_taken = false;
    int m_first_waiting = 0;
    int m_first_running = 0;
    size_t m_readers;
    bool m_cancelled = false;
    std::optional<Error> m_reader_error;
    std::vector<util::BoundedQueue<Block>*> m_pools;  // the readers' (EntrySource), which outlive their threads
    util::Fd m_cancel_fd;
};

// One reading thread's way into an EntryQueue, with its own pool of `blocks` (the memory bound:
// blocks * k_block_bytes). `first`: the dump reader, which goes before the other.
class EntrySource {
public:
    EntrySource(EntryQueue& q, size_t blocks, bool first);
    EntrySource(const EntrySource&) = delete;
    EntrySource& operator=(const EntrySource&) = delete;

    Result<Block> block();  // an empty block; waits for one
    void give_back(Block block);  // a block that stays unused
    // A regular file: its header now, then data() with exactly `size` bytes, then end_file().
    Result<void> begin_file(const std::string& path, uint64_t size, const ArchiveWriter::Meta& meta);
    Result<void> data(Block block);
    Result<void> end_file();
    Result<void> add_directory(const std::string& path, const ArchiveWriter::Meta& meta);
    Result<void> add_symlink(const std::string& path, const std::string& target, const ArchiveWriter::Meta& meta);
    // This reader has no more entries; an error stops the archiving side, which returns it.
    void finish(const Result<void>& outcome);
    int cancel_fd() const { return m_q.cancel_fd(); }
    StageTimes* times() const { return m_q.times(); }

private:
    EntryQueue& m_q;
    util::BoundedQueue<Block> m_free;
    bool m_first;
    bool m_in_turn = false;
};

// How many blocks the dump reader holds: one dump piece, plus 2 MiB it may read ahead.
size_t dump_reader_blocks(const Settings& s);
// The file reader's blocks: enough to read one while the archive takes the others.
inline constexpr size_t k_file_reader_blocks = 3;

// ---- sources (sources.cpp), each run on a reading thread ----

// Dumps every database of s.mariadb into the queue, in chunks; fills the manifest's "mariadb" part.
Result<void> dump_databases(const Settings& s, EntrySource& q, nlohmann::json& out);
// Adds the file tree `t` beneath "files/NAME/"; appends its line to the manifest's "files" part.
Result<void> add_tree(EntrySource& q, const FileTree& t, nlohmann::json& out);
// The metadata of a file nodectl writes into the archive itself (the manifest): 0600, now.
ArchiveWriter::Meta generated_meta();

// ---- child processes (process.cpp) ----

class Child {
public:
    // argv[0] is looked up in PATH. With `pipe_stdin`, stdin_fd() is writable; with `pipe_stdout`,
    // stdout_fd() is readable; stderr is kept (the last 4 KiB) for the error message. A child still
    // running when this is destroyed is killed and reaped.
    Result<void> start(const std::vector<std::string>& argv, bool pipe_stdin, bool pipe_stdout,
                       const std::vector<std::string>& extra_env = {});
    int stdin_fd();
    int stdout_fd();
    void close_stdin();
    // Waits for the exit; ok when it exited 0, else an error naming argv[0] with its stderr.
    Result<void> wait();
    void kill_now();

private:
    util::Fd m_err;
    std::optional<util::Subprocess> m_child;  // destroyed (killed, reaped) before m_err closes
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
    Result<void> create(const std::string& host, int port, const std::string& socket, const std::string& user,
                        const std::string& password);
    std::string arg() const { return "--defaults-extra-file=/dev/fd/" + std::to_string(m_fd.get()); }

private:
    util::Fd m_fd;
};

// ---- targets (target_dir.cpp, target_s3.cpp) ----

class Upload {
public:
    virtual ~Upload() = default;
    virtual Result<void> write(const char* data, size_t size) = 0;
    virtual Result<void> commit() = 0;  // the object appears under its final name
    virtual void abort() = 0;  // nothing is left behind
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

}  // namespace nodectl::backup
