// The one way util/ reports a failure: Expected<T, E> holds a value or an error. E is a plain
// reason (std::string, "cannot read PATH: No such file or directory") in util/, which knows
// nothing of nodectl; nodectl's Result<T> is Expected<T, nodectl::Error> (include/nodectl/result.hpp).
// Knows nothing of nodectl.
//
// Ways of failing that util/ does not use: std::optional (no reason), an empty string for
// success, a bool with a separate error(), -1. A lookup that can simply find nothing (parse_uint,
// a header that is absent) still answers with std::optional: not finding is not a failure there.
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace util {

// The error side, spelled out where the value and the error could be the same type
// (Expected<std::string>): `return util::fail("why");`.
template <class E>
struct Unexpected {
    E error;
};
template <class E>
Unexpected(E) -> Unexpected<E>;

inline Unexpected<std::string> fail(std::string why) {
    return {std::move(why)};
}

// Success of an Expected<void, E>: `return util::Ok{};`.
struct Ok {};

template <class T, class E = std::string>
class [[nodiscard]] Expected {
public:
    using value_type = T;
    using error_type = E;

    Expected(T value) : m_v(std::in_place_index<0>, std::move(value)) {}
    template <class G>
    Expected(Unexpected<G> u) : m_v(std::in_place_index<1>, E(std::move(u.error))) {}
    // A typed error (not a reason string, which may also be a value) converts without fail().
    Expected(E error) requires(!std::is_same_v<E, std::string>) : m_v(std::in_place_index<1>, std::move(error)) {}

    explicit operator bool() const { return m_v.index() == 0; }
    bool ok() const { return m_v.index() == 0; }
    T& value() & { return std::get<0>(m_v); }
    const T& value() const& { return std::get<0>(m_v); }
    T&& value() && { return std::get<0>(std::move(m_v)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    E& error() & { return std::get<1>(m_v); }
    const E& error() const& { return std::get<1>(m_v); }
    E&& error() && { return std::get<1>(std::move(m_v)); }

    template <class U>
    T value_or(U&& fallback) const& {
        return ok() ? value() : static_cast<T>(std::forward<U>(fallback));
    }
    template <class U>
    T value_or(U&& fallback) && {
        return ok() ? std::move(*this).value() : static_cast<T>(std::forward<U>(fallback));
    }

    // Equal to a value when it holds an equal value (tests compare read_file(p) == "text"). Two
    // Expecteds take the overload below, which is not a template.
    template <class U>
    friend bool operator==(const Expected& e, const U& v) {
        return e.ok() && e.value() == v;
    }
    friend bool operator==(const Expected& a, const Expected& b) {
        return a.ok() == b.ok() && (a.ok() ? a.value() == b.value() : a.error() == b.error());
    }

private:
    std::variant<T, E> m_v;
};

template <class E>
class [[nodiscard]] Expected<void, E> {
public:
    using value_type = void;
    using error_type = E;

    Expected() = default;
    Expected(Ok) {}
    template <class G>
    Expected(Unexpected<G> u) : m_error(std::move(u.error)), m_failed(true) {}
    Expected(E error) requires(!std::is_same_v<E, std::string>) : m_error(std::move(error)), m_failed(true) {}

    explicit operator bool() const { return !m_failed; }
    bool ok() const { return !m_failed; }
    E& error() & { return m_error; }
    const E& error() const& { return m_error; }
    E&& error() && { return std::move(m_error); }

private:
    E m_error{};
    bool m_failed = false;
};

}  // namespace util
