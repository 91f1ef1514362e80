// The switchboard machine (msnp-reference §4.4-§4.6, Appendix B.2) against
// real embedded room objects: joining with cookies, invitations, the
// translation of MSG payloads into room frames and back, ack modes, leaving.
#include "msnp_harness.hpp"

#include "protocols/msnp/message.hpp"

#include <mutex>

using namespace switchyard;
using namespace switchyard::test;
using frame::error_code;

namespace {

const std::string alice = "alice@example.com";
const std::string bob = "bob@example.com";
const std::string carol = "carol@example.com";
const std::string sb = "room:sb1";

struct sb_fixture : embedded_fixture {
    embedded::database db{opt.file, embedded::durability::normal};
    fake_services svc{db};

    explicit sb_fixture(embedded::options o = {}) : embedded_fixture(std::move(o)) {
        add_user(alice, "Alice");
        add_user(bob, "Bob B");
        add_user(carol, "Carol");
        add_user("dave@example.com", "Dave");
        for (const auto& u : {bob, carol}) set_online(u);
        // The room as the NS creates it for XFR SB: Alice is its creator.
        as<frame::ack>(ask(alice, sb, frame::room_create{frame::room_policy::invite_only, ""}));
    }

    // Presence as the user object records it (room_object_test does the same).
    void set_online(const std::string& user) {
        db.prepare("INSERT OR REPLACE INTO presence (handle, endpoint, state, capabilities, capabilities_ex, "
                   "msn_object) VALUES (?1, 'ns1', ?2, 0, 0, '')")
            .bind(user, static_cast<int>(frame::status::online))
            .run();
        REQUIRE_FALSE(db.failed());
    }
    void block(const std::string& owner, const std::string& blocked) {
        db.prepare("INSERT INTO contacts (owner, contact, lists, display_name, contact_id) "
                   "VALUES (?1, ?2, 4, ?2, 'c1')")
            .bind(owner, blocked)
            .run();
        REQUIRE_FALSE(db.failed());
    }

    // What the NS puts in XFR SB and RNG.
    std::string cookie(const std::string& user, int dialect, const std::string& room = sb,
                       std::uint64_t capabilities = 0) {
        const std::string name = user == alice ? "Alice" : user == bob ? "Bob B" : user == carol ? "Carol" : "";
        return svc.issue_sb_cookie({user, room, dialect, name, capabilities});
    }

    // What the room publishes, seen through the hub (the fixture's own
    // subscribe would take the room's one backend subscription away).
    frame_queue& observe(const std::string& room = sb) {
        auto q = std::make_shared<frame_queue>();
        observers.emplace_back(room, hub.watch(room, [q](gateway::shared_frame f) { q->push(*f); }));
        return *q;
    }
    std::vector<std::pair<std::string, std::uint64_t>> observers;  // room, hub watch id

    // Returns once the room has applied everything sent to it so far: what
    // it published before is then in every watcher's queue.
    void settle(const std::string& room = sb) { ask("nobody@example.com", room, frame::room_history_get{}); }
};

struct sb_client : client<msnp::sb_session> {
    explicit sb_client(sb_fixture& f, msnp::session_limits limits = {}) : client(f, f.svc, limits) {}
};

std::string caps(int dialect) { return dialect >= 12 ? " 0" : ""; }

std::string relayed(const std::string& sender, std::string_view friendly, const std::string& payload) {
    return "MSG " + sender + " " + std::string(friendly) + " " + std::to_string(payload.size()) + "\r\n" + payload;
}

const std::string typing_from_alice =
    "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nTypingUser: alice@example.com\r\n\r\n\r\n";
const std::string nudge = "MIME-Version: 1.0\r\nContent-Type: text/x-msnmsgr-datacast\r\n\r\nID: 1\r\n\r\n";

std::string plain(std::string_view text, std::string_view format = "FN=Arial; EF=; CO=0; CS=0; PF=22") {
    return "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nX-MMS-IM-Format: " + std::string(format) +
           "\r\n\r\n" + std::string(text);
}

// A P2P message: headers, the 48-byte binary header, SLP data, the footer.
std::string p2p_payload() {
    std::string p = "MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: bob@example.com\r\n\r\n";
    for (int i = 0; i < 48; ++i) p += static_cast<char>(i * 37 % 256);
    p += "INVITE MSNMSGR:bob@example.com MSNSLP/1.0\r\n\r\n";
    p += std::string("\0\0\0\x01", 4);
    p += std::string("\xff\xfe\x00\x80", 4);
    return p;
}

// Alice (caller) and Bob (invitee) in one switchboard.
struct pair_fixture : sb_fixture {
    sb_client a{*this};
    sb_client b{*this};
    explicit pair_fixture(int dialect_a = 12, int dialect_b = 12, embedded::options o = {})
        : sb_fixture(std::move(o)) {
        REQUIRE(a.send("USR 1 alice@example.com " + cookie(alice, dialect_a)) ==
                "USR 1 OK alice@example.com Alice\r\n");
        REQUIRE(a.send("CAL 2 bob@example.com") == "CAL 2 RINGING sb1\r\n");
        REQUIRE(b.send("ANS 1 bob@example.com " + cookie(bob, dialect_b) + " sb1") ==
                "IRO 1 1 1 alice@example.com Alice" + caps(dialect_b) + "\r\nANS 1 OK\r\n");
        REQUIRE(a.wait_for("JOI") == "JOI bob@example.com Bob%20B" + caps(dialect_a) + "\r\n");
    }
};

}  // namespace

TEST_CASE("three participants meet in a switchboard", "[sb]") {
    const int dialect = GENERATE(5, 12);
    sb_fixture f;
    auto& bob_ns = f.subscribe("user:" + bob);
    sb_client a(f), b(f), c(f);

    // §4.5 / B.2: USR, CAL, RNG (the invitation reaches Bob's user object), ANS.
    CHECK(a.send("USR 1 alice@example.com " + f.cookie(alice, dialect)) == "USR 1 OK alice@example.com Alice\r\n");
    CHECK(a.send("CAL 2 bob@example.com") == "CAL 2 RINGING sb1\r\n");
    auto rng = bob_ns.pop();
    REQUIRE(rng);
    CHECK(as<frame::room_invite>(*rng) == frame::room_invite{bob, "Alice", sb});
    CHECK(b.send("ANS 1 bob@example.com " + f.cookie(bob, dialect) + " sb1") ==
          "IRO 1 1 1 alice@example.com Alice" + caps(dialect) + "\r\nANS 1 OK\r\n");
    CHECK(a.wait_for("JOI") == "JOI bob@example.com Bob%20B" + caps(dialect) + "\r\n");

    CHECK(a.send("CAL 3 carol@example.com") == "CAL 3 RINGING sb1\r\n");
    CHECK(c.send("ANS 7 carol@example.com " + f.cookie(carol, dialect) + " sb1") ==
          "IRO 7 1 2 alice@example.com Alice" + caps(dialect) + "\r\nIRO 7 2 2 bob@example.com Bob%20B" +
              caps(dialect) + "\r\nANS 7 OK\r\n");
    CHECK(a.wait_for("JOI") == "JOI carol@example.com Carol" + caps(dialect) + "\r\n");
    CHECK(b.wait_for("JOI") == "JOI carol@example.com Carol" + caps(dialect) + "\r\n");

    // A message reaches both others and is not echoed to its sender.
    const std::string hi = plain("hi all");
    CHECK(b.msg("4", "N", hi).empty());
    CHECK(a.wait_for("hi all") == relayed(bob, "Bob%20B", hi));
    CHECK(c.wait_for("hi all") == relayed(bob, "Bob%20B", hi));
    f.settle();
    CHECK(a.pending().empty());
    CHECK(b.pending().empty());
    CHECK(c.pending().empty());
}

TEST_CASE("typing and nudges travel as room frames", "[sb]") {
    pair_fixture f;
    auto& room = f.observe();

    CHECK(f.a.msg("3", "U", typing_from_alice).empty());
    CHECK(f.b.wait_for("TypingUser") == relayed(alice, "Alice", typing_from_alice));
    auto typing = room.pop();
    REQUIRE(typing);
    CHECK(as<frame::room_typing>(*typing).active);

    CHECK(f.b.msg("2", "U", nudge).empty());
    CHECK(f.a.wait_for("ID: 1") == relayed(bob, "Bob%20B", nudge));
    auto n = room.pop();
    REQUIRE(n);
    as<frame::room_nudge>(*n);

    f.settle();
    CHECK(f.a.pending().empty());
    CHECK(f.b.pending().empty());
}

TEST_CASE("text and its X-MMS-IM-Format survive the trip through the room", "[sb]") {
    pair_fixture f;

    SECTION("an official client's message comes out as it went in") {
        const std::string payload =
            plain("h\xc3\xa9llo :)", "FN=Lucida%20Grande; EF=BI; CO=C81ABB; CS=86; PF=22; RL=1");
        CHECK(f.a.msg("4", "A", payload) == "ACK 4\r\n");
        CHECK(f.b.wait_for(":)") == relayed(alice, "Alice", payload));

        const auto history = as<frame::room_history>(f.ask(alice, sb, frame::room_history_get{}));
        REQUIRE(history.messages.size() == 1);
        const auto& m = history.messages[0];
        CHECK(m.sender == alice);
        CHECK(m.text == "h\xc3\xa9llo :)");
        CHECK(m.format == frame::text_format{"Lucida Grande", "BI", 0xBB1AC8, 0x86, 0x22, true});
        CHECK_FALSE(m.message_id.empty());
    }
    SECTION("a body without charset is ISO-8859-1, relayed as UTF-8") {
        CHECK(f.a.msg("4", "N", "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\ncaf\xe9").empty());
        const std::string utf8 = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\ncaf\xc3\xa9";
        CHECK(f.b.wait_for("caf") == relayed(alice, "Alice", utf8));
    }
    SECTION("a message from a WebSocket member is rebuilt for MSNP") {
        f.set_online(carol);
        CHECK(f.a.send("CAL 3 carol@example.com") == "CAL 3 RINGING sb1\r\n");
        as<frame::room_members>(f.ask(carol, sb,
                                      frame::room_join{{carol, "ws-1", "Carol C", 0, frame::client_protocol::wsjson}}));
        CHECK(f.a.wait_for("JOI") == "JOI carol@example.com Carol%20C 0\r\n");
        CHECK(f.b.wait_for("JOI") == "JOI carol@example.com Carol%20C 0\r\n");

        frame::room_message styled;
        styled.message_id = "w1";
        styled.text = "styled";
        styled.format = frame::text_format{"Segoe UI", "U", 0x00FF00, 0, 0, false};
        as<frame::ack>(f.ask(carol, sb, styled));
        CHECK(f.b.wait_for("styled") ==
              relayed(carol, "Carol%20C", plain("styled", "FN=Segoe%20UI; EF=U; CO=FF00; CS=0; PF=0")));

        // Unstyled text gets no X-MMS-IM-Format; a stop-typing notice has no MSNP form.
        frame::room_message bare;
        bare.message_id = "w2";
        bare.text = "bare";
        as<frame::ack>(f.ask(carol, sb, bare));
        as<frame::ack>(f.ask(carol, sb, frame::room_typing{false, {}}));
        CHECK(f.b.wait_for("bare") ==
              relayed(carol, "Carol%20C", "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nbare"));
        f.settle();
        CHECK(f.b.pending().empty());
    }
}

TEST_CASE("X-MMS-IM-Format fields", "[sb][format]") {
    using msnp::read_format;
    CHECK(read_format("FN=MS%20Sans%20Serif; EF=; CO=0; CS=0; PF=0") ==
          frame::text_format{"MS Sans Serif", "", 0, 0, 0, false});
    // A font name in locale bytes: the §5 retry as ISO-8859-1.
    CHECK(read_format("FN=Caf%E9").font == "Caf\xc3\xa9");
    // CO is BGR: ff is red. Malformed and unknown fields are ignored.
    CHECK(read_format("FN=Arial; EF=SBxB; CO=ff; CS=zz; PF=12; XX=1") ==
          frame::text_format{"Arial", "SB", 0xFF0000, 0, 0x12, false});
    CHECK(msnp::write_format({"A;B", "I", 0x123456, 0x80, 0x22, true}) ==
          "FN=A%3BB; EF=I; CO=563412; CS=80; PF=22; RL=1");
}

TEST_CASE("ACK follows the room's durable ack; N and U are not acknowledged", "[sb]") {
    pair_fixture f;

    CHECK(f.a.msg("4", "A", plain("one")) == "ACK 4\r\n");
    // Durable: the room holds it by the time ACK is written.
    CHECK(as<frame::room_history>(f.ask(alice, sb, frame::room_history_get{})).messages.size() == 1);
    CHECK(f.a.msg("5", "N", plain("two")).empty());
    CHECK(f.a.msg("6", "U", plain("three")).empty());
    CHECK(f.a.msg("7", "D", plain("four")) == "ACK 7\r\n");
    CHECK(f.b.wait_for("four").find("three") != std::string::npos);

    const auto history = as<frame::room_history>(f.ask(alice, sb, frame::room_history_get{}));
    REQUIRE(history.messages.size() == 4);
    CHECK(history.messages[0].message_id != history.messages[1].message_id);
}

TEST_CASE("the machine writes ACK only once the room has answered", "[sb]") {
    sb_fixture f;
    msnp::sb_session m(f.svc);
    auto usr = m.on_command({"USR", {"1", alice, f.cookie(alice, 12)}, {}, false});
    CHECK(usr.bytes.empty());
    CHECK(usr.watch == std::vector<std::string>{sb});
    // The caller's switchboard is created by its first join, unanswered.
    REQUIRE(usr.frames.size() == 2);
    CHECK(usr.frames[0].corr == 0);
    CHECK(as<frame::room_create>(usr.frames[0]).policy == frame::room_policy::invite_only);
    const auto join = usr.frames[1];
    CHECK(as<frame::room_join>(join).who.user == alice);

    // A client that does not wait for USR OK: its commands wait for the room.
    auto early = m.on_command({"CAL", {"2", bob}, {}, false});
    CHECK(early.bytes.empty());
    CHECK(early.frames.empty());

    // What the room published before it answered the join precedes it.
    frame::member other{bob, "ep-b", "Bob", 0, frame::client_protocol::msnp};
    CHECK(m.on_frame({0, sb, bob, frame::room_join{other}}).bytes.empty());
    CHECK(m.on_frame({0, sb, bob, frame::room_message{}}).bytes.empty());

    auto joined = m.on_frame({join.corr, sb, {}, frame::room_members{{other}, {}}});
    CHECK(joined.bytes == "USR 1 OK alice@example.com Alice\r\n");
    // A join publication for an endpoint the member list had: no second JOI,
    // and its leave is Bob's last.
    CHECK(m.on_frame({0, sb, bob, frame::room_join{other}}).bytes.empty());
    CHECK(m.on_frame({0, sb, bob, frame::room_leave{bob, "ep-b", frame::leave_reason::left}}).bytes ==
          "BYE bob@example.com\r\n");
    CHECK(m.on_frame({0, sb, bob, frame::room_join{other}}).bytes == "JOI bob@example.com Bob 0\r\n");
    REQUIRE(joined.frames.size() == 1);
    CHECK(as<frame::room_invite>(joined.frames[0]).user == bob);

    msnp::command msg{"MSG", {"3", "A", "0"}, plain("x"), true};
    auto sent = m.on_command(msg);
    CHECK(sent.bytes.empty());
    REQUIRE(sent.frames.size() == 1);
    CHECK(as<frame::room_message>(sent.frames[0]).ack_requested);
    CHECK(m.on_frame({sent.frames[0].corr, sb, {}, frame::ack{1}}).bytes == "ACK 3\r\n");

    sent = m.on_command(msg);
    CHECK(m.on_frame({sent.frames[0].corr, sb, {}, frame::error{error_code::internal, "disk"}}).bytes == "NAK 3\r\n");
}

TEST_CASE("NAK when a message cannot be delivered", "[sb]") {
    SECTION("nobody else is in the switchboard") {
        sb_fixture f;
        sb_client a(f);
        CHECK(a.send("USR 1 alice@example.com " + f.cookie(alice, 12)) == "USR 1 OK alice@example.com Alice\r\n");
        CHECK(a.msg("2", "A", plain("anyone?")) == "NAK 2\r\n");
        CHECK(a.msg("3", "N", plain("anyone?")) == "NAK 3\r\n");
        CHECK(a.msg("4", "D", p2p_payload()) == "NAK 4\r\n");
        CHECK(a.msg("5", "U", typing_from_alice).empty());
        CHECK(as<frame::room_history>(f.ask(alice, sb, frame::room_history_get{})).messages.empty());
    }
    SECTION("only a browser user is there: MSNP-only content is NAKed, and the room still hears of it") {
        sb_fixture f;
        f.set_online(carol);
        sb_client a(f);
        a.send("USR 1 alice@example.com " + f.cookie(alice, 12));
        CHECK(a.send("CAL 2 carol@example.com") == "CAL 2 RINGING sb1\r\n");
        as<frame::room_members>(f.ask(carol, sb,
                                      frame::room_join{{carol, "ws-1", "Carol C", 0, frame::client_protocol::wsjson}}));
        a.wait_for("JOI");
        auto& room = f.observe();
        CHECK(a.msg("3", "D", p2p_payload()) == "NAK 3\r\n");
        const auto published = room.pop();
        REQUIRE(published);
        CHECK(as<frame::room_opaque>(*published).content_type == "application/x-msnmsgrp2p");
        CHECK(a.msg("4", "A", plain("text reaches her")) == "ACK 4\r\n");
    }
    SECTION("the room refuses the text") {
        embedded::options o;
        o.message_bytes = 16;
        pair_fixture f(12, 12, o);
        const std::string longer = plain("more than sixteen bytes");
        CHECK(f.a.msg("3", "A", longer) == "NAK 3\r\n");
        CHECK(f.a.msg("4", "N", longer) == "NAK 4\r\n");
        CHECK(f.a.msg("5", "U", longer).empty());
        CHECK(f.a.msg("6", "A", plain("short")) == "ACK 6\r\n");
        CHECK(f.b.wait_for("short") == relayed(alice, "Alice", plain("short")));
    }
    SECTION("the session's own limit") {
        sb_fixture f;
        msnp::session_limits limits;
        limits.message_bytes = 4;
        sb_client a(f, limits), b(f);
        a.send("USR 1 alice@example.com " + f.cookie(alice, 12));
        a.send("CAL 2 bob@example.com");
        b.send("ANS 1 bob@example.com " + f.cookie(bob, 12) + " sb1");
        a.wait_for("JOI");
        CHECK(a.msg("3", "A", plain("12345")) == "NAK 3\r\n");
        CHECK(a.msg("4", "A", plain("1234")) == "ACK 4\r\n");
    }
}

TEST_CASE("P2P and other MSNP-only content is relayed byte for byte", "[sb]") {
    pair_fixture f;
    auto& room = f.observe();

    const std::string p2p = p2p_payload();
    CHECK(f.a.msg("3", "D", p2p) == "ACK 3\r\n");
    CHECK(f.b.wait_for("MSNSLP") == relayed(alice, "Alice", p2p));
    auto opaque = room.pop();
    REQUIRE(opaque);
    CHECK(as<frame::room_opaque>(*opaque) ==
          frame::room_opaque{frame::client_protocol::msnp, "application/x-msnmsgrp2p", frame::bytes{p2p}, {}});

    // A wink, a custom emoticon, chunked text: all opaque, all unchanged.
    const std::string head = "MIME-Version: 1.0\r\nContent-Type: ";
    for (const std::string& payload :
         {head + "text/x-msnmsgr-datacast\r\n\r\nID: 2\r\nData: <msnobj Type=\"8\"/>\r\n\r\n",
          head + "text/x-mms-emoticon\r\n\r\n:x:\t<msnobj/>\t",
          head + "text/plain; charset=UTF-8\r\nMessage-ID: {A}\r\nChunks: 2\r\n\r\npart one"}) {
        CHECK(f.b.msg("9", "N", payload).empty());
        CHECK(f.a.wait_for("MIME") == relayed(bob, "Bob%20B", payload));
        auto relayed_frame = room.pop();
        REQUIRE(relayed_frame);
        CHECK(as<frame::room_opaque>(*relayed_frame).payload.data == payload);
    }
}

TEST_CASE("protocol violations in MSG close the connection", "[sb]") {
    pair_fixture f;
    SECTION("a lowercase ack letter") { CHECK(f.a.msg("3", "a", plain("x")).empty()); }
    SECTION("P2P not sent with D") { CHECK(f.a.msg("3", "A", p2p_payload()).empty()); }
    SECTION("an unknown ack letter") { CHECK(f.a.msg("3", "X", plain("x")).empty()); }
    SECTION("a wrong parameter count") { CHECK(f.a.send(msnp::command{"MSG", {"3", "A"}, plain("x"), true}).empty()); }
    CHECK(f.a.is_closed());
    // Dropped by the server: BYE email 1 (§4.5).
    CHECK(f.b.wait_for("BYE") == "BYE alice@example.com 1\r\n");
}

TEST_CASE("participants leave and are invited again", "[sb]") {
    pair_fixture f;

    SECTION("OUT: no reply, BYE for the others, then a fresh invitation") {
        CHECK(f.b.send("OUT").empty());
        CHECK(f.b.is_closed());
        CHECK(f.a.wait_for("BYE") == "BYE bob@example.com\r\n");
        CHECK(f.a.msg("3", "A", plain("alone")) == "NAK 3\r\n");

        CHECK(f.a.send("CAL 4 bob@example.com") == "CAL 4 RINGING sb1\r\n");
        sb_client again(f);
        CHECK(again.send("ANS 11 bob@example.com " + f.cookie(bob, 12) + " sb1") ==
              "IRO 11 1 1 alice@example.com Alice 0\r\nANS 11 OK\r\n");
        CHECK(f.a.wait_for("JOI") == "JOI bob@example.com Bob%20B 0\r\n");
        CHECK(f.a.msg("5", "A", plain("back")) == "ACK 5\r\n");
        CHECK(again.wait_for("back") == relayed(alice, "Alice", plain("back")));
    }
    SECTION("the socket closes without OUT") {
        CHECK(f.b.closed().empty());
        CHECK(f.a.wait_for("BYE") == "BYE bob@example.com\r\n");
    }
    SECTION("the gateway shuts down: dropped by the server") {
        CHECK(f.b.shutdown().empty());
        CHECK(f.b.is_closed());
        CHECK(f.a.wait_for("BYE") == "BYE bob@example.com 1\r\n");
        CHECK(f.b.closed().empty());  // the close that follows leaves nothing more
        f.settle();
        CHECK(f.a.pending().empty());
    }
    SECTION("the room removes a participant") {
        as<frame::ack>(f.ask(bob, sb, frame::room_leave{bob, "", frame::leave_reason::removed}));
        CHECK(f.a.wait_for("BYE") == "BYE bob@example.com 1\r\n");
        f.settle();
        CHECK(f.b.pending().empty());
        CHECK(f.b.is_closed());
    }
}

TEST_CASE("CAL errors", "[sb]") {
    pair_fixture f;
    CHECK(f.a.send("CAL 3 not-a-handle") == "208 3\r\n");
    CHECK(f.a.send("CAL 4 bob@example.com") == "215 4\r\n");
    CHECK(f.a.send("CAL 5 ALICE@example.com") == "215 5\r\n");  // yourself, pre-MSNP16
    f.block(carol, alice);
    CHECK(f.a.send("CAL 6 carol@example.com") == "217 6\r\n");  // blocked: told as offline
    CHECK(f.a.send("CAL 7 dave@example.com") == "217 7\r\n");  // offline
    CHECK(f.a.send("CAL 8 nobody@example.com") == "217 8\r\n");
    CHECK_FALSE(f.a.is_closed());
    CHECK(f.a.send("CAL 9").empty());
    CHECK(f.a.is_closed());
}

TEST_CASE("911 for a cookie that is used, foreign or for another session", "[sb]") {
    sb_fixture f;
    sb_client a(f);
    const std::string cookie = f.cookie(alice, 12);
    // Handles compare case-insensitively; the reply echoes the client's spelling (§5).
    CHECK(a.send("USR 1 Alice@Example.com " + cookie) == "USR 1 OK Alice@Example.com Alice\r\n");

    sb_client again(f), foreign(f), elsewhere(f), unknown(f), no_room(f);
    CHECK(again.send("USR 1 alice@example.com " + cookie) == "911 1\r\n");
    CHECK(foreign.send("USR 2 alice@example.com " + f.cookie(bob, 12)) == "911 2\r\n");
    // Bob is invited, but his cookie is for this session, not sb2.
    CHECK(a.send("CAL 2 bob@example.com") == "CAL 2 RINGING sb1\r\n");
    CHECK(elsewhere.send("ANS 3 bob@example.com " + f.cookie(bob, 12) + " sb2") == "911 3\r\n");
    CHECK(unknown.send("USR 4 alice@example.com cookie999") == "911 4\r\n");
    // An invitee's good cookie for a session that ended: the room refuses the join.
    CHECK(no_room.send("ANS 5 bob@example.com " + f.cookie(bob, 12, "room:gone") + " gone") == "911 5\r\n");
    for (auto* c : {&again, &foreign, &elsewhere, &unknown, &no_room}) CHECK(c->is_closed());

    SECTION("a connection that does not begin with USR or ANS") {
        sb_client odd(f);
        CHECK(odd.send("CAL 1 bob@example.com").empty());
        CHECK(odd.is_closed());
    }
    SECTION("commands an authenticated switchboard does not know") {
        CHECK(a.send("USR 3 alice@example.com " + f.cookie(alice, 12)) == "207 3\r\n");
        CHECK(a.send("FOO 4 bar") == "200 4\r\n");
        CHECK_FALSE(a.is_closed());
    }
}

TEST_CASE("a user's own other endpoints are not participants", "[sb]") {
    pair_fixture f;
    sb_client second(f);
    // Alice is a member already, so a second connection of hers may join.
    CHECK(second.send("USR 1 alice@example.com " + f.cookie(alice, 12)) ==
          "USR 1 OK alice@example.com Alice\r\n");
    CHECK(second.msg("2", "A", plain("from the second")) == "ACK 2\r\n");
    // Bob gets no second JOI for Alice; Alice no JOI of herself, nor her own message.
    CHECK(f.b.wait_for("second") == relayed(alice, "Alice", plain("from the second")));
    f.settle();
    CHECK(f.a.pending().empty());

    // With Bob gone, Alice's endpoints are alone with each other.
    CHECK(f.b.send("OUT").empty());
    CHECK(second.wait_for("BYE") == "BYE bob@example.com\r\n");
    CHECK(second.msg("3", "A", plain("anyone?")) == "NAK 3\r\n");
}

TEST_CASE("MSNP5 and MSNP12 participants share a switchboard", "[sb]") {
    pair_fixture f(5, 12);  // Alice MSNP5 (JOI without caps), Bob MSNP12 (IRO with)

    sb_client c(f);
    CHECK(f.a.send("CAL 3 carol@example.com") == "CAL 3 RINGING sb1\r\n");
    CHECK(c.send("ANS 1 carol@example.com " + f.cookie(carol, 5) + " sb1") ==
          "IRO 1 1 2 alice@example.com Alice\r\nIRO 1 2 2 bob@example.com Bob%20B\r\nANS 1 OK\r\n");
    CHECK(f.a.wait_for("JOI") == "JOI carol@example.com Carol\r\n");
    CHECK(f.b.wait_for("JOI") == "JOI carol@example.com Carol 0\r\n");

    CHECK(f.a.msg("4", "A", plain("from five")) == "ACK 4\r\n");
    CHECK(f.b.wait_for("five") == relayed(alice, "Alice", plain("from five")));
    CHECK(f.b.msg("5", "A", plain("from twelve")) == "ACK 5\r\n");
    CHECK(f.a.wait_for("twelve") == relayed(bob, "Bob%20B", plain("from twelve")));
    CHECK(c.wait_for("twelve").find(relayed(alice, "Alice", plain("from five"))) == 0);

    // A WebSocket member with capabilities and two endpoints: one participant.
    const std::string dave = "dave@example.com";
    f.set_online(dave);
    CHECK(f.a.send("CAL 6 dave@example.com") == "CAL 6 RINGING sb1\r\n");
    for (const char* ep : {"ws-1", "ws-2"}) {
        const frame::member m{dave, ep, "Dave", 0x40000000, frame::client_protocol::wsjson};
        as<frame::room_members>(f.ask(dave, sb, frame::room_join{m}));
    }
    CHECK(f.b.wait_for("JOI") == "JOI dave@example.com Dave 1073741824\r\n");
    CHECK(f.a.wait_for("JOI") == "JOI dave@example.com Dave\r\n");
    as<frame::ack>(f.ask(dave, sb, frame::room_leave{dave, "ws-1", frame::leave_reason::left}));
    f.settle();
    CHECK(f.a.pending().empty());
    as<frame::ack>(f.ask(dave, sb, frame::room_leave{dave, "ws-2", frame::leave_reason::idle}));
    CHECK(f.a.wait_for("BYE") == "BYE dave@example.com 1\r\n");
    CHECK(f.b.wait_for("BYE") == "BYE dave@example.com 1\r\n");
}

TEST_CASE("MSNP12 IRO and JOI carry the capabilities the NS put in the cookie", "[sb]") {
    sb_fixture f;
    sb_client a(f), b(f);
    CHECK(a.send("USR 1 alice@example.com " + f.cookie(alice, 12, sb, 1342177280)) ==
          "USR 1 OK alice@example.com Alice\r\n");
    CHECK(a.send("CAL 2 bob@example.com") == "CAL 2 RINGING sb1\r\n");
    CHECK(b.send("ANS 1 bob@example.com " + f.cookie(bob, 12, sb, 1073741824) + " sb1") ==
          "IRO 1 1 1 alice@example.com Alice 1342177280\r\nANS 1 OK\r\n");
    CHECK(a.wait_for("JOI") == "JOI bob@example.com Bob%20B 1073741824\r\n");
}
