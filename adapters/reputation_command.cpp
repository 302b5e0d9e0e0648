#include "adapters/reputation_command.h"

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

namespace sluice::adapters {

namespace {

using Json = nlohmann::json;

// A value of the answer in a message, on one line whatever it holds.
std::string quoted(const std::string& text) {
  const std::string json = Json(text).dump(-1, ' ', false, Json::error_handler_t::replace);
  return "'" + json.substr(1, json.size() - 2) + "'";
}

std::string first_line(std::string_view text) {
  const std::size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) return "";
  text.remove_prefix(start);
  text = text.substr(0, text.find('\n'));
  while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
  return std::string(text);
}

bool blank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

ReputationCommand::ReputationCommand(std::vector<std::string> argv, CommandRunner& runner,
                                     std::chrono::milliseconds timeout,
                                     std::set<std::pair<std::string, std::string>> managed)
    : argv_(std::move(argv)), runner_(runner), timeout_(timeout), managed_(std::move(managed)) {}

Expected<ReputationRead> ReputationCommand::read() {
  const std::string name =
      "reputation command " + (argv_.empty() ? std::string("(none)") : argv_.front());
  const CommandResult r = runner_.run(argv_, timeout_);
  if (!r.error.empty()) return Error{name + " could not run: " + r.error};
  if (r.timed_out) {
    return Error{
        name + " hung and was killed after " +
        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout_).count()) + " s"};
  }
  if (r.exit_code != 0) {
    const std::string said = first_line(r.err.empty() ? r.out : r.err);
    return Error{name + " failed (exit " + std::to_string(r.exit_code) + ")" +
                 (said.empty() ? "" : ": " + said)};
  }

  ReputationRead out;
  std::map<std::pair<std::string, std::string>, std::size_t> first_seen;
  std::set<std::string> managed_pools;
  for (const auto& [pool, isp] : managed_) managed_pools.insert(pool);
  std::string_view rest = r.out;
  for (std::size_t number = 1; !rest.empty(); ++number) {
    const std::size_t end = rest.find('\n');
    const std::string_view line = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    if (blank(line)) continue;
    const std::string where = name + ": line " + std::to_string(number) + ": ";
    const Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) return Error{where + "not a JSON object"};
    std::string fields[3];
    const char* const keys[3] = {"pool", "isp", "tier"};
    for (int i = 0; i < 3; ++i) {
      const auto found = j.find(keys[i]);
      if (found == j.end()) return Error{where + "no '" + keys[i] + "'"};
      if (!found->is_string()) {
        return Error{where + "'" + keys[i] + "' must be a string, not " + found->dump()};
      }
      fields[i] = found->get<std::string>();
    }
    const auto& [pool, isp, tier_name] = fields;
    const std::optional<Tier> tier = parse_tier(tier_name);
    if (!tier) {
      return Error{where + "tier " + quoted(tier_name) + " is not high, medium, low or warming"};
    }
    const auto [seen, fresh] = first_seen.emplace(std::pair(pool, isp), number);
    if (!fresh) {
      return Error{where + "a second tier for pool " + quoted(pool) + " at ISP " + quoted(isp) +
                   " (the first is on line " + std::to_string(seen->second) + ")"};
    }
    if (!managed_.contains({pool, isp})) {
      out.warnings.push_back(where + "pool " + quoted(pool) + " is not managed" +
                             (managed_pools.contains(pool) ? " at ISP " + quoted(isp) : "") +
                             ": ignored");
      continue;
    }
    out.tiers.push_back(ReputationTier{pool, isp, *tier});
  }
  return out;
}

}  // namespace sluice::adapters
