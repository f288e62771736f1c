// Profile loading (TOML, extends, include, every key's validator) from an untrusted file: a
// profile on a USB stick is checked before its signature matters, and its errors are printed.
#include "fuzz_input.hpp"
#include "nodectl/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    (void)nodectl::load_profile(fuzz::as_file(data, size, "profile.toml"));
    return 0;
}
