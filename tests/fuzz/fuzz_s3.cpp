// What an S3 server sends back (XML listings and errors) and S3 credential files.
#include "fuzz_input.hpp"
#include "util/s3.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    for (const char* tag : {"Key", "Contents", "NextContinuationToken", "Code", "UploadId"}) {
        (void)util::s3::detail::xml_texts(fuzz::text(data, size), tag);
    }
    std::string warning;
    (void)util::s3::credentials_from_file(fuzz::as_file(data, size, "credentials"), &warning);
    return 0;
}
