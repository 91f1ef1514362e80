#include "gateway/backends/link/server.hpp"

#include "gateway/backends/link/endpoints.hpp"
#include "gateway/ops/log.hpp"

#include "protocols/frame/link.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <deque>
#include <map>
#include <mutex>
#include <set>

namespace switchyard::gateway::link {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
namespace wire = frame::link;
using clock = std::chrono::steady_clock;

namespace {

// A gateway that lets this much pile up unread is stuck: its link is
// closed (it reconnects, and its lease carries its endpoints meanwhile).
constexpr std::size_t max_unsent = 64u << 20;

}  // namespace

class server::impl : public std::enable_shared_from_this<server::impl> {
public:
    class session;

    impl(asio::io_context& ctx, std::shared_ptr<backends::adapter> backend, server_options opt)
        : ctx_(ctx), acceptor_(ctx), backend_(std::move(backend)), opt_(std::move(opt)) {}

    boost::system::error_code listen(const tcp::endpoint& at) {
        boost::system::error_code ec;
        acceptor_.open(at.protocol(), ec);
        if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) acceptor_.bind(at, ec);
        if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
        return ec;
    }
    std::uint16_t port() const {
        boost::system::error_code ec;
        return acceptor_.local_endpoint(ec).port();
    }
    void start() { do_accept(); }
    void close();
    server_statistics stats() const;

    // ---- called by sessions, on the io thread
    void opened(const std::shared_ptr<session>& s, const wire::open& o);
    void request(session& s, frame::frame f);
    void subscribe(const session& s, const std::string& object);
    void unsubscribe(const session& s, const std::string& object);
    void acknowledged(const session& s, std::uint64_t seq);
    void renewed(const session& s);
    void ended(const std::shared_ptr<session>& s);

private:
    // What a lease's subscriptions published, numbered and kept until the
    // gateway acknowledges it (`received`): a link that ends loses nothing
    // that the same incarnation, resuming within its lease, is sent again.
    // Reached by the backend's threads when an object publishes.
    struct mailbox {
        std::mutex mutex;
        std::shared_ptr<session> target;  // the open link, if any
        std::deque<std::pair<std::uint64_t, std::string>> unacked;  // records
        std::size_t unacked_bytes = 0;
        std::uint64_t next_seq = 1;
        bool overflowed = false;  // the gateway fell too far behind: no resuming
        std::set<std::string> subscriptions;  // io thread only

        void deliver(std::string_view encoded_frame);
        void acknowledge(std::uint64_t seq);
        // Sends `s` what came after `received`, then what comes; false when
        // the backlog overflowed and the lease cannot resume.
        bool attach(const std::shared_ptr<session>& s, std::uint64_t received);
        void detach();
        bool resumable() {
            std::lock_guard lock(mutex);
            return !overflowed;
        }
    };

    struct lease {
        std::string incarnation;
        endpoint_registry endpoints;
        std::weak_ptr<session> holder;  // the link it came through, while open
        clock::time_point renewed;
        std::unique_ptr<asio::steady_timer> expiry;
        std::shared_ptr<mailbox> box = std::make_shared<mailbox>();
    };
    void drop_subscription(const std::shared_ptr<mailbox>& box, const std::string& object);

    // The leases subscribed to each object, read by the backend's threads
    // when an object publishes. Apart from the server: a backend thread
    // that publishes holds these while it does, and must never be the one
    // to release the server, which owns the backend and would stop it
    // (join the thread) from that thread.
    struct fanout {
        std::mutex mutex;
        std::map<std::string, std::set<std::shared_ptr<mailbox>>, std::less<>> subscribers;
        void publish(const std::string& object, const frame::frame& f);
    };

    void do_accept();
    void expire(const std::string& gateway, const char* why);

    asio::io_context& ctx_;
    tcp::acceptor acceptor_;
    std::shared_ptr<backends::adapter> backend_;
    server_options opt_;
    std::set<std::shared_ptr<session>> sessions_;  // io thread
    std::map<std::string, lease> leases_;          // by gateway name; io thread
    std::uint64_t expired_ = 0;                    // io thread
    std::shared_ptr<fanout> fanout_ = std::make_shared<fanout>();
    bool closed_ = false;
};

class server::impl::session : public std::enable_shared_from_this<session> {
public:
    session(impl& owner, tcp::socket socket)
        : owner_(owner), socket_(std::move(socket)), idle_(socket_.get_executor()), decoder_(owner.opt_.max_frame) {}

    void start() {
        last_read_ = clock::now();
        watch_idle();
        do_read();
    }

    // Any thread: queues bytes (whole records) for the gateway.
    void queue(std::string_view bytes) {
        std::lock_guard lock(out_mutex_);
        if (closed_) {
            return;
        }
        if (out_.size() + bytes.size() > max_unsent) {
            closed_ = true;
            asio::post(socket_.get_executor(), [self = shared_from_this()] {
                log::warn("link_closed", {{"gateway", self->gateway_}, {"error", "the gateway does not read"}});
                self->stop();
            });
            return;
        }
        out_.append(bytes);
        if (!writing_) {
            writing_ = true;
            asio::post(socket_.get_executor(), [self = shared_from_this()] { self->do_write(); });
        }
    }
    void send(const wire::message& m) {
        std::string bytes;
        wire::encode(m, bytes);
        queue(bytes);
    }

    // io thread.
    void stop() {
        if (stopped_) {
            return;
        }
        stopped_ = true;
        {
            std::lock_guard lock(out_mutex_);
            closed_ = true;
        }
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
        idle_.cancel();
        owner_.ended(shared_from_this());
    }
    // io thread: after a refusal, close once it is written.
    void stop_after_write() { stop_when_written_ = true; }

    const std::string& gateway() const { return gateway_; }
    asio::any_io_executor executor() { return socket_.get_executor(); }
    bool is_open() const { return !gateway_.empty(); }
    clock::time_point last_read() const { return last_read_; }
    void set_gateway(std::string name) { gateway_ = std::move(name); }

private:
    void do_read() {
        socket_.async_read_some(asio::buffer(buffer_), [self = shared_from_this()](boost::system::error_code ec,
                                                                                    std::size_t n) {
            if (self->stopped_) {
                return;
            }
            if (ec) {
                if (ec != asio::error::eof && ec != asio::error::operation_aborted) {
                    log::info("link_closed", {{"gateway", self->gateway_}, {"error", ec.message()}});
                }
                self->stop();
                return;
            }
            self->last_read_ = clock::now();
            self->decoder_.feed(std::string_view(self->buffer_.data(), n));
            if (!self->on_messages()) {
                return;
            }
            self->owner_.renewed(*self);
            self->do_read();
        });
    }

    // False once the link is done with.
    bool on_messages() {
        for (;;) {
            auto next = decoder_.next();
            if (!next) {
                log::warn("link_refused", {{"gateway", gateway_}, {"error", next.error()}});
                stop();
                return false;
            }
            if (!*next) {
                return true;
            }
            wire::message& m = **next;
            if (!is_open()) {
                auto* o = std::get_if<wire::open>(&m);
                if (o == nullptr) {
                    log::warn("link_refused", {{"error", std::string("expected open, got ") +
                                                             std::string(wire::name(m))}});
                    stop();
                    return false;
                }
                owner_.opened(shared_from_this(), *o);
                if (!is_open()) {
                    return false;  // refused: closes once the refusal is written
                }
                continue;
            }
            if (auto* r = std::get_if<wire::request>(&m)) {
                owner_.request(*this, std::move(r->f));
            } else if (auto* got = std::get_if<wire::received>(&m)) {
                owner_.acknowledged(*this, got->seq);
            } else if (auto* s = std::get_if<wire::subscribe>(&m)) {
                owner_.subscribe(*this, s->object);
            } else if (auto* u = std::get_if<wire::unsubscribe>(&m)) {
                owner_.unsubscribe(*this, u->object);
            } else if (std::holds_alternative<wire::ping>(m)) {
                send(wire::pong{});
            } else {
                log::warn("link_refused", {{"gateway", gateway_},
                                           {"error", "unexpected " + std::string(wire::name(m)) + " from a gateway"}});
                stop();
                return false;
            }
        }
    }

    void do_write() {
        {
            std::lock_guard lock(out_mutex_);
            if (out_.empty() || stopped_) {
                writing_ = false;
                return;
            }
            in_flight_.swap(out_);
            out_.clear();
        }
        asio::async_write(socket_, asio::buffer(in_flight_), [self = shared_from_this()](boost::system::error_code ec,
                                                                                          std::size_t) {
            self->in_flight_.clear();
            if (ec) {
                self->stop();
                return;
            }
            bool more = false;
            {
                std::lock_guard lock(self->out_mutex_);
                more = !self->out_.empty();
                if (!more) self->writing_ = false;
            }
            if (more) {
                self->do_write();
            } else if (self->stop_when_written_) {
                self->stop();
            }
        });
    }

    // A gateway sends at least every third of the lease; one silent for a
    // whole lease is gone even if its connection is not.
    void watch_idle() {
        idle_.expires_at(last_read_ + owner_.opt_.lease);
        idle_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (ec || self->stopped_) {
                return;
            }
            if (clock::now() - self->last_read_ >= self->owner_.opt_.lease) {
                log::warn("link_closed", {{"gateway", self->gateway_}, {"error", "silent for a whole lease"}});
                self->stop();
                return;
            }
            self->watch_idle();
        });
    }

    impl& owner_;
    tcp::socket socket_;
    asio::steady_timer idle_;
    wire::decoder decoder_;
    std::array<char, 65536> buffer_{};
    std::string gateway_;  // set once `open` is accepted
    clock::time_point last_read_;
    bool stopped_ = false;
    bool stop_when_written_ = false;

    std::mutex out_mutex_;
    std::string out_;        // queued, guarded
    std::string in_flight_;  // being written, io thread
    bool writing_ = false;   // guarded
    bool closed_ = false;    // guarded
};

void server::impl::do_accept() {
    acceptor_.async_accept([self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
        if (self->closed_) {
            return;
        }
        if (!ec) {
            socket.set_option(tcp::no_delay(true), ec);
            auto s = std::make_shared<session>(*self, std::move(socket));
            self->sessions_.insert(s);
            s->start();
        }
        self->do_accept();
    });
}

void server::impl::opened(const std::shared_ptr<session>& s, const wire::open& o) {
    const auto refuse = [&](std::string reason) {
        log::warn("link_refused", {{"gateway", o.gateway}, {"error", reason}});
        s->send(wire::refuse{std::move(reason)});
        s->stop_after_write();
    };
    if (o.highest < wire::lowest_version || o.lowest > wire::highest_version || o.lowest > o.highest) {
        refuse("no common version: the gateway speaks " + std::to_string(o.lowest) + " to " +
               std::to_string(o.highest) + ", this backend " + std::to_string(wire::lowest_version) + " to " +
               std::to_string(wire::highest_version));
        return;
    }
    if (o.gateway.empty() || o.incarnation.empty()) {
        refuse("a gateway name and incarnation are required");
        return;
    }
    const std::uint8_t version = std::min(o.highest, wire::highest_version);
    bool resumed = false;
    auto it = leases_.find(o.gateway);
    if (it != leases_.end()) {
        lease& l = it->second;
        auto old = l.holder.lock();
        if (old && old != s && l.incarnation != o.incarnation) {
            // Another process under the same name, while the first one's
            // link is alive: letting it in would end the first one's
            // endpoints, and the two would take turns doing so. A dead
            // holder's link ends by itself (at most a lease of silence),
            // and the newcomer, retrying, gets in then.
            refuse("the gateway name \"" + o.gateway + "\" is in use by a connected gateway");
            return;
        }
        if (old && old != s) {
            // The same process on a new link: the old one is half dead.
            l.holder.reset();
            old->stop();
        }
        if (l.incarnation == o.incarnation && l.box->resumable()) {
            resumed = true;
            l.expiry->cancel();
        } else {
            // The gateway restarted, or fell so far behind that what it
            // missed is gone: what it registered ends, and it registers
            // its sessions again.
            expire(o.gateway, l.incarnation == o.incarnation ? "backlog overflowed" : "gateway restarted");
            it = leases_.end();
        }
    }
    if (it == leases_.end()) {
        it = leases_.emplace(o.gateway, lease{}).first;
        it->second.incarnation = o.incarnation;
        it->second.expiry = std::make_unique<asio::steady_timer>(ctx_);
    }
    it->second.holder = s;
    it->second.renewed = clock::now();
    s->set_gateway(o.gateway);
    s->send(wire::accept{version, opt_.instance, static_cast<std::uint64_t>(opt_.lease.count()), resumed});
    // After the accept: what the gateway missed, then what comes.
    if (!it->second.box->attach(s, resumed ? o.received : 0)) {
        // It overflowed since the check above: start over, as for a
        // gateway too far behind.
        expire(o.gateway, "backlog overflowed");
        s->stop();
        return;
    }
    log::info("link_open", {{"gateway", o.gateway},
                            {"incarnation", o.incarnation},
                            {"version", static_cast<unsigned>(version)},
                            {"resumed", resumed},
                            {"endpoints", it->second.endpoints.size()}});
}

void server::impl::request(session& s, frame::frame f) {
    if (auto it = leases_.find(s.gateway()); it != leases_.end()) {
        it->second.endpoints.note(f);
    }
    backend_->send(std::move(f), [weak = s.weak_from_this()](frame::frame r) {
        if (auto self = weak.lock()) {
            self->send(wire::reply{std::move(r)});
        }
    });
}

void server::impl::fanout::publish(const std::string& object, const frame::frame& f) {
    const std::string encoded = switchyard::frame::encode(f);
    std::lock_guard lock(mutex);
    if (auto it = subscribers.find(object); it != subscribers.end()) {
        for (const auto& box : it->second) {
            box->deliver(encoded);
        }
    }
}

void server::impl::mailbox::deliver(std::string_view encoded_frame) {
    std::lock_guard lock(mutex);
    if (overflowed) {
        return;
    }
    std::string record;
    wire::encode_publish(next_seq, encoded_frame, record);
    if (unacked_bytes + record.size() > max_unsent) {
        // Not acknowledging for this long, the gateway is stuck or gone:
        // keep nothing more, end its link, and let it start over.
        overflowed = true;
        unacked.clear();
        unacked_bytes = 0;
        if (target) {
            asio::post(target->executor(), [t = target] { t->stop(); });
        }
        return;
    }
    if (target) {
        target->queue(record);
    }
    unacked_bytes += record.size();
    unacked.emplace_back(next_seq++, std::move(record));
}

void server::impl::mailbox::acknowledge(std::uint64_t seq) {
    std::lock_guard lock(mutex);
    while (!unacked.empty() && unacked.front().first <= seq) {
        unacked_bytes -= unacked.front().second.size();
        unacked.pop_front();
    }
}

bool server::impl::mailbox::attach(const std::shared_ptr<session>& s, std::uint64_t received) {
    std::lock_guard lock(mutex);
    if (overflowed) {
        return false;
    }
    for (const auto& [seq, record] : unacked) {
        if (seq > received) {
            s->queue(record);
        }
    }
    target = s;
    return true;
}

void server::impl::mailbox::detach() {
    std::lock_guard lock(mutex);
    target.reset();
}

void server::impl::subscribe(const session& s, const std::string& object) {
    auto it = leases_.find(s.gateway());
    if (it == leases_.end() || !it->second.box->subscriptions.insert(object).second) {
        return;
    }
    bool first = false;
    {
        std::lock_guard lock(fanout_->mutex);
        auto& set = fanout_->subscribers[object];
        first = set.empty();
        set.insert(it->second.box);
    }
    // Subscriptions change on this thread only, so nothing can come
    // between the count above and the backend call.
    if (first) {
        backend_->subscribe(object, [weak = std::weak_ptr<fanout>(fanout_), object](frame::frame f) {
            if (auto links = weak.lock()) {
                links->publish(object, f);
            }
        });
    }
}

void server::impl::unsubscribe(const session& s, const std::string& object) {
    if (auto it = leases_.find(s.gateway()); it != leases_.end()) {
        drop_subscription(it->second.box, object);
    }
}

void server::impl::drop_subscription(const std::shared_ptr<mailbox>& box, const std::string& object) {
    if (box->subscriptions.erase(object) == 0) {
        return;
    }
    bool last = false;
    {
        std::lock_guard lock(fanout_->mutex);
        auto it = fanout_->subscribers.find(object);
        if (it != fanout_->subscribers.end()) {
            it->second.erase(box);
            last = it->second.empty();
            if (last) fanout_->subscribers.erase(it);
        }
    }
    if (last) {
        backend_->unsubscribe(object);
    }
}

void server::impl::acknowledged(const session& s, std::uint64_t seq) {
    if (auto it = leases_.find(s.gateway()); it != leases_.end() && it->second.holder.lock().get() == &s) {
        it->second.box->acknowledge(seq);
    }
}

void server::impl::renewed(const session& s) {
    if (auto it = leases_.find(s.gateway()); it != leases_.end() && it->second.holder.lock().get() == &s) {
        it->second.renewed = s.last_read();
    }
}

void server::impl::ended(const std::shared_ptr<session>& s) {
    sessions_.erase(s);
    auto it = leases_.find(s->gateway());
    if (closed_ || it == leases_.end() || it->second.holder.lock() != s) {
        return;
    }
    lease& l = it->second;
    l.holder.reset();
    // Its subscriptions stay with the lease: what they publish meanwhile
    // waits for the gateway to resume.
    l.box->detach();
    // The lease runs from the gateway's last message, not from the moment
    // the link was seen to end.
    l.expiry->expires_at(l.renewed + opt_.lease);
    l.expiry->async_wait([self = shared_from_this(), gateway = s->gateway(),
                          incarnation = l.incarnation](boost::system::error_code ec) {
        if (ec || self->closed_) {
            return;
        }
        auto found = self->leases_.find(gateway);
        if (found != self->leases_.end() && found->second.incarnation == incarnation &&
            found->second.holder.expired()) {
            self->expire(gateway, "lease expired");
        }
    });
    log::info("link_lost", {{"gateway", s->gateway()},
                            {"endpoints", l.endpoints.size()},
                            {"lease_ms", opt_.lease.count()}});
}

void server::impl::expire(const std::string& gateway, const char* why) {
    auto it = leases_.find(gateway);
    if (it == leases_.end()) {
        return;
    }
    const auto endings = it->second.endpoints.endings(std::string("the gateway's ") + why);
    it->second.expiry->cancel();
    const auto box = it->second.box;
    box->detach();
    const auto objects = box->subscriptions;
    for (const auto& object : objects) {
        drop_subscription(box, object);
    }
    leases_.erase(it);
    expired_ += endings.size();
    log::info("lease_ended", {{"gateway", gateway}, {"reason", why}, {"endpoints", endings.size()}});
    for (const frame::frame& f : endings) {
        backend_->send(f, {});
    }
}

void server::impl::close() {
    if (closed_) {
        return;
    }
    closed_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    const auto all = sessions_;
    for (const auto& s : all) {
        s->stop();
    }
    for (auto& [name, l] : leases_) {
        l.expiry->cancel();
        l.box->detach();
        const auto objects = l.box->subscriptions;
        for (const auto& object : objects) {
            drop_subscription(l.box, object);
        }
    }
}

server_statistics server::impl::stats() const {
    server_statistics out;
    out.connections = sessions_.size();
    out.leases = leases_.size();
    for (const auto& [name, l] : leases_) {
        out.endpoints += l.endpoints.size();
    }
    out.expired = expired_;
    return out;
}

server::server(asio::io_context& ctx, std::shared_ptr<backends::adapter> backend, server_options opt)
    : impl_(std::make_shared<impl>(ctx, std::move(backend), std::move(opt))) {}

server::~server() {
    impl_->close();
}

boost::system::error_code server::listen(const tcp::endpoint& at) {
    return impl_->listen(at);
}
std::uint16_t server::port() const {
    return impl_->port();
}
void server::start() {
    impl_->start();
}
void server::close() {
    impl_->close();
}
server_statistics server::stats() const {
    return impl_->stats();
}

}  // namespace switchyard::gateway::link
