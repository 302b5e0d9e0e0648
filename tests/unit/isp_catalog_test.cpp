#include "controller/isp_catalog.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using C = DeferralClass;

class BuiltinCatalog : public ::testing::Test {
 protected:
  DeferralClass classify(std::string_view isp, std::string_view diag) const {
    const std::optional<IspId> id = catalog_->find(isp);
    EXPECT_TRUE(id.has_value()) << "no ISP " << isp;
    return catalog_->classify_deferral(id.value_or(catalog_->generic()), diag);
  }
  std::string isp_of_domain(std::string_view domain) const {
    const std::optional<IspId> id = catalog_->match_domain(domain);
    return id ? catalog_->name(*id) : "(none)";
  }
  std::string isp_of_mx(std::string_view host) const {
    const std::optional<IspId> id = catalog_->match_mx_host(host);
    return id ? catalog_->name(*id) : "(none)";
  }

  std::shared_ptr<const IspCatalog> catalog_ = IspCatalog::builtin();
};

// --- Deferral taxonomy, one test per row of domain.md section 3 ---

TEST_F(BuiltinCatalog, GmailTryAgainLaterIsConnectionPressure) {
  EXPECT_EQ(classify("gmail",
                     "smtp;421-4.7.0 Try again later, closing connection. (EHLO) For more "
                     "information, go to 421-4.7.0  https://support.google.com/a/answer/3221692 "
                     "a640c23a62f3a-a9e5b1c2d3si12345678966b.123 - gsmtp"),
            C::connection);
  EXPECT_EQ(classify("gmail",
                     "smtp;421 4.7.0 [203.0.113.5] Try again later, closing connection. "
                     "d2e1a72fcca58-71e5c2f0b3bsi1234567b3a.42 - gsmtp"),
            C::connection);
}

TEST_F(BuiltinCatalog, GmailUnusualRateOfUnsolicitedMailIsReputation) {
  // The text also says "rate limited": Gmail's own rule must win over the generic rate rule.
  EXPECT_EQ(
      classify("gmail",
               "smtp;421-4.7.28 [203.0.113.5      15] Our system has detected an unusual "
               "rate of unsolicited mail originating from your IP address. To protect our "
               "users from spam, mail sent from your IP address has been temporarily rate "
               "limited. Please visit 421-4.7.28  "
               "https://support.google.com/mail/?p=UnsolicitedRateLimitError to review our "
               "Bulk Email Senders Guidelines. 5b1f17b1804b1-43160dc1c12si12345f8f.3 - gsmtp"),
      C::reputation);
  EXPECT_EQ(classify("gmail",
                     "smtp;421-4.7.0 [203.0.113.5      15] Our system has detected an unusual rate "
                     "of unsolicited mail originating from your IP address. To protect our users "
                     "from spam, mail sent from your IP address has been temporarily rate "
                     "limited. a1si5812345qkb.170 - gsmtp"),
            C::reputation);
}

TEST_F(BuiltinCatalog, GmailReceivingMailTooQuicklyIsOneRecipient) {
  EXPECT_EQ(
      classify("gmail",
               "smtp;450-4.2.1 The user you are trying to contact is receiving mail too "
               "quickly. Please resend your message at a later time. If the user is able to "
               "receive mail at that time, your message will be delivered. For more "
               "information, go to 450-4.2.1  https://support.google.com/mail/?p=ReceivingRate "
               "e9si1234567pfn.224 - gsmtp"),
      C::recipient);
  EXPECT_EQ(
      classify("gmail",
               "smtp;450-4.2.1 The user you are trying to contact is receiving mail at a rate "
               "that prevents additional messages from being delivered. Please resend your "
               "message at a later time. f3si987654qtx.88 - gsmtp"),
      C::recipient);
}

TEST_F(BuiltinCatalog, MicrosoftRp001And4765xAreReputation) {
  EXPECT_EQ(classify("outlook",
                     "smtp;421 RP-001 (BAY004-MC1F21) Unfortunately, some messages from "
                     "203.0.113.5 weren't sent. Please try again. We have limits for how many "
                     "messages can be sent per hour and per day. You can also refer to "
                     "http://mail.live.com/mail/troubleshooting.aspx#errors."),
            C::reputation);
  EXPECT_EQ(classify("outlook",
                     "smtp;451 4.7.650 The mail server [203.0.113.5] has been temporarily rate "
                     "limited due to IP reputation. For e-mail delivery information, see "
                     "https://postmaster.live.com (S775) [Name=Protocol Filter Agent][AGT=PFA]"
                     "[MxId=11BB8C1E2D3F4A56] [AM4PEPF00027A5F.eurprd04.prod.outlook.com]"),
            C::reputation);
  EXPECT_EQ(
      classify("outlook",
               "smtp;451 4.7.651 The mail server [203.0.113.5] has been temporarily rate "
               "limited due to IP reputation. For e-mail delivery information, see "
               "https://postmaster.live.com (S843) [DB5PEPF00014B8D.eurprd02.prod.outlook.com]"),
      C::reputation);
}

TEST_F(BuiltinCatalog, MicrosoftRp002IsConnectionRate) {
  EXPECT_EQ(classify("outlook",
                     "smtp;421 RP-002 (COL004-MC4F12) Unfortunately, some messages from "
                     "203.0.113.5 weren't sent. Please try again. We have limits for how many "
                     "messages can be sent per hour and per day. You can also refer to "
                     "http://mail.live.com/mail/troubleshooting.aspx#errors."),
            C::rate);
}

TEST_F(BuiltinCatalog, MicrosoftRp003And47652AreConnectionCount) {
  EXPECT_EQ(classify("outlook",
                     "smtp;421 RP-003 (SNT004-MC2F3) Unfortunately, some messages from "
                     "203.0.113.5 weren't sent. Please try again. We have limits for how many "
                     "messages can be sent per hour and per day."),
            C::connection);
  EXPECT_EQ(classify("outlook",
                     "smtp;451 4.7.652 The mail server [203.0.113.5] has exceeded the maximum "
                     "number of connections. (S3115) "
                     "[BN8NAM12FT045.eop-nam12.prod.protection.outlook.com]"),
            C::connection);
}

TEST_F(BuiltinCatalog, YahooTssCodesAreReputation) {
  for (const char* code : {"TSS04", "TSS05", "IPTS04", "IPTS05", "TS01", "TS02", "TS03"}) {
    const std::string diag = std::string("smtp;421 4.7.0 [") + code +
                             "] Messages from 203.0.113.5 temporarily deferred due to unexpected "
                             "volume or user complaints - 4.16.55.1; see "
                             "https://postmaster.yahooinc.com/error-codes";
    EXPECT_EQ(classify("yahoo", diag), C::reputation) << code;
  }
  // Not a Yahoo code: nothing Yahoo-specific applies.
  EXPECT_EQ(
      classify("yahoo", "smtp;421 4.7.0 [XY99] Messages from 203.0.113.5 temporarily deferred"),
      C::other);
}

TEST_F(BuiltinCatalog, GmxAndWebDeTooManyConnectionsIsConnectionCount) {
  EXPECT_EQ(classify("gmx",
                     "smtp;421 gmx.net (mxgmx015) Nemesis ESMTP Service not available - Too many "
                     "connections from 203.0.113.5"),
            C::connection);
  EXPECT_EQ(classify("gmx",
                     "smtp;421-web.de (mxweb110) Nemesis ESMTP Service not available 421 Too many "
                     "connections from your IP"),
            C::connection);
}

TEST_F(BuiltinCatalog, OrangeTropDeConnexionsIsConnectionCount) {
  EXPECT_EQ(classify("orange",
                     "smtp;421 mwinf5c77 ME Trop de connexions, veuillez verifier votre "
                     "configuration. Too many connections, slow down. OFR004_104 [104]"),
            C::connection);
  EXPECT_EQ(classify("orange", "smtp;421 mwinf5d02 ME Trop de connexions, veuillez vérifier."),
            C::connection);
}

TEST_F(BuiltinCatalog, OrangeServiceRefuseIsReputation) {
  EXPECT_EQ(classify("orange",
                     "smtp;421 mwinf5c10 ME Service refusé. Veuillez essayer plus tard. Service "
                     "refused, please try later. OFR004_105 [105]"),
            C::reputation);
  EXPECT_EQ(classify("orange",
                     "smtp;421 mwinf5d35 ME Service refuse. Veuillez essayer plus tard. Service "
                     "refused, please try later. OFR_999 [999]"),
            C::reputation);
  EXPECT_EQ(classify("orange", "smtp;421 mwinf5c40 ME Service refusé. Veuillez essayer plus tard."),
            C::reputation);
}

TEST_F(BuiltinCatalog, OverQuotaIsOneRecipientAtEveryIsp) {
  for (const char* isp : {"gmail", "outlook", "yahoo", "gmx", "orange", "generic"}) {
    EXPECT_EQ(classify(isp,
                       "smtp;452-4.2.2 The recipient's inbox is out of storage space. Please "
                       "direct the recipient to 452-4.2.2  "
                       "https://support.google.com/mail/?p=OverQuotaTemp a7si2 - gsmtp"),
              C::recipient)
        << isp;
    EXPECT_EQ(classify(isp,
                       "smtp;452 4.2.2 <jane@example.org>: Recipient address rejected: "
                       "Mailbox is full"),
              C::recipient)
        << isp;
    EXPECT_EQ(classify(isp, "smtp;450 4.2.0 Mailbox full"), C::recipient) << isp;
    EXPECT_EQ(classify(isp, "smtp;422 Recipient is over quota"), C::recipient) << isp;
  }
}

TEST_F(BuiltinCatalog, TlsDnsAndAuthenticationAreConfiguration) {
  for (const char* isp : {"gmail", "outlook", "yahoo", "gmx", "orange", "generic"}) {
    EXPECT_EQ(classify(isp, "smtp;451 4.7.1 Must issue a STARTTLS command first"), C::config)
        << isp;
    EXPECT_EQ(classify(isp, "smtp;421 4.7.0 TLS required for this domain"), C::config) << isp;
    EXPECT_EQ(classify(isp, "smtp;451 4.4.3 DNS lookup failure for mail.example.com"), C::config)
        << isp;
    EXPECT_EQ(classify(isp,
                       "smtp;451 4.3.0 <bounce@mail.example.com>: Sender address rejected: "
                       "Host not found"),
              C::config)
        << isp;
    EXPECT_EQ(classify(isp, "smtp;454 4.7.0 Authentication failed"), C::config) << isp;
  }
  EXPECT_EQ(classify("gmail",
                     "smtp;421-4.7.26 [203.0.113.5] This mail has been rate limited because it is "
                     "unauthenticated. Gmail requires all senders to authenticate with either SPF "
                     "or DKIM. b4si123 - gsmtp"),
            C::config);
}

TEST_F(BuiltinCatalog, UnknownTextIsOther) {
  for (const char* isp : {"gmail", "outlook", "yahoo", "gmx", "orange", "generic"}) {
    EXPECT_EQ(classify(isp, "smtp;451 4.3.0 Mail server temporarily rejected message."), C::other)
        << isp;
    EXPECT_EQ(classify(isp, ""), C::other) << isp;
  }
}

TEST_F(BuiltinCatalog, AnIspsRulesDoNotApplyToAnother) {
  const char* gmail_connection =
      "smtp;421-4.7.0 Try again later, closing connection. (EHLO) a1si2 - gsmtp";
  EXPECT_EQ(classify("outlook", gmail_connection), C::other);
  EXPECT_EQ(classify("generic", gmail_connection), C::other);
  EXPECT_EQ(classify("gmail",
                     "smtp;421 4.7.0 [TSS04] Messages from 203.0.113.5 temporarily "
                     "deferred due to unexpected volume or user complaints"),
            C::other);
  EXPECT_EQ(classify("gmail",
                     "smtp;421 RP-002 (COL004-MC4F12) Unfortunately, some messages "
                     "from 203.0.113.5 weren't sent."),
            C::other);
}

TEST_F(BuiltinCatalog, GenericThrottleTextsApplyEverywhere) {
  EXPECT_EQ(classify("generic", "smtp;421 4.7.0 Too many concurrent connections from this IP"),
            C::connection);
  EXPECT_EQ(classify("generic", "smtp;450 4.7.1 Connection limit reached, try again later"),
            C::connection);
  EXPECT_EQ(classify("generic", "smtp;451 4.7.1 You are sending too fast, slow down"), C::rate);
  EXPECT_EQ(classify("yahoo", "smtp;421 4.7.1 Rate limit exceeded for 203.0.113.5"), C::rate);
}

TEST_F(BuiltinCatalog, MatchingIgnoresCase) {
  EXPECT_EQ(classify("gmail", "SMTP;421-4.7.0 TRY AGAIN LATER, CLOSING CONNECTION."),
            C::connection);
  EXPECT_EQ(classify("yahoo", "smtp;421 4.7.0 [tss04] messages temporarily deferred"),
            C::reputation);
  EXPECT_EQ(classify("orange", "smtp;421 ME TROP DE CONNEXIONS"), C::connection);
}

// A source IP such as 194.7.26.10 contains "4.7.26", Gmail's "unauthenticated" status code;
// a plain connection limit must not turn into a configuration alert that never throttles.
TEST_F(BuiltinCatalog, StatusCodeInsideAnIpAddressIsNotAConfigurationProblem) {
  EXPECT_EQ(classify("generic", "smtp;421 4.7.0 Too many connections from 194.7.26.10"),
            C::connection);
  EXPECT_EQ(classify("generic", "smtp;451 4.7.1 Rate limit exceeded for 84.7.27.3, slow down"),
            C::rate);
}

// --- ISP by domain and by MX host ---

TEST_F(BuiltinCatalog, IspByRecipientDomain) {
  EXPECT_EQ(isp_of_domain("gmail.com"), "gmail");
  EXPECT_EQ(isp_of_domain("googlemail.com"), "gmail");
  EXPECT_EQ(isp_of_domain("outlook.com"), "outlook");
  EXPECT_EQ(isp_of_domain("hotmail.com"), "outlook");
  EXPECT_EQ(isp_of_domain("hotmail.co.uk"), "outlook");
  EXPECT_EQ(isp_of_domain("live.fr"), "outlook");
  EXPECT_EQ(isp_of_domain("msn.com"), "outlook");
  EXPECT_EQ(isp_of_domain("yahoo.com"), "yahoo");
  EXPECT_EQ(isp_of_domain("yahoo.co.jp"), "yahoo");
  EXPECT_EQ(isp_of_domain("ymail.com"), "yahoo");
  EXPECT_EQ(isp_of_domain("aol.com"), "yahoo");
  EXPECT_EQ(isp_of_domain("gmx.de"), "gmx");
  EXPECT_EQ(isp_of_domain("gmx.net"), "gmx");
  EXPECT_EQ(isp_of_domain("web.de"), "gmx");
  EXPECT_EQ(isp_of_domain("orange.fr"), "orange");
  EXPECT_EQ(isp_of_domain("wanadoo.fr"), "orange");
}

TEST_F(BuiltinCatalog, DomainMatchIgnoresCase) {
  EXPECT_EQ(isp_of_domain("GMail.COM"), "gmail");
  EXPECT_EQ(isp_of_domain("Hotmail.CO.UK"), "outlook");
  EXPECT_EQ(isp_of_domain("WEB.DE"), "gmx");
}

TEST_F(BuiltinCatalog, OtherDomainsMatchNoIsp) {
  EXPECT_EQ(isp_of_domain("example.org"), "(none)");
  EXPECT_EQ(isp_of_domain("notgmail.com"), "(none)");
  EXPECT_EQ(isp_of_domain("gmail.com.example.org"), "(none)");
  EXPECT_EQ(isp_of_domain("hotmailer.com"), "(none)");
  EXPECT_EQ(isp_of_domain(""), "(none)");
}

TEST_F(BuiltinCatalog, IspByMxHostSuffix) {
  EXPECT_EQ(isp_of_mx("aspmx.l.google.com"), "gmail");
  EXPECT_EQ(isp_of_mx("gmail-smtp-in.l.google.com"), "gmail");
  EXPECT_EQ(isp_of_mx("ASPMX.L.GOOGLE.COM"), "gmail");
  EXPECT_EQ(isp_of_mx("x.olc.protection.outlook.com"), "outlook");
  EXPECT_EQ(isp_of_mx("acme-example.mail.protection.outlook.com"), "outlook");
  EXPECT_EQ(isp_of_mx("mta5.am0.yahoodns.net"), "yahoo");
  EXPECT_EQ(isp_of_mx("mx00.gmx.net"), "gmx");
  EXPECT_EQ(isp_of_mx("smtp-in.orange.fr"), "orange");
  EXPECT_EQ(isp_of_mx("mx.notgoogle.com"), "(none)");
  EXPECT_EQ(isp_of_mx("mx1.example.org"), "(none)");
  EXPECT_EQ(isp_of_mx(""), "(none)");
}

TEST_F(BuiltinCatalog, HoldsTheSixBuiltInIspsWithGenericLast) {
  ASSERT_EQ(catalog_->size(), 6u);
  std::vector<std::string> names;
  for (IspId id = 0; id < catalog_->size(); ++id) names.push_back(catalog_->name(id));
  EXPECT_THAT(names, ElementsAre("gmail", "outlook", "yahoo", "gmx", "orange", "generic"));
  EXPECT_EQ(catalog_->name(catalog_->generic()), "generic");
  EXPECT_EQ(catalog_->find("orange"), IspId{4});
  EXPECT_EQ(catalog_->find("seznam"), std::nullopt);
}

// --- Helpers that cut domains and hosts out of accounting fields ---

TEST(RecipientDomain, TakesWhatFollowsTheLastAt) {
  EXPECT_EQ(recipient_domain("jane.doe@Example.COM"), "Example.COM");
  EXPECT_EQ(recipient_domain("<jane@gmail.com>"), "gmail.com");
  EXPECT_EQ(recipient_domain("\"j@ne\"@yahoo.fr"), "yahoo.fr");
  EXPECT_EQ(recipient_domain("postmaster"), "");
  EXPECT_EQ(recipient_domain(""), "");
}

TEST(QueueDomain, TakesWhatPrecedesTheSlash) {
  EXPECT_EQ(queue_domain("gmail.com/gmail-ip-1"), "gmail.com");
  EXPECT_EQ(queue_domain("orange.fr"), "orange.fr");
  EXPECT_EQ(queue_domain(""), "");
}

TEST(MxHost, DropsTheAddressAndTheTrailingDot) {
  EXPECT_EQ(mx_host("gmail-smtp-in.l.google.com (142.250.1.27)"), "gmail-smtp-in.l.google.com");
  EXPECT_EQ(mx_host("mx1.example.org."), "mx1.example.org");
  EXPECT_EQ(mx_host("mx1.example.org. (192.0.2.25)"), "mx1.example.org");
  EXPECT_EQ(mx_host(""), "");
}

// --- Operator specs merged into the built-in catalog ---

std::vector<std::string> names_of(const std::vector<IspSpec>& specs) {
  std::vector<std::string> names;
  for (const IspSpec& s : specs) names.push_back(s.name);
  return names;
}

IspSpec seznam_spec() {
  return IspSpec{
      "seznam",
      {"seznam.cz", "email.cz"},
      {".seznam.cz"},
      {{R"(421 4\.7\.0 .*too many connections from your ip)", C::connection, "sluice.toml:20"},
       {R"(spam score exceeded)", C::reputation, "sluice.toml:23"}},
      "sluice.toml:17"};
}

TEST(MergeIspSpecs, OperatorIspsGoBeforeGenericInTheirOrder) {
  IspSpec post_cz{"post-cz", {"post.cz"}, {}, {}, "sluice.toml:30"};
  const std::vector<IspSpec> merged =
      merge_isp_specs(builtin_isp_specs(), {seznam_spec(), post_cz});
  EXPECT_THAT(names_of(merged), ElementsAre("gmail", "outlook", "yahoo", "gmx", "orange", "seznam",
                                            "post-cz", "generic"));

  auto catalog = IspCatalog::build(merged);
  ASSERT_TRUE(catalog.ok()) << catalog.error().message;
  const IspId seznam = (*catalog)->find("seznam").value();
  EXPECT_EQ((*catalog)->match_domain("email.cz"), seznam);
  EXPECT_EQ((*catalog)->match_mx_host("mx1.seznam.cz"), seznam);
  EXPECT_EQ(
      (*catalog)->classify_deferral(seznam, "smtp;421 4.7.0 Too many connections from your IP"),
      C::connection);
  EXPECT_EQ((*catalog)->classify_deferral(seznam, "smtp;451 4.7.1 Spam score exceeded"),
            C::reputation);
  // Common rules still follow the operator's.
  EXPECT_EQ((*catalog)->classify_deferral(seznam, "smtp;452 4.2.2 Mailbox full"), C::recipient);
  EXPECT_EQ((*catalog)->generic(), IspId{7});
}

TEST(MergeIspSpecs, OverridingDomainsKeepsTheBuiltInRules) {
  IspSpec gmail{"gmail", {"gmail.com", "acme-gsuite.example"}, {}, {}, "sluice.toml:5"};
  const std::vector<IspSpec> merged = merge_isp_specs(builtin_isp_specs(), {gmail});
  ASSERT_EQ(merged.size(), 6u);
  EXPECT_THAT(merged[0].domains, ElementsAre("gmail.com", "acme-gsuite.example"));
  EXPECT_THAT(merged[0].mx_suffixes, ElementsAre(".google.com", ".googlemail.com"));
  EXPECT_EQ(merged[0].rules.size(), 3u);
  EXPECT_EQ(merged[0].origin, "sluice.toml:5");

  auto catalog = IspCatalog::build(merged).value();
  const IspId id = catalog->find("gmail").value();
  EXPECT_EQ(catalog->match_domain("acme-gsuite.example"), id);
  EXPECT_EQ(catalog->match_domain("googlemail.com"), std::nullopt);
  EXPECT_EQ(catalog->classify_deferral(id, "smtp;421-4.7.0 Try again later, closing connection."),
            C::connection);
}

TEST(MergeIspSpecs, OverridingRulesReplacesTheBuiltInRules) {
  IspSpec outlook{
      "outlook", {}, {}, {{R"(421 RP-00[123])", C::reputation, "sluice.toml:9"}}, "sluice.toml:7"};
  const std::vector<IspSpec> merged = merge_isp_specs(builtin_isp_specs(), {outlook});
  ASSERT_EQ(merged.size(), 6u);
  ASSERT_EQ(merged[1].rules.size(), 1u);
  EXPECT_EQ(merged[1].rules[0].origin, "sluice.toml:9");
  EXPECT_EQ(merged[1].domains.size(), 4u);  // kept: hotmail.* and all

  auto catalog = IspCatalog::build(merged).value();
  const IspId id = catalog->find("outlook").value();
  EXPECT_EQ(catalog->match_domain("hotmail.fr"), id);
  EXPECT_EQ(catalog->classify_deferral(id, "smtp;421 RP-002 (COL004-MC4F12) Unfortunately"),
            C::reputation);
  EXPECT_EQ(catalog->classify_deferral(id,
                                       "smtp;451 4.7.652 The mail server [203.0.113.5] has "
                                       "exceeded the maximum number of connections."),
            C::other);
}

TEST(IspCatalogBuild, RejectsABadPatternNamingItsOrigin) {
  IspSpec bad = seznam_spec();
  bad.rules[1].pattern = "spam (score";
  auto catalog = IspCatalog::build(merge_isp_specs(builtin_isp_specs(), {bad}));
  ASSERT_FALSE(catalog.ok());
  EXPECT_THAT(catalog.error().message, HasSubstr("sluice.toml:23"));
  EXPECT_THAT(catalog.error().message, HasSubstr("seznam"));
  EXPECT_THAT(catalog.error().message, HasSubstr("spam (score"));
}

TEST(IspCatalogBuild, NeedsAGenericEntry) {
  std::vector<IspSpec> specs = builtin_isp_specs();
  specs.pop_back();
  auto catalog = IspCatalog::build(specs);
  ASSERT_FALSE(catalog.ok());
  EXPECT_THAT(catalog.error().message, HasSubstr("generic"));
}

}  // namespace
}  // namespace sluice
