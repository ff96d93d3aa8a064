// printable(): file-controlled text reaches a terminal as one safe line (fault 7 of the review at
// commit e185524: a tensor name with "\n" forged a second "w4a16: error:" line, and ESC/OSC
// sequences in names drove the terminal).
#include "common/printable.hpp"

#include <gtest/gtest.h>

#include <string>

#include "common/check.hpp"
#include "io/safetensors.hpp"
#include "support/io_test_util.hpp"

namespace w4a16 {
namespace {

TEST(Printable, KeepsPrintableAsciiAndValidUtf8) {
  EXPECT_EQ(printable("model.layers.0.mlp.down_proj"), "model.layers.0.mlp.down_proj");
  EXPECT_EQ(printable("caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80"),
            "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(printable("back\\slash"), "back\\slash");
}

TEST(Printable, EscapesControlCharacters) {
  EXPECT_EQ(printable("a\nw4a16: error: forged"), "a\\nw4a16: error: forged");
  EXPECT_EQ(printable("\r\t"), "\\r\\t");
  EXPECT_EQ(printable("\x1b]0;title\x07"), "\\x1B]0;title\\x07");
  EXPECT_EQ(printable(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(printable("\x7f"), "\\x7F");
}

TEST(Printable, EscapesInvalidUtf8BytePerByte) {
  EXPECT_EQ(printable("\xff"), "\\xFF");
  EXPECT_EQ(printable("\xC3"), "\\xC3");                             // truncated sequence
  EXPECT_EQ(printable("\xC0\xAF"), "\\xC0\\xAF");                    // overlong '/'
  EXPECT_EQ(printable("\xED\xA0\x80"), "\\xED\\xA0\\x80");           // surrogate
  EXPECT_EQ(printable("\xF4\x90\x80\x80"), "\\xF4\\x90\\x80\\x80");  // above U+10FFFF
}

TEST(Printable, EscapesC1AndBidiControls) {
  EXPECT_EQ(printable("\xC2\x9B"
                      "31m"),
            "\\u{009B}31m");                      // 8-bit CSI
  EXPECT_EQ(printable("\xC2\x9D"), "\\u{009D}");  // 8-bit OSC
  EXPECT_EQ(printable("a\xE2\x80\xAE"
                      "b"),
            "a\\u{202E}b");                           // right-to-left override
  EXPECT_EQ(printable("\xE2\x81\xA6"), "\\u{2066}");  // left-to-right isolate
  EXPECT_EQ(printable("\xE2\x80\xA8"), "\\u{2028}");  // line separator
}

TEST(Printable, IsIdempotent) {
  for (const std::string s : {"a\nb", "\x1b[31m", "\xff\xfe", "\xE2\x80\xAE", "plain"}) {
    EXPECT_EQ(printable(printable(s)), printable(s)) << s;
  }
}

// The library's own errors: a name read from a file cannot break the message onto two lines or
// carry an escape sequence, whoever prints it (CLI, C API, Python).
TEST(Printable, ErrorMessagesNamingFileTextAreOneSafeLine) {
  const std::string forged = "a\nw4a16: error: forged\x1b]0;x\x07";
  const auto bytes = test::make_safetensors("{\"" + std::string("a\\nw4a16: error: forged\\u001b]0;x\\u0007") +
                                                "\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,1]}}",
                                            test::filled_bytes(1));
  try {
    io::SafetensorsFile::parse(bytes);
    FAIL() << "the file is malformed";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_EQ(message.find('\x1b'), std::string::npos) << message;
    EXPECT_NE(message.find("a\\nw4a16: error: forged\\x1B]0;x\\x07"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace w4a16
