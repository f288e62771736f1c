// The one error model of nodectl: functions that can fail return Result<T>, a value or an Error.
// Errors carry a code (which maps to the process exit code) and a message; the host and the step
// an error happened on are in the report that holds it (HostReport, StepReport), not in the error.
// Exceptions from libraries are caught in the adapter that calls the library and turned into an
// Error there.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace nodectl {

enum class ErrorCode {
    usage,  // bad command line
    config,  // profile or inventory invalid
    connect,  // host unreachable, connection timed out
    auth,  // authentication or sudo refused
    host_key,  // unknown or changed host key
    command,  // a command on the host failed
    timeout,  // a command or run exceeded its time limit
    io,  // local file or system error
    locked,  // another run holds the host's lock
    unsupported,  // the host is not something this step can manage
    unavailable,  // capability not available in this build
    damaged,  // a bundle or backup archive that fails its own checks (manifest, digests, authentication)
    internal,
};

struct Error {
    ErrorCode code = ErrorCode::internal;
    std::string message;
};

Error make_error(ErrorCode code, std::string message);

// An I/O error for a failed system call: "WHAT: " and strerror(errno). Call it before anything
// that may change errno.
Error errno_error(const std::string& what);

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : m_v(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : m_v(std::in_place_index<1>, std::move(error)) {}

    explicit operator bool() const { return m_v.index() == 0; }
    bool ok() const { return m_v.index() == 0; }
    T& value() & { return std::get<0>(m_v); }
    const T& value() const& { return std::get<0>(m_v); }
    T&& value() && { return std::get<0>(std::move(m_v)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    Error& error() & { return std::get<1>(m_v); }
    const Error& error() const& { return std::get<1>(m_v); }
    Error&& error() && { return std::get<1>(std::move(m_v)); }

private:
    std::variant<T, Error> m_v;
};

struct Ok {};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Ok) {}
    Result(Error error) : m_error(std::move(error)), m_failed(true) {}

    explicit operator bool() const { return !m_failed; }
    bool ok() const { return !m_failed; }
    Error& error() & { return m_error; }
    const Error& error() const& { return m_error; }
    Error&& error() && { return std::move(m_error); }

private:
    Error m_error;
    bool m_failed = false;
};

}  // namespace nodectl

// TRY(expr): evaluate a Result; on error return it from the enclosing function, else yield the value.
#define NODECTL_CONCAT_(a, b) a##b
#define NODECTL_CONCAT(a, b) NODECTL_CONCAT_(a, b)
#define TRY(expr)                                                                                                      \
    ({                                                                                                                 \
        auto&& NODECTL_CONCAT(try_r_, __LINE__) = (expr);                                                              \
        if (!NODECTL_CONCAT(try_r_, __LINE__)) {                                                                       \
            return std::move(NODECTL_CONCAT(try_r_, __LINE__)).error();                                                \
        }                                                                                                              \
        std::move(NODECTL_CONCAT(try_r_, __LINE__)).value();                                                           \
    })
#define TRY_VOID(expr)                                                                                                 \
    do {                                                                                                               \
        auto&& NODECTL_CONCAT(try_v_, __LINE__) = (expr);                                                              \
        if (!NODECTL_CONCAT(try_v_, __LINE__)) {                                                                       \
            return std::move(NODECTL_CONCAT(try_v_, __LINE__)).error();                                                \
        }                                                                                                              \
    } while (0)
