// The one error model of nodectl: functions that can fail return Result<T>, a value or an Error.
// Errors carry a code (which maps to the process exit code) and a message; the host and the step
// an error happened on are in the report that holds it (HostReport, StepReport), not in the error.
// Exceptions from libraries are caught in the adapter that calls the library and turned into an
// Error there.
#pragma once

#include "util/expected.hpp"

#include <string>
#include <type_traits>
#include <utility>

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

// Result<T> is util's Expected with nodectl's Error as its error side (util/expected.hpp).
template <class T>
using Result = util::Expected<T, Error>;
using util::Ok;

// A util/ failure (a reason string) as an Error with `code`:
// `auto text = TRY(as_result(util::read_file(path), ErrorCode::io));`.
template <class T>
Result<T> as_result(util::Expected<T> e, ErrorCode code) {
    if (!e) {
        return make_error(code, std::move(e).error());
    }
    if constexpr (std::is_void_v<T>) {
        return Ok{};
    } else {
        return std::move(e).value();
    }
}

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
