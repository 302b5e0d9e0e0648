// End-to-end: the clock jumping forwards (a bad NTP step, a VM resumed after days, a replay with
// --now), the counterpart of LoopE2E.AClockGoingBackChangesNothingAndCountsNothingTwice. Cycles
// run every 5 minutes with --now; then now jumps by hours or days while PowerMTA's log carries
// on, first with records stamped at the old time, then at the new one; then the clock comes back.
// Each cycle must exit 0, read each record once, and change nothing on a decision window that
// holds no evidence: an empty one, one whose records all lie elsewhere, or one of a few minutes.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "e2e_support.h"
#include "loop_support.h"

namespace {

using Json = nlohmann::json;
using sluice::e2e::append_file;
using sluice::e2e::bucket_totals;
using sluice::e2e::contains;
using sluice::e2e::count_records;
using sluice::e2e::iso;
using sluice::e2e::kDay;
using sluice::e2e::kHeader;
using sluice::e2e::kHour;
using sluice::e2e::kMinute;
using sluice::e2e::kNow;
using sluice::e2e::ProcessResult;
using sluice::e2e::Sandbox;
using sluice::e2e::slurp;
using sluice::e2e::Time;
using sluice::e2e::traffic;
using sluice::e2e::write_file;

constexpr Time kCycle = 5 * kMinute;
constexpr int kPerCycle = 50;  // 600 attempts an hour: a full window holds enough to act on

// The sandbox's log as PowerMTA writes it, and `once` cycles that must each read exactly what was
// logged since the one before and leave the database holding every record once.
class Timeline {
 public:
  Timeline() { write_file(box_.log(), kHeader); }

  const Sandbox& box() const { return box_; }

  // `attempts` records over [from, to), `throttled` of them 421s.
  void log(Time from, Time to, int attempts, int throttled) {
    const std::string lines = traffic(from, to, attempts, throttled, next_n_);
    next_n_ += attempts;
    append_file(box_.log(), lines);
    logged_ += lines;
    unread_ += attempts;
  }

  // One `once` at `now`: exit 0, every new record read, none twice. Returns its decisions.
  Json cycle(Time now) {
    const ProcessResult r = box_.sluice(now, {"--json", "once"});
    EXPECT_EQ(r.exit_code, 0) << "once at " << iso(now) << ": " << r.err;
    if (r.exit_code != 0) return Json::array();
    const Json out = Json::parse(r.out);
    EXPECT_EQ(out["records_read"], unread_) << "once at " << iso(now);
    unread_ = 0;
    EXPECT_EQ(bucket_totals(box_.database()), count_records(logged_)) << "after " << iso(now);
    return out["decisions"];
  }

  // Cycles every 5 minutes over (from, to], the log carrying on at 50 records per cycle with
  // `throttled` 421s among them.
  void cycles(Time from, Time to, int throttled) {
    for (Time now = from + kCycle; now <= to; now += kCycle) {
      log(now - kCycle, now, kPerCycle, throttled);
      cycle(now);
    }
  }

  std::string fragment() const { return slurp(box_.fragment()); }
  std::size_t pmta_calls() const { return box_.calls().size(); }
  Json pair(Time now) const { return box_.json(now, "status")["pools"].at(0); }

 private:
  Sandbox box_;
  std::string logged_;  // every record logged so far
  int next_n_ = 0;
  int unread_ = 0;
};

// What a cycle that must change nothing shows: no decision, the fragment and pmta untouched.
void expect_no_change(const Json& decisions, const Timeline& t, const std::string& fragment,
                      std::size_t calls, const std::string& when) {
  EXPECT_TRUE(decisions.empty()) << when << ": " << decisions.dump(2);
  EXPECT_EQ(t.fragment(), fragment) << when;
  EXPECT_EQ(t.pmta_calls(), calls) << when;
}

// A steady pair (2% throttled, no cut), an hour of cycles; then now jumps by `jump`. The jump
// cycle reads the old timeline's next 5 minutes and the new one's first 5 minutes, heavily
// throttled but too few attempts to act on; the next cycle is back at the old time + 10 min.
void jump_on_a_steady_pair(Time jump) {
  Timeline t;
  t.log(kNow - kHour, kNow, 600, 12);
  const Json first = t.cycle(kNow);
  ASSERT_EQ(first.size(), 1u) << first.dump(2);
  EXPECT_EQ(first[0]["rule"], "initial");
  const Time last = kNow + 55 * kMinute;
  t.cycles(kNow, last, 1);
  const std::string fragment = t.fragment();
  ASSERT_TRUE(contains(fragment, "\nmax-smtp-out 6\n")) << fragment;
  const std::size_t calls = t.pmta_calls();
  ASSERT_EQ(calls, 2u);

  const Time jumped = last + jump;
  t.log(last, last + kCycle, kPerCycle, 1);
  t.log(jumped - kCycle, jumped, kPerCycle, kPerCycle / 2);
  expect_no_change(t.cycle(jumped), t, fragment, calls, "the jump cycle");
  const Json after_jump = t.pair(jumped);
  EXPECT_EQ(after_jump["phase"], "steady");
  EXPECT_EQ(after_jump["max_smtp_out"], 6);

  // Back at the old time: the records ahead are not evidence, the old ones were read once.
  const Time back = last + 2 * kCycle;
  t.log(last + kCycle, back, kPerCycle, 1);
  expect_no_change(t.cycle(back), t, fragment, calls, "back at the old time");
  EXPECT_EQ(t.box().decisions(back).size(), 1u) << "only the first cycle's initial fragment";
}

TEST(ClockE2E, ASixHourJumpForwardChangesNothingAndCountsNothingTwice) {
  jump_on_a_steady_pair(6 * kHour);
}

TEST(ClockE2E, AThreeDayJumpForwardChangesNothingAndCountsNothingTwice) {
  jump_on_a_steady_pair(3 * kDay);
}

// A cut being verified when the clock jumps three days: its verification window ends inside the
// jump, and the decision window at the new time holds no record (those logged since the cut lie
// three days back). No verdict on that: the pair stays verifying. Back at the old time, the
// window holds the 30 minutes logged since the cut, and the verdict is made on them.
TEST(ClockE2E, AJumpForwardDuringAVerificationWaitsForTrafficBeforeItsVerdict) {
  Timeline t;
  t.log(kNow - kHour, kNow, 600, 60);  // 10% throttled: a 30% cut, 6 -> 4
  const Json cut = t.cycle(kNow);
  ASSERT_EQ(cut.size(), 1u) << cut.dump(2);
  ASSERT_EQ(cut[0]["rule"], "cut");
  const Time last = kNow + 20 * kMinute;  // inside the 30 minutes of verification
  t.cycles(kNow, last, 0);
  const std::string fragment = t.fragment();
  ASSERT_TRUE(contains(fragment, "\nmax-smtp-out 4\n")) << fragment;
  const std::size_t calls = t.pmta_calls();
  ASSERT_EQ(t.pair(last)["phase"], "verifying");

  const Time jumped = last + 3 * kDay;
  t.log(last, last + kCycle, kPerCycle, 0);
  expect_no_change(t.cycle(jumped), t, fragment, calls, "the jump cycle");
  EXPECT_EQ(t.pair(jumped)["phase"], "verifying");

  const Time back = last + 2 * kCycle;  // kNow + 30 min: the verification window is over
  t.log(last + kCycle, back, kPerCycle, 0);
  const Json verdict = t.cycle(back);
  ASSERT_EQ(verdict.size(), 1u) << verdict.dump(2);
  EXPECT_EQ(verdict[0]["rule"], "settle");
  EXPECT_EQ(verdict[0]["new_value"], 4);
  EXPECT_EQ(verdict[0]["figures"]["attempts"], 6 * kPerCycle) << "the 30 minutes since the cut";
  EXPECT_EQ(verdict[0]["figures"]["throttle"], 0);
  EXPECT_EQ(t.fragment(), fragment);
  EXPECT_EQ(t.pmta_calls(), calls);
  EXPECT_EQ(t.pair(back)["phase"], "steady");
}

// A week "passes" in one jump: the quiet week a raise needs is one of traffic (raise_min_busy_days
// of the 7 with raise_min_daily_attempts), not of time. Before the jump, 2% throttling holds
// raises; after it, an hour of clean traffic at the new time: the last change is long ago and the
// window clean, so only the busy days can hold the raise. With the default 4 they do; with 1 the
// same hour raises, which shows that the days are what held it.
TEST(ClockE2E, AWeekJumpedOverIsNoQuietWeekForARaise) {
  for (const int busy_days : {4, 1}) {
    SCOPED_TRACE("raise_min_busy_days = " + std::to_string(busy_days));
    Timeline t;
    if (busy_days != 4) {
      write_file(t.box().config(), slurp(t.box().config()) + "\n[policy]\nraise_min_busy_days = " +
                                       std::to_string(busy_days) + "\n");
    }
    t.log(kNow - kHour, kNow, 600, 12);
    ASSERT_EQ(t.cycle(kNow).size(), 1u);  // the initial fragment, 6
    const Time last = kNow + 55 * kMinute;
    t.cycles(kNow, last, 1);
    const std::string fragment = t.fragment();
    const std::size_t calls = t.pmta_calls();

    const Time jumped = last + 8 * kDay;
    t.log(last, last + kCycle, kPerCycle, 1);
    t.log(jumped - kCycle, jumped, kPerCycle, 0);
    expect_no_change(t.cycle(jumped), t, fragment, calls, "the jump cycle");

    std::vector<Json> raises;
    for (Time now = jumped + kCycle; now <= jumped + kHour; now += kCycle) {
      t.log(now - kCycle, now, kPerCycle, 0);
      for (const Json& d : t.cycle(now)) {
        if (d["rule"] == "raise") raises.push_back(d);
      }
    }
    if (busy_days == 4) {
      EXPECT_TRUE(raises.empty()) << raises.front().dump(2);
      EXPECT_EQ(t.fragment(), fragment);
    } else {
      ASSERT_EQ(raises.size(), 1u);
      EXPECT_EQ(raises[0]["old_value"], 6);
      EXPECT_EQ(raises[0]["new_value"], 7);
    }
  }
}

}  // namespace
