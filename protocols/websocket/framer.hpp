// RFC 6455 framing, server side, as a sans-I/O codec: bytes from the client
// in, whole messages and frames to send out. It enforces the rules a server
// must (masked client frames, no reserved bits or opcodes, short unfragmented
// control frames, a message size limit, UTF-8 text) and answers pings and
// the closing handshake itself. The opening handshake (HTTP) is the
// transport's. Partial frame bytes are kept only while a frame is
// incomplete, so an idle connection holds no buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::websocket {

// Close codes the framer itself decides on (RFC 6455 section 7.4.1).
inline constexpr std::uint16_t close_normal = 1000;
inline constexpr std::uint16_t close_going_away = 1001;
inline constexpr std::uint16_t close_protocol_error = 1002;
inline constexpr std::uint16_t close_invalid_payload = 1007;
inline constexpr std::uint16_t close_too_big = 1009;

struct message {
    bool text = true;
    std::string data;
};

// What one call to framer::feed produced, to be carried out in this order:
// the messages, then `send`; when `finished`, the connection ends after
// `send` is written (the closing handshake is complete or was refused).
struct output {
    std::vector<message> messages;
    std::string send;            // encoded frames: pongs, a close
    bool finished = false;
    bool refused = false;          // finished because the client broke the protocol or a limit
    std::uint16_t close_code = 0;  // when the framer closed (or answered a close): the code sent
    std::string close_reason;      // and its reason
};

class framer {
public:
    // `max_message` bounds one message's payload (all its fragments).
    explicit framer(std::size_t max_message = 65536) : max_message_(max_message) {}

    // Bytes from the client. After a close has been sent, data frames are
    // discarded and only the client's close frame is looked for.
    output feed(std::string_view bytes);

    // Starts the closing handshake: the close frame to send. Later calls
    // return nothing. The reason is cut to fit a control frame.
    std::string close(std::uint16_t code, std::string_view reason);

    bool close_sent() const { return state_ != state::open; }
    bool finished() const { return state_ == state::finished; }
    // Bytes held for an incomplete frame or message.
    std::size_t buffered() const { return partial_.size() + message_.size(); }

    // Server frames: unmasked, FIN set.
    static std::string text_header(std::size_t payload_size);
    static std::string encode_text(std::string_view payload);
    static std::string encode_ping(std::string_view payload = {});
    static std::string encode_pong(std::string_view payload);
    static std::string encode_close(std::uint16_t code, std::string_view reason);

private:
    enum class state : std::uint8_t { open, closing, finished };

    // Parses one frame from the front of `in`: the bytes it used, or 0 if
    // the frame is incomplete.
    std::size_t parse(std::string_view in, output& out);
    void fail(output& out, std::uint16_t code, std::string_view reason);
    void on_close_frame(std::string_view payload, output& out);

    std::size_t max_message_;
    state state_ = state::open;
    std::string partial_;   // an incomplete frame's bytes
    std::string message_;   // a fragmented message's payload so far
    bool in_message_ = false;
    bool message_text_ = false;
};

}  // namespace switchyard::websocket
