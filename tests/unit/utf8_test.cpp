#include "controller/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

std::string repaired(std::string_view text) {
  std::string out;
  append_repaired_utf8(text, out);
  return out;
}

TEST(IsValidUtf8, AcceptsAsciiAndWellFormedSequences) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("421 4.7.0 Try again later, closing connection."));
  EXPECT_TRUE(is_valid_utf8("Service refusé"));            // 2 bytes
  EXPECT_TRUE(is_valid_utf8("limite de 10 € par envoi"));  // 3 bytes
  EXPECT_TRUE(is_valid_utf8("sent 📨"));                    // 4 bytes
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF"));          // U+10FFFF, the last code point
}

TEST(IsValidUtf8, RejectsMalformedSequences) {
  EXPECT_FALSE(is_valid_utf8("Service refus\xe9"));  // Latin-1
  EXPECT_FALSE(is_valid_utf8("\x80"));               // lone continuation byte
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));           // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xE0\x80\xAF"));       // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));       // UTF-16 surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));   // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(is_valid_utf8("caf\xC3"));        // cut at the end
  EXPECT_FALSE(is_valid_utf8("\xE2\x82 euro"));  // cut in the middle
}

// The fast path checks 8 bytes at a time: a bad byte must be found in the word and in the tail.
TEST(IsValidUtf8, FindsBadBytesAtEveryPosition) {
  for (std::size_t pos = 0; pos < 20; ++pos) {
    std::string text(20, 'a');
    text[pos] = '\xe9';
    EXPECT_FALSE(is_valid_utf8(text)) << pos;
    text.replace(pos, 1, "é");
    EXPECT_TRUE(is_valid_utf8(text)) << pos;
  }
}

TEST(AppendRepairedUtf8, ReadsInvalidBytesAsLatin1) {
  EXPECT_EQ(repaired("Service refus\xe9"), "Service refusé");
  EXPECT_EQ(repaired("Trop de connexions, veuillez v\xe9rifier"),
            "Trop de connexions, veuillez vérifier");
  EXPECT_EQ(repaired("\x80"), "\xC2\x80");
  EXPECT_EQ(repaired("\xff"), "ÿ");
  EXPECT_EQ(repaired("caf\xC3"), "cafÃ");
  EXPECT_EQ(repaired("\xE2\x82 euro"), "â\xC2\x82 euro");
}

TEST(AppendRepairedUtf8, KeepsValidTextAndAppends) {
  std::string out = "smtp;";
  append_repaired_utf8("421 Service refusé 📨", out);
  EXPECT_EQ(out, "smtp;421 Service refusé 📨");
  append_repaired_utf8("", out);
  EXPECT_EQ(out, "smtp;421 Service refusé 📨");
}

TEST(AppendRepairedUtf8, OutputIsAlwaysValid) {
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  const std::string out = repaired(all_bytes + all_bytes);
  EXPECT_TRUE(is_valid_utf8(out));
  EXPECT_EQ(out.size(), 128u * 2 + 128u * 2 * 2);  // ASCII kept, every high byte becomes two
}

TEST(Utf8Prefix, CountsCodePoints) {
  EXPECT_EQ(utf8_prefix("Service refusé.", 14), "Service refusé");
  EXPECT_EQ(utf8_prefix("Service refusé.", 13), "Service refus");
  EXPECT_EQ(utf8_prefix("€€€", 2), "€€");
  EXPECT_EQ(utf8_prefix("📨📨", 1), "📨");
  EXPECT_EQ(utf8_prefix("abc", 0), "");
  EXPECT_EQ(utf8_prefix("abc", 60), "abc");
  EXPECT_EQ(utf8_prefix("", 5), "");
}

TEST(Utf8Prefix, CountsAnInvalidByteAsOneCharacter) {
  EXPECT_EQ(utf8_prefix("refus\xe9 ok", 6), "refus\xe9");
  EXPECT_EQ(utf8_prefix("caf\xC3", 10), "caf\xC3");
}

}  // namespace
}  // namespace sluice
