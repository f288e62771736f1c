// Reproducible tar archives through libarchive. Knows nothing of nodectl.
//
// TarWriter writes pax-restricted tar (plain ustar headers unless a long name, a big number or
// an xattr needs an extended header; never atime or ctime) to a sink, with exactly the fields
// the caller gives: numeric owners only (no user/group names), the mtime given, nothing read
// from the file system behind the caller's back. CompressedSink turns a byte stream into a
// gzip (no name, no timestamp in its header) or zstd file and counts and hashes what it wrote.
#pragma once

#include "util/expected.hpp"

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
    // Takes the archive's bytes; a failure aborts the archive, and its reason is in the error of
    // the call that wrote them.
    using Sink = std::function<Expected<void>(const void* data, size_t size)>;

    TarWriter();
    ~TarWriter();
    TarWriter(TarWriter&&) noexcept;
    TarWriter& operator=(TarWriter&&) noexcept;

    Expected<void> open(Sink sink);
    Expected<void> open_fd(int fd);
    Expected<void> add(const TarEntry& entry);  // header only (and nothing more for non-files)
    Expected<void> data(const void* data, size_t size);
    // Header plus the content of `source`, which must be exactly entry.size bytes.
    Expected<void> add_file(const TarEntry& entry, const std::string& source);
    Expected<void> close();

    struct State;  // libarchive's writer and the sink

private:
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

    Expected<void> open(const std::string& path, Compression compression);
    Expected<void> write(const void* data, size_t size);
    Expected<void> close();  // flushes, fsyncs; then size()/sha256() are final
    uint64_t size() const { return m_size; }
    const std::string& sha256() const { return m_sha256; }

    struct State;  // libarchive's writer and the output file

private:
    std::unique_ptr<State> m_state;
    uint64_t m_size = 0;
    std::string m_sha256;
};

}  // namespace util
