// End-to-end runs of the operator-like policy (issue 6): `sluice once` cycle by cycle with --now
// advancing, against a fake pmta, on accounting records written by a model of Gmail that reads
// back the max-smtp-out sluice wrote. Each run checks the fragments, pmta's calls, status and
// the history's decisions.

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "controller/fragment.h"
#include "tests/e2e/loop_support.h"

namespace sluice::e2e {
namespace {

// ---- A pool of four IPs at Gmail -------------------------------------------------------------

constexpr const char* kPool = "gmail-pool";
constexpr int kIpCount = 4;
constexpr int kOperatorValue = 8;  // the operator's max-smtp-out before sluice manages the pool

std::string vmta_of(int ip) {
  return "gmail-ip-" + std::to_string(ip + 1);
}
std::string address_of(int ip) {
  return "198.51.100." + std::to_string(11 + ip);
}

// What Gmail answers, as PowerMTA logs it (dsnStatus, dsnDiag).
enum class Answer { delivered, try_again, unsolicited, mailbox_full, too_quickly };

struct Reply {
  const char* status;
  std::string diag;
};

Reply reply(Answer a, const std::string& ip) {
  switch (a) {
    case Answer::delivered:
      return {"2.0.0 (success)", "smtp;250 2.0.0 OK  1795780000 x - gsmtp"};
    case Answer::try_again:
      return {"4.7.0 (other or undefined protocol status)",
              "smtp;421-4.7.0 [" + ip +
                  "      15] Try again later, closing connection. (EHLO) x - gsmtp"};
    case Answer::unsolicited:
      return {"4.7.28 (other or undefined protocol status)",
              "smtp;421-4.7.28 [" + ip +
                  "      15] Our system has detected an unusual rate of unsolicited mail "
                  "originating from your IP address. To protect our users from spam, mail sent "
                  "from your IP address has been temporarily rate limited. x - gsmtp"};
    case Answer::mailbox_full:
      return {"4.2.2 (mailbox full)",
              "smtp;452-4.2.2 The email account that you tried to reach is over quota. Please "
              "direct the recipient to https://support.google.com/mail/?p=OverQuotaTemp x - gsmtp"};
    case Answer::too_quickly:
      return {"4.2.1 (mailbox busy)",
              "smtp;450-4.2.1 The user you are trying to contact is receiving mail too quickly. "
              "Please resend your message at a later time. x - gsmtp"};
  }
  return {"", ""};
}

// One accounting record of `ip`; `refused` makes it a tq record (a connection refused: no
// recipient).
std::string record(Time t, int ip, Answer answer, bool refused, long n) {
  const std::string when = format_utc(t, "%Y-%m-%d %H:%M:%S+0000");
  const std::string rcpt = refused ? "" : "user" + std::to_string(n) + "@gmail.com";
  const Reply r = reply(answer, address_of(ip));
  const std::string type = answer == Answer::delivered ? "d" : refused ? "tq" : "t";
  const std::string action = answer == Answer::delivered ? "relayed" : "delayed";
  return type + "," + when + "," + when + ",news@example.com," + rcpt + ",," + action + "," +
         r.status + "," + csv_quoted(r.diag) +
         ",gmail-smtp-in.l.google.com (142.250.102.27),,smtp,,smtp," + address_of(ip) +
         ",142.250.102.27,PIPELINING,2048," + vmta_of(ip) + ",job-1,,gmail.com/" + vmta_of(ip) +
         ",\n";
}

// One IP's records over a span: deliveries, throttle deferrals in session (t), refused
// connections (tq, same text) and recipient-level deferrals (t).
struct Mix {
  int delivered = 0;
  int throttled = 0;
  int refused = 0;
  int mailbox_full = 0;
  int too_quickly = 0;
  Answer throttle = Answer::try_again;
  int attempts() const { return delivered + throttled + refused + mailbox_full + too_quickly; }
};

// `attempts` attempts of which the share Gmail refuses above its `limit` for the `value` in
// force: (value - limit) / value, the connections it turns away, half refused at connect.
Mix limited(int attempts, int value, std::optional<int> limit, Answer text = Answer::try_again) {
  Mix m;
  m.throttle = text;
  const int over = limit && value > *limit ? value - *limit : 0;
  const int throttled = (attempts * over + value / 2) / value;
  m.refused = throttled / 2;
  m.throttled = throttled - m.refused;
  m.delivered = attempts - throttled;
  return m;
}

// A span's records, in time order, each IP's kinds interleaved evenly so that any sub-span
// holds its share.
class Log {
 public:
  explicit Log(fs::path path) : path_(std::move(path)) { write_file(path_, kHeader); }

  void append(Time from, Time to, const std::array<Mix, kIpCount>& mixes) {
    std::vector<std::pair<Time, std::string>> lines;
    for (int ip = 0; ip < kIpCount; ++ip) {
      const Mix& m = mixes[ip];
      const std::array<std::pair<int, std::pair<Answer, bool>>, 5> kinds = {{
          {m.delivered, {Answer::delivered, false}},
          {m.throttled, {m.throttle, false}},
          {m.refused, {m.throttle, true}},
          {m.mailbox_full, {Answer::mailbox_full, false}},
          {m.too_quickly, {Answer::too_quickly, false}},
      }};
      const long total = m.attempts();
      std::array<long, 5> emitted{};
      for (long i = 0; i < total; ++i) {
        // The kind furthest behind its even schedule.
        std::size_t best = 0;
        long behind = -1;
        for (std::size_t k = 0; k < kinds.size(); ++k) {
          if (emitted[k] >= kinds[k].first) continue;
          const long lag = kinds[k].first * (i + 1) - emitted[k] * total;
          if (lag > behind) {
            behind = lag;
            best = k;
          }
        }
        ++emitted[best];
        const Time t = from + (to - from) * i / total;
        lines.emplace_back(
            t, record(t, ip, kinds[best].second.first, kinds[best].second.second, serial_++));
      }
    }
    std::stable_sort(lines.begin(), lines.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string text;
    for (const auto& [t, line] : lines) text += line;
    append_file(path_, text);
  }

 private:
  fs::path path_;
  long serial_ = 0;
};

std::array<Mix, kIpCount> same_for_all(const Mix& m) {
  return {m, m, m, m};
}

// The Sandbox with its pool replaced by gmail-pool of four VMTAs, and the operator's fragment
// (value 8) in place, so that the pool's fragment changes only by sluice's decisions.
class PoolOfFour {
 public:
  PoolOfFour() : log(box.log()) {
    std::string toml = slurp(box.config());
    toml = toml.substr(0, toml.find("\n[[pool]]"));
    toml += "\n[[pool]]\nname = \"" + std::string(kPool) + "\"\nvmtas = [";
    for (int ip = 0; ip < kIpCount; ++ip) toml += (ip ? ", \"" : "\"") + vmta_of(ip) + "\"";
    toml += "]\ntier = \"high\"\nisps = [\"gmail\"]\n";
    write_file(box.config(), toml);
    fs::create_directories(pool_fragment().parent_path());
    write_file(pool_fragment(), operator_fragment());
  }

  static std::string operator_fragment() {
    return "# gmail-pool at Gmail, set by hand\nmax-smtp-out " + std::to_string(kOperatorValue) +
           "\nmax-connect-rate 1/s\n";
  }
  fs::path pool_fragment() const { return box.fragments() / kPool / "gmail.conf"; }
  fs::path vmta_fragment(int ip) const {
    return box.fragments() / kPool / "gmail" / (vmta_of(ip) + ".conf");
  }
  int pool_value() const {
    const std::optional<int> v = fragment_max_smtp_out(slurp(pool_fragment()));
    EXPECT_TRUE(v.has_value()) << slurp(pool_fragment());
    return v.value_or(0);
  }
  // What one VMTA runs with: its own fragment's value, else the pool's.
  int vmta_value(int ip) const {
    if (fs::exists(vmta_fragment(ip))) {
      if (std::optional<int> v = fragment_max_smtp_out(slurp(vmta_fragment(ip)))) return *v;
    }
    return pool_value();
  }

  // Appends [now, now + step) and runs one cycle at its end: the cycle's report.
  Json cycle(Time step, const std::array<Mix, kIpCount>& mixes) {
    log.append(now, now + step, mixes);
    now += step;
    return once();
  }
  Json once() {
    const ProcessResult r = box.sluice(now, {"--json", "once"});
    EXPECT_EQ(r.exit_code, 0) << iso(now) << ": " << r.err;
    if (r.exit_code != 0) return Json{{"decisions", Json::array()}, {"held", Json::array()}};
    return Json::parse(r.out);
  }
  Json status_row() { return box.json(now, "status")["pools"][0]; }
  // The pool's own decisions (not its VMTAs'), of `rule` if given.
  std::vector<Json> pool_decisions(const std::string& rule = "") const {
    std::vector<Json> out;
    for (const Json& d : box.decisions(now)) {
      if (d["vmta"] == "" && (rule.empty() || d["rule"] == rule)) out.push_back(d);
    }
    return out;
  }

  Sandbox box;
  Log log;
  Time now = kNow;
};

std::vector<int> values_of(const std::vector<Json>& decisions) {
  std::vector<int> out;
  for (const Json& d : decisions) out.push_back(d["new_value"].get<int>());
  return out;
}

Time at_of(const Json& decision) {
  const std::string text = decision["at"].get<std::string>();
  std::tm tm{};
  ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return static_cast<Time>(::timegm(&tm));
}

// ---- 1. A single bad IP in a pool of four ----------------------------------------------------

TEST(OperatorE2E, ASingleBadIpGetsItsOwnValueAndThePoolKeepsItsOwn) {
  PoolOfFour pool;
  // gmail-ip-3's reputation dips for three hours: Gmail accepts 4 connections from it; the
  // other IPs see a stray 421 per half hour (under 1%).
  constexpr int kBad = 2;
  const Time dip_end = kNow + 3 * kHour;
  const auto traffic = [&](Time step) {
    std::array<Mix, kIpCount> m;
    const int attempts = static_cast<int>(300 * step / kHour);  // 300 an hour per IP
    for (int ip = 0; ip < kIpCount; ++ip) {
      if (ip == kBad) {
        const bool dip = pool.now < dip_end;
        m[ip] = limited(attempts, pool.vmta_value(ip), dip ? std::optional<int>(4) : std::nullopt);
      } else {
        m[ip].throttled = step >= 30 * kMinute ? 1 : 0;
        m[ip].delivered = attempts - m[ip].throttled;
      }
    }
    return m;
  };

  // The hour before the first cycle: gmail-ip-3 at the pool's 8 against Gmail's 4, half its
  // attempts throttled (severe: above 15%), the pool as a whole 12.5%.
  pool.now = kNow - kHour;
  Json report = pool.cycle(kHour, traffic(kHour));
  ASSERT_TRUE(report.contains("decisions")) << report.dump(2);
  std::vector<Json> vmta_cuts;
  for (const Json& d : report["decisions"]) {
    EXPECT_EQ(d["vmta"], vmta_of(kBad)) << "only the bad IP's VMTA is touched: " << d.dump(2);
    if (d["rule"] == "severe_cut") vmta_cuts.push_back(d);
  }
  ASSERT_EQ(vmta_cuts.size(), 1u) << report.dump(2);
  EXPECT_EQ(vmta_cuts[0]["old_value"], kOperatorValue);
  EXPECT_EQ(vmta_cuts[0]["new_value"], 4);  // 50% off the pool's 8
  EXPECT_TRUE(contains(vmta_cuts[0]["reason"].get<std::string>(), "the pool keeps 8"))
      << vmta_cuts[0].dump(2);

  // The remedy is gmail-ip-3's own fragment, a directive-only file for its <domain> block.
  ASSERT_TRUE(fs::exists(pool.vmta_fragment(kBad)));
  const std::string own = slurp(pool.vmta_fragment(kBad));
  EXPECT_EQ(fragment_max_smtp_out(own), 4) << own;
  EXPECT_TRUE(contains(own, "\nbackoff-max-smtp-out 2\n")) << own;
  EXPECT_EQ(slurp(pool.pool_fragment()), PoolOfFour::operator_fragment());
  for (int ip = 0; ip < kIpCount; ++ip) {
    if (ip != kBad) {
      EXPECT_FALSE(fs::exists(pool.vmta_fragment(ip))) << vmta_of(ip);
    }
  }
  EXPECT_EQ(pool.box.calls(), (std::vector<std::string>{"test config", "reload"}));

  Json row = pool.status_row();
  EXPECT_EQ(row["max_smtp_out"], kOperatorValue);
  EXPECT_EQ(row["phase"], "steady");
  EXPECT_EQ(row["diagnosis"], "concentrated on " + vmta_of(kBad));
  EXPECT_EQ(row["vmta_overrides"],
            (Json{{vmta_of(kBad), "held at 4 by the per-IP diagnosis since " + iso(kNow)}}))
      << row.dump(2);

  // 19 hours on: 5-minute cycles for the first hour, then every 30 minutes. The VMTA climbs
  // back on its own (after 6 clean hours, half way, then to the pool's value); the pool's
  // fragment is never rewritten.
  std::vector<Json> vmta_changes = vmta_cuts;
  while (pool.now < kNow + 19 * kHour) {
    const Time step = pool.now < kNow + kHour ? 5 * kMinute : 30 * kMinute;
    report = pool.cycle(step, traffic(step));
    for (const Json& d : report["decisions"]) {
      EXPECT_EQ(d["vmta"], vmta_of(kBad)) << iso(pool.now) << ": " << d.dump(2);
      if (d["old_value"] != d["new_value"]) vmta_changes.push_back(d);
    }
    EXPECT_EQ(slurp(pool.pool_fragment()), PoolOfFour::operator_fragment()) << iso(pool.now);
    EXPECT_LE(pool.vmta_value(kBad), pool.pool_value()) << iso(pool.now);
  }
  // Each step half the distance to the pool's 8 (at least 1), after 6 clean hours.
  ASSERT_EQ(vmta_changes.size(), 4u);
  EXPECT_EQ(values_of(vmta_changes), (std::vector<int>{4, 6, 7, 8}));
  for (std::size_t i = 1; i < vmta_changes.size(); ++i) {
    EXPECT_EQ(vmta_changes[i]["rule"], "raise") << vmta_changes[i].dump(2);
    EXPECT_EQ(at_of(vmta_changes[i]), kNow + static_cast<Time>(i) * 6 * kHour);
  }
  EXPECT_TRUE(contains(vmta_changes[3]["reason"].get<std::string>(), "back to the pool's value"))
      << vmta_changes[3].dump(2);
  // Back with the pool: its fragment stays (PowerMTA includes it) but sets nothing.
  EXPECT_EQ(fragment_max_smtp_out(slurp(pool.vmta_fragment(kBad))), std::nullopt)
      << slurp(pool.vmta_fragment(kBad));
  EXPECT_EQ(pool.box.calls().size(), 8u);  // four changes, each test config + reload
  EXPECT_TRUE(pool.pool_decisions().empty()) << pool.box.decisions(pool.now).dump(2);
  row = pool.status_row();
  EXPECT_EQ(row["vmta_overrides"], Json::object());
  EXPECT_EQ(row["diagnosis"], "spread");
  EXPECT_EQ(row["max_smtp_out"], kOperatorValue);
}

// ---- 2. Recipient-level deferrals ------------------------------------------------------------

TEST(OperatorE2E, RecipientLevelDeferralsNeverCutThePool) {
  PoolOfFour pool;
  // 8% deferred for six hours, all of them about one recipient (mailbox full, one recipient
  // receiving too quickly): above the 5% that flags the pair, nothing concurrency causes.
  Mix mailboxes;
  mailboxes.delivered = 46;
  mailboxes.mailbox_full = 3;
  mailboxes.too_quickly = 1;
  pool.now = kNow - 30 * kMinute;
  for (int i = 0; i < 13; ++i) {
    pool.cycle(30 * kMinute, same_for_all(mailboxes));
    EXPECT_EQ(slurp(pool.pool_fragment()), PoolOfFour::operator_fragment()) << iso(pool.now);
  }
  ASSERT_EQ(pool.now, kNow + 6 * kHour);
  const std::vector<Json> decisions = pool.pool_decisions();
  ASSERT_EQ(decisions.size(), 1u) << pool.box.decisions(pool.now).dump(2);
  EXPECT_EQ(decisions[0]["rule"], "investigate");
  EXPECT_EQ(at_of(decisions[0]), kNow);
  EXPECT_EQ(decisions[0]["old_value"], kOperatorValue);
  EXPECT_EQ(decisions[0]["new_value"], kOperatorValue);
  EXPECT_TRUE(contains(decisions[0]["reason"].get<std::string>(),
                       "8.00% (16 of 200 attempts; recipient 16)"))
      << decisions[0].dump(2);

  Json row = pool.status_row();
  EXPECT_EQ(row["phase"], "investigate");
  EXPECT_EQ(row["max_smtp_out"], kOperatorValue);
  EXPECT_DOUBLE_EQ(row["deferral_rate_1h"].get<double>(), 0.08);
  EXPECT_DOUBLE_EQ(row["throttle_rate_1h"].get<double>(), 0.0);
  EXPECT_EQ(row["diagnosis"], "spread");
  EXPECT_EQ(row["last_change"], nullptr);
  EXPECT_TRUE(pool.box.calls().empty()) << "nothing changed, nothing reloaded";

  // The deferrals end: the flag goes once the window is under 5% (half clean: 4%).
  Mix clean;
  clean.delivered = 50;
  pool.cycle(30 * kMinute, same_for_all(clean));
  const std::vector<Json> after = pool.pool_decisions();
  ASSERT_EQ(after.size(), 2u) << pool.box.decisions(pool.now).dump(2);
  EXPECT_EQ(after[1]["rule"], "settle");
  EXPECT_EQ(after[1]["new_value"], kOperatorValue);
  EXPECT_EQ(pool.status_row()["phase"], "steady");
  EXPECT_EQ(slurp(pool.pool_fragment()), PoolOfFour::operator_fragment());
  EXPECT_TRUE(pool.box.calls().empty());
}

// ---- 3. Deferrals that cuts do not cure --------------------------------------------------------

TEST(OperatorE2E, CutsWithoutEffectStopAtTwoAndAreUndoneStepByStep) {
  PoolOfFour pool;
  // 10% 421s spread over the four IPs whatever the value, for 14 hours from noon; then clean.
  const Time incident_end = kNow + 14 * kHour;
  Mix throttled;  // per IP and half hour: 5 of 50
  throttled.delivered = 45;
  throttled.throttled = 3;
  throttled.refused = 2;
  Mix clean;
  clean.delivered = 50;
  pool.now = kNow - 30 * kMinute;
  std::vector<int> values;  // the pool's fragment after each cycle
  std::vector<std::string> held;
  while (pool.now < incident_end + 2 * kHour) {
    const Json report =
        pool.cycle(30 * kMinute, same_for_all(pool.now < incident_end ? throttled : clean));
    for (const Json& h : report["held"]) held.push_back(iso(pool.now) + " " + h.get<std::string>());
    values.push_back(pool.pool_value());
    EXPECT_LE(pool.pool_value(), kOperatorValue);
    EXPECT_GE(pool.pool_value(), 4) << "never walked down further than two cuts";
    if (pool.now == kNow + kHour) {
      // Right after the verdict on the second cut, status says why it stopped cutting.
      const Json row = pool.status_row();
      EXPECT_EQ(row["phase"], "no-effect");
      EXPECT_EQ(row["max_smtp_out"], 4);
      const std::string warning =
          row["warning"].is_string() ? row["warning"].get<std::string>() : "";
      EXPECT_TRUE(contains(warning, "the change addressed the wrong variable")) << row.dump(2);
      EXPECT_TRUE(contains(warning, "undone step by step back to 8")) << warning;
      const ProcessResult text = pool.box.sluice(pool.now, {"status"});
      EXPECT_TRUE(contains(text.out, std::string(kPool) + "/gmail no-effect: the change addressed"))
          << text.out;
    }
  }

  // Over 16 hours: two cuts (8 -> 5 -> 4), never a third.
  const std::vector<Json> cuts = pool.pool_decisions("cut");
  ASSERT_EQ(cuts.size(), 2u) << pool.box.decisions(pool.now).dump(2);
  EXPECT_TRUE(pool.pool_decisions("severe_cut").empty());
  EXPECT_EQ(values_of(cuts), (std::vector<int>{5, 4}));
  EXPECT_EQ(at_of(cuts[0]), kNow);
  EXPECT_EQ(at_of(cuts[1]), kNow + 30 * kMinute);  // the first cut's 30-minute verdict
  EXPECT_TRUE(contains(cuts[1]["reason"].get<std::string>(), "the cut showed no effect"))
      << cuts[1].dump(2);

  // The second cut's verdict: no effect again, so phase no-effect.
  const std::vector<Json> no_effect = pool.pool_decisions("no_effect");
  ASSERT_EQ(no_effect.size(), 1u);
  EXPECT_EQ(at_of(no_effect[0]), kNow + kHour);
  EXPECT_EQ(no_effect[0]["phase"], "no-effect");
  EXPECT_TRUE(contains(no_effect[0]["reason"].get<std::string>(),
                       "wrong variable or something else is going on: throttle deferral rate "
                       "10.00% (20 of 200 attempts"))
      << no_effect[0].dump(2);

  // Undone half the distance per 30-minute window: 4 -> 6 -> 7, then the last step waits for
  // the next UTC day (at most 4 changes per pair per day: two cuts and two undos today).
  const std::vector<Json> undos = pool.pool_decisions("undo");
  ASSERT_EQ(undos.size(), 3u) << pool.box.decisions(pool.now).dump(2);
  EXPECT_EQ(values_of(undos), (std::vector<int>{6, 7, 8}));
  EXPECT_EQ(at_of(undos[0]), kNow + 90 * kMinute);
  EXPECT_EQ(at_of(undos[1]), kNow + 2 * kHour);
  EXPECT_EQ(at_of(undos[2]), kNow + 12 * kHour);  // midnight
  for (const Json& u : undos) EXPECT_EQ(u["phase"], "no-effect") << u.dump(2);
  ASSERT_FALSE(held.empty());
  EXPECT_EQ(held.front(), iso(kNow + 150 * kMinute) + " " + kPool +
                              "/gmail: undo 7 -> 8 held: 4 changes today already (at most 4)");
  EXPECT_EQ(held.size(), 19u);  // 14:30 to 23:30

  // The phase ends once a whole window is free of throttle signals (an hour after they stop).
  const std::vector<Json> decisions = pool.pool_decisions();
  EXPECT_EQ(decisions.back()["rule"], "settle");
  EXPECT_EQ(at_of(decisions.back()), incident_end + kHour);
  EXPECT_EQ(pool.status_row()["phase"], "steady");
  EXPECT_EQ(pool.pool_value(), kOperatorValue);
  // Five changes, each a test config and a reload.
  EXPECT_EQ(pool.box.calls().size(), 10u);
}

// ---- 4. A 45-minute burst of 421s --------------------------------------------------------------

// A day from noon: an hour of traffic before, then cycles every 5 minutes for the first 90 and
// every 30 after; when the pool's value was first cut and when it was back at the operator's, and
// its lowest.
struct BurstDay {
  std::optional<Time> first_cut_at;
  std::optional<Time> regained_at;
  int lowest = kOperatorValue;
};

template <class Traffic>
BurstDay run_burst_day(PoolOfFour& pool, const Traffic& traffic) {
  BurstDay day;
  pool.now = kNow - kHour;
  pool.cycle(kHour, traffic(kHour));
  while (pool.now < kNow + 24 * kHour) {
    const Time step = pool.now < kNow + 90 * kMinute ? 5 * kMinute : 30 * kMinute;
    pool.cycle(step, traffic(step));
    const int value = pool.pool_value();
    day.lowest = std::min(day.lowest, value);
    if (value < kOperatorValue && !day.first_cut_at) day.first_cut_at = pool.now;
    if (day.first_cut_at && value == kOperatorValue && !day.regained_at) {
      day.regained_at = pool.now;
    }
  }
  return day;
}

// From noon for 45 minutes Gmail grants the pool's queues 3 connections (a 421 storm: 5 of 8
// connections refused); before and after, no limit. 300 attempts an hour per IP.
TEST(OperatorE2E, ABurstOf421sIsCutWithinOneCycleAndRegainedWithinADay) {
  PoolOfFour pool;
  const Time burst_end = kNow + 45 * kMinute;
  const auto traffic = [&](Time step) {
    std::array<Mix, kIpCount> m;
    const bool burst = pool.now >= kNow && pool.now < burst_end;
    for (int ip = 0; ip < kIpCount; ++ip) {
      m[ip] = limited(static_cast<int>(300 * step / kHour), pool.vmta_value(ip),
                      burst ? std::optional<int>(3) : std::nullopt);
    }
    return m;
  };
  const BurstDay day = run_burst_day(pool, traffic);
  const std::optional<Time>& first_cut_at = day.first_cut_at;
  const std::optional<Time>& regained_at = day.regained_at;
  // The first 5-minute cycle of the burst cuts: 64 of its 100 attempts throttled, 5.3% of the
  // hour's 1200.
  ASSERT_TRUE(first_cut_at.has_value());
  EXPECT_EQ(*first_cut_at, kNow + 5 * kMinute);
  const std::vector<Json> cuts = pool.pool_decisions("cut");
  ASSERT_EQ(cuts.size(), 2u) << pool.box.decisions(pool.now).dump(2);
  // 30% off, then, at the verdict, sized by what is still refused (40% at 5): 5 * 0.6 = 3.
  EXPECT_EQ(values_of(cuts), (std::vector<int>{5, 3}));
  EXPECT_EQ(at_of(cuts[1]), kNow + 35 * kMinute);
  EXPECT_TRUE(contains(cuts[1]["reason"].get<std::string>(), "the cut worked too little"))
      << cuts[1].dump(2);
  EXPECT_EQ(day.lowest, 3);
  const std::vector<Json> settles = pool.pool_decisions("settle");
  ASSERT_EQ(settles.size(), 1u);
  EXPECT_EQ(at_of(settles[0]), kNow + 65 * kMinute);

  // Probes every 6 clean hours (a connection-class incident), half the distance each: 3 -> 6
  // -> 7 -> 8, none taken back.
  const std::vector<Json> probes = pool.pool_decisions("recover");
  ASSERT_EQ(probes.size(), 3u) << pool.box.decisions(pool.now).dump(2);
  EXPECT_EQ(values_of(probes), (std::vector<int>{6, 7, 8}));
  EXPECT_GE(at_of(probes[0]), at_of(cuts[1]) + 6 * kHour);
  EXPECT_GE(at_of(probes[1]), at_of(probes[0]) + 6 * kHour);
  EXPECT_GE(at_of(probes[2]), at_of(probes[1]) + 6 * kHour);
  EXPECT_TRUE(pool.pool_decisions("undo").empty());
  ASSERT_TRUE(regained_at.has_value());
  EXPECT_EQ(*regained_at, kNow + 19 * kHour);
  EXPECT_LE(*regained_at - kNow, kDay);
  EXPECT_EQ(pool.status_row()["phase"], "steady");
  EXPECT_EQ(pool.box.calls().size(), 10u);  // five changes
}

// The same 45 minutes, but Gmail's 421s do not depend on the value: 70% of the attempts
// deferred (a storm on its side), then nothing. The pool should be back at 8 within a day.
TEST(OperatorE2E, AHeavyBurstThatIgnoresTheValueIsStillRegainedWithinADay) {
  PoolOfFour pool;
  const Time burst_end = kNow + 45 * kMinute;
  const auto traffic = [&](Time step) {
    const int attempts = static_cast<int>(300 * step / kHour);
    Mix m;
    m.delivered = attempts;
    if (pool.now >= kNow && pool.now < burst_end) {
      const int throttled = attempts * 7 / 10;
      m.refused = throttled / 2;
      m.throttled = throttled - m.refused;
      m.delivered = attempts - throttled;
    }
    return same_for_all(m);
  };
  const BurstDay day = run_burst_day(pool, traffic);
  const std::optional<Time>& first_cut_at = day.first_cut_at;
  const std::optional<Time>& regained_at = day.regained_at;
  ASSERT_TRUE(first_cut_at.has_value());
  EXPECT_EQ(*first_cut_at, kNow + 5 * kMinute);
  // 8 -> 5 at 5.7%; 5 -> 2 after no effect (never deeper than 50%); then the verdict's window,
  // half burst and half clean, reads as a cut that worked too little: 2 -> 1. The floor's settle
  // starts recovery probes, which bring it back.
  const std::vector<Json> cuts = pool.pool_decisions("cut");
  EXPECT_EQ(values_of(cuts), (std::vector<int>{5, 2, 1})) << pool.box.decisions(pool.now).dump(2);
  EXPECT_FALSE(pool.pool_decisions("settle").empty());
  ASSERT_TRUE(regained_at.has_value()) << "still at " << pool.pool_value()
                                       << " a day later: " << pool.box.decisions(pool.now).dump(2);
  EXPECT_LE(*regained_at - kNow, kDay);
}

// ---- 5. A week-long drop of Gmail's limit ------------------------------------------------------

// From noon on day 0 for seven days Gmail grants the pool's queues 4 connections (above that it
// refuses the share (value - 4) / value with 421 4.7.0); then no limit again. 240 attempts an
// hour; cycles every 30 minutes after a change, else every 2 hours (the window is the last
// hour: quiet spans need no closer look, and a due probe waits at most one step).
TEST(OperatorE2E, AWeekLongLimitDropIsCutAtOnceProbedWithBackoffAndRegainedAfter) {
  PoolOfFour pool;
  const Time drop_end = kNow + 7 * kDay;
  const auto traffic = [&](Time step) {
    std::array<Mix, kIpCount> m;
    const bool drop = pool.now >= kNow && pool.now < drop_end;
    for (int ip = 0; ip < kIpCount; ++ip) {
      m[ip] = limited(static_cast<int>(60 * step / kHour), pool.vmta_value(ip),
                      drop ? std::optional<int>(4) : std::nullopt);
    }
    return m;
  };
  pool.now = kNow - kHour;
  pool.cycle(kHour, traffic(kHour));
  std::optional<Time> first_cut_at, regained_at;
  int lowest = kOperatorValue;
  Time step = 30 * kMinute;
  while (pool.now < drop_end + 4 * kDay && !regained_at) {
    const Json report = pool.cycle(step, traffic(step));
    step = report["decisions"].empty() && pool.now > kNow + kHour ? 2 * kHour : 30 * kMinute;
    const int value = pool.pool_value();
    lowest = std::min(lowest, value);
    if (value < kOperatorValue && !first_cut_at) first_cut_at = pool.now;
    if (first_cut_at && value == kOperatorValue && !regained_at) regained_at = pool.now;
  }
  // The first 30-minute cycle of the drop cuts: 25% throttled over the hour, severe, 8 -> 4.
  ASSERT_TRUE(first_cut_at.has_value());
  EXPECT_EQ(*first_cut_at, kNow + 30 * kMinute);
  std::vector<Json> cuts = pool.pool_decisions("cut");
  const std::vector<Json> severe = pool.pool_decisions("severe_cut");
  cuts.insert(cuts.end(), severe.begin(), severe.end());
  ASSERT_EQ(cuts.size(), 1u) << pool.box.decisions(pool.now).dump(2);
  EXPECT_EQ(cuts[0]["rule"], "severe_cut");
  EXPECT_EQ(cuts[0]["new_value"], 4);
  EXPECT_EQ(lowest, 4) << "never below what Gmail grants";

  // Each failed probe is taken back in the next cycle, to 4 (not a new cut), and the next waits
  // twice as long: 6 h, then 12 h, then 24 h at most.
  const std::vector<Json> probes = pool.pool_decisions("recover");
  const std::vector<Json> undos = pool.pool_decisions("undo");
  ASSERT_GE(undos.size(), 4u) << pool.box.decisions(pool.now).dump(2);
  std::vector<Time> intervals;
  for (const Json& u : undos) {
    EXPECT_EQ(u["old_value"], 6) << u.dump(2);
    EXPECT_EQ(u["new_value"], 4) << u.dump(2);
    EXPECT_LT(at_of(u), drop_end + kHour) << "no probe fails once the limit is gone";
    const std::string why = u["reason"].get<std::string>();
    EXPECT_TRUE(contains(why, "the recovery probe brought the throttling back")) << why;
    const auto hours = why.find("next probe after ");
    ASSERT_NE(hours, std::string::npos) << why;
    intervals.push_back(std::stol(why.substr(hours + 17)) * kHour);
  }
  std::vector<Time> expected(undos.size(), kDay);
  expected[0] = 12 * kHour;
  EXPECT_EQ(intervals, expected);
  // Probe, undo, probe, ...: each undo the cycle after its probe, each probe no earlier than
  // the interval the previous undo named (the first 6 clean hours after the cut).
  ASSERT_EQ(probes.size(), undos.size() + 3) << pool.box.decisions(pool.now).dump(2);
  EXPECT_GE(at_of(probes[0]), at_of(cuts[0]) + 6 * kHour);
  for (std::size_t i = 0; i < undos.size(); ++i) {
    EXPECT_EQ(probes[i]["new_value"], 6) << probes[i].dump(2);
    EXPECT_EQ(at_of(undos[i]), at_of(probes[i]) + 30 * kMinute) << undos[i].dump(2);
    EXPECT_GE(at_of(probes[i + 1]), at_of(undos[i]) + intervals[i]) << probes[i + 1].dump(2);
    EXPECT_LE(at_of(probes[i + 1]), at_of(undos[i]) + intervals[i] + 2 * kHour)
        << probes[i + 1].dump(2);
  }
  // After the limit's return: the first probe that holds, then a step per clean day.
  const std::size_t held = undos.size();
  EXPECT_GE(at_of(probes[held]), drop_end);
  EXPECT_EQ(values_of(std::vector<Json>(probes.begin() + static_cast<long>(held), probes.end())),
            (std::vector<int>{6, 7, 8}));
  ASSERT_TRUE(regained_at.has_value());
  EXPECT_LE(*regained_at - drop_end, 3 * kDay);
  EXPECT_EQ(pool.status_row()["phase"], "steady");
  std::printf(
      "[ figures ] cut at +%lds; %zu failed probes; regained %ld h after the limit's return\n",
      static_cast<long>(*first_cut_at - kNow), undos.size(),
      static_cast<long>((*regained_at - drop_end) / kHour));
}

// ---- 6. Property: a VMTA's value never above its pool's ---------------------------------------

// Gmail with a random mood redrawn every hour: all clean, one or two IPs limited, or the
// whole pool limited, in 421 4.7.0 or 4.7.28 words, with 0-10% recipient-level deferrals.
class MoodyGmail {
 public:
  explicit MoodyGmail(unsigned seed) : rng_(seed) {}

  void redraw() {
    limits_.fill(std::nullopt);
    const int kind = pick(0, 3);
    const int limit = pick(1, 6);
    if (kind == 1 || kind == 2) {
      const int first = pick(0, kIpCount - 1);
      limits_[first] = limit;
      if (kind == 2) limits_[(first + 1 + pick(0, 2)) % kIpCount] = pick(1, 6);
    } else if (kind == 3) {
      limits_.fill(limit);
    }
    text_ = pick(0, 1) ? Answer::try_again : Answer::unsolicited;
    recipient_percent_ = pick(0, 10);
  }

  Mix mix(int ip, int attempts, int value) {
    Mix m = limited(attempts, value, limits_[ip], text_);
    const int recipient = std::min(m.delivered, attempts * recipient_percent_ / 100);
    m.mailbox_full = recipient;
    m.delivered -= recipient;
    return m;
  }

 private:
  int pick(int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng_); }

  std::mt19937 rng_;
  std::array<std::optional<int>, kIpCount> limits_{};
  Answer text_ = Answer::try_again;
  int recipient_percent_ = 0;
};

TEST(OperatorE2E, PropertyAVmtaValueIsNeverAboveThePoolValue) {
  int vmta_values_seen = 0, pool_changes = 0;
  for (unsigned seed : {1u, 2u, 3u}) {
    PoolOfFour pool;
    MoodyGmail gmail(seed);
    int previous = kOperatorValue;
    for (int cycle = 0; cycle < 48; ++cycle) {
      if (cycle % 2 == 0) gmail.redraw();
      std::array<Mix, kIpCount> m;
      for (int ip = 0; ip < kIpCount; ++ip) m[ip] = gmail.mix(ip, 40, pool.vmta_value(ip));
      pool.cycle(30 * kMinute, m);
      const int pool_value = pool.pool_value();
      if (pool_value != previous) ++pool_changes;
      previous = pool_value;
      const fs::path dir = pool.box.fragments() / kPool / "gmail";
      if (!fs::exists(dir)) continue;
      for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
        const std::optional<int> v = fragment_max_smtp_out(slurp(e.path()));
        if (!v) continue;
        ++vmta_values_seen;
        EXPECT_LE(*v, pool_value) << "seed " << seed << " at " << iso(pool.now) << ": "
                                  << e.path().filename() << "\n"
                                  << pool.box.decisions(pool.now).dump(1);
      }
    }
  }
  // The runs did exercise both remedies.
  EXPECT_GT(vmta_values_seen, 0);
  EXPECT_GT(pool_changes, 0);
}

// The property's failure, reduced: gmail-ip-3's reputation dips first (its own value, held 2 h
// for a reputation verdict), then the whole pool's; the pool's cut goes below the VMTA's value.
TEST(OperatorE2E, AVmtaValueStaysAtMostThePoolValueWhenThePoolIsCutBelowIt) {
  PoolOfFour pool;
  constexpr int kBad = 2;
  const auto traffic = [&](Time step, int bad_limit, std::optional<int> pool_limit) {
    std::array<Mix, kIpCount> m;
    for (int ip = 0; ip < kIpCount; ++ip) {
      const std::optional<int> limit = ip == kBad ? std::optional<int>(bad_limit) : pool_limit;
      m[ip] = limited(static_cast<int>(300 * step / kHour), pool.vmta_value(ip), limit,
                      Answer::unsolicited);
    }
    return m;
  };
  // gmail-ip-3 at 8 against Gmail's 7: 12.5% 421-4.7.28, the rest clean: its VMTA cut 30%.
  pool.now = kNow - kHour;
  pool.cycle(kHour, traffic(kHour, 7, std::nullopt));
  ASSERT_EQ(pool.vmta_value(kBad), 5);
  ASSERT_EQ(pool.pool_value(), kOperatorValue);
  // Then Gmail grants every IP 3: spread (about 30% throttled), a severe pool cut 8 -> 4.
  for (int i = 0; i < 6; ++i) {
    pool.cycle(30 * kMinute, traffic(30 * kMinute, 3, 3));
    EXPECT_LE(pool.vmta_value(kBad), pool.pool_value()) << iso(pool.now) << "\n"
                                                        << slurp(pool.vmta_fragment(kBad)) << "\n"
                                                        << pool.box.decisions(pool.now).dump(1);
  }
  EXPECT_LT(pool.pool_value(), kOperatorValue);
}

}  // namespace
}  // namespace sluice::e2e
