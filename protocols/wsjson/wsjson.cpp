#include "protocols/wsjson/wsjson.hpp"

namespace switchyard::wsjson {

step connection::on_message(std::string_view) {
    step out;
    out.messages.emplace_back(
        R"({"type":"error","code":"unsupported","reason":"this gateway does not speak a WebSocket protocol yet"})");
    return out;
}

}  // namespace switchyard::wsjson
