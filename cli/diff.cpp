#include "cli/diff.h"

#include <vector>

namespace sluice::cli {

namespace {

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    lines.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

}  // namespace

std::string unified_diff(std::string_view before, std::string_view after, std::string_view from,
                         std::string_view to) {
  const std::vector<std::string_view> a = lines_of(before);
  const std::vector<std::string_view> b = lines_of(after);
  // Longest common subsequence table, from the ends: lcs[i][j] for a[i..], b[j..].
  std::vector<std::vector<int>> lcs(a.size() + 1, std::vector<int>(b.size() + 1, 0));
  for (std::size_t i = a.size(); i-- > 0;) {
    for (std::size_t j = b.size(); j-- > 0;) {
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  std::string body;
  std::size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    char mark;
    std::string_view line;
    if (i < a.size() && j < b.size() && a[i] == b[j]) {
      mark = ' ';
      line = a[i++];
      ++j;
    } else if (j < b.size() && (i == a.size() || lcs[i][j + 1] >= lcs[i + 1][j])) {
      mark = '+';
      line = b[j++];
    } else {
      mark = '-';
      line = a[i++];
    }
    body += mark;
    body += line;
    body += '\n';
  }
  const auto range = [](std::size_t n) {
    return (n == 0 ? std::string("0,0") : "1," + std::to_string(n));
  };
  return "--- " + std::string(from) + "\n+++ " + std::string(to) + "\n@@ -" + range(a.size()) +
         " +" + range(b.size()) + " @@\n" + body;
}

}  // namespace sluice::cli
