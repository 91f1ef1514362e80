// libFuzzer target for the WebSocket JSON codec. The input is a session:
// one WebSocket message per line (a line starting with 0x01 is sent as a
// binary message). Services accept any password and any "tok:" token, and
// a backend stand-in answers every request with a reply of the right shape
// (and publishes a message into each room joined), so the fuzzer reaches
// everything after login. It aborts when
//  - a message the codec writes is not a JSON object with a string "type";
//  - a close carries a code the protocol does not define, or a reply or
//    error appears without the request's id field;
//  - the codec writes, routes or closes anything after it closed.
// It runs with the default limits and with tight ones that make the size
// and rate limits reachable by short inputs.
#include "protocols/wsjson/wsjson.hpp"

#include <boost/json/parse.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

namespace fr = switchyard::frame;
namespace ws = switchyard::wsjson;

void require(bool ok) {
    if (!ok) std::abort();
}

class accept_all final : public ws::services {
public:
    void check_password(std::string_view handle, std::string_view) override { checked.emplace_back(handle); }
    std::string issue_session_token(std::string_view handle) override { return "tok:" + std::string(handle); }
    std::optional<ws::token_owner> verify_session_token(std::string_view token) override {
        if (!token.starts_with("tok:")) return std::nullopt;
        return ws::token_owner{std::string(token.substr(4)), 42};
    }
    std::string new_room_id() override { return "r" + std::to_string(++counter); }
    std::string new_endpoint_id() override { return "ep" + std::to_string(++counter); }
    std::uint64_t now_ms() override { return now += 7; }

    std::vector<std::string> checked;
    std::uint64_t now = 1700000000000;
    int counter = 0;
};

// What an object would answer, shaped enough for the codec to go on.
std::vector<fr::frame> answer(const fr::frame& request) {
    std::vector<fr::frame> out;
    fr::frame reply{request.corr, request.object, {}, fr::ack{1}};
    if (std::holds_alternative<fr::roster_get>(request.content)) {
        fr::roster r;
        r.entries.push_back({"bob@example.com", "Bob", 0xb, "c1", {}, {}});
        reply.content = r;
    } else if (std::holds_alternative<fr::room_join>(request.content)) {
        reply.content = fr::room_members{{{"bob@example.com", "ep9", "Bob", 0, fr::client_protocol::msnp}}, {"e1"}};
        fr::room_message m;
        m.seq = 2;
        m.text = "live";
        out.push_back(fr::frame{0, request.object, "bob@example.com", m});
    } else if (const auto* h = std::get_if<fr::room_history_get>(&request.content)) {
        // Odd positions: another epoch (the room was created again), and a
        // message withheld from the user.
        const bool odd = h->after_seq % 2 == 1;
        fr::stored_message m{h->after_seq + 1, "bob@example.com", "x", 1, "old", {}, {}};
        if (odd) m.withheld_from = {"alice@example.com"};
        reply.content = fr::room_history{{m}, h->after_seq + 1, {odd ? "e2" : "e1"}};
    } else if (const auto* c = std::get_if<fr::roster_change>(&request.content)) {
        reply.content = *c;
    } else if (const auto* g = std::get_if<fr::group_change>(&request.content)) {
        reply.content = *g;
    } else if (const auto* p = std::get_if<fr::privacy_set>(&request.content)) {
        reply.content = *p;
    } else if (std::holds_alternative<fr::room_invite>(request.content) && request.corr % 3 == 0) {
        reply.content = fr::error{fr::error_code::offline, "offline"};
    }
    out.push_back(std::move(reply));
    return out;
}

bool closed = false;

void check(const fr::output& out) {
    require(out.bytes.empty());  // a message transport writes whole messages only
    if (closed) {
        require(out.messages.empty() && out.frames.empty() && out.watch.empty() && !out.close);
        return;
    }
    for (const auto& m : out.messages) {
        boost::system::error_code ec;
        const auto v = boost::json::parse(m, ec);
        require(!ec && v.is_object());
        const auto* type = v.as_object().if_contains("type");
        require(type && type->is_string());
        if (*type == "reply" || *type == "error") require(v.as_object().contains("id"));
    }
    if (out.close) {
        static constexpr std::uint16_t codes[] = {1000, 1001, 1003, 1007, 1008, 1009};
        require(std::find(std::begin(codes), std::end(codes), out.close_code) != std::end(codes));
        require(!out.close_reason.empty() && out.close_reason.size() <= 123);
        closed = true;
    }
}

void drive(std::string_view input, const ws::limits& lim) {
    accept_all svc;
    ws::connection c(svc, lim);
    closed = false;
    std::vector<fr::frame> pending;
    const auto apply = [&](fr::output out) {
        check(out);
        for (auto& f : out.frames) {
            if (f.corr != 0) pending.push_back(std::move(f));
        }
    };
    while (!input.empty()) {
        const auto nl = input.find('\n');
        const std::string_view line = input.substr(0, nl);
        input.remove_prefix(nl == std::string_view::npos ? input.size() : nl + 1);
        apply(line.starts_with('\x01') ? c.on_binary(line.substr(1)) : c.on_message(line));
        for (const auto& h : std::exchange(svc.checked, {})) apply(c.on_password_checked(h, static_cast<ws::password_check>(h.size() % 3)));
        // Answer what was asked, and what the answers cause, a bounded number of rounds.
        for (int round = 0; round < 6 && !pending.empty(); ++round) {
            for (const auto& request : std::exchange(pending, {})) {
                for (const auto& reply : answer(request)) apply(c.on_frame(reply));
            }
        }
    }
    apply(c.on_shutdown());
    closed = false;  // on_closed after a close decision still tells the objects
    check(c.on_closed());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    ws::limits tight;
    tight.payload_bytes = 256;
    tight.message_bytes = 16;
    tight.name_bytes = 16;
    tight.rate_burst = 4;
    tight.rate_per_second = 100;
    tight.rate_strikes = 3;
    tight.max_pending = 3;
    tight.max_rooms = 2;
    tight.max_invitees = 2;
    for (const auto& lim : {ws::limits{}, tight}) drive(input, lim);
    return 0;
}
