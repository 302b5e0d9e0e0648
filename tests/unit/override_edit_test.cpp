#include "config/override_edit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "config/overrides.h"

namespace sluice::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::StartsWith;

constexpr const char* kSource = "overrides.toml";
constexpr std::int64_t kDecember = 1796083200;  // 2026-12-01T00:00:00Z

// Every edit must give a file the loop accepts.
OverrideFile loaded(const std::string& text) {
  const OverrideLoad load = parse_overrides(text, kSource);
  EXPECT_TRUE(load.file.has_value()) << load.error << "\n" << text;
  return load.file.value_or(OverrideFile{});
}

// One entry on one line, to compare what a file says with what it should.
std::string summary(const OverrideEntry& e) {
  std::string out = e.pool + "/" + (e.isp.empty() ? "*" : e.isp);
  if (!e.vmta.empty()) out += "/" + e.vmta;
  switch (e.kind) {
    case OverrideKind::pin:
      out += " pin " + std::to_string(e.max_smtp_out);
      break;
    case OverrideKind::freeze:
      out += " freeze";
      break;
    case OverrideKind::bounds:
      out += " bounds " + (e.floor ? std::to_string(*e.floor) : "-") + ".." +
             (e.ceiling ? std::to_string(*e.ceiling) : "-");
      break;
  }
  if (e.until) out += " until " + std::to_string(*e.until);
  return out + " '" + e.reason + "'";
}

std::vector<std::string> overrides_of(const std::string& text) {
  std::vector<std::string> out;
  for (const OverrideEntry& e : loaded(text).overrides) out.push_back(summary(e));
  return out;
}

std::vector<std::string> tiers_of(const std::string& text) {
  std::vector<std::string> out;
  for (const TierEntry& e : loaded(text).tiers) {
    out.push_back(e.pool + "/" + e.isp + " " + e.tier + " '" + e.source + "'");
  }
  return out;
}

OverrideEntry pin(const std::string& pool, const std::string& isp, std::int64_t n,
                  const std::string& reason, const std::string& vmta = "") {
  OverrideEntry e;
  e.pool = pool;
  e.isp = isp;
  e.vmta = vmta;
  e.kind = OverrideKind::pin;
  e.max_smtp_out = n;
  e.reason = reason;
  return e;
}

OverrideEntry bounds(const std::string& pool, const std::string& isp, std::optional<int> floor,
                     std::optional<int> ceiling, const std::string& reason) {
  OverrideEntry e = pin(pool, isp, 0, reason);
  e.kind = OverrideKind::bounds;
  e.floor = floor;
  e.ceiling = ceiling;
  return e;
}

OverrideEntry frozen(const std::string& pool, const std::string& isp, const std::string& reason) {
  OverrideEntry e = pin(pool, isp, 0, reason);
  e.kind = OverrideKind::freeze;
  return e;
}

// Three pools' entries, each with its comment, under the file's own comment block.
constexpr const char* kHead = "# sluice overrides\n\n";
constexpr const char* kA =
    "# about a\n"
    "[[override]]\n"
    "pool = \"a\"\n"
    "max_smtp_out = 1  # low\n"
    "reason = \"ra\"\n";
constexpr const char* kB =
    "\n"
    "# about b\n"
    "[[override]]\n"
    "pool = \"b\"\n"
    "isp = \"gmail\"\n"
    "max_smtp_out = 2\n"
    "reason = \"rb\"\n";
constexpr const char* kC =
    "\n"
    "# about c\n"
    "[[override]]\n"
    "pool = \"c\"\n"
    "freeze = true\n"
    "reason = \"rc\"\n";

std::string three() {
  return std::string(kHead) + kA + kB + kC;
}

TEST(OverrideEditPut, AddsToAnEmptyText) {
  OverrideEntry e = pin("high-rep-pool", "gmail", 4, "incident 4711");
  e.until = kDecember;
  const EditResult r = put_override("", e, kSource);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.text,
            "[[override]]\n"
            "pool = \"high-rep-pool\"\n"
            "isp = \"gmail\"\n"
            "max_smtp_out = 4\n"
            "until = \"2026-12-01T00:00:00Z\"\n"
            "reason = \"incident 4711\"\n");
  EXPECT_THAT(r.changes,
              ElementsAre("added the [[override]] for pool 'high-rep-pool', ISP 'gmail' (line 1)"));
  EXPECT_THAT(overrides_of(r.text), ElementsAre(summary(e)));
}

TEST(OverrideEditPut, RendersEveryKeyInItsOrder) {
  OverrideEntry e = bounds("p", "gmail", 2, 6, "tests");
  e.vmta = "gmail-ip-2";
  e.until = kDecember + 3661;
  const EditResult r = put_override("", e, kSource);
  EXPECT_EQ(r.text,
            "[[override]]\n"
            "pool = \"p\"\n"
            "isp = \"gmail\"\n"
            "vmta = \"gmail-ip-2\"\n"
            "floor = 2\n"
            "ceiling = 6\n"
            "until = \"2026-12-01T01:01:01Z\"\n"
            "reason = \"tests\"\n");
  EXPECT_THAT(overrides_of(r.text), ElementsAre(summary(e)));

  const EditResult pool_wide = put_override("", frozen("p", "", "a \"quoted\" reason"), kSource);
  EXPECT_EQ(pool_wide.text,
            "[[override]]\n"
            "pool = \"p\"\n"
            "freeze = true\n"
            "reason = \"a \\\"quoted\\\" reason\"\n");
  EXPECT_THAT(pool_wide.changes,
              ElementsAre("added the [[override]] for pool 'p', every ISP (line 1)"));
  EXPECT_THAT(overrides_of(pool_wide.text), ElementsAre("p/* freeze 'a \"quoted\" reason'"));
}

TEST(OverrideEditPut, AddsAfterATextWithoutTrailingNewline) {
  const std::string text =
      "[[tier]]\n"
      "pool = \"p\"\n"
      "isp = \"gmail\"\n"
      "tier = \"low\"\n"
      "source = \"postmaster\"";
  const EditResult r = put_override(text, pin("p", "gmail", 3, "r"), kSource);
  EXPECT_EQ(r.text, text +
                        "\n"
                        "\n"
                        "[[override]]\n"
                        "pool = \"p\"\n"
                        "isp = \"gmail\"\n"
                        "max_smtp_out = 3\n"
                        "reason = \"r\"\n");
  EXPECT_THAT(r.changes, ElementsAre("added the [[override]] for pool 'p', ISP 'gmail' (line 7)"));
  EXPECT_THAT(overrides_of(r.text), ElementsAre("p/gmail pin 3 'r'"));
  EXPECT_THAT(tiers_of(r.text), ElementsAre("p/gmail low 'postmaster'"));
}

TEST(OverrideEditPut, AddsAtTheEndAfterOneBlankLine) {
  const EditResult r = put_override(three(), pin("d", "", 9, "rd"), kSource);
  EXPECT_EQ(r.text, three() +
                        "\n"
                        "[[override]]\n"
                        "pool = \"d\"\n"
                        "max_smtp_out = 9\n"
                        "reason = \"rd\"\n");
  EXPECT_THAT(r.changes, ElementsAre("added the [[override]] for pool 'd', every ISP (line 22)"));
  EXPECT_THAT(overrides_of(r.text), ElementsAre("a/* pin 1 'ra'", "b/gmail pin 2 'rb'",
                                                "c/* freeze 'rc'", "d/* pin 9 'rd'"));

  // No second blank line after one the file ends with; a comment-only file stays on top.
  const EditResult blank = put_override("# sluice\n\n", pin("d", "", 9, "rd"), kSource);
  EXPECT_THAT(blank.text, StartsWith("# sluice\n\n[[override]]\n"));
  const EditResult comment = put_override("# sluice\n", pin("d", "", 9, "rd"), kSource);
  EXPECT_THAT(comment.text, StartsWith("# sluice\n\n[[override]]\n"));
}

TEST(OverrideEditPut, ReplacesKeepingCommentsAboveAndTrailingCommentsElsewhere) {
  const std::string before =
      "# sluice overrides\n"
      "\n"
      "# incident 4711: gmail throttles us\n"
      "# (second line of the note)\n"
      "[[override]]  # set by alice\n"
      "pool = \"high-rep-pool\"\n"
      "isp = \"gmail\"\n"
      "# max_smtp_out = 2 was too low\n"
      "max_smtp_out = 4   # old value\n"
      "reason = \"incident 4711\"\n";
  const std::string after =
      "\n"
      "# yahoo answers slowly\n"
      "[[override]]\n"
      "pool = \"high-rep-pool\"\n"
      "isp = \"yahoo\"\n"
      "freeze = true      # until they answer\n"
      "reason = \"ticket 12\"  # see the ticket\n"
      "# the end\n";
  const EditResult r = put_override(
      before + after, bounds("high-rep-pool", "gmail", 2, 6, "incident 4712"), kSource);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.text,
            "# sluice overrides\n"
            "\n"
            "# incident 4711: gmail throttles us\n"
            "# (second line of the note)\n"
            "[[override]]  # set by alice\n"
            "pool = \"high-rep-pool\"\n"
            "isp = \"gmail\"\n"
            "floor = 2\n"
            "ceiling = 6\n"
            "reason = \"incident 4712\"\n" +
                after);
  EXPECT_THAT(r.changes, ElementsAre("replaced the [[override]] for pool 'high-rep-pool', ISP "
                                     "'gmail' (line 5)"));
  EXPECT_THAT(overrides_of(r.text), ElementsAre("high-rep-pool/gmail bounds 2..6 'incident 4712'",
                                                "high-rep-pool/yahoo freeze 'ticket 12'"));
}

TEST(OverrideEditPut, ReplacingInTheMiddleKeepsTheEntriesAroundIt) {
  OverrideEntry e = pin("b", "gmail", 7, "rb2");
  e.until = kDecember;
  const EditResult r = put_override(three(), e, kSource);
  EXPECT_EQ(r.text, std::string(kHead) + kA +
                        "\n"
                        "# about b\n"
                        "[[override]]\n"
                        "pool = \"b\"\n"
                        "isp = \"gmail\"\n"
                        "max_smtp_out = 7\n"
                        "until = \"2026-12-01T00:00:00Z\"\n"
                        "reason = \"rb2\"\n" +
                        kC);
  EXPECT_THAT(r.changes,
              ElementsAre("replaced the [[override]] for pool 'b', ISP 'gmail' (line 10)"));
  EXPECT_THAT(
      overrides_of(r.text),
      ElementsAre("a/* pin 1 'ra'", "b/gmail pin 7 until 1796083200 'rb2'", "c/* freeze 'rc'"));
}

TEST(OverrideEditPut, MatchesTheExactScopeOnly) {
  // Pool-wide, per-ISP and per-VMTA entries are different scopes: each gets its own entry.
  std::string text = put_override("", pin("p", "", 5, "pool"), kSource).text;
  text = put_override(text, pin("p", "gmail", 4, "isp"), kSource).text;
  text = put_override(text, pin("p", "gmail", 3, "vmta", "gmail-ip-2"), kSource).text;
  const EditResult r = put_override(text, pin("p", "gmail", 2, "isp again"), kSource);
  EXPECT_THAT(r.changes,
              ElementsAre("replaced the [[override]] for pool 'p', ISP 'gmail' (line 6)"));
  EXPECT_THAT(overrides_of(r.text), ElementsAre("p/* pin 5 'pool'", "p/gmail pin 2 'isp again'",
                                                "p/gmail/gmail-ip-2 pin 3 'vmta'"));
}

TEST(OverrideEditPut, TheSameEntryAgainChangesNothing) {
  const EditResult r = put_override(three(), pin("a", "", 1, "ra"), kSource);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.text, three());  // the trailing comment inside the entry stays
  EXPECT_THAT(r.changes, IsEmpty());
}

TEST(OverrideEditRemove, FirstEntryKeepsTheFileCommentAndGoesWithItsOwn) {
  const EditResult r =
      remove_overrides(three(), "a", std::nullopt, std::nullopt, std::nullopt, kSource);
  // The blank line that separated b from a is not left doubled under the file's comment.
  EXPECT_EQ(r.text, std::string(kHead) + (kB + 1) + kC);
  EXPECT_THAT(r.changes, ElementsAre("removed the [[override]] for pool 'a', every ISP (line 4)"));
  EXPECT_THAT(overrides_of(r.text), ElementsAre("b/gmail pin 2 'rb'", "c/* freeze 'rc'"));

  // Without a comment block of the file's own, the comment above the first entry is the entry's.
  const std::string bare = std::string(kA) + kB;
  const EditResult first =
      remove_overrides(bare, "a", std::nullopt, std::nullopt, std::nullopt, kSource);
  EXPECT_EQ(first.text, std::string(kB + 1));
}

TEST(OverrideEditRemove, MiddleEntry) {
  const EditResult r =
      remove_overrides(three(), "b", std::nullopt, std::nullopt, std::nullopt, kSource);
  EXPECT_EQ(r.text, std::string(kHead) + kA + kC);
  EXPECT_THAT(r.changes,
              ElementsAre("removed the [[override]] for pool 'b', ISP 'gmail' (line 10)"));
  EXPECT_THAT(overrides_of(r.text), ElementsAre("a/* pin 1 'ra'", "c/* freeze 'rc'"));
}

TEST(OverrideEditRemove, LastEntry) {
  const EditResult r =
      remove_overrides(three(), "c", std::nullopt, std::nullopt, std::nullopt, kSource);
  EXPECT_EQ(r.text, std::string(kHead) + kA + kB);
  EXPECT_THAT(r.changes, ElementsAre("removed the [[override]] for pool 'c', every ISP (line 17)"));
  EXPECT_THAT(overrides_of(r.text), ElementsAre("a/* pin 1 'ra'", "b/gmail pin 2 'rb'"));
}

TEST(OverrideEditRemove, EveryEntryLeavesTheFileComment) {
  std::string text = three();
  for (const char* pool : {"b", "a", "c"}) {
    text = remove_overrides(text, pool, std::nullopt, std::nullopt, std::nullopt, kSource).text;
  }
  EXPECT_EQ(text, "# sluice overrides\n");
  EXPECT_THAT(overrides_of(text), IsEmpty());
}

TEST(OverrideEditRemove, Filters) {
  std::string text;
  for (const OverrideEntry& e :
       {frozen("p", "", "whole pool"), pin("p", "gmail", 4, "gmail"),
        pin("p", "gmail", 2, "one ip", "gmail-ip-2"), bounds("p", "yahoo", 1, 3, "yahoo"),
        pin("q", "gmail", 5, "other pool")}) {
    text = put_override(text, e, kSource).text;
  }
  const auto remove = [&](const std::optional<std::string>& isp,
                          const std::optional<std::string>& vmta,
                          std::optional<OverrideKind> kind) {
    return remove_overrides(text, "p", isp, vmta, kind, kSource);
  };

  const EditResult by_isp = remove("gmail", std::nullopt, std::nullopt);
  EXPECT_THAT(by_isp.changes,
              ElementsAre("removed the [[override]] for pool 'p', ISP 'gmail' (line 6)",
                          "removed the [[override]] for pool 'p', ISP 'gmail', VMTA "
                          "'gmail-ip-2' (line 12)"));
  EXPECT_THAT(overrides_of(by_isp.text),
              ElementsAre("p/* freeze 'whole pool'", "p/yahoo bounds 1..3 'yahoo'",
                          "q/gmail pin 5 'other pool'"));

  const EditResult by_vmta = remove(std::nullopt, "gmail-ip-2", std::nullopt);
  EXPECT_THAT(overrides_of(by_vmta.text),
              ElementsAre("p/* freeze 'whole pool'", "p/gmail pin 4 'gmail'",
                          "p/yahoo bounds 1..3 'yahoo'", "q/gmail pin 5 'other pool'"));

  const EditResult by_kind = remove(std::nullopt, std::nullopt, OverrideKind::freeze);
  EXPECT_THAT(by_kind.changes,
              ElementsAre("removed the [[override]] for pool 'p', every ISP (line 1)"));
  EXPECT_THAT(by_kind.text, StartsWith("[[override]]\npool = \"p\"\nisp = \"gmail\"\n"));
  EXPECT_THAT(overrides_of(by_kind.text),
              ElementsAre("p/gmail pin 4 'gmail'", "p/gmail/gmail-ip-2 pin 2 'one ip'",
                          "p/yahoo bounds 1..3 'yahoo'", "q/gmail pin 5 'other pool'"));

  const EditResult pool = remove(std::nullopt, std::nullopt, std::nullopt);
  EXPECT_EQ(pool.changes.size(), 4u);
  EXPECT_EQ(pool.text,
            "[[override]]\n"
            "pool = \"q\"\n"
            "isp = \"gmail\"\n"
            "max_smtp_out = 5\n"
            "reason = \"other pool\"\n");

  const EditResult none = remove("hotmail", std::nullopt, std::nullopt);
  EXPECT_EQ(none.error, "");
  EXPECT_EQ(none.text, text);
  EXPECT_THAT(none.changes, IsEmpty());
}

TEST(OverrideEditTier, PutReplaceAndRemove) {
  const TierEntry gmail{"p", "gmail", "medium", "postmaster tools, 2026-11-27", 0};
  EditResult r = put_tier(three(), gmail, kSource);
  EXPECT_EQ(r.text, three() +
                        "\n"
                        "[[tier]]\n"
                        "pool = \"p\"\n"
                        "isp = \"gmail\"\n"
                        "tier = \"medium\"\n"
                        "source = \"postmaster tools, 2026-11-27\"\n");
  EXPECT_THAT(r.changes, ElementsAre("added the [[tier]] for pool 'p', ISP 'gmail' (line 22)"));
  const std::string with_gmail = r.text;

  r = put_tier(with_gmail, {"p", "yahoo", "warming", "new IPs", 0}, kSource);
  const std::string with_both = r.text;
  EXPECT_THAT(tiers_of(with_both), ElementsAre("p/gmail medium 'postmaster tools, 2026-11-27'",
                                               "p/yahoo warming 'new IPs'"));

  r = put_tier(with_both, {"p", "gmail", "low", "complaints", 0}, kSource);
  EXPECT_THAT(r.changes, ElementsAre("replaced the [[tier]] for pool 'p', ISP 'gmail' (line 22)"));
  EXPECT_THAT(tiers_of(r.text),
              ElementsAre("p/gmail low 'complaints'", "p/yahoo warming 'new IPs'"));
  EXPECT_EQ(loaded(r.text).overrides.size(), 3u);

  r = remove_tiers(with_both, "p", "yahoo", kSource);
  EXPECT_EQ(r.text, with_gmail);
  EXPECT_THAT(r.changes, ElementsAre("removed the [[tier]] for pool 'p', ISP 'yahoo' (line 28)"));

  r = remove_tiers(with_both, "p", std::nullopt, kSource);
  EXPECT_EQ(r.text, three());
  EXPECT_EQ(r.changes.size(), 2u);

  // Tiers and overrides are told apart.
  r = remove_overrides(with_both, "p", std::nullopt, std::nullopt, std::nullopt, kSource);
  EXPECT_THAT(r.changes, IsEmpty());
  r = remove_tiers(with_both, "a", std::nullopt, kSource);
  EXPECT_THAT(r.changes, IsEmpty());
}

TEST(OverrideEditGlobal, CreatedBelowTheFileComment) {
  const EditResult r = set_global_freeze(three(), true, "incident 4713", kSource);
  EXPECT_EQ(r.text, std::string(kHead) +
                        "[global]\n"
                        "freeze = true\n"
                        "reason = \"incident 4713\"\n"
                        "\n" +
                        kA + kB + kC);
  EXPECT_THAT(r.changes, ElementsAre("added [global] with freeze = true (line 3)",
                                     "added [global] reason (line 5)"));
  const OverrideFile file = loaded(r.text);
  EXPECT_TRUE(file.freeze_all);
  EXPECT_EQ(file.freeze_reason, "incident 4713");
  EXPECT_EQ(file.overrides.size(), 3u);
}

TEST(OverrideEditGlobal, CreatedAtTheTop) {
  EXPECT_EQ(set_global_freeze("", true, "", kSource).text, "[global]\nfreeze = true\n");
  // The comment above the first entry stays the entry's.
  const std::string bare = std::string(kA) + kB;
  const EditResult r = set_global_freeze(bare, true, "x", kSource);
  EXPECT_EQ(r.text, "[global]\nfreeze = true\nreason = \"x\"\n\n" + bare);
  EXPECT_TRUE(loaded(r.text).freeze_all);
  // A file of one comment keeps it first.
  EXPECT_EQ(set_global_freeze("# sluice", true, "", kSource).text,
            "# sluice\n\n[global]\nfreeze = true\n");
}

TEST(OverrideEditGlobal, EditedInPlace) {
  const std::string text = std::string(kHead) +
                           "[global]\n"
                           "freeze = false   # the kill switch\n"
                           "\n" +
                           kA;
  const EditResult r = set_global_freeze(text, true, "incident \"7\"", kSource);
  EXPECT_EQ(r.text, std::string(kHead) +
                        "[global]\n"
                        "freeze = true   # the kill switch\n"
                        "reason = \"incident \\\"7\\\"\"\n"
                        "\n" +
                        kA);
  EXPECT_THAT(r.changes,
              ElementsAre("set [global] freeze = true (line 4)", "added [global] reason (line 5)"));
  EXPECT_EQ(loaded(r.text).freeze_reason, "incident \"7\"");

  // A new reason replaces the old one where it is, comment and all around it.
  const EditResult again = set_global_freeze(r.text, true, "incident 8", kSource);
  EXPECT_EQ(again.text, std::string(kHead) +
                            "[global]\n"
                            "freeze = true   # the kill switch\n"
                            "reason = \"incident 8\"\n"
                            "\n" +
                            kA);
  EXPECT_THAT(again.changes, ElementsAre("set [global] reason (line 5)"));

  // Freezing again with no reason keeps the one there.
  const EditResult same = set_global_freeze(again.text, true, "", kSource);
  EXPECT_EQ(same.text, again.text);
  EXPECT_THAT(same.changes, IsEmpty());
}

TEST(OverrideEditGlobal, MissingKeysGoRightAfterTheHeader) {
  const EditResult r =
      set_global_freeze("[global]  # kill switch\nreason = 'old'  # why\n", true, "", kSource);
  EXPECT_EQ(r.text, "[global]  # kill switch\nfreeze = true\nreason = 'old'  # why\n");
  EXPECT_THAT(r.changes, ElementsAre("added [global] freeze = true (line 2)"));

  const EditResult empty = set_global_freeze("[global]", true, "why", kSource);
  EXPECT_EQ(empty.text, "[global]\nfreeze = true\nreason = \"why\"\n");
  EXPECT_TRUE(loaded(empty.text).freeze_all);
}

TEST(OverrideEditGlobal, UnfreezingRemovesTheReason) {
  const std::string text =
      "[global]\n"
      "reason = \"\"\"long \\\n"
      "[[override]] \\\n"
      "story\"\"\"  # why\n"
      "freeze = true # kill switch\n"
      "\n" +
      std::string(kA);
  const EditResult r = set_global_freeze(text, false, "ignored", kSource);
  EXPECT_EQ(r.text, "[global]\nfreeze = false # kill switch\n\n" + std::string(kA));
  EXPECT_THAT(r.changes, ElementsAre("removed [global] reason (line 2)",
                                     "set [global] freeze = false (line 2)"));
  const OverrideFile file = loaded(r.text);
  EXPECT_FALSE(file.freeze_all);
  EXPECT_EQ(file.freeze_reason, "");

  // A multi-line reason is replaced by a one-line one, keeping what follows it.
  const EditResult reason = set_global_freeze(text, true, "short", kSource);
  EXPECT_EQ(reason.text, "[global]\nreason = \"short\"  # why\nfreeze = true # kill switch\n\n" +
                             std::string(kA));

  // Nothing to unfreeze.
  const EditResult none = set_global_freeze(three(), false, "", kSource);
  EXPECT_EQ(none.text, three());
  EXPECT_THAT(none.changes, IsEmpty());
}

TEST(OverrideEditLayout, MultiLineStringsThatLookLikeHeadersAndComments) {
  // A line-ending backslash joins the lines; a literal drops the newline after its quotes.
  const std::string a =
      "[[override]]\n"
      "pool = \"a\"\n"
      "max_smtp_out = 4\n"
      "reason = \"\"\"see \\\n"
      "[[override]] \\\n"
      "\n"
      "# not a comment\"\"\"\n";
  const std::string b =
      "[[override]]\n"
      "pool = \"b\"\n"
      "freeze = true\n"
      "reason = '''\n"
      "[global] # x'''\n";
  const std::string text = a + b;
  ASSERT_THAT(overrides_of(text), ElementsAre("a/* pin 4 'see [[override]] # not a comment'",
                                              "b/* freeze '[global] # x'"));

  EditResult r = remove_overrides(text, "a", std::nullopt, std::nullopt, std::nullopt, kSource);
  EXPECT_EQ(r.text, b);
  r = remove_overrides(text, "b", std::nullopt, std::nullopt, std::nullopt, kSource);
  EXPECT_EQ(r.text, a);
  r = put_override(text, pin("a", "", 2, "short"), kSource);
  EXPECT_EQ(r.text, "[[override]]\npool = \"a\"\nmax_smtp_out = 2\nreason = \"short\"\n" + b);
  r = put_override(text, pin("b", "", 2, "short"), kSource);
  EXPECT_EQ(r.text, a + "[[override]]\npool = \"b\"\nmax_smtp_out = 2\nreason = \"short\"\n");
  r = set_global_freeze(text, true, "", kSource);
  EXPECT_EQ(r.text, "[global]\nfreeze = true\n\n" + text);
  EXPECT_EQ(loaded(r.text).overrides.size(), 2u);
}

TEST(OverrideEditLayout, KeepsCrlfLineEndings) {
  const std::string text =
      "# sluice\r\n"
      "\r\n"
      "[[override]]\r\n"
      "pool = \"a\"\r\n"
      "max_smtp_out = 1\r\n"
      "reason = \"r\"\r\n";
  EditResult r = put_override(text, pin("b", "", 2, "s"), kSource);
  EXPECT_EQ(r.text, text +
                        "\r\n"
                        "[[override]]\r\n"
                        "pool = \"b\"\r\n"
                        "max_smtp_out = 2\r\n"
                        "reason = \"s\"\r\n");
  EXPECT_EQ(loaded(r.text).overrides.size(), 2u);
  r = remove_overrides(text, "a", std::nullopt, std::nullopt, std::nullopt, kSource);
  EXPECT_EQ(r.text, "# sluice\r\n");
  r = set_global_freeze(text, true, "x", kSource);
  EXPECT_EQ(r.text,
            "# sluice\r\n\r\n[global]\r\nfreeze = true\r\nreason = \"x\"\r\n\r\n[[override]]\r\n"
            "pool = \"a\"\r\nmax_smtp_out = 1\r\nreason = \"r\"\r\n");
  EXPECT_TRUE(loaded(r.text).freeze_all);
}

TEST(OverrideEditLayout, AByteOrderMarkStaysFirst) {
  const EditResult r =
      set_global_freeze("\xEF\xBB\xBF[global]\nfreeze = false\n", true, "", kSource);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.text, "\xEF\xBB\xBF[global]\nfreeze = true\n");
  EXPECT_TRUE(loaded(r.text).freeze_all);
  const std::string entry = "\xEF\xBB\xBF" + std::string(kA);
  const EditResult top = set_global_freeze(entry, true, "", kSource);
  EXPECT_EQ(top.text, "\xEF\xBB\xBF[global]\nfreeze = true\n\n" + std::string(kA));
  EXPECT_TRUE(loaded(top.text).freeze_all);
}

TEST(OverrideEditErrors, BrokenInputIsLeftAlone) {
  const std::string broken = "[[override]\npool = \"a\"\n";
  const EditResult r = put_override(broken, pin("a", "", 1, "r"), kSource);
  EXPECT_THAT(r.error, StartsWith("overrides.toml:1: "));
  EXPECT_EQ(r.text, broken);
  EXPECT_THAT(r.changes, IsEmpty());

  // What the loop would refuse is refused here too, with the loop's message.
  const std::string no_reason = "[[override]]\npool = \"a\"\nmax_smtp_out = 1\n";
  const EditResult e =
      remove_overrides(no_reason, "a", std::nullopt, std::nullopt, std::nullopt, kSource);
  EXPECT_EQ(e.error, parse_overrides(no_reason, kSource).error);
  EXPECT_EQ(e.text, no_reason);
}

TEST(OverrideEditErrors, TablesWithoutAHeaderAreRefused) {
  const std::string inline_entry =
      "# hand-written\n"
      "override = [{pool = \"a\", max_smtp_out = 1, reason = \"r\"}]\n";
  ASSERT_EQ(parse_overrides(inline_entry, kSource).error, "");
  const EditResult r = put_override(inline_entry, pin("b", "", 1, "r"), kSource);
  EXPECT_THAT(r.error, StartsWith("overrides.toml:2: this [[override]] has no header line"));
  EXPECT_EQ(r.text, inline_entry);

  const std::string dotted = "global.freeze = true\n";
  EXPECT_THAT(set_global_freeze(dotted, false, "", kSource).error,
              StartsWith("overrides.toml:1: this [global] has no header line"));
}

TEST(OverrideEditTomlString, Escapes) {
  EXPECT_EQ(toml_string(""), "\"\"");
  EXPECT_EQ(toml_string("plain text"), "\"plain text\"");
  EXPECT_EQ(toml_string("say \"hi\""), "\"say \\\"hi\\\"\"");
  EXPECT_EQ(toml_string("C:\\tmp"), "\"C:\\\\tmp\"");
  EXPECT_EQ(toml_string("two\nlines\tand a tab"), "\"two\\nlines\\tand a tab\"");
  constexpr char kControls[] = "nul\0bell\a del\x7f cr\r";
  EXPECT_EQ(toml_string(std::string(kControls, sizeof kControls - 1)),
            "\"nul\\u0000bell\\u0007 del\\u007F cr\\u000D\"");
  EXPECT_EQ(toml_string("refusé € 📨"), "\"refusé € 📨\"");

  // What a reason may hold comes back out of the file.
  const std::string nasty = "a \"b\" \\c\td é";
  const EditResult r = put_override("", pin("p", "", 1, nasty), kSource);
  ASSERT_EQ(loaded(r.text).overrides.size(), 1u);
  EXPECT_EQ(loaded(r.text).overrides[0].reason, nasty);
}

}  // namespace
}  // namespace sluice::config
