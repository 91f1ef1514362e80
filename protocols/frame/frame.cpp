#include "protocols/frame/frame.hpp"

namespace switchyard::frame {

std::string_view to_string(client_protocol v) {
    switch (v) {
    case client_protocol::msnp: return "msnp";
    case client_protocol::wsjson: return "wsjson";
    case client_protocol::backend: return "backend";
    }
    return "?";
}

std::string_view to_string(status v) {
    switch (v) {
    case status::offline: return "offline";
    case status::online: return "online";
    case status::busy: return "busy";
    case status::idle: return "idle";
    case status::be_right_back: return "be_right_back";
    case status::away: return "away";
    case status::on_the_phone: return "on_the_phone";
    case status::out_to_lunch: return "out_to_lunch";
    case status::invisible: return "invisible";
    }
    return "?";
}

std::string_view to_string(list v) {
    switch (v) {
    case list::forward: return "forward";
    case list::allow: return "allow";
    case list::block: return "block";
    case list::reverse: return "reverse";
    case list::pending: return "pending";
    }
    return "?";
}

std::string_view to_string(change_op v) {
    switch (v) {
    case change_op::add: return "add";
    case change_op::remove: return "remove";
    case change_op::rename: return "rename";
    }
    return "?";
}

std::string_view to_string(privacy_default v) { return v == privacy_default::allow ? "allow" : "block"; }
std::string_view to_string(add_prompt v) { return v == add_prompt::prompt ? "prompt" : "none"; }

std::string_view to_string(room_policy v) {
    switch (v) {
    case room_policy::direct: return "direct";
    case room_policy::invite_only: return "invite_only";
    case room_policy::named: return "named";
    }
    return "?";
}

std::string_view to_string(leave_reason v) {
    switch (v) {
    case leave_reason::left: return "left";
    case leave_reason::idle: return "idle";
    case leave_reason::dropped: return "dropped";
    case leave_reason::removed: return "removed";
    }
    return "?";
}

std::string_view to_string(credential v) {
    switch (v) {
    case credential::password: return "password";
    case credential::md5: return "md5";
    }
    return "?";
}

std::string_view to_string(md5_login v) {
    switch (v) {
    case md5_login::keep: return "keep";
    case md5_login::on: return "on";
    case md5_login::off: return "off";
    }
    return "?";
}

std::string_view to_string(error_code v) {
    switch (v) {
    case error_code::malformed: return "malformed";
    case error_code::unknown_object: return "unknown_object";
    case error_code::not_member: return "not_member";
    case error_code::not_allowed: return "not_allowed";
    case error_code::room_full: return "room_full";
    case error_code::list_full: return "list_full";
    case error_code::already_on_list: return "already_on_list";
    case error_code::not_on_list: return "not_on_list";
    case error_code::oversize: return "oversize";
    case error_code::invalid_text: return "invalid_text";
    case error_code::rate_limited: return "rate_limited";
    case error_code::unauthenticated: return "unauthenticated";
    case error_code::backend_unavailable: return "backend_unavailable";
    case error_code::unsupported: return "unsupported";
    case error_code::offline: return "offline";
    case error_code::internal: return "internal";
    case error_code::shutting_down: return "shutting_down";
    }
    return "?";
}

}  // namespace switchyard::frame
