#include "protocols/text/text.hpp"

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

using namespace std::string_literals;
namespace text = switchyard::text;
using text::errc;

namespace Catch {
template <typename T>
struct StringMaker<tl::expected<T, errc>> {
    static std::string convert(const tl::expected<T, errc>& v) {
        if (!v) {
            return "unexpected(" + std::string(switchyard::text::to_string(v.error())) + ")";
        }
        if constexpr (std::is_void_v<T>) {
            return "ok";
        } else {
            return ::Catch::Detail::stringify(*v);
        }
    }
};
template <>
struct StringMaker<tl::unexpected<errc>> {
    static std::string convert(const tl::unexpected<errc>& u) {
        return "unexpected(" + std::string(switchyard::text::to_string(u.value())) + ")";
    }
};
}  // namespace Catch

namespace {

// Plain UTF-8 encoder with no validity checks, so tests can also build
// surrogates and out-of-range code points.
std::string encode(std::uint32_t cp) {
    std::string out;
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return out;
}

std::string bytes(std::initializer_list<unsigned> list) {
    std::string out;
    for (unsigned b : list) {
        out += static_cast<char>(b);
    }
    return out;
}

bool is_cont(unsigned b) { return b >= 0x80 && b <= 0xBF; }

// Expected grapheme_prefix for every max_bytes, given the cluster boundaries.
void check_all_cuts(const std::string& s, const std::vector<std::size_t>& boundaries) {
    REQUIRE(boundaries.front() == 0);
    REQUIRE(boundaries.back() == s.size());
    for (std::size_t max = 0; max <= s.size() + 2; ++max) {
        std::size_t expected = 0;
        for (std::size_t b : boundaries) {
            if (b <= max) {
                expected = b;
            }
        }
        INFO("max_bytes = " << max);
        CHECK(text::grapheme_prefix(s, max) == expected);
    }
}

const std::string e_acute_nfd = "e\xCC\x81";                          // e + U+0301
const std::string e_acute_nfc = "\xC3\xA9";                           // U+00E9
const std::string flag_fr = "\xF0\x9F\x87\xAB\xF0\x9F\x87\xB7";       // U+1F1EB U+1F1F7
const std::string flag_de = "\xF0\x9F\x87\xA9\xF0\x9F\x87\xAA";       // U+1F1E9 U+1F1EA
const std::string zwj = "\xE2\x80\x8D";                               // U+200D
const std::string family = "\xF0\x9F\x91\xA8" + zwj + "\xF0\x9F\x91\xA9" + zwj + "\xF0\x9F\x91\xA7";  // man, woman, girl

}  // namespace

TEST_CASE("errc has distinct human-readable reasons", "[text]") {
    CHECK(text::to_string(errc::invalid_utf8) == "invalid UTF-8");
    const std::set<std::string_view> reasons{text::to_string(errc::invalid_utf8), text::to_string(errc::too_long),
                                             text::to_string(errc::empty), text::to_string(errc::invalid_handle)};
    CHECK(reasons.size() == 4);
    for (auto r : reasons) {
        CHECK_FALSE(r.empty());
    }
    CHECK(static_cast<int>(errc::invalid_utf8) == 1);
}

TEST_CASE("is_valid_utf8 accepts well-formed text", "[text][utf8]") {
    CHECK(text::is_valid_utf8(""));
    CHECK(text::is_valid_utf8("hello, world"));
    CHECK(text::is_valid_utf8("a\0b"s));  // NUL is a code point like any other
    CHECK(text::is_valid_utf8("\x7F"));
    CHECK(text::is_valid_utf8("\xC2\x80"));                          // U+0080, smallest 2-byte
    CHECK(text::is_valid_utf8("\xDF\xBF"));                          // U+07FF
    CHECK(text::is_valid_utf8("\xE0\xA0\x80"));                      // U+0800, smallest 3-byte
    CHECK(text::is_valid_utf8("\xED\x9F\xBF"));                      // U+D7FF, just below surrogates
    CHECK(text::is_valid_utf8("\xEE\x80\x80"));                      // U+E000, just above surrogates
    CHECK(text::is_valid_utf8("\xEF\xBF\xBF"));                      // U+FFFF
    CHECK(text::is_valid_utf8("\xF0\x90\x80\x80"));                  // U+10000, smallest 4-byte
    CHECK(text::is_valid_utf8("\xF0\x9F\x98\x80"));                  // U+1F600
    CHECK(text::is_valid_utf8("\xF4\x8F\xBF\xBF"));                  // U+10FFFF
    CHECK(text::is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 ok"));
}

TEST_CASE("is_valid_utf8 rejects overlong forms, surrogates and out-of-range code points", "[text][utf8]") {
    CHECK_FALSE(text::is_valid_utf8("\xC0\x80"));          // overlong U+0000
    CHECK_FALSE(text::is_valid_utf8("\xC1\xBF"));          // overlong U+007F
    CHECK_FALSE(text::is_valid_utf8("\xC0\xAF"));          // overlong '/'
    CHECK_FALSE(text::is_valid_utf8("\xE0\x80\x80"));      // overlong U+0000
    CHECK_FALSE(text::is_valid_utf8("\xE0\x80\xAF"));      // overlong '/'
    CHECK_FALSE(text::is_valid_utf8("\xE0\x9F\xBF"));      // overlong U+07FF
    CHECK_FALSE(text::is_valid_utf8("\xF0\x80\x80\x80"));  // overlong U+0000
    CHECK_FALSE(text::is_valid_utf8("\xF0\x8F\xBF\xBF"));  // overlong U+FFFF
    CHECK_FALSE(text::is_valid_utf8("\xED\xA0\x80"));      // U+D800
    CHECK_FALSE(text::is_valid_utf8("\xED\xBF\xBF"));      // U+DFFF
    CHECK_FALSE(text::is_valid_utf8("\xED\xA0\xBD\xED\xB8\x80"));  // CESU-8 surrogate pair
    CHECK_FALSE(text::is_valid_utf8("\xF4\x90\x80\x80"));  // U+110000
    CHECK_FALSE(text::is_valid_utf8("\xF7\xBF\xBF\xBF"));  // U+1FFFFF
    for (unsigned lead = 0xF5; lead <= 0xFF; ++lead) {
        INFO("lead byte " << lead);
        CHECK_FALSE(text::is_valid_utf8(bytes({lead, 0x80, 0x80, 0x80})));
    }
    CHECK_FALSE(text::is_valid_utf8("\x80"));              // lone continuation
    CHECK_FALSE(text::is_valid_utf8("a\xBF" "b"));
    CHECK_FALSE(text::is_valid_utf8("\xC3\xA9\x80"));      // one continuation too many
}

TEST_CASE("is_valid_utf8 rejects truncated sequences", "[text][utf8]") {
    CHECK_FALSE(text::is_valid_utf8("abc\xC3"));
    CHECK_FALSE(text::is_valid_utf8("abc\xE2\x82"));
    CHECK_FALSE(text::is_valid_utf8("abc\xE2"));
    CHECK_FALSE(text::is_valid_utf8("abc\xF0\x9F\x98"));
    CHECK_FALSE(text::is_valid_utf8("abc\xF0\x9F"));
    CHECK_FALSE(text::is_valid_utf8("abc\xF0"));
    // Truncated in the middle: the next byte is ASCII, not a continuation.
    CHECK_FALSE(text::is_valid_utf8("\xC3" "a"));
    CHECK_FALSE(text::is_valid_utf8("\xE2\x82" "a"));
    CHECK_FALSE(text::is_valid_utf8("\xF0\x9F\x98" "a"));
    // Truncated at the end of a run long enough for the 8-byte path.
    CHECK_FALSE(text::is_valid_utf8(std::string(16, 'a') + "\xF0\x9F\x98"));
    CHECK_FALSE(text::is_valid_utf8(std::string(13, 'a') + "\xF0\x9F\x98"));
}

TEST_CASE("is_valid_utf8 finds one bad byte anywhere in an ASCII run", "[text][utf8]") {
    const std::string run(40, 'x');
    REQUIRE(text::is_valid_utf8(run));
    for (std::size_t offset = 0; offset <= 20; ++offset) {
        INFO("offset " << offset);
        for (unsigned bad : {0x80U, 0xBFU, 0xC0U, 0xC3U, 0xE2U, 0xF0U, 0xFFU}) {
            INFO("byte " << bad);
            std::string s = run;
            s[offset] = static_cast<char>(bad);
            CHECK_FALSE(text::is_valid_utf8(s));
            // Same with the bad byte last, where no full 8-byte word follows it.
            CHECK_FALSE(text::is_valid_utf8(std::string_view(s).substr(0, offset + 1)));
        }
        std::string good = run;
        good.replace(offset, 2, e_acute_nfc);
        CHECK(text::is_valid_utf8(good));
        std::string good4 = run;
        good4.replace(offset, 4, "\xF0\x9F\x98\x80");
        CHECK(text::is_valid_utf8(good4));
    }
}

TEST_CASE("is_valid_utf8 agrees with table 3-7 on every 1- and 2-byte string", "[text][utf8]") {
    for (unsigned a = 0; a < 256; ++a) {
        CHECK(text::is_valid_utf8(bytes({a})) == (a < 0x80));
        for (unsigned b = 0; b < 256; ++b) {
            const bool expected = (a < 0x80 && b < 0x80) || (a >= 0xC2 && a <= 0xDF && is_cont(b));
            if (text::is_valid_utf8(bytes({a, b})) != expected) {
                FAIL("bytes " << a << ' ' << b);
            }
        }
    }
}

TEST_CASE("is_valid_utf8 agrees with table 3-7 on every 3-byte lead and second byte", "[text][utf8]") {
    for (unsigned a = 0xE0; a <= 0xEF; ++a) {
        const unsigned lo = a == 0xE0 ? 0xA0 : 0x80;
        const unsigned hi = a == 0xED ? 0x9F : 0xBF;
        for (unsigned b = 0; b < 256; ++b) {
            for (unsigned c : {0x00U, 0x41U, 0x7FU, 0x80U, 0x9FU, 0xA0U, 0xBFU, 0xC0U, 0xFFU}) {
                const bool expected = b >= lo && b <= hi && is_cont(c);
                if (text::is_valid_utf8(bytes({a, b, c})) != expected) {
                    FAIL("bytes " << a << ' ' << b << ' ' << c);
                }
            }
        }
    }
    for (unsigned a = 0xF0; a <= 0xF7; ++a) {
        const unsigned lo = a == 0xF0 ? 0x90 : 0x80;
        const unsigned hi = a == 0xF4 ? 0x8F : 0xBF;
        for (unsigned b = 0; b < 256; ++b) {
            for (unsigned c : {0x41U, 0x80U, 0xBFU, 0xC0U}) {
                for (unsigned d : {0x41U, 0x80U, 0xBFU, 0xC0U}) {
                    const bool expected = a <= 0xF4 && b >= lo && b <= hi && is_cont(c) && is_cont(d);
                    if (text::is_valid_utf8(bytes({a, b, c, d})) != expected) {
                        FAIL("bytes " << a << ' ' << b << ' ' << c << ' ' << d);
                    }
                }
            }
        }
    }
}

TEST_CASE("is_valid_utf8 accepts every scalar value and rejects every surrogate", "[text][utf8]") {
    for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
        const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        // Padding moves the sequence across 8-byte word positions.
        const std::string s = std::string(cp % 9, 'p') + encode(cp);
        if (text::is_valid_utf8(s) == surrogate) {
            FAIL("code point " << cp);
        }
    }
    CHECK_FALSE(text::is_valid_utf8(encode(0x110000)));
    CHECK_FALSE(text::is_valid_utf8(encode(0x13FFFF)));
}

TEST_CASE("to_nfc composes and reorders", "[text][nfc]") {
    CHECK(text::to_nfc(e_acute_nfd) == e_acute_nfc);
    CHECK(text::to_nfc("Jose\xCC\x81") == "Jos\xC3\xA9");
    // Canonical ordering: dot below (ccc 220) moves before acute (ccc 230)
    // and composes with the base; the acute stays separate.
    CHECK(text::to_nfc("a\xCC\x81\xCC\xA3") == "\xE1\xBA\xA1\xCC\x81");
    // Conjoining jamo U+1100 U+1161 become the syllable U+AC00.
    CHECK(text::to_nfc("\xE1\x84\x80\xE1\x85\xA1") == "\xEA\xB0\x80");
    // Singleton: U+212B ANGSTROM SIGN becomes U+00C5.
    CHECK(text::to_nfc("\xE2\x84\xAB") == "\xC3\x85");
    // NFC, not NFKC: the ligature U+FB01 stays.
    CHECK(text::to_nfc("\xEF\xAC\x81") == "\xEF\xAC\x81");
}

TEST_CASE("to_nfc keeps ASCII and already-composed text unchanged", "[text][nfc]") {
    CHECK(text::to_nfc("") == "");
    CHECK(text::to_nfc("Hello, World\r\n") == "Hello, World\r\n");
    CHECK(text::to_nfc("a\0b"s) == "a\0b"s);
    const std::string composed = "caf\xC3\xA9 \xF0\x9F\x98\x80";
    CHECK(text::to_nfc(composed) == composed);
}

TEST_CASE("to_nfc rejects invalid UTF-8", "[text][nfc]") {
    CHECK(text::to_nfc("\xC0\x80") == tl::make_unexpected(errc::invalid_utf8));
    CHECK(text::to_nfc("e\xCC") == tl::make_unexpected(errc::invalid_utf8));
    CHECK(text::to_nfc("\xED\xA0\x80") == tl::make_unexpected(errc::invalid_utf8));
}

TEST_CASE("normalize_handle folds case", "[text][handle]") {
    CHECK(text::normalize_handle("Alice@Example.COM") == "alice@example.com");
    CHECK(text::normalize_handle("alice@example.com") == "alice@example.com");
    // Full folding: sharp s becomes "ss", so both spellings are one user.
    CHECK(text::normalize_handle("stra\xC3\x9F" "e@x.de") == "strasse@x.de");
    CHECK(text::normalize_handle("STRASSE@x.de") == "strasse@x.de");
    CHECK(text::normalize_handle("STRA\xE1\xBA\x9E" "E@x.de") == "strasse@x.de");  // U+1E9E capital sharp s
    // U+212A KELVIN SIGN folds to ASCII k.
    CHECK(text::normalize_handle("\xE2\x84\xAA" "elvin@x.org") == "kelvin@x.org");
    // Final sigma and capital sigma fold to the same small sigma.
    CHECK(text::normalize_handle("a\xCF\x82@x.gr") == "a\xCF\x83@x.gr");
    CHECK(text::normalize_handle("A\xCE\xA3@x.gr") == "a\xCF\x83@x.gr");
    // Default (non-Turkic) folding: U+0130 becomes i + U+0307.
    CHECK(text::normalize_handle("\xC4\xB0@x.tr") == "i\xCC\x87@x.tr");
}

TEST_CASE("normalize_handle applies NFC after folding", "[text][handle]") {
    CHECK(text::normalize_handle("Jose\xCC\x81@x.es") == "jos\xC3\xA9@x.es");
    CHECK(text::normalize_handle("JOS\xC3\x89@x.es") == "jos\xC3\xA9@x.es");
    CHECK(text::normalize_handle("JOSE\xCC\x81@x.es") == "jos\xC3\xA9@x.es");
    // U+212B ANGSTROM SIGN: folds to U+00E5, already NFC.
    CHECK(text::normalize_handle("\xE2\x84\xAB@x.se") == "\xC3\xA5@x.se");
}

TEST_CASE("normalize_handle rejects malformed handles", "[text][handle]") {
    const auto invalid = tl::make_unexpected(errc::invalid_handle);
    CHECK(text::normalize_handle("") == tl::make_unexpected(errc::empty));
    CHECK(text::normalize_handle("alice") == invalid);
    CHECK(text::normalize_handle("alice@bob@example.com") == invalid);
    CHECK(text::normalize_handle("@example.com") == invalid);
    CHECK(text::normalize_handle("alice@") == invalid);
    CHECK(text::normalize_handle("@") == invalid);
    CHECK(text::normalize_handle("al ice@example.com") == invalid);
    CHECK(text::normalize_handle("alice@example.com ") == invalid);
    CHECK(text::normalize_handle("ali\tce@example.com") == invalid);
    CHECK(text::normalize_handle("alice@example.com\r\n") == invalid);
    CHECK(text::normalize_handle("a\0lice@example.com"s) == invalid);
    CHECK(text::normalize_handle("alice\x7F@example.com") == invalid);
    CHECK(text::normalize_handle("alice%20@example.com") == invalid);
    CHECK(text::normalize_handle("alice,bob@example.com") == invalid);
    CHECK(text::normalize_handle("alice@example.com;{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}") == invalid);
    CHECK(text::normalize_handle("1:alice@example.com") == invalid);
    // U+037E GREEK QUESTION MARK is canonically ';': checked after NFC.
    CHECK(text::normalize_handle("alice\xCD\xBE@example.com") == invalid);
    // Non-ASCII letters are not in the forbidden set.
    CHECK(text::normalize_handle("al\xC3\xAF" "ce@example.com") == "al\xC3\xAF" "ce@example.com");
    CHECK(text::normalize_handle("\xC0\x80@example.com") == tl::make_unexpected(errc::invalid_utf8));
    CHECK(text::normalize_handle("alice@ex\xFF.com") == tl::make_unexpected(errc::invalid_utf8));
}

TEST_CASE("normalize_handle limits the normalised size", "[text][handle]") {
    const std::string domain = "@x.de";
    const std::string fits = std::string(129 - domain.size(), 'a') + domain;
    CHECK(text::normalize_handle(fits) == fits);
    CHECK(text::normalize_handle("A" + fits) == tl::make_unexpected(errc::too_long));
    CHECK(text::normalize_handle("ab@x", 4) == "ab@x");
    CHECK(text::normalize_handle("abc@x", 4) == tl::make_unexpected(errc::too_long));

    // U+0149 (2 bytes) folds to U+02BC 'n' (3 bytes): 89 bytes in, 131 out.
    std::string grows;
    for (int i = 0; i < 42; ++i) {
        grows += "\xC5\x89";
    }
    grows += domain;
    REQUIRE(grows.size() < 129);
    CHECK(text::normalize_handle(grows) == tl::make_unexpected(errc::too_long));

    // U+212A (3 bytes) folds to 'k' (1 byte): 134 bytes in, 48 out.
    std::string shrinks;
    for (int i = 0; i < 43; ++i) {
        shrinks += "\xE2\x84\xAA";
    }
    shrinks += domain;
    REQUIRE(shrinks.size() > 129);
    CHECK(text::normalize_handle(shrinks) == std::string(43, 'k') + domain);

    CHECK(text::normalize_handle(std::string(100000, 'a') + domain) == tl::make_unexpected(errc::too_long));
}

TEST_CASE("check_text validates encoding and size", "[text][check]") {
    CHECK(text::check_text("", 0).has_value());
    CHECK(text::check_text("h\xC3\xA9llo", 6).has_value());
    CHECK(text::check_text("h\xC3\xA9llo", 5) == tl::make_unexpected(errc::too_long));
    CHECK(text::check_text("h\xC3\xA9llo", 1000).has_value());
    CHECK(text::check_text("h\xC3llo", 1000) == tl::make_unexpected(errc::invalid_utf8));
    CHECK(text::check_text("\xED\xA0\x80", 1000) == tl::make_unexpected(errc::invalid_utf8));
    // Size is checked first.
    CHECK(text::check_text("\xC0\x80\xC0\x80", 2) == tl::make_unexpected(errc::too_long));
}

TEST_CASE("grapheme_prefix cuts ASCII exactly", "[text][grapheme]") {
    const std::string s = "hello world";
    CHECK(text::grapheme_prefix(s, 5) == 5);
    CHECK(text::grapheme_prefix(s, 1) == 1);
    CHECK(text::grapheme_prefix(s, 0) == 0);
    CHECK(text::grapheme_prefix(s, s.size()) == s.size());
    CHECK(text::grapheme_prefix(s, 1000) == s.size());
    CHECK(text::grapheme_prefix("", 0) == 0);
    CHECK(text::grapheme_prefix("", 10) == 0);
    check_all_cuts(s, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
}

TEST_CASE("grapheme_prefix keeps CR LF together", "[text][grapheme]") {
    check_all_cuts("a\r\nb", {0, 1, 3, 4});
}

TEST_CASE("grapheme_prefix keeps combining marks with their base", "[text][grapheme]") {
    const std::string s = "a" + e_acute_nfd + "b";  // a e U+0301 b
    CHECK(text::grapheme_prefix(s, 2) == 1);
    CHECK(text::grapheme_prefix(s, 3) == 1);
    CHECK(text::grapheme_prefix(s, 4) == 4);
    check_all_cuts(s, {0, 1, 4, 5});
    // Keycap: ASCII base, then U+FE0F U+20E3.
    check_all_cuts("1\xEF\xB8\x8F\xE2\x83\xA3" "2", {0, 7, 8});
    // Conjoining jamo L V T form one syllable.
    check_all_cuts("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8" "x", {0, 9, 10});
}

TEST_CASE("grapheme_prefix does not split flags", "[text][grapheme]") {
    const std::string s = "a" + flag_fr + flag_de;
    CHECK(text::grapheme_prefix(s, 5) == 1);  // between the two regional indicators of one flag
    CHECK(text::grapheme_prefix(s, 13) == 9);
    check_all_cuts(s, {0, 1, 9, 17});
    // Pairing counts from the start of the run: an odd indicator stands alone.
    std::string run;
    std::vector<std::size_t> boundaries{0};
    for (int i = 0; i < 5; ++i) {
        run += flag_fr;
        boundaries.push_back(run.size());
    }
    run += "\xF0\x9F\x87\xAB";
    boundaries.push_back(run.size());
    run += "z";
    boundaries.push_back(run.size());
    check_all_cuts(run, boundaries);
}

TEST_CASE("grapheme_prefix does not split ZWJ emoji sequences", "[text][grapheme]") {
    REQUIRE(family.size() == 18);
    const std::string s = "x" + family + "y";
    CHECK(text::grapheme_prefix(s, 18) == 1);
    CHECK(text::grapheme_prefix(s, 19) == 19);
    check_all_cuts(s, {0, 1, 19, 20});
    // A skin tone modifier (Extend) and a long ASCII prefix before it.
    const std::string wave = std::string(100, 'w') + "\xF0\x9F\x91\x8B\xF0\x9F\x8F\xBD" + "!";  // U+1F44B U+1F3FD
    CHECK(text::grapheme_prefix(wave, 104) == 100);
    CHECK(text::grapheme_prefix(wave, 107) == 100);
    CHECK(text::grapheme_prefix(wave, 108) == 108);
}

TEST_CASE("grapheme_prefix stays within bounds on invalid input", "[text][grapheme]") {
    const std::string bad = "\xFF\xFE\x80\x80\xC3";
    for (std::size_t max = 0; max <= bad.size(); ++max) {
        CHECK(text::grapheme_prefix(bad, max) <= max);
    }
}

TEST_CASE("xml_escape writes the five named entities and nothing else") {
    CHECK(text::xml_escape("Tom & Jerry <3 \"quotes\" 'x'") ==
          "Tom &amp; Jerry &lt;3 &quot;quotes&quot; &apos;x&apos;");
    CHECK(text::xml_escape("caf\xc3\xa9") == "caf\xc3\xa9");
    CHECK(text::xml_escape("") == "");
}
