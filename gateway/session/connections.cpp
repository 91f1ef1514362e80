// Client sessions: MSNP over TCP and WebSocket. Each feeds bytes to its
// sans-I/O codec from protocols/ and writes what the codec returns through a
// bounded queue.
#include "gateway/ops/capture.hpp"
#include "gateway/ops/log.hpp"
#include "gateway/session/context.hpp"
#include "gateway/net/web_assets.hpp"

#include "gateway/login/msnp_services.hpp"
#include "gateway/session/core.hpp"

#include "protocols/msnp/msnp.hpp"
#include "protocols/websocket/framer.hpp"
#include "protocols/wsjson/wsjson.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <optional>
#include <type_traits>

namespace switchyard::gateway {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace rfc6455 = switchyard::websocket;  // the sans-I/O framer

connection::connection(session_context& ctx, worker& w, listener_protocol p) : ctx_(ctx), worker_(w), protocol_(p) {
    ctx_.life.live.fetch_add(1);
    worker_.connections.insert(this);
    ctx_.stats.connection_opened(p);
}

namespace {

// How a connection ended. One that never signed in is anyone's to open, so
// those lines are limited (a flood of them cannot fill the logs).
void log_closed(bool signed_in, std::initializer_list<log::field> fields) {
    static log::limited unauthenticated(20, 5);
    if (signed_in) {
        log::info("connection_closed", fields);
    } else {
        unauthenticated.write(log::log_level::info, "connection_closed", fields);
    }
}

}  // namespace

admission::verdict admission::admit(const asio::ip::address& a) {
    const std::lock_guard lock(mutex_);
    if (total_ >= max_total_) return verdict::over_total;
    std::size_t& mine = by_address_[a];
    if (mine >= max_per_address_) return verdict::over_address;
    ++mine;
    ++total_;
    return verdict::admitted;
}

void admission::release(const asio::ip::address& a) {
    const std::lock_guard lock(mutex_);
    --total_;
    if (const auto it = by_address_.find(a); it != by_address_.end() && --it->second == 0) by_address_.erase(it);
}

connection::~connection() {
    if (admitted_ && ctx_.gate) ctx_.gate->release(*admitted_);
    worker_.connections.erase(this);
    ctx_.stats.connection_closed(protocol_);
    if (ctx_.life.live.fetch_sub(1) == 1 && ctx_.life.stopping.load() && !ctx_.life.finished.load()) {
        asio::post(*ctx_.life.main, ctx_.life.on_drained);
    }
}

void worker::deliver(const std::weak_ptr<connection>& to, deliver_fn fn, shared_frame f) {
    bool post = false;
    {
        const std::lock_guard lock(mutex_);
        queued_.push_back({to, fn, std::move(f)});
        post = !std::exchange(posted_, true);
    }
    if (post) {
        backends::release_burst::at_end([this] { asio::post(ctx, [this] { drain(); }); });
    }
}

bool worker::flush_later(std::shared_ptr<connection> c) {
    if (!draining_) {
        return false;
    }
    to_flush_.push_back(std::move(c));
    return true;
}

// Frames queued while a batch is delivered join it: the writes wait until
// nothing more is queued, so a backend releasing a burst meets one flush.
void worker::drain() {
    std::vector<delivery> batch = std::move(spare_);
    draining_ = true;
    for (;;) {
        {
            const std::lock_guard lock(mutex_);
            batch.swap(queued_);
            if (batch.empty()) {
                posted_ = false;
                break;
            }
        }
        for (const delivery& d : batch) {
            if (auto c = d.to.lock()) {
                d.fn(*c, *d.f);
            }
        }
        batch.clear();
    }
    draining_ = false;
    // A burst's storage is kept for the next one, unless the burst was rare
    // in size (logins by the thousand): idle gateways hold little.
    if (batch.capacity() <= 4096) {
        spare_ = std::move(batch);
    }
    std::vector<std::shared_ptr<connection>> flushes;
    flushes.swap(to_flush_);
    for (const auto& c : flushes) {
        c->flush();
    }
}

namespace {

// Sinks that bring a core's watched frames and replies onto the
// connection's thread through its worker's queue, if the connection still
// exists then. They hold a weak pointer and the worker: nothing the
// connection owns.
template <class Connection> local_sink watch_sink_for(Connection& c) {
    return [weak = std::weak_ptr<connection>(c.shared_from_this()), &w = c.worker_of()](shared_frame f) {
        w.deliver(weak, [](connection& to, const frame::frame& got) { static_cast<Connection&>(to).core().deliver(got); },
                  std::move(f));
    };
}

// Replies take the same queue as watched frames, so a connection meets
// both in the order the backend released them.
template <class Connection> backends::frame_sink reply_sink_for(Connection& c) {
    return [weak = std::weak_ptr<connection>(c.shared_from_this()), &w = c.worker_of()](frame::frame r) {
        w.deliver(weak, [](connection& to, const frame::frame& got) { static_cast<Connection&>(to).core().deliver(got); },
                  std::make_shared<const frame::frame>(std::move(r)));
    };
}

std::string peer_of(const tcp::socket& s) {
    boost::system::error_code ec;
    const auto ep = s.remote_endpoint(ec);
    return ec ? std::string{"?"} : ep.address().to_string() + ":" + std::to_string(ep.port());
}

// The client's address without the port: what password guesses are counted by.
std::string address_of(const tcp::socket& s) {
    boost::system::error_code ec;
    const auto ep = s.remote_endpoint(ec);
    return ec ? std::string{"?"} : ep.address().to_string();
}

// A plain socket's outgoing bytes: appended to one buffer and sent at once
// with a non-blocking send; what the socket does not take goes out in one
// asynchronous write, and what is appended meanwhile waits for it. While
// the worker delivers a batch of watched frames the send waits for the
// batch's end (worker::flush_later), so a burst costs one send.
//
// The owner (a friend) has ended_ (nothing more is read or written),
// finishing_ (it ends once its queue is written), close_reason_ and
// ended(reason); its flush() calls flushed(). Nothing is kept between
// writes: an idle connection holds no buffer.
class outbox {
public:
    // Queued and not yet taken by the socket.
    std::size_t bytes() const { return pending_.size() + in_flight_.size() - sent_; }
    // No write in flight and none waiting for the batch's end.
    bool idle() const { return !writing_ && !held_; }
    void drop_pending() { std::string().swap(pending_); }
    void queue(std::string_view bytes) { pending_.append(bytes); }

    // Queues `parts`, in order, and sends. When nothing is queued and the
    // worker is not in a batch they go straight from the caller's buffers,
    // and only what the socket does not take is copied.
    template <class Owner>
    void write(Owner& owner, tcp::socket& socket, std::string_view first, std::string_view second = {}) {
        if (writing_ || held_ || !pending_.empty() || owner.worker_of().batching()) {
            pending_.append(first);
            pending_.append(second);
            send(owner, socket);
            return;
        }
        const std::array<asio::const_buffer, 2> buffers{asio::buffer(first), asio::buffer(second)};
        boost::system::error_code ec;
        std::size_t n = socket.write_some(buffers, ec);  // an error: the asynchronous write reports it
        const std::size_t from_first = std::min(n, first.size());
        n -= from_first;
        pending_.append(first.substr(from_first));
        pending_.append(second.substr(std::min(n, second.size())));
        send(owner, socket);
    }

    // Sends what is pending, now or at the end of the worker's batch;
    // `now = false` leaves it to the asynchronous write.
    template <class Owner> void send(Owner& owner, tcp::socket& socket, bool now = true) {
        if (writing_ || held_ || pending_.empty()) {
            return;
        }
        if (owner.worker_of().flush_later(owner.shared_from_this())) {
            held_ = true;
            return;
        }
        in_flight_.swap(pending_);
        sent_ = 0;
        boost::system::error_code ec;
        while (now && sent_ < in_flight_.size()) {
            const std::size_t n = socket.write_some(asio::buffer(in_flight_.data() + sent_, in_flight_.size() - sent_), ec);
            if (ec) {
                break;  // would_block, or an error the asynchronous write reports
            }
            sent_ += n;
        }
        if (sent_ == in_flight_.size()) {
            release();
            return;
        }
        writing_ = true;
        asio::async_write(socket, asio::buffer(in_flight_.data() + sent_, in_flight_.size() - sent_),
                          [self = owner.shared_from_this(), &owner, &socket, this](boost::system::error_code error,
                                                                                    std::size_t) {
                              writing_ = false;
                              release();
                              settle(owner, socket, error);
                          });
    }

    // The worker's batch has ended.
    template <class Owner> void flushed(Owner& owner, tcp::socket& socket) {
        held_ = false;
        settle(owner, socket);
    }

    // After a write or a batch: the owner ends on an error, and a finishing
    // owner once everything is written; otherwise what is pending goes out.
    template <class Owner> void settle(Owner& owner, tcp::socket& socket, boost::system::error_code error = {}) {
        if (owner.ended_) {
            return;
        }
        if (error) {
            owner.ended(error.message());
            return;
        }
        send(owner, socket);
        if (owner.finishing_ && idle()) {
            owner.ended(owner.close_reason_);
        }
    }

private:
    void release() {
        std::string().swap(in_flight_);
        sent_ = 0;
    }

    std::string pending_;
    std::string in_flight_;
    std::size_t sent_ = 0;  // of in_flight_
    bool writing_ = false;
    bool held_ = false;
};

// ------------------------------------------------------------------ MSNP

// One MSNP client. Reads wait for readability and then drain the socket into
// a per-thread buffer, so an idle connection holds no read buffer at all.
// Frames from backends arrive on backend threads and are posted here.
class msnp_connection final : public connection, session_core::transport {
public:
    msnp_connection(session_context& ctx, worker& w, tcp::socket s)
        : connection(ctx, w, listener_protocol::msnp),
          socket_(std::move(s)),
          peer_(peer_of(socket_)),
          services_(*ctx.msnp, address_of(socket_)),
          idle_(socket_.get_executor()),
          codec_(services_, msnp::framer_limits{ctx.settings.lim.line_bytes, ctx.settings.lim.payload_bytes},
                 msnp::session_limits{ctx.settings.lim.name_bytes, ctx.settings.lim.message_bytes}),
          core_(ctx.objects, *this, codec_),
          throttle_(socket_.get_executor()),
          handshake_(socket_.get_executor()),
          commands_{static_cast<double>(ctx.settings.lim.commands_per_second)},
          relay_{static_cast<double>(ctx.settings.lim.relay_bytes_per_second)},
          capture_(ctx.capture) {}

    void start() override {
        log::debug("connection_opened", {{"protocol", "msnp"}, {"peer", peer_}});
        if (capture_) capture_id_ = capture_->open(peer_);
        socket_.non_blocking(true);
        if (ctx_.life.stopping) {
            shutdown();
            return;
        }
        arm_idle();
        // Sign-in must be over within handshake_timeout, however the bytes
        // trickle in (the idle timeout alone would let one byte every few
        // minutes keep an unauthenticated connection forever).
        handshake_.expires_after(ctx_.settings.lim.handshake_timeout);
        handshake_.async_wait([self = shared_from_this(), this](boost::system::error_code ec) {
            if (!ec && !codec_.signed_in()) {
                ended("not signed in within handshake_timeout");
            }
        });
        do_wait();
    }

    void shutdown() override { core_.shutdown(); }

    session_core& core() { return core_; }

private:
    // A token bucket: `rate` a second, bursts of twice that. Taking more
    // than it holds leaves a debt, which time pays back.
    struct bucket {
        double rate;
        double tokens = 2 * rate;
        // Seconds until the debt is paid; 0 without one.
        double take(double n, std::chrono::steady_clock::time_point now,
                    std::chrono::steady_clock::time_point since) {
            tokens = std::min(2 * rate, tokens + rate * std::chrono::duration<double>(now - since).count()) - n;
            return tokens < 0 ? -tokens / rate : 0;
        }
    };

    void arm_idle() {
        idle_.expires_after(ctx_.settings.lim.idle_timeout);
        idle_.async_wait([self = shared_from_this(), this](boost::system::error_code ec) {
            if (!ec) {
                ended("idle timeout");
            }
        });
    }

    void do_wait() {
        socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this(), this](boost::system::error_code ec) {
            on_readable(ec);
        });
    }

    void on_readable(boost::system::error_code ec) {
        if (ec || ended_) {
            if (!ended_) ended(ec.message());
            return;
        }
        thread_local std::array<char, 65536> buffer;
        for (;;) {
            const std::size_t n = socket_.read_some(asio::buffer(buffer), ec);
            if (ec == asio::error::would_block) {
                break;
            }
            if (ec) {
                ended(ec == asio::error::eof ? "client closed" : ec.message());
                return;
            }
            arm_idle();
            if (capture_) capture_->client(capture_id_, {buffer.data(), n});
            const std::uint64_t commands = codec_.commands();
            const std::uint64_t relayed = codec_.relayed();
            const std::uint64_t relayed_bytes = codec_.relayed_bytes();
            msnp::output out = codec_.feed({buffer.data(), n});
            core_.apply(std::move(out));
            if (ended_ || finishing_) {
                return;
            }
            const std::uint64_t msgs = codec_.relayed() - relayed;
            const double wait =
                meter(codec_.commands() - commands - msgs,
                      std::max<double>(static_cast<double>(codec_.relayed_bytes() - relayed_bytes), 1024.0 * msgs));
            if (wait > 0) {
                pause(wait);
                return;
            }
        }
        do_wait();
    }

    // The limits ([limits] commands_per_second, relay_bytes_per_second)
    // slow a client down and never cut it: over them, the gateway stops
    // reading from it until it is back within them, and TCP makes it wait.
    // So a file transfer over the switchboard, or a client's burst of
    // commands, takes longer instead of failing; an abusive client costs
    // no more than the limits allow. Returns how long to stop reading.
    double meter(std::uint64_t commands, double relayed_bytes) {
        const auto now = std::chrono::steady_clock::now();
        const double wait = std::max(commands_.take(static_cast<double>(commands), now, metered_),
                                     relay_.take(relayed_bytes, now, metered_));
        metered_ = now;
        return wait;
    }

    void pause(double seconds) {
        idle_.cancel();  // a client waiting for us is not idle
        ctx_.stats.throttled();
        log::debug("connection_throttled", {{"protocol", "msnp"}, {"peer", peer_}, {"wait_ms", static_cast<std::uint64_t>(seconds * 1000)}});
        throttle_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(seconds)));
        throttle_.async_wait([self = shared_from_this(), this](boost::system::error_code ec) {
            if (ec || ended_ || finishing_) return;
            arm_idle();
            do_wait();
        });
    }

    void write(std::string bytes) override { enqueue(std::move(bytes)); }
    void finish(std::uint16_t, std::string reason) override { finish(std::move(reason)); }
    local_sink watch_sink() override { return watch_sink_for(*this); }
    backends::frame_sink reply_sink() override { return reply_sink_for(*this); }

    void enqueue(std::string bytes) {
        if (bytes.empty() || ended_) {
            return;
        }
        if (out_.bytes() + bytes.size() > ctx_.settings.lim.write_queue_bytes) {
            ended("write queue over limit");
            return;
        }
        if (capture_) capture_->server(capture_id_, bytes);
        out_.write(*this, socket_, bytes);
    }

    friend class outbox;
    void flush() override { out_.flushed(*this, socket_); }

    // Writes what is queued, then closes.
    void finish(std::string reason) {
        if (finishing_ || ended_) {
            return;
        }
        finishing_ = true;
        close_reason_ = std::move(reason);
        out_.settle(*this, socket_);
    }

    void ended(const std::string& reason) {
        if (ended_) {
            return;
        }
        ended_ = true;
        idle_.cancel();
        throttle_.cancel();
        handshake_.cancel();
        log_closed(codec_.signed_in(), {{"protocol", "msnp"}, {"peer", peer_}, {"reason", reason}});
        if (capture_) capture_->close(capture_id_, reason != "client closed");
        core_.closed();
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
    }

    tcp::socket socket_;
    std::string peer_;
    msnp_client_services services_;  // before codec_, which holds it
    asio::steady_timer idle_;
    msnp::connection codec_;
    session_core core_;
    outbox out_;
    asio::steady_timer throttle_;
    asio::steady_timer handshake_;
    bucket commands_;
    bucket relay_;
    std::chrono::steady_clock::time_point metered_ = std::chrono::steady_clock::now();
    bool finishing_ = false;
    bool ended_ = false;
    std::string close_reason_;
    capture_writer* capture_;         // null unless [listeners.msnp] capture_dir is set
    std::uint64_t capture_id_ = 0;
};

// ------------------------------------------------------------------ WebSocket

// The codec's limits from the settings. The named rooms are built once per
// thread and shared by the connections' codecs, not copied into each.
const wsjson::limits& ws_codec_limits(const config::settings& s) {
    thread_local const config::settings* made_for = nullptr;
    thread_local wsjson::limits out;
    if (made_for != &s) {
        const config::limits& l = s.lim;
        out = {};
        if (const config::listener* ws = s.find_listener("ws")) out.named_rooms = ws->rooms;
        out.payload_bytes = l.payload_bytes;
        out.message_bytes = l.message_bytes;
        out.name_bytes = l.name_bytes;
        out.rate_per_second = l.commands_per_second;
        out.rate_burst = 2 * l.commands_per_second;
        made_for = &s;
    }
    return out;
}

constexpr std::string_view ws_path = "/ws";
constexpr std::uint16_t ws_policy_error = 1008;

// What every WebSocket connection has, whatever carries its frames: the
// codec, its session core, and the codec's services (password checks are
// account_check frames, answered on a backend's password thread and brought
// back to the connection's thread).
class ws_session : public connection, protected session_core::transport, protected wsjson::services {
public:
    session_core& core() { return core_; }
    auto executor() { return worker_.ctx.get_executor(); }

protected:
    ws_session(session_context& ctx, worker& w, std::string address)
        : connection(ctx, w, listener_protocol::ws),
          address_(std::move(address)),
          codec_(*this, ws_codec_limits(ctx.settings)),
          core_(ctx.objects, *this, codec_) {}

    local_sink watch_sink() override { return watch_sink_for(*this); }
    backends::frame_sink reply_sink() override { return reply_sink_for(*this); }

    // ---- wsjson::services

    void check_password(std::string_view handle, std::string_view password) override {
        ctx_.logins.check(std::string(handle), std::string(password), address_,
                         [weak = weak_from_this(), executor = executor(), h = std::string(handle)](
                             login_result r, std::chrono::seconds) {
                             const auto result = r == login_result::ok         ? wsjson::password_check::ok
                                                 : r == login_result::rejected ? wsjson::password_check::rejected
                                                                               : wsjson::password_check::unavailable;
                             asio::post(executor, [weak, h, result] {
                                 if (auto self = weak.lock()) {
                                     auto& c = static_cast<ws_session&>(*self);
                                     c.core_.apply(c.codec_.on_password_checked(h, result));
                                 }
                             });
                         });
    }
    std::string issue_session_token(std::string_view handle) override {
        return ctx_.tokens.issue_ticket(handle, now_ms());
    }
    std::optional<wsjson::token_owner> verify_session_token(std::string_view token) override {
        auto claims = ctx_.tokens.verify_ticket_claims(token, now_ms());
        if (!claims) return std::nullopt;
        return wsjson::token_owner{std::move(claims->handle), claims->issued_ms};
    }
    std::string new_room_id() override { return random_hex(16); }
    std::string new_endpoint_id() override { return random_hex(16); }
    std::uint64_t now_ms() override {
        return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
    }

    std::string address_;  // the client's, for login_guard
    wsjson::connection codec_;
    session_core core_;
};

using http_request = beast::http::request<beast::http::empty_body>;
using http_response = beast::http::response<beast::http::string_body>;

// A plain HTTP request on the WebSocket port (the page's files,
// gateway/net/web_assets.hpp) or a refused upgrade: the response, to be
// written and then the connection closed. Refusals are logged.
std::shared_ptr<http_response> http_answer(web_answer a, const http_request& req) {
    const auto status = static_cast<beast::http::status>(a.status);
    auto res = std::make_shared<http_response>(status, req.version());
    res->set(beast::http::field::server, "switchyard");
    if (!a.content_type.empty()) res->set(beast::http::field::content_type, a.content_type);
    for (const auto& [name, value] : a.headers) res->set(name, value);
    res->keep_alive(false);
    res->body() = std::move(a.body);
    if (a.status != 304) res->content_length(a.content_length);
    if (a.status >= 400) {
        static log::limited refusals(20, 5);
        refusals.write(log::log_level::info, "http_request_refused", {{"listener", "ws"},
                                           {"method", std::string(req.method_string())},
                                           {"target", std::string(req.target())},
                                           {"status", static_cast<unsigned>(status)},
                                           {"reason", res->body().substr(0, res->body().find('\n'))}});
    }
    return res;
}

// Browsers fail a connection whose server names a subprotocol they did not
// offer, so it is named only when offered.
bool subprotocol_offered(const http_request& req) {
    bool offered = false;
    for (const auto& part : beast::http::token_list(req[beast::http::field::sec_websocket_protocol])) {
        offered = offered || std::string_view(part) == wsjson::subprotocol;
    }
    return offered;
}

// One WebSocket client on Beast's stream: over TLS (wss://,
// NextLayer = beast::ssl_stream<beast::tcp_stream>), or over plain TCP
// (ws://, beast::tcp_stream) when permessage-deflate is on; plain ws://
// without it is ws_plain_connection's. The two differ only
// in how a connection starts (a TLS handshake first) and how one that never
// became a WebSocket ends (close_notify before the FIN); Beast's close
// handshake ends TLS itself. The port also answers plain HTTP: the request
// is read first, and only an upgrade on `ws_path` becomes a WebSocket.
// Writes go out one message at a time (Beast allows one write in flight); a
// close decision drops what is queued behind the message being written,
// then sends the close frame.
template <class NextLayer>
class ws_connection final : public ws_session {
public:
    static constexpr bool tls = !std::is_same_v<NextLayer, beast::tcp_stream>;

    // `next_layer_args` follow the socket into NextLayer's constructor: the
    // TLS context for wss://, nothing for ws://.
    template <class... NextLayerArgs>
    ws_connection(session_context& ctx, worker& w, tcp::socket s, NextLayerArgs&... next_layer_args)
        : ws_session(ctx, w, address_of(s)), peer_(peer_of(s)), ws_(std::move(s), next_layer_args...) {
        if constexpr (tls) {
            // OpenSSL frees its write buffer between writes: about 4 KiB
            // less per idle connection, which is most chat connections.
            SSL_set_mode(ws_.next_layer().native_handle(), SSL_MODE_RELEASE_BUFFERS);
        }
    }

    void start() override {
        log::debug("connection_opened", {{"protocol", "ws"}, {"peer", peer_}, {"tls", tls ? "modern" : "none"}});
        // One deadline covers the TLS handshake and the HTTP request's head.
        beast::get_lowest_layer(ws_).expires_after(ctx_.settings.lim.handshake_timeout);
        if constexpr (tls) {
            ws_.next_layer().async_handshake(asio::ssl::stream_base::server,
                                             [self = shared_from_this(), this](beast::error_code ec) {
                                                 if (ec) {
                                                     ended("TLS handshake failed: " + ec.message());
                                                     return;
                                                 }
                                                 read_request();
                                             });
        } else {
            read_request();
        }
    }

    // Before the handshake completes there is no WebSocket to close yet:
    // on_accept sees the gateway stopping and closes it properly then.
    void shutdown() override {
        if (accepted_) {
            core_.shutdown();
        }
    }

private:
    // ---- the HTTP request, then the upgrade

    void read_request() {
        request_.emplace();
        request_->header_limit(8192);
        request_->body_limit(0);
        beast::http::async_read(ws_.next_layer(), buffer_, *request_,
                                [self = shared_from_this(), this](beast::error_code ec, std::size_t) { on_request(ec); });
    }

    void on_request(beast::error_code ec) {
        if (ec) {
            ended(ec == beast::http::error::end_of_stream ? "client closed" : ec.message());
            return;
        }
        const auto& req = request_->get();
        const std::string_view target = req.target();
        const std::string_view path = target.substr(0, target.find('?'));
        if (!websocket::is_upgrade(req)) {
            return answer_http(answer_web_request(req.method_string(), target,
                                                  req[beast::http::field::if_none_match], ws_path));
        }
        if (path != ws_path) {
            return answer_http(web_text_answer(404, "WebSocket upgrades are served on " + std::string(ws_path) + "\n"));
        }
        const bool offered = subprotocol_offered(req);
        beast::get_lowest_layer(ws_).expires_never();
        const auto& lim = ctx_.settings.lim;
        websocket::stream_base::timeout t{};
        t.handshake_timeout = lim.handshake_timeout;
        t.idle_timeout = lim.idle_timeout;
        t.keep_alive_pings = true;
        ws_.set_option(t);
        // One byte over the codec's limit: the codec, not Beast, answers an
        // oversize message (1009 with its reason). Beast checks the limit as
        // it inflates, so a small compressed message cannot grow past it.
        ws_.read_message_max(lim.payload_bytes + 1);
        if (const config::listener* l = ctx_.settings.find_listener("ws"); l && l->permessage_deflate) {
            ws_.set_option(deflate_options());
        }
        ws_.set_option(websocket::stream_base::decorator([offered](websocket::response_type& res) {
            res.set(beast::http::field::server, "switchyard");
            if (offered) res.set(beast::http::field::sec_websocket_protocol, wsjson::subprotocol);
        }));
        ws_.async_accept(request_->release(), [self = shared_from_this(), this](beast::error_code e) { on_accept(e); });
    }

    // A plain HTTP request on the WebSocket port: answered, then closed.
    void answer_http(web_answer a) {
        auto res = http_answer(std::move(a), request_->get());
        beast::http::async_write(ws_.next_layer(), *res, [self = shared_from_this(), this, res](beast::error_code ec, std::size_t) {
            if (ec) {
                ended(ec.message());
                return;
            }
            end_transport("plain HTTP request answered");
        });
    }

    // Ends a connection that never became a WebSocket. Over TLS close_notify
    // goes first, and the wait for the client's is bounded by the handshake
    // timeout; then the TCP FIN.
    void end_transport(std::string reason) {
        if constexpr (tls) {
            beast::get_lowest_layer(ws_).expires_after(ctx_.settings.lim.handshake_timeout);
            ws_.next_layer().async_shutdown([self = shared_from_this(), this, reason = std::move(reason)](beast::error_code) {
                beast::error_code ignored;
                beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
                ended(reason);
            });
        } else {
            beast::error_code ignored;
            beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
            ended(reason);
        }
    }

    // permessage-deflate with its memory bounded. Per connection that
    // negotiates it Beast keeps an inflater and a deflater (13 KiB
    // together) and, once used:
    // * the deflater's buffers: 4 << server_max_window_bits bytes for its
    //   window, plus 4 << (memLevel + 7) for its hash table and pending
    //   symbols. With 10 and 4 that is 4 KiB + 8 KiB, against 136 KiB with
    //   Beast's default window of 15 bits. A 1 KiB window still spans the
    //   JSON envelope repeated from one message to the next, which is where
    //   these messages compress. Compressed writes also keep a 4 KiB
    //   buffer.
    // * the inflater's window, 1 << client_max_window_bits bytes: 32 KiB,
    //   since client_max_window_bits stays 15. A client that does not offer
    //   the parameter may not be asked for less, and Beast would decline
    //   the extension for it instead.
    // The compression level does not change memory; Beast's default stays.
    static websocket::permessage_deflate deflate_options() {
        websocket::permessage_deflate pmd;
        pmd.server_enable = true;
        pmd.server_max_window_bits = 10;
        pmd.client_max_window_bits = 15;
        pmd.memLevel = 4;
        return pmd;
    }

    void on_accept(beast::error_code ec) {
        if (ec) {
            ended(ec.message());
            return;
        }
        accepted_ = true;
        if (ctx_.life.stopping) {
            shutdown();
            return;
        }
        do_read();
    }

    // A message is read in steps of at most read_step bytes. Beast sizes a
    // step by the compressed length a frame announces, which the client
    // chooses: unbounded, a frame announcing a terabyte would ask for a
    // terabyte buffer. Bounded, a step inflates at most read_step bytes
    // past read_message_max before Beast answers 1009.
    static constexpr std::size_t read_step = 16 * 1024;

    void do_read() {
        ws_.async_read_some(buffer_, read_step,
                            [self = shared_from_this(), this](beast::error_code ec, std::size_t) { on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec) {
            // Beast has already answered protocol errors and idle peers with
            // a close frame where it could. Our own close is logged when its
            // handshake ends.
            if (!closing_) {
                ended(ec.message());
            }
            return;
        }
        if (closing_) {
            return;
        }
        if (!ws_.is_message_done()) {
            do_read();
            return;
        }
        const auto data = buffer_.cdata();
        const std::string_view message(static_cast<const char*>(data.data()), data.size());
        frame::output out = ws_.got_text() ? codec_.on_message(message) : codec_.on_binary(message);
        buffer_.consume(buffer_.size());
        // Most connections sit idle between small messages: a large one's
        // buffer is not kept for them.
        if (buffer_.capacity() > read_step) {
            buffer_.shrink_to_fit();
        }
        core_.apply(std::move(out));
        if (!closing_) {
            do_read();
        }
    }

    void write(std::string message) override {
        if (closing_) {
            return;
        }
        queued_bytes_ += message.size();
        if (queued_bytes_ > ctx_.settings.lim.write_queue_bytes) {
            finish(static_cast<std::uint16_t>(websocket::close_code::policy_error), "write queue over limit");
            return;
        }
        queue_.push_back(std::move(message));
        if (!writing_) {
            do_write();
        }
    }

    void do_write() {
        writing_ = true;
        ws_.text(true);
        ws_.async_write(asio::buffer(queue_.front()),
                        [self = shared_from_this(), this](beast::error_code ec, std::size_t) { on_write(ec); });
    }

    void on_write(beast::error_code ec) {
        writing_ = false;
        queued_bytes_ -= queue_.front().size();
        queue_.pop_front();
        if (ec) {
            ended(ec.message());
            return;
        }
        if (pending_close_) {
            send_close();
        } else if (!queue_.empty()) {
            do_write();
        }
    }

    // Close frames cannot overlap a write: wait for the one in flight.
    void finish(std::uint16_t code, std::string reason) override {
        if (closing_) {
            return;
        }
        closing_ = true;
        close_reason_ = websocket::close_reason(static_cast<websocket::close_code>(code), reason.substr(0, 123));
        // Nothing queued after a close decision is worth sending, but the
        // message being written (the front) must outlive its write.
        const auto keep = queue_.begin() + (writing_ ? 1 : 0);
        for (auto it = keep; it != queue_.end(); ++it) {
            queued_bytes_ -= it->size();
        }
        queue_.erase(keep, queue_.end());
        if (writing_) {
            pending_close_ = true;
        } else {
            send_close();
        }
    }

    void send_close() {
        pending_close_ = false;
        // Bounded by the stream's handshake timeout, which also covers the closing handshake.
        ws_.async_close(close_reason_, [self = shared_from_this(), this](beast::error_code ec) {
            ended(std::string(close_reason_.reason.data(), close_reason_.reason.size()), ec);
        });
    }

    // Every way a connection ends comes here once: one log line, and the
    // objects learn that the client is gone.
    void ended(const std::string& reason, beast::error_code close_error = {}) {
        if (ended_) {
            return;
        }
        ended_ = true;
        if (closing_) {
            log_closed(codec_.logged_in_once(), {{"protocol", "ws"},
                                            {"peer", peer_},
                                            {"reason", reason},
                                            {"code", static_cast<unsigned>(close_reason_.code)},
                                            {"close_error", close_error ? close_error.message() : std::string{"none"}}});
        } else {
            log_closed(codec_.logged_in_once(), {{"protocol", "ws"}, {"peer", peer_}, {"reason", reason}});
        }
        core_.closed();
    }

    std::string peer_;
    websocket::stream<NextLayer> ws_;
    beast::flat_buffer buffer_;
    std::optional<beast::http::request_parser<beast::http::empty_body>> request_;
    std::deque<std::string> queue_;
    std::size_t queued_bytes_ = 0;
    bool writing_ = false;
    bool accepted_ = false;
    bool closing_ = false;
    bool pending_close_ = false;
    bool ended_ = false;
    websocket::close_reason close_reason_;
};

// Sec-WebSocket-Accept for a client's key (RFC 6455 section 4.2.2):
// base64(SHA-1(key + the protocol's GUID)).
std::string websocket_accept(std::string_view key) {
    static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    std::string input(key);
    input.append(guid);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
    std::string out(4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), digest, SHA_DIGEST_LENGTH);
    out.resize(static_cast<std::size_t>(n));
    return out;
}

// A Sec-WebSocket-Key is 16 bytes in base64: 22 characters and "==".
bool valid_websocket_key(std::string_view key) {
    if (key.size() != 24 || key.substr(22) != "==") return false;
    return std::ranges::all_of(key.substr(0, 22), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    });
}

// One WebSocket client over plain TCP without extensions (ws://,
// permessage_deflate off). The HTTP request is read with Beast's parser and
// the 101 written here; after it the connection is served like
// msnp_connection: it waits for readability and drains the socket into a
// per-thread buffer, the RFC 6455 framer (protocols/websocket) turns the
// bytes into messages for the codec, and everything queued goes out in one
// gathered write. An idle connection holds no read buffer, no pending read
// operation and no queue.
//
// One timer serves every deadline: the HTTP request's (handshake_timeout);
// then idleness: after idle_timeout / 2 without a byte from the client a
// ping goes out, and after another half the connection is dropped; then,
// once our close frame is sent, the wait for the client's
// (handshake_timeout).
class ws_plain_connection final : public ws_session {
public:
    ws_plain_connection(session_context& ctx, worker& w, tcp::socket s)
        : ws_session(ctx, w, address_of(s)),
          socket_(std::move(s)),
          peer_(peer_of(socket_)),
          timer_(socket_.get_executor()),
          framer_(ctx.settings.lim.payload_bytes + 1) {}

    void start() override {
        log::debug("connection_opened", {{"protocol", "ws"}, {"peer", peer_}, {"tls", "none"}});
        arm_timer(ctx_.settings.lim.handshake_timeout);
        handshake_ = std::make_unique<handshake>();
        handshake_->parser.header_limit(8192);
        handshake_->parser.body_limit(0);
        beast::http::async_read(socket_, handshake_->buffer, handshake_->parser,
                                [self = shared_from_this(), this](beast::error_code ec, std::size_t) { on_request(ec); });
    }

    // Before the upgrade there is no WebSocket to close yet: on_request
    // sees the gateway stopping once the 101 is queued.
    void shutdown() override {
        if (upgraded_) {
            core_.shutdown();
        }
    }

private:
    // Only while the HTTP request is read.
    struct handshake {
        beast::flat_buffer buffer;
        beast::http::request_parser<beast::http::empty_body> parser;
    };

    // ---- the HTTP request, then the upgrade

    void on_request(beast::error_code ec) {
        if (ended_) {
            return;
        }
        if (ec) {
            ended(ec == beast::http::error::end_of_stream ? "client closed" : ec.message());
            return;
        }
        const http_request& req = handshake_->parser.get();
        const std::string_view target = req.target();
        const std::string_view path = target.substr(0, target.find('?'));
        if (!websocket::is_upgrade(req)) {
            return answer_http(answer_web_request(req.method_string(), target,
                                                  req[beast::http::field::if_none_match], ws_path));
        }
        if (path != ws_path) {
            return answer_http(web_text_answer(404, "WebSocket upgrades are served on " + std::string(ws_path) + "\n"));
        }
        if (req[beast::http::field::sec_websocket_version] != "13") {
            web_answer a = web_text_answer(426, "WebSocket version 13 is required\n");
            a.headers.emplace_back("Sec-WebSocket-Version", "13");
            return answer_http(std::move(a));
        }
        const std::string_view key = req[beast::http::field::sec_websocket_key];
        if (!valid_websocket_key(key)) {
            return answer_http(web_text_answer(400, "missing or invalid Sec-WebSocket-Key\n"));
        }
        std::string response = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Server: switchyard\r\n"
                               "Sec-WebSocket-Accept: " + websocket_accept(key) + "\r\n";
        if (subprotocol_offered(req)) {
            response += "Sec-WebSocket-Protocol: " + std::string(wsjson::subprotocol) + "\r\n";
        }
        response += "\r\n";
        // Bytes the client sent after its request are its first frames.
        const auto rest = handshake_->buffer.cdata();
        const std::string early(static_cast<const char*>(rest.data()), rest.size());
        handshake_.reset();
        upgraded_ = true;
        socket_.non_blocking(true);
        // The 101 goes out asynchronously: sent at once, it measurably raised
        // an idle connection's memory (ws_bench), for no gain in latency.
        out_.queue(response);
        out_.send(*this, socket_, false);
        arm_idle();
        if (ctx_.life.stopping) {
            shutdown();
        }
        if (!early.empty() && !take(early)) {
            return;
        }
        do_wait();
    }

    void answer_http(web_answer a) {
        auto res = http_answer(std::move(a), handshake_->parser.get());
        beast::http::async_write(socket_, *res, [self = shared_from_this(), this, res](beast::error_code ec, std::size_t) {
            ended(ec ? ec.message() : std::string{"plain HTTP request answered"});
        });
    }

    // ---- reading

    void do_wait() {
        socket_.async_wait(tcp::socket::wait_read,
                           [self = shared_from_this(), this](boost::system::error_code ec) { on_readable(ec); });
    }

    void on_readable(boost::system::error_code ec) {
        if (ended_ || finishing_) {
            return;
        }
        if (ec) {
            ended(ec.message());
            return;
        }
        thread_local std::array<char, 65536> buffer;
        for (;;) {
            const std::size_t n = socket_.read_some(asio::buffer(buffer), ec);
            if (ec == asio::error::would_block) {
                break;
            }
            if (ec) {
                ended(ec == asio::error::eof ? (closing_ ? close_reason_ : std::string{"client closed"}) : ec.message());
                return;
            }
            if (!closing_) {
                pinged_ = false;
                arm_idle();
            }
            if (!take({buffer.data(), n})) {
                return;
            }
        }
        do_wait();
    }

    // Feeds the framer and carries out what it gives; false when no more
    // is to be read.
    bool take(std::string_view bytes) {
        rfc6455::output out = framer_.feed(bytes);
        for (rfc6455::message& m : out.messages) {
            if (closing_ || ended_) {
                break;
            }
            core_.apply(m.text ? codec_.on_message(m.data) : codec_.on_binary(m.data));
        }
        if (ended_) {
            return false;
        }
        if (out.finished) {
            if (closing_) {
                // The client's answer to our close: the handshake is complete.
                end_after_writes(close_reason_);
            } else if (out.refused) {
                closing_ = true;
                close_code_ = out.close_code;
                close_reason_ = out.close_reason;
                enqueue_raw(std::move(out.send));
                end_after_writes(close_reason_);
            } else {
                // The client closed: its close is echoed, then the connection ends.
                enqueue_raw(std::move(out.send));
                end_after_writes("client closed");
            }
            return false;
        }
        // Pongs decided before a close of ours in this batch stay unsent:
        // nothing may follow a close frame.
        if (!closing_) {
            enqueue_raw(std::move(out.send));
        }
        return !finishing_;
    }

    // ---- timers

    void arm_timer(std::chrono::steady_clock::duration d) {
        timer_.expires_after(d);
        timer_.async_wait([self = shared_from_this(), this](boost::system::error_code ec) {
            if (!ec) {
                on_timer();
            }
        });
    }

    // No idle deadline when idle_timeout is 0.
    void arm_idle() {
        const auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(ctx_.settings.lim.idle_timeout);
        if (idle.count() > 0) {
            arm_timer(idle / 2);
        } else {
            timer_.cancel();
        }
    }

    void on_timer() {
        if (ended_) {
            return;
        }
        if (!upgraded_) {
            ended("handshake timeout");
        } else if (closing_ || finishing_) {
            ended(close_reason_.empty() ? std::string{"close timeout"} : close_reason_);
        } else if (!pinged_) {
            pinged_ = true;
            enqueue_raw(rfc6455::framer::encode_ping());
            arm_idle();
        } else {
            ended("idle timeout");
        }
    }

    // ---- writing

    void write(std::string message) override {
        if (closing_ || ended_) {
            return;
        }
        const std::string header = rfc6455::framer::text_header(message.size());
        if (out_.bytes() + header.size() + message.size() > ctx_.settings.lim.write_queue_bytes) {
            finish(ws_policy_error, "write queue over limit");
            return;
        }
        out_.write(*this, socket_, header, message);
    }

    // Frames of the connection's own (the 101, pongs, pings, close): not
    // held to the queue's limit.
    void enqueue_raw(std::string bytes) {
        if (bytes.empty() || ended_) {
            return;
        }
        out_.write(*this, socket_, bytes);
    }

    friend class outbox;
    void flush() override { out_.flushed(*this, socket_); }

    // The codec's close decision (or the write queue's): what is queued
    // and not yet being written is dropped, the close frame goes out, and
    // the client's close is awaited for at most handshake_timeout.
    void finish(std::uint16_t code, std::string reason) override {
        if (closing_ || ended_) {
            return;
        }
        closing_ = true;
        close_code_ = code;
        close_reason_ = std::move(reason);
        out_.drop_pending();
        std::string frame = framer_.close(code, close_reason_);
        if (frame.empty() || !upgraded_) {
            end_after_writes(close_reason_);
            return;
        }
        enqueue_raw(std::move(frame));
        arm_timer(ctx_.settings.lim.handshake_timeout);
    }

    // Writes what is queued, then ends the connection.
    void end_after_writes(std::string reason) {
        if (finishing_ || ended_) {
            return;
        }
        finishing_ = true;
        close_reason_ = std::move(reason);
        if (out_.idle()) {
            ended(close_reason_);
        } else {
            arm_timer(ctx_.settings.lim.handshake_timeout);
        }
    }

    // Every way a connection ends comes here once: one log line, and the
    // objects learn that the client is gone.
    void ended(const std::string& reason) {
        if (ended_) {
            return;
        }
        ended_ = true;
        timer_.cancel();
        if (close_code_ != 0) {
            log_closed(codec_.logged_in_once(), {{"protocol", "ws"},
                                            {"peer", peer_},
                                            {"reason", reason},
                                            {"code", static_cast<unsigned>(close_code_)},
                                            {"close_error", std::string{"none"}}});
        } else {
            log_closed(codec_.logged_in_once(), {{"protocol", "ws"}, {"peer", peer_}, {"reason", reason}});
        }
        core_.closed();
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
    }

    tcp::socket socket_;
    std::string peer_;
    asio::steady_timer timer_;
    rfc6455::framer framer_;
    std::unique_ptr<handshake> handshake_;
    outbox out_;
    std::uint16_t close_code_ = 0;
    bool upgraded_ = false;
    bool pinged_ = false;
    bool closing_ = false;    // our close frame is queued or sent
    bool finishing_ = false;  // the connection ends once the queue is written
    bool ended_ = false;
    std::string close_reason_;  // our close frame's reason, then why the connection ends
};

// The two transports of the WebSocket listener.
template class ws_connection<beast::tcp_stream>;
template class ws_connection<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace

std::shared_ptr<connection> make_msnp_connection(session_context& ctx, worker& w, tcp::socket s) {
    return std::make_shared<msnp_connection>(ctx, w, std::move(s));
}

std::shared_ptr<connection> make_ws_connection(session_context& ctx, worker& w, tcp::socket s) {
    // The listener opens with its TLS context made (net/server.cpp), or refuses to start.
    if (const config::listener* l = ctx.settings.find_listener("ws"); l && l->tls == config::tls_profile::modern) {
        return std::make_shared<ws_connection<beast::ssl_stream<beast::tcp_stream>>>(ctx, w, std::move(s),
                                                                                       *ctx.tls_modern);
    }
    // Plain ws:// without extensions needs none of Beast's stream.
    if (const config::listener* l = ctx.settings.find_listener("ws"); l && l->permessage_deflate) {
        return std::make_shared<ws_connection<beast::tcp_stream>>(ctx, w, std::move(s));
    }
    return std::make_shared<ws_plain_connection>(ctx, w, std::move(s));
}

}  // namespace switchyard::gateway
