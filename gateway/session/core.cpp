#include "gateway/session/core.hpp"

namespace switchyard::gateway {

session_core::~session_core() {
    for (const auto& [object, id] : watches_) {
        objects_.unwatch(object, id);
    }
}

void session_core::apply(frame::output out) {
    if (closed_) {
        return;
    }
    if (!out.bytes.empty()) {
        transport_.write(std::move(out.bytes));
    }
    for (std::string& m : out.messages) {
        transport_.write(std::move(m));
    }
    for (std::string& object : out.watch) {
        if (watches_.contains(object)) continue;
        const auto id = objects_.watch(object, transport_.watch_sink());
        watches_.emplace(std::move(object), id);
    }
    for (const std::string& object : out.unwatch) {
        if (auto it = watches_.find(object); it != watches_.end()) {
            objects_.unwatch(object, it->second);
            watches_.erase(it);
        }
    }
    for (frame::frame& f : out.frames) {
        route(std::move(f));
    }
    if (out.close) {
        transport_.finish(out.close_code, std::move(out.close_reason));
    }
}

void session_core::route(frame::frame f) {
    const auto corr = f.corr;
    std::string object = f.object;
    if (corr != 0 && !closed_) {
        ++outstanding_;
    }
    if (frame::is_account_frame(f)) {
        deliver(frame::frame{corr, std::move(object), {},
                             frame::error{frame::error_code::not_allowed, "accounts are not a client's to change"}});
        return;
    }
    const bool sent = objects_.send(std::move(f), transport_.reply_sink());
    if (!sent && !closed_) {
        deliver(frame::frame{corr, std::move(object), {},
                             frame::error{frame::error_code::backend_unavailable, "no backend serves it"}});
    }
}

void session_core::deliver(const frame::frame& f) {
    if (closed_) {
        return;
    }
    // A presence_update with a corr is part of a reply's burst; anything
    // else with a corr is the request's final reply.
    if (f.corr != 0 && !std::holds_alternative<frame::presence_update>(f.content) && outstanding_ > 0) {
        --outstanding_;
    }
    apply(codec_.on_frame(f));
}

void session_core::closed() {
    if (closed_) {
        return;
    }
    closed_ = true;
    outstanding_ = 0;
    frame::output last = codec_.on_closed();
    for (frame::frame& f : last.frames) {
        route(std::move(f));
    }
}

}  // namespace switchyard::gateway
