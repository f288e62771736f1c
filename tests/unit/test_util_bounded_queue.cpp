// util::BoundedQueue: a full queue holds its producer back, close() lets the consumer take what is
// left, cancel() releases both sides at once.
#include "util/bounded_queue.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace {

using namespace std::chrono_literals;

// Waits up to 2 s for `done`; the tests then check it, so a hang fails instead of blocking.
bool eventually(const std::atomic<bool>& done) {
    for (int i = 0; i < 200 && !done; ++i) {
        std::this_thread::sleep_for(10ms);
    }
    return done;
}

}  // namespace

TEST_CASE("bounded queue: a full queue holds the producer until the consumer takes an item") {
    util::BoundedQueue<int> q(2);
    REQUIRE(q.push(1));
    REQUIRE(q.push(2));
    std::atomic<bool> pushed{false};
    std::thread producer([&] {
        CHECK(q.push(3));
        pushed = true;
    });
    std::this_thread::sleep_for(100ms);
    CHECK_FALSE(pushed);  // still waiting: two items is the capacity
    CHECK(q.pop() == 1);
    bool released = eventually(pushed);
    if (!released) {
        q.cancel();  // so the join below cannot hang
    }
    producer.join();
    REQUIRE(released);
    CHECK(q.pop() == 2);
    CHECK(q.pop() == 3);
}

TEST_CASE("bounded queue: close() hands out what is left, then nothing; later pushes are refused") {
    util::BoundedQueue<int> q(4);
    REQUIRE(q.push(7));
    REQUIRE(q.push(8));
    q.close();
    CHECK_FALSE(q.push(9));
    CHECK(q.pop() == 7);
    CHECK(q.pop() == 8);
    CHECK_FALSE(q.pop().has_value());
    CHECK_FALSE(q.cancelled());
}

TEST_CASE("bounded queue: cancel() releases a waiting producer and a waiting consumer and drops the items") {
    util::BoundedQueue<int> full(1), empty(1);
    REQUIRE(full.push(1));
    std::atomic<bool> producer_back{false}, consumer_back{false};
    bool push_result = true;
    std::optional<int> popped = 5;
    std::thread producer([&] {
        push_result = full.push(2);
        producer_back = true;
    });
    std::thread consumer([&] {
        popped = empty.pop();
        consumer_back = true;
    });
    std::this_thread::sleep_for(50ms);
    CHECK_FALSE(producer_back);
    CHECK_FALSE(consumer_back);
    full.cancel();
    empty.cancel();
    CHECK(eventually(producer_back));
    CHECK(eventually(consumer_back));
    producer.join();
    consumer.join();
    CHECK_FALSE(push_result);
    CHECK_FALSE(popped.has_value());
    CHECK_FALSE(full.pop().has_value());  // the queued item was dropped
    CHECK(full.cancelled());
}
