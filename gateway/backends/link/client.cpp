#include "gateway/backends/link/client.hpp"

#include "gateway/backends/link/endpoints.hpp"
#include "gateway/ops/log.hpp"

#include "protocols/frame/link.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

namespace switchyard::gateway::link {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
namespace wire = frame::link;
using clock = std::chrono::steady_clock;

std::string new_incarnation() {
    std::random_device rd;
    std::uniform_int_distribution<int> digit(0, 15);
    std::string out(16, '0');
    for (char& c : out) {
        c = "0123456789abcdef"[digit(rd)];
    }
    return out;
}

class client::impl : public std::enable_shared_from_this<client::impl> {
public:
    explicit impl(client_options opt)
        : opt_(std::move(opt)),
          socket_(ctx_),
          retry_(ctx_),
          heartbeat_(ctx_),
          guard_(asio::make_work_guard(ctx_)),
          decoder_(opt_.max_frame) {}

    void start() {
        thread_ = std::thread([this] { ctx_.run(); });
        asio::post(ctx_, [self = shared_from_this()] { self->connect(); });
    }

    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        opened_.notify_all();
        asio::post(ctx_, [this] {
            ++generation_;
            boost::system::error_code ignored;
            socket_.close(ignored);
            retry_.cancel();
            heartbeat_.cancel();
        });
        // The thread runs out of work once the closing above has run and
        // the cancelled operations have completed. Stopping it instead
        // could skip the closing, and would leave those operations' handlers,
        // which own this object, in the context this object owns: the
        // connection would stay open until the backend gave up on its
        // silence.
        guard_.reset();
        if (thread_.joinable()) {
            thread_.join();
        }
    }

    void send(frame::frame f, backends::frame_sink reply) {
        // The backend decodes what it is sent under the wire's limits, and
        // a record it cannot decode ends the link. A frame over a limit
        // (a name too long, text that is not UTF-8) is answered here as
        // the backend itself would answer it, and the link goes on.
        if (auto refusal = undecodable(f)) {
            if (reply) reply(std::move(*refusal));
            return;
        }
        std::unique_lock lock(mutex_);
        registry_.note(f);
        if (state_ != state::open || stopping_) {
            lock.unlock();
            if (reply) {
                reply(frame::frame{f.corr, std::move(f.object), {},
                                   frame::error{frame::error_code::backend_unavailable,
                                                "the backend link \"" + opt_.name + "\" is down"}});
            }
            return;
        }
        const std::uint64_t id = next_id_++;
        pending_.emplace(id, pending{f.corr, std::move(reply), f.object});
        f.corr = id;
        queue_locked(wire::request{std::move(f)});
    }

    void subscribe(std::string_view object, backends::frame_sink sink) {
        std::lock_guard lock(mutex_);
        unsubscribed_while_down_.erase(std::string(object));
        subscriptions_.insert_or_assign(std::string(object), std::move(sink));
        if (state_ == state::open) {
            queue_locked(wire::subscribe{std::string(object)});
        }
    }

    void unsubscribe(std::string_view object) {
        std::lock_guard lock(mutex_);
        if (subscriptions_.erase(std::string(object)) == 0) {
            return;
        }
        if (state_ == state::open) {
            queue_locked(wire::unsubscribe{std::string(object)});
        } else {
            unsubscribed_while_down_.insert(std::string(object));
        }
    }

    backends::health check() const {
        std::lock_guard lock(mutex_);
        const std::string where = "link to " + opt_.address + ":" + std::to_string(opt_.port);
        if (state_ == state::open) {
            return {true, where + " is open"};
        }
        return {false, where + " is down" + (last_error_.empty() ? std::string() : ": " + last_error_)};
    }

    bool wait_open(std::chrono::milliseconds limit) const {
        std::unique_lock lock(mutex_);
        return opened_.wait_for(lock, limit, [this] { return state_ == state::open || stopping_; }) &&
               state_ == state::open;
    }

    client_statistics stats() const {
        std::lock_guard lock(mutex_);
        client_statistics s = stats_;
        s.open = state_ == state::open;
        s.registering = registering_;
        s.endpoints = registry_.size();
        s.bytes_sent = bytes_sent_;
        s.bytes_received = bytes_received_;
        return s;
    }

private:
    enum class state { down, connecting, open };
    struct pending {
        std::uint64_t corr;  // the session's own
        backends::frame_sink sink;
        std::string object;  // for the error that answers it if the link goes down
        bool registration = false;  // sent again after the backend lost it
    };

    // The error the backend would reply to `f` if `f` breaks a limit of
    // the wire encoding, as a frame for the session; nothing if it does not.
    std::optional<frame::frame> undecodable(const frame::frame& f) const {
        const auto decoded = frame::decode(frame::encode(f), opt_.max_frame);
        if (decoded) {
            return std::nullopt;
        }
        frame::error_code code = frame::error_code::malformed;
        if (decoded.error().code == frame::errc::oversize) {
            code = frame::error_code::oversize;
        } else if (decoded.error().code == frame::errc::invalid_utf8) {
            code = frame::error_code::invalid_text;
        }
        return frame::frame{f.corr, f.object, {}, frame::error{code, decoded.error().to_string()}};
    }

    void queue_locked(const wire::message& m) {
        wire::encode(m, out_);
        if (!writing_) {
            writing_ = true;
            asio::post(ctx_, [self = shared_from_this(), gen = generation_.load()] { self->do_write(gen); });
        }
    }

    // ---- io thread

    void connect() {
        boost::system::error_code ec;
        const auto address = asio::ip::make_address(opt_.address, ec);
        if (ec) {
            failed("bad address: " + ec.message());
            return;
        }
        {
            std::lock_guard lock(mutex_);
            if (stopping_) return;
            state_ = state::connecting;
        }
        const auto gen = ++generation_;
        socket_ = tcp::socket(ctx_);
        socket_.async_connect(tcp::endpoint(address, opt_.port), [self = shared_from_this(), gen](
                                                                     boost::system::error_code error) {
            if (gen != self->generation_) return;
            if (error) {
                self->failed("connect: " + error.message());
                return;
            }
            boost::system::error_code ignored;
            self->socket_.set_option(tcp::no_delay(true), ignored);
            self->decoder_ = wire::decoder(self->opt_.max_frame);
            self->last_read_ = clock::now();
            {
                std::lock_guard lock(self->mutex_);
                self->out_.clear();
                self->writing_ = false;
                self->queue_locked(wire::open{wire::lowest_version, wire::highest_version, self->opt_.gateway,
                                              self->opt_.incarnation, self->received_});
            }
            self->do_read(gen);
        });
    }

    void do_read(std::uint64_t gen) {
        socket_.async_read_some(asio::buffer(buffer_), [self = shared_from_this(), gen](boost::system::error_code ec,
                                                                                         std::size_t n) {
            if (gen != self->generation_) return;
            if (ec) {
                self->failed(ec == asio::error::eof ? "the backend closed the link" : ec.message());
                return;
            }
            self->last_read_ = clock::now();
            self->bytes_received_.fetch_add(n, std::memory_order_relaxed);
            self->decoder_.feed(std::string_view(self->buffer_.data(), n));
            if (self->on_messages(gen)) {
                self->do_read(gen);
            }
        });
    }

    bool on_messages(std::uint64_t gen) {
        // What one read brought wakes each receiving worker once.
        backends::release_burst burst;
        for (;;) {
            auto next = decoder_.next();
            if (!next) {
                failed(next.error());
                return false;
            }
            if (!*next) {
                // One acknowledgement for what this read brought.
                if (received_ > acknowledged_) {
                    acknowledged_ = received_;
                    std::lock_guard lock(mutex_);
                    queue_locked(wire::received{received_});
                }
                return true;
            }
            wire::message& m = **next;
            if (auto* r = std::get_if<wire::reply>(&m)) {
                on_reply(std::move(r->f));
            } else if (auto* p = std::get_if<wire::publish>(&m)) {
                // A resumed link may repeat what arrived before it ended.
                if (p->seq > received_) {
                    received_ = p->seq;
                    on_publish(std::move(p->f));
                }
            } else if (auto* a = std::get_if<wire::accept>(&m)) {
                on_accept(*a, gen);
            } else if (auto* refused = std::get_if<wire::refuse>(&m)) {
                failed("refused: " + refused->reason);
                return false;
            } else if (!std::holds_alternative<wire::pong>(m)) {
                failed("unexpected " + std::string(wire::name(m)) + " from the backend");
                return false;
            }
        }
    }

    void on_accept(const wire::accept& a, std::uint64_t gen) {
        std::size_t registered = 0;
        bool restarted = false;
        {
            std::lock_guard lock(mutex_);
            if (state_ != state::connecting) {
                return;
            }
            state_ = state::open;
            lease_ = std::chrono::milliseconds(std::max<std::uint64_t>(a.lease_ms, 30));
            restarted = !backend_instance_.empty() && backend_instance_ != a.backend;
            backend_instance_ = a.backend;
            ++stats_.connects;
            retry_wait_ = opt_.retry_first;
            last_error_.clear();
            // Subscriptions first: what the registrations below make the
            // backend publish reaches this gateway's sessions.
            if (a.resumed) {
                // The backend kept this lease's subscriptions: drop those
                // given up while the link was down.
                for (const auto& object : unsubscribed_while_down_) {
                    queue_locked(wire::unsubscribe{object});
                }
            } else {
                received_ = 0;
                acknowledged_ = 0;
            }
            unsubscribed_while_down_.clear();
            for (const auto& [object, sink] : subscriptions_) {
                queue_locked(wire::subscribe{object});
            }
            if (!a.resumed) {
                for (frame::frame f : registry_.registrations()) {
                    const std::uint64_t id = next_id_++;
                    pending_.emplace(id, pending{0, {}, f.object, true});
                    f.corr = id;
                    queue_locked(wire::request{std::move(f)});
                    ++registered;
                }
                stats_.registrations += registered;
                registering_ = registered;
                registering_since_ = clock::now();
            }
        }
        opened_.notify_all();
        log::info("link_open", {{"backend", opt_.name},
                                {"version", static_cast<unsigned>(a.version)},
                                {"resumed", a.resumed},
                                {"backend_restarted", restarted},
                                {"registered", registered}});
        heartbeat(gen);
    }

    void on_reply(frame::frame f) {
        pending p;
        bool registered = false;
        {
            std::lock_guard lock(mutex_);
            auto it = pending_.find(f.corr);
            if (it == pending_.end()) {
                return;
            }
            // An initial presence burst comes before the request's last reply.
            const bool last = !std::holds_alternative<frame::presence_update>(f.content);
            p = last ? std::move(it->second) : it->second;
            if (last) pending_.erase(it);
            registered = last && p.registration && registering_ > 0 && --registering_ == 0;
            if (registered) {
                stats_.last_registration =
                    std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - registering_since_);
            }
        }
        if (registered) {
            // Every session is known to the backend again.
            log::info("link_registered", {{"backend", opt_.name}, {"ms", stats_.last_registration.count()}});
        }
        // A request the session sent without a corr gets only errors, as
        // from any backend.
        if (p.sink && (p.corr != 0 || std::holds_alternative<frame::error>(f.content))) {
            f.corr = p.corr;
            p.sink(std::move(f));
        } else if (!p.sink) {
            if (const auto* e = std::get_if<frame::error>(&f.content)) {
                log::debug("link_registration_refused", {{"backend", opt_.name}, {"object", f.object},
                                                         {"error", e->reason}});
            }
        }
    }

    void on_publish(frame::frame f) {
        backends::frame_sink sink;
        {
            std::lock_guard lock(mutex_);
            auto it = subscriptions_.find(f.object);
            if (it == subscriptions_.end()) {
                return;
            }
            sink = it->second;
        }
        sink(std::move(f));
    }

    // Renews the lease at a third of it, and gives up on a backend that has
    // said nothing (not even a pong) for a whole lease.
    void heartbeat(std::uint64_t gen) {
        std::chrono::milliseconds lease;
        {
            std::lock_guard lock(mutex_);
            lease = lease_;
        }
        heartbeat_.expires_after(lease / 3);
        heartbeat_.async_wait([self = shared_from_this(), gen, lease](boost::system::error_code ec) {
            if (ec || gen != self->generation_) return;
            if (clock::now() - self->last_read_ >= lease) {
                self->failed("the backend has been silent for a whole lease");
                return;
            }
            {
                std::lock_guard lock(self->mutex_);
                self->queue_locked(wire::ping{});
            }
            self->heartbeat(gen);
        });
    }

    void do_write(std::uint64_t gen) {
        if (gen != generation_) return;
        {
            std::lock_guard lock(mutex_);
            if (out_.empty()) {
                writing_ = false;
                return;
            }
            in_flight_.swap(out_);
            out_.clear();
        }
        asio::async_write(socket_, asio::buffer(in_flight_), [self = shared_from_this(), gen](
                                                                   boost::system::error_code ec, std::size_t n) {
            self->bytes_sent_.fetch_add(n, std::memory_order_relaxed);
            if (gen != self->generation_) return;
            self->in_flight_.clear();
            if (ec) {
                self->failed("write: " + ec.message());
                return;
            }
            self->do_write(gen);
        });
    }

    // Ends the connection, answers what was in flight, and tries again.
    void failed(std::string why) {
        ++generation_;
        boost::system::error_code ignored;
        socket_.close(ignored);
        heartbeat_.cancel();
        std::map<std::uint64_t, pending> lost;
        bool was_open = false;
        {
            std::lock_guard lock(mutex_);
            was_open = state_ == state::open;
            state_ = state::down;
            lost.swap(pending_);
            registering_ = 0;
            out_.clear();
            writing_ = false;
            if (why != last_error_ || was_open) {
                log::warn("link_down", {{"backend", opt_.name},
                                        {"address", opt_.address},
                                        {"port", opt_.port},
                                        {"error", why}});
            }
            last_error_ = std::move(why);
            if (stopping_) return;
        }
        {
            backends::release_burst burst;
            for (auto& [id, p] : lost) {
                if (p.sink) {
                    p.sink(frame::frame{p.corr, std::move(p.object), {},
                                        frame::error{frame::error_code::backend_unavailable,
                                                     "the backend link \"" + opt_.name + "\" went down"}});
                }
            }
        }
        retry_.expires_after(retry_wait_);
        retry_wait_ = std::min(retry_wait_ * 2, opt_.retry_max);
        retry_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (!ec) self->connect();
        });
    }

    const client_options opt_;
    asio::io_context ctx_;
    tcp::socket socket_;
    asio::steady_timer retry_;
    asio::steady_timer heartbeat_;
    asio::executor_work_guard<asio::io_context::executor_type> guard_;
    std::thread thread_;

    // io thread
    wire::decoder decoder_;
    std::array<char, 65536> buffer_{};
    std::string in_flight_;
    std::atomic<std::uint64_t> generation_{0};  // bumped per connection; stale handlers see it changed
    clock::time_point last_read_;
    // The last publication delivered, and the last one acknowledged; the
    // backend numbers them per lease, so a resumed link goes on counting.
    std::uint64_t received_ = 0;
    std::uint64_t acknowledged_ = 0;
    std::chrono::milliseconds retry_wait_ = opt_.retry_first;
    std::atomic<std::uint64_t> bytes_sent_{0};
    std::atomic<std::uint64_t> bytes_received_{0};

    mutable std::mutex mutex_;
    mutable std::condition_variable opened_;  // state_ became open, or stopping_ set
    state state_ = state::down;
    bool stopping_ = false;
    std::string out_;
    bool writing_ = false;
    std::uint64_t next_id_ = 1;
    std::map<std::uint64_t, pending> pending_;
    std::map<std::string, backends::frame_sink, std::less<>> subscriptions_;
    std::set<std::string> unsubscribed_while_down_;
    endpoint_registry registry_;
    std::chrono::milliseconds lease_{15000};
    std::string backend_instance_;
    std::string last_error_;
    client_statistics stats_;
    std::size_t registering_ = 0;  // registrations sent again and not answered yet
    clock::time_point registering_since_;
};

client::client(client_options opt) : impl_(std::make_shared<impl>(std::move(opt))) {
    impl_->start();
}

client::~client() {
    impl_->stop();
}

void client::send(frame::frame f, backends::frame_sink reply) {
    impl_->send(std::move(f), std::move(reply));
}
void client::subscribe(std::string_view object_id, backends::frame_sink sink) {
    impl_->subscribe(object_id, std::move(sink));
}
void client::unsubscribe(std::string_view object_id) {
    impl_->unsubscribe(object_id);
}

backends::health client::check() const {
    return impl_->check();
}
bool client::wait_open(std::chrono::milliseconds limit) const {
    return impl_->wait_open(limit);
}
client_statistics client::stats() const {
    return impl_->stats();
}

}  // namespace switchyard::gateway::link
