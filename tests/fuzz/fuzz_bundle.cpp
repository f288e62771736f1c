// The offline bundle from a USB stick: its manifest.json alone, the whole archive (tar + zstd
// through libarchive, entry sizes, paths), and a .deb inside it (ar + control tar).
#include "fuzz_input.hpp"
#include "modules/bundle/bundle.hpp"
#include "modules/bundle/detail.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    (void)nodectl::bundle::detail::parse_manifest(fuzz::text(data, size));
    const std::string& file = fuzz::as_file(data, size, "bundle.tar.zst");
    (void)nodectl::bundle::verify(file);
    (void)nodectl::bundle::read_deb(file);
    return 0;
}
