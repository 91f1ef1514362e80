#include "gateway/backends/link/endpoints.hpp"

namespace switchyard::gateway::link {

void endpoint_registry::note(const frame::frame& f) {
    const auto kept = [&f] {
        frame::frame copy = f;
        copy.corr = 0;
        return copy;
    };
    if (const auto* h = std::get_if<frame::hello>(&f.content)) {
        users_[{f.object, h->endpoint}].hello = kept();
    } else if (const auto* p = std::get_if<frame::presence_set>(&f.content)) {
        users_[{f.object, p->presence.endpoint}].presence = kept();
    } else if (const auto* b = std::get_if<frame::bye>(&f.content)) {
        users_.erase({f.object, b->endpoint});
    } else if (const auto* j = std::get_if<frame::room_join>(&f.content)) {
        rooms_.insert_or_assign({f.object, j->who.endpoint}, kept());
    } else if (const auto* l = std::get_if<frame::room_leave>(&f.content)) {
        rooms_.erase({f.object, l->endpoint});
    }
}

std::vector<frame::frame> endpoint_registry::registrations() const {
    std::vector<frame::frame> out;
    out.reserve(2 * users_.size() + rooms_.size());
    for (const auto& [k, e] : users_) {
        if (e.hello) out.push_back(*e.hello);
        if (e.presence) out.push_back(*e.presence);
    }
    for (const auto& [k, join] : rooms_) {
        out.push_back(join);
    }
    return out;
}

std::vector<frame::frame> endpoint_registry::endings(const std::string& reason) const {
    std::vector<frame::frame> out;
    out.reserve(users_.size() + rooms_.size());
    for (const auto& [k, e] : users_) {
        const frame::frame& from = e.hello ? *e.hello : *e.presence;
        out.push_back(frame::frame{
            0, k.first, from.sender,
            frame::bye{frame::error_code::backend_unavailable, false, reason, k.second}});
    }
    for (const auto& [k, join] : rooms_) {
        const auto& who = std::get<frame::room_join>(join.content).who;
        out.push_back(frame::frame{0, k.first, join.sender,
                                   frame::room_leave{who.user, k.second, frame::leave_reason::dropped}});
    }
    return out;
}

}  // namespace switchyard::gateway::link
