#pragma once
// Reading checked values out of a parsed TOML table, with "FILE:LINE: problem" messages. Shared
// by the configuration and the override file; internal to this library.

#include <toml++/toml.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace sluice::config::detail {

inline const std::set<std::string> kTierNames = {"high", "medium", "low", "warming"};

struct Invalid {
  std::string message;
};

// Messages stay on one line whatever a rejected name holds.
inline std::string shown(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

// Floats keep a decimal point, so that "not 1.0" for an integer key does not read as "not 1".
inline std::string number_text(double value) {
  std::ostringstream out;
  out << value;
  std::string text = out.str();
  if (text.find_first_of(".ein") == std::string::npos) text += ".0";
  return text;
}

// A rejected value as the file wrote it, on one line.
inline std::string rendered(const toml::node& node) {
  if (const auto* v = node.as_integer()) return std::to_string(v->get());
  if (const auto* v = node.as_floating_point()) return number_text(v->get());
  if (const auto* v = node.as_boolean()) return v->get() ? "true" : "false";
  if (const auto* v = node.as_string()) return "'" + shown(v->get()) + "'";
  if (const auto* array = node.as_array()) {
    std::string out = "[";
    for (const toml::node& item : *array) {
      out += (out.size() > 1 ? ", " : "") + rendered(item);
    }
    return out + "]";
  }
  if (node.is_table()) return "a table";
  return "a date or time";
}

// Where a key sits, for messages: "pool 'bulk': [pool.policy] 'floor' must be ...".
struct Scope {
  std::string prefix;  // empty, or "pool 'NAME': "
  std::string table;   // "[policy]", "[pool.policy.caps.gmail]"
  std::string key(std::string_view name) const {
    return prefix + table + " '" + std::string(name) + "'";
  }
  // "[policy]" -> "[policy.caps]"
  Scope nested(std::string_view name) const {
    return Scope{prefix, table.substr(0, table.size() - 1) + "." + std::string(name) + "]"};
  }
};

class TomlReader {
 public:
  explicit TomlReader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const toml::node* node, const std::string& message) const {
    std::string where = source_;
    if (node != nullptr && node->source().begin.line > 0) {
      where += ":" + std::to_string(node->source().begin.line);
    }
    throw Invalid{where + ": " + message};
  }

  void only_keys(const toml::table& table, const std::set<std::string>& allowed,
                 const std::string& context, const std::string& prefix = "") const {
    for (const auto& [key, node] : table) {
      if (!allowed.contains(std::string(key.str()))) {
        fail(&node, prefix + "unknown key '" + shown(std::string(key.str())) + "'" +
                        (context.empty() ? "" : " in " + context));
      }
    }
  }

  std::optional<std::int64_t> integer(const toml::table& t, const char* key, const Scope& scope,
                                      std::int64_t low, std::int64_t high) const {
    const toml::node* node = t.get(key);
    if (node == nullptr) return std::nullopt;
    const auto* v = node->as_integer();
    if (v == nullptr || v->get() < low || v->get() > high) {
      const std::string range = high == std::numeric_limits<std::int64_t>::max()
                                    ? "of at least " + std::to_string(low)
                                    : "from " + std::to_string(low) + " to " + std::to_string(high);
      fail(node, scope.key(key) + " must be an integer " + range + ", not " + rendered(*node));
    }
    return v->get();
  }

  // A rate or a fraction: above 0 and below 1, or at most 1 when `one_allowed`. An integer is
  // taken for a float, as TOML's 1 for 1.0.
  // A float, or an integer taken for one; nullopt for any other type.
  static std::optional<double> numeric(const toml::node& node) {
    if (const auto* v = node.as_floating_point()) return v->get();
    if (const auto* v = node.as_integer()) return static_cast<double>(v->get());
    return std::nullopt;
  }

  // A number from `low` to `high`.
  std::optional<double> number(const toml::table& t, const char* key, const Scope& scope,
                               double low, double high) const {
    const toml::node* node = t.get(key);
    if (node == nullptr) return std::nullopt;
    const std::optional<double> value = numeric(*node);
    // Written so that NaN fails.
    if (!value || !(*value >= low && *value <= high)) {
      std::ostringstream range;
      range << "from " << low << " to " << high;
      fail(node, scope.key(key) + " must be a number " + range.str() + ", not " + rendered(*node));
    }
    return value;
  }

  std::optional<double> fraction(const toml::table& t, const char* key, const Scope& scope,
                                 bool one_allowed = false) const {
    const toml::node* node = t.get(key);
    if (node == nullptr) return std::nullopt;
    const std::optional<double> value = numeric(*node);
    // Written so that NaN fails.
    if (!value || !(*value > 0 && (*value < 1 || (one_allowed && *value == 1)))) {
      fail(node, scope.key(key) + " must be a number " +
                     (one_allowed ? "above 0 and at most 1" : "between 0 and 1") + ", not " +
                     rendered(*node));
    }
    return value;
  }

  const toml::table* table(const toml::table& parent, const char* key) const {
    const toml::node* node = parent.get(key);
    if (node == nullptr) return nullptr;
    if (!node->is_table()) fail(node, std::string("'") + key + "' must be a table");
    return node->as_table();
  }

  std::optional<std::string> string(const toml::table& t, const char* key) const {
    const toml::node* node = t.get(key);
    if (node == nullptr) return std::nullopt;
    if (!node->is_string()) fail(node, std::string("'") + key + "' must be a string");
    return node->as_string()->get();
  }

  std::optional<std::string> path(const toml::table& t, const char* key) const {
    std::optional<std::string> p = string(t, key);
    if (p && (p->empty() || p->front() != '/')) {
      fail(t.get(key),
           std::string("'") + key + "' must be an absolute path, not '" + shown(*p) + "'");
    }
    return p;
  }

  std::optional<std::vector<std::string>> strings(const toml::table& t, const char* key) const {
    const toml::node* node = t.get(key);
    if (node == nullptr) return std::nullopt;
    const toml::array* array = node->as_array();
    if (array == nullptr) fail(node, std::string("'") + key + "' must be an array of strings");
    std::vector<std::string> out;
    for (const toml::node& item : *array) {
      if (!item.is_string()) fail(&item, std::string("'") + key + "' must hold only strings");
      out.push_back(item.as_string()->get());
    }
    return out;
  }

  std::string name(const toml::table& t, const char* key, const std::string& what) const {
    std::optional<std::string> n = string(t, key);
    if (!n) fail(&t, what + " needs '" + key + "'");
    if (!is_valid_name(*n)) {
      fail(t.get(key), what + " name '" + shown(*n) + "' is not [A-Za-z0-9._-]+");
    }
    return *n;
  }

  std::int64_t line(const toml::node& node) const { return node.source().begin.line; }

  const toml::array* array_of_tables(const toml::table& root, const char* key) const {
    const toml::node* node = root.get(key);
    if (node == nullptr) return nullptr;
    const toml::array* array = node->as_array();
    if (array == nullptr || !array->is_array_of_tables()) {
      fail(node, std::string("'") + key + "' must be an array of tables ([[" + key + "]])");
    }
    return array;
  }

 protected:
  std::string source_;
};

// Parses `text` and hands the root table to `read`; the error, "SOURCE:LINE: problem", or "".
inline std::string parse_and_read(std::string_view text, const std::string& source,
                                  const std::function<void(const toml::table&)>& read) {
  try {
    read(toml::parse(text, source));
  } catch (const toml::parse_error& e) {
    return source + ":" + std::to_string(e.source().begin.line) + ": " +
           std::string(e.description());
  } catch (const Invalid& e) {
    return e.message;
  }
  return "";
}

}  // namespace sluice::config::detail
