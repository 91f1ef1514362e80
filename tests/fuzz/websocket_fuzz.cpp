// libFuzzer target for the RFC 6455 framer. The first byte of the input
// picks the size of the reads the rest is fed in (1 to 256 bytes), so frames
// split at every offset; a message limit of 64 bytes makes 1009 reachable.
// It aborts when
//  - a message is over the limit, or a text message is not UTF-8;
//  - the framer holds more bytes than one incomplete frame may need;
//  - a frame it sends is not an unmasked FIN frame with a short length, or
//    a close it sends carries a code it does not decide on;
//  - anything comes out after the framer finished.
#include "protocols/text/text.hpp"
#include "protocols/websocket/framer.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

namespace ws = switchyard::websocket;

constexpr std::size_t limit = 64;

void require(bool ok) {
    if (!ok) std::abort();
}

// The frames of `send`, each checked.
void check_sent(std::string_view send) {
    while (!send.empty()) {
        require(send.size() >= 2);
        const auto b0 = static_cast<unsigned char>(send[0]);
        const auto b1 = static_cast<unsigned char>(send[1]);
        require((b0 & 0xF0) == 0x80);                // FIN, no reserved bits
        require((b1 & 0x80) == 0);                   // unmasked
        const std::size_t length = b1 & 0x7F;
        require(length <= 125);                      // control frames only
        require(send.size() >= 2 + length);
        const std::uint8_t opcode = b0 & 0x0F;
        require(opcode == 0x8 || opcode == 0xA);
        if (opcode == 0x8 && length >= 2) {
            const unsigned code = (static_cast<unsigned char>(send[2]) << 8) | static_cast<unsigned char>(send[3]);
            require(code == 1000 || code == 1001 || code == 1002 || code == 1007 || code == 1009 ||
                    (code >= 1003 && code <= 1014) || (code >= 3000 && code <= 4999));
        }
        send.remove_prefix(2 + length);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t step = static_cast<std::size_t>(data[0]) + 1;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    ws::framer f(limit);
    bool finished = false;
    while (!in.empty()) {
        const std::string_view chunk = in.substr(0, std::min(step, in.size()));
        in.remove_prefix(chunk.size());
        const ws::output out = f.feed(chunk);
        if (finished) {
            require(out.messages.empty() && out.send.empty() && !out.finished);
            continue;
        }
        for (const ws::message& m : out.messages) {
            require(m.data.size() <= limit);
            require(!m.text || switchyard::text::is_valid_utf8(m.data));
        }
        check_sent(out.send);
        // One frame's header (14) and payload, plus a message so far.
        require(f.buffered() <= 2 * (14 + limit) + 125);
        finished = out.finished;
        require(finished == f.finished());
    }
    return 0;
}
