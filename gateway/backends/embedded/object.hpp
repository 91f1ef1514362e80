// What a durable object sees while it applies one frame. Internal to the
// embedded backend.
#pragma once

#include "gateway/backends/embedded/accounts.hpp"
#include "gateway/backends/embedded/backend.hpp"
#include "gateway/backends/embedded/sqlite.hpp"

#include "protocols/frame/frame.hpp"

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace switchyard::gateway::embedded {

// Everything an object does besides writing its own rows is collected here
// for the whole batch and released only after the batch's transaction commits.
class context {
public:
    context(database& d, const options& o, std::uint64_t now) : db(d), opt(o), now_ms(now) {}

    database& db;
    const options& opt;
    const std::uint64_t now_ms;

    // To whoever sent the frame being applied, with its corr. Requests with
    // corr 0 get errors only; object-to-object frames get nothing.
    void reply(frame::body b) {
        if (sink_ == nullptr || (corr_ == 0 && !std::holds_alternative<frame::error>(b))) {
            return;
        }
        released.push_back({sink_, frame::frame{corr_, *object_, {}, std::move(b)}});
    }
    void fail(frame::error_code code, std::string reason) { reply(frame::error{code, std::move(reason)}); }
    // To the subscribers of the object being applied.
    void publish(frame::frame f) {
        f.object = *object_;
        released.push_back({nullptr, std::move(f)});
    }
    // To another object, after commit, through the router (options::outbound).
    void send(frame::frame f) { sends.push_back({std::move(f), {}}); }
    // A request to another object, sent like send() with a corr of the
    // backend's choosing, which it returns: the target's reply (or an error,
    // such as backend_unavailable when no answer can come) is applied later,
    // in a batch of its own, by object::answer of the object being applied
    // now (gateway/backends/README.md, "Requests between objects").
    std::uint64_t ask(frame::frame f) {
        f.corr = next_request_id();
        const std::uint64_t id = f.corr;
        sends.push_back({std::move(f), *object_});
        return id;
    }

    // The reply sink of the frame being applied, for an object that answers
    // it later (after an ask, or once its wait is over).
    backends::frame_sink current_sink() const { return sink_ ? *sink_ : backends::frame_sink{}; }
    std::uint64_t current_corr() const { return corr_; }
    // Replies from now on go to a request the object kept: `sink` and
    // `corr` are what current_sink() and current_corr() gave back then.
    void resume(backends::frame_sink sink, std::uint64_t corr) {
        kept_.push_back(std::move(sink));
        sink_ = kept_.back() ? &kept_.back() : nullptr;
        corr_ = corr;
    }
    // The reply `work` makes, after commit, on a thread of the backend's
    // password pool: a password check, which the writer must not wait for.
    void reply_later(std::function<frame::body()> work) {
        if (sink_ != nullptr && corr_ != 0) {
            later.push_back({*sink_, corr_, *object_, std::move(work)});
        }
    }

    // account_create and account_password: the password as the backend
    // hashed it before queuing the frame.
    const hashed_password* prepared = nullptr;

    // The shard: which frame is being applied, and what the batch produced.
    void begin(const backends::frame_sink* sink, const frame::frame& f, const hashed_password* password = nullptr) {
        prepared = password;
        sink_ = sink && *sink ? sink : nullptr;
        corr_ = f.corr;
        object_ = &f.object;
    }
    // An object's own deadline (object::expire) rather than a frame: no one
    // to reply to.
    void begin_deadline(const std::string& object_id) {
        prepared = nullptr;
        sink_ = nullptr;
        corr_ = 0;
        object_ = &object_id;
    }
    // Replies (to `sink`) and publications (no sink: to the object's
    // subscribers), in the order the objects made them: one object's frames
    // reach a gateway in that order, whether replies or publications.
    struct outgoing {
        const backends::frame_sink* sink;
        frame::frame f;
    };
    std::vector<outgoing> released;
    // Frames to other objects; `asker` is the asking object's id for a
    // request (ask), empty for a one-way frame.
    struct sent {
        frame::frame f;
        std::string asker;
    };
    std::vector<sent> sends;
    std::vector<later_reply> later;

private:
    static std::uint64_t next_request_id();

    std::deque<backends::frame_sink> kept_;  // resumed sinks: stable until the batch is released
    const backends::frame_sink* sink_ = nullptr;
    std::uint64_t corr_ = 0;
    const std::string* object_ = nullptr;
};

class object {
public:
    virtual ~object() = default;
    // Applies one frame. `f.sender` is the authenticated user for frames from
    // a gateway, or the sending object's owner for object-to-object frames.
    virtual void apply(const frame::frame& f, context& ctx) = 0;

    // When (Unix ms, on ctx.now_ms's clock) the object wants expire()
    // called; 0 for never. The shard asks after every frame the object
    // applied, and keeps an object with a deadline in memory.
    virtual std::uint64_t deadline_ms() const { return 0; }
    // Called once ctx.now_ms has reached deadline_ms(), in a batch's
    // transaction like a frame; it may write, publish and send, not reply.
    virtual void expire(context&) {}

    // The answer to a request the object made with ctx.ask: f.corr is the
    // id ask returned, f.object the object's own id, f.content the
    // target's reply or an error. Applied in a batch's transaction like a
    // frame; no one to reply to until the object resumes a kept request.
    virtual void answer(const frame::frame&, context&) {}
    // The batch that applied this object failed and the object is dropped
    // from memory: requests it kept waiting end now, with this error, sent
    // straight to their senders.
    virtual void abandon(const frame::error&) {}

    std::uint64_t last_used_ms = 0;
};

// A client's request an object keeps while it waits for another object's
// answer (context::ask). While any is waiting the object has a deadline
// (the earliest `until_ms`), so it stays in memory, and when that passes
// the request ends with backend_unavailable: a lost answer never leaves a
// client waiting.
struct waiting_request {
    std::uint64_t id = 0;        // the ask's corr
    std::uint64_t until_ms = 0;  // when the object gives up on the answer
    backends::frame_sink sink;   // the client's request it continues
    std::uint64_t corr = 0;
    frame::frame request;        // as the client sent it
};

// The earliest give-up time among `w` (0 for none), with another deadline
// `other` (0 for none).
inline std::uint64_t earliest(const std::vector<waiting_request>& w, std::uint64_t other) {
    std::uint64_t first = other;
    for (const waiting_request& r : w) {
        first = first == 0 ? r.until_ms : std::min(first, r.until_ms);
    }
    return first;
}

// Takes the request answered by `id` out of `w`, if it still waits.
inline std::optional<waiting_request> take_waiting(std::vector<waiting_request>& w, std::uint64_t id) {
    for (auto it = w.begin(); it != w.end(); ++it) {
        if (it->id == id) {
            waiting_request r = std::move(*it);
            w.erase(it);
            return r;
        }
    }
    return std::nullopt;
}

// The requests of `w` whose time is up at `now`, taken out.
inline std::vector<waiting_request> take_expired(std::vector<waiting_request>& w, std::uint64_t now) {
    std::vector<waiting_request> out;
    for (auto it = w.begin(); it != w.end();) {
        if (it->until_ms <= now) {
            out.push_back(std::move(*it));
            it = w.erase(it);
        } else {
            ++it;
        }
    }
    return out;
}

// Loads an object's state from storage (an object that does not exist yet
// loads as empty and decides for itself what frames may create it).
std::unique_ptr<object> load_user(database& db, std::string_view handle);
std::unique_ptr<object> load_room(database& db, std::string_view room_id);
// `accounts:`: the backend's directory of its accounts (account_list).
std::unique_ptr<object> load_directory();

// Whether applying `f` to an object of that kind may write anything a
// restart keeps, that is, anything beyond live endpoints and their presence
// (clear_endpoints removes those at start). Each kind answers beside the
// code that applies the frame, from the frame alone, since the shard must
// choose how its transaction commits before it begins: under durability
// full, a batch whose frames all answer false commits without waiting for
// the disk.
bool user_needs_sync(const frame::frame& f);
bool room_needs_sync(const frame::frame& f);

// Creates the schema, or checks that an existing file has the current one
// (throws std::runtime_error when it has another).
void create_schema(database& db);
// Endpoints of a previous run are gone with it: the backend calls this once
// at start. Operator commands must not, or they would erase the presence of
// a gateway running on the same file.
// `end_switchboards`: also delete the switchboard sessions (invite-only
// rooms) that no client can come back to (backend options).
void clear_endpoints(database& db, bool end_switchboards);

}  // namespace switchyard::gateway::embedded
