#include "config/override_edit.h"

#include <toml++/toml.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>

namespace sluice::config {

namespace {

enum class BlockKind { global, override_entry, tier };

// One top-level table and the lines it owns (1-based line numbers).
struct Block {
  BlockKind kind = BlockKind::global;
  std::size_t index = 0;   // into OverrideFile::overrides or ::tiers
  std::size_t start = 0;   // the first of the comments and blank lines above the header
  std::size_t header = 0;  // the header line
  std::size_t last = 0;    // the last line of its values
  std::size_t end = 0;     // the line before the next block, or the file's last line
};

struct Layout {
  std::vector<std::string_view> lines;  // line n is lines[n - 1], with its line ending
  std::string eol;                      // the file's own, for new lines
  std::size_t preamble = 0;             // lines of the file's leading comment block + blank lines
  std::vector<Block> blocks;            // in file order
  OverrideFile file;
  std::optional<toml::source_region> freeze;  // of the [global] values
  std::optional<toml::source_region> reason;

  std::string_view line(std::size_t n) const { return lines[n - 1]; }
};

struct Analysis {
  std::optional<Layout> layout;
  std::string error;
};

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    const std::size_t size = nl == std::string_view::npos ? text.size() : nl + 1;
    lines.push_back(text.substr(0, size));
    text.remove_prefix(size);
  }
  return lines;
}

// A line without its line ending and leading blanks.
std::string_view content(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const std::size_t first = line.find_first_not_of(" \t");
  return first == std::string_view::npos ? std::string_view() : line.substr(first);
}

bool is_blank(std::string_view line) {
  return content(line).empty();
}
bool is_comment(std::string_view line) {
  return content(line).starts_with('#');
}

// toml++ counts columns in code points; the text is valid UTF-8 once it parsed.
std::size_t byte_offset(std::string_view line, std::size_t column) {
  std::size_t code_points = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    if ((static_cast<unsigned char>(line[i]) & 0xC0) == 0x80) continue;
    if (++code_points == column) return i;
  }
  return line.size();
}

// Where each table's block starts and ends. Only tables written under their own header line are
// edited: the block rules need one, and dotted or inline tables never have one.
Analysis analyse(std::string_view text, const std::string& source) {
  OverrideLoad load = parse_overrides(text, source);
  if (!load.file) return {std::nullopt, load.error};
  Layout l;
  l.lines = split_lines(text);
  const std::size_t nl = text.find('\n');
  l.eol = nl != std::string_view::npos && nl > 0 && text[nl - 1] == '\r' ? "\r\n" : "\n";
  l.file = std::move(*load.file);

  const toml::table root = toml::parse(text, source);  // cannot fail: parse_overrides took it
  std::string problem;
  const auto add = [&](const toml::node& node, BlockKind kind, std::size_t index,
                       const char* what) {
    const toml::table& table = *node.as_table();
    Block b;
    b.kind = kind;
    b.index = index;
    b.header = b.last = table.source().begin.line;
    if (table.is_inline() || !content(l.line(b.header)).starts_with('[')) {
      if (problem.empty()) {
        problem = source + ":" + std::to_string(b.header) + ": this " + what +
                  " has no header line of its own; sluice override edits only tables written as "
                  "[global], [[override]] or [[tier]] followed by their keys";
      }
      return;
    }
    for (const auto& [key, value] : table) {
      b.last = std::max<std::size_t>(b.last, value.source().end.line);
    }
    l.blocks.push_back(b);
  };
  if (const toml::table* global = root["global"].as_table()) {
    add(*global, BlockKind::global, 0, "[global]");
    if (const toml::node* freeze = global->get("freeze")) l.freeze = freeze->source();
    if (const toml::node* reason = global->get("reason")) l.reason = reason->source();
  }
  if (const toml::array* entries = root["override"].as_array()) {
    for (std::size_t i = 0; i < entries->size(); ++i) {
      add(*entries->get(i), BlockKind::override_entry, i, "[[override]]");
    }
  }
  if (const toml::array* tiers = root["tier"].as_array()) {
    for (std::size_t i = 0; i < tiers->size(); ++i) {
      add(*tiers->get(i), BlockKind::tier, i, "[[tier]]");
    }
  }
  if (!problem.empty()) return {std::nullopt, problem};
  std::sort(l.blocks.begin(), l.blocks.end(),
            [](const Block& a, const Block& b) { return a.header < b.header; });

  // Above the first header there are only comments and blank lines: no key may sit outside a
  // table in a file that parsed, and every table has a header.
  std::size_t n = 0;
  while (n < l.lines.size() && is_comment(l.lines[n])) ++n;
  if (n > 0 && (n == l.lines.size() || is_blank(l.lines[n]))) {
    while (n < l.lines.size() && is_blank(l.lines[n])) ++n;
    l.preamble = n;
  }
  // What lies between two tables' values is comments and blank lines, so a block starts right
  // after the values of the one before: never inside a multi-line string.
  for (std::size_t i = 0; i < l.blocks.size(); ++i) {
    l.blocks[i].start = i == 0 ? l.preamble + 1 : l.blocks[i - 1].last + 1;
  }
  for (std::size_t i = 0; i < l.blocks.size(); ++i) {
    l.blocks[i].end = i + 1 < l.blocks.size() ? l.blocks[i + 1].start - 1 : l.lines.size();
  }
  return {std::move(l), ""};
}

// The new text, line by line.
class Output {
 public:
  explicit Output(std::string eol) : eol_(std::move(eol)) {}

  void keep(std::string_view line) { lines_.emplace_back(line); }
  void keep(const Layout& l, std::size_t first, std::size_t last) {
    for (std::size_t n = first; n <= last; ++n) keep(l.line(n));
  }
  void add(std::string_view line) { lines_.push_back(std::string(line) + eol_); }

  std::size_t size() const { return lines_.size(); }
  bool ends_blank() const { return !lines_.empty() && is_blank(lines_.back()); }
  void drop_trailing_blank_lines() {
    while (ends_blank()) lines_.pop_back();
  }

  std::string text() const {
    std::string out;
    for (const std::string& line : lines_) {
      // A last line without its newline is no longer last.
      if (!out.empty() && out.back() != '\n') out += eol_;
      out += line;
    }
    return out;
  }

 private:
  std::string eol_;
  std::vector<std::string> lines_;
};

using Edit = std::function<void(const Layout&, Output&, std::vector<std::string>&)>;

EditResult edit(std::string_view text, const std::string& source, const Edit& change) {
  EditResult result;
  result.text = std::string(text);
  // A byte order mark stays first, whatever goes at the top.
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  const bool bom = text.starts_with(kBom);
  if (bom) text.remove_prefix(kBom.size());
  Analysis analysis = analyse(text, source);
  if (!analysis.layout) {
    result.error = analysis.error;
    return result;
  }
  Output out(analysis.layout->eol);
  change(*analysis.layout, out, result.changes);
  if (!result.changes.empty()) result.text = (bom ? std::string(kBom) : "") + out.text();
  return result;
}

std::string utc_text(std::int64_t unix_seconds) {
  using namespace std::chrono;
  const sys_seconds time{seconds{unix_seconds}};
  const sys_days day = floor<days>(time);
  const year_month_day date{day};
  const hh_mm_ss clock{time - day};
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
                static_cast<int>(clock.seconds().count()));
  return buf;
}

std::vector<std::string> override_keys(const OverrideEntry& e) {
  std::vector<std::string> keys = {"pool = " + toml_string(e.pool)};
  if (!e.isp.empty()) keys.push_back("isp = " + toml_string(e.isp));
  if (!e.vmta.empty()) keys.push_back("vmta = " + toml_string(e.vmta));
  switch (e.kind) {
    case OverrideKind::pin:
      keys.push_back("max_smtp_out = " + std::to_string(e.max_smtp_out));
      break;
    case OverrideKind::freeze:
      keys.push_back("freeze = true");
      break;
    case OverrideKind::bounds:
      if (e.floor) keys.push_back("floor = " + std::to_string(*e.floor));
      if (e.ceiling) keys.push_back("ceiling = " + std::to_string(*e.ceiling));
      break;
  }
  if (e.until) keys.push_back("until = " + toml_string(utc_text(*e.until)));
  keys.push_back("reason = " + toml_string(e.reason));
  return keys;
}

std::vector<std::string> tier_keys(const TierEntry& e) {
  return {"pool = " + toml_string(e.pool), "isp = " + toml_string(e.isp),
          "tier = " + toml_string(e.tier), "source = " + toml_string(e.source)};
}

std::string override_scope(const std::string& pool, const std::string& isp,
                           const std::string& vmta) {
  std::string out = "the [[override]] for pool '" + pool + "'";
  out += isp.empty() ? ", every ISP" : ", ISP '" + isp + "'";
  if (!vmta.empty()) out += ", VMTA '" + vmta + "'";
  return out;
}

std::string tier_scope(const std::string& pool, const std::string& isp) {
  return "the [[tier]] for pool '" + pool + "', ISP '" + isp + "'";
}

std::string at_line(std::size_t line) {
  return " (line " + std::to_string(line) + ")";
}

// Rewrites the keys of `target` below its header, or appends a new block. An entry that already
// says the same is left as written, with its comments.
void put_block(const Layout& l, const Block* target, const std::vector<std::string>& old_keys,
               const std::vector<std::string>& keys, std::string_view header,
               const std::string& what, Output& out, std::vector<std::string>& changes) {
  if (target != nullptr) {
    if (old_keys == keys) return;
    out.keep(l, 1, target->header);
    for (const std::string& key : keys) out.add(key);
    out.keep(l, target->last + 1, l.lines.size());
    changes.push_back("replaced " + what + at_line(target->header));
    return;
  }
  out.keep(l, 1, l.lines.size());
  if (out.size() > 0 && !out.ends_blank()) out.add("");
  changes.push_back("added " + what + at_line(out.size() + 1));
  out.add(header);
  for (const std::string& key : keys) out.add(key);
}

// Leaves out the blocks `removed` picks. Where that leaves blank lines at the top of the file, or
// two runs of them meeting, the later run goes too; so do blank lines left at the end.
void remove_blocks(const Layout& l, const std::function<bool(const Block&)>& removed,
                   const std::function<std::string(const Block&)>& what, Output& out,
                   std::vector<std::string>& changes) {
  out.keep(l, 1, l.blocks.empty() ? l.lines.size() : l.blocks.front().start - 1);
  bool after_removed = false;
  for (const Block& b : l.blocks) {
    if (removed(b)) {
      changes.push_back("removed " + what(b) + at_line(b.header));
      after_removed = true;
      continue;
    }
    std::size_t from = b.start;
    if (after_removed && (out.size() == 0 || out.ends_blank())) {
      while (from < b.header && is_blank(l.line(from))) ++from;
    }
    out.keep(l, from, b.end);
    after_removed = false;
  }
  if (after_removed) out.drop_trailing_blank_lines();
}

const Block* find_block(const Layout& l, const std::function<bool(const Block&)>& match) {
  for (const Block& b : l.blocks) {
    if (match(b)) return &b;
  }
  return nullptr;
}

}  // namespace

EditResult put_override(std::string_view text, const OverrideEntry& entry,
                        const std::string& source) {
  return edit(text, source, [&](const Layout& l, Output& out, std::vector<std::string>& changes) {
    const Block* target = find_block(l, [&](const Block& b) {
      if (b.kind != BlockKind::override_entry) return false;
      const OverrideEntry& e = l.file.overrides[b.index];
      return e.pool == entry.pool && e.isp == entry.isp && e.vmta == entry.vmta;
    });
    put_block(l, target,
              target != nullptr ? override_keys(l.file.overrides[target->index])
                                : std::vector<std::string>{},
              override_keys(entry), "[[override]]",
              override_scope(entry.pool, entry.isp, entry.vmta), out, changes);
  });
}

EditResult remove_overrides(std::string_view text, const std::string& pool,
                            const std::optional<std::string>& isp,
                            const std::optional<std::string>& vmta,
                            std::optional<OverrideKind> kind, const std::string& source) {
  return edit(text, source, [&](const Layout& l, Output& out, std::vector<std::string>& changes) {
    remove_blocks(
        l,
        [&](const Block& b) {
          if (b.kind != BlockKind::override_entry) return false;
          const OverrideEntry& e = l.file.overrides[b.index];
          return e.pool == pool && (!isp || e.isp == *isp) && (!vmta || e.vmta == *vmta) &&
                 (!kind || e.kind == *kind);
        },
        [&](const Block& b) {
          const OverrideEntry& e = l.file.overrides[b.index];
          return override_scope(e.pool, e.isp, e.vmta);
        },
        out, changes);
  });
}

EditResult put_tier(std::string_view text, const TierEntry& entry, const std::string& source) {
  return edit(text, source, [&](const Layout& l, Output& out, std::vector<std::string>& changes) {
    const Block* target = find_block(l, [&](const Block& b) {
      if (b.kind != BlockKind::tier) return false;
      const TierEntry& e = l.file.tiers[b.index];
      return e.pool == entry.pool && e.isp == entry.isp;
    });
    put_block(
        l, target,
        target != nullptr ? tier_keys(l.file.tiers[target->index]) : std::vector<std::string>{},
        tier_keys(entry), "[[tier]]", tier_scope(entry.pool, entry.isp), out, changes);
  });
}

EditResult remove_tiers(std::string_view text, const std::string& pool,
                        const std::optional<std::string>& isp, const std::string& source) {
  return edit(text, source, [&](const Layout& l, Output& out, std::vector<std::string>& changes) {
    remove_blocks(
        l,
        [&](const Block& b) {
          if (b.kind != BlockKind::tier) return false;
          const TierEntry& e = l.file.tiers[b.index];
          return e.pool == pool && (!isp || e.isp == *isp);
        },
        [&](const Block& b) {
          const TierEntry& e = l.file.tiers[b.index];
          return tier_scope(e.pool, e.isp);
        },
        out, changes);
  });
}

EditResult set_global_freeze(std::string_view text, bool freeze, const std::string& reason,
                             const std::string& source) {
  return edit(text, source, [&](const Layout& l, Output& out, std::vector<std::string>& changes) {
    const std::string freeze_line = std::string("freeze = ") + (freeze ? "true" : "false");
    const std::string reason_line = "reason = " + toml_string(reason);
    const bool set_reason = freeze && !reason.empty();
    const Block* global = find_block(l, [](const Block& b) { return b.kind == BlockKind::global; });

    if (global == nullptr) {
      if (!freeze) return;  // no [global]: not frozen already
      out.keep(l, 1, l.preamble);
      if (l.preamble > 0 && !out.ends_blank()) out.add("");
      changes.push_back("added [global] with " + freeze_line + at_line(out.size() + 1));
      out.add("[global]");
      out.add(freeze_line);
      if (set_reason) {
        changes.push_back("added [global] reason" + at_line(out.size() + 1));
        out.add(reason_line);
      }
      if (l.preamble < l.lines.size() && !is_blank(l.line(l.preamble + 1))) out.add("");
      out.keep(l, l.preamble + 1, l.lines.size());
      return;
    }

    const auto add_reason = [&] {
      if (!set_reason || l.reason) return;
      changes.push_back("added [global] reason" + at_line(out.size() + 1));
      out.add(reason_line);
    };
    out.keep(l, 1, global->header);
    if (!l.freeze && freeze) {
      changes.push_back("added [global] " + freeze_line + at_line(out.size() + 1));
      out.add(freeze_line);
      add_reason();
    }
    for (std::size_t n = global->header + 1; n <= global->last; ++n) {
      const std::string_view line = l.line(n);
      if (l.freeze && n == l.freeze->begin.line) {
        if (l.file.freeze_all == freeze) {
          out.keep(line);
        } else {
          const std::size_t from = byte_offset(line, l.freeze->begin.column);
          const std::size_t to = byte_offset(line, l.freeze->end.column);
          out.keep(std::string(line.substr(0, from)) + (freeze ? "true" : "false") +
                   std::string(line.substr(to)));
          changes.push_back("set [global] " + freeze_line + at_line(out.size()));
        }
        add_reason();
      } else if (l.reason && n >= l.reason->begin.line && n <= l.reason->end.line) {
        if (!freeze) {
          if (n == l.reason->begin.line) changes.push_back("removed [global] reason" + at_line(n));
        } else if (!set_reason || reason == l.file.freeze_reason) {
          out.keep(line);
        } else if (n == l.reason->begin.line) {
          // A multi-line reason becomes one line: its first line's start, its last line's end.
          const std::string_view end_line = l.line(l.reason->end.line);
          out.keep(std::string(line.substr(0, byte_offset(line, l.reason->begin.column))) +
                   toml_string(reason) +
                   std::string(end_line.substr(byte_offset(end_line, l.reason->end.column))));
          changes.push_back("set [global] reason" + at_line(out.size()));
        }
      } else {
        out.keep(line);
      }
    }
    out.keep(l, global->last + 1, l.lines.size());
  });
}

std::string toml_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (byte < 0x20 || byte == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned>(byte));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace sluice::config
