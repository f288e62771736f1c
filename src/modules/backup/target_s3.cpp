// The S3 target, on util::s3 (SigV4, streaming multipart upload with parallel parts, retries,
// AbortMultipartUpload when an upload does not finish). An object exists under its final key
// only once CompleteMultipartUpload (or the single PUT of a small archive) succeeded, so a failed
// run leaves nothing list/restore/prune would take for an archive. Credentials come from a 0600
// file or the AWS_* environment, never from argv.
#include "modules/backup/detail.hpp"
#include "util/log.hpp"
#include "util/s3.hpp"

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

namespace nodectl::backup {

namespace {

Error s3_error(const std::string& what, const util::s3::Failure& failed) {
    return make_error(ErrorCode::io, what + ": " + failed.message);
}

class S3Upload : public Upload {
public:
    S3Upload(std::shared_ptr<util::s3::Client> client, std::string key)
        : m_client(std::move(client)), m_key(std::move(key)), m_upload(m_client->upload(m_key)) {}
    ~S3Upload() override { abort(); }

    Result<void> write(const char* data, size_t size) override {
        auto st = m_upload->write(data, size);
        if (!st) {
            return s3_error("upload of " + m_key, st.error());
        }
        return Ok{};
    }
    Result<void> commit() override {
        auto st = m_upload->finish();
        m_done = true;
        if (!st) {
            return s3_error("upload of " + m_key, st.error());
        }
        return Ok{};
    }
    void abort() override {
        if (!m_done) {
            m_done = true;
            m_upload->abort();
        }
    }

private:
    std::shared_ptr<util::s3::Client> m_client;
    std::string m_key;
    std::unique_ptr<util::s3::Upload> m_upload;
    bool m_done = false;
};

// util::s3's GET pushes into a sink; libarchive pulls. A thread runs the GET into a bounded queue.
class S3Source : public Source {
public:
    S3Source(std::shared_ptr<util::s3::Client> client, std::string key)
        : m_client(std::move(client)), m_key(std::move(key)) {
        m_thread = std::thread([this] {
            auto st = m_client->get(m_key, [this](const char* p, size_t n) {
                std::unique_lock lock(m_mu);
                m_cv.wait(lock, [this] { return m_queued < k_limit || m_cancelled; });
                if (m_cancelled) {
                    return false;
                }
                m_queue.emplace_back(p, n);
                m_queued += n;
                m_cv.notify_all();
                return true;
            });
            std::lock_guard lock(m_mu);
            m_status = st;
            m_done = true;
            m_cv.notify_all();
        });
    }
    ~S3Source() override {
        {
            std::lock_guard lock(m_mu);
            m_cancelled = true;
            m_cv.notify_all();
        }
        m_thread.join();
    }

    Result<size_t> read(char* buf, size_t size) override {
        std::unique_lock lock(m_mu);
        m_cv.wait(lock, [this] { return !m_queue.empty() || m_done; });
        if (m_queue.empty()) {
            if (!m_status) {
                return s3_error("download of " + m_key, m_status.error());
            }
            return size_t{0};
        }
        auto& front = m_queue.front();
        size_t n = std::min(size, front.size() - m_offset);
        std::memcpy(buf, front.data() + m_offset, n);
        m_offset += n;
        if (m_offset == front.size()) {
            m_queued -= front.size();
            m_queue.pop_front();
            m_offset = 0;
            m_cv.notify_all();
        }
        return n;
    }

private:
    static constexpr size_t k_limit = 8 << 20;
    std::shared_ptr<util::s3::Client> m_client;
    std::string m_key;
    std::mutex m_mu;
    std::condition_variable m_cv;
    std::deque<std::string> m_queue;
    size_t m_offset = 0;
    size_t m_queued = 0;
    bool m_done = false;
    bool m_cancelled = false;
    util::s3::Status m_status;
    std::thread m_thread;
};

class S3Target : public BackupTarget {
public:
    S3Target(TargetSettings s, std::shared_ptr<util::s3::Client> client)
        : m_s(std::move(s)), m_client(std::move(client)) {}
    const std::string& name() const override { return m_s.name; }

    Result<void> prepare() override {
        auto st = m_client->list(m_s.prefix + ".nodectl-access-check");  // a cheap request that proves access
        if (!st) {
            return s3_error("target " + m_s.name + " (s3://" + m_s.bucket + "/" + m_s.prefix + ")", st.error());
        }
        return Ok{};
    }

    Result<std::unique_ptr<Upload>> upload(const std::string& object) override {
        return std::unique_ptr<Upload>(std::make_unique<S3Upload>(m_client, m_s.prefix + object));
    }

    Result<std::vector<Stored>> list() override {
        auto objects = m_client->list(m_s.prefix);
        if (!objects) {
            return s3_error("list s3://" + m_s.bucket + "/" + m_s.prefix, objects.error());
        }
        std::vector<Stored> out;
        for (const auto& o : *objects) {
            std::string rest = o.key.substr(m_s.prefix.size());
            if (rest.find('/') != std::string::npos) {
                continue;
            }
            if (auto s = parse_object_name(rest)) {
                s->size = o.size;
                out.push_back(*s);
            }
        }
        return out;
    }

    Result<std::unique_ptr<Source>> open(const std::string& object) override {
        return std::unique_ptr<Source>(std::make_unique<S3Source>(m_client, m_s.prefix + object));
    }

    Result<void> remove(const std::string& object) override {
        auto st = m_client->remove(m_s.prefix + object);
        if (!st) {
            return s3_error("delete s3://" + m_s.bucket + "/" + m_s.prefix + object, st.error());
        }
        return Ok{};
    }

private:
    TargetSettings m_s;
    std::shared_ptr<util::s3::Client> m_client;
};

}  // namespace

Result<std::unique_ptr<BackupTarget>> make_s3_target(const TargetSettings& settings) {
    util::s3::Config c;
    c.endpoint = settings.endpoint;
    c.region = settings.region;
    c.bucket = settings.bucket;
    c.path_style = settings.path_style;
    c.storage_class = settings.storage_class;
    c.parallel_parts = settings.parallel_parts;
    // S3's smallest part: the part being filled and those in flight are most of a run's memory
    // ((parallel_parts + 1) * 5 MiB until 1,000 parts, about 4.9 GiB of archive; then they double).
    c.min_part_size = 5ull << 20;
    std::string name = settings.name;
    c.log = [name](const std::string& line) { log::warn("backup", "target {}: {}", name, line); };
    std::string warning;
    auto credentials = settings.credentials_file.empty()
                           ? util::s3::credentials_from_environment()
                           : util::s3::credentials_from_file(settings.credentials_file, &warning);
    if (!credentials) {
        return make_error(ErrorCode::config, "target " + name + ": credentials: " + credentials.error().message);
    }
    if (!warning.empty()) {
        return make_error(ErrorCode::config, "target " + name + ": " + warning + " (chmod 600 it)");
    }
    c.credentials = std::move(*credentials);
    return std::unique_ptr<BackupTarget>(std::make_unique<S3Target>(settings, std::make_shared<util::s3::Client>(c)));
}

}  // namespace nodectl::backup
