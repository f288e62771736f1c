// util::Sha256, the incremental digest bundles use while they stream, against the one-shot one.
#include "util/digest.hpp"

#include <doctest/doctest.h>

#include <string>

TEST_CASE("Sha256: pieces fed one by one give the digest of the whole") {
    std::string data(200000, '\0');
    for (size_t i = 0; i < data.size(); ++i) {
        data[i] = static_cast<char>(i * 7);
    }
    util::Sha256 sha;
    sha.update(std::string_view(data).substr(0, 1));
    sha.update(std::string_view(data).substr(1, 65535));
    sha.update(data.data() + 65536, data.size() - 65536);
    CHECK(sha.final_hex() == util::sha256_hex(data));
    // A known value, and the object starts afresh after final_hex().
    sha.update("abc");
    CHECK(sha.final_hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha.final_hex() == util::sha256_hex(""));
}
