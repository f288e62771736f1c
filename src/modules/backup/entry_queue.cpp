// The queue between the reading threads (mariadb-dump's pipe; the file trees) and the archiving
// thread (hash, tar, then the compressing thread): they all run at once, as the processes of
// `mariadb-dump | zstd | aws s3 cp -` do, and no reader holds more than its pool's blocks.
#include "modules/backup/detail.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

namespace nodectl::backup {

namespace {

// At most this many entries wait in the queue besides their data blocks (a tree of many small or
// empty files queues headers, not blocks): a few hundred bytes each.
constexpr size_t k_queued_entries = 1024;

Error queue_stopped() {
    return make_error(ErrorCode::io, "the archive stopped");
}

}  // namespace

EntryQueue::EntryQueue(size_t readers, StageTimes* times)
    : m_times(times), m_ops(k_queued_entries), m_readers(readers),
      m_cancel_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (readers == 0) {
        m_ops.close();
    }
}

Result<void> EntryQueue::push(Op op) {
    StageClock clock(m_times, Stage::reader_waits);
    if (!m_ops.push(std::move(op))) {
        return queue_stopped();
    }
    return Ok{};
}

Result<void> EntryQueue::take_turn(bool first, bool large) {
    StageClock clock(m_times, Stage::reader_waits);
    std::unique_lock lock(m_mutex);
    m_first_waiting += first ? 1 : 0;
    m_turn_free.wait(lock, [&] {
        return m_cancelled || (!m_turn_taken && (first || (m_first_waiting == 0 && (!large || m_first_running == 0))));
    });
    m_first_waiting -= first ? 1 : 0;
    if (m_cancelled) {
        return queue_stopped();
    }
    m_turn_taken = true;
    return Ok{};
}

void EntryQueue::end_turn() {
    std::lock_guard lock(m_mutex);
    m_turn_taken = false;
    m_turn_free.notify_all();
}

void EntryQueue::reader_done(bool first, const Result<void>& outcome) {
    bool last = false;
    {
        std::lock_guard lock(m_mutex);
        m_first_running -= first ? 1 : 0;
        if (!outcome && !m_reader_error) {
            m_reader_error = outcome.error();
        }
        last = --m_readers == 0;
        m_turn_free.notify_all();  // a large file may have waited for the dump to end
    }
    if (!outcome) {
        cancel();  // the other reader stops too; drain() returns the error
    } else if (last) {
        m_ops.close();
    }
}

void EntryQueue::cancel() {
    {
        std::lock_guard lock(m_mutex);
        m_cancelled = true;
        m_turn_free.notify_all();
        for (auto* pool : m_pools) {
            pool->cancel();  // a reader waiting for a block stops
        }
    }
    m_ops.cancel();
    uint64_t one = 1;
    (void)!::write(m_cancel_fd.get(), &one, sizeof one);
}

Result<void> EntryQueue::apply(ArchiveWriter& w, Op& op) {
    switch (op.kind) {
    case Op::Kind::file: return w.begin_file(op.path, op.size, op.meta);
    case Op::Kind::data: {
        auto written = w.data(op.block.bytes.get(), op.block.size);
        (void)op.pool->push(std::move(op.block));  // false only once the reader stopped
        return written;
    }
    case Op::Kind::end: return w.end_file();
    case Op::Kind::directory: return w.add_directory(op.path, op.meta);
    case Op::Kind::symlink: return w.add_symlink(op.path, op.target, op.meta);
    }
    return make_error(ErrorCode::internal, "unknown queued entry");
}

Result<void> EntryQueue::drain(ArchiveWriter& w) {
    for (;;) {
        std::optional<Op> op;
        {
            StageClock clock(m_times, Stage::archive_waits_reader);
            op = m_ops.pop();
        }
        if (!op) {
            break;
        }
        TRY_VOID(apply(w, *op));
    }
    std::lock_guard lock(m_mutex);
    if (m_reader_error) {
        return *m_reader_error;
    }
    if (m_cancelled) {
        return queue_stopped();
    }
    return Ok{};
}

// ---- a reader's side ----

EntrySource::EntrySource(EntryQueue& q, size_t blocks, bool first) : m_q(q), m_free(blocks), m_first(first) {
    for (size_t i = 0; i < blocks; ++i) {
        (void)m_free.push(Block{std::make_unique<char[]>(k_block_bytes), 0});
    }
    std::lock_guard lock(m_q.m_mutex);
    m_q.m_first_running += first ? 1 : 0;
    m_q.m_pools.push_back(&m_free);
}

Result<Block> EntrySource::block() {
    StageClock clock(m_q.times(), Stage::reader_waits);
    auto b = m_free.pop();
    if (!b) {
        return queue_stopped();
    }
    b->size = 0;
    return std::move(*b);
}

void EntrySource::give_back(Block block) {
    (void)m_free.push(std::move(block));
}

Result<void> EntrySource::begin_file(const std::string& path, uint64_t size, const ArchiveWriter::Meta& meta) {
    TRY_VOID(m_q.take_turn(m_first, size > k_interleave_max_bytes));
    m_in_turn = true;
    return m_q.push({EntryQueue::Op::Kind::file, path, "", size, meta, {}, nullptr});
}

Result<void> EntrySource::data(Block block) {
    return m_q.push({EntryQueue::Op::Kind::data, "", "", 0, {}, std::move(block), &m_free});
}

Result<void> EntrySource::end_file() {
    auto pushed = m_q.push({EntryQueue::Op::Kind::end, "", "", 0, {}, {}, nullptr});
    m_in_turn = false;
    m_q.end_turn();
    return pushed;
}

Result<void> EntrySource::add_directory(const std::string& path, const ArchiveWriter::Meta& meta) {
    TRY_VOID(m_q.take_turn(m_first, false));
    auto pushed = m_q.push({EntryQueue::Op::Kind::directory, path, "", 0, meta, {}, nullptr});
    m_q.end_turn();
    return pushed;
}

Result<void> EntrySource::add_symlink(const std::string& path, const std::string& target,
                                      const ArchiveWriter::Meta& meta) {
    TRY_VOID(m_q.take_turn(m_first, false));
    auto pushed = m_q.push({EntryQueue::Op::Kind::symlink, path, target, 0, meta, {}, nullptr});
    m_q.end_turn();
    return pushed;
}

void EntrySource::finish(const Result<void>& outcome) {
    if (m_in_turn) {
        m_in_turn = false;
        m_q.end_turn();
    }
    m_q.reader_done(m_first, outcome);
}

size_t dump_reader_blocks(const Settings& s) {
    size_t piece = static_cast<size_t>((s.chunk_bytes + k_block_bytes - 1) / k_block_bytes);
    return piece + 2;
}

}  // namespace nodectl::backup
