#include "gateway/backends/embedded/users.hpp"

namespace switchyard::gateway::embedded {

int availability(frame::status s) {
    switch (s) {
    case frame::status::online: return 8;
    case frame::status::busy: return 7;
    case frame::status::be_right_back: return 6;
    case frame::status::away: return 5;
    case frame::status::on_the_phone: return 4;
    case frame::status::out_to_lunch: return 3;
    case frame::status::idle: return 2;
    case frame::status::invisible: return 1;
    case frame::status::offline: return 0;
    }
    return 0;
}

bool is_online(frame::status s) { return s != frame::status::offline && s != frame::status::invisible; }

std::optional<user_row> read_user(database& db, std::string_view handle) {
    auto& q = db.prepare(
        "SELECT display_name, personal_message, current_media, privacy, privacy_set, prompt, prompt_set, "
        "list_version, phone_home, phone_work, phone_mobile, mobile_pageable, mobile_device FROM users "
        "WHERE handle = ?1");
    q.bind(handle);
    if (!q.step()) {
        return std::nullopt;
    }
    user_row u;
    u.handle = handle;
    u.display_name = q.text(0);
    u.personal_message = q.text(1);
    u.current_media = q.text(2);
    u.privacy = q.integer(3) == 1 ? frame::privacy_default::block : frame::privacy_default::allow;
    u.privacy_set = q.integer(4) != 0;
    u.prompt = q.integer(5) == 1 ? frame::add_prompt::none : frame::add_prompt::prompt;
    u.prompt_set = q.integer(6) != 0;
    u.list_version = static_cast<std::uint64_t>(q.integer(7));
    u.phones = {q.text(8), q.text(9), q.text(10), q.integer(11) != 0};
    u.mobile_device = q.integer(12) != 0;
    q.run();
    return u;
}

bool user_exists(database& db, std::string_view handle) {
    auto& q = db.prepare("SELECT 1 FROM users WHERE handle = ?1");
    q.bind(handle);
    const bool found = q.step();
    q.run();
    return found;
}

frame::frame reverse_notice(std::string_view owner, std::string_view contact, frame::change_op op,
                            std::string display_name, std::uint64_t version) {
    return frame::frame{0, "user:" + std::string(contact), std::string(owner),
                        frame::roster_change{op, frame::list::reverse, std::string(owner), std::move(display_name),
                                             {}, version, {}, {}}};
}

std::vector<frame::frame> unacknowledged_notices(database& db) {
    // In each owner's list-version order, as they were first sent.
    auto& q = db.prepare("SELECT owner, contact, op, display_name, version FROM outbox ORDER BY owner, version");
    q.bind();
    std::vector<frame::frame> out;
    while (q.step()) {
        const auto op = q.integer(2) == static_cast<int>(frame::change_op::remove) ? frame::change_op::remove
                                                                                    : frame::change_op::add;
        out.push_back(reverse_notice(q.text(0), q.text(1), op, q.text(3), static_cast<std::uint64_t>(q.integer(4))));
    }
    // Removed accounts' word to their contacts that they are gone.
    auto& d = db.prepare("SELECT owner, contact FROM departures ORDER BY owner, contact");
    d.bind();
    while (d.step()) {
        out.push_back(departure_notice(d.text(0), d.text(1)));
    }
    return out;
}

frame::frame departure_notice(std::string_view owner, std::string_view contact) {
    return frame::frame{0, "user:" + std::string(contact), std::string(owner), frame::account_delete{}};
}

}  // namespace switchyard::gateway::embedded
