// WebSocket clients of the real gateway, in the same conversations as MSN
// Messenger users: a browser user (the JSON protocol over a real WebSocket)
// and an MSNP5 user add each other, see each other's presence and chat
// both ways. Also what the WebSocket port answers to plain HTTP, to an
// upgrade elsewhere than /ws, and to a forged token; and what a member that
// stops reading gets: everything in order once it reads again, or a close
// once its queue is over the limit.
#include "msnp_client.hpp"
#include "ws_client.hpp"

#include <catch2/catch.hpp>

using namespace switchyard::test;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;

namespace {

struct gateway_under_test : ws_gateway {
    gateway_under_test() : ws_gateway(SWITCHYARD_BINARY) {
        add_user("alice@example.com", "secret-alice");
        add_user("bob@example.com", "secret-bob", true);
        start();
    }
};

// Alice in a browser and Bob on MSN Messenger 4 (MSNP5) add each other,
// see each other come online and chat both ways, each message
// acknowledged once durable.
void add_each_other_and_chat(const ws_gateway& gw) {
    ws_client alice(gw.ws_port);
    REQUIRE_FALSE(alice.handshake_error());
    CHECK(alice.response()[beast::http::field::sec_websocket_protocol] == "switchyard.v1");
    alice.send({{"type", "login"}, {"id", 1}, {"version", 1}, {"handle", "alice@example.com"}, {"password", "secret-alice"}});
    const auto login = alice.reply(1);
    CHECK(login.at("result").at("handle") == "alice@example.com");
    CHECK_FALSE(login.at("result").at("token").as_string().empty());
    alice.send({{"type", "contact_add"}, {"id", 2}, {"handle", "bob@example.com"}});
    alice.reply(2);

    msnp_client bob(gw.msnp_port);
    bob.login("bob@example.com", "secret-bob");
    bob.command("ADD 10 FL alice@example.com alice@example.com");
    bob.command("ADD 11 AL alice@example.com alice@example.com");
    // Alice sees Bob come online (his login's CHG NLN).
    alice.wait([](const json::object& o) {
        return o.at("type") == "presence" && o.at("user") == "bob@example.com" && o.at("status") == "online";
    });

    // Alice opens a chat: Bob's client rings and joins the room.
    alice.send({{"type", "chat_open"}, {"id", 3}, {"with", json::array{"bob@example.com"}}});
    const std::string room(alice.reply(3).at("result").at("room").as_string());
    const auto rng = words(bob.reply("RNG " + room));
    const auto sb_port = static_cast<unsigned short>(std::stoi(rng.at(2).substr(rng.at(2).rfind(':') + 1)));
    msnp_client bob_sb(sb_port);
    bob_sb.command("ANS 1 bob@example.com " + rng.at(4) + " " + room);
    alice.wait([](const json::object& o) { return o.at("type") == "joined" && o.at("user") == "bob@example.com"; });

    // Both ways, each acknowledged once durable.
    alice.send({{"type", "send"}, {"id", 4}, {"room", room}, {"text", "hi Bob"}, {"client_id", "m1"}});
    CHECK(alice.reply(4).at("result").at("seq") == 1);
    CHECK(bob_sb.reply("MSG alice@example.com").find("MSG alice@example.com") == 0);
    CHECK(bob_sb.payload().ends_with("\r\n\r\nhi Bob"));
    bob_sb.send(chat_message(2, "hello Alice"));
    bob_sb.reply("ACK 2");
    const auto message = alice.wait([](const json::object& o) {
        return o.at("type") == "message" && o.at("from") == "bob@example.com";
    });
    CHECK(message.at("text") == "hello Alice");
    CHECK(message.at("seq") == 2);
}

}  // namespace

TEST_CASE("a WebSocket user and an MSN Messenger 4 user add each other and chat both ways", "[ws]") {
    gateway_under_test gw;
    add_each_other_and_chat(gw);
}

// The same conversation with Bob's account on a second embedded backend
// (another SQLite file), as the routes file says: the add, its reverse-list
// notice, presence and the invitation cross from one backend to the other
// through the gateway's hub.
TEST_CASE("users on two embedded backends of one gateway add each other, see each other and chat", "[ws]") {
    ws_gateway gw(SWITCHYARD_BINARY, "", "[backends.embedded]\nkind = \"embedded\"\n[backends.other]\nkind = \"embedded\"\n");
    write_file(gw.dir.path / "routes.toml",
               "[[route]]\nexact = \"user:bob@example.com\"\nbackend = \"other\"\n[default]\nbackend = \"embedded\"\n");
    gw.add_user("alice@example.com", "secret-alice");
    gw.add_user("bob@example.com", "secret-bob", true);
    gw.start();
    add_each_other_and_chat(gw);
    gw.stop();
}

TEST_CASE("the WebSocket port answers plain HTTP, upgrades only on /ws, and refuses a forged token", "[ws]") {
    gateway_under_test gw;
    CHECK(http_request(gw.ws_port, "GET", "/").status == 200);
    CHECK(http_request(gw.ws_port, "GET", "/nothing-here").status == 404);

    ws_client elsewhere(gw.ws_port, "/chat");
    CHECK(elsewhere.handshake_error());  // 404 instead of 101

    ws_client forged(gw.ws_port);
    REQUIRE_FALSE(forged.handshake_error());
    forged.send({{"type", "login"}, {"id", 1}, {"version", 1}, {"token", "v1.k1.forged"}});
    for (json::value v = forged.next(); !v.is_null(); v = forged.next()) {
        INFO(json::serialize(v));
        CHECK(v.at("type") != "reply");
    }
    CHECK(forged.error() == websocket::error::closed);
    CHECK(forged.close_reason().code == websocket::close_code::policy_error);
}

TEST_CASE("an upgrade with a wrong version or key is refused with its HTTP status, and the port serves on", "[ws]") {
    gateway_under_test gw;
    const auto upgrade = [&](std::string_view version, std::string_view key) {
        tcp_client c(gw.ws_port);
        c.send("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Version: " + std::string(version) + "\r\nSec-WebSocket-Key: " + std::string(key) +
               "\r\n\r\n");
        const auto answer = c.read_until("\r\n\r\n");
        REQUIRE(answer);
        return *answer;
    };
    const std::string good_key = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 section 1.3
    const auto wrong_version = upgrade("8", good_key);
    CHECK(wrong_version.starts_with("HTTP/1.1 426"));
    CHECK(contains(wrong_version, "Sec-WebSocket-Version: 13"));
    CHECK(upgrade("13", "not-a-key").starts_with("HTTP/1.1 400"));
    // The RFC's own example: the accept value is the one section 1.3 gives.
    const auto accepted = upgrade("13", good_key);
    CHECK(accepted.starts_with("HTTP/1.1 101"));
    CHECK(contains(accepted, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));

    ws_client after(gw.ws_port);
    REQUIRE_FALSE(after.handshake_error());
    CHECK(after.request(1, {{"type", "ping"}}).contains("time"));
}

namespace {

// A named room, no command rate limit to speak of, and the given write
// queue limit; Alice and Bob in the room, Bob with a small receive buffer.
struct lobby_pair : ws_gateway {
    ws_client alice{start_and_port()};
    ws_client bob{ws_port};
    std::string room;

    explicit lobby_pair(std::size_t write_queue_bytes)
        : ws_gateway(SWITCHYARD_BINARY, "rooms = [\"lobby\"]",
                     "[limits]\ncommands_per_second = 100000\nwrite_queue_bytes = " + std::to_string(write_queue_bytes) +
                         "\n") {
        bob.shrink_receive_buffer();
        alice.login("alice@example.com", "secret-alice");
        bob.login("bob@example.com", "secret-bob");
        room = std::string(alice.request(2, {{"type", "join"}, {"name", "lobby"}}).at("room").as_string());
        bob.request(2, {{"type", "join"}, {"name", "lobby"}});
    }

private:
    unsigned short start_and_port() {
        add_user("alice@example.com", "secret-alice");
        add_user("bob@example.com", "secret-bob");
        start();
        return ws_port;
    }
};

// Alice sends `count` messages of 14,000 bytes to the room, at most 8 in
// flight; message i starts with "<i>:". About 8 MB for 600: more than the
// kernel buffers between the gateway and a member that does not read.
void send_many(ws_client& alice, const std::string& room, int count) {
    const std::string filler(14000, 'x');
    int next_id = 100;
    for (int sent = 0; sent < count;) {
        const int first_id = next_id;
        for (int k = 0; k < 8 && sent < count; ++k, ++sent) {
            alice.send({{"type", "send"}, {"id", next_id++}, {"room", room}, {"text", std::to_string(sent) + ":" + filler}});
        }
        for (int id = first_id; id < next_id; ++id) {
            alice.reply(id);
        }
    }
}

}  // namespace

TEST_CASE("a member that stops reading gets every message, whole and in order, once it reads again", "[ws]") {
    lobby_pair p(64u << 20);
    ws_client& bob = p.bob;
    constexpr int count = 600;
    send_many(p.alice, p.room, count);
    std::uint64_t last_seq = 0;
    for (int i = 0; i < count; ++i) {
        const auto m = bob.wait([](const json::object& o) { return o.at("type") == "message"; });
        const std::string text(m.at("text").as_string());
        INFO("message " << i);
        REQUIRE(text.starts_with(std::to_string(i) + ":"));
        CHECK(text.size() == std::to_string(i).size() + 1 + 14000);
        const auto seq = m.at("seq").to_number<std::uint64_t>();
        CHECK((last_seq == 0 || seq == last_seq + 1));
        last_seq = seq;
    }
    CHECK(bob.request(3, {{"type", "ping"}}).contains("time"));
}

TEST_CASE("a member whose queue passes write_queue_bytes is closed with 1008; the room goes on", "[ws]") {
    lobby_pair p(256u << 10);
    ws_client& bob = p.bob;
    send_many(p.alice, p.room, 600);
    // What was already on its way arrives, in order, then the close.
    int messages = 0;
    for (json::value v = bob.next(); !v.is_null(); v = bob.next()) {
        if (v.at("type") == "message") {
            REQUIRE(v.at("text").as_string().starts_with(std::to_string(messages) + ":"));
            ++messages;
        }
    }
    CHECK(messages < 600);
    CHECK(bob.close_reason().code == websocket::close_code::policy_error);
    CHECK(bob.close_reason().reason == "write queue over limit");
    CHECK(p.alice.request(3, {{"type", "ping"}}).contains("time"));
}

TEST_CASE("a silent ws:// client is pinged at half the idle timeout, kept while it answers, dropped when it does not",
          "[ws]") {
    // 2 s between pings leaves a loaded machine time to answer.
    ws_gateway gw(SWITCHYARD_BINARY, "", "[limits]\nidle_timeout = \"4s\"\n");
    gw.start();
    const auto upgrade = [&](tcp_client& c) {
        c.send("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
        const auto answer = c.read_until("\r\n\r\n");
        REQUIRE(answer);
        REQUIRE(answer->starts_with("HTTP/1.1 101"));
    };
    using namespace std::string_literals;
    const std::string ping = "\x89\x00"s;                   // the server's: unmasked, no payload
    const std::string pong = "\x8a\x80\x01\x02\x03\x04"s;  // a client's: masked, no payload
    const auto next = [](tcp_client& c) {
        const auto got = c.read_some(std::chrono::seconds(10));
        REQUIRE(got);
        return *got;
    };

    // Both connect; one answers every ping, the other stays silent.
    tcp_client answering(gw.ws_port);
    tcp_client silent(gw.ws_port);
    upgrade(answering);
    upgrade(silent);

    CHECK(next(answering) == ping);
    answering.send(pong);
    CHECK(next(silent) == ping);
    // The silent one is dropped once the rest of the timeout passes; the
    // one that answered is pinged again.
    CHECK(next(silent).empty());
    CHECK(gw.proc->wait_for_line("idle timeout"));
    CHECK(next(answering) == ping);
    answering.send(pong);
    CHECK(next(answering) == ping);
}
