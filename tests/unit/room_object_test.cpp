// Room objects of the embedded backend: creation, invitations and policy,
// membership, messages with seq and idempotent retries, history, and
// durability across restarts and hibernation.
#include "embedded_fixture.hpp"

#include <atomic>
#include <memory>
#include <thread>

using namespace switchyard;
using namespace switchyard::test;
using frame::error_code;

namespace {

const std::string alice = "alice@example.com";
const std::string bob = "bob@example.com";
const std::string carol = "carol@example.com";

frame::member endpoint_of(const std::string& user, const std::string& endpoint = "ep1") {
    return frame::member{user, endpoint, user + " name", 0x40000000, frame::client_protocol::msnp};
}

frame::room_message text(std::string t, std::string id = {}) {
    frame::room_message m;
    m.text = std::move(t);
    m.message_id = std::move(id);
    m.format.font = "Segoe UI";
    m.format.effects = "B";
    m.format.color = 0x00ff00;
    return m;
}

struct room_fixture : embedded_fixture {
    explicit room_fixture(embedded::options o = {}) : embedded_fixture(std::move(o)) {
        add_user(alice);
        add_user(bob);
        add_user(carol);
    }

    // Marks a user online the way its user object records it.
    void set_online(const std::string& user, frame::status s = frame::status::online) {
        embedded::database db(opt.file, embedded::durability::normal);
        db.prepare("INSERT OR REPLACE INTO presence (handle, endpoint, state, capabilities, capabilities_ex, "
                   "msn_object) VALUES (?1, 'ep1', ?2, 0, 0, '')")
            .bind(user, static_cast<int>(s))
            .run();
        REQUIRE_FALSE(db.failed());
    }

    // Alice creates and joins an invite-only room (an MSNP switchboard).
    void open_switchboard(const std::string& room) {
        as<frame::ack>(ask(alice, room, frame::room_create{frame::room_policy::invite_only, "sb"}));
        as<frame::room_members>(ask(alice, room, frame::room_join{endpoint_of(alice)}));
    }

    void invite_and_join(const std::string& room, const std::string& who) {
        set_online(who);
        as<frame::ack>(ask(alice, room, frame::room_invite{who, {}, {}}));
        as<frame::room_members>(ask(who, room, frame::room_join{endpoint_of(who)}));
    }
};

}  // namespace

TEST_CASE("a room exists only once created", "[room]") {
    room_fixture f;
    CHECK(error_of(f.ask(alice, "room:r1", frame::room_join{endpoint_of(alice)})) == error_code::unknown_object);
    CHECK(error_of(f.ask(alice, "room:r1", text("hi"))) == error_code::unknown_object);
    as<frame::ack>(f.ask(alice, "room:r1", frame::room_create{frame::room_policy::invite_only, "sb"}));
    CHECK(error_of(f.ask(bob, "room:r1", frame::room_create{})) == error_code::already_on_list);
    CHECK(error_of(f.ask(alice, "chat:r1", frame::room_create{})) == error_code::unknown_object);
}

TEST_CASE("invitations follow membership, privacy and presence", "[room]") {
    room_fixture f;
    f.open_switchboard("room:sb");
    auto& bob_inbox = f.subscribe("user:" + bob);

    SECTION("only participants invite") {
        f.set_online(bob);
        CHECK(error_of(f.ask(carol, "room:sb", frame::room_invite{bob, {}, {}})) == error_code::not_member);
    }
    SECTION("unknown, offline and invisible invitees") {
        CHECK(error_of(f.ask(alice, "room:sb", frame::room_invite{"nobody@example.com", {}, {}})) ==
              error_code::unknown_object);
        CHECK(error_of(f.ask(alice, "room:sb", frame::room_invite{bob, {}, {}})) == error_code::offline);
        f.set_online(bob, frame::status::invisible);
        CHECK(error_of(f.ask(alice, "room:sb", frame::room_invite{bob, {}, {}})) == error_code::offline);
        CHECK(error_of(f.ask(alice, "room:sb", frame::room_invite{"not a handle", {}, {}})) ==
              error_code::invalid_text);
    }
    SECTION("an invitee who blocks the inviter refuses as if offline, so the inviter cannot tell") {
        f.set_online(bob);
        {
            embedded::database db(f.opt.file, embedded::durability::normal);
            db.prepare("INSERT INTO contacts (owner, contact, lists, display_name, contact_id) "
                       "VALUES (?1, ?2, 4, ?2, 'c1')")
                .bind(bob, alice)
                .run();
        }
        CHECK(error_of(f.ask(alice, "room:sb", frame::room_invite{bob, {}, {}})) == error_code::offline);
    }
    SECTION("the invitee's user object is told, then the invitee may join") {
        f.set_online(bob);
        as<frame::ack>(f.ask(alice, "room:sb", frame::room_invite{"Bob@Example.com", {}, {}}));
        CHECK(error_of(f.ask(alice, "room:sb", frame::room_invite{bob, {}, {}})) == error_code::already_on_list);
        CHECK(error_of(f.ask(carol, "room:sb", frame::room_join{endpoint_of(carol)})) == error_code::not_allowed);
        auto members = as<frame::room_members>(f.ask(bob, "room:sb", frame::room_join{endpoint_of(bob)}));
        REQUIRE(members.members.size() == 1);
        CHECK(members.members[0] == endpoint_of(alice));
        CHECK(error_of(f.ask(alice, "room:sb", frame::room_invite{bob, {}, {}})) == error_code::already_on_list);
        // The user object forwards the invitation to bob's gateway when it
        // implements invitations; the room has done its part once acked.
        (void)bob_inbox;
    }
}

TEST_CASE("joins and leaves are published; a switchboard ends with its last participant", "[room]") {
    room_fixture f;
    auto& events = f.subscribe("room:sb");
    f.open_switchboard("room:sb");
    CHECK(as<frame::room_join>(*events.pop()).who == endpoint_of(alice));
    f.invite_and_join("room:sb", bob);

    auto joined = events.pop();
    REQUIRE(joined);
    CHECK(joined->sender == bob);
    CHECK(as<frame::room_join>(*joined).who == endpoint_of(bob));

    CHECK(error_of(f.ask(bob, "room:sb", frame::room_join{endpoint_of(bob)})) == error_code::already_on_list);
    CHECK(error_of(f.ask(bob, "room:sb", frame::room_join{endpoint_of(alice)})) == error_code::not_allowed);

    as<frame::ack>(f.ask(bob, "room:sb", frame::room_leave{bob, "ep1", frame::leave_reason::left}));
    auto left = events.pop();
    REQUIRE(left);
    CHECK(as<frame::room_leave>(*left).user == bob);
    CHECK(error_of(f.ask(bob, "room:sb", frame::room_leave{})) == error_code::not_member);
    // Having left a switchboard, bob needs a new invitation.
    CHECK(error_of(f.ask(bob, "room:sb", frame::room_join{endpoint_of(bob)})) == error_code::not_allowed);
    f.invite_and_join("room:sb", bob);
    as<frame::room_join>(*events.pop());

    as<frame::ack>(f.ask(bob, "room:sb", frame::room_leave{}));
    as<frame::ack>(f.ask(alice, "room:sb", frame::room_leave{}));
    CHECK(error_of(f.ask(alice, "room:sb", text("anyone?"))) == error_code::unknown_object);
}

TEST_CASE("direct rooms hold two members; named rooms are open", "[room]") {
    room_fixture f;
    as<frame::ack>(f.ask(alice, "room:dm", frame::room_create{frame::room_policy::direct, ""}));
    as<frame::room_members>(f.ask(alice, "room:dm", frame::room_join{endpoint_of(alice)}));
    f.invite_and_join("room:dm", bob);
    f.set_online(carol);
    CHECK(error_of(f.ask(alice, "room:dm", frame::room_invite{carol, {}, {}})) == error_code::room_full);
    // A second endpoint of a member is fine.
    as<frame::room_members>(f.ask(bob, "room:dm", frame::room_join{endpoint_of(bob, "ep2")}));

    as<frame::ack>(f.ask(alice, "room:lobby", frame::room_create{frame::room_policy::named, "Lobby"}));
    as<frame::room_members>(f.ask(carol, "room:lobby", frame::room_join{endpoint_of(carol)}));
    as<frame::room_history>(f.ask(bob, "room:lobby", frame::room_history_get{}));
}

TEST_CASE("rooms refuse endpoints past their limit", "[room]") {
    embedded::options o;
    o.max_room_members = 2;
    room_fixture f(o);
    as<frame::ack>(f.ask(alice, "room:lobby", frame::room_create{frame::room_policy::named, "Lobby"}));
    as<frame::room_members>(f.ask(alice, "room:lobby", frame::room_join{endpoint_of(alice)}));
    as<frame::room_members>(f.ask(bob, "room:lobby", frame::room_join{endpoint_of(bob)}));
    CHECK(error_of(f.ask(carol, "room:lobby", frame::room_join{endpoint_of(carol)})) == error_code::room_full);
}

TEST_CASE("messages get increasing seq, are published after commit and retries are idempotent", "[room]") {
    room_fixture f;
    auto& events = f.subscribe("room:sb");
    f.open_switchboard("room:sb");
    as<frame::room_join>(*events.pop());
    f.invite_and_join("room:sb", bob);
    as<frame::room_join>(*events.pop());

    CHECK(error_of(f.ask(carol, "room:sb", text("hi"))) == error_code::not_member);
    CHECK(as<frame::ack>(f.ask(alice, "room:sb", text("one", "m1"))).seq == 1);
    CHECK(as<frame::ack>(f.ask(bob, "room:sb", text("two", "m2"))).seq == 2);
    CHECK(as<frame::ack>(f.ask(alice, "room:sb", text("one again", "m1"))).seq == 1);
    CHECK(as<frame::ack>(f.ask(alice, "room:sb", text("no id"))).seq == 3);

    auto first = events.pop();
    REQUIRE(first);
    CHECK(first->sender == alice);
    const auto& m1 = as<frame::room_message>(*first);
    CHECK(m1.seq == 1);
    CHECK(m1.text == "one");
    CHECK(m1.format.effects == "B");
    CHECK(m1.timestamp_ms > 0);
    CHECK(as<frame::room_message>(*events.pop()).seq == 2);
    CHECK(as<frame::room_message>(*events.pop()).seq == 3);  // the retry was not published again

    CHECK(error_of(f.ask(alice, "room:sb", text(std::string(f.opt.message_bytes + 1, 'x')))) ==
          error_code::oversize);
    CHECK(error_of(f.ask(alice, "room:sb", text("bad \xC0\x80"))) == error_code::invalid_text);

    as<frame::ack>(f.ask(bob, "room:sb", frame::room_typing{true, {}}));
    auto typing = events.pop();
    REQUIRE(typing);
    CHECK(typing->sender == bob);
    as<frame::room_typing>(*typing);
    as<frame::ack>(f.ask(bob, "room:sb", frame::room_nudge{}));
    as<frame::room_nudge>(*events.pop());
    frame::room_opaque p2p{frame::client_protocol::msnp, "application/x-msnmsgrp2p", {std::string("\0\1\2", 3)}, {}};
    as<frame::ack>(f.ask(bob, "room:sb", p2p));
    CHECK(as<frame::room_opaque>(*events.pop()) == p2p);
}

TEST_CASE("history keeps the last 100 messages in seq order", "[room]") {
    room_fixture f;
    f.open_switchboard("room:sb");
    for (int i = 1; i <= 130; ++i) {
        f.tell(alice, "room:sb", text("m" + std::to_string(i), "id" + std::to_string(i)));
    }
    auto all = as<frame::room_history>(f.ask(alice, "room:sb", frame::room_history_get{0, 0, 1000}));
    CHECK(all.last_seq == 130);
    REQUIRE(all.messages.size() == 100);
    CHECK(all.messages.front().seq == 31);
    CHECK(all.messages.back().seq == 130);
    CHECK(all.messages.back().text == "m130");
    CHECK(all.messages.back().sender == alice);
    CHECK(all.messages.back().format.font == "Segoe UI");
    for (std::size_t i = 1; i < all.messages.size(); ++i) {
        CHECK(all.messages[i].seq == all.messages[i - 1].seq + 1);
    }
    auto range = as<frame::room_history>(f.ask(alice, "room:sb", frame::room_history_get{100, 105, 100}));
    REQUIRE(range.messages.size() == 4);
    CHECK(range.messages.front().seq == 101);
    auto few = as<frame::room_history>(f.ask(alice, "room:sb", frame::room_history_get{0, 0, 3}));
    CHECK(few.messages.size() == 3);
    CHECK(error_of(f.ask(carol, "room:sb", frame::room_history_get{})) == error_code::not_member);

    // A retry of a message that fell out of the window is a new message.
    CHECK(as<frame::ack>(f.ask(alice, "room:sb", text("again", "id1"))).seq == 131);
    CHECK(as<frame::ack>(f.ask(alice, "room:sb", text("again", "id130"))).seq == 130);
}

TEST_CASE("rooms survive a restart: members, seq, history and retry ids", "[room]") {
    room_fixture f;
    as<frame::ack>(f.ask(alice, "room:lobby", frame::room_create{frame::room_policy::named, "Lobby"}));
    as<frame::room_members>(f.ask(alice, "room:lobby", frame::room_join{endpoint_of(alice)}));
    as<frame::ack>(f.ask(alice, "room:lobby", text("before", "b1")));
    f.restart();
    // Endpoints belonged to the previous process; membership and messages stay.
    CHECK(error_of(f.ask(alice, "room:lobby", text("not joined"))) == error_code::not_member);
    auto members = as<frame::room_members>(f.ask(alice, "room:lobby", frame::room_join{endpoint_of(alice)}));
    CHECK(members.members.empty());
    CHECK(as<frame::ack>(f.ask(alice, "room:lobby", text("before", "b1"))).seq == 1);
    CHECK(as<frame::ack>(f.ask(alice, "room:lobby", text("after", "a1"))).seq == 2);
    auto h = as<frame::room_history>(f.ask(alice, "room:lobby", frame::room_history_get{}));
    REQUIRE(h.messages.size() == 2);
    CHECK(h.messages[0].text == "before");
}

TEST_CASE("hibernated rooms wake with their state under concurrent traffic", "[room][hibernation]") {
    embedded::options o;
    o.hibernate_after = std::chrono::milliseconds(1);
    room_fixture f(o);
    constexpr int rooms = 8;
    constexpr int per_room = 300;
    std::vector<frame_queue*> feeds;
    for (int r = 0; r < rooms; ++r) {
        const std::string id = "room:h" + std::to_string(r);
        as<frame::ack>(f.ask(alice, id, frame::room_create{frame::room_policy::named, ""}));
        feeds.push_back(&f.subscribe(id));
        as<frame::room_members>(f.ask(alice, id, frame::room_join{endpoint_of(alice)}));
        as<frame::room_join>(*feeds.back()->pop());
    }
    // Two producers interleave messages to all rooms while shards keep
    // evicting idle rooms; every room must see 1..N in order, each once.
    auto produce = [&](int parity) {
        for (int i = 0; i < per_room; ++i) {
            for (int r = parity; r < rooms; r += 2) {
                f.tell(alice, "room:h" + std::to_string(r), text(std::to_string(i), "x" + std::to_string(i)));
            }
            if (i % 50 == 0) std::this_thread::yield();
        }
    };
    std::thread a(produce, 0), b(produce, 1);
    a.join();
    b.join();
    for (int r = 0; r < rooms; ++r) {
        for (int i = 1; i <= per_room; ++i) {
            auto m = feeds[static_cast<std::size_t>(r)]->pop();
            REQUIRE(m);
            const auto& msg = as<frame::room_message>(*m);
            REQUIRE(msg.seq == static_cast<std::uint64_t>(i));
            REQUIRE(msg.text == std::to_string(i - 1));
        }
    }
    // Idle now: every room leaves memory (the shards sweep every millisecond
    // here), then wakes from storage with its seq and retry ids.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (f.be->stats().resident != 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
    }
    REQUIRE(f.be->stats().resident == 0);
    const auto wakes = f.be->stats().wakes;
    CHECK(as<frame::ack>(f.ask(alice, "room:h0", text("dup", "x299"))).seq == per_room);
    CHECK(as<frame::ack>(f.ask(alice, "room:h1", text("new", "y0"))).seq == per_room + 1);
    CHECK(f.be->stats().wakes == wakes + 2);
}

TEST_CASE("a block silences the blocked user in rooms already open", "[room]") {
    room_fixture f;
    auto& events = f.subscribe("room:sb");
    f.open_switchboard("room:sb");
    f.invite_and_join("room:sb", bob);
    as<frame::room_join>(*events.pop());
    as<frame::room_join>(*events.pop());
    // Alice blocks Bob after the conversation opened: her user object
    // tells the room, which learnt her blocks when she joined.
    as<frame::roster_change>(f.ask(alice, "user:" + alice, frame::list_edit(frame::change_op::add, frame::list::block, bob)));

    // Nobody else could hear Bob: refused, nothing published.
    CHECK(error_of(f.ask(bob, "room:sb", text("still there?"))) == error_code::not_allowed);
    CHECK(error_of(f.ask(bob, "room:sb", frame::room_nudge{})) == error_code::not_allowed);
    // Alice still speaks to him.
    CHECK(as<frame::ack>(f.ask(alice, "room:sb", text("bye"))).seq == 1);
    CHECK(as<frame::room_message>(*events.pop()).withheld_from.empty());

    // With Carol in the room, Bob reaches her; the frames name Alice as the
    // one they are withheld from.
    f.invite_and_join("room:sb", carol);
    as<frame::room_join>(*events.pop());
    CHECK(as<frame::ack>(f.ask(bob, "room:sb", text("carol?"))).seq == 2);
    const auto published = events.pop();
    REQUIRE(published);
    const auto& m = as<frame::room_message>(*published);
    CHECK(m.text == "carol?");
    CHECK(m.withheld_from == std::vector<std::string>{alice});
    as<frame::ack>(f.ask(bob, "room:sb", frame::room_typing{true, {}}));
    CHECK(as<frame::room_typing>(*events.pop()).withheld_from == std::vector<std::string>{alice});
    as<frame::ack>(f.ask(carol, "room:sb", text("hi both")));
    CHECK(as<frame::room_message>(*events.pop()).withheld_from.empty());
}

// ---------------------------------------------------------------- epochs

namespace {

std::string epoch_of(const frame::room_members& m) {
    REQUIRE(m.epoch.size() == 1);
    return m.epoch.front();
}
std::string epoch_of(const frame::room_history& h) {
    REQUIRE(h.epoch.size() == 1);
    return h.epoch.front();
}

// A WebSocket endpoint: one that can resume after its connection dropped.
frame::member ws_endpoint_of(const std::string& user, const std::string& endpoint = "ep1") {
    frame::member m = endpoint_of(user, endpoint);
    m.protocol = frame::client_protocol::wsjson;
    return m;
}

// Alice (MSNP) opens a switchboard and Bob joins it from a WebSocket client.
void open_with_ws_bob(room_fixture& f, frame_queue& events) {
    f.open_switchboard("room:sb");
    f.set_online(bob);
    as<frame::ack>(f.ask(alice, "room:sb", frame::room_invite{bob, {}, {}}));
    as<frame::room_members>(f.ask(bob, "room:sb", frame::room_join{ws_endpoint_of(bob)}));
    as<frame::room_join>(*events.pop());
    as<frame::room_join>(*events.pop());
}

frame::room_leave dropped(const std::string& user, const std::string& endpoint = "ep1") {
    return frame::room_leave{user, endpoint, frame::leave_reason::dropped};
}

// A clock the test moves by hand: grace periods end when it says so.
struct manual_clock {
    std::shared_ptr<std::atomic<std::uint64_t>> now = std::make_shared<std::atomic<std::uint64_t>>(1700000000000);
    embedded::options with(std::chrono::milliseconds grace) const {
        embedded::options o;
        o.rejoin_grace = grace;
        o.clock = [n = now] { return n->load(); };
        return o;
    }
    void advance(std::chrono::milliseconds d) const { *now += static_cast<std::uint64_t>(d.count()); }
};

}  // namespace

TEST_CASE("a room names its history with an epoch that only a new creation changes", "[room][epoch]") {
    room_fixture f;
    as<frame::ack>(f.ask(alice, "room:sb", frame::room_create{frame::room_policy::invite_only, "sb"}));
    const std::string first = epoch_of(as<frame::room_members>(f.ask(alice, "room:sb", frame::room_join{endpoint_of(alice)})));
    CHECK(first.size() == 16);
    CHECK(first.find_first_not_of("0123456789abcdef") == std::string::npos);
    as<frame::ack>(f.ask(alice, "room:sb", text("one", "m1")));
    CHECK(epoch_of(as<frame::room_history>(f.ask(alice, "room:sb", frame::room_history_get{}))) == first);

    // Restarts keep it: the history goes on.
    f.restart();
    const auto members = as<frame::room_members>(f.ask(alice, "room:sb", frame::room_join{endpoint_of(alice)}));
    CHECK(epoch_of(members) == first);

    // The switchboard ends with its last participant; created again under
    // the same id, its seqs start over in a new epoch.
    as<frame::ack>(f.ask(alice, "room:sb", frame::room_leave{alice, "ep1", frame::leave_reason::left}));
    CHECK(error_of(f.ask(alice, "room:sb", frame::room_history_get{})) == error_code::unknown_object);
    as<frame::ack>(f.ask(bob, "room:sb", frame::room_create{frame::room_policy::invite_only, "again"}));
    const auto again = as<frame::room_members>(f.ask(bob, "room:sb", frame::room_join{endpoint_of(bob)}));
    CHECK(epoch_of(again) != first);
    CHECK(as<frame::ack>(f.ask(bob, "room:sb", text("new one", "m1"))).seq == 1);
    const auto h = as<frame::room_history>(f.ask(bob, "room:sb", frame::room_history_get{}));
    CHECK(epoch_of(h) == epoch_of(again));
    REQUIRE(h.messages.size() == 1);
    CHECK(h.messages[0].text == "new one");

    // Another room has its own.
    as<frame::ack>(f.ask(alice, "room:other", frame::room_create{frame::room_policy::named, ""}));
    CHECK(epoch_of(as<frame::room_members>(f.ask(alice, "room:other", frame::room_join{endpoint_of(alice)}))) !=
          epoch_of(again));
}

TEST_CASE("a schema version 2 database upgrades in place; its rooms get an epoch once", "[room][epoch]") {
    room_fixture f;
    as<frame::ack>(f.ask(alice, "room:lobby", frame::room_create{frame::room_policy::named, "Lobby"}));
    as<frame::room_members>(f.ask(alice, "room:lobby", frame::room_join{endpoint_of(alice)}));
    as<frame::ack>(f.ask(alice, "room:lobby", text("kept", "k1")));
    f.be.reset();
    {
        embedded::database db(f.opt.file, embedded::durability::normal);
        db.exec("ALTER TABLE rooms DROP COLUMN epoch");
        db.exec("ALTER TABLE room_endpoints DROP COLUMN grace_until_ms");
        db.exec("ALTER TABLE messages DROP COLUMN withheld");
        db.exec("ALTER TABLE presence DROP COLUMN single_session");
        db.exec("DROP TABLE reverse_contacts");  // and what schema version 4 added
        db.exec("DROP TABLE outbox");
        db.exec("DROP TABLE contact_views");
        db.exec("PRAGMA user_version = 2");
        REQUIRE_FALSE(db.failed());
    }
    f.restart();
    const std::string epoch =
        epoch_of(as<frame::room_members>(f.ask(alice, "room:lobby", frame::room_join{endpoint_of(alice)})));
    CHECK(epoch.size() == 16);
    auto h = as<frame::room_history>(f.ask(alice, "room:lobby", frame::room_history_get{}));
    REQUIRE(h.messages.size() == 1);
    CHECK(h.messages[0].text == "kept");
    CHECK(h.messages[0].withheld_from.empty());
    CHECK(as<frame::ack>(f.ask(alice, "room:lobby", text("kept", "k1"))).seq == 1);  // retry ids survive
    f.restart();
    CHECK(epoch_of(as<frame::room_members>(f.ask(alice, "room:lobby", frame::room_join{endpoint_of(alice)}))) ==
          epoch);
}

// ---------------------------------------------------------------- retries per sender

TEST_CASE("message ids are retries only from the same sender", "[room]") {
    room_fixture f;
    auto& events = f.subscribe("room:sb");
    f.open_switchboard("room:sb");
    f.invite_and_join("room:sb", bob);
    as<frame::room_join>(*events.pop());
    as<frame::room_join>(*events.pop());

    CHECK(as<frame::ack>(f.ask(alice, "room:sb", text("from alice", "same-id"))).seq == 1);
    // Bob's message with the same id is his own, not Alice's retry.
    CHECK(as<frame::ack>(f.ask(bob, "room:sb", text("from bob", "same-id"))).seq == 2);
    CHECK(as<frame::ack>(f.ask(alice, "room:sb", text("from alice", "same-id"))).seq == 1);
    CHECK(as<frame::ack>(f.ask(bob, "room:sb", text("from bob", "same-id"))).seq == 2);
    CHECK(as<frame::room_message>(*events.pop()).text == "from alice");
    const auto from_bob = events.pop();
    REQUIRE(from_bob);
    CHECK(from_bob->sender == bob);
    CHECK(as<frame::room_message>(*from_bob).text == "from bob");

    // Loaded from storage, the ids keep their senders.
    f.restart();
    as<frame::room_members>(f.ask(alice, "room:sb", frame::room_join{endpoint_of(alice)}));
    as<frame::room_members>(f.ask(bob, "room:sb", frame::room_join{endpoint_of(bob)}));
    CHECK(as<frame::ack>(f.ask(bob, "room:sb", text("from bob", "same-id"))).seq == 2);
    CHECK(as<frame::ack>(f.ask(alice, "room:sb", text("from alice", "same-id"))).seq == 1);
    CHECK(as<frame::ack>(f.ask(bob, "room:sb", text("new", "other-id"))).seq == 3);
}

// ---------------------------------------------------------------- history and blocks

TEST_CASE("history marks what is withheld from the reader, then or now", "[room]") {
    room_fixture f;
    f.open_switchboard("room:sb");
    f.invite_and_join("room:sb", bob);
    f.invite_and_join("room:sb", carol);
    // Alice's user object owns her block list and tells the room of it.
    const auto block = [&](bool on) {
        as<frame::roster_change>(f.ask(alice, "user:" + alice,
                                       frame::list_edit(on ? frame::change_op::add : frame::change_op::remove,
                                                        frame::list::block, bob)));
    };
    CHECK(as<frame::ack>(f.ask(bob, "room:sb", text("before the block"))).seq == 1);
    block(true);
    CHECK(as<frame::ack>(f.ask(bob, "room:sb", text("while blocked"))).seq == 2);
    CHECK(as<frame::ack>(f.ask(carol, "room:sb", text("carol speaks"))).seq == 3);

    const auto withheld = [](const frame::room_history& h) {
        std::vector<std::vector<std::string>> out;
        for (const auto& m : h.messages) out.push_back(m.withheld_from);
        return out;
    };
    using list = std::vector<std::vector<std::string>>;
    // Alice blocks Bob now: none of his messages is for her.
    CHECK(withheld(as<frame::room_history>(f.ask(alice, "room:sb", frame::room_history_get{}))) ==
          list{{alice}, {alice}, {}});
    // Carol blocks nobody.
    CHECK(withheld(as<frame::room_history>(f.ask(carol, "room:sb", frame::room_history_get{}))) == list{{}, {}, {}});
    // Unblocked, Alice may read what Bob said before, not what was withheld
    // from her when he said it.
    block(false);
    CHECK(withheld(as<frame::room_history>(f.ask(alice, "room:sb", frame::room_history_get{}))) == list{{}, {alice}, {}});
    f.restart();
    CHECK(withheld(as<frame::room_history>(f.ask(alice, "room:sb", frame::room_history_get{}))) == list{{}, {alice}, {}});
}

// ---------------------------------------------------------------- grace periods

TEST_CASE("a dropped endpoint keeps its place until the grace period runs out", "[room][grace]") {
    manual_clock clock;
    room_fixture f(clock.with(std::chrono::seconds(60)));
    auto& events = f.subscribe("room:sb");
    open_with_ws_bob(f, events);

    as<frame::ack>(f.ask(bob, "room:sb", dropped(bob)));
    // Nothing published: the next event is Alice's message, stored for Bob.
    CHECK(as<frame::ack>(f.ask(alice, "room:sb", text("are you there?"))).seq == 1);
    CHECK(as<frame::room_message>(*events.pop()).seq == 1);
    // Bob is still a member (he may read the history) but cannot speak
    // without joining again; a third user sees him in the room.
    CHECK(as<frame::room_history>(f.ask(bob, "room:sb", frame::room_history_get{})).messages.size() == 1);
    CHECK(error_of(f.ask(bob, "room:sb", text("me?"))) == error_code::not_member);
    CHECK(error_of(f.ask(alice, "room:sb", frame::room_invite{bob, {}, {}})) == error_code::already_on_list);
    f.set_online(carol);
    as<frame::ack>(f.ask(alice, "room:sb", frame::room_invite{carol, {}, {}}));
    const auto seen = as<frame::room_members>(f.ask(carol, "room:sb", frame::room_join{endpoint_of(carol)}));
    CHECK(seen.members == std::vector<frame::member>{endpoint_of(alice), ws_endpoint_of(bob)});
    as<frame::room_join>(*events.pop());

    // A moment before the end, still there; at the end, gone as dropped.
    clock.advance(std::chrono::milliseconds(59999));
    as<frame::ack>(f.ask(alice, "room:sb", frame::room_nudge{}));
    as<frame::room_nudge>(*events.pop());
    clock.advance(std::chrono::milliseconds(1));
    as<frame::ack>(f.ask(alice, "room:sb", frame::room_nudge{}));  // the room applies the deadline first
    const auto left = events.pop();
    REQUIRE(left);
    CHECK(left->sender == bob);
    CHECK(as<frame::room_leave>(*left) == dropped(bob));
    as<frame::room_nudge>(*events.pop());
    // A switchboard forgets whoever is gone: a new invitation is needed.
    CHECK(error_of(f.ask(bob, "room:sb", frame::room_join{ws_endpoint_of(bob, "ep2")})) == error_code::not_allowed);
}

TEST_CASE("a rejoin within the grace period continues unseen", "[room][grace]") {
    manual_clock clock;
    room_fixture f(clock.with(std::chrono::seconds(60)));
    auto& events = f.subscribe("room:sb");
    open_with_ws_bob(f, events);
    const std::string epoch = epoch_of(as<frame::room_history>(f.ask(bob, "room:sb", frame::room_history_get{})));

    as<frame::ack>(f.ask(bob, "room:sb", dropped(bob)));
    as<frame::ack>(f.ask(alice, "room:sb", text("one")));
    as<frame::room_message>(*events.pop());
    clock.advance(std::chrono::seconds(30));

    // Bob's new connection joins: his old endpoint's place is his again.
    const auto members = as<frame::room_members>(f.ask(bob, "room:sb", frame::room_join{ws_endpoint_of(bob, "ep2")}));
    CHECK(members.members == std::vector<frame::member>{endpoint_of(alice)});
    CHECK(epoch_of(members) == epoch);
    const auto join = events.pop();
    REQUIRE(join);
    CHECK(as<frame::room_join>(*join).who == ws_endpoint_of(bob, "ep2"));
    CHECK(as<frame::room_leave>(*events.pop()) == dropped(bob, "ep1"));
    const auto h = as<frame::room_history>(f.ask(bob, "room:sb", frame::room_history_get{0, 0, 100}));
    REQUIRE(h.messages.size() == 1);
    CHECK(h.messages[0].text == "one");
    CHECK(as<frame::ack>(f.ask(bob, "room:sb", text("back"))).seq == 2);
    as<frame::room_message>(*events.pop());

    // The old grace period is over for good: no leave when it would have run out.
    clock.advance(std::chrono::seconds(31));
    as<frame::ack>(f.ask(alice, "room:sb", frame::room_nudge{}));
    as<frame::room_nudge>(*events.pop());
    CHECK(as<frame::room_members>(f.ask(alice, "room:sb", frame::room_join{endpoint_of(alice, "ep3")})).members ==
          std::vector<frame::member>{endpoint_of(alice), ws_endpoint_of(bob, "ep2")});
}

TEST_CASE("an invite-only room lasts while a member is in a grace period", "[room][grace]") {
    manual_clock clock;
    room_fixture f(clock.with(std::chrono::seconds(60)));
    auto& events = f.subscribe("room:sb");
    open_with_ws_bob(f, events);

    as<frame::ack>(f.ask(bob, "room:sb", dropped(bob)));
    as<frame::ack>(f.ask(alice, "room:sb", frame::room_leave{alice, "ep1", frame::leave_reason::left}));
    CHECK(as<frame::room_leave>(*events.pop()).user == alice);
    // Only Bob's place is left, and it keeps the room.
    as<frame::room_members>(f.ask(bob, "room:sb", frame::room_join{ws_endpoint_of(bob, "ep2")}));
    as<frame::room_join>(*events.pop());
    as<frame::room_leave>(*events.pop());

    // He drops again and does not come back: the room ends with him.
    as<frame::ack>(f.ask(bob, "room:sb", dropped(bob, "ep2")));
    clock.advance(std::chrono::seconds(60));
    CHECK(error_of(f.ask(bob, "room:sb", frame::room_join{ws_endpoint_of(bob, "ep3")})) == error_code::unknown_object);
    CHECK(as<frame::room_leave>(*events.pop()) == dropped(bob, "ep2"));
}

TEST_CASE("leaving on purpose ends a grace period; without grace a drop leaves at once", "[room][grace]") {
    SECTION("leave during the grace period") {
        manual_clock clock;
        room_fixture f(clock.with(std::chrono::seconds(60)));
        auto& events = f.subscribe("room:sb");
        open_with_ws_bob(f, events);
        as<frame::ack>(f.ask(bob, "room:sb", dropped(bob)));
        as<frame::ack>(f.ask(bob, "room:sb", dropped(bob)));  // dropping again changes nothing
        as<frame::ack>(f.ask(bob, "room:sb", frame::room_leave{bob, "", frame::leave_reason::left}));
        CHECK(as<frame::room_leave>(*events.pop()) == frame::room_leave{bob, "ep1", frame::leave_reason::left});
        CHECK(error_of(f.ask(bob, "room:sb", frame::room_leave{bob, "", frame::leave_reason::left})) ==
              error_code::not_member);
        CHECK(error_of(f.ask(bob, "room:sb", frame::room_join{ws_endpoint_of(bob)})) == error_code::not_allowed);
    }
    SECTION("an MSNP switchboard connection cannot come back: it leaves at once") {
        manual_clock clock;
        room_fixture f(clock.with(std::chrono::seconds(60)));
        auto& events = f.subscribe("room:sb");
        f.open_switchboard("room:sb");
        f.invite_and_join("room:sb", carol);
        as<frame::room_join>(*events.pop());
        as<frame::room_join>(*events.pop());
        as<frame::ack>(f.ask(carol, "room:sb", dropped(carol)));
        CHECK(as<frame::room_leave>(*events.pop()) == dropped(carol));
        CHECK(error_of(f.ask(carol, "room:sb", frame::room_join{endpoint_of(carol)})) == error_code::not_allowed);
    }
    SECTION("no grace period") {
        room_fixture f(manual_clock{}.with(std::chrono::milliseconds(0)));
        auto& events = f.subscribe("room:sb");
        open_with_ws_bob(f, events);
        as<frame::ack>(f.ask(bob, "room:sb", dropped(bob)));
        CHECK(as<frame::room_leave>(*events.pop()) == dropped(bob));
        CHECK(error_of(f.ask(bob, "room:sb", frame::room_join{ws_endpoint_of(bob)})) == error_code::not_allowed);
    }
}

// The real clock: the shard wakes for the deadline by itself, and keeps
// the room in memory for it although idle rooms hibernate at once here.
TEST_CASE("a grace period runs out on its own, with nothing else happening", "[room][grace][hibernation]") {
    embedded::options o;
    o.rejoin_grace = std::chrono::milliseconds(300);
    o.hibernate_after = std::chrono::milliseconds(1);
    room_fixture f(o);
    auto& events = f.subscribe("room:sb");
    open_with_ws_bob(f, events);
    const auto dropped_at = std::chrono::steady_clock::now();
    as<frame::ack>(f.ask(bob, "room:sb", dropped(bob)));
    const auto left = events.pop(10s);
    REQUIRE(left);
    CHECK(as<frame::room_leave>(*left) == dropped(bob));
    // Not at once (deadlines count whole milliseconds of the system clock,
    // so the bound leaves room for rounding).
    CHECK(std::chrono::steady_clock::now() - dropped_at >= std::chrono::milliseconds(250));
}
