#include "protocols/text/text.hpp"

#include <algorithm>

#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>

#include <unicode/brkiter.h>
#include <unicode/bytestream.h>
#include <unicode/casemap.h>
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#include <unicode/utext.h>
#include <unicode/utypes.h>

namespace switchyard::text {
namespace {

// ICU measures strings in int32_t.
constexpr std::size_t icu_max_length = static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max());

enum class scan_result { invalid, ascii, non_ascii };

constexpr bool is_continuation(unsigned char c) noexcept { return (c & 0xC0U) == 0x80U; }

// One pass answering both "valid?" and "pure ASCII?", so callers that can
// skip ICU for ASCII do not read the input twice.
scan_result scan_utf8(std::string_view s) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    bool ascii = true;
    std::size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {
            std::uint64_t word = 0;
            std::memcpy(&word, p + i, sizeof word);
            if ((word & 0x8080808080808080ULL) == 0) {
                i += 8;
                continue;
            }
        }
        const unsigned char c = p[i];
        if (c < 0x80U) {
            ++i;
            continue;
        }
        ascii = false;
        // Unicode table 3-7: the second byte's range depends on the lead byte;
        // that is what excludes overlong forms, surrogates and > U+10FFFF.
        if (c < 0xC2U) {
            return scan_result::invalid;  // stray continuation, or overlong C0/C1 lead
        }
        if (c < 0xE0U) {
            if (n - i < 2 || !is_continuation(p[i + 1])) {
                return scan_result::invalid;
            }
            i += 2;
            continue;
        }
        if (c < 0xF0U) {
            if (n - i < 3) {
                return scan_result::invalid;
            }
            const unsigned char lo = c == 0xE0U ? 0xA0U : 0x80U;  // E0 80..9F: overlong
            const unsigned char hi = c == 0xEDU ? 0x9FU : 0xBFU;  // ED A0..BF: surrogates
            if (p[i + 1] < lo || p[i + 1] > hi || !is_continuation(p[i + 2])) {
                return scan_result::invalid;
            }
            i += 3;
            continue;
        }
        if (c < 0xF5U) {
            if (n - i < 4) {
                return scan_result::invalid;
            }
            const unsigned char lo = c == 0xF0U ? 0x90U : 0x80U;  // F0 80..8F: overlong
            const unsigned char hi = c == 0xF4U ? 0x8FU : 0xBFU;  // F4 90..BF: > U+10FFFF
            if (p[i + 1] < lo || p[i + 1] > hi || !is_continuation(p[i + 2]) || !is_continuation(p[i + 3])) {
                return scan_result::invalid;
            }
            i += 4;
            continue;
        }
        return scan_result::invalid;  // F5..FF never occur in UTF-8
    }
    return ascii ? scan_result::ascii : scan_result::non_ascii;
}

// Callers pass validated input of bounded length, so ICU can only fail here
// by running out of memory (reported like any std::string allocation) or by
// a broken ICU installation; neither is a property of the data.
[[noreturn]] void icu_failed(UErrorCode code) {
    if (code == U_MEMORY_ALLOCATION_ERROR) {
        throw std::bad_alloc();
    }
    throw std::runtime_error(std::string("ICU failure: ") + u_errorName(code));
}

icu::StringPiece piece(std::string_view s) noexcept {
    return {s.data(), static_cast<std::int32_t>(s.size())};
}

// `s` must be valid UTF-8 no longer than icu_max_length.
std::string nfc_of(std::string_view s) {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
    if (U_FAILURE(status)) {
        icu_failed(status);
    }
    std::string out;
    out.reserve(s.size());
    icu::StringByteSink<std::string> sink(&out);
    nfc->normalizeUTF8(0, piece(s), sink, nullptr, status);
    if (U_FAILURE(status)) {
        icu_failed(status);
    }
    return out;
}

bool is_forbidden_in_handle(unsigned char c) noexcept {
    return c < 0x20U || c == 0x7FU || handle_forbidden_punctuation.find(static_cast<char>(c)) != std::string_view::npos;
}

// Offset of the code point containing s[i]; a bounded walk back on valid UTF-8.
std::size_t code_point_start(std::string_view s, std::size_t i) noexcept {
    while (i > 0 && is_continuation(static_cast<unsigned char>(s[i]))) {
        --i;
    }
    return i;
}

// Creating a character break iterator loads and compiles rules, far too slow
// per call; an instance is not thread-safe, so each thread keeps its own.
icu::BreakIterator* character_break_iterator() {
    thread_local std::unique_ptr<icu::BreakIterator> iterator;
    if (!iterator) {
        UErrorCode status = U_ZERO_ERROR;
        std::unique_ptr<icu::BreakIterator> created(
            icu::BreakIterator::createCharacterInstance(icu::Locale::getRoot(), status));
        if (U_SUCCESS(status)) {
            iterator = std::move(created);
        }
    }
    return iterator.get();
}

}  // namespace

std::string_view to_string(errc e) {
    switch (e) {
    case errc::invalid_utf8:
        return "invalid UTF-8";
    case errc::too_long:
        return "too long";
    case errc::empty:
        return "empty";
    case errc::invalid_handle:
        return "invalid handle";
    case errc::control_character:
        return "control character";
    }
    return "unknown text error";
}

bool is_valid_utf8(std::string_view s) noexcept { return scan_utf8(s) != scan_result::invalid; }

tl::expected<std::string, errc> to_nfc(std::string_view s) {
    switch (scan_utf8(s)) {
    case scan_result::invalid:
        return tl::make_unexpected(errc::invalid_utf8);
    case scan_result::ascii:
        return std::string(s);
    case scan_result::non_ascii:
        break;
    }
    if (s.size() > icu_max_length) {
        return tl::make_unexpected(errc::too_long);
    }
    return nfc_of(s);
}

tl::expected<std::string, errc> normalize_handle(std::string_view s, std::size_t max_bytes) {
    if (s.empty()) {
        return tl::make_unexpected(errc::empty);
    }
    const scan_result scanned = scan_utf8(s);
    if (scanned == scan_result::invalid) {
        return tl::make_unexpected(errc::invalid_utf8);
    }
    // Folding then NFC never leaves fewer than a third of the input's bytes
    // (U+212A KELVIN SIGN, 3 bytes, becomes "k"; jamo L+V+T, 9 bytes, become
    // one 3-byte syllable), so input over four times max_bytes cannot fit,
    // and ICU never sees an unbounded string. Folding can triple the size,
    // hence the second bound for ICU's int32_t lengths.
    if (s.size() / 4 > max_bytes || s.size() > icu_max_length / 3) {
        return tl::make_unexpected(errc::too_long);
    }

    std::string handle;
    if (scanned == scan_result::ascii) {
        // ASCII full case folding is exactly A-Z -> a-z, and ASCII is NFC.
        handle.assign(s);
        for (char& c : handle) {
            if (c >= 'A' && c <= 'Z') {
                c = static_cast<char>(c - 'A' + 'a');
            }
        }
    } else {
        std::string folded;
        folded.reserve(s.size());
        icu::StringByteSink<std::string> sink(&folded);
        UErrorCode status = U_ZERO_ERROR;
        icu::CaseMap::utf8Fold(U_FOLD_CASE_DEFAULT, piece(s), sink, nullptr, status);
        if (U_FAILURE(status)) {
            icu_failed(status);
        }
        handle = nfc_of(folded);
    }

    if (handle.size() > max_bytes) {
        return tl::make_unexpected(errc::too_long);
    }
    const std::size_t at = handle.find('@');
    if (at == std::string::npos || at == 0 || at + 1 == handle.size() ||
        handle.find('@', at + 1) != std::string::npos) {
        return tl::make_unexpected(errc::invalid_handle);
    }
    for (const char c : handle) {
        if (is_forbidden_in_handle(static_cast<unsigned char>(c))) {
            return tl::make_unexpected(errc::invalid_handle);
        }
    }
    return handle;
}

tl::expected<void, errc> check_text(std::string_view s, std::size_t max_bytes) {
    // Size first: it costs nothing and spares scanning oversized input.
    if (s.size() > max_bytes) {
        return tl::make_unexpected(errc::too_long);
    }
    if (!is_valid_utf8(s)) {
        return tl::make_unexpected(errc::invalid_utf8);
    }
    return {};
}

tl::expected<void, errc> check_line(std::string_view s, std::size_t max_bytes) {
    if (auto ok = check_text(s, max_bytes); !ok) {
        return ok;
    }
    const bool control = std::any_of(s.begin(), s.end(), [](char c) {
        const auto b = static_cast<unsigned char>(c);
        return b < 0x20 || b == 0x7f;
    });
    if (control) {
        return tl::make_unexpected(errc::control_character);
    }
    return {};
}

std::size_t grapheme_prefix(std::string_view s, std::size_t max_bytes) {
    if (s.size() <= max_bytes) {
        return s.size();
    }
    if (max_bytes == 0) {
        return 0;
    }
    // Between two ASCII characters there is always a cluster boundary except
    // inside CR LF (UAX #29 GB3): ASCII has no Extend, ZWJ, Prepend,
    // SpacingMark or Regional_Indicator characters.
    const auto before = static_cast<unsigned char>(s[max_bytes - 1]);
    const auto after = static_cast<unsigned char>(s[max_bytes]);
    if (before < 0x80U && after < 0x80U && !(before == '\r' && after == '\n')) {
        return max_bytes;
    }

    const std::size_t cut = code_point_start(s, max_bytes);
    if (cut == 0) {
        return 0;
    }
    // Whether `cut` is a boundary depends on everything before it (regional
    // indicator pairing looks back without limit) but on only one code point
    // after it, so the text handed to ICU ends with the code point at `cut`.
    std::size_t window = cut + 1;
    while (window < s.size() && is_continuation(static_cast<unsigned char>(s[window]))) {
        ++window;
    }

    icu::BreakIterator* iterator = window <= icu_max_length ? character_break_iterator() : nullptr;
    if (iterator == nullptr) {
        return cut;  // no ICU: a code point boundary is the best left
    }
    UErrorCode status = U_ZERO_ERROR;
    UText* ut = utext_openUTF8(nullptr, s.data(), static_cast<std::int64_t>(window), &status);
    if (U_SUCCESS(status)) {
        iterator->setText(ut, status);  // the iterator keeps its own clone of ut
    }
    utext_close(ut);
    if (U_FAILURE(status)) {
        return cut;
    }
    const auto native_cut = static_cast<std::int32_t>(cut);
    const std::int32_t boundary = iterator->isBoundary(native_cut) ? native_cut : iterator->preceding(native_cut);
    return boundary == icu::BreakIterator::DONE || boundary < 0 ? 0 : static_cast<std::size_t>(boundary);
}

std::string xml_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (const char c : s) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&apos;"; break;
        default: out += c;
        }
    }
    return out;
}

}  // namespace switchyard::text
