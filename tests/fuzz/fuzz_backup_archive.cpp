// A backup archive read back from a target shared with other machines: the archive reader
// (entries, manifest.json, digests) on the bytes as they are, and after the decryption layer
// with a fixed key (so the chunk framing is parsed too).
#include "fuzz_input.hpp"
#include "modules/backup/detail.hpp"

#include <algorithm>
#include <cstring>

namespace {

class MemorySource : public nodectl::backup::Source {
public:
    MemorySource(const uint8_t* data, size_t size) : m_data(data), m_size(size) {}
    nodectl::Result<size_t> read(char* buf, size_t size) override {
        size_t n = std::min(size, m_size - m_pos);
        std::memcpy(buf, m_data + m_pos, n);
        m_pos += n;
        return n;
    }

private:
    const uint8_t* m_data;
    size_t m_size;
    size_t m_pos = 0;
};

nodectl::Result<void> accept_entry(const nodectl::backup::ReadEntry&) {
    return {};
}
nodectl::Result<void> accept_data(const nodectl::backup::ReadEntry&, const char*, size_t) {
    return {};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    nodectl::backup::ReadCallbacks callbacks{accept_entry, accept_data, accept_entry};
    {
        MemorySource in(data, size);
        (void)nodectl::backup::read_archive(in, callbacks);
    }
    {
        nodectl::backup::Key key{};
        key.fill(0x42);
        MemorySource raw(data, size);
        auto decrypted = nodectl::backup::decrypting_source(key, raw);
        (void)nodectl::backup::read_archive(*decrypted, callbacks);
    }
    (void)nodectl::backup::parse_object_name(std::string(fuzz::text(data, size)));
    return 0;
}
