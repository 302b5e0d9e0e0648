// Keeps the man page (docs/sluice.1) and the bash completion (completions/sluice.bash) in step
// with the command line: every command and option that the real binary's --help lists must be
// documented in the page, in that command's own section, and offered by the completion. A new
// option added to cli/app.cpp without docs fails here.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/e2e/e2e_support.h"

namespace sluice::e2e {
namespace {

const fs::path kManPage = fs::path(SLUICE_SOURCE_DIR) / "docs" / "sluice.1";
const fs::path kCompletion = fs::path(SLUICE_SOURCE_DIR) / "completions" / "sluice.bash";
constexpr const char* kBash = "/bin/bash";

struct Option {
  std::string name;                  // --format, -h
  std::vector<std::string> choices;  // from CLI11's TEXT:{a,b,c}
};

struct Command {
  std::vector<std::string> path;  // {} for sluice itself, {"override", "pin"}
  std::vector<Option> options;
  std::vector<std::string> subcommands;
};

std::string joined(const std::vector<std::string>& words, const std::string& separator) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "" : separator) + w;
  return out;
}

// CLI11's help: a section title at column 0 ("Options:", "Subcommands:"), one entry per line
// indented by two spaces, continuation lines indented further.
Command parse_help(const std::vector<std::string>& path, const std::string& help) {
  Command command{path, {}, {}};
  std::string section;
  for (const std::string& line : lines_of(help)) {
    if (line.empty()) continue;
    if (line[0] != ' ') {
      section = line;
      continue;
    }
    if (line.size() < 3 || line.compare(0, 2, "  ") != 0 || line[2] == ' ') continue;
    const std::size_t end = line.find(' ', 2);
    const std::string first = line.substr(2, end == std::string::npos ? end : end - 2);
    if (section == "Subcommands:") {
      command.subcommands.push_back(first);
    } else if (section == "Options:") {
      std::vector<std::string> choices;
      const std::size_t open = line.find(":{");
      const std::size_t close = line.find('}', open);
      if (open != std::string::npos && close != std::string::npos) {
        std::string list = line.substr(open + 2, close - open - 2);
        for (std::size_t at = 0; at <= list.size();) {
          const std::size_t comma = std::min(list.find(',', at), list.size());
          choices.push_back(list.substr(at, comma - at));
          at = comma + 1;
        }
      }
      // "-h,--help" names one option twice; each name is documented.
      for (std::size_t at = 0; at <= first.size();) {
        const std::size_t comma = std::min(first.find(',', at), first.size());
        const std::string name = first.substr(at, comma - at);
        if (!name.empty() && name[0] == '-') command.options.push_back({name, choices});
        at = comma + 1;
      }
    }
  }
  return command;
}

// Every command reachable from `sluice --help`, sluice itself first.
std::vector<Command> all_commands() {
  std::vector<Command> out;
  std::vector<std::vector<std::string>> todo = {{}};
  while (!todo.empty()) {
    const std::vector<std::string> path = todo.front();
    todo.erase(todo.begin());
    std::vector<std::string> argv = {SLUICE_BINARY};
    argv.insert(argv.end(), path.begin(), path.end());
    argv.push_back("--help");
    const ProcessResult r = run_process(argv);
    EXPECT_EQ(r.exit_code, 0) << joined(argv, " ") << ": " << r.err;
    Command c = parse_help(path, r.out);
    for (const std::string& sub : c.subcommands) {
      std::vector<std::string> next = path;
      next.push_back(sub);
      todo.push_back(next);
    }
    out.push_back(std::move(c));
  }
  return out;
}

const std::vector<Command>& commands() {
  static const std::vector<Command> all = all_commands();
  return all;
}

bool is_help(const std::string& option) {
  return option == "-h" || option == "--help";
}

// The page writes each dash as roff's minus, \- (so that it renders as a real hyphen-minus).
std::string roff(const std::string& text) {
  std::string out;
  for (const char c : text) out += c == '-' ? std::string("\\-") : std::string(1, c);
  return out;
}

// The lines after `heading` up to the next .SH or .SS: one command's section of the page.
std::string section(const std::string& page, const std::string& heading) {
  const std::vector<std::string> lines = lines_of(page);
  const auto start = std::find(lines.begin(), lines.end(), heading);
  if (start == lines.end()) return {};
  std::string out;
  for (auto it = start + 1; it != lines.end(); ++it) {
    if (it->rfind(".SH ", 0) == 0 || it->rfind(".SS ", 0) == 0) break;
    out += *it + "\n";
  }
  return out;
}

std::string heading_of(const Command& c) {
  const std::string name = joined(c.path, " ");
  return c.path.size() == 1 ? ".SS " + name : ".SS \"" + name + "\"";
}

// Sources the completion in bash and calls _sluice with COMP_WORDS = words (the last one being
// completed); returns COMPREPLY.
std::vector<std::string> complete(const std::vector<std::string>& words) {
  std::vector<std::string> argv = {
      kBash, "-c",
      "source \"$1\" || exit 3; shift; COMP_WORDS=(\"$@\"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); "
      "_sluice; printf '%s\\n' \"${COMPREPLY[@]}\"",
      "bash", kCompletion.string()};
  argv.insert(argv.end(), words.begin(), words.end());
  const ProcessResult r = run_process(argv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> out;
  for (const std::string& line : lines_of(r.out)) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

bool contains(const std::vector<std::string>& words, const std::string& word) {
  return std::find(words.begin(), words.end(), word) != words.end();
}

TEST(DocsE2E, TheHelpListsTheCommandsAndOptionsTheseTestsCheck) {
  // Guards against a help format this parser no longer understands, which would make every
  // other test pass on nothing.
  ASSERT_GE(commands().size(), 15u);
  const auto report = std::find_if(commands().begin(), commands().end(), [](const Command& c) {
    return c.path == std::vector<std::string>{"report"};
  });
  ASSERT_NE(report, commands().end());
  const auto format = std::find_if(report->options.begin(), report->options.end(),
                                   [](const Option& o) { return o.name == "--format"; });
  ASSERT_NE(format, report->options.end());
  EXPECT_EQ(format->choices, (std::vector<std::string>{"text", "json", "html"}));
  EXPECT_TRUE(contains(commands().front().subcommands, "override"));
}

TEST(DocsE2E, TheManPageHasASectionForEveryCommandWithEachOfItsOptions) {
  const std::string page = slurp(kManPage);
  ASSERT_FALSE(page.empty()) << kManPage;
  const std::string global = section(page, ".SH GLOBAL OPTIONS");
  for (const Option& o : commands().front().options) {
    EXPECT_NE(global.find(roff(o.name)), std::string::npos)
        << "GLOBAL OPTIONS of " << kManPage << " lacks " << roff(o.name);
  }
  for (const Command& c : commands()) {
    if (c.path.empty()) continue;
    const std::string text = section(page, heading_of(c));
    EXPECT_FALSE(text.empty()) << kManPage << " has no section `" << heading_of(c) << "`";
    for (const Option& o : c.options) {
      if (is_help(o.name)) continue;  // documented once, under GLOBAL OPTIONS
      EXPECT_NE(text.find(roff(o.name)), std::string::npos)
          << "section `" << heading_of(c) << "` of " << kManPage << " lacks " << roff(o.name);
    }
  }
}

TEST(DocsE2E, TheManPageDocumentsTheFilesTheEnvironmentAndTheExitStatus) {
  const std::string page = slurp(kManPage);
  for (const char* heading :
       {".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH COMMANDS", ".SH GLOBAL OPTIONS",
        ".SH FILES", ".SH ENVIRONMENT", ".SH EXIT STATUS", ".SH EXAMPLES", ".SH \"SEE ALSO\""}) {
    EXPECT_TRUE(contains(lines_of(page), heading)) << kManPage << " lacks " << heading;
  }
  EXPECT_NE(section(page, ".SH ENVIRONMENT").find("SLUICE_CONFIG"), std::string::npos);
  const std::string files = section(page, ".SH FILES");
  for (const char* file : {"/etc/sluice/sluice.toml", "/etc/sluice/overrides.toml",
                           "/var/lib/sluice/state.db", "/etc/pmta/sluice/"}) {
    EXPECT_NE(files.find(file), std::string::npos) << "FILES lacks " << file;
  }
}

TEST(DocsE2E, TheCompletionScriptIsValidBash) {
  const ProcessResult r = run_process({kBash, "-n", kCompletion.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(DocsE2E, TheCompletionCompletesAPrefixOfACommand) {
  EXPECT_TRUE(contains(complete({"sluice", "rep"}), "report"));
}

TEST(DocsE2E, TheCompletionOffersEveryCommandAndEveryOptionWithItsChoices) {
  for (const Command& c : commands()) {
    std::vector<std::string> words = {"sluice"};
    words.insert(words.end(), c.path.begin(), c.path.end());
    const std::string where = joined(words, " ");

    words.push_back("");
    const std::vector<std::string> next = complete(words);
    for (const std::string& sub : c.subcommands) {
      EXPECT_TRUE(contains(next, sub)) << "`" << where << " <TAB>` does not offer " << sub;
    }

    words.back() = "-";
    const std::vector<std::string> options = complete(words);
    // Global options are accepted after a command too (CLI11 fallthrough), so they are offered.
    std::vector<Option> expected = c.options;
    if (!c.path.empty()) {
      expected.insert(expected.end(), commands().front().options.begin(),
                      commands().front().options.end());
    }
    for (const Option& o : expected) {
      EXPECT_TRUE(contains(options, o.name))
          << "`" << where << " -<TAB>` does not offer " << o.name;
      if (o.choices.empty()) continue;
      words.back() = o.name;
      words.push_back("");
      const std::vector<std::string> values = complete(words);
      for (const std::string& choice : o.choices) {
        EXPECT_TRUE(contains(values, choice))
            << "`" << where << " " << o.name << " <TAB>` does not offer " << choice;
      }
      words.pop_back();
      words.back() = "-";
    }
  }
}

TEST(DocsE2E, TheCompletionOffersFileNamesAfterConfigAndOut) {
  TempDir dir;
  write_file(dir.path() / "sluice.toml", "");
  const std::string prefix = (dir.path() / "slu").string();
  const std::string expected = (dir.path() / "sluice.toml").string();
  EXPECT_TRUE(contains(complete({"sluice", "--config", prefix}), expected));
  EXPECT_TRUE(contains(complete({"sluice", "report", "--out", prefix}), expected));
}

}  // namespace
}  // namespace sluice::e2e
