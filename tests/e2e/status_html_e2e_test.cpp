// `sluice status --format html` with the real binary: after a cut, the page marks it on the
// pair's value line beside the deferral rates; --out writes the same page atomically.

#include <string>

#include "loop_support.h"

namespace sluice::e2e {
namespace {

TEST(StatusHtmlE2E, TheCutIsMarkedOnThePairsValueLine) {
  Sandbox box;
  fs::create_directories(box.fragment().parent_path());
  write_file(box.fragment(), "max-smtp-out 6\n");
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 600, 60));
  ASSERT_EQ(box.sluice(kNow, {"once"}).exit_code, 0);

  const ProcessResult page = box.sluice(kNow + 5 * kMinute, {"status", "--format", "html"});
  ASSERT_EQ(page.exit_code, 0) << page.err;
  EXPECT_TRUE(page.out.starts_with("<!DOCTYPE html>"));
  EXPECT_TRUE(contains(page.out, "<h2>high-rep-pool / gmail: 4 (cap ")) << page.out;
  EXPECT_TRUE(contains(page.out, "<circle class=\"decision cut\"")) << page.out;
  EXPECT_TRUE(contains(page.out, "6 -&gt; 4: ")) << page.out;
  EXPECT_TRUE(contains(page.out, "<polyline class=\"class-connection\"")) << page.out;

  const fs::path out = box.scratch() / "status.html";
  const ProcessResult written =
      box.sluice(kNow + 5 * kMinute, {"status", "--format", "html", "--out", out.string()});
  ASSERT_EQ(written.exit_code, 0) << written.err;
  EXPECT_EQ(written.out, "");
  EXPECT_EQ(slurp(out), page.out);
}

TEST(StatusHtmlE2E, TheHtmlReportShowsTheDecisionsOfItsPeriodWhenTheStateHasThem) {
  Sandbox box;
  fs::create_directories(box.fragment().parent_path());
  write_file(box.fragment(), "max-smtp-out 6\n");
  write_file(box.log(), kHeader + traffic(kNow - kHour, kNow, 600, 60));
  ASSERT_EQ(box.sluice(kNow, {"once"}).exit_code, 0);

  const ProcessResult html = box.sluice(kNow, {"report", "--format", "html", box.log().string()});
  ASSERT_EQ(html.exit_code, 0) << html.err;
  EXPECT_TRUE(contains(html.out, "<h1>What sluice decided (")) << html.out;
  EXPECT_TRUE(contains(html.out, "<circle class=\"decision cut\"")) << html.out;
  EXPECT_TRUE(html.out.ends_with("</body></html>\n"));

  // Without a state database (another host's logs): the log's report alone.
  const fs::path elsewhere = box.scratch() / "elsewhere.toml";
  write_file(elsewhere, "[state]\ndatabase = \"" + (box.scratch() / "none.db").string() + "\"\n");
  const ProcessResult alone = run_process({SLUICE_BINARY, "--config", elsewhere.string(), "report",
                                           "--format", "html", box.log().string()});
  ASSERT_EQ(alone.exit_code, 0) << alone.err;
  EXPECT_FALSE(contains(alone.out, "What sluice decided"));
}

TEST(StatusHtmlE2E, AnUnknownFormatIsAUsageError) {
  Sandbox box;
  const ProcessResult r = box.sluice(kNow, {"status", "--format", "pdf"});
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
}  // namespace sluice::e2e
