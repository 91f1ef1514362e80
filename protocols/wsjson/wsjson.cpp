#include "protocols/wsjson/wsjson.hpp"

namespace switchyard::wsjson {

frame::output connection::on_message(std::string_view) {
    frame::output out;
    out.messages.emplace_back(
        R"({"type":"error","code":"unsupported","reason":"this gateway does not speak a WebSocket protocol yet"})");
    return out;
}

frame::output connection::on_frame(const frame::frame&) { return {}; }

frame::output connection::on_shutdown() {
    frame::output out;
    out.close = true;
    out.close_code = static_cast<std::uint16_t>(close_code::going_away);
    out.close_reason = std::string(shutdown_reason);
    return out;
}

frame::output connection::on_closed() { return {}; }

}  // namespace switchyard::wsjson
