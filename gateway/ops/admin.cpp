// HTTP connections: the admin endpoint (plain HTTP) and the HTTPS listener.
//
// Admin routes:
//   GET  /healthz        200 while the process serves
//   GET  /readyz         200 once routes are loaded and backends are healthy, 503 otherwise
//   GET  /metrics        Prometheus text format
//   GET  /routes         the active routes table and its version (JSON)
//   POST /routes/reload  validate the routes file and swap it in; 422 keeps the old table
//
// The HTTPS listener serves the Passport login services (gateway/login/passport.cpp).
#include "gateway/net/http.hpp"
#include "gateway/ops/log.hpp"
#include "gateway/login/passport.hpp"
#include "gateway/session/context.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <optional>

namespace switchyard::gateway {

namespace {

namespace beast = boost::beast;

using request = http_request;
using response = http_response;

constexpr std::size_t max_request_body = 64 * 1024;

// The host part of a Host header: "[::1]:9090" -> "::1", "gw:9090" -> "gw".
std::string_view host_part(std::string_view host) {
    if (host.starts_with('[')) {
        const auto end = host.find(']');
        return end == std::string_view::npos ? std::string_view{} : host.substr(1, end - 1);
    }
    if (host.find(':') == host.rfind(':')) return host.substr(0, host.find(':'));
    return host;  // a bare IPv6 address
}

// Who may ask the admin endpoint. Browsers reach it too (a page the
// operator opens can send requests to 127.0.0.1), so requests a page sends
// with an Origin are refused (CSRF), and so is a Host naming anything but an
// address, localhost or a name in [listeners.admin] hosts: a page whose
// name was rebound to this address (DNS rebinding) still sends its own
// name. With a token, every route but /healthz needs it.
std::optional<response> admin_refusal(const session_context& ctx, const operations& ops, const request& req) {
    if (req.find(http::field::origin) != req.end()) {
        return make_response(req, http::status::forbidden, "requests from web pages are refused\n");
    }
    const std::string_view host = host_part(req[http::field::host]);
    const config::listener* admin = ctx.settings.find_listener("admin");
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    const bool named = admin != nullptr && std::ranges::find(admin->hosts, host) != admin->hosts.end();
    if (!host.empty() && ec && host != "localhost" && !named) {
        return make_response(req, http::status::misdirected_request,
                             "Host " + std::string(host) + " is not this admin endpoint's: use its address, or add "
                                                           "the name to hosts in [listeners.admin]\n");
    }
    if (!ops.token.empty() && req.target() != "/healthz") {
        const std::string_view given = req[http::field::authorization];
        const std::string expected = "Bearer " + ops.token;
        if (given.size() != expected.size() || CRYPTO_memcmp(given.data(), expected.data(), given.size()) != 0) {
            auto res = make_response(req, http::status::unauthorized, "this admin endpoint needs its token\n");
            res.set(http::field::www_authenticate, "Bearer");
            return res;
        }
    }
    return std::nullopt;
}

response handle_admin(session_context& ctx, operations& ops, const request& req) {
    if (auto refused = admin_refusal(ctx, ops, req)) return std::move(*refused);
    const std::string_view target = req.target();
    const bool get = req.method() == http::verb::get || req.method() == http::verb::head;
    if (target == "/healthz") {
        if (!get) return make_response(req, http::status::method_not_allowed, "use GET\n");
        return make_response(req, http::status::ok, "ok\n");
    }
    if (target == "/readyz") {
        if (!get) return make_response(req, http::status::method_not_allowed, "use GET\n");
        if (ctx.life.stopping) return make_response(req, http::status::service_unavailable, "shutting down\n");
        if (!ops.routes.table()) return make_response(req, http::status::service_unavailable, "no routes\n");
        if (auto h = ctx.objects.check(); !h.ok) {
            return make_response(req, http::status::service_unavailable, "backend " + h.detail + "\n");
        }
        return make_response(req, http::status::ok, "ready\n");
    }
    if (target == "/metrics") {
        if (!get) return make_response(req, http::status::method_not_allowed, "use GET\n");
        return make_response(req, http::status::ok, ctx.stats.render(), "text/plain; version=0.0.4; charset=utf-8");
    }
    if (target == "/routes") {
        if (!get) return make_response(req, http::status::method_not_allowed, "use GET\n");
        return make_response(req, http::status::ok, describe_routes(*ops.routes.table()), "application/json");
    }
    if (target == "/routes/reload") {
        if (req.method() != http::verb::post) {
            return make_response(req, http::status::method_not_allowed, "use POST\n");
        }
        auto table = ops.reload_routes("admin");
        if (!table) {
            return make_response(req, http::status::unprocessable_entity,
                                 table.error().to_string() + "\nthe previous routes table is still active\n");
        }
        return make_response(req, http::status::ok, describe_routes(**table), "application/json");
    }
    return make_response(req, http::status::not_found, "not found\n");
}


template <class Stream> class http_connection final : public connection {
public:
    // Answers a request through the reply, at once or later from another thread.
    using handler = std::function<void(request&&, http_reply)>;

    template <class... StreamArgs>
    http_connection(session_context& ctx, worker& w, listener_protocol p, handler h, StreamArgs&&... args)
        : connection(ctx, w, p), stream_(std::forward<StreamArgs>(args)...), handler_(std::move(h)) {}

    void start() override {
        if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
            do_read();
        } else {
            beast::get_lowest_layer(stream_).expires_after(ctx_.settings.lim.handshake_timeout);
            stream_.async_handshake(asio::ssl::stream_base::server,
                                    [self = shared_from_this(), this](beast::error_code ec) {
                                        if (ec) {
                                            log::debug("tls_handshake_failed", {{"error", ec.message()}});
                                            return;
                                        }
                                        do_read();
                                    });
        }
    }

    // Requests in progress finish; an idle keep-alive connection just closes.
    void shutdown() override {
        stopping_ = true;
        if (!busy_) {
            beast::get_lowest_layer(stream_).close();
        }
    }

private:
    void do_read() {
        parser_.emplace();
        parser_->body_limit(max_request_body);
        beast::get_lowest_layer(stream_).expires_after(ctx_.settings.lim.idle_timeout);
        busy_ = false;
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this(), this](beast::error_code ec, std::size_t) { on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec == http::error::end_of_stream) {
            end();  // the client closed (over TLS: sent close_notify); so do we
            return;
        }
        if (ec == beast::error::timeout || ec == asio::ssl::error::stream_truncated) {
            keep_session();  // ended between requests: idle, or closed without close_notify
            return;
        }
        if (ec && ec.category() != http::make_error_code(http::error::bad_target).category()) {
            log::debug("http_connection_failed", {{"listener", to_string(protocol_)}, {"error", ec.message()}});
            return;  // reset, or TLS failed: nothing can be said on this connection
        }
        if (ec && !versioned_ && add_version()) {
            // Read again: the parser takes the rewritten head from the buffer.
            parser_.emplace();
            parser_->body_limit(max_request_body);
            http::async_read(stream_, buffer_, *parser_,
                             [self = shared_from_this(), this](beast::error_code e, std::size_t) { on_read(e); });
            return;
        }
        if (ec) {
            return refuse(ec);
        }
        busy_ = true;
        request req = parser_->release();
        target_ = req.target();
        method_ = req.method_string();
        // The reply may come from a login thread. It moves the connection's
        // ownership back onto the connection's own thread, so the connection
        // never ends, and its stream is never touched, anywhere else.
        handler_(std::move(req),
                 [self = shared_from_this(), this, ex = stream_.get_executor()](response res) mutable {
                     asio::dispatch(ex, [self = std::move(self), this, res = std::move(res)]() mutable {
                         do_write(std::move(res));
                     });
                 });
    }

    // msn-pecan 0.1.1 and Pidgin 2.0-2.2 ask the nexus with "GET
    // /rdr/pprdr.asp" and an empty line: a request line without a version,
    // HTTP/0.9 style, which a server that closes without a word makes them
    // fail ("nexus stream error"; msnp-reference 3.10). Such a line, with a
    // target that is an absolute path, is read as HTTP/1.0, which also
    // closes the connection after the answer. False when the head is not of
    // that shape.
    bool add_version() {
        versioned_ = true;
        const auto data = buffer_.cdata();
        const std::string_view head(static_cast<const char*>(data.data()), data.size());
        const auto eol = head.find("\r\n");
        if (eol == std::string_view::npos) return false;
        const std::string_view line = head.substr(0, eol);
        const auto space = line.find(' ');
        if (space == std::string_view::npos || space == 0 || line.find(' ', space + 1) != std::string_view::npos ||
            line.size() == space + 1 || line[space + 1] != '/') {
            return false;
        }
        std::string rewritten(line);
        rewritten += " HTTP/1.0";
        rewritten += head.substr(eol);
        buffer_.consume(buffer_.size());
        const auto out = buffer_.prepare(rewritten.size());
        std::memcpy(out.data(), rewritten.data(), rewritten.size());
        buffer_.commit(rewritten.size());
        return true;
    }

    // A request that cannot be read as HTTP gets an answer and a log line,
    // then the connection ends. Over TLS the session leaves the cache: a
    // client that broke the protocol starts over with a full handshake.
    void refuse(beast::error_code ec) {
        busy_ = true;
        http::status status = http::status::bad_request;
        if (ec == http::error::body_limit) status = http::status::payload_too_large;
        if (ec == http::error::header_limit) status = http::status::request_header_fields_too_large;
        request none;
        none.version(11);
        none.keep_alive(false);
        target_ = "-";
        method_ = "-";
        if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
            SSL* ssl = stream_.native_handle();
            if (SSL_SESSION* session = SSL_get_session(ssl)) SSL_CTX_remove_session(SSL_get_SSL_CTX(ssl), session);
        }
        do_write(make_response(none, status, "not an HTTP request: " + ec.message() + "\n"));
    }

    // Why a refusal was refused, for the log: the plain-text body's first
    // line, a SOAP fault's faultstring, or the status's reason phrase.
    static std::string refusal_reason(const response& res) {
        const std::string_view body = res.body();
        if (std::string_view(res[http::field::content_type]).starts_with("text/plain") && !body.empty()) {
            return std::string(body.substr(0, body.find('\n')));
        }
        if (const auto open = body.find("<faultstring>"); open != std::string_view::npos) {
            const auto start = open + std::string_view("<faultstring>").size();
            const auto close = body.find('<', start);
            if (close != std::string_view::npos) return std::string(body.substr(start, close - start));
        }
        return std::string(res.reason());
    }

    void do_write(response res) {
        response_ = std::move(res);
        if (stopping_) {
            response_.keep_alive(false);
        }
        const unsigned status = response_.result_int();
        if (status >= 400) {
            // The public HTTPS listener's refusals are anyone's to cause: limited.
            static log::limited public_refusals(20, 5);
            const std::initializer_list<log::field> fields{{"listener", to_string(protocol_)},
                                                           {"method", method_},
                                                           {"target", target_},
                                                           {"status", status},
                                                           {"reason", refusal_reason(response_)}};
            if (protocol_ == listener_protocol::admin) {
                log::info("http_request_refused", fields);
            } else {
                public_refusals.write(log::log_level::info, "http_request_refused", fields);
            }
        } else {
            log::debug("http_request", {{"target", target_}, {"status", status}});
        }
        http::async_write(stream_, response_, [self = shared_from_this(), this](beast::error_code wec, std::size_t) {
            if (wec) {
                return;
            }
            if (!response_.keep_alive()) {
                end();
                return;
            }
            versioned_ = false;
            do_read();
        });
    }

    // Ends the connection in order: over TLS with close_notify, which also
    // keeps the session in the server's cache for the client's next
    // connection (OpenSSL drops the session of a connection that ends
    // without it), then the TCP FIN.
    void end() {
        busy_ = false;  // a shutdown of the gateway need not wait for the peer's close_notify
        if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
            beast::error_code ignored;
            stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        } else {
            beast::get_lowest_layer(stream_).expires_after(ctx_.settings.lim.handshake_timeout);
            stream_.async_shutdown([self = shared_from_this()](beast::error_code) {});
        }
    }

    // A connection that timed out or was closed without close_notify
    // between requests had nothing wrong with it, so its session stays
    // resumable (SChannel on Windows XP resumes by session id from this
    // cache, not by ticket). OpenSSL would drop it, as TLS 1.0 asked; TLS
    // 1.1 (RFC 4346 section 7.2.1) dropped that rule to match practice.
    void keep_session() {
        if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
            SSL* ssl = stream_.native_handle();
            SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_SENT_SHUTDOWN);
        }
    }

    Stream stream_;
    handler handler_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::string target_;  // of the request being answered, for the log
    std::string method_;
    bool versioned_ = false;  // the head being read was given a version already
    response response_;
    bool busy_ = false;
    bool stopping_ = false;
};

}  // namespace

std::shared_ptr<connection> make_admin_connection(session_context& ctx, operations& ops, worker& w, tcp::socket s) {
    // The admin routes answer at once, on the connection's thread.
    auto serve = [&ctx, &ops](request&& req, http_reply reply) { reply(handle_admin(ctx, ops, req)); };
    return std::make_shared<http_connection<beast::tcp_stream>>(ctx, w, listener_protocol::admin, std::move(serve),
                                                                std::move(s));
}

std::shared_ptr<connection> make_https_connection(session_context& ctx, worker& w, tcp::socket s) {
    const config::listener* l = ctx.settings.find_listener("https");
    asio::ssl::context& tls = l && l->tls == config::tls_profile::legacy ? *ctx.tls_legacy : *ctx.tls_modern;
    // Password guesses are counted per client address (login_guard).
    boost::system::error_code ec;
    const auto peer = s.remote_endpoint(ec);
    std::string address = ec ? std::string("?") : peer.address().to_string();
    auto serve = [&ctx, address = std::move(address)](request&& req, http_reply reply) {
        handle_passport(ctx, address, std::move(req), std::move(reply));
    };
    return std::make_shared<http_connection<beast::ssl_stream<beast::tcp_stream>>>(
        ctx, w, listener_protocol::https, std::move(serve), std::move(s), tls);
}

}  // namespace switchyard::gateway
