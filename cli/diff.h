#pragma once

#include <string>
#include <string_view>

namespace sluice::cli {

// A unified diff of two small texts (fragments are a handful of lines), with full context.
std::string unified_diff(std::string_view before, std::string_view after, std::string_view from,
                         std::string_view to);

}  // namespace sluice::cli
