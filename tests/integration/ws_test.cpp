// WebSocket clients of the real gateway, in the same conversations as MSN
// Messenger users: a browser user (the JSON protocol over a real WebSocket)
// and an MSNP5 user add each other, see each other's presence and chat
// both ways. Also what the WebSocket port answers to plain HTTP, to an
// upgrade elsewhere than /ws, and to a forged token.
#include "child_process.hpp"
#include "msnp_client.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <sys/socket.h>

#include <filesystem>

using namespace switchyard::test;
namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;

namespace {

const std::string binary = SWITCHYARD_BINARY;

struct gateway_under_test {
    temp_dir dir;
    fs::path settings = dir.path / "switchyard.toml";
    std::optional<child_process> proc;
    unsigned short msnp_port = 0;
    unsigned short ws_port = 0;

    gateway_under_test() {
        write_file(settings, "[gateway]\nthreads = 2\n[listeners.msnp]\nport = 0\n[listeners.ws]\nport = 0\n"
                             "[listeners.admin]\nport = 0\n[accounts]\nscrypt_n = 1024\n");
        write_file(dir.path / "routes.toml", "[default]\nbackend = \"embedded\"\n");
        add_user("alice@example.com", "secret-alice", false);
        add_user("bob@example.com", "secret-bob", true);
        proc.emplace(std::vector<std::string>{binary, "run", "-c", settings.string()});
        for (int i = 0; i < 3; ++i) {
            const auto line = proc->wait_for_line("event=listening");
            INFO(proc->output());
            REQUIRE(line);
            const auto port = static_cast<unsigned short>(std::stoi(log_field(*line, "port")));
            if (log_field(*line, "listener") == "msnp") msnp_port = port;
            if (log_field(*line, "listener") == "ws") ws_port = port;
        }
        REQUIRE(proc->wait_for_line("event=started"));
    }

    void add_user(const std::string& handle, const std::string& password, bool md5) {
        std::vector<std::string> argv{binary, "user", "add", handle, "-c", settings.string()};
        if (md5) argv.push_back("--legacy-md5");
        const auto r = run_to_completion(argv, password + "\n");
        INFO(r.output);
        REQUIRE(r.status == 0);
    }
};

// A WebSocket client that speaks the JSON protocol, with every read bounded.
class ws_client {
public:
    explicit ws_client(unsigned short port, std::string_view target = "/ws") {
        asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
        ws_.next_layer().connect(ep);
        const timeval limit{10, 0};
        ::setsockopt(ws_.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        ws_.set_option(websocket::stream_base::decorator(
            [](websocket::request_type& req) { req.set(beast::http::field::sec_websocket_protocol, "switchyard.v1"); }));
        ws_.handshake(response_, "127.0.0.1", target, error_);
    }

    const beast::error_code& handshake_error() const { return error_; }
    const websocket::response_type& response() const { return response_; }

    void send(const json::value& v) { ws_.write(asio::buffer(json::serialize(v))); }

    // The next message, or a null value once the connection is closed or silent.
    json::value next() {
        beast::flat_buffer buffer;
        beast::error_code ec;
        ws_.read(buffer, ec);
        if (ec) {
            error_ = ec;
            return nullptr;
        }
        return json::parse(beast::buffers_to_string(buffer.data()));
    }

    // The next message for which `match` holds; others are passed over.
    template <class Match> json::object wait(Match match) {
        for (;;) {
            const json::value v = next();
            INFO("connection ended: " << error_.message());
            REQUIRE(v.is_object());
            if (match(v.as_object())) return v.as_object();
        }
    }
    json::object reply(std::int64_t id) {
        return wait([id](const json::object& o) {
            INFO(json::serialize(o));
            if (o.at("type") == "error" && o.at("id") == id) FAIL("request " << id << " refused");
            return o.at("type") == "reply" && o.at("id") == id;
        });
    }
    json::object event(std::string_view type) {
        return wait([type](const json::object& o) { return o.at("type").as_string() == type; });
    }

    websocket::close_reason close_reason() const { return ws_.reason(); }
    const beast::error_code& error() const { return error_; }

private:
    asio::io_context io_;
    websocket::stream<asio::ip::tcp::socket> ws_{io_};
    websocket::response_type response_;
    beast::error_code error_;
};

}  // namespace

TEST_CASE("a WebSocket user and an MSN Messenger 4 user add each other and chat both ways", "[ws]") {
    gateway_under_test gw;

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
