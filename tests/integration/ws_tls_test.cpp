// The WebSocket listener of the real gateway over TLS (wss://, the modern
// profile) and with permessage-deflate: a wss:// login, ping and chat; plain
// HTTPS on the same port; clients that do not speak TLS; the closing
// handshake on shutdown; the extension's negotiation; compression bombs.
// Certificates come from fixtures/certs/make-certs.sh, made into the test's
// own directory. Every client operation runs on an io_context with a
// deadline, so a gateway that stops answering fails the test instead of
// hanging it.
#include "child_process.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/zlib.hpp>
#include <boost/json.hpp>

#include <openssl/x509v3.h>

#include <csignal>
#include <filesystem>
#include <memory>
#include <optional>
#include <type_traits>

using namespace switchyard::test;
namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

const std::string binary = SWITCHYARD_BINARY;
const fs::path source_dir = SWITCHYARD_SOURCE_DIR;
constexpr auto io_deadline = std::chrono::seconds(10);

struct gateway_options {
    bool tls = true;
    bool deflate = false;
    std::string limits;  // lines for [limits]
};

struct gateway_under_test {
    temp_dir dir;
    fs::path settings = dir.path / "switchyard.toml";
    std::optional<child_process> proc;
    unsigned short ws_port = 0;

    explicit gateway_under_test(const gateway_options& o = {}) {
        if (o.tls) {
            const auto certs = run_to_completion(
                {"/bin/sh", (source_dir / "fixtures/certs/make-certs.sh").string(), (dir.path / "certs").string()});
            INFO(certs.output);
            REQUIRE(certs.status == 0);
        }
        write_file(settings, std::string("[gateway]\nthreads = 2\n") +
                                 "[listeners.msnp]\nport = 0\n"
                                 "[listeners.ws]\nport = 0\nrooms = [\"lobby\"]\n"
                                 "tls = \"" + (o.tls ? "modern" : "none") + "\"\n" +
                                 "permessage_deflate = " + (o.deflate ? "true" : "false") + "\n" +
                                 "[listeners.admin]\nport = 0\n"
                                 "[tls.modern]\ncertificate = \"certs/modern.pem\"\nprivate_key = \"certs/modern.key\"\n"
                                 "[limits]\n" + o.limits +
                                 "[accounts]\nscrypt_n = 1024\n");
        write_file(dir.path / "routes.toml", "[default]\nbackend = \"embedded\"\n");
        add_user("alice@example.com", "secret-alice");
        add_user("bob@example.com", "secret-bob");
        proc.emplace(std::vector<std::string>{binary, "run", "-c", settings.string()});
        for (int i = 0; i < 3; ++i) {
            const auto line = proc->wait_for_line("event=listening");
            INFO(proc->output());
            REQUIRE(line);
            if (log_field(*line, "listener") == "ws") {
                CHECK(log_field(*line, "tls") == (o.tls ? "modern" : "none"));
                ws_port = static_cast<unsigned short>(std::stoi(log_field(*line, "port")));
            }
        }
        REQUIRE(proc->wait_for_line("event=started"));
        REQUIRE(ws_port != 0);
    }

    void add_user(const std::string& handle, const std::string& password) {
        const auto r = run_to_completion({binary, "user", "add", handle, "-c", settings.string()}, password + "\n");
        INFO(r.output);
        REQUIRE(r.status == 0);
    }

    fs::path certificate() const { return dir.path / "certs/modern.pem"; }

    // How many lines of the gateway's output so far contain `needle`.
    std::size_t count(std::string_view needle) const {
        std::size_t n = 0;
        const std::string& out = proc->output();
        for (auto at = out.find(needle); at != std::string::npos; at = out.find(needle, at + needle.size())) ++n;
        return n;
    }
};

// Starts an asynchronous operation and runs `io` until it completes; the
// test fails if it has not within io_deadline. The handler shares its slot,
// so one that runs late writes nowhere it should not.
template <class Start> beast::error_code await(asio::io_context& io, Start&& start) {
    auto result = std::make_shared<std::optional<beast::error_code>>();
    start([result](beast::error_code ec, auto&&...) { *result = ec; });
    io.restart();
    const auto deadline = std::chrono::steady_clock::now() + io_deadline;
    while (!*result && io.run_one_until(deadline) != 0) {
    }
    INFO("no completion within " << io_deadline.count() << " s");
    REQUIRE(result->has_value());
    return **result;
}

// A client TLS context that trusts only the test certificate.
std::unique_ptr<asio::ssl::context> client_tls(const fs::path& trusted) {
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_verify_mode(asio::ssl::verify_peer);
    ctx->load_verify_file(trusted.string());
    return ctx;
}

// Connects to 127.0.0.1:port and, over TLS, handshakes checking that the
// certificate names 127.0.0.1.
template <class Stream> void open(asio::io_context& io, Stream& s, unsigned short port) {
    const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
    auto ec = await(io, [&](auto h) { beast::get_lowest_layer(s).async_connect(ep, h); });
    REQUIRE_FALSE(ec);
    if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s.native_handle()), "127.0.0.1");
        ec = await(io, [&](auto h) { s.async_handshake(asio::ssl::stream_base::client, h); });
        INFO(ec.message());
        REQUIRE_FALSE(ec);
    }
}

// A WebSocket client of the JSON protocol: wss:// when Tls, else ws://.
template <bool Tls> class client {
public:
    using next_layer_type = std::conditional_t<Tls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;

    explicit client(const gateway_under_test& gw, bool offer_deflate = false, std::string_view target = "/ws") {
        if constexpr (Tls) {
            tls_ = client_tls(gw.certificate());
            ws_.emplace(io_, *tls_);
        } else {
            ws_.emplace(io_);
        }
        open(io_, ws_->next_layer(), gw.ws_port);
        if (offer_deflate) {
            websocket::permessage_deflate pmd;
            pmd.client_enable = true;
            ws_->set_option(pmd);
        }
        ws_->set_option(websocket::stream_base::decorator(
            [](websocket::request_type& req) { req.set(http::field::sec_websocket_protocol, "switchyard.v1"); }));
        error_ = await(io_, [&](auto h) { ws_->async_handshake(response_, "127.0.0.1", target, h); });
    }

    const beast::error_code& error() const { return error_; }
    const websocket::response_type& response() const { return response_; }
    std::string extensions() const { return std::string(response_[http::field::sec_websocket_extensions]); }

    void send(const json::value& v) {
        const std::string text = json::serialize(v);
        ws_->text(true);
        REQUIRE_FALSE(await(io_, [&](auto h) { ws_->async_write(asio::buffer(text), h); }));
    }

    // Bytes straight onto the connection, past the WebSocket framing.
    void send_raw(const std::string& bytes) {
        const auto ec = await(io_, [&](auto h) { asio::async_write(ws_->next_layer(), asio::buffer(bytes), h); });
        INFO(ec.message());
        REQUIRE_FALSE(ec);
    }

    // The next message, or a null value once the connection is closed.
    json::value next() {
        beast::flat_buffer buffer;
        error_ = await(io_, [&](auto h) { ws_->async_read(buffer, h); });
        if (error_) return nullptr;
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

    json::object login(std::string_view handle, std::string_view password) {
        send({{"type", "login"}, {"id", 1}, {"version", 1}, {"handle", handle}, {"password", password}});
        return reply(1);
    }
    void ping(std::int64_t id) {
        send({{"type", "ping"}, {"id", id}});
        CHECK(reply(id).at("result").at("time").as_int64() > 0);
    }

    // Reads until the connection ends; the close frame's code and reason
    // (code 0 when none came). error() then tells whether the closing
    // handshake completed.
    websocket::close_reason read_to_close() {
        for (json::value v = next(); !v.is_null(); v = next()) {
        }
        return ws_->reason();
    }

private:
    asio::io_context io_;
    std::unique_ptr<asio::ssl::context> tls_;
    std::optional<websocket::stream<next_layer_type>> ws_;
    websocket::response_type response_;
    beast::error_code error_;
};

struct https_response {
    unsigned status = 0;
    std::string body;
    beast::error_code shutdown;  // of the client's TLS shutdown after the response
};

https_response https_get(const gateway_under_test& gw, std::string_view target) {
    asio::io_context io;
    const auto tls = client_tls(gw.certificate());
    beast::ssl_stream<beast::tcp_stream> s(io, *tls);
    open(io, s, gw.ws_port);
    http::request<http::empty_body> req(http::verb::get, target, 11);
    req.set(http::field::host, "127.0.0.1");
    REQUIRE_FALSE(await(io, [&](auto h) { http::async_write(s, req, h); }));
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    const auto ec = await(io, [&](auto h) { http::async_read(s, buffer, res, h); });
    INFO(ec.message());
    REQUIRE_FALSE(ec);
    return {res.result_int(), res.body(), await(io, [&](auto h) { s.async_shutdown(h); })};
}

// One WebSocket text frame, final, compressed (RSV1), announcing `announced`
// payload bytes, masked with a zero key so the payload goes as it is.
std::string compressed_frame_head(std::uint64_t announced) {
    std::string head{static_cast<char>(0xC1), static_cast<char>(0x80 | 127)};
    for (int shift = 56; shift >= 0; shift -= 8) head += static_cast<char>((announced >> shift) & 0xff);
    return head + std::string(4, '\0');
}

// Raw deflate data that inflates to 1 MiB of 'a', ending on a full flush:
// copies of it one after another are one valid stream, 1000 times larger
// inflated than it is.
std::string bomb_segment() {
    beast::zlib::deflate_stream deflater;
    deflater.reset(9, 15, 8, beast::zlib::Strategy::normal);
    const std::string in(std::size_t{1} << 20, 'a');
    std::string out(std::size_t{1} << 16, '\0');
    beast::zlib::z_params zs;
    zs.next_in = in.data();
    zs.avail_in = in.size();
    zs.next_out = out.data();
    zs.avail_out = out.size();
    beast::error_code ec;
    deflater.write(zs, beast::zlib::Flush::full, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(zs.avail_in == 0);
    out.resize(zs.total_out);
    REQUIRE(out.size() < 2048);
    REQUIRE(out.ends_with(std::string("\0\0\xff\xff", 4)));
    return out;
}

}  // namespace

TEST_CASE("wss:// users log in, ping and chat in a named room", "[ws][tls]") {
    gateway_under_test gw;

    client<true> alice(gw);
    INFO(alice.error().message());
    REQUIRE_FALSE(alice.error());
    CHECK(alice.response()[http::field::sec_websocket_protocol] == "switchyard.v1");
    CHECK(alice.login("alice@example.com", "secret-alice").at("result").at("handle") == "alice@example.com");
    alice.ping(2);

    client<true> bob(gw);
    REQUIRE_FALSE(bob.error());
    bob.login("bob@example.com", "secret-bob");
    alice.send({{"type", "join"}, {"id", 3}, {"name", "lobby"}});
    const std::string room(alice.reply(3).at("result").at("room").as_string());
    bob.send({{"type", "join"}, {"id", 3}, {"name", "lobby"}});
    CHECK(bob.reply(3).at("result").at("room").as_string() == room);

    alice.send({{"type", "send"}, {"id", 4}, {"room", room}, {"text", "hi Bob, over TLS"}, {"client_id", "m1"}});
    CHECK(alice.reply(4).at("result").at("seq") == 1);
    const auto message = bob.wait([](const json::object& o) { return o.at("type") == "message"; });
    CHECK(message.at("from") == "alice@example.com");
    CHECK(message.at("text") == "hi Bob, over TLS");
}

TEST_CASE("the wss:// port answers plain HTTPS GETs as the ws:// port answers HTTP", "[ws][tls]") {
    gateway_under_test gw;
    const auto root = https_get(gw, "/");
    CHECK(root.status == 200);
    CHECK(root.body.find("app.js") != std::string::npos);  // the browser page
    // The gateway ended TLS with close_notify: the client's shutdown saw it.
    INFO(root.shutdown.message());
    CHECK_FALSE(root.shutdown);
    CHECK(https_get(gw, "/nothing-here").status == 404);

    client<true> elsewhere(gw, false, "/chat");
    CHECK(elsewhere.error());  // 404 instead of 101
}

TEST_CASE("a client that does not speak TLS is closed, and the gateway serves on", "[ws][tls]") {
    gateway_under_test gw({.tls = true, .deflate = false, .limits = "handshake_timeout = \"1s\"\n"});

    // Plain HTTP where TLS is expected.
    tcp_client plain(gw.ws_port);
    plain.send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const auto answer = plain.read_to_eof();
    REQUIRE(answer);  // closed, not left hanging
    CHECK(answer->find("HTTP/1.1") == std::string::npos);
    const auto line = gw.proc->wait_for_line("TLS handshake failed");
    INFO(gw.proc->output());
    REQUIRE(line);
    CHECK(line->find("event=connection_closed") != std::string::npos);

    // Silence: the handshake timeout ends it.
    tcp_client silent(gw.ws_port);
    REQUIRE(silent.read_to_eof());
    REQUIRE(gw.proc->wait_for_line("TLS handshake failed"));

    // The gateway still serves, and logged each failure once.
    client<true> alice(gw);
    REQUIRE_FALSE(alice.error());
    alice.login("alice@example.com", "secret-alice");
    alice.ping(2);
    CHECK_FALSE(gw.proc->wait_exit(0ms));
    CHECK(gw.count("TLS handshake failed") == 2);
}

TEST_CASE("on shutdown a wss:// client gets the closing handshake, then TLS ends", "[ws][tls]") {
    gateway_under_test gw;
    client<true> alice(gw);
    REQUIRE_FALSE(alice.error());
    alice.login("alice@example.com", "secret-alice");
    gw.proc->signal(SIGTERM);
    const auto reason = alice.read_to_close();
    // The client answered the close frame and ended TLS in turn.
    INFO(alice.error().message());
    CHECK(alice.error() == websocket::error::closed);
    CHECK(reason.code == websocket::close_code::going_away);
    CHECK(reason.reason == "server shutting down");
    // Drained, not cut off by shutdown_timeout.
    const auto stopped = gw.proc->wait_for_line("event=stopped");
    INFO(gw.proc->output());
    REQUIRE(stopped);
    CHECK(log_field(*stopped, "reason") == "drained");
    CHECK(gw.proc->wait_exit() == 0);
}

TEMPLATE_TEST_CASE_SIG("permessage-deflate is negotiated only when enabled and offered", "[ws][tls][deflate]",
                       ((bool Tls), Tls), true, false) {
    SECTION("enabled") {
        gateway_under_test gw({.tls = Tls, .deflate = true, .limits = ""});
        client<Tls> offers(gw, true);
        INFO(offers.error().message());
        REQUIRE_FALSE(offers.error());
        CHECK(offers.extensions().starts_with("permessage-deflate"));
        CHECK(offers.extensions().find("server_max_window_bits=10") != std::string::npos);
        // Compressed both ways.
        offers.login("alice@example.com", "secret-alice");
        offers.ping(2);

        client<Tls> does_not(gw, false);
        REQUIRE_FALSE(does_not.error());
        CHECK(does_not.extensions().empty());
        does_not.login("bob@example.com", "secret-bob");
    }
    SECTION("disabled") {
        gateway_under_test gw({.tls = Tls, .deflate = false, .limits = ""});
        client<Tls> offers(gw, true);
        REQUIRE_FALSE(offers.error());
        CHECK(offers.extensions().empty());
        offers.login("alice@example.com", "secret-alice");
        offers.ping(2);
    }
}

TEMPLATE_TEST_CASE_SIG("a compression bomb is closed with 1009 while it is still arriving", "[ws][tls][deflate]",
                       ((bool Tls), Tls), true, false) {
    gateway_under_test gw({.tls = Tls, .deflate = true, .limits = ""});
    const std::string segment = bomb_segment();
    // The frame announces more than is sent, so it never completes: the
    // close can only come from a limit checked while inflating. 8 MiB
    // inflated (8 KiB sent, one write the socket takes whole before the
    // gateway can answer) against payload_bytes = 64 KiB. The second
    // length is what no buffer may be sized by.
    const std::uint64_t announced = GENERATE(std::uint64_t{1} << 20, std::uint64_t{1} << 40);
    INFO("announced " << announced);

    client<Tls> bomber(gw, true);
    REQUIRE_FALSE(bomber.error());
    REQUIRE(bomber.extensions().starts_with("permessage-deflate"));
    std::string bytes = compressed_frame_head(announced);
    for (int i = 0; i < 8; ++i) bytes += segment;
    bomber.send_raw(bytes);
    // The gateway closes with the rest of the bomb unread, so the client's
    // answer to the close frame may meet a reset: only the code counts.
    const auto reason = bomber.read_to_close();
    INFO(bomber.error().message());
    CHECK(reason.code == websocket::close_code::too_big);

    // The gateway is still there for others.
    client<Tls> alice(gw, true);
    REQUIRE_FALSE(alice.error());
    alice.login("alice@example.com", "secret-alice");
    alice.ping(2);
    CHECK_FALSE(gw.proc->wait_exit(0ms));
}
