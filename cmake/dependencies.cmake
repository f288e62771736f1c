# Every dependency comes from Debian packages. spdlog and fmt are used header-only (Debian
# ships no static archives of them), which keeps the dynamic and static builds identical.
#   nodectl_common       what every source compiles with (no library headers of its own)
#   nodectl_shared_libs  the dynamic build: Debian's shared libssh/libcurl/libarchive/libzstd/OpenSSL/yaml-cpp
#   nodectl_static_libs  the static release binary: libssh, libcurl and libarchive rebuilt minimal by
#                        scripts/build-static-deps.sh (NODECTL_STATIC_DEPS), the rest Debian's archives
find_package(PkgConfig REQUIRED)
add_library(nodectl_common INTERFACE)
target_compile_definitions(nodectl_common INTERFACE SPDLOG_HEADER_ONLY SPDLOG_FMT_EXTERNAL FMT_HEADER_ONLY)

pkg_check_modules(DEPS REQUIRED IMPORTED_TARGET libssh libcurl libarchive libzstd openssl yaml-cpp)
add_library(nodectl_shared_libs INTERFACE)
target_link_libraries(nodectl_shared_libs INTERFACE PkgConfig::DEPS)

# Nothing here is needed before the static target is built: the archives are checked (with a
# clear message) by cmake/check_static_build.cmake when `nodectl_static` is built.
set(NODECTL_STATIC_DEPS "${CMAKE_SOURCE_DIR}/build/static-deps" CACHE PATH
    "Prefix of the minimal static libssh/libcurl/libarchive (scripts/build-static-deps.sh)")
set(NODECTL_REBUILT_ARCHIVES
    "${NODECTL_STATIC_DEPS}/lib/libssh.a" "${NODECTL_STATIC_DEPS}/lib/libcurl.a" "${NODECTL_STATIC_DEPS}/lib/libarchive.a")
set(NODECTL_DEBIAN_ARCHIVES "")
foreach(lib yaml-cpp ssl crypto zstd lzma bz2 z)
  # Full paths to the archives: CMake would otherwise wrap -l flags in -Bstatic/-Bdynamic.
  find_library(NODECTL_STATIC_${lib} NAMES lib${lib}.a)
  list(APPEND NODECTL_DEBIAN_ARCHIVES "${NODECTL_STATIC_${lib}}")
endforeach()
add_library(nodectl_static_libs INTERFACE)
target_include_directories(nodectl_static_libs INTERFACE "${NODECTL_STATIC_DEPS}/include")
target_compile_definitions(nodectl_static_libs INTERFACE LIBSSH_STATIC CURL_STATICLIB)
# Each archive before the ones it uses (pkg-config --static order).
target_link_libraries(nodectl_static_libs INTERFACE ${NODECTL_REBUILT_ARCHIVES} ${NODECTL_DEBIAN_ARCHIVES} -pthread -ldl)
