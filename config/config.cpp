#include "config/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace sluice::config {

namespace {

const std::set<std::string> kTiers = {"high", "medium", "low", "warming"};
const std::set<std::string> kClasses = {"connection", "rate",   "reputation",
                                        "recipient",  "config", "other"};

struct Invalid {
  std::string message;
};

// Messages stay on one line whatever a rejected name holds.
std::string shown(const std::string& text) {
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

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const toml::node* node, const std::string& message) const {
    std::string where = source_;
    if (node != nullptr && node->source().begin.line > 0) {
      where += ":" + std::to_string(node->source().begin.line);
    }
    throw Invalid{where + ": " + message};
  }

  void only_keys(const toml::table& table, const std::set<std::string>& allowed,
                 const std::string& context) const {
    for (const auto& [key, node] : table) {
      if (!allowed.contains(std::string(key.str()))) {
        fail(&node, "unknown key '" + shown(std::string(key.str())) + "'" +
                        (context.empty() ? "" : " in " + context));
      }
    }
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
      fail(t.get(key), std::string("'") + key + "' must be an absolute path, not '" + shown(*p) + "'");
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

  Config read(const toml::table& root) const {
    Config config;
    config.source = source_;
    only_keys(root, {"pmta", "state", "pool", "isp", "reader"}, "");
    if (const toml::table* pmta = table(root, "pmta")) {
      only_keys(*pmta, {"command", "accounting", "fragments"}, "[pmta]");
      if (auto v = path(*pmta, "command")) config.pmta_command = *v;
      if (auto v = path(*pmta, "fragments")) config.fragments = *v;
      if (auto v = strings(*pmta, "accounting")) {
        for (const std::string& glob : *v) {
          if (glob.empty() || glob.front() != '/') {
            fail(pmta->get("accounting"),
                 "'accounting' must hold absolute paths, not '" + shown(glob) + "'");
          }
        }
        config.accounting = *v;
      }
    }
    if (const toml::table* state = table(root, "state")) {
      only_keys(*state, {"database", "overrides"}, "[state]");
      if (auto v = path(*state, "database")) config.database = *v;
      if (auto v = path(*state, "overrides")) config.overrides = *v;
    }
    if (const toml::table* reader = table(root, "reader")) {
      only_keys(*reader, {"bucket_seconds"}, "[reader]");
      if (const toml::node* node = reader->get("bucket_seconds")) {
        const auto* v = node->as_integer();
        if (v == nullptr || v->get() < 60 || v->get() > 3600 || 3600 % v->get() != 0) {
          fail(node, "'bucket_seconds' must be an integer from 60 to 3600 that divides an hour");
        }
        config.bucket_seconds = v->get();
      }
    }
    read_pools(root, config);
    read_isps(root, config);
    return config;
  }

  const toml::array* array_of_tables(const toml::table& root, const char* key) const {
    const toml::node* node = root.get(key);
    if (node == nullptr) return nullptr;
    const toml::array* array = node->as_array();
    if (array == nullptr || !array->is_array_of_tables()) {
      fail(node, std::string("'") + key + "' must be an array of tables ([[" + key + "]])");
    }
    return array;
  }

  void read_pools(const toml::table& root, Config& config) const {
    const toml::array* pools = array_of_tables(root, "pool");
    if (pools == nullptr) return;
    std::map<std::string, std::string> vmta_owner;
    for (const toml::node& node : *pools) {
      const toml::table& t = *node.as_table();
      only_keys(t, {"name", "vmtas", "tier", "isps"}, "[[pool]]");
      PoolTable pool;
      pool.line = line(t);
      pool.name = name(t, "name", "pool");
      for (const PoolTable& other : config.pools) {
        if (other.name == pool.name) {
          fail(t.get("name"), "pool '" + pool.name + "' is defined twice (first at line " +
                                  std::to_string(other.line) + ")");
        }
      }
      if (auto tier = string(t, "tier")) {
        if (!kTiers.contains(*tier)) {
          fail(t.get("tier"), "pool '" + pool.name + "': tier '" + shown(*tier) +
                                  "' is not one of high, medium, low, warming");
        }
        pool.tier = *tier;
      }
      pool.vmtas = strings(t, "vmtas").value_or(std::vector<std::string>{});
      for (const std::string& vmta : pool.vmtas) {
        if (!is_valid_name(vmta)) {
          fail(t.get("vmtas"), "pool '" + pool.name + "': vmta name '" + shown(vmta) +
                                   "' is not [A-Za-z0-9._-]+");
        }
        auto [owner, fresh] = vmta_owner.emplace(vmta, pool.name);
        if (!fresh && owner->second == pool.name) {
          fail(t.get("vmtas"), "pool '" + pool.name + "' lists vmta '" + vmta + "' twice");
        }
        if (!fresh) {
          fail(t.get("vmtas"), "vmta '" + vmta + "' is in two pools: '" + owner->second +
                                   "' and '" + pool.name + "'");
        }
      }
      pool.isps = strings(t, "isps").value_or(std::vector<std::string>{});
      for (const std::string& isp : pool.isps) {
        if (!is_valid_name(isp)) {
          fail(t.get("isps"), "pool '" + pool.name + "': ISP name '" + shown(isp) +
                                  "' is not [A-Za-z0-9._-]+");
        }
      }
      config.pools.push_back(std::move(pool));
    }
  }

  void read_isps(const toml::table& root, Config& config) const {
    const toml::array* isps = array_of_tables(root, "isp");
    if (isps == nullptr) return;
    for (const toml::node& node : *isps) {
      const toml::table& t = *node.as_table();
      only_keys(t, {"name", "domains", "mx_suffixes", "deferral"}, "[[isp]]");
      IspTable isp;
      isp.line = line(t);
      isp.name = name(t, "name", "ISP");
      for (const IspTable& other : config.isps) {
        if (other.name == isp.name) fail(t.get("name"), "ISP '" + isp.name + "' is defined twice");
      }
      isp.domains = strings(t, "domains").value_or(std::vector<std::string>{});
      isp.mx_suffixes = strings(t, "mx_suffixes").value_or(std::vector<std::string>{});
      if (const toml::array* rules = array_of_tables(t, "deferral")) {
        for (const toml::node& rule_node : *rules) {
          const toml::table& r = *rule_node.as_table();
          only_keys(r, {"pattern", "class"}, "[[isp.deferral]]");
          DeferralPattern rule;
          rule.line = line(r);
          std::optional<std::string> pattern = string(r, "pattern");
          std::optional<std::string> cls = string(r, "class");
          if (!pattern || pattern->empty()) fail(&r, "[[isp.deferral]] needs a 'pattern'");
          if (!cls || !kClasses.contains(*cls)) {
            fail(cls ? r.get("class") : &r,
                 "[[isp.deferral]] 'class' must be one of connection, rate, reputation, "
                 "recipient, config, other");
          }
          rule.pattern = *pattern;
          rule.deferral_class = *cls;
          isp.deferrals.push_back(std::move(rule));
        }
      }
      config.isps.push_back(std::move(isp));
    }
  }

 private:
  std::string source_;
};

}  // namespace

bool is_valid_name(const std::string& name) {
  if (name.empty() || name.size() > 128 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
  });
}

LoadResult load_string(const std::string& text, const std::string& source) {
  LoadResult result;
  try {
    toml::table root = toml::parse(text, source);
    result.config = Reader(source).read(root);
  } catch (const toml::parse_error& e) {
    result.error = source + ":" + std::to_string(e.source().begin.line) + ": " +
                   std::string(e.description());
  } catch (const Invalid& e) {
    result.error = e.message;
  }
  return result;
}

LoadResult load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return LoadResult{std::nullopt, path + ": cannot be read"};
  std::ostringstream text;
  text << in.rdbuf();
  return load_string(text.str(), path);
}

}  // namespace sluice::config
