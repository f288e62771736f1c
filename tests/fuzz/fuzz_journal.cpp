// The journal a host keeps (/var/lib/nodectl/journal.json): written by nodectl, but on a host
// whose local users or a crash may have changed it.
#include "core/journal.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    (void)nodectl::Journal::from_json(std::string(fuzz::text(data, size)));
    return 0;
}
