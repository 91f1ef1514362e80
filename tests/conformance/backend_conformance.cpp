// The backend conformance suite (backend_conformance.hpp): every behaviour
// of gateway/backends/README.md, driven through frames only.
#include "tests/conformance/backend_conformance.hpp"

#include "protocols/frame/frame.hpp"
#include "protocols/frame/wire.hpp"

#include <catch2/catch.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace switchyard::test {
namespace conformance {

using namespace std::chrono_literals;

inline constexpr std::chrono::milliseconds rejoin_grace = 60s;
inline constexpr std::chrono::milliseconds idle_enough_to_hibernate = 1h;
inline constexpr std::chrono::milliseconds wait_limit = 5s;

// One receiver's frames (a request's replies, or a subscription), each
// stamped with the order in which any receiver of the suite got it.
class collector : public std::enable_shared_from_this<collector> {
public:
    struct arrival {
        std::uint64_t order;
        frame::frame f;
    };

    explicit collector(std::shared_ptr<std::atomic<std::uint64_t>> clock) : clock_(std::move(clock)) {}

    // Keeps the collector alive for as long as the backend holds the sink.
    gateway::backends::frame_sink sink() {
        return [self = shared_from_this()](frame::frame f) { self->push(std::move(f)); };
    }

    void push(frame::frame f) {
        {
            const std::lock_guard lock(m_);
            q_.push_back({clock_->fetch_add(1), std::move(f)});
        }
        cv_.notify_all();
    }

    // The oldest frame not taken yet.
    arrival next(const std::string& what) {
        std::unique_lock lock(m_);
        const bool got = cv_.wait_for(lock, wait_limit, [&] { return !q_.empty(); });
        INFO("waiting for " << what);
        REQUIRE(got);
        arrival a = std::move(q_.front());
        q_.pop_front();
        return a;
    }

    // The oldest frame not taken yet that matches, wherever it is: frames
    // of other objects may come before or after it.
    arrival take(const std::function<bool(const frame::frame&)>& match, const std::string& what) {
        std::unique_lock lock(m_);
        std::deque<arrival>::iterator found;
        const bool got = cv_.wait_for(lock, wait_limit, [&] {
            found = std::find_if(q_.begin(), q_.end(), [&](const arrival& a) { return match(a.f); });
            return found != q_.end();
        });
        INFO("waiting for " << what << "; " << q_.size() << " other frames here: " << dump_locked());
        REQUIRE(got);
        arrival a = std::move(*found);
        q_.erase(found);
        return a;
    }

    std::size_t size() {
        const std::lock_guard lock(m_);
        return q_.size();
    }

    std::string dump() {
        const std::lock_guard lock(m_);
        return dump_locked();
    }

private:
    std::string dump_locked() const {
        std::string out;
        for (const arrival& a : q_) out += "\n  " + frame::to_text(a.f);
        return out;
    }

    std::shared_ptr<std::atomic<std::uint64_t>> clock_;
    std::mutex m_;
    std::condition_variable cv_;
    std::deque<arrival> q_;
};

template <class T> const T& as(const frame::frame& f) {
    INFO("got " << frame::to_text(f));
    REQUIRE(std::holds_alternative<T>(f.content));
    return std::get<T>(f.content);
}

inline frame::error_code error_of(const frame::frame& f) { return as<frame::error>(f).code; }

template <class T> std::function<bool(const frame::frame&)> is() {
    return [](const frame::frame& f) { return std::holds_alternative<T>(f.content); };
}

inline std::string user(const std::string& handle) { return "user:" + handle; }

// The suite's side of the adapter: requests that wait for their replies,
// and subscriptions that record what objects publish.
class driver {
public:
    explicit driver(conformance_target& t) : target_(t) {}

    conformance_target& target() { return target_; }

    // Sends and collects replies up to the terminal one (anything but a
    // presence_update); returns them all, terminal last.
    std::vector<collector::arrival> request_timed(const std::string& sender, const std::string& object,
                                                  frame::body b) {
        auto replies = make_collector();
        const std::uint64_t corr = next_corr_++;
        INFO("request " << frame::type_name(b.index()) << " from " << sender << " to " << object);
        target_.adapter().send(frame::frame{corr, object, sender, std::move(b)}, replies->sink());
        std::vector<collector::arrival> out;
        for (;;) {
            collector::arrival r = replies->next("a reply");
            CHECK(r.f.corr == corr);
            CHECK(r.f.object == object);
            const bool terminal = !std::holds_alternative<frame::presence_update>(r.f.content);
            out.push_back(std::move(r));
            if (terminal) return out;
        }
    }

    std::vector<frame::frame> request(const std::string& sender, const std::string& object, frame::body b) {
        std::vector<frame::frame> out;
        for (auto& a : request_timed(sender, object, std::move(b))) out.push_back(std::move(a.f));
        return out;
    }

    frame::frame ask(const std::string& sender, const std::string& object, frame::body b) {
        return request(sender, object, std::move(b)).back();
    }

    // corr 0: nothing comes back but errors, which go to `errors`.
    void tell(const std::string& sender, const std::string& object, frame::body b) {
        target_.adapter().send(frame::frame{0, object, sender, std::move(b)}, errors->sink());
    }

    collector& watch(const std::string& object) {
        auto c = make_collector();
        target_.adapter().subscribe(object, c->sink());
        watched_[object] = c;
        return *c;
    }

    void unwatch(const std::string& object) {
        target_.adapter().unsubscribe(object);
        watched_.erase(object);
    }

    void restart() {
        watched_.clear();
        target_.restart();
    }

    std::shared_ptr<collector> make_collector() {
        return std::make_shared<collector>(order_);
    }

private:
    conformance_target& target_;
    std::shared_ptr<std::atomic<std::uint64_t>> order_ = std::make_shared<std::atomic<std::uint64_t>>(0);

public:
    // Errors replied to frames sent with corr 0.
    std::shared_ptr<collector> errors = make_collector();

private:
    std::uint64_t next_corr_ = 1;
    std::map<std::string, std::shared_ptr<collector>> watched_;
};

// ---------------------------------------------------------------- frames

inline const std::string alice = "alice@example.com";
inline const std::string bob = "bob@example.com";
inline const std::string carol = "carol@example.com";
inline const std::string dave = "dave@example.com";

inline frame::hello hello_ws(const std::string& who, const std::string& endpoint = "ep-1") {
    return frame::hello{frame::client_protocol::wsjson, 1, who, endpoint, "conformance", {}};
}

inline frame::presence_set presence(frame::status s, const std::string& endpoint = "ep-1") {
    frame::presence_set p;
    p.presence.state = s;
    p.presence.endpoint = endpoint;
    p.presence.capabilities = 0x50000000;
    return p;
}

inline frame::bye bye(const std::string& endpoint = "ep-1") {
    return frame::bye{frame::error_code::internal, true, {}, endpoint};
}

inline frame::roster_change adding(frame::list which, const std::string& handle, const std::string& group = {},
                                   const std::string& name = {}) {
    return frame::list_edit(frame::change_op::add, which, handle, name, group);
}

inline frame::roster_change removing(frame::list which, const std::string& handle, const std::string& group = {}) {
    return frame::list_edit(frame::change_op::remove, which, handle, {}, group);
}

inline frame::member member_of(const std::string& who, const std::string& endpoint = "ep-1",
                               frame::client_protocol p = frame::client_protocol::msnp) {
    return frame::member{who, endpoint, who + " in the room", 0x40000000, p};
}

inline frame::room_message text(const std::string& t, const std::string& id = {}) {
    frame::room_message m;
    m.text = t;
    m.message_id = id;
    m.format.font = "Segoe UI";
    m.format.effects = "B";
    m.format.color = 0x0000ff;
    return m;
}

inline frame::room_history_get history_after(std::uint64_t after = 0, std::uint64_t before = 0,
                                             std::uint32_t max = frame::limits::history) {
    return frame::room_history_get{after, before, max};
}

inline frame::profile_set psm(const std::string& message) {
    frame::profile_set p;
    p.fields = frame::profile_bits::personal_message;
    p.personal_message = message;
    return p;
}

inline constexpr std::uint32_t bit(frame::list l) { return 1u << static_cast<unsigned>(l); }
inline constexpr std::uint32_t FL = bit(frame::list::forward);
inline constexpr std::uint32_t AL = bit(frame::list::allow);
inline constexpr std::uint32_t BL = bit(frame::list::block);
inline constexpr std::uint32_t RL = bit(frame::list::reverse);
inline constexpr std::uint32_t PL = bit(frame::list::pending);

inline const frame::roster_entry* entry(const frame::roster& r, const std::string& handle) {
    const auto it = std::find_if(r.entries.begin(), r.entries.end(),
                                 [&](const frame::roster_entry& e) { return e.handle == handle; });
    return it == r.entries.end() ? nullptr : &*it;
}

// ---------------------------------------------------------------- steps

inline frame::roster roster_of(driver& d, const std::string& owner) {
    return as<frame::roster>(d.ask(owner, user(owner), frame::roster_get{}));
}

inline std::uint32_t lists_in(driver& d, const std::string& owner, const std::string& contact) {
    const frame::roster r = roster_of(d, owner);
    const frame::roster_entry* e = entry(r, contact);
    return e ? e->lists : 0;
}

inline frame::roster_change change(driver& d, const std::string& owner, frame::roster_change rc) {
    return as<frame::roster_change>(d.ask(owner, user(owner), std::move(rc)));
}

inline frame::error_code refused(driver& d, const std::string& sender, const std::string& object, frame::body b) {
    return error_of(d.ask(sender, object, std::move(b)));
}

// hello and a first presence_set on a WebSocket endpoint; returns the
// presence_set's replies (the initial burst, then the ack).
inline std::vector<frame::frame> sign_in(driver& d, const std::string& who,
                                         frame::status s = frame::status::online,
                                         const std::string& endpoint = "ep-1") {
    as<frame::ack>(d.ask(who, user(who), hello_ws(who, endpoint)));
    auto replies = d.request(who, user(who), presence(s, endpoint));
    as<frame::ack>(replies.back());
    return replies;
}

inline void set_status(driver& d, const std::string& who, frame::status s, const std::string& endpoint = "ep-1") {
    as<frame::ack>(d.ask(who, user(who), presence(s, endpoint)));
}

// The next frame `q` got, which must be `about`'s presence (not initial).
inline frame::presence_update next_presence(collector& q, const std::string& about) {
    const frame::frame f = q.next("presence of " + about).f;
    const auto& u = as<frame::presence_update>(f);
    CHECK(f.sender == about);
    CHECK(u.user == about);
    CHECK_FALSE(u.initial);
    CHECK(u.presence.state != frame::status::invisible);  // watchers never see invisible
    return u;
}

// The next frame `q` got, which must be a reverse-list notice from `from`.
inline frame::roster_change next_notice(collector& q, const std::string& from) {
    const frame::frame f = q.next("a reverse-list notice from " + from).f;
    const auto& r = as<frame::roster_change>(f);
    CHECK(f.sender == from);
    CHECK(r.which == frame::list::reverse);
    CHECK(r.handle == from);
    return r;
}

inline void create_room(driver& d, const std::string& who, const std::string& room, frame::room_policy p,
                        const std::string& title = "a room") {
    as<frame::ack>(d.ask(who, room, frame::room_create{p, title}));
}

inline frame::room_members join(driver& d, const std::string& who, const std::string& room,
                                const std::string& endpoint = "ep-1",
                                frame::client_protocol p = frame::client_protocol::msnp) {
    return as<frame::room_members>(d.ask(who, room, frame::room_join{member_of(who, endpoint, p)}));
}

inline std::uint64_t say(driver& d, const std::string& who, const std::string& room, const std::string& t,
                         const std::string& id = {}) {
    return as<frame::ack>(d.ask(who, room, text(t, id))).seq;
}

inline frame::room_history history(driver& d, const std::string& who, const std::string& room,
                                   frame::room_history_get h = history_after()) {
    return as<frame::room_history>(d.ask(who, room, h));
}

// Waits, bounded, until the target holds no object in memory; returns how
// many it still holds (0 for a target that cannot tell). Polls: a backend
// has no event for an object leaving memory.
inline std::size_t resident_after_waiting(conformance_target& t) {
    const auto deadline = std::chrono::steady_clock::now() + wait_limit;
    for (;;) {
        const std::size_t n = t.resident_objects().value_or(0);
        if (n == 0 || std::chrono::steady_clock::now() > deadline) return n;
        std::this_thread::sleep_for(1ms);
    }
}

// Account frames are the gateway's own: no sender.
inline frame::frame account(driver& d, const std::string& object, frame::body b) {
    return d.ask({}, object, std::move(b));
}

inline const std::string password = "a password of sorts";

inline void create_account(driver& d, const std::string& handle, const std::string& display_name,
                           bool md5_login = false) {
    as<frame::ack>(account(d, user(handle), frame::account_create{password, md5_login, display_name}));
}

inline frame::frame check_password(driver& d, const std::string& handle, const std::string& secret) {
    return account(d, user(handle), frame::account_check{frame::credential::password, secret});
}

// What an MSNP2-7 client answers to `USR t MD5 S <salt>`: hex md5(salt + password).
inline std::string md5_hex(const std::string& text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    REQUIRE(EVP_Digest(text.data(), text.size(), digest, &size, EVP_md5(), nullptr) == 1);
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < size; ++i) {
        out.push_back(digits[digest[i] >> 4]);
        out.push_back(digits[digest[i] & 15]);
    }
    return out;
}

// Alice, Bob, Carol and Dave, with display names.
inline void create_users(driver& d) {
    create_account(d, alice, "Alice");
    create_account(d, bob, "Bob");
    create_account(d, carol, "Carol");
    create_account(d, dave, "Dave");
}

}  // namespace conformance

using namespace conformance;
using frame::error_code;
using frame::list;
using frame::status;

void run_conformance(conformance_target& target) {
    driver d(target);
    create_users(d);

    SECTION("accounts: only users with an account answer, and only to their owner") {
        const std::string nobody = "nobody@example.com";
        CHECK(refused(d, nobody, user(nobody), frame::roster_get{}) == error_code::unknown_object);
        CHECK(refused(d, nobody, user(nobody), hello_ws(nobody)) == error_code::unknown_object);
        create_account(d, nobody, "Somebody Now");
        const frame::roster fresh = roster_of(d, nobody);
        CHECK(fresh.display_name == "Somebody Now");
        CHECK(fresh.entries.empty());
        CHECK(fresh.groups.empty());
        CHECK(fresh.privacy == frame::privacy_default::allow);
        CHECK(fresh.prompt == frame::add_prompt::prompt);

        // An account exists once.
        CHECK(error_of(account(d, user(nobody), frame::account_create{password, false, {}})) ==
              error_code::already_on_list);

        // Requests (corr != 0) from anyone but the owner.
        CHECK(refused(d, bob, user(alice), frame::roster_get{}) == error_code::not_allowed);
        CHECK(refused(d, bob, user(alice), adding(list::forward, bob)) == error_code::not_allowed);
        CHECK(refused(d, bob, user(alice), hello_ws(alice)) == error_code::not_allowed);

        // The forward list takes users with an account; allow and block lists any handle.
        const std::string ghost = "ghost@example.com";
        CHECK(refused(d, alice, user(alice), adding(list::forward, ghost)) == error_code::unknown_object);
        const auto allowed = change(d, alice, adding(list::allow, ghost));
        CHECK(allowed.handle == ghost);
        CHECK(allowed.display_name == ghost);  // no account: its handle
        CHECK(lists_in(d, alice, ghost) == AL);
    }

    SECTION("accounts: passwords, MD5 login, listing and removal are frames to the user object") {
        // A password login: the right one, a wrong one, an unknown handle alike.
        as<frame::ack>(check_password(d, alice, password));
        CHECK(error_of(check_password(d, alice, "not the password")) == error_code::unauthenticated);
        CHECK(error_of(check_password(d, "nobody@example.com", password)) == error_code::unauthenticated);

        // MSNP2-7 MD5: a real salt for an account with the record; for any
        // other handle one that looks the same and stays the same.
        const std::string md5_user = "md5@example.com";
        create_account(d, md5_user, "Old Client", true);
        const auto salt_of = [&](const std::string& h) {
            return as<frame::account_salt>(account(d, user(h), frame::account_salt{})).salt;
        };
        const std::string salt = salt_of(md5_user);
        CHECK(salt.size() == 15);
        const auto md5 = [&](const std::string& h, const std::string& response) {
            return account(d, user(h), frame::account_check{frame::credential::md5, response});
        };
        as<frame::ack>(md5(md5_user, md5_hex(salt + password)));
        CHECK(error_of(md5(md5_user, md5_hex(salt + "wrong"))) == error_code::unauthenticated);
        const std::string made_up = salt_of("nobody@example.com");
        CHECK(made_up.size() == salt.size());
        CHECK(made_up == salt_of("nobody@example.com"));
        CHECK(error_of(md5("nobody@example.com", md5_hex(made_up + password))) == error_code::unauthenticated);
        CHECK(error_of(md5(alice, md5_hex(salt_of(alice) + password))) == error_code::unauthenticated);

        // A new password replaces the old one; the MD5 record follows it, and
        // goes when asked to.
        as<frame::ack>(account(d, user(md5_user), frame::account_password{"another password", frame::md5_login::keep}));
        CHECK(error_of(check_password(d, md5_user, password)) == error_code::unauthenticated);
        as<frame::ack>(check_password(d, md5_user, "another password"));
        CHECK(salt_of(md5_user) == salt);
        as<frame::ack>(md5(md5_user, md5_hex(salt + "another password")));
        as<frame::ack>(account(d, user(md5_user), frame::account_password{"another password", frame::md5_login::off}));
        CHECK(error_of(md5(md5_user, md5_hex(salt + "another password"))) == error_code::unauthenticated);
        CHECK(error_of(account(d, user("nobody@example.com"), frame::account_password{password, frame::md5_login::keep})) ==
              error_code::unknown_object);
        CHECK(error_of(account(d, user(bob), frame::account_password{"short", frame::md5_login::keep})) ==
              error_code::not_allowed);

        // Each backend's directory lists its accounts in handle order, a page
        // at a time; together they list every account.
        const auto page = [&](const std::string& directory, const std::string& after, std::uint32_t limit) {
            return as<frame::account_list>(account(d, directory, frame::account_list{after, limit, {}, false}));
        };
        const auto everyone = [&](std::uint32_t limit) {
            std::map<std::string, frame::account_entry> all;
            for (const std::string& directory : target.directories()) {
                std::string after;
                for (;;) {
                    const auto p = page(directory, after, limit);
                    if (limit > 0) CHECK(p.accounts.size() <= limit);
                    for (const auto& a : p.accounts) {
                        CHECK(a.handle > after);  // in handle order, each once
                        after = a.handle;
                        all.emplace(a.handle, a);
                    }
                    if (!p.more) break;
                    REQUIRE_FALSE(p.accounts.empty());
                }
            }
            return all;
        };
        const auto listed = everyone(2);
        std::vector<std::string> handles;
        for (const auto& [h, a] : listed) handles.push_back(h);
        CHECK(handles == std::vector<std::string>{alice, bob, carol, dave, md5_user});
        CHECK(listed.at(alice).display_name == "Alice");
        CHECK_FALSE(listed.at(md5_user).md5_login);
        CHECK(listed.at(md5_user).created_ms > 0);

        // Removing an account signs out its endpoints; whoever saw it online
        // sees it offline; it answers like any unknown user.
        change(d, bob, adding(list::forward, alice));
        collector& bob_sees = d.watch(user(bob));
        collector& alice_endpoints = d.watch(user(alice));
        sign_in(d, bob);
        sign_in(d, alice);
        CHECK(next_presence(bob_sees, alice).presence.state == status::online);
        as<frame::ack>(account(d, user(alice), frame::account_delete{}));
        const auto gone = alice_endpoints.take(is<frame::bye>(), "alice's endpoint signed out");
        CHECK(as<frame::bye>(gone.f).endpoint == "ep-1");
        CHECK_FALSE(as<frame::bye>(gone.f).normal);
        CHECK(next_presence(bob_sees, alice).presence.state == status::offline);
        // Bob's object is told she is gone and drops her from his list.
        const auto dropped = bob_sees.take(
            [&](const frame::frame& f) {
                const auto* r = std::get_if<frame::roster_change>(&f.content);
                return r && r->op == frame::change_op::remove && r->which == list::forward && r->handle == alice;
            },
            "Alice leaving Bob's forward list");
        CHECK(entry(roster_of(d, bob), alice) == nullptr);
        CHECK(refused(d, alice, user(alice), frame::roster_get{}) == error_code::unknown_object);
        CHECK(error_of(check_password(d, alice, password)) == error_code::unauthenticated);
        CHECK(error_of(account(d, user(alice), frame::account_delete{})) == error_code::unknown_object);
        CHECK_FALSE(everyone(0).contains(alice));

        // And it can be made again, starting from nothing on either side.
        create_account(d, alice, "Alice Again");
        CHECK(roster_of(d, alice).entries.empty());
        CHECK(entry(roster_of(d, bob), alice) == nullptr);
        change(d, bob, adding(list::forward, alice));
        CHECK(lists_in(d, alice, bob) == (RL | PL));
        as<frame::ack>(check_password(d, alice, password));
    }

    SECTION("replies: requests with corr 0 get errors only") {
        // A change that succeeds says nothing; one that fails says why.
        d.tell(alice, user(alice), psm("quietly"));
        d.tell(alice, user(alice), presence(status::offline));
        CHECK(roster_of(d, alice).personal_message == std::vector<std::string>{"quietly"});
        const auto refusal = d.errors->next("the refusal of a corr 0 request");
        CHECK(refusal.f.corr == 0);
        CHECK(refusal.f.object == user(alice));
        CHECK(error_of(refusal.f) == error_code::malformed);
        CHECK(d.errors->size() == 0);
    }

    SECTION("rosters: the forward list, the derived reverse and pending lists, and their notices") {
        auto& bob_q = d.watch(user(bob));
        const std::uint64_t v0 = roster_of(d, alice).version;
        const auto added = change(d, alice, adding(list::forward, bob));
        CHECK(added.op == frame::change_op::add);
        CHECK(added.which == list::forward);
        CHECK(added.handle == bob);
        CHECK(added.display_name == "Bob");  // the contact's own name when none is given
        CHECK(added.version == v0 + 1);
        CHECK_FALSE(added.contact_id.empty());

        // Bob acts on his own object right after Alice's reply: the notice
        // was queued to it before that reply was released.
        const frame::roster bobs = roster_of(d, bob);
        const frame::roster_entry* a = entry(bobs, alice);
        REQUIRE(a);
        CHECK(a->lists == (RL | PL));
        CHECK(a->display_name == "Alice");
        CHECK(a->contact_id.empty());  // only on the reverse list
        const auto notice = next_notice(bob_q, alice);
        CHECK(notice.op == frame::change_op::add);
        CHECK(notice.display_name == "Alice");
        CHECK(notice.version == bobs.version);  // the notice took Bob's next version

        const frame::roster alices = roster_of(d, alice);
        CHECK(alices.version == added.version);
        const frame::roster_entry* b = entry(alices, bob);
        REQUIRE(b);
        CHECK(b->lists == FL);
        CHECK(b->contact_id == added.contact_id);
        CHECK(b->display_name == "Bob");

        // On the reverse list and the allow list: no longer pending.
        change(d, bob, adding(list::allow, alice));
        CHECK(lists_in(d, bob, alice) == (AL | RL));
        CHECK(refused(d, alice, user(alice), adding(list::forward, bob)) == error_code::already_on_list);

        // The name stored is the request's when it gives one.
        CHECK(change(d, alice, adding(list::forward, carol, {}, "Caz")).display_name == "Caz");
        CHECK(lists_in(d, carol, alice) == (RL | PL));

        // The owner's own name for a forward-list contact.
        frame::roster_change rename = frame::list_edit(frame::change_op::rename, list::forward, bob, "Bobby");
        const std::uint64_t before_rename = roster_of(d, alice).version;
        const auto renamed = change(d, alice, rename);
        CHECK(renamed.display_name == "Bobby");
        CHECK(renamed.version == before_rename + 1);
        CHECK(renamed.contact_id == added.contact_id);
        CHECK(entry(roster_of(d, alice), bob)->display_name == "Bobby");
        rename.handle = dave;
        CHECK(refused(d, alice, user(alice), rename) == error_code::not_on_list);

        // Removing tells the contact again; adding back keeps the contact id.
        const auto removed = change(d, alice, removing(list::forward, bob));
        CHECK(removed.version == renamed.version + 1);
        CHECK(lists_in(d, bob, alice) == AL);
        const auto gone = next_notice(bob_q, alice);
        CHECK(gone.op == frame::change_op::remove);
        CHECK(gone.version == roster_of(d, bob).version);
        CHECK(entry(roster_of(d, alice), bob) == nullptr);
        CHECK(refused(d, alice, user(alice), removing(list::forward, bob)) == error_code::not_on_list);
        CHECK(change(d, alice, adding(list::forward, bob)).contact_id == added.contact_id);
        CHECK(next_notice(bob_q, alice).op == frame::change_op::add);

        // Handles are normalised before any lookup.
        CHECK(change(d, alice, adding(list::forward, "Dave@Example.COM")).handle == dave);
        CHECK(lists_in(d, dave, alice) == (RL | PL));
    }

    SECTION("list edits are checked; restating a privacy list setting succeeds without a change") {
        CHECK(refused(d, alice, user(alice), adding(list::forward, alice)) == error_code::not_allowed);
        CHECK(refused(d, alice, user(alice), adding(list::reverse, bob)) == error_code::not_allowed);
        CHECK(refused(d, alice, user(alice), adding(list::pending, bob)) == error_code::not_allowed);
        CHECK(refused(d, alice, user(alice), adding(list::forward, "not a handle")) == error_code::invalid_text);
        CHECK(refused(d, alice, user(alice), adding(list::allow, bob, "some-group")) == error_code::malformed);
        CHECK(refused(d, alice, user(alice), adding(list::forward, bob, "no-such-group")) == error_code::not_on_list);

        const auto allowed = change(d, alice, adding(list::allow, bob));
        // Allow and block are exclusive (MSNP 219).
        CHECK(refused(d, alice, user(alice), adding(list::block, bob)) == error_code::not_allowed);
        // Restated: success, same version.
        const auto again = change(d, alice, adding(list::allow, bob));
        CHECK(again.version == allowed.version);
        CHECK(roster_of(d, alice).version == allowed.version);
        // Lifting a block that is not there: success, same version.
        CHECK(change(d, alice, removing(list::block, carol)).version == allowed.version);
        CHECK(change(d, alice, removing(list::allow, bob)).version == allowed.version + 1);
        CHECK(change(d, alice, adding(list::block, bob)).version == allowed.version + 2);
        CHECK(lists_in(d, alice, bob) == BL);
    }

    SECTION("groups hold forward-list contacts; removing a group keeps them") {
        const auto group = [&](frame::change_op op, const std::string& id, const std::string& name) {
            return d.ask(alice, user(alice), frame::group_change{op, {id, name}, 0});
        };
        const std::uint64_t v0 = roster_of(d, alice).version;
        const auto friends = as<frame::group_change>(group(frame::change_op::add, {}, "Friends"));
        CHECK_FALSE(friends.target.id.empty());
        CHECK(friends.target.name == "Friends");
        CHECK(friends.version == v0 + 1);
        CHECK(error_of(group(frame::change_op::add, {}, "Friends")) == error_code::already_on_list);
        CHECK(error_of(group(frame::change_op::add, {}, "")) == error_code::invalid_text);
        CHECK(error_of(group(frame::change_op::add, {}, std::string(frame::limits::group_name + 1, 'g'))) ==
              error_code::oversize);
        const auto work = as<frame::group_change>(group(frame::change_op::add, {}, "Work"));
        CHECK(work.target.id != friends.target.id);
        {
            const frame::roster r = roster_of(d, alice);
            REQUIRE(r.groups.size() == 2);  // in creation order
            CHECK(r.groups[0] == friends.target);
            CHECK(r.groups[1] == work.target);
        }

        const std::string& f = friends.target.id;
        const std::string& w = work.target.id;
        CHECK(change(d, alice, adding(list::forward, carol, f)).group_id == f);
        CHECK(entry(roster_of(d, alice), carol)->groups == std::vector<std::string>{f});
        // On the forward list already: the group is added, nothing else.
        change(d, alice, adding(list::forward, carol, w));
        {
            auto groups = entry(roster_of(d, alice), carol)->groups;
            std::sort(groups.begin(), groups.end());
            auto expected = std::vector<std::string>{f, w};
            std::sort(expected.begin(), expected.end());
            CHECK(groups == expected);
        }
        CHECK(refused(d, alice, user(alice), adding(list::forward, carol, w)) == error_code::already_on_list);
        change(d, alice, removing(list::forward, carol, f));
        {
            const frame::roster r = roster_of(d, alice);
            CHECK(entry(r, carol)->lists == FL);
            CHECK(entry(r, carol)->groups == std::vector<std::string>{w});
        }
        CHECK(refused(d, alice, user(alice), removing(list::forward, carol, f)) == error_code::not_on_list);

        const auto renamed = as<frame::group_change>(group(frame::change_op::rename, w, "Office"));
        CHECK(renamed.target.name == "Office");
        CHECK(roster_of(d, alice).groups[1].name == "Office");
        CHECK(error_of(group(frame::change_op::rename, w, "Friends")) == error_code::already_on_list);
        CHECK(error_of(group(frame::change_op::rename, "no-such-group", "X")) == error_code::not_on_list);

        const auto removed = as<frame::group_change>(group(frame::change_op::remove, w, {}));
        CHECK(removed.version == renamed.version + 1);
        {
            const frame::roster r = roster_of(d, alice);
            REQUIRE(r.groups.size() == 1);
            CHECK(r.groups[0].id == f);
            REQUIRE(entry(r, carol));
            CHECK(entry(r, carol)->lists == FL);
            CHECK(entry(r, carol)->groups.empty());
        }
        CHECK(error_of(group(frame::change_op::remove, w, {})) == error_code::not_on_list);
    }

    SECTION("presence: the initial burst, the most available endpoint, and fan-out to watchers") {
        auto& bob_q = d.watch(user(bob));
        change(d, bob, adding(list::forward, alice));
        CHECK(sign_in(d, alice).size() == 1);  // no contacts of hers online: the ack alone
        const auto online = next_presence(bob_q, alice);
        CHECK(online.presence.state == status::online);
        CHECK(online.presence.display_name == "Alice");
        CHECK((online.changed & frame::profile_bits::status) != 0);

        // Bob's first presence brings Alice's, before the ack.
        const auto burst = sign_in(d, bob);
        REQUIRE(burst.size() == 2);
        const auto& initial = as<frame::presence_update>(burst[0]);
        CHECK(initial.initial);
        CHECK(initial.user == alice);
        CHECK(initial.presence.state == status::online);
        // Not a first presence_set of that endpoint: no burst.
        CHECK(d.request(bob, user(bob), presence(status::away)).size() == 1);

        set_status(d, alice, status::busy);
        const auto busy = next_presence(bob_q, alice);
        CHECK(busy.presence.state == status::busy);
        CHECK(busy.changed == frame::profile_bits::status);

        // A less available second endpoint changes nothing watchers see; the
        // effective presence follows the most available endpoint left.
        as<frame::ack>(d.ask(alice, user(alice), hello_ws(alice, "ep-2")));
        set_status(d, alice, status::away, "ep-2");
        as<frame::ack>(d.ask(alice, user(alice), bye("ep-1")));
        CHECK(next_presence(bob_q, alice).presence.state == status::away);  // nothing came before it
        as<frame::ack>(d.ask(alice, user(alice), bye("ep-9")));  // unknown: acknowledged
        as<frame::ack>(d.ask(alice, user(alice), bye("ep-2")));
        const auto offline = next_presence(bob_q, alice);
        CHECK(offline.presence.state == status::offline);
        CHECK(offline.changed == frame::profile_bits::status);

        // Profile changes reach watchers who see the owner.
        sign_in(d, alice);
        next_presence(bob_q, alice);
        as<frame::ack>(d.ask(alice, user(alice), psm("out to lunch soon")));
        const auto message = next_presence(bob_q, alice);
        CHECK(message.changed == frame::profile_bits::personal_message);
        CHECK(message.presence.personal_message == "out to lunch soon");
        CHECK(roster_of(d, alice).personal_message == std::vector<std::string>{"out to lunch soon"});
        // Coming online again brings the personal message with the status.
        as<frame::ack>(d.ask(alice, user(alice), bye("ep-1")));
        CHECK(next_presence(bob_q, alice).changed == frame::profile_bits::status);
        sign_in(d, alice);
        CHECK(next_presence(bob_q, alice).changed ==
              (frame::profile_bits::status | frame::profile_bits::personal_message));

        // The name is the profile's, not the endpoint's; a new name reaches watchers.
        frame::presence_set named = presence(status::online);
        named.presence.display_name = "Not Alice";
        set_status(d, alice, status::online);  // unchanged: nothing published
        as<frame::ack>(d.ask(alice, user(alice), named));
        frame::profile_set rename;
        rename.fields = frame::profile_bits::display_name;
        rename.display_name = "Alice A.";
        as<frame::ack>(d.ask(alice, user(alice), rename));
        const auto renamed = next_presence(bob_q, alice);
        CHECK(renamed.changed == frame::profile_bits::display_name);
        CHECK(renamed.presence.display_name == "Alice A.");
        rename.display_name = "";  // stands for the handle
        as<frame::ack>(d.ask(alice, user(alice), rename));
        CHECK(next_presence(bob_q, alice).presence.display_name == alice);
        CHECK(roster_of(d, alice).display_name == alice);

        // A hello on a known endpoint starts it over: offline, then a fresh burst.
        as<frame::ack>(d.ask(bob, user(bob), hello_ws(bob)));
        CHECK(d.request(bob, user(bob), presence(status::online)).size() == 2);

        // Invisible is offline to watchers.
        set_status(d, alice, status::invisible);
        CHECK(next_presence(bob_q, alice).presence.state == status::offline);
        set_status(d, alice, status::online);
        CHECK(next_presence(bob_q, alice).presence.state == status::online);

        // Adding a contact seen online: its presence before the reply.
        sign_in(d, carol);
        const auto replies = d.request(alice, user(alice), adding(list::forward, carol));
        REQUIRE(replies.size() == 2);
        CHECK(as<frame::presence_update>(replies[0]).user == carol);
        CHECK(as<frame::presence_update>(replies[0]).presence.state == status::online);
        as<frame::roster_change>(replies[1]);
    }

    SECTION("presence and profile requests are checked") {
        as<frame::ack>(d.ask(alice, user(alice), hello_ws(alice)));
        CHECK(refused(d, alice, user(alice), presence(status::offline)) == error_code::malformed);
        CHECK(refused(d, alice, user(alice), presence(status::online, "")) == error_code::malformed);
        CHECK(refused(d, alice, user(alice), hello_ws(alice, "")) == error_code::malformed);
        CHECK(refused(d, alice, user(alice), hello_ws(bob)) == error_code::not_allowed);
        frame::profile_set none;
        CHECK(refused(d, alice, user(alice), none) == error_code::malformed);
        frame::profile_set status_bit = psm("x");
        status_bit.fields |= frame::profile_bits::status;
        CHECK(refused(d, alice, user(alice), status_bit) == error_code::malformed);
        // An endpoint that skipped hello is registered by its presence.
        CHECK(d.request(alice, user(alice), presence(status::online, "ep-new")).size() == 1);
    }

    SECTION("privacy and visibility: blocks, the allow list and the default") {
        auto& bob_q = d.watch(user(bob));
        auto& carol_q = d.watch(user(carol));
        change(d, bob, adding(list::forward, alice));
        change(d, carol, adding(list::forward, alice));
        sign_in(d, alice);
        CHECK(next_presence(bob_q, alice).presence.state == status::online);
        CHECK(next_presence(carol_q, alice).presence.state == status::online);

        // A block hides the owner at once; lifting it shows the owner again.
        change(d, alice, adding(list::block, bob));
        CHECK(next_presence(bob_q, alice).presence.state == status::offline);
        change(d, alice, removing(list::block, bob));
        CHECK(next_presence(bob_q, alice).presence.state == status::online);

        // The default, never stored, is stored when stated; restated, nothing changes.
        const std::uint64_t v_default = roster_of(d, alice).version;
        const auto stated = as<frame::privacy_set>(
            d.ask(alice, user(alice), frame::privacy_set{frame::privacy_default::allow, frame::add_prompt::prompt, 0}));
        CHECK(stated.version == v_default + 1);
        CHECK(as<frame::privacy_set>(d.ask(alice, user(alice),
                                           frame::privacy_set{frame::privacy_default::allow,
                                                              frame::add_prompt::prompt, 0}))
                  .version == stated.version);

        // privacy block: only the allow list sees the owner.
        const std::uint64_t v = roster_of(d, alice).version;
        const auto set = as<frame::privacy_set>(
            d.ask(alice, user(alice), frame::privacy_set{frame::privacy_default::block, frame::add_prompt::none, 0}));
        CHECK(set.version == v + 1);
        {
            const frame::roster r = roster_of(d, alice);
            CHECK(r.privacy == frame::privacy_default::block);
            CHECK(r.prompt == frame::add_prompt::none);
        }
        CHECK(next_presence(bob_q, alice).presence.state == status::offline);
        CHECK(next_presence(carol_q, alice).presence.state == status::offline);
        // Restating both stored values changes nothing, not even the version.
        const auto restated = as<frame::privacy_set>(
            d.ask(alice, user(alice), frame::privacy_set{frame::privacy_default::block, frame::add_prompt::none, 0}));
        CHECK(restated.version == set.version);
        change(d, alice, adding(list::allow, bob));
        CHECK(next_presence(bob_q, alice).presence.state == status::online);

        // Carol, not allowed, is told nothing of a profile change: her next
        // frame is the one that shows Alice once she is allowed.
        as<frame::ack>(d.ask(alice, user(alice), psm("hello")));
        CHECK(next_presence(bob_q, alice).presence.personal_message == "hello");
        change(d, alice, adding(list::allow, carol));
        const auto shown = next_presence(carol_q, alice);
        CHECK(shown.presence.state == status::online);
        CHECK(shown.presence.personal_message == "hello");
        CHECK((shown.changed & frame::profile_bits::status) != 0);

        // A watcher whose forward list lacks the owner is told nothing;
        // the marker is its next notice from the same object.
        auto& dave_q = d.watch(user(dave));
        set_status(d, alice, status::busy);
        CHECK(next_presence(bob_q, alice).presence.state == status::busy);
        change(d, alice, adding(list::forward, dave));
        CHECK(next_notice(dave_q, alice).op == frame::change_op::add);
    }

    SECTION("phones are shown to forward-list contacts the owner lets see it") {
        frame::profile_set phones;
        phones.fields = frame::profile_bits::phone_home | frame::profile_bits::mobile_device;
        phones.phones.home = "+1 555 0100";
        phones.mobile_device = true;
        as<frame::ack>(d.ask(bob, user(bob), phones));
        {
            const frame::roster own = roster_of(d, bob);
            CHECK(own.phones.home == "+1 555 0100");
            CHECK(own.mobile_device);
        }
        const auto added = change(d, alice, adding(list::forward, bob));
        CHECK(added.phones.home == "+1 555 0100");
        CHECK(entry(roster_of(d, alice), bob)->phones.home == "+1 555 0100");
        change(d, bob, adding(list::block, alice));
        CHECK(entry(roster_of(d, alice), bob)->phones == frame::phones{});
        // An empty number clears it; the fields not named stay.
        phones.fields = frame::profile_bits::phone_home;
        phones.phones.home.clear();
        as<frame::ack>(d.ask(bob, user(bob), phones));
        const frame::roster own = roster_of(d, bob);
        CHECK(own.phones.home.empty());
        CHECK(own.mobile_device);
    }

    SECTION("a single-session login signs out the others; its notice arrives before its reply") {
        auto& alice_q = d.watch(user(alice));
        const std::vector<std::string> single{std::string(frame::capability::single_session)};
        as<frame::ack>(d.ask(alice, user(alice), hello_ws(alice, "web-1")));
        as<frame::ack>(d.ask(alice, user(alice), frame::hello{frame::client_protocol::msnp, 12, alice, "ep-1", "MSNMSGR", single}));
        const auto replies = d.request_timed(
            alice, user(alice), frame::hello{frame::client_protocol::msnp, 12, alice, "ep-2", "MSNMSGR", single});
        as<frame::ack>(replies.back().f);
        const auto booted = alice_q.next("the first endpoint signed out");
        const auto& b = as<frame::bye>(booted.f);
        CHECK(b.endpoint == "ep-1");
        CHECK_FALSE(b.normal);
        CHECK(booted.order < replies.back().order);
        // Several points of presence sign out nobody; the next single-session
        // login signs out ep-2 only.
        as<frame::ack>(d.ask(alice, user(alice), frame::hello{frame::client_protocol::msnp, 18, alice, "ep-3", "WLM", {}}));
        as<frame::ack>(d.ask(alice, user(alice), frame::hello{frame::client_protocol::msnp, 7, alice, "ep-4", "MSMSGS", single}));
        CHECK(as<frame::bye>(alice_q.next("ep-2 signed out").f).endpoint == "ep-2");
        as<frame::roster>(d.ask(alice, user(alice), frame::roster_get{}));
        CHECK(alice_q.size() == 0);
    }

    SECTION("frames from other objects are passed on only when they are the sender's own, newer statements") {
        auto& alice_q = d.watch(user(alice));
        // Bob has not added Alice: an "added you" from him is untrue.
        d.tell(bob, user(alice), frame::roster_change{frame::change_op::add, list::reverse, bob, "Bob", {}, 0, {}, {}});
        // Carol is not on Alice's forward list: her presence is not watched.
        frame::presence_update forged{carol, false, {}, frame::profile_bits::status};
        forged.presence.state = status::online;
        d.tell(carol, user(alice), forged);
        // An invitation must name a room.
        d.tell(bob, user(alice), frame::room_invite{alice, "Bob", "user:bob@example.com"});
        // With a corr, it is a request, and only the owner makes those.
        CHECK(refused(d, bob, user(alice),
                      frame::roster_change{frame::change_op::add, list::reverse, bob, "Bob", {}, 0, {}, {}}) ==
              error_code::not_allowed);
        // Bob's real add: its notice is the first thing Alice's watchers get.
        change(d, bob, adding(list::forward, alice));
        CHECK(next_notice(alice_q, bob).op == frame::change_op::add);
        CHECK(alice_q.size() == 0);
        // A notice restated by a client with a version already applied is a
        // repeat: nothing is published, and the next real change is.
        d.tell(bob, user(alice), frame::roster_change{frame::change_op::add, list::reverse, bob, "Bob", {}, 0, {}, {}});
        change(d, bob, removing(list::forward, alice));
        CHECK(next_notice(alice_q, bob).op == frame::change_op::remove);
    }

    SECTION("rooms: creation, invitations, joins and leaves") {
        const std::string sb = "room:sb";
        sign_in(d, alice);
        sign_in(d, bob);
        auto& bob_q = d.watch(user(bob));
        CHECK(refused(d, alice, "room:none", frame::room_join{member_of(alice)}) == error_code::unknown_object);
        CHECK(refused(d, alice, "room:none", text("hi")) == error_code::unknown_object);
        create_room(d, alice, sb, frame::room_policy::invite_only);
        CHECK(refused(d, alice, sb, frame::room_create{frame::room_policy::invite_only, "again"}) ==
              error_code::already_on_list);
        auto& room_q = d.watch(sb);
        const frame::room_members first = join(d, alice, sb);
        CHECK(first.members.empty());
        REQUIRE(first.epoch.size() == 1);
        CHECK_FALSE(first.epoch[0].empty());
        CHECK(as<frame::room_join>(room_q.next("Alice's join").f).who == member_of(alice));
        CHECK(refused(d, alice, sb, frame::room_join{member_of(alice)}) == error_code::already_on_list);
        CHECK(refused(d, alice, sb, frame::room_join{member_of(bob)}) == error_code::not_allowed);
        CHECK(refused(d, bob, sb, frame::room_join{member_of(bob)}) == error_code::not_allowed);  // not invited

        CHECK(refused(d, bob, sb, frame::room_invite{carol, {}, {}}) == error_code::not_member);
        CHECK(refused(d, alice, sb, frame::room_invite{"nobody@example.com", {}, {}}) == error_code::unknown_object);
        CHECK(refused(d, alice, sb, frame::room_invite{carol, {}, {}}) == error_code::offline);
        change(d, dave, adding(list::block, alice));
        sign_in(d, dave);
        // Dave blocks Alice: refused as if he were offline, so she cannot tell.
        CHECK(refused(d, alice, sb, frame::room_invite{dave, {}, {}}) == error_code::offline);

        as<frame::ack>(d.ask(alice, sb, frame::room_invite{bob, {}, {}}));
        const auto invited = bob_q.take(is<frame::room_invite>(), "Bob's invitation");
        CHECK(invited.f.sender == alice);
        CHECK(as<frame::room_invite>(invited.f).user == bob);
        CHECK(as<frame::room_invite>(invited.f).room == sb);
        CHECK(as<frame::room_invite>(invited.f).inviter_name == member_of(alice).display_name);
        CHECK(refused(d, alice, sb, frame::room_invite{bob, {}, {}}) == error_code::already_on_list);

        const frame::room_members seen = join(d, bob, sb);
        CHECK(seen.members == std::vector<frame::member>{member_of(alice)});
        CHECK(seen.epoch == first.epoch);
        CHECK(as<frame::room_join>(room_q.next("Bob's join").f).who == member_of(bob));
        CHECK(refused(d, alice, sb, frame::room_invite{bob, {}, {}}) == error_code::already_on_list);

        // A switchboard forgets whoever leaves, and ends with its last participant.
        as<frame::ack>(d.ask(bob, sb, frame::room_leave{bob, "ep-1", frame::leave_reason::left}));
        const auto left = as<frame::room_leave>(room_q.next("Bob's leave").f);
        CHECK(left.user == bob);
        CHECK(left.endpoint == "ep-1");
        CHECK(left.reason == frame::leave_reason::left);
        CHECK(refused(d, bob, sb, frame::room_join{member_of(bob)}) == error_code::not_allowed);
        CHECK(refused(d, bob, sb, frame::room_leave{bob, "ep-1", frame::leave_reason::left}) == error_code::not_member);
        as<frame::ack>(d.ask(alice, sb, frame::room_leave{alice, "ep-1", frame::leave_reason::left}));
        CHECK(as<frame::room_leave>(room_q.next("Alice's leave").f).user == alice);
        CHECK(refused(d, alice, sb, frame::room_join{member_of(alice)}) == error_code::unknown_object);
        // Created again: a new history with an epoch of its own.
        create_room(d, alice, sb, frame::room_policy::invite_only);
        const frame::room_members anew = join(d, alice, sb);
        REQUIRE(anew.epoch.size() == 1);
        CHECK(anew.epoch != first.epoch);
        CHECK(history(d, alice, sb).last_seq == 0);
    }

    SECTION("rooms: direct rooms hold two members, named rooms are open to anyone") {
        sign_in(d, bob);
        sign_in(d, carol);
        create_room(d, alice, "room:dm", frame::room_policy::direct);
        join(d, alice, "room:dm");
        as<frame::ack>(d.ask(alice, "room:dm", frame::room_invite{bob, {}, {}}));
        join(d, bob, "room:dm");
        CHECK(refused(d, alice, "room:dm", frame::room_invite{carol, {}, {}}) == error_code::room_full);

        create_room(d, alice, "room:lobby", frame::room_policy::named, "Lobby");
        join(d, alice, "room:lobby");
        say(d, alice, "room:lobby", "welcome");
        // Carol was never invited; a named room lets her in and read.
        CHECK(history(d, carol, "room:lobby").messages.size() == 1);
        CHECK(join(d, carol, "room:lobby").members == std::vector<frame::member>{member_of(alice)});
        // An invite-only room's history is for its members.
        CHECK(refused(d, carol, "room:dm", history_after()) == error_code::not_member);
        CHECK(history(d, bob, "room:dm").last_seq == 0);
    }

    SECTION("room messages: seq, publication, retries, relayed frames and history") {
        const std::string lobby = "room:lobby";
        create_room(d, alice, lobby, frame::room_policy::named);
        // A join's reply comes before its publication: watch first.
        auto& room_q = d.watch(lobby);
        join(d, alice, lobby);
        join(d, bob, lobby);
        CHECK(as<frame::room_join>(room_q.next("Alice's join").f).who.user == alice);
        CHECK(as<frame::room_join>(room_q.next("Bob's join").f).who.user == bob);
        CHECK(refused(d, carol, lobby, text("not joined")) == error_code::not_member);
        CHECK(refused(d, carol, lobby, frame::room_typing{}) == error_code::not_member);
        CHECK(refused(d, alice, lobby, text("\xff\xfe")) == error_code::invalid_text);

        const std::uint64_t s1 = say(d, alice, lobby, "one", "m1");
        CHECK(s1 >= 1);
        const auto published = room_q.next("the first message");
        CHECK(published.f.sender == alice);
        const auto& m1 = as<frame::room_message>(published.f);
        CHECK(m1.seq == s1);
        CHECK(m1.text == "one");
        CHECK(m1.message_id == "m1");
        CHECK(m1.format == text("one").format);
        CHECK(m1.timestamp_ms > 0);
        CHECK(m1.withheld_from.empty());
        CHECK(m1.sender_name == std::vector<std::string>{member_of(alice).display_name});

        // A retry gets the original seq and is neither stored nor published again.
        CHECK(say(d, alice, lobby, "one, again", "m1") == s1);
        const std::uint64_t s2 = say(d, alice, lobby, "two", "m2");
        CHECK(s2 == s1 + 1);
        CHECK(as<frame::room_message>(room_q.next("the second message").f).seq == s2);
        // Message ids are per sender.
        const std::uint64_t s3 = say(d, bob, lobby, "bob's one", "m1");
        CHECK(s3 == s2 + 1);
        CHECK(as<frame::room_message>(room_q.next("Bob's message").f).seq == s3);

        // Typing, nudges and opaque content are relayed, not stored.
        as<frame::ack>(d.ask(alice, lobby, frame::room_typing{true, {}}));
        const auto typing = room_q.next("typing");
        CHECK(typing.f.sender == alice);
        CHECK(as<frame::room_typing>(typing.f).active);
        as<frame::ack>(d.ask(bob, lobby, frame::room_nudge{}));
        CHECK(room_q.next("a nudge").f.sender == bob);
        frame::room_opaque opaque{frame::client_protocol::msnp, "application/x-msnmsgrp2p", {std::string("\0\1p2p", 5)}, {}};
        as<frame::ack>(d.ask(alice, lobby, opaque));
        CHECK(as<frame::room_opaque>(room_q.next("opaque content").f) == opaque);

        // History: ascending seq, bounded by after, before and count.
        const frame::room_history all = history(d, bob, lobby);
        CHECK(all.last_seq == s3);
        REQUIRE(all.messages.size() == 3);
        CHECK(all.messages[0].seq == s1);
        CHECK(all.messages[0].sender == alice);
        CHECK(all.messages[0].text == "one");
        CHECK(all.messages[0].message_id == "m1");
        CHECK(all.messages[0].timestamp_ms == m1.timestamp_ms);
        CHECK(all.messages[0].format == m1.format);
        CHECK(all.messages[2].sender == bob);
        REQUIRE(all.epoch.size() == 1);
        const auto seqs = [](const frame::room_history& h) {
            std::vector<std::uint64_t> out;
            for (const auto& m : h.messages) out.push_back(m.seq);
            return out;
        };
        CHECK(seqs(history(d, bob, lobby, history_after(s1))) == std::vector<std::uint64_t>{s2, s3});
        CHECK(seqs(history(d, bob, lobby, history_after(0, s3))) == std::vector<std::uint64_t>{s1, s2});
        CHECK(seqs(history(d, bob, lobby, history_after(0, 0, 1))) == std::vector<std::uint64_t>{s1});
        CHECK(join(d, carol, lobby).epoch == all.epoch);

        // The room stamps messages with its clock.
        target.advance_clock(std::chrono::seconds(5));
        const std::uint64_t s4 = say(d, alice, lobby, "later");
        CHECK(history(d, alice, lobby, history_after(s3)).messages.at(0).timestamp_ms >= m1.timestamp_ms + 5000);
        CHECK(s4 == s3 + 1);
    }

    SECTION("rooms: a block withholds the blocked user's frames from the blocker") {
        const std::string lobby = "room:lobby";
        create_room(d, alice, lobby, frame::room_policy::named);
        auto& room_q = d.watch(lobby);
        join(d, alice, lobby);
        join(d, bob, lobby);
        join(d, carol, lobby);
        for (const std::string& who : {alice, bob, carol}) {
            CHECK(as<frame::room_join>(room_q.next("a join").f).who.user == who);
        }
        change(d, carol, adding(list::block, bob));
        const std::uint64_t seq = say(d, bob, lobby, "can you hear me");
        CHECK(as<frame::room_message>(room_q.next("Bob's message").f).withheld_from == std::vector<std::string>{carol});
        as<frame::ack>(d.ask(bob, lobby, frame::room_typing{true, {}}));
        CHECK(as<frame::room_typing>(room_q.next("Bob typing").f).withheld_from == std::vector<std::string>{carol});
        // History marks it for the reader it is withheld from only.
        CHECK(history(d, carol, lobby, history_after(seq - 1)).messages.at(0).withheld_from ==
              std::vector<std::string>{carol});
        CHECK(history(d, alice, lobby, history_after(seq - 1)).messages.at(0).withheld_from.empty());
        // Blocked by everyone else: refused, and not stored.
        change(d, alice, adding(list::block, bob));
        CHECK(refused(d, bob, lobby, text("anyone?")) == error_code::not_allowed);
        CHECK(history(d, alice, lobby).last_seq == seq);
        // A sender the reader blocks now is marked in history too.
        const std::uint64_t from_alice = say(d, alice, lobby, "hi all");
        CHECK(history(d, bob, lobby, history_after(seq - 1)).messages.size() == 2);
        change(d, bob, adding(list::block, alice));
        CHECK(history(d, bob, lobby, history_after(from_alice - 1)).messages.at(0).withheld_from ==
              std::vector<std::string>{bob});
    }

    SECTION("rooms: a dropped WebSocket endpoint keeps its place for the grace period") {
        const std::string lobby = "room:lobby";
        const auto ws = frame::client_protocol::wsjson;
        create_room(d, alice, lobby, frame::room_policy::named);
        auto& room_q = d.watch(lobby);
        join(d, alice, lobby);
        join(d, bob, lobby, "ws-1", ws);
        room_q.next("Alice's join");
        CHECK(as<frame::room_join>(room_q.next("Bob's join").f).who == member_of(bob, "ws-1", ws));
        as<frame::ack>(d.ask(bob, lobby, frame::room_leave{bob, "ws-1", frame::leave_reason::dropped}));
        // Nothing published: the others still see Bob, and newcomers too.
        const frame::room_members seen = join(d, carol, lobby);
        CHECK(seen.members.size() == 2);
        CHECK(as<frame::room_join>(room_q.next("Carol's join, nothing before it").f).who.user == carol);
        // What is sent meanwhile is stored for Bob.
        const std::uint64_t missed = say(d, alice, lobby, "while you were out");
        room_q.next("Alice's message");

        // Back within the grace period: joins, then the old endpoint leaves.
        target.advance_clock(rejoin_grace / 2);
        const frame::room_members back = join(d, bob, lobby, "ws-2", ws);
        CHECK(std::none_of(back.members.begin(), back.members.end(),
                           [&](const frame::member& m) { return m.user == bob; }));
        CHECK(as<frame::room_join>(room_q.next("Bob back").f).who == member_of(bob, "ws-2", ws));
        const auto replaced = as<frame::room_leave>(room_q.next("Bob's old endpoint out").f);
        CHECK(replaced.endpoint == "ws-1");
        CHECK(replaced.reason == frame::leave_reason::dropped);
        CHECK(history(d, bob, lobby, history_after(missed - 1)).messages.size() == 1);

        // Not back in time: the room publishes the leave when it runs out.
        as<frame::ack>(d.ask(bob, lobby, frame::room_leave{bob, "ws-2", frame::leave_reason::dropped}));
        target.advance_clock(rejoin_grace + std::chrono::milliseconds(1));
        history(d, alice, lobby);  // a frame after the deadline finds it applied
        const auto expired = as<frame::room_leave>(room_q.next("Bob's place ran out").f);
        CHECK(expired.user == bob);
        CHECK(expired.endpoint == "ws-2");
        CHECK(expired.reason == frame::leave_reason::dropped);

        // An MSNP switchboard connection cannot come back: it leaves at once.
        as<frame::ack>(d.ask(alice, lobby, frame::room_leave{alice, "ep-1", frame::leave_reason::dropped}));
        const auto gone = as<frame::room_leave>(room_q.next("Alice's dropped endpoint").f);
        CHECK(gone.user == alice);
        CHECK(gone.reason == frame::leave_reason::dropped);
    }

    SECTION("hibernation: idle objects leave memory and wake with their state") {
        auto& bob_q = d.watch(user(bob));
        change(d, bob, adding(list::forward, alice));
        change(d, alice, adding(list::forward, bob));
        next_notice(bob_q, alice);
        as<frame::group_change>(d.ask(alice, user(alice), frame::group_change{frame::change_op::add, {"", "Friends"}, 0}));
        as<frame::ack>(d.ask(alice, user(alice), psm("asleep")));
        sign_in(d, alice, status::busy);
        CHECK(next_presence(bob_q, alice).presence.state == status::busy);
        create_room(d, alice, "room:lobby", frame::room_policy::named);
        join(d, alice, "room:lobby");
        const std::uint64_t seq = say(d, alice, "room:lobby", "before the nap", "nap-1");
        const frame::roster alices = roster_of(d, alice);
        const frame::roster bobs = roster_of(d, bob);
        const frame::room_history before = history(d, alice, "room:lobby");

        target.advance_clock(idle_enough_to_hibernate);
        REQUIRE(resident_after_waiting(target) == 0);

        CHECK(roster_of(d, alice) == alices);
        CHECK(roster_of(d, bob) == bobs);
        CHECK(history(d, alice, "room:lobby") == before);
        // Endpoints are remembered: Alice's is not new, and Bob, signing
        // in, sees her as she was.
        CHECK(d.request(alice, user(alice), presence(status::busy)).size() == 1);
        const auto burst = sign_in(d, bob);
        REQUIRE(burst.size() == 2);
        CHECK(as<frame::presence_update>(burst[0]).presence.state == status::busy);
        // The room still knows who joined, the next seq and the retry ids.
        CHECK(say(d, alice, "room:lobby", "before the nap", "nap-1") == seq);
        CHECK(say(d, alice, "room:lobby", "after the nap") == seq + 1);
        // Subscriptions outlast hibernation.
        target.advance_clock(idle_enough_to_hibernate);
        REQUIRE(resident_after_waiting(target) == 0);
        set_status(d, alice, status::online);
        CHECK(next_presence(bob_q, alice).presence.state == status::online);
    }

    SECTION("durability: lists, privacy, profiles, rooms and history survive a restart; endpoints do not") {
        change(d, alice, adding(list::forward, bob, {}, "Bobby"));
        const std::string friends =
            as<frame::group_change>(d.ask(alice, user(alice), frame::group_change{frame::change_op::add, {"", "Friends"}, 0}))
                .target.id;
        change(d, alice, adding(list::forward, bob, friends));
        change(d, alice, adding(list::allow, bob));
        change(d, alice, adding(list::block, dave));
        change(d, bob, adding(list::forward, alice));
        as<frame::privacy_set>(
            d.ask(alice, user(alice), frame::privacy_set{frame::privacy_default::block, frame::add_prompt::none, 0}));
        as<frame::ack>(d.ask(alice, user(alice), psm("still here")));
        sign_in(d, alice);
        sign_in(d, bob);

        const std::string sb = "room:sb";
        create_room(d, alice, sb, frame::room_policy::invite_only);
        join(d, alice, sb);
        as<frame::ack>(d.ask(alice, sb, frame::room_invite{bob, {}, {}}));
        const std::string epoch = join(d, bob, sb).epoch.at(0);
        say(d, alice, sb, "first", "r1");
        const std::uint64_t second = say(d, bob, sb, "second", "r2");

        const frame::roster alices = roster_of(d, alice);
        const frame::roster bobs = roster_of(d, bob);
        const frame::room_history messages = history(d, alice, sb);

        d.restart();

        CHECK(roster_of(d, alice) == alices);
        CHECK(roster_of(d, bob) == bobs);
        CHECK(history(d, alice, sb) == messages);
        // Endpoints went with the process: in the room, and presence.
        CHECK(refused(d, bob, sb, text("still there?")) == error_code::not_member);
        const frame::room_members rejoined = join(d, bob, sb);  // still a member
        CHECK(rejoined.members.empty());
        CHECK(rejoined.epoch == std::vector<std::string>{epoch});
        CHECK(say(d, bob, sb, "second", "r2") == second);  // a retry still
        CHECK(say(d, bob, sb, "third") == second + 1);
        CHECK(sign_in(d, bob).size() == 1);  // Alice is not online any more
    }
}

}  // namespace switchyard::test
