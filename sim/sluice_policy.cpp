#include "sim/sluice_policy.h"

#include <cstdio>
#include <filesystem>
#include <map>

#include "adapters/accounting_reader.h"
#include "adapters/fragment_files.h"
#include "adapters/override_file.h"
#include "adapters/system_clock.h"
#include "controller/fragment.h"
#include "controller/time_format.h"
#include "state/sqlite_store.h"

namespace sluice::sim {

namespace {

// The columns sluice reads, in PowerMTA's names: an operator may configure record-fields so.
constexpr std::string_view kHeader =
    "type,timeLogged,rcpt,dsnDiag,dsnMta,dlvSourceIp,vmta,queue,vmtaPool\n";
constexpr const char* kReloaded = "Configuration reloaded.\n";

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// What one VMTA's lines share, ready to paste.
struct LineParts {
  std::string recipient;  // "u@gmail.com"
  std::string tail;       // ",<address>,<vmta>,<domain>/<vmta>,<pool>\n"
  std::string delivered;  // ",<diag>,<mx>" for each kind
  std::string throttle;
  std::string noise;
  std::string uncurable;
};

// pmta as the simulation sees it: `test config` passes, `reload` makes the world run at what
// the fragments now say.
class SimulatedPmta : public CommandRunner {
 public:
  explicit SimulatedPmta(std::function<void()> reload) : reload_(std::move(reload)) {}
  CommandResult run(const std::vector<std::string>& argv, std::chrono::milliseconds) override {
    CommandResult r;
    r.exit_code = 0;
    if (argv.size() == 3 && argv[1] == "test" && argv[2] == "config") {
      r.out = "Configuration OK\n";
    } else if (argv.size() == 2 && argv[1] == "reload") {
      reload_();
      ++reloads_;
      r.out = kReloaded;
    } else {
      r.exit_code = 2;
      r.err = "pmta: unknown command";
    }
    return r;
  }
  std::uint64_t reloads() const { return reloads_; }

 private:
  std::function<void()> reload_;
  std::uint64_t reloads_ = 0;
};

}  // namespace

struct SluicePolicy::Parts {
  std::vector<VmtaRef> vmtas;
  std::vector<LineParts> lines;  // per VMTA
  std::vector<int> loaded;       // per VMTA: what PowerMTA runs at since the last reload
  std::FILE* file = nullptr;
  std::int64_t file_day = -1;
  std::string buffer;
  std::unique_ptr<adapters::AccountingFiles> source;
  std::unique_ptr<state::SqliteStore> store;
  std::unique_ptr<adapters::FragmentFiles> fragments;
  std::unique_ptr<adapters::OverrideFile> overrides;
  std::unique_ptr<SimulatedPmta> pmta;
  adapters::FixedClock clock{0};
  std::unique_ptr<Controller> controller;

  ~Parts() {
    if (file != nullptr) std::fclose(file);
  }
};

SluicePolicy::SluicePolicy(const World& world, std::string dir, PolicyParams policy)
    : dir_(std::move(dir)), parts_(std::make_unique<Parts>()) {
  namespace fs = std::filesystem;
  fs::create_directories(fs::path(dir_) / "acct");
  fs::create_directories(fs::path(dir_) / "fragments");
  Parts& p = *parts_;
  p.loaded = start_settings(world);

  const config::Scenario& scenario = world.scenario();
  std::vector<ManagedPair> pairs;
  auto pool_map = std::make_shared<PoolMap>();
  for (const config::SimPool& pool : scenario.pools) {
    pairs.push_back(
        ManagedPair{pool.name, pool.isp, parse_tier(pool.tier).value_or(Tier::medium), policy});
  }
  p.vmtas = world.vmtas();
  const std::vector<VmtaRef>& vmtas = p.vmtas;
  p.fragments = std::make_unique<adapters::FragmentFiles>(dir_ + "/fragments");
  for (std::size_t i = 0; i < vmtas.size(); ++i) {
    const VmtaRef& v = vmtas[i];
    (*pool_map)[v.vmta] = v.pool_name;
    const IspTexts texts = texts_for(v.isp, v.address);
    LineParts& l = p.lines.emplace_back();
    l.recipient = "u@" + v.domain;
    l.tail =
        "," + v.address + "," + v.vmta + "," + v.domain + "/" + v.vmta + "," + v.pool_name + "\n";
    const std::string mx = "," + csv_field(texts.mx);
    l.delivered = "," + csv_field(texts.delivered) + mx;
    l.throttle = "," + csv_field(texts.throttle) + mx;
    l.noise = "," + csv_field(texts.noise) + mx;
    l.uncurable = "," + csv_field(texts.uncurable) + mx;
  }
  // An operator's existing value, where the scenario gives one, is what sluice adopts.
  for (const config::SimPool& pool : scenario.pools) {
    if (pool.start_setting > 0) {
      (void)p.fragments->write(pool.name, pool.isp,
                               "max-smtp-out " + std::to_string(pool.start_setting) + "\n");
    }
  }

  p.source = std::make_unique<adapters::AccountingFiles>(
      std::vector<std::string>{dir_ + "/acct/acct-*.csv"});
  Expected<std::unique_ptr<state::SqliteStore>> store =
      state::SqliteStore::open(dir_ + "/state.db");
  if (!store) {
    error_ = store.error().message;
    return;
  }
  p.store = std::move(*store);
  p.overrides =
      std::make_unique<adapters::OverrideFile>(dir_ + "/overrides.toml", adapters::KnownPools{});
  p.pmta = std::make_unique<SimulatedPmta>([this] {
    Parts& parts = *parts_;
    const std::vector<VmtaRef>& all = parts.vmtas;
    for (std::size_t i = 0; i < all.size(); ++i) {
      const VmtaRef& v = all[i];
      for (const FragmentKey& key :
           {FragmentKey{v.pool_name, v.isp, v.vmta}, FragmentKey{v.pool_name, v.isp, {}}}) {
        Expected<std::optional<std::string>> text = parts.fragments->read(key);
        if (!text || !*text) continue;
        if (std::optional<int> value = fragment_max_smtp_out(**text)) {
          parts.loaded[i] = *value;
          break;
        }
      }
    }
  });
  LoopSettings settings;
  settings.pmta_command = "/usr/sbin/pmta";
  settings.bucket_seconds = 300;
  p.controller =
      std::make_unique<Controller>(*p.source, *p.store, *p.fragments, *p.overrides, *p.pmta,
                                   p.clock, IspCatalog::builtin(), pool_map, pairs, settings);
}

SluicePolicy::~SluicePolicy() = default;

std::vector<int> SluicePolicy::settings(const World&) {
  return parts_->loaded;
}

std::uint64_t SluicePolicy::reloads() const {
  return parts_->pmta ? parts_->pmta->reloads() : 0;
}

void SluicePolicy::write_records(const World& world, const StepResult& step) {
  Parts& p = *parts_;
  const std::int64_t day = step.at - step.at % 86400;
  if (day != p.file_day) {
    if (p.file != nullptr) std::fclose(p.file);
    // acct-YYYY-MM-DD.csv, a new file at midnight as PowerMTA rotates.
    const std::string path = dir_ + "/acct/acct-" + format_time(day).substr(0, 10) + ".csv";
    p.file = std::fopen(path.c_str(), "ab");
    p.file_day = day;
    if (p.file == nullptr) {
      if (error_.empty()) error_ = path + ": cannot be written";
      return;
    }
    std::fwrite(kHeader.data(), 1, kHeader.size(), p.file);
  }
  if (p.file == nullptr) return;
  const std::int64_t width = world.scenario().step_seconds;
  std::string& out = p.buffer;
  out.clear();
  const auto emit = [&](const char* type, std::uint64_t n, const std::string& rcpt,
                        const std::string& diag, const std::string& tail) {
    for (std::uint64_t k = 0; k < n; ++k) {
      const std::int64_t t =
          step.at + static_cast<std::int64_t>(k) * width / static_cast<std::int64_t>(n);
      out += type;
      out += ',';
      out += std::to_string(t);
      out += ',';
      out += rcpt;
      out += diag;
      out += tail;
    }
  };
  static const std::string kNoRecipient;
  for (std::size_t i = 0; i < step.vmtas.size(); ++i) {
    const VmtaStep& s = step.vmtas[i];
    const LineParts& l = p.lines[i];
    emit("d", s.delivered, l.recipient, l.delivered, l.tail);
    emit("tq", static_cast<std::uint64_t>(s.refused), kNoRecipient, l.throttle, l.tail);
    emit("t", s.throttled, l.recipient, l.throttle, l.tail);
    emit("t", s.noise, l.recipient, l.noise, l.tail);
    emit("t", s.uncurable, l.recipient, l.uncurable, l.tail);
  }
  std::fwrite(out.data(), 1, out.size(), p.file);
  std::fflush(p.file);
}

void SluicePolicy::observe(const World& world, const StepResult& step) {
  if (!parts_->controller) return;
  write_records(world, step);
  parts_->clock.set(world.now());
  Expected<CycleReport> report = parts_->controller->run_cycle(CycleMode::apply);
  if (!report) {
    if (error_.empty()) error_ = report.error().message;
    return;
  }
  if (report->pmta_failed && error_.empty()) error_ = report->pmta_outcome;
  decisions_.insert(decisions_.end(), report->decisions.begin(), report->decisions.end());
}

}  // namespace sluice::sim
