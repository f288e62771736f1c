// A blocking queue between threads that holds at most `capacity` items. Knows nothing of nodectl.
//
// push() waits while the queue is full, pop() while it is empty: the slower side sets the pace
// and the memory is bounded by the capacity. close() says no more items come: pop() returns those
// still queued, then nullopt. cancel() stops both sides at once: a waiting or later push() returns
// false, pop() returns nullopt, and what was queued is dropped.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

namespace util {

template <class T>
class BoundedQueue {
public:
    explicit BoundedQueue(size_t capacity) : m_capacity(capacity == 0 ? 1 : capacity) {}
    BoundedQueue(const BoundedQueue&) = delete;
    BoundedQueue& operator=(const BoundedQueue&) = delete;

    // False when the queue was closed or cancelled (the item is dropped).
    bool push(T item) {
        std::unique_lock lock(m_mutex);
        m_not_full.wait(lock, [&] { return m_items.size() < m_capacity || m_closed || m_cancelled; });
        if (m_closed || m_cancelled) {
            return false;
        }
        m_items.push_back(std::move(item));
        m_not_empty.notify_one();
        return true;
    }

    // The next item; nullopt once the queue is closed and empty, or cancelled.
    std::optional<T> pop() {
        std::unique_lock lock(m_mutex);
        m_not_empty.wait(lock, [&] { return !m_items.empty() || m_closed || m_cancelled; });
        if (m_cancelled || m_items.empty()) {
            return std::nullopt;
        }
        T item = std::move(m_items.front());
        m_items.pop_front();
        m_not_full.notify_one();
        return item;
    }

    void close() {
        std::lock_guard lock(m_mutex);
        m_closed = true;
        m_not_empty.notify_all();
        m_not_full.notify_all();
    }

    void cancel() {
        std::lock_guard lock(m_mutex);
        m_cancelled = true;
        m_items.clear();
        m_not_empty.notify_all();
        m_not_full.notify_all();
    }

    bool cancelled() const {
        std::lock_guard lock(m_mutex);
        return m_cancelled;
    }

private:
    const size_t m_capacity;
    mutable std::mutex m_mutex;
    std::condition_variable m_not_full, m_not_empty;
    std::deque<T> m_items;
    bool m_closed = false;
    bool m_cancelled = false;
};

}  // namespace util
