#include "protocols/websocket/framer.hpp"

#include "protocols/text/text.hpp"

#include <algorithm>

namespace switchyard::websocket {

namespace {

constexpr std::uint8_t op_continuation = 0x0;
constexpr std::uint8_t op_text = 0x1;
constexpr std::uint8_t op_binary = 0x2;
constexpr std::uint8_t op_close = 0x8;
constexpr std::uint8_t op_ping = 0x9;
constexpr std::uint8_t op_pong = 0xA;
constexpr std::size_t max_control = 125;

std::string header(std::uint8_t opcode, std::size_t size) {
    std::string h;
    h.push_back(static_cast<char>(0x80 | opcode));
    if (size < 126) {
        h.push_back(static_cast<char>(size));
    } else if (size <= 0xFFFF) {
        h.push_back(static_cast<char>(126));
        h.push_back(static_cast<char>(size >> 8));
        h.push_back(static_cast<char>(size & 0xFF));
    } else {
        h.push_back(static_cast<char>(127));
        for (int shift = 56; shift >= 0; shift -= 8) {
            h.push_back(static_cast<char>((static_cast<std::uint64_t>(size) >> shift) & 0xFF));
        }
    }
    return h;
}

std::string encode(std::uint8_t opcode, std::string_view payload) {
    std::string f = header(opcode, payload.size());
    f.append(payload);
    return f;
}

// Codes a close frame may carry (RFC 6455 section 7.4).
bool valid_close_code(std::uint16_t c) {
    if (c >= 3000 && c <= 4999) return true;
    return c >= 1000 && c <= 1014 && c != 1004 && c != 1005 && c != 1006;
}

}  // namespace

std::string framer::text_header(std::size_t payload_size) { return header(op_text, payload_size); }
std::string framer::encode_text(std::string_view payload) { return encode(op_text, payload); }
std::string framer::encode_ping(std::string_view payload) { return encode(op_ping, payload.substr(0, max_control)); }
std::string framer::encode_pong(std::string_view payload) { return encode(op_pong, payload.substr(0, max_control)); }

std::string framer::encode_close(std::uint16_t code, std::string_view reason) {
    std::string payload;
    if (code != 0) {
        payload.push_back(static_cast<char>(code >> 8));
        payload.push_back(static_cast<char>(code & 0xFF));
        // 123 bytes at most, not splitting a UTF-8 sequence.
        std::size_t n = std::min<std::size_t>(reason.size(), max_control - 2);
        while (n > 0 && n < reason.size() && (static_cast<unsigned char>(reason[n]) & 0xC0) == 0x80) --n;
        payload.append(reason.substr(0, n));
    }
    return encode(op_close, payload);
}

std::string framer::close(std::uint16_t code, std::string_view reason) {
    if (state_ != state::open) {
        return {};
    }
    state_ = state::closing;
    std::string().swap(message_);
    in_message_ = false;
    return encode_close(code, reason);
}

void framer::fail(output& out, std::uint16_t code, std::string_view reason) {
    if (state_ == state::open) {
        out.send += encode_close(code, reason);
        out.close_code = code;
        out.close_reason = std::string(reason.substr(0, max_control - 2));
    }
    // A client that breaks the protocol gets no closing handshake to wait for.
    state_ = state::finished;
    out.finished = true;
    out.refused = true;
    std::string().swap(partial_);
    std::string().swap(message_);
}

void framer::on_close_frame(std::string_view payload, output& out) {
    std::uint16_t code = 0;
    std::string_view reason;
    if (payload.size() == 1) {
        fail(out, close_protocol_error, "malformed close frame");
        return;
    }
    if (payload.size() >= 2) {
        code = static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                          static_cast<unsigned char>(payload[1]));
        reason = payload.substr(2);
        if (!valid_close_code(code)) {
            fail(out, close_protocol_error, "invalid close code");
            return;
        }
        if (!text::is_valid_utf8(reason)) {
            fail(out, close_invalid_payload, "close reason is not UTF-8");
            return;
        }
    }
    if (state_ == state::open) {
        // Echo the client's code (RFC 6455 section 5.5.1).
        out.send += encode_close(code, {});
        out.close_code = code;
        out.close_reason = std::string(reason);
    }
    state_ = state::finished;
    out.finished = true;
    std::string().swap(partial_);
    std::string().swap(message_);
}

std::size_t framer::parse(std::string_view in, output& out) {
    if (in.size() < 2) return 0;
    const auto b0 = static_cast<unsigned char>(in[0]);
    const auto b1 = static_cast<unsigned char>(in[1]);
    const bool fin = (b0 & 0x80) != 0;
    const std::uint8_t opcode = b0 & 0x0F;
    const bool masked = (b1 & 0x80) != 0;
    std::uint64_t length = b1 & 0x7F;
    std::size_t pos = 2;

    // Header rules first: they need no more than two bytes.
    if ((b0 & 0x70) != 0) {
        fail(out, close_protocol_error, "reserved bits set");
        return in.size();
    }
    const bool control = (opcode & 0x8) != 0;
    if (opcode != op_continuation && opcode != op_text && opcode != op_binary && opcode != op_close &&
        opcode != op_ping && opcode != op_pong) {
        fail(out, close_protocol_error, "reserved opcode");
        return in.size();
    }
    if (control && (!fin || length > max_control)) {
        fail(out, close_protocol_error, fin ? "control frame too long" : "fragmented control frame");
        return in.size();
    }
    if (!masked) {
        fail(out, close_protocol_error, "client frame not masked");
        return in.size();
    }
    if (state_ == state::open && !control) {
        if (opcode == op_continuation && !in_message_) {
            fail(out, close_protocol_error, "continuation without a message");
            return in.size();
        }
        if (opcode != op_continuation && in_message_) {
            fail(out, close_protocol_error, "new message inside a fragmented one");
            return in.size();
        }
    }

    if (length == 126) {
        if (in.size() < 4) return 0;
        length = (static_cast<std::uint64_t>(static_cast<unsigned char>(in[2])) << 8) |
                 static_cast<unsigned char>(in[3]);
        pos = 4;
    } else if (length == 127) {
        if (in.size() < 10) return 0;
        length = 0;
        for (std::size_t i = 2; i < 10; ++i) length = (length << 8) | static_cast<unsigned char>(in[i]);
        pos = 10;
        if (length >> 63) {
            fail(out, close_protocol_error, "invalid frame length");
            return in.size();
        }
    }
    if (!control && state_ == state::open && length > max_message_ - std::min(max_message_, message_.size())) {
        fail(out, close_too_big, "message over " + std::to_string(max_message_) + " bytes");
        return in.size();
    }
    if (in.size() < pos + 4 || in.size() - pos - 4 < length) return 0;
    const char* key = in.data() + pos;
    pos += 4;
    const std::string_view payload = in.substr(pos, static_cast<std::size_t>(length));
    const std::size_t used = pos + static_cast<std::size_t>(length);

    auto unmask = [key](std::string_view p, std::string& to) {
        const std::size_t base = to.size();
        to.resize(base + p.size());
        for (std::size_t i = 0; i < p.size(); ++i) to[base + i] = static_cast<char>(p[i] ^ key[i & 3]);
    };

    if (control) {
        std::string data;
        unmask(payload, data);
        if (opcode == op_close) {
            on_close_frame(data, out);
        } else if (opcode == op_ping && state_ == state::open) {
            out.send += encode_pong(data);
        }
        return used;
    }
    if (state_ != state::open) {
        return used;  // data after our close is discarded
    }
    if (opcode != op_continuation) {
        in_message_ = true;
        message_text_ = opcode == op_text;
    }
    unmask(payload, message_);
    if (fin) {
        in_message_ = false;
        message m{message_text_, std::move(message_)};
        std::string().swap(message_);
        if (m.text && !text::is_valid_utf8(m.data)) {
            fail(out, close_invalid_payload, "text message is not UTF-8");
            return in.size();
        }
        out.messages.push_back(std::move(m));
    }
    return used;
}

output framer::feed(std::string_view bytes) {
    output out;
    if (state_ == state::finished) {
        return out;
    }
    std::string_view in = bytes;
    if (!partial_.empty()) {
        partial_.append(bytes);
        in = partial_;
    }
    std::size_t done = 0;
    while (state_ != state::finished && done < in.size()) {
        const std::size_t n = parse(in.substr(done), out);
        if (n == 0) break;
        done += n;
    }
    if (state_ == state::finished) {
        std::string().swap(partial_);
    } else if (done == in.size()) {
        std::string().swap(partial_);
    } else if (in.data() == partial_.data()) {
        partial_.erase(0, done);
    } else {
        partial_.assign(in.substr(done));
    }
    return out;
}

}  // namespace switchyard::websocket
