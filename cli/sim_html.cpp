#include "cli/sim_html.h"

#include <fmt/format.h>

#include <algorithm>

#include "cli/report_format.h"
#include "controller/time_format.h"

namespace sluice::cli {

namespace {

constexpr int kWidth = 900;
constexpr int kHeight = 160;
constexpr int kMargin = 36;

// One chart: a polyline per series over the run's steps, y from 0 to `top`.
std::string chart(const std::vector<std::pair<std::string, std::vector<double>>>& series,
                  double top, const std::string& y_label) {
  std::size_t n = 0;
  for (const auto& [name, values] : series) n = std::max(n, values.size());
  if (n < 2 || top <= 0) return "<p>(no data)</p>";
  const double plot_w = kWidth - 2 * kMargin;
  const double plot_h = kHeight - 2 * kMargin / 2;
  std::string svg = fmt::format(
      "<svg viewBox=\"0 0 {0} {1}\" width=\"{0}\" height=\"{1}\" role=\"img\">"
      "<text x=\"2\" y=\"12\">{2}</text><text x=\"2\" y=\"{3}\">0</text>"
      "<text x=\"2\" y=\"{4}\">{5:g}</text>",
      kWidth, kHeight, html_escape(y_label), kHeight - kMargin / 2, kMargin / 2 + 12, top);
  for (const auto& [name, values] : series) {
    std::string points;
    for (std::size_t i = 0; i < values.size(); ++i) {
      const double x = kMargin + plot_w * static_cast<double>(i) / static_cast<double>(n - 1);
      const double y = kMargin / 2 + plot_h * (1 - std::min(values[i], top) / top);
      points += fmt::format("{:.1f},{:.1f} ", x, y);
    }
    svg += "<polyline class=\"" + html_escape(name) + "\" points=\"" + points + "\"/>";
  }
  return svg + "</svg>";
}

}  // namespace

std::string simulation_html(const sim::SimulationResult& result) {
  const config::Scenario& s = result.scenario;
  std::string out =
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>sluice simulate: " +
      html_escape(s.name) +
      "</title><style>body{font-family:sans-serif;margin:2em;max-width:960px}"
      "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;"
      "text-align:right}th{background:#eee}svg{background:#fafafa;border:1px solid #ddd}"
      "polyline{fill:none;stroke-width:1.5}.setting{stroke:#1f77b4}.limit{stroke:#d62728;"
      "stroke-dasharray:4 2}.rate{stroke:#ff7f0e}.key span{padding:0 1em}</style></head><body>";
  out += "<h1>" + html_escape(s.name) + "</h1><p>" + html_escape(s.description) + "</p>";
  out += fmt::format("<p>{} days from {}, steps of {} minutes.</p>", s.days,
                     html_escape(format_time(s.start)), s.step_seconds / 60);
  out +=
      "<table><tr><th>policy</th><th>delivered</th><th>deferred</th><th>deferral rate</th>"
      "<th>overrun</th><th>share of oracle</th><th>changes</th><th>reloads</th></tr>";
  for (const sim::Run& run : result.runs) {
    const sim::Metrics& m = run.metrics;
    out += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2f}%</td><td>{}</td><td>{:.1f}%</td>"
        "<td>{}</td><td>{}</td></tr>",
        html_escape(m.policy), m.delivered, m.deferred, m.deferral_rate * 100, m.overrun,
        m.delivered_share * 100, m.changes, m.reloads);
  }
  out += "</table>";
  out +=
      "<p class=\"key\"><span style=\"color:#1f77b4\">&#9473; setting (max-smtp-out, summed "
      "over the IPs)</span><span style=\"color:#d62728\">&#9476; hidden limit</span><span "
      "style=\"color:#ff7f0e\">&#9473; deferral rate</span></p>";
  for (const sim::Run& run : result.runs) {
    const sim::Trace& t = run.trace;
    std::vector<double> settings, limits;
    double top = 1;
    for (std::size_t i = 0; i < t.settings.size(); ++i) {
      double setting = 0, limit = 0;
      for (int v : t.settings[i]) setting += v;
      if (i < t.limits.size()) {
        for (int v : t.limits[i]) limit += v;
      }
      settings.push_back(setting);
      limits.push_back(limit);
      top = std::max({top, setting, limit});
    }
    out += "<h2>" + html_escape(run.metrics.policy) + "</h2>";
    out += chart({{"limit", limits}, {"setting", settings}}, top * 1.1, "connections");
    double worst = 0.01;
    for (double r : t.deferral_rate) worst = std::max(worst, r);
    out += chart({{"rate", t.deferral_rate}}, std::min(1.0, worst * 1.1), "deferral rate");
  }
  if (!result.sluice_decisions.empty()) {
    out += "<h2>sluice's decisions</h2><ul>";
    for (const Decision& d : result.sluice_decisions) {
      out += "<li>" + html_escape(format_time(d.at)) + " " + html_escape(d.pool) + "/" +
             html_escape(d.isp) + " " + html_escape(std::string(to_string(d.rule))) + " " +
             std::to_string(d.old_value) + " &rarr; " + std::to_string(d.new_value) + ": " +
             html_escape(d.reason) + "</li>";
    }
    out += "</ul>";
  }
  return out + "</body></html>\n";
}

}  // namespace sluice::cli
