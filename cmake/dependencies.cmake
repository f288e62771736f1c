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
  # Full paths to the archives: CMake would otherwise wrap -l flags in -Bstatic/-Bdynamic.
  set(static_archives "")
  foreach(lib ssl crypto zstd lzma bz2 z)
    find_library(NODECTL_STATIC_${lib} NAMES lib${lib}.a REQUIRED)
    list(APPEND static_archives ${NODECTL_STATIC_${lib}})
  endforeach()
  target_link_libraries(nodectl_deps INTERFACE
    "${NODECTL_STATIC_DEPS}/lib/libssh.a"
    "${NODECTL_STATIC_DEPS}/lib/libcurl.a"
    "${NODECTL_STATIC_DEPS}/lib/libarchive.a"
    ${static_archives} -pthread -ldl)
  find_library(NODECTL_STATIC_yaml NAMES libyaml-cpp.a REQUIRED)
  target_link_libraries(nodectl_deps INTERFACE ${NODECTL_STATIC_yaml})
else()
  pkg_check_modules(DEPS REQUIRED IMPORTED_TARGET libssh libcurl libarchive openssl yaml-cpp)
  target_link_libraries(nodectl_deps INTERFACE PkgConfig::DEPS)
endif()
