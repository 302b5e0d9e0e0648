#include "sim/world.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace sluice::sim {

namespace {

constexpr std::int64_t kDay = 86400;
// Demand that sums to a whole number in decimal may fall a hair short of it in binary.
constexpr double kRoundingSlack = 1e-9;

bool active(const config::SimEvent& event, std::int64_t offset) {
  return event.start <= offset && offset < event.end;
}

std::int64_t day_index(std::int64_t t) {
  return t >= 0 ? t / kDay : (t - kDay + 1) / kDay;
}

// Whole messages owed by `carry` (which keeps the fraction); at most `available`.
std::uint64_t take_whole(double& carry, std::uint64_t available) {
  const double whole = std::floor(carry + kRoundingSlack);
  carry -= whole;
  return std::min(available, static_cast<std::uint64_t>(std::max(0.0, whole)));
}

}  // namespace

World::World(const config::Scenario& scenario) : scenario_(scenario) {
  if (scenario_.step_seconds <= 0) throw std::invalid_argument("step_seconds must be positive");
  for (std::size_t p = 0; p < scenario_.pools.size(); ++p) {
    const config::SimPool& pool = scenario_.pools[p];
    first_vmta_.push_back(vmtas_.size());
    auto& demand_events = pool_demand_events_.emplace_back();
    for (std::size_t e = 0; e < scenario_.events.size(); ++e) {
      const config::SimEvent& event = scenario_.events[e];
      if (event.pool == pool.name && event.kind == config::SimEventKind::demand) {
        demand_events.push_back(e);
      }
    }
    for (const config::SimIp& ip : pool.ips) {
      vmtas_.push_back(VmtaRef{p, pool.name, pool.isp, pool.domain, ip.vmta, ip.address});
      base_limit_.push_back(static_cast<double>(std::max<std::int64_t>(1, ip.limit)));
      auto& events = vmta_events_.emplace_back();
      for (std::size_t e = 0; e < scenario_.events.size(); ++e) {
        const config::SimEvent& event = scenario_.events[e];
        if (event.pool == pool.name && event.kind != config::SimEventKind::demand &&
            (event.vmta.empty() || event.vmta == ip.vmta)) {
          events.push_back(e);
        }
      }
    }
  }
  const std::size_t n = vmtas_.size();
  reputation_.assign(n, 1.0);
  overrun_run_.assign(n, 0);
  overrun_today_.assign(n, false);
  noise_carry_.assign(n, 0.0);
  uncurable_carry_.assign(n, 0.0);
  backlog_.assign(scenario_.pools.size(), 0.0);
}

std::int64_t World::now() const {
  return scenario_.start + static_cast<std::int64_t>(step_) * scenario_.step_seconds;
}

std::size_t World::steps_total() const {
  return static_cast<std::size_t>(std::max<std::int64_t>(0, scenario_.days) * kDay /
                                  scenario_.step_seconds);
}

int World::limit(std::size_t vmta) const {
  return limit_at(vmta, now() - scenario_.start);
}

double World::event_factor(std::size_t vmta, config::SimEventKind kind, std::int64_t offset) const {
  double factor = 1.0;
  for (const std::size_t e : vmta_events_[vmta]) {
    const config::SimEvent& event = scenario_.events[e];
    if (event.kind == kind && active(event, offset)) factor *= event.value;
  }
  return factor;
}

double World::event_share(std::size_t vmta, config::SimEventKind kind, std::int64_t offset) const {
  double share = 0.0;
  for (const std::size_t e : vmta_events_[vmta]) {
    const config::SimEvent& event = scenario_.events[e];
    if (event.kind == kind && active(event, offset)) share += event.value;
  }
  return std::clamp(share, 0.0, 1.0);
}

double World::demand_factor(std::size_t pool, std::int64_t offset) const {
  double factor = 1.0;
  for (const std::size_t e : pool_demand_events_[pool]) {
    if (active(scenario_.events[e], offset)) factor *= scenario_.events[e].value;
  }
  return factor;
}

int World::limit_at(std::size_t vmta, std::int64_t offset) const {
  const double scaled = base_limit_[vmta] * event_factor(vmta, config::SimEventKind::limit, offset);
  // Only an event closes an IP completely; reputation alone leaves it one connection.
  if (scaled < 0.5) return 0;
  const double limit = std::min(std::round(scaled * reputation_[vmta]), 1e9);
  return std::max(1, static_cast<int>(limit));
}

StepResult World::step(const std::vector<int>& settings) {
  if (settings.size() != vmtas_.size()) {
    throw std::invalid_argument("World::step: " + std::to_string(settings.size()) +
                                " settings for " + std::to_string(vmtas_.size()) + " VMTAs");
  }
  const std::int64_t at = now();
  const std::int64_t offset = at - scenario_.start;
  const std::uint64_t per_connection =
      static_cast<std::uint64_t>(std::max<std::int64_t>(1, scenario_.messages_per_connection));
  const double steps_per_day = static_cast<double>(kDay) / scenario_.step_seconds;
  StepResult result;
  result.at = at;
  result.vmtas.resize(vmtas_.size());

  for (std::size_t p = 0; p < scenario_.pools.size(); ++p) {
    const config::SimPool& pool = scenario_.pools[p];
    double& backlog = backlog_[p];
    backlog += pool.demand * demand_factor(p, offset);
    // Messages older than a day would have bounced: one day of demand is all the queue keeps.
    backlog = std::min(backlog, pool.demand * steps_per_day);
    const std::uint64_t members = pool.ips.size();
    if (members == 0) continue;
    const auto waiting = static_cast<std::uint64_t>(std::floor(backlog + kRoundingSlack));
    std::uint64_t delivered_total = 0;
    for (std::uint64_t k = 0; k < members; ++k) {
      const std::size_t i = first_vmta_[p] + k;
      const std::uint64_t share = waiting / members + (k < waiting % members ? 1 : 0);
      VmtaStep& s = result.vmtas[i];
      s.setting = settings[i];
      s.limit = limit_at(i, offset);
      s.needed = static_cast<int>(std::min<std::uint64_t>(
          (share + per_connection - 1) / per_connection, std::numeric_limits<int>::max()));
      s.opened = std::min(std::max(0, s.setting), s.needed);
      s.refused = std::max(0, s.opened - s.limit);
      const auto accepted = static_cast<std::uint64_t>(s.opened - s.refused);
      const std::uint64_t attempted = std::min(share, accepted * per_connection);
      s.throttled =
          std::min(share - attempted, static_cast<std::uint64_t>(s.refused) * per_connection);
      noise_carry_[i] +=
          static_cast<double>(attempted) * event_share(i, config::SimEventKind::noise, offset);
      s.noise = take_whole(noise_carry_[i], attempted);
      uncurable_carry_[i] +=
          static_cast<double>(attempted) * event_share(i, config::SimEventKind::uncurable, offset);
      s.uncurable = take_whole(uncurable_carry_[i], attempted - s.noise);
      s.delivered = attempted - s.noise - s.uncurable;
      s.queued = share - s.delivered;
      delivered_total += s.delivered;

      const bool overrun =
          s.opened > 0 && static_cast<double>(s.refused) / s.opened > scenario_.overrun_tolerance;
      overrun_run_[i] = overrun ? overrun_run_[i] + 1 : 0;
      if (overrun) overrun_today_[i] = true;
      if (overrun && overrun_run_[i] >= scenario_.overrun_steps) {
        // Never below one connection's worth: the limit must stay able to recover.
        reputation_[i] = std::max(reputation_[i] * scenario_.overrun_penalty, 1.0 / base_limit_[i]);
        overrun_run_[i] = 0;
      }
    }
    backlog -= static_cast<double>(delivered_total);
  }

  ++step_;
  if (day_index(now()) != day_index(at)) end_of_day();
  return result;
}

void World::end_of_day() {
  for (std::size_t i = 0; i < vmtas_.size(); ++i) {
    if (!overrun_today_[i]) {
      reputation_[i] = std::min(
          1.0, reputation_[i] + static_cast<double>(scenario_.recovery_per_day) / base_limit_[i]);
    }
    overrun_today_[i] = false;
  }
}

IspTexts texts_for(const std::string& isp, const std::string& address) {
  const std::string& a = address;
  if (isp == "gmail") {
    return {"smtp;421-4.7.0 [" + a +
                " 15] Try again later, closing connection. (EHLO) For more information, go to "
                "421-4.7.0  https://support.google.com/a/answer/3221692 - gsmtp",
            "smtp;450-4.2.1 The user you are trying to contact is receiving mail too quickly. "
            "Please resend your message at a later time. - gsmtp",
            "smtp;421-4.7.28 [" + a +
                " 15] Our system has detected an unusual rate of unsolicited mail originating "
                "from your IP address. To protect our users from spam, mail sent from your IP "
                "address has been temporarily rate limited. - gsmtp",
            "smtp;250 2.0.0 OK - gsmtp", "gmail-smtp-in.l.google.com (142.250.102.27)"};
  }
  if (isp == "outlook") {
    return {"smtp;451 4.7.652 The mail server [" + a +
                "] has exceeded the maximum number of connections. (S3115) "
                "[AM4PEPF00027A5F.eurprd04.prod.outlook.com]",
            "smtp;452 4.2.2 The recipient's mailbox is full and can't accept messages now. "
            "Please try resending this message later.",
            "smtp;451 4.7.650 The mail server [" + a +
                "] has been temporarily rate limited due to IP reputation. For e-mail delivery "
                "information, see https://postmaster.live.com (S775)",
            "smtp;250 2.6.0 Queued mail for delivery",
            "hotmail-com.olc.protection.outlook.com (52.101.68.20)"};
  }
  if (isp == "yahoo") {
    return {"smtp;421 4.7.0 Too many concurrent connections from " + a + ", try again later",
            "smtp;452 4.2.2 Mailbox full, try again later",
            "smtp;421 4.7.0 [TSS04] Messages from " + a +
                " temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; "
                "see https://postmaster.yahooinc.com/error-codes",
            "smtp;250 ok dirdel", "mta7.am0.yahoodns.net (67.195.204.77)"};
  }
  // GMX and the generic set have no reputation text in the catalog: their uncurable deferral is
  // a rate text, which is a throttle signal too.
  if (isp == "gmx") {
    return {
        "smtp;421 gmx.net (mxgmx117) Nemesis ESMTP Service not available; too many "
        "connections from " +
            a + ", try again later",
        "smtp;452 4.2.2 Mailbox quota exceeded",
        "smtp;421 gmx.net (mxgmx117) Nemesis ESMTP Service not available; too many messages "
        "from " +
            a + ", try again later",
        "smtp;250 Requested mail action okay, completed", "mx00.emig.gmx.net (212.227.15.9)"};
  }
  if (isp == "orange") {
    return {"smtp;421 mwinf5c21 ME Trop de connexions depuis " + a +
                ", veuillez verifier votre configuration. Too many connections, slow down. "
                "OFR004_104 [104]",
            "smtp;452 4.2.2 Boite du destinataire pleine. Recipient mailbox full.",
            "smtp;421 mwinf5c40 ME Service refus\u00e9 pour " + a +
                ". Veuillez essayer plus tard. Service refused, please try later. OFR004_105 "
                "[105]",
            "smtp;250 2.0.0 mwinf5c21 mail accepted for delivery",
            "smtp-in.orange.fr (193.252.22.84)"};
  }
  return {"smtp;421 4.7.0 Too many connections from " + a + ", try again later",
          "smtp;452 4.2.2 Mailbox full",
          "smtp;451 4.7.1 Rate limit exceeded for " + a + ", try again later",
          "smtp;250 2.0.0 Ok: queued", "mx.mail.example (192.0.2.25)"};
}

}  // namespace sluice::sim
