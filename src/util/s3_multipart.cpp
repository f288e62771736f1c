// util::s3's streaming upload: one PUT for a small object, else a multipart upload
// (CreateMultipartUpload / UploadPart / CompleteMultipartUpload, AbortMultipartUpload on any
// failure) with `parallel_parts` parts in flight on worker threads, each with its own handle.
#include "util/s3.hpp"

#include "util/s3_request_curl.hpp"
#include "util/s3_xml.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

namespace util::s3 {

namespace {

class StreamingUpload : public Upload {
public:
    StreamingUpload(Client::Impl& impl, std::string key, std::uint64_t size_hint)
        : m_impl(impl), m_key(std::move(key)), m_hint(size_hint) {
        m_part_size = Client::part_size_for(m_impl.config.min_part_size, m_hint, 1);
        m_buffer.reserve(m_part_size);
    }
    ~StreamingUpload() override {
        if (m_state == State::open || m_state == State::failed) {
            abort();
        }
    }

    Status write(const void* data, std::size_t size) override {
        if (m_state != State::open) {
            return closed_status();
        }
        const char* p = static_cast<const char*>(data);
        while (size > 0) {
            std::size_t take = std::min<std::size_t>(size, m_part_size - m_buffer.size());
            m_buffer.append(p, take);
            p += take;
            size -= take;
            m_bytes += take;
            if (m_buffer.size() >= m_part_size) {
                if (Status st = send_buffer(); !st) {
                    return fail(std::move(st).error());
                }
            }
        }
        return Ok{};
    }

    Status finish() override {
        if (m_state != State::open) {
            return closed_status();
        }
        if (m_upload_id.empty()) {  // smaller than one part: a single PUT
            Status st = m_impl.put_object(m_key, m_buffer);
            m_state = st ? State::finished : State::failed;
            if (!st) {
                m_failure = st.error();
            }
            std::string().swap(m_buffer);
            return st;
        }
        if (!m_buffer.empty()) {
            if (Status st = send_buffer(); !st) {
                return fail(std::move(st).error());
            }
        }
        {
            std::unique_lock lock(m_mutex);
            m_space.wait(lock, [&] { return m_in_flight == 0 || m_failed; });
            if (m_failed) {
                Failure failed = m_part_failure;
                lock.unlock();
                return fail(std::move(failed));
            }
        }
        stop_workers();
        std::string xml = "<CompleteMultipartUpload>";
        for (const auto& [number, etag] : m_etags) {
            xml += "<Part><PartNumber>" + std::to_string(number) + "</PartNumber><ETag>" + xml::escape(etag) +
                   "</ETag></Part>";
        }
        xml += "</CompleteMultipartUpload>";
        Request req;
        req.method = "POST";
        req.key = m_key;
        req.query = {{"uploadId", m_upload_id}};
        req.body = xml;
        req.has_body = true;
        Response resp;
        Status st = m_impl.perform(req, resp, "CompleteMultipartUpload " + m_impl.where(m_key));
        if (!st && !completed_unanswered(st.error())) {
            return fail(std::move(st).error());
        }
        m_state = State::finished;
        return Ok{};
    }

    void abort() override {
        if (m_state == State::finished || m_state == State::aborted) {
            return;
        }
        // abort() cannot fail: an upload S3 refuses to abort is left to the bucket's lifecycle
        // rule (and `nodectl backup prune` lists it); the upload is over for us either way.
        (void)abort_multipart();
        m_state = State::aborted;
    }

    std::uint64_t bytes_written() const override { return m_bytes; }
    int parts() const override { return m_upload_id.empty() ? 0 : m_next_part - 1; }

private:
    enum class State { open, finished, failed, aborted };
    struct Part {
        int number = 0;
        std::string data;
    };

    Status closed_status() const {
        if (m_state == State::failed || m_state == State::aborted) {
            Failure failed = m_failure;
            if (failed.message.empty()) {
                failed.message = "S3 upload " + m_impl.where(m_key) + " was aborted";
            }
            return failed;
        }
        return Failure{"S3 upload " + m_impl.where(m_key) + " is already finished"};
    }

    // Whether a CompleteMultipartUpload that failed had done its work on a try whose answer was
    // lost: its retries then find no such upload, which AWS answers with success, but s3rver,
    // MinIO and Ceph with an error. After a retry, an object at the key with this upload's size is
    // taken for its result (the callers' keys are new to each run: backups' archives), and the log
    // says so.
    bool completed_unanswered(const Failure& failed) {
        if (failed.attempts < 2) {
            return false;
        }
        Request req;
        req.method = "HEAD";
        req.key = m_key;
        Response resp;
        Status head = m_impl.perform(req, resp, "HEAD " + m_impl.where(m_key));
        auto size = parse_uint(resp.headers["content-length"]);
        if (!head || !size || *size != m_bytes) {
            return false;
        }
        if (m_impl.config.log) {
            m_impl.config.log(failed.message + "; the object stands at the key with the upload's " +
                              std::to_string(m_bytes) + " bytes: the store completed it before its answer was lost");
        }
        return true;
    }

    // A failure: abort the multipart upload, and say in the message whether that worked.
    Status fail(Failure failed) {
        if (!m_upload_id.empty()) {
            Status ab = abort_multipart();
            failed.message += ab ? "; the multipart upload was aborted, no object and no parts remain"
                                 : "; " + ab.error().message + " (upload " + m_upload_id + " of " + m_key +
                                       " may stay open until a lifecycle rule or abort_upload removes it; no object "
                                       "was completed)";
        }
        m_failure = failed;
        m_state = State::aborted;
        return failed;
    }

    Status abort_multipart() {
        m_cancel = true;  // parts in flight stop at once (progress callback)
        stop_workers();
        std::string().swap(m_buffer);
        if (m_upload_id.empty() || m_abort_sent) {
            return m_abort_status;
        }
        m_abort_sent = true;
        Request req;
        req.method = "DELETE";
        req.key = m_key;
        req.query = {{"uploadId", m_upload_id}};
        Response resp;
        m_abort_status = m_impl.perform(req, resp, "AbortMultipartUpload " + m_impl.where(m_key));
        if (!m_abort_status && resp.status == 404) {  // already gone
            m_abort_status = Ok{};
        }
        if (!m_abort_status && m_impl.config.log) {
            m_impl.config.log(m_abort_status.error().message + "; upload " + m_upload_id +
                              " may stay open (no object was completed)");
        }
        return m_abort_status;
    }

    Status start_multipart() {
        Request req;
        req.method = "POST";
        req.key = m_key;
        req.query = {{"uploads", ""}};
        req.has_body = true;  // an empty body
        req.headers.emplace_back("Content-Type", "application/octet-stream");
        m_impl.add_storage_class(req);
        Response resp;
        Status st = m_impl.perform(req, resp, "CreateMultipartUpload " + m_impl.where(m_key));
        if (!st) {
            return st;
        }
        m_upload_id = xml::text(resp.body, "UploadId");
        if (m_upload_id.empty()) {
            return Failure{"S3 CreateMultipartUpload " + m_impl.where(m_key) + ": no UploadId in the answer",
                           resp.status};
        }
        int workers = m_impl.config.parallel_parts;
        for (int i = 0; i < workers; ++i) {
            m_workers.emplace_back([this] { work(); });
        }
        return Ok{};
    }

    // Queues the full buffer as the next part; blocks while parallel_parts parts are in flight.
    Status send_buffer() {
        if (m_upload_id.empty()) {
            if (Status started = start_multipart(); !started) {
                return started;
            }
        }
        if (m_next_part > k_max_parts) {
            return Failure{"S3 upload " + m_impl.where(m_key) + ": more than 10,000 parts"};
        }
        {
            std::unique_lock lock(m_mutex);
            m_space.wait(lock, [&] { return m_in_flight < m_impl.config.parallel_parts || m_failed; });
            if (m_failed) {
                return m_part_failure;
            }
            m_queue.push_back(Part{m_next_part++, std::move(m_buffer)});
            ++m_in_flight;
        }
        m_work.notify_one();
        m_part_size = Client::part_size_for(m_impl.config.min_part_size, m_hint, m_next_part);
        m_buffer = std::string();
        m_buffer.reserve(m_part_size);
        return Ok{};
    }

    void work() {
        CURL* curl = m_impl.handles.acquire();
        for (;;) {
            Part part;
            {
                std::unique_lock lock(m_mutex);
                m_work.wait(lock, [&] { return !m_queue.empty() || m_stop; });
                if (m_queue.empty()) {
                    break;
                }
                part = std::move(m_queue.front());
                m_queue.pop_front();
            }
            Status st = Failure{"cancelled"};
            std::string etag;
            if (!m_cancel.load()) {
                Request req;
                req.method = "PUT";
                req.key = m_key;
                req.query = {{"partNumber", std::to_string(part.number)}, {"uploadId", m_upload_id}};
                req.body = part.data;
                req.has_body = true;
                req.cancel = &m_cancel;
                Response resp;
                st = curl ? m_impl.perform(curl, req, resp,
                                           "UploadPart " + std::to_string(part.number) + " of " + m_impl.where(m_key))
                          : Status(Failure{"curl_easy_init failed"});
                etag = resp.headers["etag"];
                if (st && etag.empty()) {
                    st = Failure{"S3 UploadPart " + std::to_string(part.number) + ": no ETag in the answer",
                                 resp.status};
                }
            }
            std::string().swap(part.data);  // the memory goes back before the next part is taken
            {
                std::lock_guard lock(m_mutex);
                if (st) {
                    m_etags[part.number] = etag;
                } else if (!m_failed) {
                    m_failed = true;
                    m_part_failure = st.error();
                    m_cancel = true;
                }
                --m_in_flight;
            }
            m_space.notify_all();
        }
        m_impl.handles.release(curl);
    }

    void stop_workers() {
        {
            std::lock_guard lock(m_mutex);
            m_stop = true;
        }
        m_work.notify_all();
        for (auto& t : m_workers) {
            t.join();
        }
        m_workers.clear();
    }

    Client::Impl& m_impl;
    std::string m_key;
    std::uint64_t m_hint = 0;
    std::uint64_t m_part_size = 0;
    std::uint64_t m_bytes = 0;
    std::string m_buffer;
    std::string m_upload_id;
    int m_next_part = 1;
    State m_state = State::open;
    Failure m_failure;  // why the upload failed or was aborted (empty: aborted by the caller)
    Status m_abort_status;
    bool m_abort_sent = false;

    std::mutex m_mutex;
    std::condition_variable m_space;
    std::condition_variable m_work;
    std::deque<Part> m_queue;
    int m_in_flight = 0;
    bool m_failed = false;
    bool m_stop = false;
    Failure m_part_failure;
    std::map<int, std::string> m_etags;
    std::atomic<bool> m_cancel{false};
    std::vector<std::thread> m_workers;
};

}  // namespace

std::uint64_t Client::part_size_for(std::uint64_t min_part_size, std::uint64_t size_hint, int part_number) {
    std::uint64_t base = std::clamp(min_part_size, k_min_s3_part, k_max_s3_part);
    if (size_hint > 0) {
        // 9,000 parts for the hinted size, leaving room for a hint that is too small.
        std::uint64_t need = (size_hint + 8999) / 9000;
        need = (need + (1 << 20) - 1) & ~((1ull << 20) - 1);
        base = std::max(base, need);
    }
    // Unknown or underestimated size: double every 1,000 parts. With 8 MiB that holds ~8 TiB in
    // 10,000 parts (S3's object limit is 5 TiB).
    int tier = std::clamp((part_number - 1) / 1000, 0, 20);
    std::uint64_t size = base;
    for (int i = 0; i < tier && size < k_max_s3_part; ++i) {
        size *= 2;
    }
    return std::min(size, k_max_s3_part);
}

std::unique_ptr<Upload> Client::upload(const std::string& key, std::uint64_t size_hint) {
    return std::make_unique<StreamingUpload>(*m_impl, key, size_hint);
}

}  // namespace util::s3
