#include "controller/cycle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapters/system_clock.h"
#include "controller/fragment.h"
#include "tests/support/memory_fragment_store.h"
#include "tests/support/memory_override_source.h"
#include "tests/support/memory_state_store.h"
#include "tests/support/mock_command_runner.h"

namespace sluice {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using trompeloeil::_;
using Argv = std::vector<std::string>;

constexpr UnixSeconds kT0 = 1795773600;  // 2026-11-27T10:00:00Z, a multiple of 300
constexpr UnixSeconds kMinute = 60;
constexpr UnixSeconds kDay = 86400;
constexpr const char* kPmta = "/usr/sbin/pmta";
constexpr const char* kPool = "high-rep-pool";
constexpr std::chrono::milliseconds kTimeout{30000};

const Argv kTestConfig = {kPmta, "test", "config"};
const Argv kReload = {kPmta, "reload"};

constexpr const char* kGmailThrottle =
    "smtp;421-4.7.0 Try again later, closing connection. (EHLO) a1si2 - gsmtp";
constexpr const char* kYahooThrottle =
    "smtp;421 4.7.0 [TSS04] Messages from 203.0.113.1 temporarily deferred due to unexpected "
    "volume or user complaints";
constexpr const char* kOutlookThrottle =
    "smtp;421 RP-002 (BAY004-MC1F1) Unfortunately, some messages from 203.0.113.1 weren't sent";

// An accounting "file" that grows as the test appends lines; the checkpoint is the number of
// lines read, so a cycle that commits nothing reads the same lines again.
class ScriptedSource : public AccountingSource {
 public:
  struct Line {
    RecordType type = RecordType::delivered;
    UnixSeconds at = 0;
    std::string rcpt;
    std::string diag;
    std::string source_ip;
    std::string vmta;  // empty: "ip-1"
  };

  void append(Line line) { lines_.push_back(std::move(line)); }

  Expected<ReadOutcome> read_new(const std::vector<FileCheckpoint>& known,
                                 PartitionedSink& sink) override {
    known_.push_back(known);
    std::uint64_t from = 0;
    for (const FileCheckpoint& c : known) {
      if (c.identity == kIdentity) from = c.offset;
    }
    ReadOutcome out;
    for (std::uint64_t i = from; i < lines_.size(); ++i) {
      const Line& l = lines_[i];
      AccountingRecord r;
      r.type = l.type;
      r.time_logged = l.at;
      r.rcpt = l.rcpt;
      r.dsn_diag = l.diag;
      r.vmta = l.vmta.empty() ? std::string_view("ip-1") : std::string_view(l.vmta);
      r.vmta_pool = kPool;
      r.source_ip = l.source_ip;
      sink.on_record(r);
      ++out.stats.records;
    }
    FileCheckpoint c;
    c.path = "/var/log/pmta/acct.csv";
    c.identity = kIdentity;
    c.offset = lines_.size();
    out.checkpoints.push_back(c);
    return out;
  }

  // The checkpoints each read started from.
  const std::vector<std::vector<FileCheckpoint>>& known() const { return known_; }

 private:
  static constexpr FileIdentity kIdentity{2049, 77, 0x5EED};
  std::vector<Line> lines_;
  std::vector<std::vector<FileCheckpoint>> known_;
};

CommandResult result(int exit_code, std::string out = "", std::string err = "") {
  CommandResult r;
  r.exit_code = exit_code;
  r.out = std::move(out);
  r.err = std::move(err);
  return r;
}
CommandResult config_ok() {
  return result(0, "Configuration OK\n");
}
CommandResult reloaded() {
  return result(0, "Configuration reloaded.\n");
}
CommandResult hung() {
  CommandResult r;
  r.timed_out = true;
  return r;
}

std::uint64_t stored_attempts(const MemoryStateStore& store) {
  std::uint64_t n = 0;
  for (const auto& [key, counts] : store.buckets()) n += counts.attempts();
  return n;
}

std::optional<int> value_in(const std::optional<std::string>& fragment) {
  return fragment ? fragment_max_smtp_out(*fragment) : std::nullopt;
}

class CycleTest : public ::testing::Test {
 protected:
  // The pairs under management; gmail at tier high unless a test says otherwise.
  void manage(std::string isp, Tier tier) {
    pairs_.push_back({kPool, std::move(isp), tier, default_policy()});
  }

  Expected<CycleReport> cycle(CycleMode mode = CycleMode::apply) {
    if (pairs_.empty()) manage("gmail", Tier::high);
    Controller controller(source_, store_, fragments_, overrides_, runner_, clock_,
                          IspCatalog::builtin(), pool_map_, pairs_, LoopSettings{});
    return controller.run_cycle(mode);
  }

  // A pair sluice has managed for a while, at `value`, with its fragment in place.
  void existing(const std::string& isp, int value) {
    PairState s;
    s.pool = kPool;
    s.isp = isp;
    s.tier = Tier::high;
    s.max_smtp_out = value;
    s.last_safe = value;
    s.last_change_at = kT0 - 30 * kDay;
    store_.put_pair(s);
    fragments_.put(kPool, isp, render_fragment(s, default_policy(), s.last_change_at, "raise"));
  }

  // `delivered` deliveries and `deferred` deferrals with `diag`, over the last 20 minutes.
  void traffic(const std::string& domain, int delivered, int deferred, const std::string& diag) {
    const int total = delivered + deferred;
    for (int i = 0; i < total; ++i) {
      ScriptedSource::Line l;
      l.at = kT0 - 20 * kMinute + (20 * kMinute * i) / total;
      l.rcpt = "user" + std::to_string(i) + "@" + domain;
      l.source_ip = i % 2 == 0 ? "203.0.113.1" : "203.0.113.2";
      // Exactly `deferred` deferrals, spread evenly.
      if ((i + 1) * deferred / total != i * deferred / total) {
        l.type = RecordType::deferred;
        l.diag = diag;
      }
      source_.append(std::move(l));
    }
  }

  // Answers pmta calls from `answers`, in order, and records each argument vector.
  void script(std::vector<CommandResult> answers) {
    answers_.assign(answers.begin(), answers.end());
    expectation_ = NAMED_ALLOW_CALL(runner_, run(_, _))
                       .LR_SIDE_EFFECT(calls_.push_back(_1))
                       .LR_SIDE_EFFECT(EXPECT_EQ(_2, kTimeout))
                       .LR_RETURN(next_answer());
  }

  CommandResult next_answer() {
    if (answers_.empty()) {
      ADD_FAILURE() << "an unscripted pmta call";
      return result(1, "", "unscripted");
    }
    CommandResult r = answers_.front();
    answers_.pop_front();
    return r;
  }

  ScriptedSource source_;
  MemoryStateStore store_;
  MemoryFragmentStore fragments_;
  MemoryOverrideSource overrides_;
  MockCommandRunner runner_;
  adapters::FixedClock clock_{kT0};
  std::vector<ManagedPair> pairs_;
  std::shared_ptr<PoolMap> pool_map_ = std::make_shared<PoolMap>();
  std::deque<CommandResult> answers_;
  std::vector<Argv> calls_;
  std::unique_ptr<trompeloeil::expectation> expectation_;
};

// ---------------------------------------------------------------------------------------------
// Applying changes.

TEST_F(CycleTest, RecordsOlderThanTheRetentionAreNotKeptAndSaidSo) {
  existing("gmail", 8);
  for (int i = 0; i < 3; ++i) {
    ScriptedSource::Line old;
    old.at = kT0 - 40 * kDay + i;
    old.rcpt = "old@gmail.com";
    source_.append(old);
  }
  traffic("gmail.com", 10, 0, "");

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(stored_attempts(store_), 10u);
  EXPECT_THAT(report->read.warnings,
              ElementsAre("3 records logged before 2026-10-23T10:00:00Z (older than the "
                          "retention of the signals) were not kept"));
}

TEST_F(CycleTest, A421BurstCutsOnceThenTestsConfigAndReloads) {
  existing("gmail", 8);
  traffic("gmail.com", 200, 100, kGmailThrottle);  // 33% throttle deferrals: the larger cut

  {
    trompeloeil::sequence seq;
    REQUIRE_CALL(runner_, run(kTestConfig, kTimeout))
        .IN_SEQUENCE(seq)
        // The fragment is in place before PowerMTA checks it.
        .LR_SIDE_EFFECT(EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 4))
        .RETURN(config_ok());
    REQUIRE_CALL(runner_, run(kReload, kTimeout)).IN_SEQUENCE(seq).RETURN(reloaded());

    Expected<CycleReport> report = cycle();
    ASSERT_TRUE(report) << report.error().message;
    ASSERT_THAT(report->decisions, SizeIs(1));
    EXPECT_EQ(report->decisions[0].rule, Rule::severe_cut);
    EXPECT_EQ(report->decisions[0].old_value, 8);
    EXPECT_EQ(report->decisions[0].new_value, 4);
    EXPECT_EQ(report->decisions[0].trigger, DeferralClass::connection);
    ASSERT_THAT(report->changes, SizeIs(1));
    EXPECT_EQ(report->changes[0].path, "/etc/pmta/sluice/high-rep-pool/gmail.conf");
    EXPECT_TRUE(report->reloaded);
    EXPECT_FALSE(report->pmta_failed);
    EXPECT_EQ(report->read.records, 300u);
  }

  const std::optional<std::string> fragment = fragments_.get(kPool, "gmail");
  ASSERT_TRUE(fragment);
  EXPECT_THAT(*fragment, HasSubstr("\nmax-smtp-out 4\n"));
  EXPECT_THAT(*fragment, HasSubstr("\nbackoff-max-smtp-out 2\n"));
  EXPECT_THAT(*fragment, HasSubstr("\nmax-connect-rate 1/s\n"));
  EXPECT_THAT(*fragment, HasSubstr("severe_cut"));

  const std::optional<PairState> state = store_.pair(kPool, "gmail");
  ASSERT_TRUE(state);
  EXPECT_EQ(state->max_smtp_out, 4);
  EXPECT_EQ(state->phase, Phase::verifying);
  EXPECT_EQ(state->last_change_at, kT0);
  EXPECT_EQ(state->last_safe, 8);
  EXPECT_EQ(state->last_failure_at, 0);
  ASSERT_THAT(store_.decisions(), SizeIs(1));
  EXPECT_TRUE(store_.decisions()[0].applied);
  EXPECT_EQ(store_.decisions()[0].pmta_outcome, "reloaded");
  EXPECT_EQ(stored_attempts(store_), 300u);

  // The burst's tail in the next cycles is the cut's own: no second cut, no pmta call.
  FORBID_CALL(runner_, run(_, _));
  for (UnixSeconds t : {kT0 + kMinute, kT0 + 10 * kMinute}) {
    clock_.set(t);
    traffic("gmail.com", 20, 20, kGmailThrottle);
    Expected<CycleReport> later = cycle();
    ASSERT_TRUE(later) << later.error().message;
    EXPECT_THAT(later->decisions, IsEmpty());
  }
  EXPECT_EQ(store_.pair(kPool, "gmail")->max_smtp_out, 4);
}

TEST_F(CycleTest, AtMostOneReloadWithSeveralPairsChanging) {
  manage("gmail", Tier::high);
  manage("yahoo", Tier::high);
  manage("outlook", Tier::high);
  existing("gmail", 8);
  existing("yahoo", 6);
  existing("outlook", 6);
  traffic("gmail.com", 200, 100, kGmailThrottle);
  traffic("yahoo.com", 200, 100, kYahooThrottle);
  traffic("outlook.com", 200, 100, kOutlookThrottle);

  trompeloeil::sequence seq;
  REQUIRE_CALL(runner_, run(kTestConfig, kTimeout)).IN_SEQUENCE(seq).RETURN(config_ok());
  REQUIRE_CALL(runner_, run(kReload, kTimeout)).IN_SEQUENCE(seq).RETURN(reloaded());
  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->changes, SizeIs(3));
  EXPECT_TRUE(report->reloaded);
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 4);
  EXPECT_EQ(value_in(fragments_.get(kPool, "yahoo")), 3);
  EXPECT_EQ(value_in(fragments_.get(kPool, "outlook")), 3);
  EXPECT_EQ(store_.pair(kPool, "yahoo")->verify_class, DeferralClass::reputation);
  EXPECT_EQ(store_.pair(kPool, "outlook")->verify_class, DeferralClass::rate);
  ASSERT_THAT(store_.decisions(), SizeIs(3));
  for (const DecisionRecord& r : store_.decisions()) EXPECT_TRUE(r.applied);
}

TEST_F(CycleTest, AFirstCycleWithoutFragmentsWritesTheInitialOnes) {
  manage("gmail", Tier::high);
  manage("outlook", Tier::medium);

  trompeloeil::sequence seq;
  REQUIRE_CALL(runner_, run(kTestConfig, kTimeout)).IN_SEQUENCE(seq).RETURN(config_ok());
  REQUIRE_CALL(runner_, run(kReload, kTimeout)).IN_SEQUENCE(seq).RETURN(reloaded());
  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;

  ASSERT_THAT(report->decisions, SizeIs(2));
  for (const Decision& d : report->decisions) EXPECT_EQ(d.rule, Rule::initial);
  ASSERT_THAT(report->changes, SizeIs(2));
  EXPECT_FALSE(report->changes[0].before);
  // The low ends of the domain brief's ranges: gmail high 6-10, outlook medium 2-4.
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 6);
  EXPECT_EQ(value_in(fragments_.get(kPool, "outlook")), 2);
  EXPECT_EQ(store_.pair(kPool, "gmail")->max_smtp_out, 6);
  EXPECT_EQ(store_.pair(kPool, "outlook")->max_smtp_out, 2);
  ASSERT_THAT(store_.decisions(), SizeIs(2));
  EXPECT_TRUE(store_.decisions()[0].applied);
  EXPECT_EQ(store_.decisions()[0].decision.rule, Rule::initial);
}

TEST_F(CycleTest, AnOperatorFragmentIsAdoptedWithoutARewrite) {
  const std::string operator_fragment = "# ops\nmax-smtp-out 9\nmax-msg-rate 500/h\n";
  fragments_.put(kPool, "gmail", operator_fragment);
  FORBID_CALL(runner_, run(_, _));

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->decisions, IsEmpty());
  EXPECT_EQ(fragments_.get(kPool, "gmail"), operator_fragment);
  EXPECT_THAT(fragments_.log(), IsEmpty());
  ASSERT_TRUE(store_.pair(kPool, "gmail"));
  EXPECT_EQ(store_.pair(kPool, "gmail")->max_smtp_out, 9);
}

TEST_F(CycleTest, AnOperatorValueAboveTheCapIsLoweredAtOnce) {
  fragments_.put(kPool, "gmail", "max-smtp-out 20\n");  // gmail high: cap 10

  trompeloeil::sequence seq;
  REQUIRE_CALL(runner_, run(kTestConfig, kTimeout)).IN_SEQUENCE(seq).RETURN(config_ok());
  REQUIRE_CALL(runner_, run(kReload, kTimeout)).IN_SEQUENCE(seq).RETURN(reloaded());
  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_THAT(report->decisions, SizeIs(1));
  EXPECT_EQ(report->decisions[0].rule, Rule::tier_cap);
  EXPECT_EQ(report->decisions[0].old_value, 20);
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 10);
  EXPECT_EQ(store_.pair(kPool, "gmail")->max_smtp_out, 10);
}

TEST_F(CycleTest, AFirstCycleWithRecipientTroubleStillWritesTheInitialFragment) {
  // 200 deliveries and 30 over-quota deferrals: 13% of recipient class, so the pair goes into
  // phase investigate in the very cycle that should create its fragment.
  traffic("gmail.com", 200, 30, "smtp;452 4.2.2 The email account is over quota.");

  trompeloeil::sequence seq;
  REQUIRE_CALL(runner_, run(kTestConfig, kTimeout)).IN_SEQUENCE(seq).RETURN(config_ok());
  REQUIRE_CALL(runner_, run(kReload, kTimeout)).IN_SEQUENCE(seq).RETURN(reloaded());
  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  // Both are on record: why the fragment was written, and why the pair is flagged.
  ASSERT_THAT(report->decisions, SizeIs(2));
  EXPECT_EQ(report->decisions[0].rule, Rule::initial);
  EXPECT_EQ(report->decisions[1].rule, Rule::investigate);
  EXPECT_EQ(report->decisions[1].phase, Phase::investigate);
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 6);
  EXPECT_EQ(store_.pair(kPool, "gmail")->phase, Phase::investigate);
}

TEST_F(CycleTest, RecordsAreCountedOnceAcrossCycles) {
  existing("gmail", 6);
  traffic("gmail.com", 50, 0, "");
  FORBID_CALL(runner_, run(_, _));

  ASSERT_TRUE(cycle());
  EXPECT_EQ(stored_attempts(store_), 50u);
  ASSERT_THAT(store_.checkpoints(), SizeIs(1));
  EXPECT_EQ(store_.checkpoints()[0].offset, 50u);

  clock_.set(kT0 + kMinute);
  ASSERT_TRUE(cycle());
  EXPECT_EQ(stored_attempts(store_), 50u);
  ASSERT_THAT(source_.known(), SizeIs(2));
  EXPECT_THAT(source_.known()[0], IsEmpty());
  ASSERT_THAT(source_.known()[1], SizeIs(1));
  EXPECT_EQ(source_.known()[1][0].offset, 50u);

  traffic("gmail.com", 25, 0, "");
  clock_.set(kT0 + 2 * kMinute);
  ASSERT_TRUE(cycle());
  EXPECT_EQ(stored_attempts(store_), 75u);
}

// ---------------------------------------------------------------------------------------------
// pmta outcomes.

TEST_F(CycleTest, ATestConfigFailureRestoresTheFragmentAndDoesNotReload) {
  existing("gmail", 8);
  const PairState before_state = *store_.pair(kPool, "gmail");
  const std::optional<std::string> before = fragments_.get(kPool, "gmail");
  traffic("gmail.com", 200, 100, kGmailThrottle);
  script({result(1, "", "/etc/pmta/sluice/high-rep-pool/gmail.conf:3: unknown directive\n"),
          reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  // Nothing was reloaded, so there is nothing to reload back.
  EXPECT_THAT(calls_, ElementsAre(kTestConfig));
  EXPECT_TRUE(report->pmta_failed);
  EXPECT_FALSE(report->reloaded);
  EXPECT_THAT(report->pmta_outcome, HasSubstr("pmta test config failed (exit 1)"));
  EXPECT_THAT(report->pmta_outcome, HasSubstr("unknown directive"));
  EXPECT_EQ(fragments_.get(kPool, "gmail"), before);

  PairState expected = before_state;
  expected.last_failure_at = kT0;
  expected.last_failure = report->pmta_outcome;
  EXPECT_EQ(store_.pair(kPool, "gmail"), expected);
  ASSERT_THAT(store_.decisions(), SizeIs(1));
  EXPECT_FALSE(store_.decisions()[0].applied);
  EXPECT_EQ(store_.decisions()[0].decision.new_value, 4);
  EXPECT_THAT(store_.decisions()[0].pmta_outcome, HasSubstr("test config"));
}

struct ReloadFailure {
  const char* name;
  CommandResult reload;
  const char* says;
};

class CycleReloadFailure : public CycleTest, public ::testing::WithParamInterface<ReloadFailure> {};

TEST_P(CycleReloadFailure, RestoresAndReloadsAgain) {
  existing("gmail", 8);
  const PairState before_state = *store_.pair(kPool, "gmail");
  const std::optional<std::string> before = fragments_.get(kPool, "gmail");
  traffic("gmail.com", 200, 100, kGmailThrottle);
  script({config_ok(), GetParam().reload, reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(calls_, ElementsAre(kTestConfig, kReload, kReload));
  EXPECT_TRUE(report->pmta_failed);
  EXPECT_FALSE(report->reloaded);
  EXPECT_THAT(report->pmta_outcome, HasSubstr(GetParam().says));
  EXPECT_EQ(fragments_.get(kPool, "gmail"), before);

  const std::optional<PairState> state = store_.pair(kPool, "gmail");
  ASSERT_TRUE(state);
  EXPECT_EQ(state->max_smtp_out, before_state.max_smtp_out);
  EXPECT_EQ(state->phase, before_state.phase);
  EXPECT_EQ(state->last_change_at, before_state.last_change_at);
  EXPECT_EQ(state->last_failure_at, kT0);
  EXPECT_EQ(state->last_failure, report->pmta_outcome);
  ASSERT_THAT(store_.decisions(), SizeIs(1));
  EXPECT_FALSE(store_.decisions()[0].applied);
}

INSTANTIATE_TEST_SUITE_P(
    Cycle, CycleReloadFailure,
    ::testing::Values(
        ReloadFailure{"NonZeroExit", result(1, "", "reload refused\n"), "pmta reload failed"},
        ReloadFailure{"ExitZeroWithoutConfirmation", result(0, "Something went wrong\n"),
                      "pmta reload said: Something went wrong"},
        // A hang is killed after the timeout; whether it took effect is unknown.
        ReloadFailure{"Hang", hung(), "pmta reload hung"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(CycleTest, AHangingTestConfigIsAFailure) {
  existing("gmail", 8);
  const std::optional<std::string> before = fragments_.get(kPool, "gmail");
  traffic("gmail.com", 200, 100, kGmailThrottle);
  script({hung(), reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_FALSE(calls_.empty());
  EXPECT_EQ(calls_[0], kTestConfig);
  EXPECT_TRUE(report->pmta_failed);
  EXPECT_THAT(report->pmta_outcome, HasSubstr("hung"));
  EXPECT_EQ(fragments_.get(kPool, "gmail"), before);
  EXPECT_EQ(store_.pair(kPool, "gmail")->max_smtp_out, 8);
  EXPECT_EQ(store_.pair(kPool, "gmail")->last_failure_at, kT0);
}

// ---------------------------------------------------------------------------------------------
// A cycle that died between its fragments and its commit.

TEST_F(CycleTest, TheFragmentsAboutToBeWrittenAreRecordedFirstAndTheCommitEndsTheRecord) {
  existing("gmail", 8);
  const std::optional<std::string> before = fragments_.get(kPool, "gmail");
  traffic("gmail.com", 200, 100, kGmailThrottle);
  std::optional<PendingApply> seen_by_pmta;
  REQUIRE_CALL(runner_, run(kTestConfig, kTimeout))
      .LR_SIDE_EFFECT(seen_by_pmta = store_.pending())
      .RETURN(config_ok());
  REQUIRE_CALL(runner_, run(kReload, kTimeout)).RETURN(reloaded());

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_TRUE(seen_by_pmta);
  EXPECT_EQ(seen_by_pmta->at, kT0);
  ASSERT_THAT(seen_by_pmta->fragments, SizeIs(1));
  EXPECT_EQ(seen_by_pmta->fragments[0].key.isp, "gmail");
  EXPECT_EQ(seen_by_pmta->fragments[0].before, before);
  EXPECT_EQ(seen_by_pmta->fragments[0].after, fragments_.get(kPool, "gmail"));
  EXPECT_EQ(store_.pending(), std::nullopt);
  EXPECT_EQ(report->interrupted, "");
}

TEST_F(CycleTest, WhenTheRecordCannotBeWrittenNoFragmentIsTouched) {
  existing("gmail", 8);
  const std::optional<std::string> before = fragments_.get(kPool, "gmail");
  traffic("gmail.com", 200, 100, kGmailThrottle);
  FORBID_CALL(runner_, run(_, _));
  store_.fail_writes("disk I/O error");

  Expected<CycleReport> report = cycle();
  ASSERT_FALSE(report);
  EXPECT_THAT(report.error().message, HasSubstr("disk I/O error"));
  EXPECT_EQ(fragments_.get(kPool, "gmail"), before);
  EXPECT_THAT(fragments_.log(), IsEmpty());
}

TEST_F(CycleTest, AnInterruptedCycleIsPutBackAndReloadedBeforeTheNextDecides) {
  existing("gmail", 8);
  const std::string applied = *fragments_.get(kPool, "gmail");
  // The cycle of ten minutes ago wrote a cut and a VMTA's first fragment, then died.
  const FragmentKey vmta{kPool, "gmail", "ip-1"};
  ASSERT_TRUE(store_
                  .begin_apply({kT0 - 10 * kMinute,
                                {{FragmentKey{kPool, "gmail", ""}, applied, "max-smtp-out 4\n"},
                                 {vmta, std::nullopt, "# inherits\n"}}})
                  .ok());
  fragments_.put(kPool, "gmail", "max-smtp-out 4\n");
  fragments_.put(vmta, "# inherits\n");
  traffic("gmail.com", 300, 0, "");
  script({config_ok(), reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(fragments_.get(kPool, "gmail"), applied);
  EXPECT_EQ(fragments_.get(vmta), std::nullopt);
  EXPECT_THAT(calls_, ElementsAre(kTestConfig, kReload));
  EXPECT_EQ(store_.pending(), std::nullopt);
  EXPECT_EQ(report->interrupted,
            "put back 2 fragment(s) of the cycle of 2026-11-27T09:50:00Z, which stopped before "
            "its commit, and reloaded pmta");
  // Then the cycle goes on as usual: its records are counted, the pair keeps its value.
  EXPECT_EQ(report->read.records, 300u);
  EXPECT_EQ(store_.pair(kPool, "gmail")->max_smtp_out, 8);
}

TEST_F(CycleTest, AnInterruptedCycleWhosePutBackPmtaRefusesStaysRecordedForTheNextCycle) {
  existing("gmail", 8);
  const std::string applied = *fragments_.get(kPool, "gmail");
  const PendingApply pending{kT0 - 10 * kMinute,
                             {{FragmentKey{kPool, "gmail", ""}, applied, "max-smtp-out 4\n"}}};
  ASSERT_TRUE(store_.begin_apply(pending).ok());
  fragments_.put(kPool, "gmail", "max-smtp-out 4\n");
  traffic("gmail.com", 300, 0, "");
  script({config_ok(), result(1, "", "error: reload failed")});

  Expected<CycleReport> report = cycle();
  ASSERT_FALSE(report);
  EXPECT_THAT(report.error().message,
              HasSubstr("put back 1 fragment(s) of the cycle of 2026-11-27T09:50:00Z"));
  EXPECT_THAT(report.error().message, HasSubstr("the next cycle tries again"));
  EXPECT_EQ(fragments_.get(kPool, "gmail"), applied);
  EXPECT_EQ(store_.pending(), pending);
  EXPECT_EQ(store_.cycles_committed(), 0);
}

TEST_F(CycleTest, ADryRunLeavesAnInterruptedCycleToTheNextCycleThatApplies) {
  existing("gmail", 8);
  const PendingApply pending{kT0 - 10 * kMinute,
                             {{FragmentKey{kPool, "gmail", ""}, "old", "max-smtp-out 4\n"}}};
  ASSERT_TRUE(store_.begin_apply(pending).ok());
  fragments_.put(kPool, "gmail", "max-smtp-out 4\n");
  FORBID_CALL(runner_, run(_, _));

  Expected<CycleReport> report = cycle(CycleMode::dry_run);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->interrupted, HasSubstr("the next cycle that applies changes puts them back"));
  EXPECT_EQ(fragments_.get(kPool, "gmail"), "max-smtp-out 4\n");
  EXPECT_EQ(store_.pending(), pending);
}

TEST_F(CycleTest, AFragmentWriteFailureRunsNoPmta) {
  existing("gmail", 8);
  const std::optional<std::string> before = fragments_.get(kPool, "gmail");
  traffic("gmail.com", 200, 100, kGmailThrottle);
  fragments_.fail_write(1);
  FORBID_CALL(runner_, run(_, _));

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_TRUE(report->pmta_failed);
  EXPECT_THAT(report->pmta_outcome, HasSubstr("No space left on device"));
  EXPECT_EQ(fragments_.get(kPool, "gmail"), before);
  EXPECT_EQ(store_.pair(kPool, "gmail")->max_smtp_out, 8);
  EXPECT_EQ(store_.pair(kPool, "gmail")->last_failure_at, kT0);
  ASSERT_THAT(store_.decisions(), SizeIs(1));
  EXPECT_FALSE(store_.decisions()[0].applied);
}

TEST_F(CycleTest, AFailedSecondWriteRestoresTheFirstWithoutCallingPmta) {
  manage("gmail", Tier::high);
  manage("yahoo", Tier::high);
  existing("gmail", 8);
  existing("yahoo", 6);
  const std::optional<std::string> gmail_before = fragments_.get(kPool, "gmail");
  const std::optional<std::string> yahoo_before = fragments_.get(kPool, "yahoo");
  traffic("gmail.com", 200, 100, kGmailThrottle);
  traffic("yahoo.com", 200, 100, kYahooThrottle);
  fragments_.fail_write(2);
  script({reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_TRUE(report->pmta_failed);
  EXPECT_EQ(fragments_.get(kPool, "gmail"), gmail_before);
  EXPECT_EQ(fragments_.get(kPool, "yahoo"), yahoo_before);
  // PowerMTA never saw the half-written change: there is nothing to reload.
  EXPECT_THAT(calls_, IsEmpty());
  EXPECT_EQ(store_.pair(kPool, "gmail")->max_smtp_out, 8);
  EXPECT_EQ(store_.pair(kPool, "yahoo")->max_smtp_out, 6);
}

TEST_F(CycleTest, AFailedChangeIsRetriedNotBefore5Minutes) {
  existing("gmail", 8);
  traffic("gmail.com", 200, 100, kGmailThrottle);
  fragments_.fail_write(1);
  {
    FORBID_CALL(runner_, run(_, _));
    ASSERT_TRUE(cycle());
    clock_.set(kT0 + 5 * kMinute - 1);
    Expected<CycleReport> early = cycle();
    ASSERT_TRUE(early) << early.error().message;
    EXPECT_THAT(early->decisions, IsEmpty());
  }

  trompeloeil::sequence seq;
  REQUIRE_CALL(runner_, run(kTestConfig, kTimeout)).IN_SEQUENCE(seq).RETURN(config_ok());
  REQUIRE_CALL(runner_, run(kReload, kTimeout)).IN_SEQUENCE(seq).RETURN(reloaded());
  clock_.set(kT0 + 5 * kMinute);
  Expected<CycleReport> retry = cycle();
  ASSERT_TRUE(retry) << retry.error().message;
  ASSERT_THAT(retry->decisions, SizeIs(1));
  EXPECT_EQ(retry->decisions[0].new_value, 4);
  EXPECT_TRUE(retry->reloaded);
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 4);
  EXPECT_EQ(store_.pair(kPool, "gmail")->last_failure_at, 0);
  EXPECT_EQ(store_.pair(kPool, "gmail")->last_failure, "");
}

TEST_F(CycleTest, AFailedInitialFragmentIsWrittenOnTheRetry) {
  fragments_.fail_write(1);
  {
    FORBID_CALL(runner_, run(_, _));
    Expected<CycleReport> first = cycle();
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_TRUE(first->pmta_failed);
    EXPECT_FALSE(fragments_.get(kPool, "gmail"));
  }

  trompeloeil::sequence seq;
  REQUIRE_CALL(runner_, run(kTestConfig, kTimeout)).IN_SEQUENCE(seq).RETURN(config_ok());
  REQUIRE_CALL(runner_, run(kReload, kTimeout)).IN_SEQUENCE(seq).RETURN(reloaded());
  clock_.set(kT0 + 5 * kMinute);
  Expected<CycleReport> retry = cycle();
  ASSERT_TRUE(retry) << retry.error().message;
  ASSERT_THAT(retry->decisions, SizeIs(1));
  EXPECT_EQ(retry->decisions[0].rule, Rule::initial);
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 6);
}

// ---------------------------------------------------------------------------------------------
// Modes.

TEST_F(CycleTest, PlanWritesNothingAndCallsNoPmta) {
  manage("gmail", Tier::high);
  manage("outlook", Tier::high);  // no state, no fragment: would get its initial one
  existing("gmail", 8);
  const auto fragments_before = fragments_.files();
  const auto pairs_before = store_.pairs();
  traffic("gmail.com", 200, 100, kGmailThrottle);
  FORBID_CALL(runner_, run(_, _));

  for (int i = 0; i < 2; ++i) {  // twice: the first plan left nothing for the second to see
    Expected<CycleReport> report = cycle(CycleMode::plan);
    ASSERT_TRUE(report) << report.error().message;
    EXPECT_EQ(report->mode, CycleMode::plan);
    ASSERT_THAT(report->decisions, SizeIs(2));
    ASSERT_THAT(report->changes, SizeIs(2));
    EXPECT_EQ(report->changes[0].before, fragments_before.at(fragments_.path(kPool, "gmail")));
    EXPECT_EQ(fragment_max_smtp_out(report->changes[0].after), 4);
    EXPECT_FALSE(report->changes[1].before);
    EXPECT_EQ(fragment_max_smtp_out(report->changes[1].after), 4);  // outlook high: 4-6
    EXPECT_FALSE(report->reloaded);
    EXPECT_EQ(report->read.records, 300u);
  }

  EXPECT_EQ(store_.revision(), 0);
  EXPECT_TRUE(store_.checkpoints().empty());
  EXPECT_TRUE(store_.buckets().empty());
  EXPECT_TRUE(store_.decisions().empty());
  EXPECT_EQ(store_.pairs(), pairs_before);
  EXPECT_EQ(fragments_.files(), fragments_before);
  EXPECT_THAT(fragments_.log(), IsEmpty());
}

TEST_F(CycleTest, DryRunRecordsSignalsAndDecisionsButNoFragmentAndNoPmta) {
  manage("gmail", Tier::high);
  manage("outlook", Tier::high);
  existing("gmail", 8);
  const auto fragments_before = fragments_.files();
  const PairState gmail_before = *store_.pair(kPool, "gmail");
  traffic("gmail.com", 200, 100, kGmailThrottle);
  FORBID_CALL(runner_, run(_, _));

  Expected<CycleReport> report = cycle(CycleMode::dry_run);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->decisions, SizeIs(2));
  EXPECT_FALSE(report->reloaded);
  EXPECT_FALSE(report->pmta_failed);

  EXPECT_EQ(fragments_.files(), fragments_before);
  EXPECT_THAT(fragments_.log(), IsEmpty());
  EXPECT_EQ(stored_attempts(store_), 300u);
  ASSERT_THAT(store_.checkpoints(), SizeIs(1));
  EXPECT_EQ(store_.checkpoints()[0].offset, 300u);
  ASSERT_THAT(store_.decisions(), SizeIs(2));
  for (const DecisionRecord& r : store_.decisions()) {
    EXPECT_FALSE(r.applied);
    EXPECT_EQ(r.pmta_outcome, "dry run");
  }
  EXPECT_EQ(store_.pair(kPool, "gmail"), gmail_before);  // nothing applied
  EXPECT_FALSE(store_.pair(kPool, "outlook"));
}

// ---------------------------------------------------------------------------------------------
// Overrides.

Override pin(const std::string& isp, int value, std::optional<UnixSeconds> until = std::nullopt) {
  Override o;
  o.pool = kPool;
  o.isp = isp;
  o.kind = OverrideKind::pin;
  o.value = value;
  o.until = until;
  o.reason = "incident 4711";
  o.line = 3;
  return o;
}

Overrides with(std::vector<Override> entries) {
  Overrides o;
  o.entries = std::move(entries);
  return o;
}

TEST_F(CycleTest, APinIsWrittenInTheNextCycleAndRecordedAsAnOverride) {
  existing("gmail", 8);
  overrides_.set(with({pin("gmail", 4)}));
  script({config_ok(), reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(calls_, (std::vector<Argv>{kTestConfig, kReload}));
  ASSERT_THAT(report->decisions, SizeIs(1));
  const Decision& d = report->decisions[0];
  EXPECT_EQ(d.rule, Rule::override);
  EXPECT_EQ(d.old_value, 8);
  EXPECT_EQ(d.new_value, 4);
  EXPECT_EQ(d.reason, "pinned to 4 by override (incident 4711)");
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 4);
  EXPECT_THAT(*fragments_.get(kPool, "gmail"), HasSubstr("incident 4711"));
  ASSERT_THAT(store_.decisions(), SizeIs(1));
  EXPECT_TRUE(store_.decisions()[0].applied);
  EXPECT_EQ(store_.pair(kPool, "gmail")->max_smtp_out, 4);
  EXPECT_EQ(store_.pair(kPool, "gmail")->manual, "pinned to 4 by override (incident 4711)");

  // While pinned, a 421 burst changes nothing and records nothing new.
  FORBID_CALL(runner_, run(_, _));
  clock_.set(kT0 + 30 * kMinute);
  traffic("gmail.com", 200, 100, kGmailThrottle);
  Expected<CycleReport> later = cycle();
  ASSERT_TRUE(later) << later.error().message;
  EXPECT_THAT(later->decisions, IsEmpty());
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 4);
}

TEST_F(CycleTest, AnExpiredPinHandsBackToThePolicyAtThePinnedValue) {
  existing("gmail", 8);
  overrides_.set(with({pin("gmail", 4, kT0 + 3600)}));
  script({config_ok(), reloaded()});
  ASSERT_TRUE(cycle());
  ASSERT_EQ(value_in(fragments_.get(kPool, "gmail")), 4);

  // Expired: no jump back to 8, a record that the policy resumes from 4.
  clock_.set(kT0 + 2 * 3600);
  {
    FORBID_CALL(runner_, run(_, _));
    Expected<CycleReport> report = cycle();
    ASSERT_TRUE(report) << report.error().message;
    ASSERT_THAT(report->decisions, SizeIs(1));
    EXPECT_EQ(report->decisions[0].rule, Rule::override);
    EXPECT_EQ(report->decisions[0].new_value, 4);
    EXPECT_THAT(report->decisions[0].reason,
                HasSubstr("no longer pinned to 4 by override (incident 4711, until "
                          "2026-11-27T11:00:00Z): the policy resumes from 4"));
    EXPECT_THAT(report->changes, IsEmpty());
  }
  EXPECT_EQ(store_.pair(kPool, "gmail")->manual, "");

  // The policy's own rules apply again: a burst cuts from 4.
  clock_.set(kT0 + 3 * 3600);
  for (int i = 0; i < 300; ++i) {
    ScriptedSource::Line l;
    l.at = clock_.now() - 20 * kMinute + i * 4;
    l.rcpt = "u" + std::to_string(i) + "@gmail.com";
    l.source_ip = "203.0.113.1";
    if (i % 3 == 0) {
      l.type = RecordType::deferred;
      l.diag = kGmailThrottle;
    }
    source_.append(std::move(l));
  }
  script({config_ok(), reloaded()});
  Expected<CycleReport> cut = cycle();
  ASSERT_TRUE(cut) << cut.error().message;
  ASSERT_THAT(cut->decisions, SizeIs(1));
  EXPECT_EQ(cut->decisions[0].rule, Rule::severe_cut);
  EXPECT_EQ(cut->decisions[0].old_value, 4);
  EXPECT_EQ(cut->decisions[0].new_value, 2);
}

TEST_F(CycleTest, TheKillSwitchStopsEveryChangeWhileSignalsAccumulate) {
  manage("gmail", Tier::high);
  manage("yahoo", Tier::high);
  existing("gmail", 8);
  existing("yahoo", 6);
  const auto fragments_before = fragments_.files();
  Overrides frozen;
  frozen.freeze_all = true;
  frozen.freeze_reason = "migration";
  overrides_.set(frozen);
  traffic("gmail.com", 200, 100, kGmailThrottle);
  traffic("yahoo.com", 200, 100, kYahooThrottle);

  {
    FORBID_CALL(runner_, run(_, _));
    Expected<CycleReport> report = cycle();
    ASSERT_TRUE(report) << report.error().message;
    EXPECT_THAT(report->changes, IsEmpty());
    ASSERT_THAT(report->decisions, SizeIs(2));
    for (const Decision& d : report->decisions) {
      EXPECT_EQ(d.rule, Rule::override);
      EXPECT_FALSE(d.changes_value());
      EXPECT_EQ(d.reason, "frozen by the kill switch (migration)");
    }
    // A second frozen cycle records nothing more.
    clock_.set(kT0 + kMinute);
    Expected<CycleReport> again = cycle();
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_THAT(again->decisions, IsEmpty());
  }
  EXPECT_EQ(fragments_.files(), fragments_before);
  EXPECT_EQ(stored_attempts(store_), 600u);

  // Released, the loop acts on the signals recorded meanwhile.
  overrides_.set(Overrides{});
  clock_.set(kT0 + 2 * kMinute);
  script({config_ok(), reloaded()});
  Expected<CycleReport> released = cycle();
  ASSERT_TRUE(released) << released.error().message;
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 4);
  EXPECT_EQ(value_in(fragments_.get(kPool, "yahoo")), 3);
}

TEST_F(CycleTest, ANewPairUnderTheKillSwitchGetsItsFirstFragmentOnceReleased) {
  Overrides frozen;
  frozen.freeze_all = true;
  overrides_.set(frozen);
  {
    FORBID_CALL(runner_, run(_, _));
    Expected<CycleReport> report = cycle();
    ASSERT_TRUE(report) << report.error().message;
    EXPECT_THAT(report->changes, IsEmpty());
  }
  EXPECT_FALSE(fragments_.get(kPool, "gmail"));
  EXPECT_FALSE(store_.pair(kPool, "gmail"));

  overrides_.set(Overrides{});
  clock_.set(kT0 + kMinute);
  script({config_ok(), reloaded()});
  Expected<CycleReport> released = cycle();
  ASSERT_TRUE(released) << released.error().message;
  ASSERT_THAT(released->decisions, SizeIs(1));
  EXPECT_EQ(released->decisions[0].rule, Rule::initial);
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 6);
}

TEST_F(CycleTest, AFreezeOfThePoolKeepsItsValueThroughABurst) {
  existing("gmail", 8);
  Override freeze = pin("", 0);
  freeze.kind = OverrideKind::freeze;
  overrides_.set(with({freeze}));
  traffic("gmail.com", 200, 100, kGmailThrottle);
  FORBID_CALL(runner_, run(_, _));

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->changes, IsEmpty());
  ASSERT_THAT(report->decisions, SizeIs(1));
  EXPECT_EQ(report->decisions[0].reason, "frozen by override (incident 4711)");
  EXPECT_EQ(store_.pair(kPool, "gmail")->max_smtp_out, 8);
}

TEST_F(CycleTest, BoundsLimitACutToTheFloor) {
  existing("gmail", 8);
  Override bounds = pin("gmail", 0);
  bounds.kind = OverrideKind::bounds;
  bounds.floor = 6;
  overrides_.set(with({bounds}));
  traffic("gmail.com", 200, 100, kGmailThrottle);  // the policy alone would cut to 4
  script({config_ok(), reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_THAT(report->decisions, SizeIs(1));
  EXPECT_EQ(report->decisions[0].rule, Rule::severe_cut);
  EXPECT_EQ(report->decisions[0].new_value, 6);
  EXPECT_THAT(report->decisions[0].reason, HasSubstr("bounded to 6..1000 by override"));
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 6);
}

TEST_F(CycleTest, ACeilingBelowTheValueLowersItAtOnce) {
  existing("gmail", 8);
  Override bounds = pin("gmail", 0);
  bounds.kind = OverrideKind::bounds;
  bounds.ceiling = 5;
  overrides_.set(with({bounds}));
  script({config_ok(), reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_THAT(report->decisions, SizeIs(1));
  EXPECT_EQ(report->decisions[0].rule, Rule::override);
  EXPECT_EQ(report->decisions[0].new_value, 5);
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 5);
}

TEST_F(CycleTest, ABrokenFileKeepsTheLastValidOverridesAndStillRecordsSignals) {
  existing("gmail", 8);
  overrides_.set(with({pin("gmail", 4)}), "pin-4");
  script({config_ok(), reloaded()});
  ASSERT_TRUE(cycle());

  overrides_.break_file(
      "/etc/sluice/overrides.toml:7: [[override]] 'max_smtp_out' must be an "
      "integer from 1 to 1000, not 0");
  clock_.set(kT0 + 30 * kMinute);
  traffic("gmail.com", 200, 100, kGmailThrottle);
  FORBID_CALL(runner_, run(_, _));
  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->override_error, HasSubstr("overrides.toml:7"));
  ASSERT_THAT(report->overrides.entries, SizeIs(1));
  EXPECT_EQ(report->overrides.entries[0].value, 4);
  EXPECT_THAT(report->decisions, IsEmpty());  // still pinned: no cut
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 4);
  EXPECT_EQ(stored_attempts(store_), 300u);
}

TEST_F(CycleTest, ABrokenFileBeforeAnyValidOneMeansNoOverrides) {
  existing("gmail", 8);
  overrides_.break_file("/etc/sluice/overrides.toml:1: unknown key 'pools'");
  traffic("gmail.com", 200, 100, kGmailThrottle);
  script({config_ok(), reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->override_error, HasSubstr("unknown key 'pools'"));
  EXPECT_THAT(report->overrides.entries, IsEmpty());
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 4);  // the policy's cut
}

TEST_F(CycleTest, ATierOverrideLowersTheCapAtOnce) {
  existing("gmail", 8);  // tier high: cap 10
  Overrides o;
  o.tiers.push_back(TierOverride{kPool, "gmail", Tier::medium, "postmaster tools", 9});
  overrides_.set(o);
  script({config_ok(), reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_THAT(report->decisions, SizeIs(1));
  EXPECT_EQ(report->decisions[0].rule, Rule::tier_cap);
  EXPECT_EQ(report->decisions[0].new_value, 5);  // gmail medium: 3-5
  EXPECT_EQ(store_.pair(kPool, "gmail")->tier, Tier::medium);
}

TEST_F(CycleTest, AVmtaPinWritesThatVmtasFragmentAndItsEndHandsItBack) {
  existing("gmail", 8);
  const auto pool_fragment = fragments_.get(kPool, "gmail");
  Override one = pin("gmail", 3);
  one.vmta = "gmail-ip-2";
  overrides_.set(with({one}));
  script({config_ok(), reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  const FragmentKey key{kPool, "gmail", "gmail-ip-2"};
  ASSERT_THAT(report->changes, SizeIs(1));
  EXPECT_EQ(report->changes[0].path, "/etc/pmta/sluice/high-rep-pool/gmail/gmail-ip-2.conf");
  EXPECT_EQ(value_in(fragments_.get(key)), 3);
  EXPECT_EQ(fragments_.get(kPool, "gmail"), pool_fragment);
  ASSERT_THAT(report->decisions, SizeIs(1));
  EXPECT_EQ(report->decisions[0].vmta, "gmail-ip-2");
  EXPECT_EQ(report->decisions[0].old_value, 8);
  EXPECT_EQ(report->decisions[0].new_value, 3);
  EXPECT_EQ(store_.vmta_settings(),
            (std::vector<VmtaSetting>{{kPool, "gmail", "gmail-ip-2", 3, kT0}}));
  ASSERT_THAT(store_.decisions(), SizeIs(1));
  EXPECT_EQ(store_.decisions()[0].decision.vmta, "gmail-ip-2");

  // Unchanged next cycle: nothing to write.
  clock_.set(kT0 + kMinute);
  {
    FORBID_CALL(runner_, run(_, _));
    Expected<CycleReport> same = cycle();
    ASSERT_TRUE(same) << same.error().message;
    EXPECT_THAT(same->changes, IsEmpty());
  }

  // Cleared: the VMTA's fragment keeps existing (PowerMTA includes it) but sets nothing.
  overrides_.set(Overrides{});
  clock_.set(kT0 + 2 * kMinute);
  script({config_ok(), reloaded()});
  Expected<CycleReport> cleared = cycle();
  ASSERT_TRUE(cleared) << cleared.error().message;
  ASSERT_THAT(cleared->changes, SizeIs(1));
  ASSERT_TRUE(fragments_.get(key));
  EXPECT_EQ(value_in(fragments_.get(key)), std::nullopt);
  EXPECT_THAT(*fragments_.get(key), HasSubstr("inherits the pool's settings"));
  EXPECT_THAT(cleared->decisions[0].reason, HasSubstr("inherits the pool's 8"));
  EXPECT_THAT(store_.vmta_settings(), IsEmpty());
}

TEST_F(CycleTest, ARefusedPinIsRetriedNotBefore5Minutes) {
  existing("gmail", 8);
  const auto before = fragments_.get(kPool, "gmail");
  overrides_.set(with({pin("gmail", 4)}));
  script({result(1, "", "Error in line 3 of /etc/pmta/sluice/high-rep-pool/gmail.conf")});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_TRUE(report->pmta_failed);
  EXPECT_EQ(fragments_.get(kPool, "gmail"), before);
  EXPECT_EQ(store_.pair(kPool, "gmail")->max_smtp_out, 8);
  {
    FORBID_CALL(runner_, run(_, _));
    clock_.set(kT0 + 4 * kMinute);
    Expected<CycleReport> waiting = cycle();
    ASSERT_TRUE(waiting) << waiting.error().message;
    EXPECT_THAT(waiting->changes, IsEmpty());
  }
  clock_.set(kT0 + 5 * kMinute);
  script({config_ok(), reloaded()});
  Expected<CycleReport> retried = cycle();
  ASSERT_TRUE(retried) << retried.error().message;
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 4);
}

TEST_F(CycleTest, ADryRunShowsThePinWithoutWritingIt) {
  existing("gmail", 8);
  const auto before = fragments_.get(kPool, "gmail");
  overrides_.set(with({pin("gmail", 4)}));
  FORBID_CALL(runner_, run(_, _));

  Expected<CycleReport> report = cycle(CycleMode::dry_run);
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_THAT(report->changes, SizeIs(1));
  EXPECT_EQ(fragments_.get(kPool, "gmail"), before);
  ASSERT_THAT(store_.decisions(), SizeIs(1));
  EXPECT_FALSE(store_.decisions()[0].applied);
  EXPECT_EQ(store_.pair(kPool, "gmail")->max_smtp_out, 8);
}

// ---------------------------------------------------------------------------------------------
// Reputation tiers from a command.

// Hands out scripted answers in order and counts the reads.
class ScriptedReputation : public ReputationSource {
 public:
  void answer(Expected<ReputationRead> next) { answers_.push_back(std::move(next)); }
  void answer(std::vector<ReputationTier> tiers) { answer(ReputationRead{std::move(tiers), {}}); }

  Expected<ReputationRead> read() override {
    ++reads;
    if (answers_.empty()) {
      ADD_FAILURE() << "an unscripted reputation read";
      return Error{"unscripted"};
    }
    Expected<ReputationRead> next = answers_.front();
    answers_.pop_front();
    return next;
  }

  int reads = 0;

 private:
  std::deque<Expected<ReputationRead>> answers_;
};

class CycleReputationTest : public CycleTest {
 protected:
  static constexpr UnixSeconds kInterval = 3600;

  Expected<CycleReport> cycle_with_reputation(CycleMode mode = CycleMode::apply) {
    if (pairs_.empty()) manage("gmail", Tier::high);
    Controller controller(source_, store_, fragments_, overrides_, runner_, clock_,
                          IspCatalog::builtin(), std::make_shared<PoolMap>(), pairs_,
                          LoopSettings{});
    controller.set_reputation(&reputation_, kInterval);
    return controller.run_cycle(mode);
  }

  ScriptedReputation reputation_;
};

TEST_F(CycleReputationTest, ATierDropLowersTheCapAndTheValueAtOnce) {
  existing("gmail", 8);  // tier high: cap 10
  reputation_.answer({{kPool, "gmail", Tier::medium}});
  script({config_ok(), reloaded()});

  Expected<CycleReport> report = cycle_with_reputation();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(reputation_.reads, 1);
  EXPECT_EQ(report->reputation_error, "");
  ASSERT_THAT(report->decisions, SizeIs(1));
  EXPECT_EQ(report->decisions[0].rule, Rule::tier_cap);
  EXPECT_EQ(report->decisions[0].new_value, 5);  // gmail medium: 3-5
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 5);
  EXPECT_EQ(store_.pair(kPool, "gmail")->tier, Tier::medium);
  // Remembered with the cycle.
  const KnownReputation known = store_.load_reputation().value();
  EXPECT_EQ(known.last_run, kT0);
  EXPECT_THAT(known.tiers, ElementsAre(ReputationTier{kPool, "gmail", Tier::medium}));
}

TEST_F(CycleReputationTest, ATierRiseLiftsOnlyTheCap) {
  manage("gmail", Tier::low);  // cap 2
  existing("gmail", 2);
  reputation_.answer({{kPool, "gmail", Tier::high}});
  FORBID_CALL(runner_, run(_, _));

  Expected<CycleReport> report = cycle_with_reputation();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->decisions, IsEmpty());
  EXPECT_EQ(store_.pair(kPool, "gmail")->tier, Tier::high);
  EXPECT_EQ(store_.pair(kPool, "gmail")->max_smtp_out, 2);  // the weekly raise takes it on
}

TEST_F(CycleReputationTest, TheCommandRunsOncePerIntervalAndItsTiersHoldInBetween) {
  existing("gmail", 8);
  reputation_.answer({{kPool, "gmail", Tier::medium}});
  script({config_ok(), reloaded()});
  ASSERT_TRUE(cycle_with_reputation());
  ASSERT_EQ(value_in(fragments_.get(kPool, "gmail")), 5);

  // Within the interval: no run, the stored tier holds.
  clock_.set(kT0 + kInterval - 1);
  Expected<CycleReport> between = cycle_with_reputation();
  ASSERT_TRUE(between) << between.error().message;
  EXPECT_EQ(reputation_.reads, 1);
  EXPECT_THAT(between->decisions, IsEmpty());
  EXPECT_EQ(store_.pair(kPool, "gmail")->tier, Tier::medium);

  // Once it has passed, a run; a pair the answer leaves out is back at its configured tier,
  // and the value stays until the weekly raise.
  clock_.set(kT0 + kInterval);
  reputation_.answer(std::vector<ReputationTier>{});
  Expected<CycleReport> next = cycle_with_reputation();
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ(reputation_.reads, 2);
  EXPECT_THAT(next->decisions, IsEmpty());
  EXPECT_EQ(store_.pair(kPool, "gmail")->tier, Tier::high);
  EXPECT_EQ(store_.pair(kPool, "gmail")->max_smtp_out, 5);
  EXPECT_EQ(store_.load_reputation()->last_run, kT0 + kInterval);
  EXPECT_THAT(store_.load_reputation()->tiers, IsEmpty());
}

TEST_F(CycleReputationTest, AFailedRunKeepsTheLastKnownTiersAndReportsTheError) {
  existing("gmail", 8);
  reputation_.answer({{kPool, "gmail", Tier::medium}});
  script({config_ok(), reloaded()});
  ASSERT_TRUE(cycle_with_reputation());

  clock_.set(kT0 + kInterval);
  reputation_.answer(
      Error{"reputation command /usr/local/bin/rep: line 3: tier 'great' is not "
            "high, medium, low or warming"});
  Expected<CycleReport> failed = cycle_with_reputation();
  ASSERT_TRUE(failed) << failed.error().message;
  EXPECT_EQ(failed->reputation_error,
            "reputation command /usr/local/bin/rep: line 3: tier 'great' is not high, medium, "
            "low or warming");
  EXPECT_EQ(store_.pair(kPool, "gmail")->tier, Tier::medium);
  const KnownReputation known = store_.load_reputation().value();
  EXPECT_EQ(known.last_run, kT0 + kInterval);
  EXPECT_THAT(known.tiers, ElementsAre(ReputationTier{kPool, "gmail", Tier::medium}));

  // A failed run also waits an interval: a hanging command does not slow every cycle.
  clock_.set(kT0 + 2 * kInterval - 1);
  Expected<CycleReport> waiting = cycle_with_reputation();
  ASSERT_TRUE(waiting) << waiting.error().message;
  EXPECT_EQ(reputation_.reads, 2);
  EXPECT_EQ(waiting->reputation_error, "");
  EXPECT_EQ(store_.pair(kPool, "gmail")->tier, Tier::medium);
}

TEST_F(CycleReputationTest, AFailedFirstRunLeavesTheConfiguredTier) {
  existing("gmail", 8);
  reputation_.answer(Error{"reputation command /usr/local/bin/rep failed (exit 1)"});
  FORBID_CALL(runner_, run(_, _));

  Expected<CycleReport> report = cycle_with_reputation();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->reputation_error, "reputation command /usr/local/bin/rep failed (exit 1)");
  EXPECT_THAT(report->decisions, IsEmpty());
  EXPECT_EQ(store_.pair(kPool, "gmail")->tier, Tier::high);
  EXPECT_EQ(store_.load_reputation()->last_run, kT0);
}

TEST_F(CycleReputationTest, TheOverrideFilesTierWinsOverTheReputationCommand) {
  existing("gmail", 8);  // configured high: cap 10
  Overrides o;
  o.tiers.push_back(TierOverride{kPool, "gmail", Tier::medium, "postmaster tools", 9});
  overrides_.set(o);
  reputation_.answer(ReputationRead{{{kPool, "gmail", Tier::low}, {kPool, "yahoo", Tier::low}},
                                    {"reputation command /rep: line 2: ignored"}});
  script({config_ok(), reloaded()});

  Expected<CycleReport> report = cycle_with_reputation();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->reputation_warnings, ElementsAre("reputation command /rep: line 2: ignored"));
  ASSERT_THAT(report->decisions, SizeIs(1));
  EXPECT_EQ(report->decisions[0].new_value, 5);  // medium's cap, not low's 2
  EXPECT_EQ(store_.pair(kPool, "gmail")->tier, Tier::medium);
}

TEST_F(CycleReputationTest, APlanReadsButRemembersNothingAndADryRunRemembers) {
  existing("gmail", 8);
  reputation_.answer({{kPool, "gmail", Tier::low}});
  FORBID_CALL(runner_, run(_, _));

  Expected<CycleReport> plan = cycle_with_reputation(CycleMode::plan);
  ASSERT_TRUE(plan) << plan.error().message;
  ASSERT_THAT(plan->decisions, SizeIs(1));
  EXPECT_EQ(plan->decisions[0].new_value, 2);
  EXPECT_EQ(store_.load_reputation()->last_run, 0);
  EXPECT_EQ(store_.revision(), 0);

  reputation_.answer({{kPool, "gmail", Tier::low}});
  Expected<CycleReport> dry = cycle_with_reputation(CycleMode::dry_run);
  ASSERT_TRUE(dry) << dry.error().message;
  EXPECT_EQ(reputation_.reads, 2);
  EXPECT_EQ(store_.load_reputation()->last_run, kT0);
  EXPECT_THAT(store_.load_reputation()->tiers,
              ElementsAre(ReputationTier{kPool, "gmail", Tier::low}));
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 8);
}

TEST_F(CycleReputationTest, WithoutASourceStoredTiersAreNotUsed) {
  existing("gmail", 8);
  reputation_.answer({{kPool, "gmail", Tier::low}});
  FORBID_CALL(runner_, run(_, _));
  ASSERT_TRUE(cycle_with_reputation(CycleMode::dry_run));

  // [reputation] removed from the configuration: the configured tier again.
  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->decisions, IsEmpty());
  EXPECT_EQ(store_.pair(kPool, "gmail")->tier, Tier::high);
}

// ---------------------------------------------------------------------------------------------
// Per-IP diagnosis: deferrals concentrated on one IP give that IP's VMTA its own value.

constexpr UnixSeconds kHour = 3600;

class CycleVmtaDiagnosis : public CycleTest {
 protected:
  static constexpr const char* kBadIp = "203.0.113.1";
  static constexpr const char* kBadVmta = "gmail-ip-1";
  const FragmentKey kBadKey{kPool, "gmail", kBadVmta};

  // From source IP 203.0.113.`n` (VMTA gmail-ip-`n`) to gmail.com: `delivered` deliveries and
  // `deferred` 421 throttle deferrals, spread evenly over [from, to).
  void ip_traffic(int n, int delivered, int deferred, UnixSeconds from, UnixSeconds to) {
    const int total = delivered + deferred;
    for (int i = 0; i < total; ++i) {
      ScriptedSource::Line l;
      l.at = from + ((to - from) * i) / total;
      l.rcpt = "ip" + std::to_string(n) + "-user" + std::to_string(i) + "@gmail.com";
      l.source_ip = "203.0.113." + std::to_string(n);
      l.vmta = "gmail-ip-" + std::to_string(n);
      if ((i + 1) * deferred / total != i * deferred / total) {
        l.type = RecordType::deferred;
        l.diag = kGmailThrottle;
      }
      source_.append(std::move(l));
    }
  }

  // The first IP of four: `delivered` and `deferred`; the three others 100 clean deliveries.
  void one_bad_ip(int delivered, int deferred, UnixSeconds from, UnixSeconds to) {
    ip_traffic(1, delivered, deferred, from, to);
    for (int n = 2; n <= 4; ++n) ip_traffic(n, 100, 0, from, to);
  }

  // The pool at 8; gmail-ip-1 cut to 4 at kT0 for 30 of 130 attempts throttled (23%: 50%).
  void first_cut() {
    existing("gmail", 8);
    one_bad_ip(100, 30, kT0 - 20 * kMinute, kT0);
    script({config_ok(), reloaded()});
    Expected<CycleReport> report = cycle();
    ASSERT_TRUE(report) << report.error().message;
    ASSERT_EQ(value_in(fragments_.get(kBadKey)), 4);
  }

  // A cycle at `t` that must change nothing.
  void no_change_at(UnixSeconds t) {
    clock_.set(t);
    FORBID_CALL(runner_, run(_, _));
    Expected<CycleReport> report = cycle();
    ASSERT_TRUE(report) << report.error().message;
    EXPECT_THAT(report->decisions, IsEmpty()) << report->decisions[0].reason;
    EXPECT_THAT(report->changes, IsEmpty());
  }

  // A cycle at `t` after 20 clean minutes on every IP; returns its only decision.
  std::optional<Decision> clean_cycle_at(UnixSeconds t) {
    clock_.set(t);
    one_bad_ip(100, 0, t - 20 * kMinute, t);
    script({config_ok(), reloaded()});
    Expected<CycleReport> report = cycle();
    EXPECT_TRUE(report) << report.error().message;
    if (!report || report->decisions.size() != 1) {
      ADD_FAILURE() << "expected one decision";
      return std::nullopt;
    }
    EXPECT_THAT(report->changes, SizeIs(1));
    return report->decisions[0];
  }
};

TEST_F(CycleVmtaDiagnosis, OneThrottledIpOfFourGetsItsOwnValueAndThePoolKeepsIts) {
  existing("gmail", 8);
  const std::optional<std::string> pool_fragment = fragments_.get(kPool, "gmail");
  // 30 of 430 attempts (7%): the pool alone would be cut by 30%; all 30 are on one IP.
  one_bad_ip(100, 30, kT0 - 20 * kMinute, kT0);
  script({config_ok(), reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(calls_, (std::vector<Argv>{kTestConfig, kReload}));
  ASSERT_THAT(report->decisions, SizeIs(1));
  const Decision& d = report->decisions[0];
  EXPECT_EQ(d.vmta, kBadVmta);
  EXPECT_EQ(d.rule, Rule::severe_cut);  // 23% on its IP: the larger cut of the pool's value
  EXPECT_EQ(d.old_value, 8);
  EXPECT_EQ(d.new_value, 4);
  EXPECT_EQ(d.trigger, DeferralClass::connection);
  EXPECT_EQ(d.figures.attempts, 130u);
  EXPECT_EQ(d.figures.throttle, 30u);
  EXPECT_THAT(d.reason, HasSubstr("the pool keeps 8"));
  ASSERT_THAT(report->changes, SizeIs(1));
  EXPECT_EQ(report->changes[0].path, "/etc/pmta/sluice/high-rep-pool/gmail/gmail-ip-1.conf");
  EXPECT_FALSE(report->changes[0].before);

  EXPECT_EQ(value_in(fragments_.get(kBadKey)), 4);
  EXPECT_THAT(*fragments_.get(kBadKey), HasSubstr("\nbackoff-max-smtp-out 2\n"));
  EXPECT_EQ(fragments_.get(kPool, "gmail"), pool_fragment);
  for (const char* other : {"gmail-ip-2", "gmail-ip-3", "gmail-ip-4"}) {
    EXPECT_FALSE(fragments_.get(FragmentKey{kPool, "gmail", other})) << other;
  }
  const std::optional<PairState> pool = store_.pair(kPool, "gmail");
  ASSERT_TRUE(pool);
  EXPECT_EQ(pool->max_smtp_out, 8);
  EXPECT_EQ(pool->phase, Phase::steady);
  EXPECT_EQ(store_.vmta_settings(), (std::vector<VmtaSetting>{{kPool, "gmail", kBadVmta, 4, kT0,
                                                               true, kT0 + 30 * kMinute, kT0}}));
  ASSERT_THAT(store_.decisions(), SizeIs(1));
  EXPECT_EQ(store_.decisions()[0].decision.vmta, kBadVmta);
  EXPECT_TRUE(store_.decisions()[0].applied);

  // The mapping was learned from the records' vmta column.
  Expected<std::vector<IpVmta>> learned = store_.load_ip_vmtas();
  ASSERT_TRUE(learned);
  EXPECT_THAT(*learned, ::testing::Contains(IpVmta{kPool, kBadIp, kBadVmta}));
}

TEST_F(CycleVmtaDiagnosis, StillThrottledAfterItsHoldItIsCutAgainSized) {
  first_cut();
  // Inside its verification window: held, however throttled.
  one_bad_ip(50, 10, kT0, kT0 + 10 * kMinute);
  no_change_at(kT0 + 10 * kMinute);
  EXPECT_EQ(value_in(fragments_.get(kBadKey)), 4);

  // Since the cut: 30 of 180 attempts throttled (16.7%): floor(4 x 0.833) is 3.
  const std::optional<std::string> pool_fragment = fragments_.get(kPool, "gmail");
  one_bad_ip(100, 20, kT0 + 10 * kMinute, kT0 + 30 * kMinute);
  clock_.set(kT0 + 30 * kMinute);
  script({config_ok(), reloaded()});
  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_THAT(report->decisions, SizeIs(1));
  EXPECT_EQ(report->decisions[0].vmta, kBadVmta);
  EXPECT_EQ(report->decisions[0].rule, Rule::cut);
  EXPECT_EQ(report->decisions[0].old_value, 4);
  EXPECT_EQ(report->decisions[0].new_value, 3);
  EXPECT_EQ(report->decisions[0].figures.attempts, 180u);
  EXPECT_THAT(report->decisions[0].reason, HasSubstr("still throttled"));
  EXPECT_EQ(value_in(fragments_.get(kBadKey)), 3);
  EXPECT_EQ(fragments_.get(kPool, "gmail"), pool_fragment);
  EXPECT_EQ(store_.pair(kPool, "gmail")->max_smtp_out, 8);
  EXPECT_EQ(store_.vmta_settings(),
            (std::vector<VmtaSetting>{{kPool, "gmail", kBadVmta, 3, kT0 + 30 * kMinute, true,
                                       kT0 + 60 * kMinute, kT0 + 30 * kMinute}}));
}

TEST_F(CycleVmtaDiagnosis, CleanFor6HoursItStepsHalfWayBackToThePoolsValue) {
  first_cut();
  one_bad_ip(100, 0, kT0 + 6 * kHour - 25 * kMinute, kT0 + 6 * kHour - 5 * kMinute);
  no_change_at(kT0 + 6 * kHour - 5 * kMinute);

  const std::optional<Decision> up = clean_cycle_at(kT0 + 6 * kHour);
  ASSERT_TRUE(up);
  EXPECT_EQ(up->vmta, kBadVmta);
  EXPECT_EQ(up->rule, Rule::raise);
  EXPECT_EQ(up->old_value, 4);
  EXPECT_EQ(up->new_value, 6);  // half of the 4 back to 8
  EXPECT_THAT(up->reason, HasSubstr("half way back to the pool's 8"));
  EXPECT_EQ(value_in(fragments_.get(kBadKey)), 6);
  EXPECT_EQ(store_.pair(kPool, "gmail")->max_smtp_out, 8);
  EXPECT_EQ(store_.vmta_settings(),
            (std::vector<VmtaSetting>{
                {kPool, "gmail", kBadVmta, 6, kT0 + 6 * kHour, true, kT0 + 6 * kHour + 1800}}));
}

TEST_F(CycleVmtaDiagnosis, ReachingThePoolsValueHandsItBackToThePool) {
  first_cut();
  const std::optional<Decision> to6 = clean_cycle_at(kT0 + 6 * kHour);
  ASSERT_TRUE(to6);
  EXPECT_EQ(to6->new_value, 6);
  const std::optional<Decision> to7 = clean_cycle_at(kT0 + 12 * kHour);
  ASSERT_TRUE(to7);
  EXPECT_EQ(to7->new_value, 7);  // at least +1
  ASSERT_THAT(store_.vmta_settings(), SizeIs(1));

  const std::optional<Decision> back = clean_cycle_at(kT0 + 18 * kHour);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->vmta, kBadVmta);
  EXPECT_EQ(back->rule, Rule::raise);
  EXPECT_EQ(back->old_value, 7);
  EXPECT_EQ(back->new_value, 8);
  EXPECT_THAT(back->reason, HasSubstr("back to the pool's value"));
  // The fragment stays (PowerMTA includes it) but sets nothing: the VMTA inherits the pool's.
  const std::optional<std::string> fragment = fragments_.get(kBadKey);
  ASSERT_TRUE(fragment);
  EXPECT_EQ(value_in(fragment), std::nullopt);
  EXPECT_THAT(*fragment, HasSubstr("inherits the pool's settings"));
  EXPECT_THAT(*fragment, ::testing::Not(HasSubstr("max-smtp-out")));
  EXPECT_THAT(*fragment, ::testing::Not(HasSubstr("max-connect-rate")));
  std::string line;
  for (std::size_t at = 0; at < fragment->size();) {
    const std::size_t end = std::min(fragment->find('\n', at), fragment->size());
    line = fragment->substr(at, end - at);
    if (!line.empty()) {
      EXPECT_EQ(line[0], '#') << line;
    }
    at = end + 1;
  }
  EXPECT_THAT(store_.vmta_settings(), IsEmpty());
  EXPECT_EQ(store_.pair(kPool, "gmail")->max_smtp_out, 8);

  // Handed back: later clean cycles leave it alone.
  one_bad_ip(100, 0, kT0 + 24 * kHour - 20 * kMinute, kT0 + 24 * kHour);
  no_change_at(kT0 + 24 * kHour);
  EXPECT_EQ(fragments_.get(kBadKey), fragment);
}

TEST_F(CycleVmtaDiagnosis, ThrottleSignalsWithinThe6HoursDelayTheStepUp) {
  first_cut();
  // 3 hours after the cut its IP still sees some throttling (3 of 103, under the cut
  // threshold: no further cut), then none.
  one_bad_ip(100, 3, kT0 + 3 * kHour - 20 * kMinute, kT0 + 3 * kHour);
  no_change_at(kT0 + 3 * kHour);
  // Not clean for 6 hours at +6 h: the step waits until 6 clean hours after +3 h.
  one_bad_ip(100, 0, kT0 + 6 * kHour - 20 * kMinute, kT0 + 6 * kHour);
  no_change_at(kT0 + 6 * kHour);
  EXPECT_EQ(value_in(fragments_.get(kBadKey)), 4);
  const std::optional<Decision> up = clean_cycle_at(kT0 + 9 * kHour);
  ASSERT_TRUE(up);
  EXPECT_EQ(up->new_value, 6);
}

TEST_F(CycleVmtaDiagnosis, AThinWindowGivesNoVmtaItsOwnValue) {
  existing("gmail", 8);
  ip_traffic(1, 4, 2, kT0 - 20 * kMinute, kT0);
  ip_traffic(2, 6, 0, kT0 - 20 * kMinute, kT0);
  no_change_at(kT0);
  EXPECT_FALSE(fragments_.get(kBadKey));
  EXPECT_THAT(store_.vmta_settings(), IsEmpty());
}

TEST_F(CycleVmtaDiagnosis, ThrottlingSpreadOverTheIpsCutsThePoolAndNoVmta) {
  existing("gmail", 8);
  for (int n = 1; n <= 4; ++n) ip_traffic(n, 100, 10, kT0 - 20 * kMinute, kT0);  // 9% each
  script({config_ok(), reloaded()});
  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_THAT(report->decisions, SizeIs(1));
  EXPECT_EQ(report->decisions[0].vmta, "");
  EXPECT_EQ(report->decisions[0].rule, Rule::cut);
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 5);
  EXPECT_FALSE(fragments_.get(kBadKey));
  EXPECT_THAT(store_.vmta_settings(), IsEmpty());
}

// ---------------------------------------------------------------------------------------------
// Guard rails: at most max_changes_per_day changes per pair per UTC day, one reload per
// min_reload_interval, no raise while most pairs are being cut, one change per window.

class CycleGuardTest : public CycleTest {
 protected:
  static constexpr UnixSeconds kToday = kT0 - 10 * kHour;  // 2026-11-27T00:00:00Z

  // `delivered` deliveries and `deferred` deferrals with `diag` to `domain`, spread evenly over
  // [from, to), from one source IP: no per-IP diagnosis, the pool's value decides.
  void traffic_between(const std::string& domain, int delivered, int deferred,
                       const std::string& diag, UnixSeconds from, UnixSeconds to) {
    const int total = delivered + deferred;
    for (int i = 0; i < total; ++i) {
      ScriptedSource::Line l;
      l.at = from + ((to - from) * i) / total;
      l.rcpt = "g" + std::to_string(i) + "@" + domain;
      l.source_ip = "198.51.100.1";
      l.vmta = "bulk-ip-1";
      if ((i + 1) * deferred / total != i * deferred / total) {
        l.type = RecordType::deferred;
        l.diag = diag;
      }
      source_.append(std::move(l));
    }
  }

  // An entry of the audit trail, as an earlier cycle left it. Only before the first cycle: the
  // memory store's commit replaces the checkpoints.
  void on_record(const std::string& isp, UnixSeconds at, Rule rule, int old_value, int new_value,
                 bool applied = true, std::string vmta = "") {
    DecisionRecord r;
    r.decision.pool = kPool;
    r.decision.isp = isp;
    r.decision.vmta = std::move(vmta);
    r.decision.at = at;
    r.decision.rule = rule;
    r.decision.old_value = old_value;
    r.decision.new_value = new_value;
    r.applied = applied;
    r.pmta_outcome = applied ? "reloaded" : "dry run";
    ASSERT_TRUE(store_.commit_cycle({}, {}, {}, {r}, ManualCommit{}));
  }

  // Four UTC days before today with 120 clean deliveries each, and 120 in the last 20 minutes:
  // what the weekly raise asks for.
  void clean_week(const std::string& domain) {
    for (UnixSeconds day = 4; day >= 0; --day) {
      traffic_between(domain, 120, 0, "", kT0 - day * kDay - 20 * kMinute, kT0 - day * kDay);
    }
  }
};

TEST_F(CycleGuardTest, TheFifthChangeOfADayIsHeldAndGoesThroughTheNextDay) {
  existing("gmail", 8);
  for (int hour : {1, 3, 5, 7}) on_record("gmail", kToday + hour * kHour, Rule::cut, 9, 8);
  const PairState before = *store_.pair(kPool, "gmail");
  const std::optional<std::string> fragment = fragments_.get(kPool, "gmail");
  const std::size_t recorded = store_.decisions().size();
  traffic("gmail.com", 200, 100, kGmailThrottle);
  {
    FORBID_CALL(runner_, run(_, _));
    Expected<CycleReport> report = cycle();
    ASSERT_TRUE(report) << report.error().message;
    EXPECT_THAT(report->held,
                ElementsAre("high-rep-pool/gmail: severe_cut 8 -> 4 held: 4 changes today already "
                            "(at most 4)"));
    EXPECT_THAT(report->decisions, IsEmpty());
    EXPECT_THAT(report->changes, IsEmpty());
    EXPECT_EQ(fragments_.get(kPool, "gmail"), fragment);
    EXPECT_EQ(store_.pair(kPool, "gmail"), before);
    EXPECT_EQ(store_.decisions().size(), recorded);
    EXPECT_EQ(stored_attempts(store_), 300u);  // the signals are kept all the same
  }

  // Decided again the next UTC day, on the throttling still going on.
  const UnixSeconds next_day = kToday + kDay + 5 * kMinute;
  clock_.set(next_day);
  traffic_between("gmail.com", 200, 100, kGmailThrottle, next_day - 20 * kMinute, next_day);
  script({config_ok(), reloaded()});
  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->held, IsEmpty());
  ASSERT_THAT(report->decisions, SizeIs(1));
  EXPECT_EQ(report->decisions[0].rule, Rule::severe_cut);
  EXPECT_EQ(report->decisions[0].new_value, 4);
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 4);
  EXPECT_EQ(store_.pair(kPool, "gmail")->max_smtp_out, 4);
}

TEST_F(CycleGuardTest, OnlyTodaysAppliedChangesByThePolicysRulesCount) {
  existing("gmail", 8);
  // Three changes: a cycle that changed the pool and a VMTA counts once.
  on_record("gmail", kToday + 1 * kHour, Rule::cut, 10, 8);
  on_record("gmail", kToday + 1 * kHour, Rule::cut, 10, 5, true, "gmail-ip-1");
  on_record("gmail", kToday + 3 * kHour, Rule::raise, 8, 9);
  on_record("gmail", kToday + 5 * kHour, Rule::undo, 9, 8);
  // Not counted: a person's pin, a tier drop, a first fragment, a dry run, a decision that kept
  // the value, yesterday's changes, another pair's.
  on_record("gmail", kToday + 6 * kHour, Rule::override, 8, 4);
  on_record("gmail", kToday + 7 * kHour, Rule::tier_cap, 12, 10);
  on_record("gmail", kToday + 2 * kHour, Rule::initial, 6, 6);
  on_record("gmail", kToday + 8 * kHour, Rule::cut, 8, 5, false);
  on_record("gmail", kToday + 9 * kHour, Rule::settle, 8, 8);
  on_record("gmail", kToday - 2 * kHour, Rule::cut, 8, 6);
  on_record("gmail", kToday - 1 * kHour, Rule::raise, 6, 8);
  on_record("yahoo", kToday + 4 * kHour, Rule::cut, 6, 4);
  on_record("yahoo", kToday + 4 * kHour + kMinute, Rule::raise, 4, 6);
  traffic("gmail.com", 200, 100, kGmailThrottle);
  script({config_ok(), reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->held, IsEmpty());
  ASSERT_THAT(report->decisions, SizeIs(1));
  EXPECT_EQ(report->decisions[0].rule, Rule::severe_cut);
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 4);
}

TEST_F(CycleGuardTest, ASecondReloadWithin5MinutesIsHeldAndGoesThroughAfterThem) {
  manage("gmail", Tier::high);
  manage("yahoo", Tier::high);
  existing("gmail", 8);
  existing("yahoo", 6);
  traffic("gmail.com", 200, 100, kGmailThrottle);
  script({config_ok(), reloaded()});
  ASSERT_TRUE(cycle());
  ASSERT_EQ(value_in(fragments_.get(kPool, "gmail")), 4);

  // Yahoo's burst 4 minutes later: decided, but it would reload again.
  const PairState yahoo_before = *store_.pair(kPool, "yahoo");
  const std::optional<std::string> yahoo_fragment = fragments_.get(kPool, "yahoo");
  traffic("yahoo.com", 200, 100, kYahooThrottle);
  clock_.set(kT0 + 4 * kMinute);
  {
    FORBID_CALL(runner_, run(_, _));
    Expected<CycleReport> report = cycle();
    ASSERT_TRUE(report) << report.error().message;
    EXPECT_THAT(report->held, ElementsAre("high-rep-pool/yahoo: severe_cut 6 -> 3 held: the last "
                                          "reload was 240 s ago (at most one per 300 s)"));
    EXPECT_THAT(report->decisions, IsEmpty());
    EXPECT_THAT(report->changes, IsEmpty());
    EXPECT_FALSE(report->reloaded);
  }
  EXPECT_EQ(fragments_.get(kPool, "yahoo"), yahoo_fragment);
  EXPECT_EQ(store_.pair(kPool, "yahoo"), yahoo_before);
  EXPECT_THAT(store_.decisions(), SizeIs(1));

  clock_.set(kT0 + 5 * kMinute);
  calls_.clear();
  script({config_ok(), reloaded()});
  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->held, IsEmpty());
  EXPECT_EQ(calls_, (std::vector<Argv>{kTestConfig, kReload}));
  ASSERT_THAT(report->decisions, SizeIs(1));
  EXPECT_EQ(report->decisions[0].isp, "yahoo");
  EXPECT_EQ(report->decisions[0].rule, Rule::severe_cut);
  EXPECT_EQ(value_in(fragments_.get(kPool, "yahoo")), 3);
  EXPECT_EQ(store_.pair(kPool, "yahoo")->phase, Phase::verifying);
}

TEST_F(CycleGuardTest, ATierDropIsNeverHeldAndTakesTheOtherChangesAlong) {
  manage("gmail", Tier::high);
  manage("yahoo", Tier::high);
  existing("gmail", 8);
  existing("yahoo", 6);
  // Four changes of gmail today, the last reload a minute ago.
  for (int hour : {1, 3, 5}) on_record("gmail", kToday + hour * kHour, Rule::cut, 9, 8);
  on_record("gmail", kT0 - kMinute, Rule::raise, 7, 8);
  Overrides o;
  o.tiers.push_back(TierOverride{kPool, "gmail", Tier::medium, "postmaster tools", 9});
  overrides_.set(o);
  traffic("yahoo.com", 200, 100, kYahooThrottle);
  script({config_ok(), reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->held, IsEmpty());
  EXPECT_EQ(calls_, (std::vector<Argv>{kTestConfig, kReload}));
  ASSERT_THAT(report->decisions, SizeIs(2));
  EXPECT_EQ(report->decisions[0].rule, Rule::tier_cap);
  EXPECT_EQ(report->decisions[1].rule, Rule::severe_cut);
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 5);  // gmail medium: 3-5
  EXPECT_EQ(value_in(fragments_.get(kPool, "yahoo")), 3);
}

TEST_F(CycleGuardTest, RaisesWaitWhileMostPairsWithTrafficAreBeingCut) {
  manage("gmail", Tier::high);
  manage("yahoo", Tier::high);
  manage("outlook", Tier::high);
  manage("gmx", Tier::high);  // no traffic: not counted either way
  existing("gmail", 8);
  existing("yahoo", 6);
  existing("outlook", 6);
  existing("gmx", 3);
  const PairState gmail_before = *store_.pair(kPool, "gmail");
  const std::optional<std::string> gmail_fragment = fragments_.get(kPool, "gmail");
  clean_week("gmail.com");
  traffic("yahoo.com", 200, 100, kYahooThrottle);
  traffic("outlook.com", 200, 100, kOutlookThrottle);
  script({config_ok(), reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->held,
              ElementsAre("high-rep-pool/gmail: raise 8 -> 9 held: 2 of 3 pairs with traffic are "
                          "being cut or verified (raises wait above 50%)"));
  ASSERT_THAT(report->decisions, SizeIs(2));
  EXPECT_EQ(report->decisions[0].isp, "yahoo");
  EXPECT_EQ(report->decisions[1].isp, "outlook");
  EXPECT_EQ(value_in(fragments_.get(kPool, "yahoo")), 3);
  EXPECT_EQ(fragments_.get(kPool, "gmail"), gmail_fragment);
  EXPECT_EQ(store_.pair(kPool, "gmail"), gmail_before);
}

TEST_F(CycleGuardTest, ARaiseGoesThroughWhileAtMostHalfThePairsAreBeingCut) {
  manage("gmail", Tier::high);
  manage("yahoo", Tier::high);
  existing("gmail", 8);
  existing("yahoo", 6);
  clean_week("gmail.com");
  traffic("yahoo.com", 200, 100, kYahooThrottle);
  script({config_ok(), reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->held, IsEmpty());
  ASSERT_THAT(report->decisions, SizeIs(2));
  EXPECT_EQ(report->decisions[0].rule, Rule::raise);
  EXPECT_EQ(report->decisions[0].new_value, 9);
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 9);
  EXPECT_EQ(value_in(fragments_.get(kPool, "yahoo")), 3);
}

TEST_F(CycleVmtaDiagnosis, AVmtasStepUpWaitsWhileMostPairsAreBeingCut) {
  manage("gmail", Tier::high);
  manage("yahoo", Tier::high);
  manage("outlook", Tier::high);
  existing("yahoo", 6);
  existing("outlook", 6);
  first_cut();
  const std::vector<VmtaSetting> settings = store_.vmta_settings();

  // Six clean hours later the VMTA would step up, but yahoo and outlook are being cut.
  const UnixSeconds t = kT0 + 6 * kHour;
  clock_.set(t);
  one_bad_ip(100, 0, t - 20 * kMinute, t);
  for (const auto& [domain, diag] :
       {std::pair{"yahoo.com", kYahooThrottle}, std::pair{"outlook.com", kOutlookThrottle}}) {
    for (int i = 0; i < 300; ++i) {
      ScriptedSource::Line l;
      l.at = t - 20 * kMinute + i * 4;
      l.rcpt = "v" + std::to_string(i) + "@" + domain;
      l.source_ip = i % 2 == 0 ? "198.51.100.1" : "198.51.100.2";
      l.vmta = i % 2 == 0 ? "bulk-ip-1" : "bulk-ip-2";
      if (i % 3 == 0) {
        l.type = RecordType::deferred;
        l.diag = diag;
      }
      source_.append(std::move(l));
    }
  }
  script({config_ok(), reloaded()});
  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->held,
              ElementsAre("high-rep-pool/gmail VMTA gmail-ip-1: raise 4 -> 6 held: 2 of 3 pairs "
                          "with traffic are being cut or verified (raises wait above 50%)"));
  EXPECT_THAT(report->changes, SizeIs(2));  // the two cuts
  EXPECT_EQ(value_in(fragments_.get(kBadKey)), 4);
  EXPECT_EQ(store_.vmta_settings(), settings);
}

TEST_F(CycleGuardTest, OneChangePerPairPerWindow) {
  existing("gmail", 8);
  traffic("gmail.com", 200, 100, kGmailThrottle);
  script({config_ok(), reloaded()});
  ASSERT_TRUE(cycle());
  ASSERT_EQ(value_in(fragments_.get(kPool, "gmail")), 4);

  // The throttling goes on, at 10%: through the verification window nothing changes however
  // many cycles run, reloads allowed or not.
  for (UnixSeconds at : {5, 10, 20, 29}) {
    const UnixSeconds t = kT0 + at * kMinute;
    traffic_between("gmail.com", 45, 5, kGmailThrottle, t - 5 * kMinute, t);
    clock_.set(t);
    FORBID_CALL(runner_, run(_, _));
    Expected<CycleReport> report = cycle();
    ASSERT_TRUE(report) << report.error().message;
    EXPECT_THAT(report->decisions, IsEmpty()) << at;
    EXPECT_THAT(report->held, IsEmpty()) << at;
  }
  traffic_between("gmail.com", 45, 5, kGmailThrottle, kT0 + 29 * kMinute, kT0 + 30 * kMinute);

  // Then one change, on the figures since the last one only: not the burst that caused it.
  clock_.set(kT0 + 30 * kMinute);
  script({config_ok(), reloaded()});
  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_THAT(report->decisions, SizeIs(1));
  const Decision& d = report->decisions[0];
  EXPECT_EQ(d.rule, Rule::cut);
  EXPECT_EQ(d.old_value, 4);
  EXPECT_EQ(d.new_value, 3);  // 10% still refused: floor(4 x 0.9)
  EXPECT_EQ(d.figures.attempts, 250u);
  EXPECT_EQ(d.figures.throttle, 25u);
  EXPECT_EQ(store_.pair(kPool, "gmail")->last_change_at, kT0 + 30 * kMinute);
}

// ---------------------------------------------------------------------------------------------
// Warm-up: the fragment of a warming pair limits the message rate; a tier change rewrites it.

TEST_F(CycleTest, AWarmingPairsFirstFragmentLimitsTheMessageRate) {
  manage("gmail", Tier::warming);
  traffic("gmail.com", 50, 0, "");
  script({config_ok(), reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  const std::optional<std::string> fragment = fragments_.get(kPool, "gmail");
  ASSERT_TRUE(fragment);
  EXPECT_THAT(*fragment, HasSubstr("\nmax-smtp-out 2\n"));
  EXPECT_THAT(*fragment, HasSubstr("\nmax-msg-rate 50/h\n"));
  EXPECT_THAT(*fragment, HasSubstr("\nretry-after 30m\n"));
  const std::optional<PairState> stored = store_.pair(kPool, "gmail");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->warmup_stage, 0);
  EXPECT_EQ(stored->warmup_stage_at, kT0);
}

TEST_F(CycleTest, ATierOverrideEndingAWarmupRewritesTheSettingsWithTheValue) {
  manage("gmail", Tier::warming);
  script({config_ok(), reloaded(), config_ok(), reloaded()});
  ASSERT_TRUE(cycle());
  ASSERT_THAT(*fragments_.get(kPool, "gmail"), HasSubstr("max-msg-rate 50/h"));

  Overrides o;
  o.tiers.push_back(TierOverride{kPool, "gmail", Tier::medium, "postmaster tools", 9});
  overrides_.set(o);
  clock_.set(kT0 + 10 * kMinute);
  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_THAT(report->decisions, SizeIs(1));
  const Decision& d = report->decisions[0];
  EXPECT_EQ(d.rule, Rule::warmup);
  EXPECT_EQ(d.new_value, 2);
  EXPECT_EQ(d.reason, "tier warming -> medium: no max-msg-rate, PowerMTA's own retry-after");
  ASSERT_THAT(report->changes, SizeIs(1));
  const std::string fragment = *fragments_.get(kPool, "gmail");
  EXPECT_THAT(fragment, HasSubstr("\nmax-smtp-out 2\n"));
  EXPECT_THAT(fragment, Not(HasSubstr("\nmax-msg-rate")));
  EXPECT_THAT(fragment, Not(HasSubstr("\nretry-after")));
  EXPECT_TRUE(report->reloaded);
  EXPECT_EQ(store_.pair(kPool, "gmail")->tier, Tier::medium);

  // Nothing more to rewrite.
  clock_.set(kT0 + 20 * kMinute);
  report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->decisions, IsEmpty());
}

TEST_F(CycleTest, AfterTheWarmupTheConfiguredTierWarmingCountsAsMedium) {
  manage("gmail", Tier::warming);
  PairState s;
  s.pool = kPool;
  s.isp = "gmail";
  s.tier = Tier::medium;
  s.max_smtp_out = 3;
  s.last_safe = 3;
  s.last_change_at = kT0 - 30 * kDay;
  s.warmup_stage = 5;
  s.warmed_up = true;
  store_.put_pair(s);
  fragments_.put(kPool, "gmail", render_fragment(s, default_policy(), s.last_change_at, "warmup"));
  FORBID_CALL(runner_, run(_, _));

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_THAT(report->decisions, IsEmpty());
  EXPECT_EQ(store_.pair(kPool, "gmail")->tier, Tier::medium);
  EXPECT_THAT(*fragments_.get(kPool, "gmail"), Not(HasSubstr("max-msg-rate")));
}

TEST_F(CycleTest, APoolsFirstFragmentComesWithItsVmtasCommentOnlyOnes) {
  pool_map_->emplace("gmail-ip-1", kPool);
  pool_map_->emplace("gmail-ip-2", kPool);
  pool_map_->emplace("other-ip-1", "other-pool");
  fragments_.put(FragmentKey{kPool, "gmail", "gmail-ip-2"}, "# the operator's\n");
  script({config_ok(), reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_THAT(report->changes, SizeIs(2));
  EXPECT_EQ(report->changes[1].decision.vmta, "gmail-ip-1");
  EXPECT_EQ(report->changes[1].before, std::nullopt);
  const std::optional<std::string> inherit =
      fragments_.get(FragmentKey{kPool, "gmail", "gmail-ip-1"});
  ASSERT_TRUE(inherit);
  EXPECT_THAT(*inherit, HasSubstr("inherits the pool's settings"));
  EXPECT_THAT(*inherit, Not(HasSubstr("\nmax-smtp-out")));
  // An existing file is the operator's or an earlier sluice's: left alone.
  EXPECT_EQ(fragments_.get(FragmentKey{kPool, "gmail", "gmail-ip-2"}), "# the operator's\n");
  EXPECT_EQ(fragments_.get(FragmentKey{"other-pool", "gmail", "other-ip-1"}), std::nullopt);
  EXPECT_TRUE(report->reloaded);
}

TEST_F(CycleVmtaDiagnosis, APoolCutToTheVmtasValueOrBelowHandsTheVmtaBack) {
  first_cut();  // the pool at 8, gmail-ip-1 at 4
  const UnixSeconds t = kT0 + 40 * kMinute;
  clock_.set(t);
  for (int n = 1; n <= 4; ++n) ip_traffic(n, 70, 30, t - 20 * kMinute, t);
  script({config_ok(), reloaded()});

  Expected<CycleReport> report = cycle();
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_THAT(report->decisions, SizeIs(2));
  EXPECT_EQ(report->decisions[0].rule, Rule::severe_cut);
  EXPECT_EQ(report->decisions[0].new_value, 4);
  const Decision& vmta = report->decisions[1];
  EXPECT_EQ(vmta.vmta, kBadVmta);
  EXPECT_EQ(vmta.rule, Rule::settle);
  EXPECT_EQ(vmta.reason,
            "VMTA gmail-ip-1: the pool's value 4 is at or below its own 4: it inherits the "
            "pool's again");
  EXPECT_EQ(value_in(fragments_.get(kPool, "gmail")), 4);
  EXPECT_EQ(value_in(fragments_.get(kBadKey)), std::nullopt);
  EXPECT_THAT(store_.load_vmta_settings().value(), IsEmpty());
}
}  // namespace
}  // namespace sluice
