// The WebSocket JSON protocol, version 1 (README.md beside this file), as a
// sans-I/O codec: one WebSocket message in, one frame::output out: messages
// to send, frames to route, objects to watch and a close decision. The
// transport only carries the output out; every rule of the protocol, size
// and rate limits included, is decided here. Everything that needs keys, a
// thread pool or a clock is asked of `services`, which the gateway implements.
#pragma once

#include "protocols/frame/output.hpp"

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::wsjson {

// The protocol version a client names in `login`; the only one spoken.
inline constexpr std::uint32_t protocol_version = 1;
// The WebSocket subprotocol (Sec-WebSocket-Protocol) that names version 1.
inline constexpr std::string_view subprotocol = "switchyard.v1";

// WebSocket close codes the codec decides on (RFC 6455 section 7.4.1).
enum class close_code : std::uint16_t {
    none = 0,
    normal = 1000,            // logout, or signed in elsewhere
    going_away = 1001,        // the gateway is shutting down
    protocol_error = 1002,
    unsupported_data = 1003,  // a binary message
    invalid_payload = 1007,   // a text message that is not UTF-8
    policy_violation = 1008,  // floods, failed logins
    too_big = 1009,           // a message over limits::payload_bytes
    internal_error = 1011,
};

// A list of names shared by every connection made with the same limits:
// copying it copies a pointer, not the names.
class name_list {
public:
    name_list() = default;
    name_list(std::vector<std::string> names)
        : names_(std::make_shared<const std::vector<std::string>>(std::move(names))) {}
    name_list(std::initializer_list<std::string> names) : name_list(std::vector<std::string>(names)) {}

    std::vector<std::string>::const_iterator begin() const { return names_ ? names_->begin() : empty().begin(); }
    std::vector<std::string>::const_iterator end() const { return names_ ? names_->end() : empty().end(); }

private:
    static const std::vector<std::string>& empty() {
        static const std::vector<std::string> none;
        return none;
    }
    std::shared_ptr<const std::vector<std::string>> names_;
};

// Per-connection limits (uWebSockets' behaviour struct is the model): the
// gateway fills them from its settings.
struct limits {
    std::size_t payload_bytes = 65536;   // one WebSocket message, as received
    std::size_t message_bytes = 16384;   // the text of one chat message
    std::size_t name_bytes = 387;        // display names, titles, group names
    std::size_t personal_message_bytes = 1024;
    std::uint32_t rate_per_second = 20;  // messages refilled per second ...
    std::uint32_t rate_burst = 40;       // ... into a bucket this deep
    std::uint32_t rate_strikes = 10;     // messages refused in a row for rate before a 1008 close
    std::size_t max_pending = 64;        // requests in flight
    std::size_t max_rooms = 100;         // rooms joined at once
    std::size_t max_invitees = 20;       // handles in one `chat_open`
    // The named rooms clients may join by name (lowercase); none: no
    // named rooms. Clients cannot create rooms of other names.
    name_list named_rooms;
};

// The outcome of services::check_password.
enum class password_check : std::uint8_t {
    ok,
    rejected,     // wrong handle or password
    unavailable,  // the check could not run (login pool full, storage down): try again
};

struct token_owner {
    std::string handle;
    std::uint64_t issued_ms = 0;
};

class services {
public:
    virtual ~services() = default;

    // Starts a password check off the connection's thread; the gateway
    // answers later with connection::on_password_checked(handle, result).
    virtual void check_password(std::string_view handle, std::string_view password) = 0;
    // Self-verifying session tokens (gateway/README.md section 6): issued at every
    // login, verified on a token login; verify returns the handle and the
    // token's issue time (Unix ms), which the hello carries: the user object
    // refuses a token older than the password.
    virtual std::string issue_session_token(std::string_view handle) = 0;
    virtual std::optional<token_owner> verify_session_token(std::string_view token) = 0;

    virtual std::string new_room_id() = 0;      // without "room:"
    virtual std::string new_endpoint_id() = 0;  // one per connection
    virtual std::uint64_t now_ms() = 0;         // Unix time; drives rate limits
};

// One WebSocket connection. A connection built without services answers
// every login with `unsupported` (a gateway that has not wired logins yet).
class connection final : public frame::codec {
public:
    connection();
    explicit connection(services& svc, limits lim = {});
    ~connection();
    connection(connection&&) noexcept;
    connection& operator=(connection&&) noexcept;

    // One whole text message.
    frame::output on_message(std::string_view text);
    // One whole binary message: the protocol has none (close 1003).
    frame::output on_binary(std::string_view data);
    // The answer to services::check_password; a stale answer is ignored.
    frame::output on_password_checked(std::string_view handle, password_check result);

    frame::output on_frame(const frame::frame& f) override;
    frame::output on_shutdown() override;  // close 1001 with shutdown_reason
    frame::output on_closed() override;

    // Signed in (the login reply was sent) and not closed.
    bool logged_in() const;
    // Signed in at some point, closed since or not.
    bool logged_in_once() const;

    static constexpr std::string_view shutdown_reason = "server shutting down";

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace switchyard::wsjson
