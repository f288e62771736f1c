// Inventory files and host arguments (user@host:port, ProxyJump chains, ssh_config aliases).
#include "config/ssh_destination.hpp"
#include "fuzz_input.hpp"
#include "nodectl/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    (void)nodectl::load_inventory(fuzz::as_file(data, size, "inventory.toml"));
    std::string line(fuzz::text(data, size));
    (void)nodectl::parse_host_arg(line);
    (void)nodectl::parse_ssh_destination(line);
    return 0;
}
