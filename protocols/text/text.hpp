#pragma once

// Text rules shared by every codec: what counts as valid UTF-8, how user
// handles are compared, and where long text may be cut. ICU stays an
// implementation detail of text.cpp so codecs do not inherit its headers.

#include <cstddef>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace switchyard::text {

enum class errc {
    invalid_utf8 = 1,
    too_long,
    empty,
    invalid_handle,
    control_character,
};

// Short human-readable reason, suitable for a WebSocket close reason.
std::string_view to_string(errc e);

// Strict UTF-8 (Unicode 15, table 3-7): rejects overlong forms, surrogates
// (U+D800..U+DFFF), code points above U+10FFFF and truncated sequences.
// Runs on every decoded frame string, so ASCII is checked 8 bytes at a time.
bool is_valid_utf8(std::string_view s) noexcept;

// NFC of valid UTF-8; invalid_utf8 otherwise. ASCII is already NFC and is
// returned unchanged without calling ICU. Inputs of 2 GiB or more give
// too_long: ICU measures strings in int32_t.
tl::expected<std::string, errc> to_nfc(std::string_view s);

// Bytes a user handle may not contain after normalisation: they are the ones
// MSNP cannot carry unescaped inside a handle parameter.
//   0x00-0x1F, 0x7F  line framing (CR, LF) and other controls
//   ' '              separates MSNP parameters
//   '%'              every incoming parameter is URL-decoded (Escargot)
//   ','              separates Passport 1.4 header fields
//   ';'              MSNP18+ endpoint form `email;{guid}`
//   ':'              MSNP18+ network form `1:email`
inline constexpr std::string_view handle_forbidden_punctuation = " %,;:";

// The one place user handles are normalised: Unicode full case folding (ICU
// foldCase, default options), then NFC. Checks, in this order:
//   empty           the input is empty
//   invalid_utf8    the input is not valid UTF-8
//   too_long        the normalised handle exceeds max_bytes
//   invalid_handle  not exactly one '@', an empty local part or domain, or a
//                   forbidden byte (see above) in the normalised handle
// Character checks run on the normalised form because NFC can create
// forbidden ASCII (U+037E GREEK QUESTION MARK becomes ';').
// 129 bytes is the MSNP handle limit.
tl::expected<std::string, errc> normalize_handle(std::string_view s, std::size_t max_bytes = 129);

// Valid UTF-8 and at most max_bytes bytes (display names, messages).
tl::expected<void, errc> check_text(std::string_view s, std::size_t max_bytes);

// check_text, and no control character (0x00-0x1F, 0x7F): what one line
// shown to others holds (display names, personal messages, group names).
// NUL, CR, LF, ESC or BEL there would cut protocol lines and logs, or ring
// and recolour the terminals that print them.
tl::expected<void, errc> check_line(std::string_view s, std::size_t max_bytes);

// Length in bytes of the longest prefix of valid UTF-8 `s` that is at most
// max_bytes long and ends on an extended grapheme cluster boundary (root
// locale), so truncation never splits an emoji sequence or a base from its
// combining marks. Returns s.size() if s already fits. On input that is not
// valid UTF-8 the result is still a byte offset within s, not necessarily
// a grapheme boundary.
std::size_t grapheme_prefix(std::string_view s, std::size_t max_bytes);

// Text for an XML element or attribute value: & < > " ' as named entities
// (the MSNP11-12 UBX form, Escargot encode_xml_ne; also SOAP replies).
std::string xml_escape(std::string_view s);

}  // namespace switchyard::text
