#pragma once
// A checker of Prometheus' text exposition format 0.0.4, for the metrics tests (unit and
// end-to-end): what node_exporter's textfile collector would refuse, and sluice's conventions.

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace sluice::prometheus {

inline bool is_metric_name(const std::string& s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// [a-zA-Z_][a-zA-Z0-9_]*, and not the reserved __ prefix.
inline bool is_label_name(const std::string& s) {
  return is_metric_name(s) && s.find(':') == std::string::npos && !s.starts_with("__");
}

// A float as Prometheus reads it: what strtod takes whole, or NaN, +Inf, -Inf.
inline bool is_sample_value(const std::string& s) {
  if (s == "NaN" || s == "+Inf" || s == "-Inf") return true;
  if (s.empty()) return false;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(v);
}

struct ParsedSample {
  std::string name;
  std::map<std::string, std::string> labels;  // values unescaped
  std::string value;
};

// Parses one sample line; "" on success, else the problem.
inline std::string parse_sample(const std::string& line, ParsedSample& out) {
  std::size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  out.name = line.substr(0, i);
  if (!is_metric_name(out.name)) return "bad metric name '" + out.name + "'";
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (true) {
      const std::size_t eq = line.find('=', i);
      if (eq == std::string::npos) return "label without '='";
      const std::string label = line.substr(i, eq - i);
      if (!is_label_name(label)) return "bad label name '" + label + "'";
      if (eq + 1 >= line.size() || line[eq + 1] != '"') return "label value not quoted";
      std::string value;
      std::size_t j = eq + 2;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] != '\\') {
          value += line[j];
          continue;
        }
        if (++j == line.size()) return "label value ends in a lone backslash";
        if (line[j] == '\\') {
          value += '\\';
        } else if (line[j] == '"') {
          value += '"';
        } else if (line[j] == 'n') {
          value += '\n';
        } else {
          return std::string("bad escape \\") + line[j] + " in a label value";
        }
      }
      if (j == line.size()) return "unterminated label value";
      if (!out.labels.emplace(label, value).second) return "label '" + label + "' repeated";
      i = j + 1;
      if (i < line.size() && line[i] == ',') {
        ++i;
        continue;
      }
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      return "expected ',' or '}' after a label";
    }
  }
  if (i >= line.size() || line[i] != ' ') return "no single space before the value";
  std::istringstream rest(line.substr(i + 1));
  std::string timestamp, extra;
  if (line.size() > i + 1 && line[i + 1] == ' ') return "more than one space before the value";
  rest >> out.value >> timestamp >> extra;
  if (!is_sample_value(out.value)) return "bad value '" + out.value + "'";
  if (!timestamp.empty() && timestamp.find_first_not_of("-0123456789") != std::string::npos) {
    return "bad timestamp '" + timestamp + "'";
  }
  if (!extra.empty()) return "text after the timestamp";
  return "";
}

// The problems of `text`, one line each; "" when it is valid exposition text that also follows
// sluice's conventions: each family with exactly one HELP and one TYPE line before its samples,
// its samples contiguous, counters named *_total, no series twice.
inline std::string exposition_problems(const std::string& text) {
  std::string problems;
  if (!text.empty() && text.back() != '\n') problems += "the text does not end with a newline\n";
  std::map<std::string, std::string> types;
  std::set<std::string> helps;
  std::set<std::string> finished;  // families whose samples ended
  std::set<std::string> series;
  std::string current;  // the family of the last sample
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string at = "line " + std::to_string(number) + ": ";
    if (line.empty()) continue;
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
      std::istringstream words(line.substr(7));
      std::string name, rest;
      words >> name;
      std::getline(words, rest);
      if (!is_metric_name(name)) problems += at + "bad metric name '" + name + "'\n";
      if (finished.contains(name) || current == name) {
        problems += at + line.substr(2, 4) + " of " + name + " after its samples\n";
      }
      if (line[2] == 'H') {
        if (!helps.insert(name).second) problems += at + "second HELP of " + name + "\n";
        continue;
      }
      const std::string type = rest.empty() ? "" : rest.substr(1);
      static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                                   "untyped"};
      if (!kTypes.contains(type)) problems += at + "unknown type '" + type + "'\n";
      if (!types.emplace(name, type).second) problems += at + "second TYPE of " + name + "\n";
      if (type == "counter" && !name.ends_with("_total")) {
        problems += at + "counter " + name + " does not end in _total\n";
      }
      continue;
    }
    if (line.front() == '#') continue;  // a plain comment
    ParsedSample sample;
    if (const std::string problem = parse_sample(line, sample); !problem.empty()) {
      problems += at + problem + ": " + line + "\n";
      continue;
    }
    const std::string& family = sample.name;
    if (!types.contains(family)) problems += at + "no TYPE before " + family + "\n";
    if (!helps.contains(family)) problems += at + "no HELP before " + family + "\n";
    if (family != current) {
      if (finished.contains(family)) problems += at + "samples of " + family + " not together\n";
      if (!current.empty()) finished.insert(current);
      current = family;
    }
    std::string key = family;
    for (const auto& [label, value] : sample.labels) key += "\x1f" + label + "=" + value;
    if (!series.insert(key).second) problems += at + "series repeated: " + line + "\n";
  }
  return problems;
}

// The samples of `text` by series: "name{label=\"value\",...}" as written, to the value.
inline std::map<std::string, double> samples_of(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line.front() == '#') continue;
    const std::size_t space = line.rfind(' ');
    out[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return out;
}

}  // namespace sluice::prometheus
