// Test support: the real gateway with MSNP and WebSocket listeners on port 0,
// and a blocking WebSocket client that speaks the JSON protocol, for tests
// that put browser users and MSN Messenger users in the same conversations.
#pragma once

#include "child_process.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <sys/socket.h>

namespace switchyard::test {

namespace ws_detail {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
}  // namespace ws_detail

// The HMAC key the test configures, so tests can mint Passport tickets the
// way login2.srf and RST.srf do.
inline constexpr const char* ws_test_key_id = "test1";
inline constexpr const char* ws_test_key_secret = "0123456789abcdef0123456789abcdef";
inline constexpr const char* ws_test_key_base64 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

// A gateway process with its MSNP, WebSocket and admin listeners on free
// ports. `extra` is appended to the settings file.
struct ws_gateway {
    std::string binary;
    temp_dir dir;
    std::filesystem::path settings = dir.path / "switchyard.toml";
    std::optional<child_process> proc;
    unsigned short msnp_port = 0;
    unsigned short ws_port = 0;

    // `ws_extra` goes into [listeners.ws], `extra` at the end of the settings.
    explicit ws_gateway(std::string binary_path, const std::string& ws_extra = "", const std::string& extra = "")
        : binary(std::move(binary_path)) {
        write_file(settings, "[gateway]\nthreads = 2\n[listeners.msnp]\nport = 0\n[listeners.ws]\nport = 0\n" + ws_extra +
                                 "\n[listeners.admin]\nport = 0\n[accounts]\nscrypt_n = 1024\n"
                                 "[[keys]]\nid = \"" + std::string(ws_test_key_id) + "\"\nsecret = \"" +
                                 ws_test_key_base64 + "\"\n" + extra);
        write_file(dir.path / "routes.toml", "[default]\nbackend = \"embedded\"\n");
    }

    void add_user(const std::string& handle, const std::string& password, bool md5 = false) {
        std::vector<std::string> argv{binary, "user", "add", handle, "-c", settings.string()};
        if (md5) argv.push_back("--legacy-md5");
        const auto r = run_to_completion(argv, password + "\n");
        INFO(r.output);
        REQUIRE(r.status == 0);
    }

    void start() {
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

    // SIGTERM, and a clean exit.
    void stop() {
        proc->signal(SIGTERM);
        const auto status = proc->wait_exit();
        INFO(proc->output());
        REQUIRE(status == 0);
        proc.reset();
    }

    std::filesystem::path database() const { return dir.path / "data" / "embedded.sqlite3"; }
};

// A WebSocket client that speaks the JSON protocol, with every read bounded.
class ws_client {
public:
    explicit ws_client(unsigned short port, std::string_view target = "/ws") {
        using namespace ws_detail;
        asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
        ws_.next_layer().connect(ep);
        ws_.set_option(websocket::stream_base::decorator(
            [](websocket::request_type& req) { req.set(beast::http::field::sec_websocket_protocol, "switchyard.v1"); }));
        ws_.handshake(response_, "127.0.0.1", target, error_);
    }

    const ws_detail::beast::error_code& handshake_error() const { return error_; }
    const ws_detail::websocket::response_type& response() const { return response_; }

    void send(const ws_detail::json::value& v) {
        ws_.write(ws_detail::asio::buffer(ws_detail::json::serialize(v)));
    }

    // The next message, or a null value once the connection is closed or
    // silent for 10 s (the read is then cancelled and error() says so).
    ws_detail::json::value next() {
        ws_detail::beast::flat_buffer buffer;
        std::optional<ws_detail::beast::error_code> result;
        ws_.async_read(buffer, [&](ws_detail::beast::error_code ec, std::size_t) { result = ec; });
        io_.restart();
        io_.run_for(std::chrono::seconds(10));
        if (!result) {
            ws_detail::beast::error_code ignored;
            ws_.next_layer().cancel(ignored);
            io_.restart();
            io_.run();
            error_ = ws_detail::asio::error::timed_out;
            return nullptr;
        }
        if (*result) {
            error_ = *result;
            return nullptr;
        }
        ws_detail::json::value v = ws_detail::json::parse(ws_detail::beast::buffers_to_string(buffer.data()));
        seen_.push_back(v);
        return v;
    }

    // The next message for which `match` holds; others are passed over
    // (and kept in seen()).
    template <class Match> ws_detail::json::object wait(Match match) {
        for (;;) {
            const ws_detail::json::value v = next();
            INFO("connection ended: " << error_.message());
            REQUIRE(v.is_object());
            if (match(v.as_object())) return v.as_object();
        }
    }
    ws_detail::json::object reply(std::int64_t id) {
        return wait([id](const ws_detail::json::object& o) {
            INFO(ws_detail::json::serialize(o));
            if (o.at("type") == "error" && o.at("id") == id) FAIL("request " << id << " refused");
            return o.at("type") == "reply" && o.at("id") == id;
        });
    }
    // The error answering request `id`.
    ws_detail::json::object error(std::int64_t id) {
        return wait([id](const ws_detail::json::object& o) {
            INFO(ws_detail::json::serialize(o));
            if (o.at("type") == "reply" && o.at("id") == id) FAIL("request " << id << " was not refused");
            return o.at("type") == "error" && o.at("id") == id;
        });
    }
    // The reply to request `id` without Catch's macros, which are not for
    // other threads: nullopt when it is an error or the connection ended.
    std::optional<ws_detail::json::object> reply_quietly(std::int64_t id) {
        for (ws_detail::json::value v = next(); !v.is_null(); v = next()) {
            const auto& o = v.as_object();
            const auto* of = o.if_contains("id");
            if (!of || *of != id) continue;
            if (o.at("type") == "reply") return o;
            return std::nullopt;
        }
        return std::nullopt;
    }
    ws_detail::json::object event(std::string_view type) {
        return wait([type](const ws_detail::json::object& o) { return o.at("type").as_string() == type; });
    }
    // `request` with id `id`, then its reply's result.
    ws_detail::json::object request(std::int64_t id, ws_detail::json::object request) {
        request["id"] = id;
        send(request);
        return reply(id).at("result").as_object();
    }

    // Logs in with a password or a session token; returns the login result.
    ws_detail::json::object login(const std::string& handle, const std::string& password, std::int64_t id = 1) {
        return request(id, {{"type", "login"}, {"version", 1}, {"handle", handle}, {"password", password}});
    }
    ws_detail::json::object login_token(const std::string& token, std::int64_t id = 1) {
        return request(id, {{"type", "login"}, {"version", 1}, {"token", token}});
    }

    // The connection ends without a WebSocket close, as when a network
    // drops it: with a reset (`reset`), or a plain FIN that still delivers
    // what was written before it.
    void drop(bool reset) {
        if (reset) {
            const linger hard{1, 0};
            ::setsockopt(ws_.next_layer().native_handle(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
        }
        ws_detail::beast::error_code ec;
        ws_.next_layer().close(ec);
    }

    // A small, fixed receive buffer: what the client does not read backs up
    // into the gateway's queue soon, not after megabytes.
    void shrink_receive_buffer() {
        const int bytes = 65536;
        ::setsockopt(ws_.next_layer().native_handle(), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    }

    // Everything read so far.
    const std::vector<ws_detail::json::value>& seen() const { return seen_; }

    ws_detail::websocket::close_reason close_reason() const { return ws_.reason(); }
    const ws_detail::beast::error_code& error() const { return error_; }

private:
    ws_detail::asio::io_context io_;
    ws_detail::websocket::stream<ws_detail::asio::ip::tcp::socket> ws_{io_};
    ws_detail::websocket::response_type response_;
    ws_detail::beast::error_code error_;
    std::vector<ws_detail::json::value> seen_;
};

}  // namespace switchyard::test
