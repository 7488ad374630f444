#pragma once
// Writing JSON text by hand for the few shapes depot replies with (a Faktory job, an admin API
// answer): simpler and faster than building a DOM, and raw client JSON is copied verbatim.
#include <string>
#include <string_view>

namespace depot {

// Appends `text` as a JSON string literal. Quotes, backslashes and control characters are
// escaped; U+2028/U+2029 too (as Go does), so the output is also safe JavaScript. Bytes that are
// not valid UTF-8 become U+FFFD, as in Go's encoder, so the output is always valid JSON.
void append_json_string(std::string& out, std::string_view text);

}  // namespace depot
