// Reproducible tar archives through libarchive. Knows nothing of nodectl.
//
// TarWriter writes pax-restricted tar (plain ustar headers unless a long name, a big number or
// an xattr needs an extended header; never atime or ctime) to a sink, with exactly the fields
// the caller gives: numeric owners only (no user/group names), the mtime given, nothing read
// from the file system behind the caller's back. CompressedSink turns a byte stream into a
// gzip (no name, no timestamp in its header) or zstd file and counts and hashes what it wrote.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

struct archive;

namespace util {

// SOURCE_DATE_EPOCH from the environment, or -1 when it is unset or not a number.
int64_t source_date_epoch();

struct TarEntry {
    enum class Type { file, dir, symlink, hardlink, chardev, blockdev, fifo };
    std::string path;  // relative, no leading "/" or "./"; directories without a trailing "/"
    Type type = Type::file;
    unsigned mode = 0644;  // permission bits incl. setuid/setgid/sticky
    int64_t uid = 0;
    int64_t gid = 0;
    int64_t mtime = 0;
    uint64_t size = 0;  // regular files only
    std::string link;  // symlink target, or the earlier entry's path for a hardlink
    unsigned dev_major = 0;
    unsigned dev_minor = 0;
    std::vector<std::pair<std::string, std::string>> xattrs;  // name, value; written as given
};

class TarWriter {
public:
    // Returns false to abort the archive (the sink keeps its own reason).
    using Sink = std::function<bool(const void* data, size_t size)>;

    TarWriter();
    ~TarWriter();
    TarWriter(TarWriter&&) noexcept;
    TarWriter& operator=(TarWriter&&) noexcept;

    // Each returns "" on success, else why it failed.
    [[nodiscard]] std::string open(Sink sink);
    [[nodiscard]] std::string open_fd(int fd);
    [[nodiscard]] std::string add(const TarEntry& entry);  // header only (and nothing more for non-files)
    [[nodiscard]] std::string data(const void* data, size_t size);
    // Header plus the content of `source`, which must be exactly entry.size bytes.
    [[nodiscard]] std::string add_file(const TarEntry& entry, const std::string& source);
    [[nodiscard]] std::string close();

private:
    struct State;
    std::unique_ptr<State> m_state;
};

enum class Compression { none, gzip, zstd };

// A file that receives compressed bytes; size and sha256 are of the compressed file.
class CompressedSink {
public:
    CompressedSink();
    ~CompressedSink();
    CompressedSink(const CompressedSink&) = delete;
    CompressedSink& operator=(const CompressedSink&) = delete;

    [[nodiscard]] std::string open(const std::string& path, Compression compression);
    [[nodiscard]] bool write(const void* data, size_t size);
    [[nodiscard]] std::string close();  // flushes, fsyncs; then size()/sha256() are final
    const std::string& error() const { return m_error; }
    uint64_t size() const { return m_size; }
    const std::string& sha256() const { return m_sha256; }

    struct State;  // libarchive's writer and the output file

private:
    std::unique_ptr<State> m_state;
    std::string m_error;
    uint64_t m_size = 0;
    std::string m_sha256;
};

}  // namespace util
