#include "cli/status_html.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "cli/report_format.h"
#include "controller/time_format.h"

namespace sluice::cli {

namespace {

constexpr int kWidth = 900;
constexpr int kHeight = 170;
constexpr int kMargin = 40;
constexpr UnixSeconds kHour = 3600;

// The throttle classes first: they are the ones the loop acts on.
constexpr DeferralClass kShown[] = {DeferralClass::connection, DeferralClass::rate,
                                    DeferralClass::reputation, DeferralClass::recipient,
                                    DeferralClass::config,     DeferralClass::other};

struct Frame {
  UnixSeconds from;
  UnixSeconds to;
  double top;
  double x(UnixSeconds t) const {
    const double span = static_cast<double>(std::max<UnixSeconds>(1, to - from));
    return kMargin + (kWidth - 2 * kMargin) * static_cast<double>(t - from) / span;
  }
  double y(double v) const { return kHeight - kMargin - (kHeight - 2 * kMargin) * v / top; }
};

std::string axes(const Frame& f, const std::string& top_label) {
  return fmt::format(
      "<line class=\"axis\" x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\"/>"
      "<line class=\"axis\" x1=\"{0}\" y1=\"{3}\" x2=\"{0}\" y2=\"{1}\"/>"
      "<text x=\"4\" y=\"{4}\">{5}</text><text x=\"4\" y=\"{1}\">0</text>"
      "<text x=\"{0}\" y=\"{6}\">{7}</text><text x=\"{8}\" y=\"{6}\" "
      "text-anchor=\"end\">{9}</text>",
      kMargin, kHeight - kMargin, kWidth - kMargin, kMargin, kMargin + 4, html_escape(top_label),
      kHeight - kMargin + 16, format_time(f.from), kWidth - kMargin, format_time(f.to));
}

// The value as a step line: each applied decision sets it from its time on.
std::string value_chart(const PairPicture& p, UnixSeconds from, UnixSeconds now) {
  int top = std::max(p.cap, p.value.value_or(1));
  for (const Decision& d : p.decisions) top = std::max({top, d.old_value, d.new_value});
  const Frame f{from, now, static_cast<double>(top)};
  std::string svg = fmt::format(
      "<svg class=\"value\" viewBox=\"0 0 {0} {1}\" width=\"{0}\" height=\"{1}\" role=\"img\">",
      kWidth, kHeight);
  svg += axes(f, "max-smtp-out " + std::to_string(top));
  if (p.cap > 0) {
    svg += fmt::format("<line class=\"cap\" x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\"/>",
                       kMargin, f.y(p.cap), kWidth - kMargin);
  }
  if (p.value) {
    int value = p.decisions.empty() ? *p.value : p.decisions.front().old_value;
    std::string points = fmt::format("{:.1f},{:.1f}", f.x(from), f.y(value));
    for (const Decision& d : p.decisions) {
      points +=
          fmt::format(" {0:.1f},{1:.1f} {0:.1f},{2:.1f}", f.x(d.at), f.y(value), f.y(d.new_value));
      value = d.new_value;
    }
    points += fmt::format(" {:.1f},{:.1f}", f.x(now), f.y(value));
    svg += "<polyline class=\"setting\" points=\"" + points + "\"/>";
  }
  for (const Decision& d : p.decisions) {
    svg += fmt::format(
        "<circle class=\"decision {0}\" cx=\"{1:.1f}\" cy=\"{2:.1f}\" r=\"4\"><title>{3} {0} "
        "{4} -&gt; {5}: {6}</title></circle>",
        to_string(d.rule), f.x(d.at), f.y(d.new_value), format_time(d.at), d.old_value, d.new_value,
        html_escape(d.reason));
  }
  return svg + "</svg>";
}

// The deferral rate of each class, per hour.
std::string rate_chart(const PairPicture& p, UnixSeconds from, UnixSeconds now) {
  std::map<UnixSeconds, SignalFigures> hours;
  for (const PairBucket& b : p.buckets) {
    if (b.start < from || b.start >= now) continue;
    SignalFigures& h = hours[b.start - ((b.start % kHour) + kHour) % kHour];
    h.attempts += b.figures.attempts;
    for (int c = 0; c < kDeferralClassCount; ++c) h.by_class[c] += b.figures.by_class[c];
  }
  double top = 0.05;  // the investigate threshold stays visible on a quiet pair
  for (const auto& [start, h] : hours) {
    for (DeferralClass c : kShown) {
      if (h.attempts > 0) {
        top = std::max(top, static_cast<double>(h.by_class[static_cast<int>(c)]) /
                                static_cast<double>(h.attempts));
      }
    }
  }
  const Frame f{from, now, top};
  std::string svg = fmt::format(
      "<svg class=\"rates\" viewBox=\"0 0 {0} {1}\" width=\"{0}\" height=\"{1}\" role=\"img\">",
      kWidth, kHeight);
  svg += axes(f, fmt::format("deferred {:.0f}%", top * 100));
  for (DeferralClass c : kShown) {
    std::string points;
    for (const auto& [start, h] : hours) {
      if (h.attempts == 0) continue;
      const double rate =
          static_cast<double>(h.by_class[static_cast<int>(c)]) / static_cast<double>(h.attempts);
      points += fmt::format("{}{:.1f},{:.1f}", points.empty() ? "" : " ", f.x(start + kHour / 2),
                            f.y(rate));
    }
    if (!points.empty()) {
      svg += fmt::format("<polyline class=\"class-{}\" points=\"{}\"/>", to_string(c), points);
    }
  }
  return svg + "</svg>";
}

}  // namespace

std::vector<Decision> applied_pair_decisions(const std::vector<DecisionRecord>& history,
                                             const std::string& pool, const std::string& isp,
                                             UnixSeconds from, UnixSeconds to) {
  std::vector<Decision> out;
  for (const DecisionRecord& r : history) {
    const Decision& d = r.decision;
    if (r.applied && d.pool == pool && d.isp == isp && d.vmta.empty() && d.at >= from &&
        d.at <= to) {
      out.push_back(d);
    }
  }
  return out;
}

std::string pair_pictures_section(const std::vector<PairPicture>& pairs, UnixSeconds from,
                                  UnixSeconds now) {
  std::string out =
      "<style>svg{background:#fafafa;border:1px solid #ddd;display:block;margin:.3em 0}"
      "svg text{font-size:11px}.axis{stroke:#999}svg polyline{fill:none;stroke-width:1.5}"
      ".setting{stroke:#1f77b4;stroke-width:2}.cap{stroke:#d62728;stroke-dasharray:4 3}"
      ".decision{fill:#ff7f0e;stroke:#333}.decision.cut,.decision.severe_cut{fill:#d62728}"
      ".decision.raise,.decision.recover,.decision.undo{fill:#2ca02c}.class-connection{stroke:"
      "#d62728}.class-rate{stroke:#ff7f0e}.class-reputation{stroke:#9467bd}.class-recipient{"
      "stroke:#7f7f7f}.class-config{stroke:#8c564b}.class-other{stroke:#bcbd22}.legend span{"
      "margin-right:1em}</style>";
  out += fmt::format(
      "<p>From {} to {}. Per pool and ISP: max-smtp-out (blue) under the tier's cap (dashed), a "
      "dot per decision (hover for its reason); below, the deferral rate of each class per "
      "hour.</p><p class=\"legend\"><span style=\"color:#d62728\">connection</span><span "
      "style=\"color:#ff7f0e\">rate</span><span style=\"color:#9467bd\">reputation</span><span "
      "style=\"color:#7f7f7f\">recipient</span><span style=\"color:#8c564b\">config</span><span "
      "style=\"color:#bcbd22\">other</span></p>",
      format_time(from), format_time(now));
  for (const PairPicture& p : pairs) {
    out += fmt::format("<h2>{} / {}: {}{}, {}</h2>", html_escape(p.pool), html_escape(p.isp),
                       p.value ? std::to_string(*p.value) : std::string("no state yet"),
                       p.cap > 0 ? " (cap " + std::to_string(p.cap) + ")" : std::string(),
                       html_escape(p.phase));
    out += value_chart(p, from, now);
    out += rate_chart(p, from, now);
  }
  return out;
}

std::string status_html(const std::vector<PairPicture>& pairs, UnixSeconds from, UnixSeconds now) {
  return "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>sluice "
         "status</title><style>body{font-family:sans-serif;margin:2em}</style></head><body>"
         "<h1>sluice status</h1>" +
         pair_pictures_section(pairs, from, now) + "</body></html>\n";
}

}  // namespace sluice::cli
