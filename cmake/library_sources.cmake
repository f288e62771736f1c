# Which sources include a header of libssh, libcurl or libarchive.
#
# Both binaries are linked from one build tree. Every other source is compiled once and its object
# goes into build/nodectl and into the static release binary alike. These few are compiled twice:
# against Debian's -dev headers for the dynamic build, and against the headers of the libraries
# scripts/build-static-deps.sh rebuilt for the static one. The two sets are not always the same
# version (the security suite's sources cannot be fetched here: libssh-dev 0.10.6-0+deb12u3 has a
# field appended to struct sftp_session_struct that the rebuilt 0.10.6-0+deb12u2 lacks), and an
# object compiled against one must not be linked with the other.
#
# The split is sound only if every source that sees a library header is found. A project header
# may include one only when its name says so: it ends in _curl.hpp, _ssh.hpp or _archive.hpp
# (util/http_curl.hpp), and a source that includes such a header counts as one that includes the
# library's. Any other project header that includes one would carry it into objects that are
# shared: that is refused here.
# Used at configure time (include()) and before the static link (cmake/check_static_build.cmake).

set(NODECTL_LIBRARY_INCLUDE_REGEX
    "^[ \t]*#[ \t]*include[ \t]*([<\"](libssh/|curl/|archive\\.h|archive_entry\\.h)|\"[^\"]*_(curl|ssh|archive)\\.hpp\")")
# Project headers allowed to include a library header (NODECTL_LIBRARY_INCLUDE_REGEX's last part).
set(NODECTL_LIBRARY_HEADER_NAME_REGEX "_(curl|ssh|archive)\\.hpp$")

# nodectl_library_sources(OUT_VAR SOURCE_DIR SOURCES...): the SOURCES that include a library header.
# Fails when a header under SOURCE_DIR/src or SOURCE_DIR/include includes one.
function(nodectl_library_sources out_var source_dir)
  file(GLOB_RECURSE headers "${source_dir}/src/*.hpp" "${source_dir}/src/*.h" "${source_dir}/include/*.hpp"
       "${source_dir}/include/*.h")
  foreach(header ${headers})
    file(STRINGS "${header}" hits REGEX "${NODECTL_LIBRARY_INCLUDE_REGEX}")
    if(hits AND NOT header MATCHES "${NODECTL_LIBRARY_HEADER_NAME_REGEX}")
      list(GET hits 0 first)
      message(FATAL_ERROR "${header}: '${first}': include the headers of libssh, libcurl and libarchive "
        "only from .cpp files, or from a header named *_curl.hpp, *_ssh.hpp or *_archive.hpp. Those files are compiled once per header set (Debian's and the static "
        "rebuild's); every other object is shared by build/nodectl and the static binary "
        "(cmake/library_sources.cmake).")
    endif()
  endforeach()
  set(found "")
  foreach(source ${ARGN})
    file(STRINGS "${source}" hits REGEX "${NODECTL_LIBRARY_INCLUDE_REGEX}")
    if(hits)
      list(APPEND found "${source}")
    endif()
  endforeach()
  set(${out_var} "${found}" PARENT_SCOPE)
endfunction()
