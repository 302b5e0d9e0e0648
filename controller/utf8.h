#pragma once
// Remote servers send Latin-1 replies: invalid UTF-8 is repaired, never a reason to drop a record.

#include <string>
#include <string_view>

namespace sluice {

bool is_ascii(std::string_view text);
bool is_valid_utf8(std::string_view text);
// Appends `text` to `out` with every byte that is not part of a valid UTF-8 sequence read as
// Latin-1 (so "refus\xe9" becomes "refusé"): the output is always valid UTF-8.
void append_repaired_utf8(std::string_view text, std::string& out);
// The longest prefix of valid UTF-8 `text` with at most `chars` code points.
std::string_view utf8_prefix(std::string_view text, std::size_t chars);

}  // namespace sluice
