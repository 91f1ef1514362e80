// The WebSocket JSON codec alone: JSON text in, frames and messages out.
// Objects are played by hand: a reply is a frame with the corr the codec
// emitted, a publication a frame with corr 0. Every message type of
// protocols/wsjson/README.md and every error it defines has a case here.
#include "protocols/wsjson/render.hpp"
#include "protocols/wsjson/wsjson.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <map>

using namespace switchyard;
namespace json = boost::json;
using frame::error_code;

namespace {

const std::string alice = "alice@example.com";
const std::string bob = "bob@example.com";

class fake_services final : public wsjson::services {
public:
    void check_password(std::string_view handle, std::string_view password) override {
        checks.emplace_back(handle, password);
    }
    std::string issue_session_token(std::string_view handle) override { return "tok:" + std::string(handle); }
    std::optional<wsjson::token_owner> verify_session_token(std::string_view token) override {
        if (!token.starts_with("tok:")) return std::nullopt;
        return wsjson::token_owner{std::string(token.substr(4)), 42};
    }
    std::string new_room_id() override { return "r" + std::to_string(++counter); }
    std::string new_endpoint_id() override { return "ep" + std::to_string(++counter); }
    std::uint64_t now_ms() override { return now; }

    std::vector<std::pair<std::string, std::string>> checks;
    std::uint64_t now = 1700000000000;
    int counter = 0;
};

json::object msg(const frame::output& out, std::size_t i = 0) {
    INFO("messages: " << out.messages.size());
    REQUIRE(i < out.messages.size());
    return json::parse(out.messages[i]).as_object();
}

template <class T> const T& body(const frame::frame& f) {
    INFO("frame " << frame::type_name(f));
    REQUIRE(std::holds_alternative<T>(f.content));
    return std::get<T>(f.content);
}

std::string code_of(const frame::output& out, std::size_t i = 0) {
    const auto m = msg(out, i);
    CHECK(m.at("type") == "error");
    return std::string(m.at("code").as_string());
}

frame::roster sample_roster() {
    frame::roster r;
    r.version = 7;
    r.display_name = "Alice";
    r.groups = {{"g1", "Friends"}};
    r.entries.push_back({bob, "Bob", 0xb, "c-bob", {"g1"}, {}});
    return r;
}

struct tester {
    fake_services svc;
    wsjson::limits lim;
    wsjson::connection c;

    explicit tester(wsjson::limits l = {}) : lim(l), c(svc, lim) {}

    frame::output in(std::string_view text) { return c.on_message(text); }
    frame::output answer(const frame::frame& request, frame::body b) {
        return c.on_frame(frame::frame{request.corr, request.object, {}, std::move(b)});
    }
    frame::output publish(std::string object, std::string sender, frame::body b) {
        return c.on_frame(frame::frame{0, std::move(object), std::move(sender), std::move(b)});
    }

    // Logs Alice in by password, with Bob online in the initial burst.
    json::object login() {
        auto out = in(R"({"type":"login","id":1,"version":1,"handle":"Alice@Example.com","password":"pw"})");
        REQUIRE(out.frames.empty());
        REQUIRE(svc.checks.size() == 1);
        CHECK(svc.checks[0].first == alice);
        out = c.on_password_checked(alice, wsjson::password_check::ok);
        REQUIRE(out.frames.size() == 3);
        CHECK(out.watch == std::vector<std::string>{"user:" + alice});
        const auto& h = body<frame::hello>(out.frames[0]);
        CHECK(h.protocol == frame::client_protocol::wsjson);
        CHECK(h.dialect == 1);
        CHECK(h.user == alice);
        endpoint = h.endpoint;
        body<frame::roster_get>(out.frames[1]);
        CHECK(body<frame::presence_set>(out.frames[2]).presence.state == frame::status::online);
        frame::presence_info bp;
        bp.state = frame::status::away;
        bp.display_name = "Bob";
        bp.personal_message = "out";
        CHECK(answer(out.frames[2], frame::presence_update{bob, true, bp, 0}).messages.empty());
        CHECK(answer(out.frames[0], frame::ack{}).messages.empty());
        CHECK(answer(out.frames[1], sample_roster()).messages.empty());
        const auto done = answer(out.frames[2], frame::ack{});
        REQUIRE(c.logged_in());
        const auto reply = msg(done);
        CHECK(reply.at("type") == "reply");
        CHECK(reply.at("id") == 1);
        return reply.at("result").as_object();
    }

    // Opens a chat with Bob: returns the room's object id.
    std::string open_chat() {
        auto out = in(R"({"type":"chat_open","id":"c","with":["bob@example.com"]})");
        REQUIRE(out.frames.size() == 1);
        const std::string room = out.frames[0].object;
        CHECK(body<frame::room_create>(out.frames[0]).policy == frame::room_policy::invite_only);
        out = answer(out.frames[0], frame::ack{});
        CHECK(out.watch == std::vector<std::string>{room});
        REQUIRE(out.frames.size() == 1);
        CHECK(body<frame::room_join>(out.frames[0]).who.protocol == frame::client_protocol::wsjson);
        out = answer(out.frames[0], frame::room_members{});
        REQUIRE(out.frames.size() == 1);
        CHECK(body<frame::room_invite>(out.frames[0]).user == bob);
        out = answer(out.frames[0], frame::ack{});
        const auto r = msg(out).at("result").as_object();
        CHECK(r.at("invited").as_array().size() == 1);
        CHECK(r.at("room") == json::value(room.substr(5)));
        return room;
    }

    std::string endpoint;
};

frame::stored_message stored(std::uint64_t seq, std::string text) {
    return frame::stored_message{seq, bob, "ep9/" + std::to_string(seq), 1700000000000 + seq, std::move(text), {}, {}};
}

}  // namespace

TEST_CASE("login by password: hello, roster and presence, then one reply with the roster") {
    tester t;
    const auto r = t.login();
    CHECK(r.at("version") == 1);
    CHECK(r.at("handle") == json::value(alice));
    CHECK(r.at("token") == json::value("tok:" + alice));
    CHECK(r.at("session") == json::value(t.endpoint));
    CHECK(r.at("display_name") == "Alice");
    CHECK(r.at("status") == "online");
    CHECK(r.at("privacy").at("default") == "allow");
    const auto& contacts = r.at("roster").at("contacts").as_array();
    REQUIRE(contacts.size() == 1);
    CHECK(contacts[0].at("handle") == json::value(bob));
    CHECK(contacts[0].at("status") == "away");
    CHECK(contacts[0].at("personal_message") == "out");
    CHECK(contacts[0].at("lists") == json::parse(R"(["forward","allow","reverse"])"));
    CHECK(r.at("roster").at("groups").at(0).at("name") == "Friends");
}

TEST_CASE("a wrong password is an error and a 1008 close; a stale answer is ignored") {
    tester t;
    t.in(R"({"type":"login","id":1,"version":1,"handle":"alice@example.com","password":"x"})");
    CHECK(t.c.on_password_checked(bob, wsjson::password_check::ok).frames.empty());
    const auto out = t.c.on_password_checked(alice, wsjson::password_check::rejected);
    CHECK(code_of(out) == "unauthenticated");
    CHECK(out.close);
    CHECK(out.close_code == 1008);
    CHECK(t.c.on_closed().frames.empty());  // no endpoint to say goodbye for
}

TEST_CASE("a login the gateway could not check is an error, not a close; the client may log in again") {
    tester t;
    t.in(R"({"type":"login","id":1,"version":1,"handle":"alice@example.com","password":"x"})");
    const auto busy = t.c.on_password_checked(alice, wsjson::password_check::unavailable);
    CHECK(code_of(busy) == "backend_unavailable");
    CHECK_FALSE(busy.close);
    t.in(R"({"type":"login","id":2,"version":1,"handle":"alice@example.com","password":"x"})");
    REQUIRE(t.svc.checks.size() == 2);
    CHECK(t.c.on_password_checked(alice, wsjson::password_check::ok).frames.size() == 3);
}

TEST_CASE("login by token, good and bad") {
    tester t;
    auto out = t.in(R"({"type":"login","id":1,"version":1,"token":"tok:alice@example.com","status":"busy"})");
    REQUIRE(out.frames.size() == 3);
    CHECK(body<frame::presence_set>(out.frames[2]).presence.state == frame::status::busy);
    CHECK(t.svc.checks.empty());

    tester u;
    out = u.in(R"({"type":"login","id":1,"version":1,"token":"forged"})");
    CHECK(code_of(out) == "unauthenticated");
    CHECK(out.close_code == 1008);
}

TEST_CASE("login refusals: version, fields, twice, a refused hello") {
    tester t;
    CHECK(code_of(t.in(R"({"type":"login","id":1,"handle":"a@b.c","password":"p"})")) == "missing_field");
    CHECK(code_of(t.in(R"({"type":"login","id":1,"version":2,"handle":"a@b.c","password":"p"})")) ==
          "unsupported_version");
    CHECK(code_of(t.in(R"({"type":"login","id":1,"version":1,"handle":"nobody","password":"p"})")) == "invalid_text");
    CHECK(code_of(t.in(R"({"type":"login","id":1,"version":1,"handle":"a@b.c"})")) == "missing_field");
    CHECK(code_of(t.in(R"({"type":"login","id":1,"version":1,"token":"tok:a@b.c","status":"offline"})")) == "bad_field");
    CHECK(code_of(t.in(R"({"type":"presence","id":2,"status":"away"})")) == "not_logged_in");

    auto out = t.in(R"({"type":"login","id":1,"version":1,"token":"tok:a@b.c"})");
    REQUIRE(out.frames.size() == 3);
    CHECK(code_of(t.in(R"({"type":"login","id":3,"version":1,"token":"tok:a@b.c"})")) == "already_logged_in");
    t.answer(out.frames[0], frame::error{error_code::unknown_object, "no such user"});
    t.answer(out.frames[1], frame::error{error_code::unknown_object, "no such user"});
    const auto end = t.answer(out.frames[2], frame::error{error_code::unknown_object, "no such user"});
    CHECK(code_of(end) == "unknown_object");
    CHECK(end.close_code == 1008);
    CHECK(end.unwatch == std::vector<std::string>{"user:a@b.c"});
}

TEST_CASE("a connection without services refuses logins but answers ping") {
    wsjson::connection c;
    CHECK(code_of(c.on_message(R"({"type":"login","id":1,"version":1,"handle":"a@b.c","password":"p"})")) ==
          "unsupported");
    const auto pong = msg(c.on_message(R"({"type":"ping","id":"p1"})"));
    CHECK(pong.at("type") == "reply");
    CHECK(pong.at("id") == "p1");
    const auto bye = c.on_shutdown();
    CHECK(bye.close_code == 1001);
    CHECK(bye.close_reason == wsjson::connection::shutdown_reason);
}

TEST_CASE("bad input: each kind has its answer") {
    wsjson::limits lim;
    lim.payload_bytes = 200;
    lim.message_bytes = 10;
    tester t(lim);
    CHECK(code_of(t.in("not json")) == "bad_json");
    CHECK(code_of(t.in("[1,2]")) == "bad_json");
    CHECK(code_of(t.in(R"({"id":1})")) == "missing_field");
    CHECK(code_of(t.in(R"({"type":5})")) == "bad_field");
    CHECK(code_of(t.in(R"({"type":"ping","id":-1})")) == "bad_field");
    CHECK(code_of(t.in(R"({"type":"ping","id":{}})")) == "bad_field");
    const auto unknown = msg(t.in(R"({"type":"frobnicate","id":9})"));
    CHECK(unknown.at("code") == "unknown_type");
    CHECK(unknown.at("id") == 9);
    CHECK(unknown.at("request") == "frobnicate");

    t.login();
    CHECK(code_of(t.in(R"({"type":"presence","id":2,"status":3})")) == "bad_field");
    CHECK(code_of(t.in(R"({"type":"presence","id":2,"status":"offline"})")) == "bad_field");
    CHECK(code_of(t.in(R"({"type":"send","id":2,"room":"r"})")) == "missing_field");
    CHECK(code_of(t.in(R"({"type":"send","id":2,"room":"r","text":"12345678901"})")) == "oversize");
    CHECK(code_of(t.in(R"({"type":"send","id":2,"room":"r","text":"hi"})")) == "not_member");
    CHECK(code_of(t.in(R"({"type":"send","id":2,"room":"a b","text":"hi"})")) == "bad_field");

    SECTION("oversize message: 1009") {
        const auto out = t.in(std::string(201, ' '));
        CHECK(out.close);
        CHECK(out.close_code == 1009);
        // The connection is over: the codec already left and says nothing more.
        CHECK(t.in("{}").messages.empty());
    }
    SECTION("invalid UTF-8: 1007") {
        const auto out = t.in("{\"type\":\"ping\",\"x\":\"\xc3\x28\"}");
        CHECK(out.close_code == 1007);
    }
    SECTION("binary: 1003") {
        const auto out = t.c.on_binary("\x01\x02");
        CHECK(out.close_code == 1003);
        CHECK(!out.close_reason.empty());
    }
}

TEST_CASE("floods: rate_limited errors, then a 1008 close") {
    wsjson::limits lim;
    lim.rate_per_second = 1;
    lim.rate_burst = 2;
    lim.rate_strikes = 3;
    tester t(lim);
    CHECK(msg(t.in(R"({"type":"ping","id":1})")).at("type") == "reply");
    CHECK(msg(t.in(R"({"type":"ping","id":2})")).at("type") == "reply");
    CHECK(code_of(t.in(R"({"type":"ping","id":3})")) == "rate_limited");
    t.svc.now += 1000;  // one message refilled
    CHECK(msg(t.in(R"({"type":"ping","id":4})")).at("type") == "reply");
    CHECK(code_of(t.in(R"({"type":"ping","id":5})")) == "rate_limited");
    CHECK(code_of(t.in(R"({"type":"ping","id":6})")) == "rate_limited");
    const auto out = t.in(R"({"type":"ping","id":7})");
    CHECK(out.close_code == 1008);
}

TEST_CASE("requests in flight are bounded") {
    wsjson::limits lim;
    lim.max_pending = 2;
    tester t(lim);
    t.login();
    CHECK(t.in(R"({"type":"presence","id":2,"status":"away"})").frames.size() == 1);
    CHECK(t.in(R"({"type":"presence","id":3,"status":"busy"})").frames.size() == 1);
    CHECK(code_of(t.in(R"({"type":"presence","id":4,"status":"idle"})")) == "rate_limited");
}

TEST_CASE("presence and profile") {
    tester t;
    t.login();
    auto out = t.in(R"({"type":"presence","id":2,"status":"be_right_back"})");
    REQUIRE(out.frames.size() == 1);
    const auto& p = body<frame::presence_set>(out.frames[0]).presence;
    CHECK(p.state == frame::status::be_right_back);
    CHECK(p.endpoint == t.endpoint);
    const auto r = msg(t.answer(out.frames[0], frame::ack{}));
    CHECK(r.at("id") == 2);
    CHECK(r.at("result").as_object().empty());

    out = t.in(R"({"type":"profile","id":3,"display_name":"Ali","personal_message":"hi"})");
    const auto& ps = body<frame::profile_set>(out.frames[0]);
    CHECK(ps.fields == (frame::profile_bits::display_name | frame::profile_bits::personal_message));
    CHECK(ps.display_name == "Ali");
    CHECK(msg(t.answer(out.frames[0], frame::ack{})).at("type") == "reply");
    CHECK(code_of(t.in(R"({"type":"profile","id":4})")) == "missing_field");
    CHECK(code_of(t.answer(t.in(R"({"type":"profile","id":5,"current_media":""})").frames[0],
                           frame::error{error_code::malformed, "no"})) == "malformed");
}

TEST_CASE("contacts: add onto forward and allow, remove, rename, block, unblock") {
    tester t;
    t.login();
    auto out = t.in(R"({"type":"contact_add","id":2,"handle":"carol@example.com","display_name":"Carol"})");
    REQUIRE(out.frames.size() == 2);
    const auto& fl = body<frame::roster_change>(out.frames[0]);
    CHECK((fl.op == frame::change_op::add && fl.which == frame::list::forward && fl.display_name == "Carol"));
    CHECK(body<frame::roster_change>(out.frames[1]).which == frame::list::allow);
    frame::roster_change done = fl;
    done.version = 8;
    done.contact_id = "c-carol";
    CHECK(t.answer(out.frames[0], done).messages.empty());
    // The allow step's refusal does not fail the add.
    const auto r = msg(t.answer(out.frames[1], frame::error{error_code::not_allowed, "blocked"}));
    CHECK(r.at("result").at("contact_id") == "c-carol");
    CHECK(r.at("result").at("version") == 8);

    out = t.in(R"({"type":"contact_add","id":3,"handle":"bob@example.com"})");
    CHECK(code_of(t.answer(out.frames[0], frame::error{error_code::already_on_list, "there"}).messages.empty()
                      ? t.answer(out.frames[1], frame::ack{})
                      : frame::output{}) == "already_on_list");

    out = t.in(R"({"type":"contact_remove","id":4,"handle":"bob@example.com"})");
    CHECK(body<frame::roster_change>(out.frames[0]).op == frame::change_op::remove);
    out = t.in(R"({"type":"contact_rename","id":5,"handle":"bob@example.com","display_name":"Bobby"})");
    CHECK(body<frame::roster_change>(out.frames[0]).op == frame::change_op::rename);

    out = t.in(R"({"type":"block","id":6,"handle":"bob@example.com"})");
    REQUIRE(out.frames.size() == 2);
    const auto& leave_al = body<frame::roster_change>(out.frames[0]);
    CHECK((leave_al.op == frame::change_op::remove && leave_al.which == frame::list::allow));
    const auto& join_bl = body<frame::roster_change>(out.frames[1]);
    CHECK((join_bl.op == frame::change_op::add && join_bl.which == frame::list::block));
    out = t.in(R"({"type":"unblock","id":7,"handle":"bob@example.com"})");
    CHECK(body<frame::roster_change>(out.frames[0]).which == frame::list::block);
    CHECK(body<frame::roster_change>(out.frames[1]).which == frame::list::allow);
}

TEST_CASE("groups and privacy") {
    tester t;
    t.login();
    auto out = t.in(R"({"type":"group_add","id":2,"name":"Work"})");
    CHECK(body<frame::group_change>(out.frames[0]).target.name == "Work");
    const auto r = msg(t.answer(out.frames[0], frame::group_change{frame::change_op::add, {"g2", "Work"}, 9}));
    CHECK(r.at("result").at("group").at("id") == "g2");
    out = t.in(R"({"type":"group_rename","id":3,"group":"g2","name":"Job"})");
    CHECK(body<frame::group_change>(out.frames[0]).op == frame::change_op::rename);
    out = t.in(R"({"type":"group_remove","id":4,"group":"g2"})");
    CHECK(body<frame::group_change>(out.frames[0]).op == frame::change_op::remove);

    out = t.in(R"({"type":"privacy","id":5,"default":"block"})");
    const auto& p = body<frame::privacy_set>(out.frames[0]);
    CHECK(p.privacy == frame::privacy_default::block);
    CHECK(p.prompt == frame::add_prompt::prompt);  // unchanged from the roster
    CHECK(code_of(t.in(R"({"type":"privacy","id":6,"default":"maybe"})")) == "bad_field");
    CHECK(code_of(t.in(R"({"type":"privacy","id":6,"prompt":"yes"})")) == "bad_field");
}

TEST_CASE("published presence and list notices become events") {
    tester t;
    t.login();
    frame::presence_info p;
    p.state = frame::status::out_to_lunch;
    auto e = msg(t.publish("user:" + alice, bob, frame::presence_update{bob, false, p, frame::profile_bits::status}));
    CHECK(e.at("type") == "presence");
    CHECK(e.at("status") == "out_to_lunch");
    CHECK(e.at("display_name") == json::value(bob));
    frame::roster_change rc;
    rc.which = frame::list::reverse;
    rc.handle = "dave@example.com";
    rc.version = 12;
    e = msg(t.publish("user:" + alice, "dave@example.com", rc));
    CHECK(e.at("type") == "roster_change");
    CHECK(e.at("list") == "reverse");
    CHECK(e.at("op") == "add");
}

TEST_CASE("published during login follows the login reply") {
    tester t;
    auto out = t.in(R"({"type":"login","id":1,"version":1,"token":"tok:alice@example.com"})");
    frame::presence_info p;
    p.state = frame::status::busy;
    CHECK(t.publish("user:" + alice, bob, frame::presence_update{bob, false, p, 0}).messages.empty());
    t.answer(out.frames[0], frame::ack{});
    t.answer(out.frames[1], sample_roster());
    const auto done = t.answer(out.frames[2], frame::ack{});
    REQUIRE(done.messages.size() == 2);
    CHECK(msg(done, 0).at("type") == "reply");
    CHECK(msg(done, 1).at("status") == "busy");
}

TEST_CASE("chat: open, send, acked with the room's seq, and what the room publishes") {
    tester t;
    t.login();
    const std::string room = t.open_chat();
    const std::string id(room.substr(5));

    auto out = t.in(R"({"type":"send","id":5,"room":")" + id +
                    R"(","text":"hello","client_id":"m1","format":{"font":"Arial","bold":true,"color":"#ff0000"}})");
    REQUIRE(out.frames.size() == 1);
    const auto& m = body<frame::room_message>(out.frames[0]);
    CHECK(m.text == "hello");
    CHECK(m.format.font == "Arial");
    CHECK(m.format.effects == "B");
    CHECK(m.format.color == 0xff0000);
    CHECK(wsjson::client_id_of(alice, m.message_id) == "m1");
    CHECK(wsjson::client_id_of(bob, m.message_id).empty());
    // No reply before the room's durable ack.
    const auto acked = msg(t.answer(out.frames[0], frame::ack{42}));
    CHECK(acked.at("result").at("seq") == 42);
    out = t.in(R"({"type":"send","id":6,"room":")" + id + R"(","text":"again"})");
    CHECK(code_of(t.answer(out.frames[0], frame::error{error_code::not_allowed, "everyone blocks you"})) ==
          "not_allowed");
    CHECK(code_of(t.in(R"({"type":"send","id":7,"room":")" + id + R"(","text":"x","format":{"color":"red"}})")) ==
          "bad_field");

    // Bob joins, writes, types, nudges.
    auto e = msg(t.publish(room, bob, frame::room_join{{bob, "ep9", "Bob", 0, frame::client_protocol::msnp}}));
    CHECK(e.at("type") == "joined");
    CHECK(e.at("protocol") == "msnp");
    frame::room_message in;
    in.seq = 43;
    in.text = "hi alice";
    in.timestamp_ms = 5;
    e = msg(t.publish(room, bob, in));
    CHECK(e.at("type") == "message");
    CHECK(e.at("seq") == 43);
    CHECK(e.at("from_name") == "Bob");
    CHECK(!e.contains("format"));
    CHECK(t.publish(room, bob, in).messages.empty());  // a seq already delivered
    in.seq = 44;
    in.withheld_from = {alice};
    CHECK(t.publish(room, bob, in).messages.empty());  // Alice blocks Bob
    CHECK(msg(t.publish(room, bob, frame::room_typing{true, {}})).at("type") == "typing");
    CHECK(t.publish(room, alice, frame::room_typing{true, {}}).messages.empty());
    CHECK(msg(t.publish(room, bob, frame::room_nudge{})).at("type") == "nudge");
    CHECK(t.publish(room, bob, frame::room_nudge{{alice}}).messages.empty());

    // MSNP-only content: a readable notice, once per sender and kind.
    frame::room_opaque p2p{frame::client_protocol::msnp, "application/x-msnmsgrp2p", {std::string("\0\x01\xff", 3)}, {}};
    e = msg(t.publish(room, bob, p2p));
    CHECK(e.at("type") == "notice");
    CHECK(e.at("text") == "sent a file, a picture or a wink that this client cannot show");
    CHECK(t.publish(room, bob, p2p).messages.empty());
    t.svc.now += 60000;
    CHECK(t.publish(room, bob, p2p).messages.size() == 1);

    out = t.in(R"({"type":"typing","room":")" + id + R"(","active":false})");
    CHECK(!body<frame::room_typing>(out.frames[0]).active);
    CHECK(t.answer(out.frames[0], frame::ack{}).messages.empty());  // no id: no reply
    out = t.in(R"({"type":"nudge","room":")" + id + R"("})");
    CHECK(code_of(t.answer(out.frames[0], frame::error{error_code::not_member, "gone"})) == "not_member");
    out = t.in(R"({"type":"invite","id":8,"room":")" + id + R"(","handle":"carol@example.com"})");
    CHECK(body<frame::room_invite>(out.frames[0]).user == "carol@example.com");

    e = msg(t.publish(room, bob, frame::room_leave{bob, "ep9", frame::leave_reason::dropped}));
    CHECK(e.at("type") == "left");
    CHECK(e.at("reason") == "dropped");

    out = t.in(R"({"type":"leave","id":9,"room":")" + id + R"("})");
    CHECK(out.unwatch == std::vector<std::string>{room});
    CHECK(body<frame::room_leave>(out.frames[0]).reason == frame::leave_reason::left);
    CHECK(t.publish(room, bob, in).messages.empty());
}

TEST_CASE("an invitation, accepted: join, members, history, then live messages without repeats") {
    tester t;
    t.login();
    auto e = msg(t.publish("user:" + alice, bob, frame::room_invite{alice, "Bob", "room:sb7"}));
    CHECK(e.at("type") == "invite");
    CHECK(e.at("room") == "sb7");
    CHECK(e.at("from_name") == "Bob");

    auto out = t.in(R"({"type":"join","id":3,"room":"sb7"})");
    CHECK(out.watch == std::vector<std::string>{"room:sb7"});
    out = t.answer(out.frames[0], frame::room_members{{{bob, "ep9", "Bob", 0, frame::client_protocol::msnp}}, {}});
    CHECK(body<frame::room_history_get>(out.frames[0]).after_seq == 0);
    // Published while the history is in flight: held, then deduplicated.
    frame::room_message live;
    live.seq = 2;
    live.text = "second";
    CHECK(t.publish("room:sb7", bob, live).messages.empty());
    live.seq = 3;
    live.text = "third";
    t.publish("room:sb7", bob, live);
    const auto done = t.answer(out.frames[0], frame::room_history{{stored(1, "first"), stored(2, "second")}, 2, {}});
    REQUIRE(done.messages.size() == 2);
    const auto r = msg(done, 0).at("result").as_object();
    CHECK(r.at("messages").as_array().size() == 2);
    CHECK(r.at("members").as_array().size() == 2);
    CHECK(r.at("reset").is_null());
    CHECK(msg(done, 1).at("seq") == 3);
    CHECK(code_of(t.in(R"({"type":"join","id":4,"room":"sb7"})")) == "already_on_list");

    out = t.in(R"({"type":"history","id":5,"room":"sb7","before_seq":2,"limit":500})");
    const auto& h = body<frame::room_history_get>(out.frames[0]);
    CHECK(h.before_seq == 2);
    CHECK(h.max_count == 100);
    CHECK(msg(t.answer(out.frames[0], frame::room_history{{stored(1, "first")}, 3, {}})).at("result").at("last_seq") == 3);

    out = t.in(R"({"type":"join","id":6,"room":"gone"})");
    CHECK(code_of(t.answer(out.frames[0], frame::error{error_code::unknown_object, "no room"})) == "unknown_object");
}

TEST_CASE("named rooms the settings list are created on first use and joined by name; no others") {
    wsjson::limits lim;
    lim.named_rooms = {"lobby"};
    tester t(lim);
    t.login();
    CHECK(code_of(t.in(R"({"type":"join","id":9,"name":"made-up"})")) == "unknown_object");
    auto out = t.in(R"({"type":"join","id":2,"name":"Lobby"})");
    const auto& c = body<frame::room_create>(out.frames[0]);
    CHECK(c.policy == frame::room_policy::named);
    CHECK(out.frames[0].object == "room:name:lobby");
    out = t.answer(out.frames[0], frame::error{error_code::already_on_list, "exists"});
    out = t.answer(out.frames[0], frame::room_members{});
    const auto r = msg(t.answer(out.frames[0], frame::room_history{{}, 0, {}})).at("result");
    CHECK(r.at("room") == "name:lobby");
    CHECK(r.at("name") == "lobby");
    CHECK(code_of(t.in(R"({"type":"join","id":3,"name":"no spaces"})")) == "bad_field");
}

namespace {

frame::room_history history_of(std::vector<frame::stored_message> messages, std::uint64_t last,
                               std::string epoch = "e1") {
    frame::room_history h{std::move(messages), last, {}};
    if (!epoch.empty()) h.epoch = {std::move(epoch)};
    return h;
}

frame::room_members members_of(std::string epoch = "e1") {
    frame::room_members m{{{bob, "ep9", "Bob", 0, frame::client_protocol::msnp}}, {}};
    if (!epoch.empty()) m.epoch = {std::move(epoch)};
    return m;
}

// A client back by token: logged in, with no room yet.
struct resumed : tester {
    resumed() {
        auto out = in(R"({"type":"login","id":1,"version":1,"token":"tok:alice@example.com"})");
        endpoint = body<frame::hello>(out.frames[0]).endpoint;
        answer(out.frames[0], frame::ack{});
        answer(out.frames[1], sample_roster());
        answer(out.frames[2], frame::ack{});
        REQUIRE(c.logged_in());
    }
    // Sends the join; answers it with `members`; returns the history request.
    frame::frame join(const std::string& fields, frame::room_members members) {
        auto out = in(R"({"type":"join","id":2,"room":"sb7")" + fields + "}");
        REQUIRE(out.frames.size() == 1);
        out = answer(out.frames[0], std::move(members));
        REQUIRE(out.frames.size() == 1);
        return out.frames[0];
    }
};

// since_seq and epoch as the client sends them, what the room answers;
// the join's result.
json::object resume(std::uint64_t since, const std::string& epoch, frame::room_history h,
                    std::string room_epoch = "e1") {
    resumed t;
    std::string fields = ",\"since_seq\":" + std::to_string(since);
    if (!epoch.empty()) fields += ",\"epoch\":\"" + epoch + "\"";
    const auto get = t.join(fields, members_of(std::move(room_epoch)));
    CHECK(body<frame::room_history_get>(get).after_seq == since);
    return msg(t.answer(get, std::move(h))).at("result").as_object();
}

std::vector<std::uint64_t> seqs(const json::object& result) {
    std::vector<std::uint64_t> out;
    for (const auto& m : result.at("messages").as_array()) out.push_back(m.at("seq").to_number<std::uint64_t>());
    return out;
}

}  // namespace

TEST_CASE("resume: exactly the missed messages, or a reset that says why") {
    auto r = resume(5, "e1", history_of({stored(6, "a"), stored(7, "b")}, 7));
    CHECK(r.at("reset").is_null());
    CHECK(seqs(r) == std::vector<std::uint64_t>{6, 7});
    CHECK(r.at("last_seq") == 7);
    CHECK(r.at("epoch") == "e1");
    CHECK(resume(7, "e1", history_of({}, 7)).at("reset").is_null());
    CHECK(resume(5, "e1", history_of({stored(9, "a")}, 9)).at("reset") == "history_truncated");
    CHECK(resume(5, "e1", history_of({}, 9)).at("reset") == "history_truncated");
    // A client that kept no epoch, and a backend that names none: seqs alone.
    CHECK(resume(5, "", history_of({stored(6, "a")}, 6)).at("reset").is_null());
    r = resume(5, "e1", history_of({stored(6, "a")}, 6, ""), "");
    CHECK(r.at("reset").is_null());
    CHECK(r.at("epoch") == "");
}

TEST_CASE("resume into a room created again: epoch_changed, and its whole history") {
    SECTION("the join names another epoch: the history is asked from the start") {
        resumed t;
        const auto get = t.join(R"(,"since_seq":5,"epoch":"e1")", members_of("e2"));
        CHECK(body<frame::room_history_get>(get).after_seq == 0);
        const auto r = msg(t.answer(get, history_of({stored(1, "x"), stored(2, "y"), stored(3, "z"),
                                                     stored(4, "w"), stored(5, "v"), stored(6, "u")},
                                                    6, "e2")))
                           .at("result")
                           .as_object();
        // Past since_seq already, yet not the messages the client counted.
        CHECK(r.at("reset") == "epoch_changed");
        CHECK(r.at("epoch") == "e2");
        CHECK(seqs(r) == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6});
    }
    SECTION("only the history tells: asked again from the start") {
        resumed t;
        auto get = t.join(R"(,"since_seq":2,"epoch":"e1")", members_of("e1"));
        CHECK(body<frame::room_history_get>(get).after_seq == 2);
        auto out = t.answer(get, history_of({stored(3, "c")}, 3, "e2"));
        CHECK(out.messages.empty());
        REQUIRE(out.frames.size() == 1);
        CHECK(body<frame::room_history_get>(out.frames[0]).after_seq == 0);
        // Published meanwhile: held, and given once after the result.
        frame::room_message live;
        live.seq = 4;
        live.text = "live";
        CHECK(t.publish("room:sb7", bob, live).messages.empty());
        out = t.answer(out.frames[0], history_of({stored(1, "a"), stored(2, "b"), stored(3, "c")}, 3, "e2"));
        REQUIRE(out.messages.size() == 2);
        const auto r = msg(out, 0).at("result").as_object();
        CHECK(r.at("reset") == "epoch_changed");
        CHECK(seqs(r) == std::vector<std::uint64_t>{1, 2, 3});
        CHECK(msg(out, 1).at("seq") == 4);
    }
    SECTION("without epochs, seqs that went backwards") {
        resumed t;
        const auto get = t.join(R"(,"since_seq":50)", members_of(""));
        auto out = t.answer(get, history_of({}, 1, ""));
        REQUIRE(out.frames.size() == 1);
        CHECK(body<frame::room_history_get>(out.frames[0]).after_seq == 0);
        const auto r = msg(t.answer(out.frames[0], history_of({stored(1, "new room")}, 1, ""))).at("result").as_object();
        CHECK(r.at("reset") == "epoch_changed");
        CHECK(seqs(r) == std::vector<std::uint64_t>{1});
        // Live messages continue from the new history's seqs.
        frame::room_message live;
        live.seq = 1;
        CHECK(t.publish("room:sb7", bob, live).messages.empty());
        live.seq = 2;
        CHECK(msg(t.publish("room:sb7", bob, live)).at("seq") == 2);
    }
}

TEST_CASE("history leaves out what the room withholds from the user, without seeing a gap") {
    resumed t;
    const auto get = t.join(R"(,"since_seq":5,"epoch":"e1")", members_of());
    auto blocked = stored(6, "from someone Alice blocks");
    blocked.withheld_from = {alice};
    auto out = t.answer(get, history_of({blocked, stored(7, "b")}, 7));
    const auto r = msg(out).at("result").as_object();
    CHECK(r.at("reset").is_null());
    CHECK(seqs(r) == std::vector<std::uint64_t>{7});
    // Only withheld messages after since_seq: nothing to show, nothing lost.
    resumed u;
    const auto r2 = msg(u.answer(u.join(R"(,"since_seq":5,"epoch":"e1")", members_of()), history_of({blocked}, 6)))
                        .at("result")
                        .as_object();
    CHECK(r2.at("reset").is_null());
    CHECK(r2.at("messages").as_array().empty());
    // Seen as delivered: a late publication of it stays unseen.
    frame::room_message late;
    late.seq = 6;
    late.withheld_from = {alice};
    CHECK(u.publish("room:sb7", bob, late).messages.empty());

    out = t.in(R"({"type":"history","id":5,"room":"sb7"})");
    const auto h = msg(t.answer(out.frames[0], history_of({stored(1, "a"), blocked, stored(7, "b")}, 7)));
    CHECK(seqs(h.at("result").as_object()) == std::vector<std::uint64_t>{1, 7});
}

TEST_CASE("a user who resumes is seen neither leaving nor joining") {
    tester t;
    t.login();
    const std::string room = t.open_chat();
    CHECK(msg(t.publish(room, bob, frame::room_join{{bob, "ep9", "Bob", 0, frame::client_protocol::wsjson}}))
              .at("type") == "joined");
    // Bob's connection dropped; his new one takes his place over (the room
    // publishes the new endpoint, then the old one leaving).
    CHECK(t.publish(room, bob, frame::room_join{{bob, "ep10", "Bob", 0, frame::client_protocol::wsjson}})
              .messages.empty());
    CHECK(t.publish(room, bob, frame::room_leave{bob, "ep9", frame::leave_reason::dropped}).messages.empty());
    // He leaves for good only when his last endpoint does.
    const auto e = msg(t.publish(room, bob, frame::room_leave{bob, "ep10", frame::leave_reason::dropped}));
    CHECK(e.at("type") == "left");
    CHECK(e.at("reason") == "dropped");

    // Alice's own resume: her old endpoint leaving is not news to her.
    resumed a;
    auto out = a.in(R"({"type":"join","id":2,"room":"sb7","since_seq":1,"epoch":"e1"})");
    CHECK(a.publish("room:sb7", alice, frame::room_join{{alice, a.endpoint, "Alice", 0,
                                                         frame::client_protocol::wsjson}})
              .messages.empty());
    CHECK(a.publish("room:sb7", alice, frame::room_leave{alice, "old", frame::leave_reason::dropped}).messages.empty());
    out = a.answer(out.frames[0], members_of());
    const auto done = a.answer(out.frames[0], history_of({}, 1));
    REQUIRE(done.messages.size() == 1);  // the result, and no event
    CHECK(msg(done).at("result").at("reset").is_null());
}

TEST_CASE("chat_open reports the new room's epoch") {
    tester t;
    t.login();
    auto out = t.in(R"({"type":"chat_open","id":"c","with":["bob@example.com"]})");
    out = t.answer(out.frames[0], frame::ack{});
    out = t.answer(out.frames[0], members_of("e7"));
    const auto r = msg(t.answer(out.frames[0], frame::ack{})).at("result").as_object();
    CHECK(r.at("epoch") == "e7");
    CHECK(r.at("last_seq") == 0);
}

TEST_CASE("the login result has the user's own personal message and media") {
    tester t;
    auto out = t.in(R"({"type":"login","id":1,"version":1,"token":"tok:alice@example.com"})");
    t.answer(out.frames[0], frame::ack{});
    auto r = sample_roster();
    r.personal_message = {"at lunch"};
    r.current_media = {"Song - Band"};
    t.answer(out.frames[1], r);
    const auto result = msg(t.answer(out.frames[2], frame::ack{})).at("result").as_object();
    CHECK(result.at("display_name") == "Alice");
    CHECK(result.at("personal_message") == "at lunch");
    CHECK(result.at("current_media") == "Song - Band");

    tester u;
    out = u.in(R"({"type":"login","id":1,"version":1,"token":"tok:alice@example.com"})");
    u.answer(out.frames[0], frame::ack{});
    u.answer(out.frames[1], sample_roster());
    const auto older = msg(u.answer(out.frames[2], frame::ack{})).at("result").as_object();
    CHECK(older.at("personal_message") == "");
    CHECK(older.at("current_media") == "");
}

TEST_CASE("logout, shutdown, close, and a sign-in elsewhere") {
    SECTION("logout") {
        tester t;
        t.login();
        t.open_chat();
        const auto out = t.in(R"({"type":"logout","id":9})");
        CHECK(msg(out).at("type") == "reply");
        REQUIRE(out.frames.size() == 2);
        CHECK(body<frame::room_leave>(out.frames[0]).reason == frame::leave_reason::left);
        CHECK(body<frame::bye>(out.frames[1]).normal);
        CHECK(out.close_code == 1000);
        CHECK(t.c.on_closed().frames.empty());
    }
    SECTION("shutdown then close") {
        tester t;
        t.login();
        const auto out = t.c.on_shutdown();
        CHECK(out.close_code == 1001);
        CHECK(out.close_reason == "server shutting down");
        const auto closed = t.c.on_closed();
        REQUIRE(closed.frames.size() == 1);
        CHECK(body<frame::bye>(closed.frames[0]).code == error_code::shutting_down);
    }
    SECTION("dropped connection leaves its rooms") {
        tester t;
        t.login();
        const std::string room = t.open_chat();
        const auto out = t.c.on_closed();
        REQUIRE(out.frames.size() == 2);
        CHECK(body<frame::room_leave>(out.frames[0]).reason == frame::leave_reason::dropped);
        CHECK(!body<frame::bye>(out.frames[1]).normal);
        CHECK(std::ranges::find(out.unwatch, room) != out.unwatch.end());
    }
    SECTION("the user object ends this endpoint") {
        tester t;
        t.login();
        const auto out = t.publish("user:" + alice, alice, frame::bye{error_code::internal, false, "", t.endpoint});
        CHECK(msg(out).at("type") == "signed_out");
        CHECK(out.close_code == 1000);
        CHECK(t.c.on_closed().frames.empty());
    }
}

TEST_CASE("the presence table maps every status both ways") {
    const std::map<std::string, std::string> spec = {
        {"online", "NLN"},       {"busy", "BSY"},         {"idle", "IDL"},
        {"be_right_back", "BRB"}, {"away", "AWY"},        {"on_the_phone", "PHN"},
        {"out_to_lunch", "LUN"}, {"invisible", "HDN"},    {"offline", "FLN"},
    };
    for (const auto& row : frame::status_table) {
        CHECK(spec.at(std::string(row.wsjson)) == row.msnp);
        CHECK(wsjson::status_name(row.state) == row.wsjson);
        if (row.state != frame::status::offline) CHECK(wsjson::settable_status(row.wsjson) == row.state);
    }
    CHECK(!wsjson::settable_status("offline"));
    CHECK(std::size(frame::status_table) == frame::enum_traits<frame::status>::max_value + 1);
}

TEST_CASE("format objects map onto text_format and back") {
    frame::text_format f{"Comic Sans MS", "BIUS", 0x00ff80, 0, 0, true};
    const auto j = wsjson::format_json(f);
    CHECK(j.at("color") == "#00ff80");
    std::string why;
    const auto back = wsjson::parse_format(j, why);
    REQUIRE(back);
    CHECK(*back == f);
    CHECK(!wsjson::parse_format(json::parse(R"({"bold":1})"), why));
    CHECK(!wsjson::parse_format(json::parse(R"("x")"), why));
}
