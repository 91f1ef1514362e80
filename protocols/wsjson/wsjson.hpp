// WebSocket JSON protocol codec (sans-I/O): one text message in, messages to
// send and connection decisions out.
//
// This build answers every message with an `unsupported` error; the JSON
// protocol replaces that answer behind this same interface.
#pragma once

#include "protocols/frame/output.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::wsjson {

// WebSocket close codes the gateway uses (RFC 6455 section 7.4.1).
enum class close_code : std::uint16_t {
    none = 0,
    going_away = 1001,       // the gateway is shutting down
    protocol_error = 1002,
    unsupported_data = 1003,
    policy_violation = 1008, // rate or idle limits
    too_big = 1009,
    internal_error = 1011,
};

// The codec's output carries whole messages (`messages`) and, to close,
// one of the codes above as `close_code`.
class connection final : public frame::codec {
public:
    frame::output on_message(std::string_view text);
    frame::output on_frame(const frame::frame& f) override;
    frame::output on_shutdown() override;
    frame::output on_closed() override;

    static constexpr std::string_view shutdown_reason = "server shutting down";
};

}  // namespace switchyard::wsjson
