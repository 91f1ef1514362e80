// Client sessions: MSNP over TCP and WebSocket. Each feeds bytes to its
// sans-I/O codec from protocols/ and writes what the codec returns through a
// bounded queue.
#include "gateway/log.hpp"
#include "gateway/runtime.hpp"

#include "gateway/msnp_services.hpp"

#include "protocols/msnp/msnp.hpp"
#include "protocols/wsjson/wsjson.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <array>
#include <deque>
#include <map>

namespace switchyard::gateway {

namespace beast = boost::beast;
namespace websocket = beast::websocket;

connection::connection(runtime& rt, worker& w, listener_protocol p) : rt_(rt), worker_(w), protocol_(p) {
    rt_.live.fetch_add(1);
    worker_.connections.insert(this);
    rt_.stats.connection_opened(p);
}

connection::~connection() {
    worker_.connections.erase(this);
    rt_.stats.connection_closed(protocol_);
    if (rt_.live.fetch_sub(1) == 1 && rt_.stopping.load() && !rt_.finished.load()) {
        asio::post(rt_.workers.front()->ctx, rt_.on_drained);
    }
}

namespace {

std::string peer_of(const tcp::socket& s) {
    boost::system::error_code ec;
    const auto ep = s.remote_endpoint(ec);
    return ec ? std::string{"?"} : ep.address().to_string() + ":" + std::to_string(ep.port());
}

// ------------------------------------------------------------------ MSNP

// One MSNP client. Reads wait for readability and then drain the socket into
// a per-thread buffer, so an idle connection holds no read buffer at all.
// Frames from backends arrive on backend threads and are posted here.
class msnp_connection final : public connection {
public:
    msnp_connection(runtime& rt, worker& w, tcp::socket s)
        : connection(rt, w, listener_protocol::msnp),
          socket_(std::move(s)),
          peer_(peer_of(socket_)),
          idle_(socket_.get_executor()),
          codec_(*rt.msnp, msnp::framer_limits{rt.settings.lim.line_bytes, rt.settings.lim.payload_bytes},
                 msnp::session_limits{rt.settings.lim.name_bytes, rt.settings.lim.message_bytes}),
          tokens_(burst()) {}

    void start() override {
        log::debug("connection_opened", {{"protocol", "msnp"}, {"peer", peer_}});
        if (rt_.stopping) {
            shutdown();
            return;
        }
        socket_.non_blocking(true);
        arm_idle();
        do_wait();
    }

    void shutdown() override { apply(codec_.on_shutdown()); }

    ~msnp_connection() override {
        for (const auto& [object, id] : watches_) {
            rt_.objects.unwatch(object, id);
        }
    }

private:
    double burst() const { return 2.0 * rt_.settings.lim.commands_per_second; }

    void arm_idle() {
        idle_.expires_after(rt_.settings.lim.idle_timeout);
        idle_.async_wait([self = shared_from_this(), this](boost::system::error_code ec) {
            if (!ec) {
                close_now("idle timeout");
            }
        });
    }

    void do_wait() {
        socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this(), this](boost::system::error_code ec) {
            on_readable(ec);
        });
    }

    void on_readable(boost::system::error_code ec) {
        if (ec || closed_) {
            if (!closed_) close_now(ec.message());
            return;
        }
        thread_local std::array<char, 65536> buffer;
        for (;;) {
            const std::size_t n = socket_.read_some(asio::buffer(buffer), ec);
            if (ec == asio::error::would_block) {
                break;
            }
            if (ec) {
                close_now(ec == asio::error::eof ? "client closed" : ec.message());
                return;
            }
            arm_idle();
            const std::uint64_t before = codec_.commands();
            msnp::output out = codec_.feed({buffer.data(), n});
            if (!take_tokens(codec_.commands() - before)) {
                close_now("command rate over limit");
                return;
            }
            apply(std::move(out));
            if (closed_ || closing_) {
                return;
            }
        }
        do_wait();
    }

    // A token bucket over commands (payloads are not counted):
    // commands_per_second, bursts of twice that.
    bool take_tokens(std::uint64_t commands) {
        const auto now = std::chrono::steady_clock::now();
        const double rate = rt_.settings.lim.commands_per_second;
        tokens_ = std::min(burst(), tokens_ + rate * std::chrono::duration<double>(now - refilled_).count());
        refilled_ = now;
        tokens_ -= static_cast<double>(commands);
        return tokens_ >= 0;
    }

    // Carries out what the codec asked for, in order.
    void apply(msnp::output out) {
        enqueue(std::move(out.bytes));
        for (std::string& object : out.watch) {
            if (watches_.contains(object)) continue;
            std::weak_ptr<connection> weak = weak_from_this();
            auto executor = socket_.get_executor();
            const auto id = rt_.objects.watch(object, [weak, executor](shared_frame f) {
                asio::post(executor, [weak, f = std::move(f)] {
                    if (auto self = weak.lock()) static_cast<msnp_connection&>(*self).on_backend_frame(*f);
                });
            });
            watches_.emplace(std::move(object), id);
        }
        for (const std::string& object : out.unwatch) {
            if (auto it = watches_.find(object); it != watches_.end()) {
                rt_.objects.unwatch(object, it->second);
                watches_.erase(it);
            }
        }
        for (frame::frame& f : out.frames) {
            route(std::move(f));
        }
        if (out.close) {
            finish(out.close_reason);
        }
    }

    void route(frame::frame f) {
        std::weak_ptr<connection> weak = weak_from_this();
        auto executor = socket_.get_executor();
        const auto corr = f.corr;
        std::string object = f.object;
        const bool sent = rt_.objects.send(std::move(f), [weak, executor](frame::frame reply) {
            asio::post(executor, [weak, reply = std::move(reply)] {
                if (auto self = weak.lock()) static_cast<msnp_connection&>(*self).on_backend_frame(reply);
            });
        });
        if (!sent) {
            on_backend_frame(frame::frame{corr, std::move(object), {},
                                          frame::error{frame::error_code::backend_unavailable, "no backend serves it"}});
        }
    }

    void on_backend_frame(const frame::frame& f) {
        if (!closed_) {
            apply(codec_.on_frame(f));
        }
    }

    void enqueue(std::string bytes) {
        if (bytes.empty() || closed_) {
            return;
        }
        queued_bytes_ += bytes.size();
        if (queued_bytes_ > rt_.settings.lim.write_queue_bytes) {
            close_now("write queue over limit");
            return;
        }
        pending_.push_back(std::move(bytes));
        if (!writing_) {
            do_write();
        }
    }

    // Everything queued goes out in one gathered write: one writev per turn.
    void do_write() {
        writing_ = true;
        in_flight_.swap(pending_);
        std::vector<asio::const_buffer> buffers;
        buffers.reserve(in_flight_.size());
        for (const std::string& b : in_flight_) {
            buffers.emplace_back(asio::buffer(b));
        }
        asio::async_write(socket_, buffers, [self = shared_from_this(), this](boost::system::error_code ec, std::size_t n) {
            writing_ = false;
            queued_bytes_ -= n;
            // Released, not just cleared: most sessions sit idle between writes.
            std::vector<std::string>().swap(in_flight_);
            if (ec) {
                close_now(ec.message());
            } else if (!pending_.empty()) {
                do_write();
            } else if (closing_) {
                close_now(close_reason_);
            }
        });
    }

    // Writes what is queued, then closes.
    void finish(std::string reason) {
        if (closing_ || closed_) {
            return;
        }
        closing_ = true;
        close_reason_ = std::move(reason);
        if (!writing_) {
            close_now(close_reason_);
        }
    }

    void close_now(const std::string& reason) {
        if (closed_) {
            return;
        }
        closed_ = true;
        idle_.cancel();
        log::info("connection_closed", {{"protocol", "msnp"}, {"peer", peer_}, {"reason", reason}});
        // The objects learn the client is gone (bye, room_leave); their
        // replies find no connection and are dropped.
        msnp::output last = codec_.on_closed();
        for (frame::frame& f : last.frames) {
            route(std::move(f));
        }
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
    }

    tcp::socket socket_;
    std::string peer_;
    asio::steady_timer idle_;
    msnp::connection codec_;
    std::map<std::string, std::uint64_t> watches_;  // object id -> hub watch id
    std::vector<std::string> pending_;
    std::vector<std::string> in_flight_;
    std::size_t queued_bytes_ = 0;
    double tokens_;
    std::chrono::steady_clock::time_point refilled_ = std::chrono::steady_clock::now();
    bool writing_ = false;
    bool closing_ = false;
    bool closed_ = false;
    std::string close_reason_;
};

// ------------------------------------------------------------------ WebSocket

class ws_connection final : public connection {
public:
    ws_connection(runtime& rt, worker& w, tcp::socket s)
        : connection(rt, w, listener_protocol::ws), peer_(peer_of(s)), ws_(std::move(s)) {}

    void start() override {
        log::debug("connection_opened", {{"protocol", "ws"}, {"peer", peer_}});
        const auto& lim = rt_.settings.lim;
        websocket::stream_base::timeout t{};
        t.handshake_timeout = lim.handshake_timeout;
        t.idle_timeout = lim.idle_timeout;
        t.keep_alive_pings = true;
        ws_.set_option(t);
        ws_.read_message_max(lim.payload_bytes);
        ws_.set_option(websocket::stream_base::decorator(
            [](websocket::response_type& res) { res.set(beast::http::field::server, "switchyard"); }));
        ws_.async_accept([self = shared_from_this(), this](beast::error_code ec) { on_accept(ec); });
    }

    // Before the handshake completes there is no WebSocket to close yet:
    // on_accept sees the gateway stopping and closes it properly then.
    void shutdown() override {
        if (accepted_) {
            close(websocket::close_code::going_away, wsjson::connection::shutdown_reason);
        }
    }

private:
    void on_accept(beast::error_code ec) {
        if (ec) {
            log::info("connection_closed", {{"protocol", "ws"}, {"peer", peer_}, {"reason", ec.message()}});
            return;
        }
        accepted_ = true;
        if (rt_.stopping) {
            shutdown();
            return;
        }
        do_read();
    }

    void do_read() {
        ws_.async_read(buffer_, [self = shared_from_this(), this](beast::error_code ec, std::size_t) { on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec) {
            // Beast has already answered protocol errors, oversize messages
            // (1009) and idle peers with a close frame where it could.
            if (!closing_) {
                log::info("connection_closed", {{"protocol", "ws"}, {"peer", peer_}, {"reason", ec.message()}});
            }
            return;
        }
        if (closing_) {
            return;
        }
        const auto data = buffer_.cdata();
        wsjson::step out =
            codec_.on_message({static_cast<const char*>(data.data()), data.size()});
        buffer_.consume(buffer_.size());
        for (std::string& m : out.messages) {
            enqueue(std::move(m));
        }
        if (out.close != wsjson::close_code::none) {
            close(static_cast<websocket::close_code>(out.close), out.close_reason);
            return;
        }
        do_read();
    }

    void enqueue(std::string message) {
        queued_bytes_ += message.size();
        if (queued_bytes_ > rt_.settings.lim.write_queue_bytes) {
            close(websocket::close_code::policy_error, "write queue over limit");
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
            return;
        }
        if (pending_close_) {
            send_close();
        } else if (!queue_.empty()) {
            do_write();
        }
    }

    // Close frames cannot overlap a write: wait for the one in flight.
    void close(websocket::close_code code, std::string_view reason) {
        if (closing_) {
            return;
        }
        closing_ = true;
        close_reason_ = websocket::close_reason(code, std::string(reason.substr(0, 123)));
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
            log::info("connection_closed", {{"protocol", "ws"},
                                            {"peer", peer_},
                                            {"reason", std::string(close_reason_.reason.data(), close_reason_.reason.size())},
                                            {"code", static_cast<unsigned>(close_reason_.code)},
                                            {"close_error", ec ? ec.message() : std::string{"none"}}});
        });
    }

    std::string peer_;
    websocket::stream<beast::tcp_stream> ws_;
    beast::flat_buffer buffer_;
    wsjson::connection codec_;
    std::deque<std::string> queue_;
    std::size_t queued_bytes_ = 0;
    bool writing_ = false;
    bool accepted_ = false;
    bool closing_ = false;
    bool pending_close_ = false;
    websocket::close_reason close_reason_;
};

}  // namespace

std::shared_ptr<connection> make_msnp_connection(runtime& rt, worker& w, tcp::socket s) {
    return std::make_shared<msnp_connection>(rt, w, std::move(s));
}

std::shared_ptr<connection> make_ws_connection(runtime& rt, worker& w, tcp::socket s) {
    return std::make_shared<ws_connection>(rt, w, std::move(s));
}

}  // namespace switchyard::gateway
