# Every dependency comes from Debian packages. spdlog and fmt are used header-only (Debian
# ships no static archives of them), which keeps the dynamic and static builds identical.
# The static build takes libssh, libcurl and libarchive from scripts/build-static-deps.sh,
# which rebuilds Debian's source packages with only the features nodectl uses.
find_package(PkgConfig REQUIRED)
add_library(nodectl_deps INTERFACE)
target_compile_definitions(nodectl_deps INTERFACE SPDLOG_HEADER_ONLY SPDLOG_FMT_EXTERNAL FMT_HEADER_ONLY)

if(NODECTL_STATIC)
  set(NODECTL_STATIC_DEPS "${CMAKE_SOURCE_DIR}/build/static-deps" CACHE PATH "Prefix of the minimal static libssh/libcurl/libarchive")
  if(NOT EXISTS "${NODECTL_STATIC_DEPS}/lib/libssh.a")
    message(FATAL_ERROR "NODECTL_STATIC needs ${NODECTL_STATIC_DEPS}: run scripts/build-static-deps.sh first")
  endif()
  target_include_directories(nodectl_deps INTERFACE "${NODECTL_STATIC_DEPS}/include")
  target_compile_definitions(nodectl_deps INTERFACE LIBSSH_STATIC CURL_STATICLIB)
  target_link_libraries(nodectl_deps INTERFACE
    "${NODECTL_STATIC_DEPS}/lib/libssh.a"
    "${NODECTL_STATIC_DEPS}/lib/libcurl.a"
    "${NODECTL_STATIC_DEPS}/lib/libarchive.a"
    libssl.a libcrypto.a libzstd.a liblzma.a libbz2.a libz.a pthread dl)
else()
  pkg_check_modules(DEPS REQUIRED IMPORTED_TARGET libssh libcurl libarchive openssl)
  target_link_libraries(nodectl_deps INTERFACE PkgConfig::DEPS)
endif()
