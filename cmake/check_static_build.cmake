# Runs before the static binary's own objects are compiled (target nodectl_static_check):
#   cmake -DSOURCE_DIR=... -DLIBRARY_SOURCES=a.cpp;b.cpp -DARCHIVES=x.a;y.a -P check_static_build.cmake
# Refuses, with the reason, when
#   - an archive is missing (the static dependencies are not built yet), or
#   - a source includes a libssh/libcurl/libarchive header that did not when CMake split the
#     sources: its one object, compiled against Debian's -dev headers, would go into the static
#     binary, linked with libraries of other headers (cmake/library_sources.cmake).
include("${CMAKE_CURRENT_LIST_DIR}/library_sources.cmake")

foreach(archive ${ARCHIVES})
  if(NOT EXISTS "${archive}")
    message(FATAL_ERROR "static binary: ${archive} is missing. Build the static dependencies first: "
      "scripts/build-static-deps.sh (or scripts/build.sh static, which runs it).")
  endif()
endforeach()

file(GLOB_RECURSE sources "${SOURCE_DIR}/src/*.cpp")
nodectl_library_sources(now "${SOURCE_DIR}" ${sources})
set(added ${now})
if(LIBRARY_SOURCES)
  list(REMOVE_ITEM added ${LIBRARY_SOURCES})
endif()
if(added)
  message(FATAL_ERROR "static binary: ${added} now include(s) a libssh/libcurl/libarchive header, but CMake "
    "configured it as an object shared by both binaries, compiled against Debian's -dev headers, which "
    "are not those of the rebuilt static libraries. Re-run CMake (cmake -S . -B build) and build again.")
endif()
