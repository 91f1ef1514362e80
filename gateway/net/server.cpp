#include "gateway/net/server.hpp"

#include "gateway/backends/embedded/backend.hpp"
#include "gateway/backends/link/client.hpp"
#include "gateway/backends/link/server.hpp"
#include "gateway/ops/capture.hpp"
#include "gateway/ops/control.hpp"
#include "gateway/ops/log.hpp"
#include "gateway/login/keys.hpp"
#include "gateway/login/user_accounts.hpp"
#include "gateway/session/context.hpp"

#include <boost/asio/signal_set.hpp>

#include <openssl/ssl.h>
#include <sys/resource.h>
#include <sys/un.h>

#include <algorithm>
#include <ctime>
#include <limits>
#include <optional>
#include <thread>

#include <unistd.h>

namespace switchyard::gateway {

namespace {

std::vector<std::string> backend_names(const config::settings& s) {
    std::vector<std::string> names;
    for (const config::backend& b : s.backends) {
        names.push_back(b.name);
    }
    return names;
}

// Connections the public listeners may hold: max_connections, or else the
// descriptor limit less a reserve for the admin listener, backend links,
// databases and files. Logged with the limit.
std::size_t connection_cap(const config::limits& lim) {
    constexpr std::size_t reserve = 256;
    rlimit r{};
    std::size_t descriptors = 0;
    if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur != RLIM_INFINITY) {
        descriptors = static_cast<std::size_t>(r.rlim_cur);
    }
    std::size_t cap = lim.max_connections;
    if (cap == 0) {
        cap = descriptors == 0              ? std::numeric_limits<std::size_t>::max()
              : descriptors > 2 * reserve ? descriptors - reserve
                                          : descriptors / 2;
    }
    log::info("descriptors", {{"limit", descriptors}, {"max_connections", cap},
                              {"max_connections_per_address", lim.max_connections_per_address}});
    return cap;
}

// Everything a running gateway owns. Members are destroyed in reverse order:
// the backends (objects, and the embedded backends' password threads) stop
// before the workers' io_contexts their deliveries and login results are
// posted to; the workers' connections end before the metrics, tokens and
// lifecycle they use. Connections see only `sessions`.
struct gateway_state {
    gateway_state(const config::settings& s, key_set k)
        : settings(s),
          routes(s.routes_file, backend_names(s)),
          keys(std::move(k)),
          tokens(keys.keys),
          gate(connection_cap(s.lim), s.lim.max_connections_per_address),
          objects(routes, stats),
          logins(s, objects),
          sessions{settings, stats, objects, logins, tokens, life},
          ops{routes, [this](std::string_view trigger) { return reload_routes(trigger); }, {}} {
        sessions.gate = &gate;
    }

    const config::settings& settings;
    gateway::metrics stats;
    router routes;
    key_set keys;
    // Passport tickets, switchboard cookies and session tokens, signed with `keys`.
    token_service tokens;
    lifecycle life;
    admission gate;
    // Before the workers: it outlives every connection that records into it.
    std::unique_ptr<capture_writer> capture;
    std::vector<std::unique_ptr<worker>> workers;
    std::unique_ptr<asio::ssl::context> tls_modern;
    std::unique_ptr<asio::ssl::context> tls_legacy;
    hub objects;                          // backends and this gateway's subscriptions
    password_checker logins;              // account_check frames for password logins
    std::unique_ptr<msnp_services> msnp;  // made once the MSNP listener's port is known
    session_context sessions;
    operations ops;

    tl::expected<std::shared_ptr<const config::route_table>, config::error> reload_routes(std::string_view trigger);
};

tl::expected<std::shared_ptr<const config::route_table>, config::error> gateway_state::reload_routes(
    std::string_view trigger) {
    auto table = routes.reload();
    if (!table) {
        stats.routes_rejected();
        const auto current = routes.table();
        log::error("routes_rejected", {{"trigger", trigger},
                                       {"error", table.error().to_string()},
                                       {"active_version", current ? current->version : 0}});
        return table;
    }
    stats.routes_loaded((*table)->version);
    log::info("routes_loaded", {{"trigger", trigger},
                                {"file", (*table)->file.string()},
                                {"version", (*table)->version},
                                {"rules", (*table)->rules.size()}});
    return table;
}

// Accepts connections for one listener on one worker. Every worker has its
// own acceptor on the same port (SO_REUSEPORT) so the kernel spreads
// connections across threads without a shared accept queue.
class acceptor_loop : public std::enable_shared_from_this<acceptor_loop> {
public:
    using factory = std::function<std::shared_ptr<connection>(worker&, tcp::socket)>;

    // `gate`: counts and caps the connections (public listeners); none for admin.
    acceptor_loop(worker& w, std::string kind, factory make, admission* gate, metrics& stats)
        : worker_(w),
          acceptor_(w.ctx),
          retry_(w.ctx),
          kind_(std::move(kind)),
          make_(std::move(make)),
          gate_(gate),
          stats_(stats) {}

    boost::system::error_code open(const tcp::endpoint& ep, bool reuse_port) {
        boost::system::error_code ec;
        acceptor_.open(ep.protocol(), ec);
        if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec && reuse_port) {
            acceptor_.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec);
        }
        if (!ec) acceptor_.bind(ep, ec);
        if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
        return ec;
    }

    std::uint16_t port() const {
        boost::system::error_code ec;
        return acceptor_.local_endpoint(ec).port();
    }

    void start() { do_accept(); }

    asio::any_io_executor executor() { return acceptor_.get_executor(); }

    void close() {
        boost::system::error_code ignored;
        acceptor_.close(ignored);
        retry_.cancel();
    }

private:
    void do_accept() {
        acceptor_.async_accept([self = shared_from_this()](boost::system::error_code ec, tcp::socket s) {
            self->on_accept(ec, std::move(s));
        });
    }

    void on_accept(boost::system::error_code ec, tcp::socket s) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) {
            return;
        }
        if (ec) {
            // Usually out of file descriptors: back off instead of spinning.
            log::warn("accept_failed", {{"listener", kind_}, {"error", ec.message()}});
            retry_.expires_after(std::chrono::milliseconds(100));
            retry_.async_wait([self = shared_from_this()](boost::system::error_code wec) {
                if (!wec) self->do_accept();
            });
            return;
        }
        boost::system::error_code ignored;
        std::optional<asio::ip::address> peer;
        if (gate_ != nullptr) {
            const auto remote = s.remote_endpoint(ec);
            const auto verdict = ec ? admission::verdict::admitted : gate_->admit(remote.address());
            if (ec || verdict != admission::verdict::admitted) {
                // Closed before a byte is read; anyone can cause this, so
                // the lines are limited.
                if (!ec) {
                    const bool per_address = verdict == admission::verdict::over_address;
                    stats_.refused(per_address);
                    static log::limited refusals(20, 5);
                    refusals.write(log::log_level::warn, "connection_refused",
                                   {{"listener", kind_},
                                    {"peer", remote.address().to_string()},
                                    {"reason", per_address ? "max_connections_per_address" : "max_connections"}});
                }
                s.close(ignored);
                do_accept();
                return;
            }
            peer = remote.address();
        }
        s.set_option(tcp::no_delay(true), ignored);
        const auto c = make_(worker_, std::move(s));
        if (peer) c->admitted(*peer);
        c->start();
        do_accept();
    }

    worker& worker_;
    tcp::acceptor acceptor_;
    asio::steady_timer retry_;
    std::string kind_;
    factory make_;
    admission* gate_;
    metrics& stats_;
};

tl::expected<std::unique_ptr<asio::ssl::context>, std::string> make_tls_context(const config::settings& s,
                                                                              config::tls_profile profile) {
    const std::string name(config::to_string(profile));
    const auto it = s.tls.find(name);
    if (it == s.tls.end() || it->second.certificate.empty() || it->second.private_key.empty()) {
        return tl::unexpected("[tls." + name + "] needs certificate and private_key for the listeners that use it");
    }
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    SSL_CTX* native = ctx->native_handle();
    if (profile == config::tls_profile::modern) {
        SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    } else {
        // Old Messenger clients' login (MSNP8-12) speaks TLS 1.0 with RSA key
        // exchange; AES128-SHA is the one suite both they and OpenSSL 3 still
        // share, and only at security level 0 (gateway/README.md section 6).
        SSL_CTX_set_security_level(native, 0);
        SSL_CTX_set_min_proto_version(native, TLS1_VERSION);
        SSL_CTX_set_cipher_list(native, "DEFAULT:AES128-SHA:@SECLEVEL=0");
    }
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::single_dh_use);
    // A returning client resumes its session instead of paying for another
    // RSA key exchange: by session id from the server cache (SChannel on
    // Windows XP, which knows no tickets) or by ticket. Sessions resume only
    // under the profile that made them.
    // Expired sessions are dropped by a timer (server::sweep_tls_sessions),
    // not by OpenSSL scanning the whole cache every 255 handshakes on
    // whichever I/O thread is handshaking.
    SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_AUTO_CLEAR);
    SSL_CTX_set_session_id_context(native, reinterpret_cast<const unsigned char*>(name.data()),
                                   static_cast<unsigned int>(name.size()));
    boost::system::error_code ec;
    ctx->use_certificate_chain_file(it->second.certificate.string(), ec);
    if (ec) {
        return tl::unexpected(it->second.certificate.string() + ": cannot load certificate: " + ec.message());
    }
    ctx->use_private_key_file(it->second.private_key.string(), asio::ssl::context::pem, ec);
    if (ec) {
        return tl::unexpected(it->second.private_key.string() + ": cannot load private key: " + ec.message());
    }
    if (SSL_CTX_check_private_key(native) != 1) {
        return tl::unexpected(it->second.private_key.string() + ": is not the private key of " +
                              it->second.certificate.string());
    }
    return ctx;
}

class gateway {
public:
    gateway(const config::settings& s, key_set keys) : state_(s, std::move(keys)) {}

    // [listeners.msnp] capture_dir: every MSNP session recorded as a transcript.
    bool open_capture() {
        const auto* l = state_.settings.find_listener("msnp");
        if (!l || !l->enabled || l->capture_dir.empty()) return true;
        try {
            state_.capture = std::make_unique<capture_writer>(l->capture_dir);
        } catch (const std::exception& e) {
            log::error("capture_failed", {{"error", e.what()}});
            return false;
        }
        state_.sessions.capture = state_.capture.get();
        log::info("capture", {{"listener", "msnp"}, {"dir", l->capture_dir.string()}});
        return true;
    }

    int run() {
        const config::settings& s = state_.settings;
        const unsigned threads = s.threads != 0 ? s.threads : std::max(1u, std::thread::hardware_concurrency());
        for (unsigned i = 0; i < threads; ++i) {
            state_.workers.push_back(std::make_unique<worker>());
        }
        asio::io_context& main_ctx = state_.workers.front()->ctx;
        state_.life.on_drained = [this] { finish("drained"); };
        state_.life.main = &main_ctx;
        // Signals are caught before any listener opens, so a supervisor's
        // SIGHUP or SIGTERM never meets the default action.
        asio::signal_set signals(main_ctx, SIGTERM, SIGINT, SIGHUP);
        std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec, int sig) {
            if (ec) {
                return;
            }
            if (sig == SIGHUP) {
                state_.reload_routes("SIGHUP");
            } else {
                begin_shutdown(sig == SIGTERM ? "SIGTERM" : "SIGINT");
            }
            if (!finished_) {
                signals.async_wait(on_signal);
            }
        };
        signals.async_wait(on_signal);
        deadline_.emplace(main_ctx);

        if (!state_.reload_routes("start") || !open_backends() || !open_control()) {
            return 1;
        }
        if (!open_capture() || !open_listeners(threads)) {
            return 1;
        }
        state_.msnp = std::make_unique<msnp_services>(state_.tokens, state_.objects, state_.logins.guard(), msnp_endpoint_);
        state_.sessions.msnp = state_.msnp.get();
        sweep_.emplace(main_ctx);
        sweep_tls_sessions();
        for (auto& a : acceptors_) {
            a->start();
        }
        if (control_) {
            control_->start();
        }
        for (auto& w : state_.workers) {
            guards_.push_back(asio::make_work_guard(w->ctx));
        }
        log::info("started", {{"threads", threads},
                              {"routes_version", state_.routes.table()->version},
                              {"data_dir", s.data_dir.string()}});

        std::vector<std::thread> pool;
        for (std::size_t i = 1; i < state_.workers.size(); ++i) {
            pool.emplace_back([w = state_.workers[i].get()] { w->ctx.run(); });
        }
        main_ctx.run();
        for (auto& t : pool) {
            t.join();
        }
        log::info("stopped", {{"reason", stop_reason_}, {"open_connections", state_.life.live.load()}});
        return 0;
    }

private:
    // The name this gateway gives backend nodes: the configured one, else
    // the host name.
    static std::string gateway_name(const config::settings& s) {
        if (!s.gateway_name.empty()) {
            return s.gateway_name;
        }
        std::array<char, 256> host{};
        if (gethostname(host.data(), host.size() - 1) != 0 || host[0] == '\0') {
            return "gateway";
        }
        return host.data();
    }

    bool open_backends() {
        const config::settings& s = state_.settings;
        const std::string incarnation = link::new_incarnation();
        for (const config::backend& b : s.backends) {
            if (b.kind == config::backend_kind::link) {
                link::client_options opt;
                opt.name = b.name;
                opt.address = b.address;
                opt.port = b.port;
                opt.gateway = gateway_name(s);
                opt.incarnation = incarnation;
                opt.max_frame = s.lim.frame_bytes;
                auto client = std::make_shared<link::client>(opt);
                state_.stats.add_source([weak = std::weak_ptr<link::client>(client), name = b.name] {
                    std::vector<metrics::extra_sample> out;
                    if (const auto c = weak.lock()) {
                        const auto st = c->stats();
                        out.push_back({"switchyard_link_up", "gauge", "1 while the link to a backend is open.",
                                       "backend", name, st.open ? 1u : 0u});
                        out.push_back({"switchyard_link_opens_total", "counter",
                                       "Handshakes completed on a backend link (1 + reconnections).", "backend", name,
                                       st.connects});
                        out.push_back({"switchyard_link_registrations_total", "counter",
                                       "Frames sent again to register live sessions with a backend that lost them.",
                                       "backend", name, st.registrations});
                        out.push_back({"switchyard_link_endpoints", "gauge",
                                       "Live endpoints this gateway holds on a backend link.", "backend", name,
                                       st.endpoints});
                    }
                    return out;
                });
                state_.objects.add_backend(b.name, std::move(client));
                log::info("backend", {{"name", b.name},
                                      {"kind", config::to_string(b.kind)},
                                      {"address", b.address},
                                      {"port", b.port},
                                      {"gateway", opt.gateway},
                                      {"incarnation", incarnation}});
                continue;
            }
            embedded::options opt = embedded_options(s, b, state_.keys.keys.front().secret);
            // Objects reach other objects through the hub, wherever the
            // routes put them: another embedded file, or a backend link.
            opt.outbound = [hub = &state_.objects](frame::frame f, backends::frame_sink reply) {
                const std::uint64_t corr = f.corr;
                std::string object = f.object;
                if (!hub->send(std::move(f), reply) && reply) {
                    reply(frame::frame{corr, object, {},
                                       frame::error{frame::error_code::backend_unavailable, "no backend serves " + object}});
                }
            };
            try {
                std::error_code ec;
                std::filesystem::create_directories(s.data_dir, ec);
                auto backend = std::make_shared<embedded::backend>(opt);
                embedded_.push_back(backend);
                state_.objects.add_backend(b.name, std::move(backend));
            } catch (const std::exception& e) {
                log::error("backend_failed", {{"name", b.name}, {"error", e.what()}});
                return false;
            }
            log::info("backend", {{"name", b.name}, {"kind", config::to_string(b.kind)}, {"file", opt.file.string()}});
        }
        // Notices left from the last run cross the hub: every backend is in
        // it now, so none is dropped for want of its target.
        for (const auto& e : embedded_) {
            e->send_unacknowledged();
        }
        embedded_.clear();
        return true;
    }

    // The operator commands' way in (gateway/ops/control.hpp), on the first
    // worker. A data directory whose path is too long for a Unix socket
    // leaves the gateway without it: those commands then say so.
    bool open_control() {
        const auto path = control::socket_path(state_.settings.data_dir);
        std::error_code created;
        std::filesystem::create_directories(state_.settings.data_dir, created);
        auto c = std::make_unique<control::server>(state_.workers.front()->ctx, state_.objects);
        if (auto ok = c->listen(path); !ok) {
            if (path.native().size() >= sizeof(sockaddr_un{}.sun_path)) {
                log::warn("control_unavailable", {{"error", ok.error()}});
                return true;
            }
            log::error("control_failed", {{"error", ok.error()}});
            return false;
        }
        control_ = std::move(c);
        return true;
    }

    // The admin listener's token, read before it opens; without one, the
    // settings' warnings (an admin listener reachable beyond this machine).
    bool admin_guarded(const config::listener& l) {
        if (!l.token_file.empty()) {
            auto token = read_admin_token(l.token_file);
            if (!token) {
                log::error("listen_failed", {{"listener", l.kind}, {"error", token.error()}});
                return false;
            }
            state_.ops.token = std::move(*token);
            return true;
        }
        for (const std::string& warning : config::warnings(state_.settings)) {
            log::warn("settings_warning", {{"warning", warning}});
        }
        return true;
    }

    bool open_listeners(unsigned threads) {
        const config::settings& s = state_.settings;
        for (const config::listener& l : s.listeners) {
            if (!l.enabled) {
                continue;
            }
            if (l.kind == "link") {
                if (!open_link_listener(l)) return false;
                continue;
            }
            if (l.kind == "admin" && !admin_guarded(l)) {
                return false;
            }
            if (l.kind == "https" && l.tls == config::tls_profile::none) {
                log::error("listen_failed", {{"listener", l.kind}, {"error", "https needs tls = modern or legacy"}});
                return false;
            }
            // HTTPS takes either profile; the WebSocket listener only modern (wss://).
            const bool tls_served = l.kind == "https" || (l.kind == "ws" && l.tls == config::tls_profile::modern);
            if (l.tls != config::tls_profile::none && !tls_served) {
                log::error("listen_failed", {{"listener", l.kind}, {"tls", config::to_string(l.tls)},
                                             {"error", "this TLS profile is not available on this listener"}});
                return false;
            }
            if (l.tls != config::tls_profile::none) {
                // One context per profile, shared by the listeners that use it.
                auto& slot = l.tls == config::tls_profile::legacy ? state_.tls_legacy : state_.tls_modern;
                if (!slot) {
                    auto ctx = make_tls_context(s, l.tls);
                    if (!ctx) {
                        log::error("listen_failed", {{"listener", l.kind}, {"error", ctx.error()}});
                        return false;
                    }
                    slot = std::move(*ctx);
                    (l.tls == config::tls_profile::legacy ? state_.sessions.tls_legacy : state_.sessions.tls_modern) =
                        slot.get();
                }
            }
            boost::system::error_code ec;
            const auto address = asio::ip::make_address(l.address, ec);
            if (ec) {
                log::error("listen_failed", {{"listener", l.kind}, {"address", l.address}, {"error", ec.message()}});
                return false;
            }
            // The admin endpoint is light: one acceptor on the first worker.
            const std::size_t count = l.kind == "admin" ? 1 : threads;
            std::uint16_t port = l.port;
            // SO_REUSEPORT spreads connections over the workers' acceptors,
            // and would as readily let a second process on the same port
            // take half of them: a socket bound without it finds one first.
            if (count > 1 && port != 0) {
                tcp::acceptor probe(state_.workers.front()->ctx);
                probe.open(address.is_v6() ? tcp::v6() : tcp::v4(), ec);
                if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);
                if (!ec) probe.bind(tcp::endpoint(address, port), ec);
                if (ec) {
                    log::error("listen_failed",
                               {{"listener", l.kind},
                                {"address", l.address},
                                {"port", port},
                                {"error", ec == asio::error::address_in_use
                                              ? "the port is in use (another switchyard or another program)"
                                              : ec.message()}});
                    return false;
                }
            }
            for (std::size_t i = 0; i < count; ++i) {
                auto loop = std::make_shared<acceptor_loop>(*state_.workers[i], l.kind, factory_for(l.kind),
                                                            l.kind == "admin" ? nullptr : &state_.gate, state_.stats);
                ec = loop->open(tcp::endpoint(address, port), count > 1);
                if (ec) {
                    log::error("listen_failed", {{"listener", l.kind},
                                                 {"address", l.address},
                                                 {"port", port},
                                                 {"error", ec.message()}});
                    return false;
                }
                port = loop->port();  // port 0 resolves on the first bind; the others share it
                acceptors_.push_back(loop);
            }
            if (l.kind == "msnp") {
                // XFR SB and RNG send clients back to this same port (§7.1).
                msnp_endpoint_ = l.public_endpoint.empty() ? l.address + ":" + std::to_string(port) : l.public_endpoint;
            }
            log::info("listening", {{"listener", l.kind},
                                    {"address", l.address},
                                    {"port", port},
                                    {"tls", config::to_string(l.tls)},
                                    {"acceptors", count}});
        }
        return true;
    }

    // Other gateways reach this process's embedded backend through it; it
    // runs on the first worker (links are few: one per gateway).
    bool open_link_listener(const config::listener& l) {
        boost::system::error_code ec;
        const auto address = asio::ip::make_address(l.address, ec);
        auto backend = state_.objects.backend(l.backend);
        link::server_options opt;
        opt.lease = l.lease;
        opt.max_frame = state_.settings.lim.frame_bytes;
        opt.instance = link::new_incarnation();
        link_ = std::make_unique<link::server>(state_.workers.front()->ctx, std::move(backend), opt);
        if (!ec) ec = link_->listen(tcp::endpoint(address, l.port));
        if (ec) {
            log::error("listen_failed",
                       {{"listener", l.kind}, {"address", l.address}, {"port", l.port}, {"error", ec.message()}});
            return false;
        }
        link_->start();
        // /metrics is served on the first worker, the link's thread.
        state_.stats.add_source([this] {
            const auto st = link_->stats();
            return std::vector<metrics::extra_sample>{
                {"switchyard_link_gateways", "gauge", "Gateways connected over backend links.", {}, {}, st.connections},
                {"switchyard_link_leases", "gauge", "Gateways holding endpoints here, connected or within their lease.",
                 {}, {}, st.leases},
                {"switchyard_link_leased_endpoints", "gauge", "Endpoints held under gateways' leases.", {}, {},
                 st.endpoints},
                {"switchyard_link_expired_endpoints_total", "counter",
                 "Endpoints ended because their gateway's lease ran out or it restarted.", {}, {}, st.expired},
            };
        });
        log::info("listening", {{"listener", l.kind},
                                {"address", l.address},
                                {"port", link_->port()},
                                {"tls", config::to_string(l.tls)},
                                {"backend", l.backend},
                                {"lease_ms", l.lease.count()},
                                {"instance", opt.instance}});
        return true;
    }

    // Makes the connections of one listener kind, each with what it needs.
    acceptor_loop::factory factory_for(std::string_view kind) {
        session_context& ctx = state_.sessions;
        if (kind == "msnp") return [&ctx](worker& w, tcp::socket s) { return make_msnp_connection(ctx, w, std::move(s)); };
        if (kind == "ws") return [&ctx](worker& w, tcp::socket s) { return make_ws_connection(ctx, w, std::move(s)); };
        if (kind == "https") return [&ctx](worker& w, tcp::socket s) { return make_https_connection(ctx, w, std::move(s)); };
        return [&ctx, &ops = state_.ops](worker& w, tcp::socket s) { return make_admin_connection(ctx, ops, w, std::move(s)); };
    }

    // Drops expired TLS sessions from the caches once a minute.
    void sweep_tls_sessions() {
        sweep_->expires_after(std::chrono::minutes(1));
        sweep_->async_wait([this](boost::system::error_code ec) {
            if (ec) {
                return;
            }
            const auto now = static_cast<long>(std::time(nullptr));
            for (asio::ssl::context* tls : {state_.tls_legacy.get(), state_.tls_modern.get()}) {
                if (tls != nullptr) {
                    SSL_CTX_flush_sessions(tls->native_handle(), now);
                }
            }
            sweep_tls_sessions();
        });
    }

    // Runs on the first worker.
    void begin_shutdown(std::string_view why) {
        if (state_.life.stopping.exchange(true)) {
            return;
        }
        log::info("shutting_down", {{"signal", why},
                                    {"open_connections", state_.life.live.load()},
                                    {"timeout_ms", state_.settings.shutdown_timeout.count()}});
        for (auto& a : acceptors_) {
            asio::post(a->executor(), [a] { a->close(); });
        }
        if (link_) {
            link_->close();
        }
        if (control_) {
            control_->close();
        }
        for (auto& w : state_.workers) {
            asio::post(w->ctx, [w = w.get()] {
                // Copy first: shutdown() may end a connection and unregister it.
                std::vector<std::weak_ptr<connection>> all;
                for (connection* c : w->connections) {
                    all.push_back(c->weak_from_this());
                }
                for (auto& weak : all) {
                    if (auto c = weak.lock()) {
                        c->shutdown();
                    }
                }
            });
        }
        deadline_->expires_after(state_.settings.shutdown_timeout);
        deadline_->async_wait([this](boost::system::error_code ec) {
            if (!ec) {
                log::warn("shutdown_timeout", {{"open_connections", state_.life.live.load()}});
                finish("timeout");
            }
        });
        if (state_.life.live.load() == 0) {
            asio::post(state_.workers.front()->ctx, [this] { finish("drained"); });
        }
    }

    void finish(const char* reason) {
        if (finished_) {
            return;
        }
        finished_ = true;
        stop_reason_ = reason;
        deadline_->cancel();
        if (sweep_) {
            sweep_->cancel();
        }
        state_.life.finished = true;
        guards_.clear();
        for (auto& w : state_.workers) {
            w->ctx.stop();
        }
    }

    gateway_state state_;
    std::vector<std::shared_ptr<acceptor_loop>> acceptors_;
    std::unique_ptr<link::server> link_;  // [listeners.link], when enabled
    std::unique_ptr<control::server> control_;
    std::vector<std::shared_ptr<embedded::backend>> embedded_;  // while open_backends wires them
    std::string msnp_endpoint_;  // host:port MSNP clients are sent to for switchboards
    std::optional<asio::steady_timer> deadline_;
    std::optional<asio::steady_timer> sweep_;  // TLS session caches
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
    bool finished_ = false;
    std::string stop_reason_ = "unknown";
};

}  // namespace

namespace {

// Every client is a socket: take the hard limit on descriptors, not the
// shell's soft default of 1024.
void raise_descriptor_limit() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }
}

}  // namespace

std::vector<std::string> check_tls(const config::settings& s) {
    std::vector<std::string> problems;
    for (const auto profile : {config::tls_profile::modern, config::tls_profile::legacy}) {
        const bool used = std::ranges::any_of(s.listeners, [&](const config::listener& l) {
            return l.enabled && l.tls == profile && l.kind != "link";
        });
        if (!used) continue;
        if (auto ctx = make_tls_context(s, profile); !ctx) problems.push_back(ctx.error());
    }
    return problems;
}

int run(const config::settings& s) {
    log::set_level(s.log);
    raise_descriptor_limit();
    auto keys = load_or_generate_keys(s);
    if (!keys) {
        log::error("keys_failed", {{"error", keys.error()}});
        return 1;
    }
    if (keys->generated) {
        log::warn("keys_generated", {{"file", keys->file.string()},
                                     {"key_id", keys->keys.front().id},
                                     {"note", "no [[keys]] in the settings file; generated a signing key"}});
    }
    return gateway(s, std::move(*keys)).run();
}

}  // namespace switchyard::gateway
