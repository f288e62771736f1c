// What the files of `nodectl image build` share: the log name, the default PATH, and the io
// error. Internal to the image module.
#pragma once

#include "nodectl/result.hpp"

#include <string>
#include <string_view>
#include <system_error>

namespace nodectl::image::detail {

inline constexpr std::string_view k_log = "image";
// PATH in the chroot stage, and in an image config that sets none.
inline constexpr std::string_view k_default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

inline Error io(const std::string& what, const std::error_code& ec) {
    return make_error(ErrorCode::io, what + ": " + ec.message());
}

}  // namespace nodectl::image::detail
