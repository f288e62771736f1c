// First boot's discovery inputs: the kernel command line, size strings, and the status file a
// previous boot left (JSON).
#include "fuzz_input.hpp"
#include "modules/firstboot/firstboot.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(fuzz::text(data, size));
    (void)nodectl::firstboot::cmdline_config(text);
    (void)nodectl::firstboot::parse_size(text);
    (void)nodectl::firstboot::Status::from_json(text);
    return 0;
}
