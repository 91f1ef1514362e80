// The backend link: how a gateway reaches objects held by another process
// (a backend node) over one TCP connection. Messages are records (a 4-byte
// big-endian length, then the message) whose first byte names the message;
// frames inside them use the frame wire encoding of the version the two
// sides agreed on in the handshake. README.md beside this file, section
// "Backend links", is the specification.
#pragma once

#include "protocols/frame/frame.hpp"
#include "protocols/frame/wire.hpp"

#include <tl/expected.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace switchyard::frame::link {

// The first field of `open`: a peer that is not a gateway speaking this
// protocol is refused before anything else is read.
inline constexpr std::string_view magic = "switchyard-link";
// Wire versions this build reads and writes; `open` offers the range and
// `accept` names the one both sides use from then on.
// Version 2: logins and account changes are frames (account_*), which
// version 1 does not have.
inline constexpr std::uint8_t lowest_version = 2;
inline constexpr std::uint8_t highest_version = wire_version;
// Bytes of a gateway name or incarnation, an object id in (un)subscribe, a
// backend instance id, a refusal reason.
inline constexpr std::size_t max_name = 256;

// Gateway -> backend, first message. `gateway` names the gateway (stable
// across restarts); `incarnation` is new each time the gateway starts, so the
// backend tells a reconnecting gateway (same incarnation: its endpoints are
// still its own) from a restarted one (whose old endpoints are gone).
struct open {
    std::uint8_t lowest = lowest_version;
    std::uint8_t highest = highest_version;
    std::string gateway;
    std::string incarnation;
    // The last publication this incarnation received on an earlier link (0:
    // none): a backend that resumes the lease sends again what came after.
    std::uint64_t received = 0;
};
// Backend -> gateway, the answer to `open`. `backend` is new each time the
// backend starts: a gateway that sees it change registers its live sessions
// again. `resumed`: the endpoints this incarnation registered before are
// still held (its lease had not run out). `lease_ms`: the gateway sends
// something (a ping when idle) at least every third of it.
struct accept {
    std::uint8_t version = wire_version;
    std::string backend;
    std::uint64_t lease_ms = 0;
    bool resumed = false;
};
// Backend -> gateway instead of `accept` (then it closes): no common
// version, or a name that is not acceptable.
struct refuse {
    std::string reason;
};
// Gateway -> backend: a frame for `f.object`. `f.corr` is the link's own
// request number, never 0: every request gets replies with that corr, the
// last of which is anything but a presence_update (an initial presence
// burst precedes the final reply).
struct request {
    frame f;
};
struct reply {
    frame f;
};
struct subscribe {
    std::string object;
};
struct unsubscribe {
    std::string object;
};
// Backend -> gateway: what a subscribed object published. `seq` numbers
// the publications of one lease from 1; the gateway acknowledges them with
// `received`, and the backend keeps the unacknowledged ones to send again
// on a resumed link.
struct publish {
    std::uint64_t seq = 0;
    frame f;
};
// Gateway -> backend: every publication up to `seq` has arrived.
struct received {
    std::uint64_t seq = 0;
};
struct ping {};
struct pong {};

using message = std::variant<open, accept, refuse, request, reply, subscribe, unsubscribe, publish, ping, pong,
                             received>;

// The record of publish{seq, f} from `f`'s encoding: a publication fanned
// out to several gateways is encoded once and numbered per gateway.
void encode_publish(std::uint64_t seq, std::string_view encoded_frame, std::string& out);

std::string_view name(const message& m);

// Appends `m` as a record.
void encode(const message& m, std::string& out);

// Splits a byte stream into messages. Any error is final: the connection
// must be closed (the reason says why, for the log).
class decoder {
public:
    explicit decoder(std::size_t max_frame = limits::frame) : max_frame_(max_frame) {}

    void feed(std::string_view bytes) { buffer_.append(bytes); }
    tl::expected<std::optional<message>, std::string> next();

private:
    std::string buffer_;
    std::size_t consumed_ = 0;
    std::size_t max_frame_;
    std::optional<std::string> failed_;
};

}  // namespace switchyard::frame::link
