#include "util/s3.hpp"

// Placeholder while the client is being written: every call fails with a clear message.
namespace util::s3 {

struct Client::Impl {};

namespace {
Status not_yet() { return {false, "util::s3 is not implemented yet", 0}; }
class NoUpload : public Upload {
public:
    Status write(const void*, std::size_t) override { return not_yet(); }
    Status finish() override { return not_yet(); }
    void abort() override {}
    std::uint64_t bytes_written() const override { return 0; }
    int parts() const override { return 0; }
};
} // namespace

Client::Client(Config config) : m_config(std::move(config)), m_impl(std::make_unique<Impl>()) {}
Client::~Client() = default;
std::unique_ptr<Upload> Client::upload(const std::string&, std::uint64_t) { return std::make_unique<NoUpload>(); }
Status Client::put(const std::string&, std::string_view) { return not_yet(); }
Status Client::get(const std::string&, const std::function<bool(const char*, std::size_t)>&) { return not_yet(); }
Status Client::head(const std::string&, ObjectInfo&) { return not_yet(); }
Status Client::list(const std::string&, std::vector<ObjectInfo>&) { return not_yet(); }
Status Client::remove(const std::string&) { return not_yet(); }
Status Client::list_uploads(const std::string&, std::vector<std::string>&) { return not_yet(); }
Status Client::abort_upload(const std::string&, const std::string&) { return not_yet(); }
std::uint64_t Client::part_size_for(std::uint64_t min_part_size, std::uint64_t, int) { return min_part_size; }
Status credentials_from_file(const std::string&, Credentials&, std::string*, const std::string&) { return not_yet(); }
Status credentials_from_environment(Credentials&) { return not_yet(); }
std::string encode_key(std::string_view key) { return std::string(key); }

} // namespace util::s3
