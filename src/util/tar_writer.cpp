#include "util/tar_writer.hpp"

#include "util/digest.hpp"
#include "util/fd.hpp"
#include "util/text.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace util {

int64_t source_date_epoch() {
    const char* v = std::getenv("SOURCE_DATE_EPOCH");
    if (!v || !*v) {
        return -1;
    }
    auto n = parse_uint(v, {.max = INT64_MAX});
    return n ? static_cast<int64_t>(*n) : -1;
}

namespace {

Unexpected<std::string> why(archive* a, const std::string& what) {
    const char* s = archive_error_string(a);
    return fail(what + ": " + (s ? s : "libarchive error"));
}

int sink_close(archive*, void*) {
    return ARCHIVE_OK;
}

}  // namespace

struct TarWriter::State {
    archive* a = nullptr;
    Sink sink;
    std::string sink_error;  // why the sink refused bytes, for the error that follows
    // The reason libarchive reports, with the sink's own when it was the sink that failed.
    Unexpected<std::string> failure(const std::string& what) const {
        if (!sink_error.empty()) {
            return fail(what + ": " + sink_error);
        }
        return why(a, what);
    }
    ~State() {
        if (a) {
            archive_write_free(a);
        }
    }
};

namespace {

la_ssize_t sink_write(archive*, void* client, const void* buf, size_t n) {
    auto* state = static_cast<TarWriter::State*>(client);
    auto written = state->sink(buf, n);
    if (!written) {
        state->sink_error = std::move(written).error();
        return -1;
    }
    return static_cast<la_ssize_t>(n);
}

}  // namespace

TarWriter::TarWriter() = default;
TarWriter::~TarWriter() = default;
TarWriter::TarWriter(TarWriter&&) noexcept = default;
TarWriter& TarWriter::operator=(TarWriter&&) noexcept = default;

Expected<void> TarWriter::open(Sink sink) {
    m_state = std::make_unique<State>();
    m_state->sink = std::move(sink);
    m_state->a = archive_write_new();
    // pax, restricted: plain ustar headers unless a name, a number or an xattr needs more.
    archive_write_set_format_pax_restricted(m_state->a);
    // File names are bytes: stored as they are, never converted through the process's locale
    // (which would fail for UTF-8 names under LC_ALL=C, or differ between machines).
    archive_write_set_format_option(m_state->a, "pax", "hdrcharset", "BINARY");
    archive_write_add_filter_none(m_state->a);
    if (archive_write_open(m_state->a, m_state.get(), nullptr, &sink_write, &sink_close) != ARCHIVE_OK) {
        return m_state->failure("cannot start the archive");
    }
    return Ok{};
}

Expected<void> TarWriter::open_fd(int fd) {
    return open([fd](const void* data, size_t n) -> Expected<void> {
        const char* p = static_cast<const char*>(data);
        while (n > 0) {
            ssize_t w = ::write(fd, p, n);
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                return fail(w < 0 ? std::strerror(errno) : "nothing written");
            }
            p += w;
            n -= static_cast<size_t>(w);
        }
        return Ok{};
    });
}

Expected<void> TarWriter::add(const TarEntry& e) {
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> ae(archive_entry_new(), &archive_entry_free);
    archive_entry_set_pathname(ae.get(), e.path.c_str());
    unsigned type = AE_IFREG;
    switch (e.type) {
    case TarEntry::Type::file: type = AE_IFREG; break;
    case TarEntry::Type::dir: type = AE_IFDIR; break;
    case TarEntry::Type::symlink: type = AE_IFLNK; break;
    case TarEntry::Type::hardlink: type = AE_IFREG; break;
    case TarEntry::Type::chardev: type = AE_IFCHR; break;
    case TarEntry::Type::blockdev: type = AE_IFBLK; break;
    case TarEntry::Type::fifo: type = AE_IFIFO; break;
    }
    archive_entry_set_filetype(ae.get(), type);
    archive_entry_set_perm(ae.get(), e.mode & 07777);
    archive_entry_set_uid(ae.get(), e.uid);
    archive_entry_set_gid(ae.get(), e.gid);
    archive_entry_set_mtime(ae.get(), static_cast<time_t>(e.mtime), 0);
    if (e.type == TarEntry::Type::file) {
        archive_entry_set_size(ae.get(), static_cast<la_int64_t>(e.size));
    } else {
        archive_entry_set_size(ae.get(), 0);
    }
    if (e.type == TarEntry::Type::symlink) {
        archive_entry_set_symlink(ae.get(), e.link.c_str());
    } else if (e.type == TarEntry::Type::hardlink) {
        archive_entry_set_hardlink(ae.get(), e.link.c_str());
    }
    if (e.type == TarEntry::Type::chardev || e.type == TarEntry::Type::blockdev) {
        archive_entry_set_rdevmajor(ae.get(), e.dev_major);
        archive_entry_set_rdevminor(ae.get(), e.dev_minor);
    }
    for (const auto& [name, value] : e.xattrs) {
        archive_entry_xattr_add_entry(ae.get(), name.c_str(), value.data(), value.size());
    }
    if (archive_write_header(m_state->a, ae.get()) != ARCHIVE_OK) {
        return m_state->failure(e.path);
    }
    return Ok{};
}

Expected<void> TarWriter::data(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        la_ssize_t w = archive_write_data(m_state->a, p, n);
        if (w <= 0) {
            return m_state->failure("cannot write the archive");
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
    return Ok{};
}

Expected<void> TarWriter::add_file(const TarEntry& e, const std::string& source) {
    Fd fd(::open(source.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
        return fail(source + ": " + std::strerror(errno));
    }
    if (auto added = add(e); !added) {
        return added;
    }
    std::vector<char> buf(1 << 20);
    uint64_t total = 0;
    for (;;) {
        ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return fail(source + ": " + std::strerror(errno));
        }
        if (n == 0) {
            break;
        }
        total += static_cast<uint64_t>(n);
        if (total > e.size) {
            break;
        }
        if (auto written = data(buf.data(), static_cast<size_t>(n)); !written) {
            return written;
        }
    }
    if (total != e.size) {
        return fail(source + " changed while it was being archived");
    }
    return Ok{};
}

Expected<void> TarWriter::close() {
    if (!m_state || !m_state->a) {
        return Ok{};
    }
    Expected<void> closed;
    if (archive_write_close(m_state->a) != ARCHIVE_OK) {
        closed = m_state->failure("cannot finish the archive");
    }
    archive_write_free(m_state->a);
    m_state->a = nullptr;
    return closed;
}

struct CompressedSink::State {
    archive* a = nullptr;
    Fd fd;  // closed after the archive is freed (members go after the destructor's body)
    Sha256 sha;
    uint64_t size = 0;
    std::string write_error;  // why writing the file failed (libarchive only knows that it did)
    ~State() {
        if (a) {
            archive_write_free(a);
        }
    }
};

namespace {

la_ssize_t file_write(archive*, void* client, const void* buf, size_t n) {
    auto* s = static_cast<CompressedSink::State*>(client);
    const char* p = static_cast<const char*>(buf);
    size_t left = n;
    while (left > 0) {
        ssize_t w = ::write(s->fd.get(), p, left);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            s->write_error = w < 0 ? std::strerror(errno) : "nothing written";
            return -1;
        }
        p += w;
        left -= static_cast<size_t>(w);
    }
    s->sha.update(buf, n);
    s->size += n;
    return static_cast<la_ssize_t>(n);
}

}  // namespace

CompressedSink::CompressedSink() = default;
CompressedSink::~CompressedSink() = default;

Expected<void> CompressedSink::open(const std::string& path, Compression compression) {
    m_state = std::make_unique<State>();
    m_state->fd.reset(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!m_state->fd) {
        return fail(path + ": " + std::strerror(errno));
    }
    archive* a = m_state->a = archive_write_new();
    archive_write_set_format_raw(a);
    switch (compression) {
    case Compression::none: archive_write_add_filter_none(a); break;
    case Compression::gzip:
        archive_write_add_filter_gzip(a);
        // No name and no timestamp in the gzip header: the same bytes give the same file.
        archive_write_set_filter_option(a, "gzip", "timestamp", nullptr);
        break;
    case Compression::zstd: archive_write_add_filter_zstd(a); break;
    }
    // No padding after the compressed stream (gzip readers reject trailing zeros).
    archive_write_set_bytes_in_last_block(a, 1);
    if (archive_write_open(a, m_state.get(), nullptr, &file_write, nullptr) != ARCHIVE_OK) {
        return why(a, path);
    }
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), &archive_entry_free);
    archive_entry_set_pathname(e.get(), "data");
    archive_entry_set_filetype(e.get(), AE_IFREG);
    if (archive_write_header(a, e.get()) != ARCHIVE_OK) {
        return why(a, path);
    }
    return Ok{};
}

Expected<void> CompressedSink::write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        la_ssize_t w = archive_write_data(m_state->a, p, n);
        if (w <= 0) {
            return m_state->write_error.empty() ? why(m_state->a, "cannot compress")
                                                : fail("cannot write the compressed file: " + m_state->write_error);
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
    return Ok{};
}

Expected<void> CompressedSink::close() {
    if (archive_write_close(m_state->a) != ARCHIVE_OK) {
        return m_state->write_error.empty() ? why(m_state->a, "cannot finish the compressed file")
                                            : fail("cannot write the compressed file: " + m_state->write_error);
    }
    archive_write_free(m_state->a);
    m_state->a = nullptr;
    // fsync and close checked here: either can be where a failed write shows.
    if (::fsync(m_state->fd.get()) != 0 || ::close(m_state->fd.release()) != 0) {
        return fail(std::string("cannot write the compressed file: ") + std::strerror(errno));
    }
    m_size = m_state->size;
    m_sha256 = m_state->sha.final_hex();
    return Ok{};
}

}  // namespace util
