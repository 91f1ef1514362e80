// The frame wire encoding (versions 1 and 2), used on backend links and in replay
// logs. README.md beside this file is its specification.
#pragma once

#include "protocols/frame/frame.hpp"

#include <tl/expected.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace switchyard::frame {

// The newest version this build reads and writes. Version 2 is version 1
// with the frame types after `last_v1_type`: a frame is written in the
// oldest version that has its type, so readers of version 1 still read
// every frame of theirs.
inline constexpr std::uint8_t wire_version = 2;
// The version `f` is written in.
std::uint8_t version_of(const frame& f);
// Bytes of the big-endian length that precedes each frame in a record stream.
inline constexpr std::size_t record_prefix = 4;

enum class errc {
    truncated = 1,     // the input ends inside a frame, field or varint
    bad_version,       // the first byte is not a version this decoder reads
    unknown_type,      // the frame type is not in the closed set
    bad_wire_type,     // a field key with a wire type other than 0 (varint) or 2 (length)
    wrong_type,        // a known field sent with the other wire type
    missing_field,     // a required field is absent
    duplicate_field,   // a non-repeated field appears twice
    oversize,          // a frame, string or list over its limit
    invalid_utf8,      // a string field that is not valid UTF-8
    bad_value,         // an enum value out of range, a bool not 0/1, a 32-bit field over 2^32-1
    bad_varint,        // a varint longer than 10 bytes or over 64 bits
};
std::string_view to_string(errc e);

struct decode_error {
    errc code = errc::truncated;
    std::size_t offset = 0;   // byte offset in the frame where the problem starts
    std::string_view field;   // the field's name, empty when not inside a field
    std::string to_string() const;  // "missing field 'text' at byte 12"
};

// Appends the encoding of `f` to `out`.
void encode(const frame& f, std::string& out);
std::string encode(const frame& f);
// Appends a record: the frame's length as 4 bytes big-endian, then the frame.
void encode_record(const frame& f, std::string& out);

// Decodes exactly one frame occupying all of `bytes`.
tl::expected<frame, decode_error> decode(std::string_view bytes, std::size_t max_frame = limits::frame);

// Splits a byte stream of records into frames; never reads past what it was fed.
// After an error the stream cannot be resynchronised: every later call
// returns the same error.
class record_decoder {
public:
    explicit record_decoder(std::size_t max_frame = limits::frame) : max_frame_(max_frame) {}

    void feed(std::string_view bytes) { buffer_.append(bytes); }
    // A frame, nothing yet (std::nullopt: feed more), or the stream's error.
    tl::expected<std::optional<frame>, decode_error> next();
    std::size_t buffered() const { return buffer_.size() - consumed_; }

private:
    std::string buffer_;
    std::size_t consumed_ = 0;
    std::size_t max_frame_;
    std::optional<decode_error> failed_;
};

// One line of text for logs and dumps:
//   room_message corr=7 object="room:lobby" sender="bob@example.com" seq=0 ...
std::string to_text(const frame& f);

}  // namespace switchyard::frame
