// Shared by the fuzz targets: an input as text, or as a file (for readers that take a path).
// Each target defines LLVMFuzzerTestOneInput. Built two ways (tests/fuzz/CMakeLists.txt): with
// clang's libFuzzer + ASan + UBSan by scripts/fuzz.sh, and with replay_main.cpp by every build,
// where ctest replays the corpus (the seeds and every input that once crashed) through each target.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <unistd.h>

namespace fuzz {

inline std::string_view text(const uint8_t* data, size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// The input written to one file per process (rewritten for every input), mode 0600, in a private
// temp dir made once. Returns its path.
inline const std::string& as_file(const uint8_t* data, size_t size, const char* name = "input") {
    static std::string dir = [] {
        char tmpl[] = "/tmp/nodectl-fuzz.XXXXXX";
        const char* made = mkdtemp(tmpl);
        if (made == nullptr) {
            std::perror("mkdtemp");
            std::abort();
        }
        return std::string(made);
    }();
    static std::string path;
    path = dir + "/" + name;
    FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) {
        std::perror(path.c_str());
        std::abort();
    }
    return path;
}

}  // namespace fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
