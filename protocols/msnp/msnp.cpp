#include "protocols/msnp/msnp.hpp"

namespace switchyard::msnp {

output connection::dispatch(const command& c) {
    if (role_ == server_role::unknown) {
        if (c.name == "VER") {
            role_ = server_role::notification;
            session_.emplace<ns_session>(svc_, limits_);
        } else if (c.name == "USR" || c.name == "ANS") {
            role_ = server_role::switchboard;
            session_.emplace<sb_session>(svc_, limits_);
        } else {
            // Neither a notification login nor a switchboard handshake:
            // real servers dropped such connections without a word.
            output out;
            out.close = true;
            out.close_reason = "first command " + c.name + " is neither VER, USR nor ANS";
            return out;
        }
        framer_.set_role(role_);
    }
    output out = forward([&](auto& s) { return s.on_command(c); });
    if (const auto* ns = std::get_if<ns_session>(&session_)) {
        framer_.set_dialect(ns->dialect());
    }
    return out;
}

output connection::feed(std::string_view bytes) {
    output out;
    if (closed_) {
        return out;
    }
    framer_.feed(bytes);
    while (!out.close) {
        auto next = framer_.next();
        if (!next) {
            out.close = true;
            out.close_reason = std::string(to_string(next.error()));
            break;
        }
        if (!*next) {
            break;
        }
        ++commands_;
        if (role_ == server_role::switchboard && (*next)->name == "MSG") {
            ++relayed_;
            relayed_bytes_ += (*next)->payload.size();
        }
        out.append(dispatch(**next));
    }
    closed_ = out.close;
    return out;
}

bool connection::signed_in() const {
    if (const auto* ns = std::get_if<ns_session>(&session_)) return ns->signed_in();
    if (const auto* sb = std::get_if<sb_session>(&session_)) return sb->signed_in();
    return false;
}

output connection::on_frame(const frame::frame& f) {
    return forward([&](auto& s) { return s.on_frame(f); });
}

output connection::on_shutdown() {
    if (std::holds_alternative<std::monostate>(session_)) {
        output out;
        out.bytes = "OUT SSD\r\n";
        out.close = true;
        out.close_reason = "server shutting down";
        return out;
    }
    return forward([](auto& s) { return s.on_shutdown(); });
}

output connection::on_closed() {
    closed_ = true;
    return forward([](auto& s) { return s.on_closed(); });
}

}  // namespace switchyard::msnp
