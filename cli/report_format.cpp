#include "cli/report_format.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "adapters/time_parse.h"

namespace sluice::cli {

namespace {

using Json = nlohmann::ordered_json;

std::uint64_t deferrals(const BucketCounts& c) {
  return c.deferred + c.deferred_queue;
}

double rounded(double rate) {
  return std::round(rate * 1e6) / 1e6;
}

std::string with_commas(std::uint64_t n) {
  std::string digits = std::to_string(n);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(i, ",");
  return digits;
}

std::string pct(double rate) {
  return fmt::format("{:.1f}%", rate * 100);
}

std::string flag_label(RateFlag flag) {
  switch (flag) {
    case RateFlag::ok:
      return "";
    case RateFlag::investigate:
      return "INVESTIGATE (>5%)";
    case RateFlag::act:
      return "ACT NOW (>15%)";
  }
  return "";
}

std::string period(const Report& r) {
  if (!r.first_time) return "no records";
  return adapters::format_time(*r.first_time) + " to " + adapters::format_time(*r.last_time);
}

std::string malformed_summary(const Report& r) {
  std::string out = with_commas(r.read.malformed_total());
  std::vector<std::string> parts;
  for (int i = 0; i < kMalformedReasonCount; ++i) {
    if (r.read.malformed[i] == 0) continue;
    parts.push_back(fmt::format("{} {}", to_string(static_cast<MalformedReason>(i)),
                                with_commas(r.read.malformed[i])));
  }
  if (!parts.empty()) out += " (" + fmt::format("{}", fmt::join(parts, ", ")) + ")";
  return out;
}

void add_counts(Json& j, const BucketCounts& c) {
  j["attempts"] = c.attempts();
  j["delivered"] = c.delivered;
  j["bounced"] = c.bounced;
  j["deferred"] = c.deferred;
  j["deferred_queue"] = c.deferred_queue;
}

// At most ~300 points a chart: wide ranges merge neighbouring buckets.
std::vector<SeriesPoint> downsample(const std::vector<SeriesPoint>& points, UnixSeconds bucket) {
  if (points.empty()) return {};
  const UnixSeconds span = points.back().start - points.front().start + bucket;
  const UnixSeconds step = bucket * std::max<UnixSeconds>(1, (span / bucket + 299) / 300);
  std::vector<SeriesPoint> out;
  for (const SeriesPoint& p : points) {
    const UnixSeconds start = p.start - ((p.start % step) + step) % step;
    if (out.empty() || out.back().start != start) out.push_back(SeriesPoint{start, 0, 0});
    out.back().attempts += p.attempts;
    out.back().deferred += p.deferred;
  }
  return out;
}

std::string svg_chart(const std::vector<SeriesPoint>& raw, UnixSeconds bucket, UnixSeconds t0,
                      UnixSeconds t1) {
  const std::vector<SeriesPoint> points = downsample(raw, bucket);
  constexpr double kW = 760, kH = 180, kLeft = 48, kBottom = 24, kTop = 8;
  double max_rate = 0.2;
  for (const SeriesPoint& p : points) {
    if (p.attempts > 0) max_rate = std::max(max_rate, static_cast<double>(p.deferred) / p.attempts);
  }
  max_rate = std::min(1.0, std::ceil(max_rate * 10) / 10);
  const double span = std::max<double>(1, static_cast<double>(t1 - t0));
  auto x = [&](UnixSeconds t) {
    return kLeft + (kW - kLeft - 8) * static_cast<double>(t - t0) / span;
  };
  auto y = [&](double rate) { return kTop + (kH - kTop - kBottom) * (1 - rate / max_rate); };
  std::string svg = fmt::format(
      "<svg viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\">", kW, kH, kW, kH);
  for (double level : {0.05, 0.15}) {
    if (level > max_rate) continue;
    svg += fmt::format(
        "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" class=\"{}\"/>"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"lbl\">{:.0f}%</text>",
        kLeft, kW - 8, y(level), y(level), level < 0.1 ? "warn" : "act", 4.0, y(level) + 4,
        level * 100);
  }
  svg += fmt::format(
      "<line x1=\"{0:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" class=\"axis\"/>"
      "<text x=\"4\" y=\"{3:.1f}\" class=\"lbl\">{4:.0f}%</text>"
      "<text x=\"{0:.1f}\" y=\"{5:.1f}\" class=\"lbl\">{6}</text>"
      "<text x=\"{1:.1f}\" y=\"{5:.1f}\" class=\"lbl\" text-anchor=\"end\">{7}</text>",
      kLeft, kW - 8, y(0), y(max_rate) + 8, max_rate * 100, kH - 6, adapters::format_time(t0),
      adapters::format_time(t1));
  std::string line;
  for (const SeriesPoint& p : points) {
    if (p.attempts == 0) continue;
    line += fmt::format("{:.1f},{:.1f} ", x(p.start),
                        y(static_cast<double>(p.deferred) / static_cast<double>(p.attempts)));
  }
  svg += "<polyline class=\"rate\" points=\"" + line + "\"/></svg>";
  return svg;
}

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string format_report_text(const Report& r) {
  std::string out;
  out += fmt::format("sluice report: {} file(s), {} records, {}\n", r.read.files,
                     with_commas(r.read.records), period(r));
  out += fmt::format("malformed lines: {}; repaired records (invalid UTF-8): {}\n",
                     malformed_summary(r), with_commas(r.read.repaired));
  if (r.out_of_range > 0) {
    out += fmt::format("outside --since/--until: {} records\n", with_commas(r.out_of_range));
  }
  out +=
      fmt::format("\n{:<10} {:>11} {:>11} {:>9} {:>9} {:>9} {:>8} {:>7}  {}\n", "ISP", "attempts",
                  "delivered", "bounced", "deferred", "def.queue", "def.rate", "bounce", "flag");
  for (const IspFigures& isp : r.isps) {
    out += fmt::format("{:<10} {:>11} {:>11} {:>9} {:>9} {:>9} {:>8} {:>7}  {}\n", isp.isp,
                       with_commas(isp.counts.attempts()), with_commas(isp.counts.delivered),
                       with_commas(isp.counts.bounced), with_commas(isp.counts.deferred),
                       with_commas(isp.counts.deferred_queue), pct(isp.deferral_rate),
                       pct(isp.bounce_rate), flag_label(isp.flag));
  }
  out += fmt::format(
      "{:<10} {:>11} {:>11} {:>9} {:>9} {:>9} {:>8}\n", "all", with_commas(r.totals.attempts()),
      with_commas(r.totals.delivered), with_commas(r.totals.bounced),
      with_commas(r.totals.deferred), with_commas(r.totals.deferred_queue),
      pct(r.totals.attempts()
              ? static_cast<double>(deferrals(r.totals)) / static_cast<double>(r.totals.attempts())
              : 0));
  out += r.text_groups_pruned
             ? "\nTop deferral texts (first 60 characters; the rarest texts were dropped to bound "
               "memory)\n"
             : "\nTop deferral texts (first 60 characters)\n";
  for (const IspFigures& isp : r.isps) {
    if (isp.top_deferrals.empty()) continue;
    out += fmt::format("  {}\n", isp.isp);
    for (const TextGroup& g : isp.top_deferrals) {
      out += fmt::format("    {:>9}  {:<10}  {}\n", with_commas(g.count),
                         to_string(g.deferral_class), g.text);
    }
  }
  out += "\nPools by ISP (deferral rate per source IP)\n";
  std::vector<std::string> too_small;
  for (const PoolFigures& pool : r.pools) {
    if (pool.diagnosis == Diagnosis::insufficient_data) {
      too_small.push_back(fmt::format("{}/{} ({})", pool.pool, pool.isp, pool.counts.attempts()));
      continue;
    }
    out += fmt::format("  {} / {}: {} attempts, {} deferred {}\n", pool.pool, pool.isp,
                       with_commas(pool.counts.attempts()), pct(pool.deferral_rate),
                       flag_label(pool.flag));
    out += fmt::format("    {}: {}\n", to_string(pool.diagnosis), pool.explanation);
    if (pool.diagnosis == Diagnosis::healthy) continue;
    for (const IpFigures& ip : pool.ips) {
      out += fmt::format("      {:<16} {:>9} attempts {:>7}{}\n", ip.ip.empty() ? "(none)" : ip.ip,
                         with_commas(ip.attempts), pct(ip.deferral_rate),
                         ip.stands_out ? "  << stands out" : "");
    }
  }
  if (!too_small.empty()) {
    out += fmt::format("  too few attempts to judge: {}\n", fmt::join(too_small, ", "));
  }
  return out;
}

std::string format_report_json(const Report& r) {
  Json j;
  Json totals;
  totals["attempts"] = r.totals.attempts();
  totals["delivered"] = r.totals.delivered;
  totals["bounced"] = r.totals.bounced;
  totals["deferred"] = r.totals.deferred;
  totals["deferred_queue"] = r.totals.deferred_queue;
  totals["malformed"] = r.read.malformed_total();
  totals["repaired"] = r.read.repaired;
  totals["skipped_types"] = r.read.skipped_types;
  totals["out_of_range"] = r.out_of_range;
  totals["files"] = r.read.files;
  totals["text_groups_pruned"] = r.text_groups_pruned;
  j["totals"] = totals;
  Json malformed = Json::object();
  for (int i = 0; i < kMalformedReasonCount; ++i) {
    malformed[std::string(to_string(static_cast<MalformedReason>(i)))] = r.read.malformed[i];
  }
  j["malformed"] = malformed;
  j["period"] = {{"first", r.first_time ? Json(adapters::format_time(*r.first_time)) : Json()},
                 {"last", r.last_time ? Json(adapters::format_time(*r.last_time)) : Json()}};
  Json isps = Json::array();
  for (const IspFigures& isp : r.isps) {
    Json e;
    e["isp"] = isp.isp;
    add_counts(e, isp.counts);
    e["deferral_rate"] = rounded(isp.deferral_rate);
    e["bounce_rate"] = rounded(isp.bounce_rate);
    e["flag"] = to_string(isp.flag);
    Json classes = Json::object();
    for (int c = 1; c < kDeferralClassCount; ++c) {
      classes[std::string(to_string(static_cast<DeferralClass>(c)))] = isp.by_class[c];
    }
    e["deferrals_by_class"] = classes;
    Json top = Json::array();
    for (const TextGroup& g : isp.top_deferrals) {
      top.push_back({{"text", g.text}, {"count", g.count}, {"class", to_string(g.deferral_class)}});
    }
    e["top_deferrals"] = top;
    isps.push_back(e);
  }
  j["isps"] = isps;
  Json pools = Json::array();
  for (const PoolFigures& pool : r.pools) {
    Json e;
    e["pool"] = pool.pool;
    e["isp"] = pool.isp;
    add_counts(e, pool.counts);
    e["deferral_rate"] = rounded(pool.deferral_rate);
    e["bounce_rate"] = rounded(pool.bounce_rate);
    e["flag"] = to_string(pool.flag);
    e["diagnosis"] = to_string(pool.diagnosis);
    e["explanation"] = pool.explanation;
    Json ips = Json::array();
    for (const IpFigures& ip : pool.ips) {
      ips.push_back({{"ip", ip.ip},
                     {"attempts", ip.attempts},
                     {"deferred", ip.deferred},
                     {"deferral_rate", rounded(ip.deferral_rate)},
                     {"stands_out", ip.stands_out}});
    }
    e["ips"] = ips;
    pools.push_back(e);
  }
  j["pools"] = pools;
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string format_report_html(const Report& r) {
  std::string out =
      "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>sluice report</title><style>"
      "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}"
      "table{border-collapse:collapse;margin:.5em 0 1.5em}"
      "td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}"
      "td:first-child,th:first-child,td.t{text-align:left}"
      ".investigate{background:#fff3cd}.act{background:#f8d7da}"
      "svg{background:#fafafa;border:1px solid #ddd}"
      ".rate{fill:none;stroke:#c0392b;stroke-width:1.5}.axis{stroke:#999}"
      ".warn{stroke:#e0a800;stroke-dasharray:4 3}.act{stroke:#c0392b;stroke-dasharray:4 3}"
      ".lbl{font-size:11px;fill:#555}code{font-size:12px}"
      "</style></head><body>";
  out += "<h1>sluice report</h1><p>" +
         html_escape(fmt::format("{} file(s), {} records, {}. Malformed lines: {}; "
                                 "repaired records: {}.",
                                 r.read.files, with_commas(r.read.records), period(r),
                                 malformed_summary(r), with_commas(r.read.repaired))) +
         "</p>";
  out +=
      "<h2>ISPs</h2><table><tr><th>ISP</th><th>attempts</th><th>delivered</th><th>bounced</th>"
      "<th>deferred</th><th>deferred (queue)</th><th>deferral rate</th><th>bounce rate</th>"
      "<th>flag</th></tr>";
  for (const IspFigures& isp : r.isps) {
    out += fmt::format(
        "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td></tr>",
        to_string(isp.flag), html_escape(isp.isp), with_commas(isp.counts.attempts()),
        with_commas(isp.counts.delivered), with_commas(isp.counts.bounced),
        with_commas(isp.counts.deferred), with_commas(isp.counts.deferred_queue),
        pct(isp.deferral_rate), pct(isp.bounce_rate), flag_label(isp.flag));
  }
  out += "</table>";
  for (const IspFigures& isp : r.isps) {
    out += "<h2>" + html_escape(isp.isp) + ": deferral rate over time</h2>";
    if (auto s = r.series.find(isp.isp); s != r.series.end() && r.first_time) {
      out += svg_chart(s->second, r.bucket_seconds, *r.first_time, *r.last_time);
    }
    if (isp.top_deferrals.empty()) continue;
    out += "<table><tr><th>count</th><th>class</th><th>text (first 60 characters)</th></tr>";
    for (const TextGroup& g : isp.top_deferrals) {
      out += fmt::format(
          "<tr><td>{}</td><td class=\"t\">{}</td><td class=\"t\"><code>{}</code></td></tr>",
          with_commas(g.count), to_string(g.deferral_class), html_escape(g.text));
    }
    out += "</table>";
  }
  out += "<h2>Pools</h2>";
  for (const PoolFigures& pool : r.pools) {
    out += fmt::format("<h3>{} / {}: {} deferred</h3><p>{}: {}</p>", html_escape(pool.pool),
                       html_escape(pool.isp), pct(pool.deferral_rate), to_string(pool.diagnosis),
                       html_escape(pool.explanation));
    out +=
        "<table><tr><th>source "
        "IP</th><th>attempts</th><th>deferred</th><th>rate</th><th></th></tr>";
    for (const IpFigures& ip : pool.ips) {
      out += fmt::format(
          "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
          ip.stands_out ? "act" : "", html_escape(ip.ip), with_commas(ip.attempts),
          with_commas(ip.deferred), pct(ip.deferral_rate), ip.stands_out ? "stands out" : "");
    }
    out += "</table>";
  }
  out += "</body></html>\n";
  return out;
}

}  // namespace sluice::cli
