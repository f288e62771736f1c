// The little XML util::s3 reads and writes: S3's answers are flat elements whose text is
// entity-escaped. Not a general XML parser. Bounded: the scanner reads each byte of its input a
// bounded number of times (no recursion, no backtracking), and the request layer caps what it
// hands over (s3_request_curl.hpp: k_max_text_body, k_max_error_body). Knows nothing of nodectl.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace util::s3::xml {

// The raw contents of every <tag>...</tag> (or <tag attr="...">) in `xml`, in order. An empty
// element <tag/> gives an empty string. <KeyMarker> is not <Key>.
std::vector<std::string_view> all(std::string_view xml, std::string_view tag);
// The unescaped text of the first <tag>; empty when there is none.
std::string text(std::string_view xml, std::string_view tag);
// &amp; &lt; &gt; &quot; &apos; and numeric references to code points (as UTF-8) resolved; an
// entity that is none of these stays as written.
std::string unescape(std::string_view s);
// & < > " escaped, for element text.
std::string escape(std::string_view s);

}  // namespace util::s3::xml
