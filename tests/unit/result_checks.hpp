// Checks of a Result<T> that many unit tests repeat: the value of one that must have succeeded, and
// the code and message of one that must have failed. Each stops or fails the test the way the
// doctest lines it replaces did (REQUIRE for "must hold", CHECK for each expectation).
#pragma once

#include "nodectl/result.hpp"

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <utility>

namespace nodectl::testing {

// The value of `r`, which must have succeeded (else the test stops, showing the error).
template <class T>
T value_ok(Result<T> r) {
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    return std::move(r).value();
}

// The error of `r`, which must have failed.
template <class T>
Error error_of(const Result<T>& r) {
    REQUIRE_FALSE(r.ok());
    return r.error();
}

// `text` contains each of `parts` (one check each, naming the part that is missing).
inline void check_contains_all(const std::string& text, std::initializer_list<std::string> parts) {
    for (const auto& part : parts) {
        CHECK_MESSAGE(text.find(part) != std::string::npos, "'" << part << "' not in: " << text);
    }
}

// `r` failed, and its message contains each of `parts`.
template <class T>
void check_error(const Result<T>& r, std::initializer_list<std::string> parts) {
    check_contains_all(error_of(r).message, parts);
}

// `r` failed with `code`, and its message contains each of `parts`.
template <class T>
void check_error(const Result<T>& r, ErrorCode code, std::initializer_list<std::string> parts = {}) {
    auto e = error_of(r);
    CHECK(e.code == code);
    check_contains_all(e.message, parts);
}

}  // namespace nodectl::testing
