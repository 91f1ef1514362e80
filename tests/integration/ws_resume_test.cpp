// Resume (protocols/wsjson/README.md, "Resume") against the real gateway:
// a WebSocket user whose TCP connection drops logs in again by token and
// joins its room with since_seq and epoch, and gets exactly the messages it
// missed, while the others (an MSN Messenger user among them) see nothing
// of it until the grace period runs out. Also a room created again under
// the same id, a send retried after the reconnect, and tokens: expired,
// forged, and issued by another gateway process with the same keys.
//
// Every read is bounded; nothing sleeps to synchronise.
#include "child_process.hpp"
#include "msnp_client.hpp"
#include "ws_client.hpp"

#include "gateway/login/tokens.hpp"

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <csignal>
#include <filesystem>
#include <set>
#include <thread>

using namespace switchyard::test;
namespace json = boost::json;
namespace websocket = boost::beast::websocket;

namespace {

const std::string binary = SWITCHYARD_BINARY;
const std::string alice = "alice@example.com";
const std::string bob = "bob@example.com";
const std::string carol = "carol@example.com";

// One gateway process on its own directory, with the lobby as a named room
// and the given grace period; every gateway here signs and verifies tokens
// with the test's [[keys]].
struct gateway_process : ws_gateway {
    explicit gateway_process(const std::string& rejoin_grace = "60s")
        : ws_gateway(SWITCHYARD_BINARY, "rooms = [\"lobby\"]",
                     "[backends.embedded]\nkind = \"embedded\"\nrejoin_grace = \"" + rejoin_grace + "\"\n") {
        add_user(alice, "secret-alice");
        add_user(bob, "secret-bob");
        add_user(carol, "secret-carol", true);
        start();
    }
};

std::uint64_t seq_of(const json::value& m) { return m.at("seq").to_number<std::uint64_t>(); }

bool is_message(const json::object& o, std::string_view room) {
    return o.at("type") == "message" && o.at("room") == json::value(room);
}

// Whether a message seen after the first `skip` names `user` joining or leaving.
bool saw_membership_change(const ws_client& c, const std::string& user, std::size_t skip) {
    for (std::size_t i = skip; i < c.seen().size(); ++i) {
        const auto& o = c.seen()[i].as_object();
        if ((o.at("type") == "left" || o.at("type") == "joined") && o.at("user") == json::value(user)) return true;
    }
    return false;
}

struct chat {
    std::string room;
    std::string epoch;  // as Bob's join result gave it
};

// Alice opens a chat with Bob (WebSocket) and Carol (MSN Messenger 4,
// MSNP5); both join.
chat open_chat(ws_client& a, ws_client& b, msnp_client& c_ns, std::optional<msnp_client>& c_sb) {
    a.send({{"type", "chat_open"}, {"id", 2}, {"with", json::array{bob, carol}}});
    const auto opened = a.reply(2).at("result").as_object();
    REQUIRE(opened.at("invited").as_array().size() == 2);
    const std::string room(opened.at("room").as_string());

    const auto invite = b.event("invite");
    CHECK(invite.at("room") == json::value(room));
    b.send({{"type", "join"}, {"id", 2}, {"room", room}});
    const std::string epoch(b.reply(2).at("result").at("epoch").as_string());
    CHECK(json::value(epoch) == opened.at("epoch"));

    const auto rng = words(c_ns.reply("RNG " + room));
    const auto sb_port = static_cast<unsigned short>(std::stoi(rng.at(2).substr(rng.at(2).rfind(':') + 1)));
    c_sb.emplace(sb_port);
    c_sb->command("ANS 1 " + carol + " " + rng.at(4) + " " + room);
    a.wait([](const json::object& o) { return o.at("type") == "joined" && o.at("user") == json::value(carol); });
    return {room, epoch};
}

}  // namespace

TEST_CASE("a dropped WebSocket user resumes by token: every missed message once, and nobody sees it go",
          "[ws][resume]") {
    gateway_process gw;
    ws_client a(gw.ws_port);
    a.login(alice, "secret-alice");
    ws_client b(gw.ws_port);
    const std::string token(b.login(bob, "secret-bob").at("token").as_string());
    msnp_client carol_ns(gw.msnp_port);
    carol_ns.login(carol, "secret-carol");
    std::optional<msnp_client> carol_sb;
    const chat opened = open_chat(a, b, carol_ns, carol_sb);
    const std::string room = opened.room;
    const std::string epoch = opened.epoch;
    REQUIRE(epoch.size() == 16);

    // A few messages Bob sees live; he keeps the last seq and the epoch.
    std::int64_t id = 10;
    std::uint64_t since = 0;
    for (int i = 0; i < 3; ++i) {
        a.send({{"type", "send"}, {"id", ++id}, {"room", room}, {"text", "live " + std::to_string(i)}});
        const auto seq = a.reply(id).at("result").at("seq").to_number<std::uint64_t>();
        const auto seen = b.wait([&](const json::object& o) { return is_message(o, room) && seq_of(o) == seq; });
        since = seq_of(seen);
    }
    CHECK(since == 3);

    // Bob's connection is reset; Alice writes on, before and while he joins
    // again (from another thread, so some messages race his join).
    const std::size_t alice_saw_before = a.seen().size();
    b.drop(true);
    for (int i = 0; i < 5; ++i) {
        a.send({{"type", "send"}, {"id", ++id}, {"room", room}, {"text", "away " + std::to_string(i)}});
        a.reply(id);
    }
    std::uint64_t last = 0;
    bool all_acked = true;
    std::thread writer([&] {
        for (int i = 0; i < 20 && all_acked; ++i) {
            a.send({{"type", "send"}, {"id", ++id}, {"room", room}, {"text", "racing " + std::to_string(i)}});
            const auto r = a.reply_quietly(id);
            all_acked = r.has_value();
            if (r) last = r->at("result").at("seq").to_number<std::uint64_t>();
        }
    });

    ws_client back(gw.ws_port);
    back.login_token(token);
    back.send({{"type", "join"}, {"id", 2}, {"room", room}, {"since_seq", since}, {"epoch", epoch}});
    const auto result = back.reply(2).at("result").as_object();
    writer.join();
    REQUIRE(all_acked);
    CHECK(result.at("reset").is_null());
    CHECK(result.at("epoch") == json::value(epoch));
    std::vector<std::uint64_t> got;
    std::set<std::string> texts;
    for (const auto& m : result.at("messages").as_array()) {
        got.push_back(seq_of(m));
        texts.insert(std::string(m.at("text").as_string()));
    }
    while (got.empty() || got.back() < last) {
        const auto m = back.wait([&](const json::object& o) { return is_message(o, room); });
        got.push_back(seq_of(m));
        texts.insert(std::string(m.at("text").as_string()));
    }
    // Exactly 4 .. last, each once, in order.
    std::vector<std::uint64_t> expected;
    for (std::uint64_t s = since + 1; s <= last; ++s) expected.push_back(s);
    CHECK(got == expected);
    CHECK(texts.size() == 25);
    CHECK(texts.contains("away 0"));
    CHECK(texts.contains("racing 19"));

    // Bob carries on: the others saw him neither leave nor join again. Carol
    // (MSNP) gets his message with no BYE or JOI before it.
    back.send({{"type", "send"}, {"id", 3}, {"room", room}, {"text", "back again"}});
    const auto back_seq = back.reply(3).at("result").at("seq").to_number<std::uint64_t>();
    a.wait([&](const json::object& o) { return is_message(o, room) && seq_of(o) == back_seq; });
    CHECK_FALSE(saw_membership_change(a, bob, alice_saw_before));
    for (;;) {
        const std::string line = carol_sb->line();
        INFO(line);
        CHECK_FALSE(line.starts_with("BYE"));
        CHECK_FALSE(line.starts_with("JOI"));
        if (line.starts_with("MSG " + bob) && carol_sb->payload().ends_with("back again")) break;
    }
}

TEST_CASE("a send retried after the reconnect gets its original seq and is stored once", "[ws][resume]") {
    gateway_process gw;
    ws_client a(gw.ws_port);
    a.login(alice, "secret-alice");
    ws_client b(gw.ws_port);
    const std::string token(b.login(bob, "secret-bob").at("token").as_string());
    msnp_client carol_ns(gw.msnp_port);
    carol_ns.login(carol, "secret-carol");
    std::optional<msnp_client> carol_sb;
    const std::string room = open_chat(a, b, carol_ns, carol_sb).room;

    // Bob sends, and his connection ends before he reads the reply.
    b.send({{"type", "send"}, {"id", 5}, {"room", room}, {"text", "did this arrive?"}, {"client_id", "c-1"}});
    b.drop(false);
    const auto original = a.wait([&](const json::object& o) { return is_message(o, room) && o.at("from") == json::value(bob); });

    ws_client back(gw.ws_port);
    back.login_token(token);
    back.send({{"type", "join"}, {"id", 2}, {"room", room}, {"since_seq", 0}});
    const auto result = back.reply(2).at("result").as_object();
    const auto& messages = result.at("messages").as_array();
    REQUIRE(messages.size() == 1);
    CHECK(messages[0].at("client_id") == "c-1");
    CHECK(seq_of(messages[0]) == seq_of(original));

    // The retry is answered with the original seq; nothing new is stored.
    back.send({{"type", "send"}, {"id", 3}, {"room", room}, {"text", "did this arrive?"}, {"client_id", "c-1"}});
    CHECK(back.reply(3).at("result").at("seq") == seq_of(original));
    back.send({{"type", "send"}, {"id", 4}, {"room", room}, {"text", "next"}, {"client_id", "c-2"}});
    CHECK(back.reply(4).at("result").at("seq").to_number<std::uint64_t>() == seq_of(original) + 1);
    a.wait([&](const json::object& o) { return is_message(o, room) && o.at("text") == "next"; });
    int copies = 0;
    for (const auto& v : a.seen()) copies += v.at("type") == "message" && v.at("text") == "did this arrive?";
    CHECK(copies == 1);
    back.send({{"type", "history"}, {"id", 6}, {"room", room}});
    CHECK(back.reply(6).at("result").at("messages").as_array().size() == 2);

    // Another user's equal client_id is another message.
    a.send({{"type", "send"}, {"id", 20}, {"room", room}, {"text", "mine"}, {"client_id", "c-1"}});
    CHECK(a.reply(20).at("result").at("seq").to_number<std::uint64_t>() == seq_of(original) + 2);
}

TEST_CASE("when the grace period runs out the others see the dropped user leave", "[ws][resume]") {
    gateway_process gw("300ms");
    ws_client a(gw.ws_port);
    a.login(alice, "secret-alice");
    ws_client b(gw.ws_port);
    const std::string token(b.login(bob, "secret-bob").at("token").as_string());
    msnp_client carol_ns(gw.msnp_port);
    carol_ns.login(carol, "secret-carol");
    std::optional<msnp_client> carol_sb;
    const std::string room = open_chat(a, b, carol_ns, carol_sb).room;

    const auto dropped_at = std::chrono::steady_clock::now();
    b.drop(true);
    const auto left = a.wait([](const json::object& o) { return o.at("type") == "left" && o.at("user") == json::value(bob); });
    CHECK(left.at("reason") == "dropped");
    // Not at once (deadlines count whole milliseconds of the system clock,
    // so the bound leaves room for rounding).
    CHECK(std::chrono::steady_clock::now() - dropped_at >= std::chrono::milliseconds(250));
    // MSN Messenger shows a participant the server dropped: BYE with 1.
    CHECK(carol_sb->reply("BYE " + bob) == "BYE " + bob + " 1");

    // His place is gone: an invite-only room needs a new invitation.
    ws_client back(gw.ws_port);
    back.login_token(token);
    back.send({{"type", "join"}, {"id", 2}, {"room", room}, {"since_seq", 0}});
    const auto refused = back.wait([](const json::object& o) { return o.at("type") == "error"; });
    CHECK(refused.at("code") == "not_allowed");
}

TEST_CASE("a room created again under its id while the client was away: epoch_changed", "[ws][resume]") {
    gateway_process gw;
    std::string token;
    std::string epoch;
    {
        ws_client a(gw.ws_port);
        a.login(alice, "secret-alice");
        ws_client b(gw.ws_port);
        token = std::string(b.login(bob, "secret-bob").at("token").as_string());
        a.send({{"type", "join"}, {"id", 2}, {"name", "lobby"}});
        a.reply(2);
        b.send({{"type", "join"}, {"id", 2}, {"name", "lobby"}});
        epoch = std::string(b.reply(2).at("result").at("epoch").as_string());
        for (int i = 1; i <= 5; ++i) {
            a.send({{"type", "send"}, {"id", 10 + i}, {"room", "name:lobby"}, {"text", "old " + std::to_string(i)}});
            a.reply(10 + i);
        }
        b.wait([](const json::object& o) { return o.at("type") == "message" && o.at("text") == "old 5"; });
        b.drop(true);
    }
    // The room's store is lost while the gateway is down (what an operator
    // deleting the room, or a store restored without it, leaves behind).
    // Named rooms are created again on first use, under the same id.
    gw.stop();
    {
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(gw.database().c_str(), &db) == SQLITE_OK);
        char* err = nullptr;
        const int rc = sqlite3_exec(db,
                                    "DELETE FROM messages WHERE room = 'name:lobby';"
                                    "DELETE FROM room_endpoints WHERE room = 'name:lobby';"
                                    "DELETE FROM room_members WHERE room = 'name:lobby';"
                                    "DELETE FROM room_invites WHERE room = 'name:lobby';"
                                    "DELETE FROM rooms WHERE id = 'name:lobby';",
                                    nullptr, nullptr, &err);
        INFO((err ? err : ""));
        CHECK(rc == SQLITE_OK);
        sqlite3_free(err);
        sqlite3_close(db);
    }
    gw.start();

    // The new lobby gets past Bob's seq before he is back: seqs alone would
    // not tell the two histories apart.
    ws_client a(gw.ws_port);
    a.login(alice, "secret-alice");
    a.send({{"type", "join"}, {"id", 2}, {"name", "lobby"}});
    const auto fresh = a.reply(2).at("result").as_object();
    CHECK(fresh.at("last_seq") == 0);
    CHECK(fresh.at("epoch") != json::value(epoch));
    for (int i = 1; i <= 7; ++i) {
        a.send({{"type", "send"}, {"id", 10 + i}, {"room", "name:lobby"}, {"text", "new " + std::to_string(i)}});
        a.reply(10 + i);
    }

    ws_client back(gw.ws_port);
    back.login_token(token);  // issued by the gateway process before the restart
    back.send({{"type", "join"}, {"id", 2}, {"name", "lobby"}, {"since_seq", 5}, {"epoch", epoch}});
    const auto result = back.reply(2).at("result").as_object();
    CHECK(result.at("reset") == "epoch_changed");
    CHECK(result.at("epoch") == fresh.at("epoch"));
    const auto& messages = result.at("messages").as_array();
    REQUIRE(messages.size() == 7);
    CHECK(messages.front().at("text") == "new 1");
    CHECK(seq_of(messages.front()) == 1);
    CHECK(messages.back().at("text") == "new 7");
}

TEST_CASE("tokens: another gateway's with the same keys works; expired or forged ones do not", "[ws][resume]") {
    gateway_process first;
    gateway_process second;  // its own process and data, the same [[keys]]

    ws_client b(first.ws_port);
    const std::string token(b.login(bob, "secret-bob").at("token").as_string());
    ws_client elsewhere(second.ws_port);
    CHECK(elsewhere.login_token(token).at("handle") == json::value(bob));

    // Tokens made with the test's copy of the keys: one valid (so the
    // refusals below are for what they say), one expired, one tampered
    // with, one signed with another secret.
    const auto now = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                    std::chrono::system_clock::now().time_since_epoch())
                                                    .count());
    switchyard::gateway::token_service keys({switchyard::gateway::config::hmac_key{ws_test_key_id, ws_test_key_secret}});
    const std::string valid = keys.issue_ticket(bob, now);
    const std::string expired = keys.issue_ticket(bob, now - 25ull * 3600 * 1000);  // a 24 h lifetime
    std::string tampered = valid;
    tampered[tampered.size() - 2] = tampered[tampered.size() - 2] == 'A' ? 'B' : 'A';
    switchyard::gateway::token_service other_keys(
        {switchyard::gateway::config::hmac_key{ws_test_key_id, "another-secret-0123456789abcdef!"}});
    const std::string foreign = other_keys.issue_ticket(bob, now);

    ws_client ok(first.ws_port);
    CHECK(ok.login_token(valid).at("handle") == json::value(bob));
    for (const std::string& refused : {expired, tampered, foreign, std::string("pt1.k1.forged.forged")}) {
        INFO(refused);
        ws_client c(first.ws_port);
        c.send({{"type", "login"}, {"id", 1}, {"version", 1}, {"token", refused}});
        const auto error = c.event("error");
        CHECK(error.at("code") == "unauthenticated");
        for (json::value v = c.next(); !v.is_null(); v = c.next()) CHECK(v.at("type") != "reply");
        CHECK(c.error() == websocket::error::closed);
        CHECK(c.close_reason().code == websocket::close_code::policy_error);
    }
}
