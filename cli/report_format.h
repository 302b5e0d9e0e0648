#pragma once
// Renders a report for people (text, html) and for programs (json, documented in the README).

#include <string>
#include <string_view>

#include "controller/report.h"

namespace sluice::cli {

std::string format_report_text(const Report& report);
std::string format_report_json(const Report& report);
std::string format_report_html(const Report& report);

// Text safe inside HTML elements and attribute values.
std::string html_escape(std::string_view s);

}  // namespace sluice::cli
