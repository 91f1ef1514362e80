// Benchmark of backend links (gateway/backends/link): a gateway's link
// client and a backend node's link server in one process over 127.0.0.1,
// the node serving the embedded backend. Prints tables; it is not a test.
//
//   link_bench [--senders N] [--messages N] [--round-trips N] [--sessions N]
//              [--lease-ms N] [--idle-s S] [--sync normal|full] [--dir DIR]
//
// 1. cost of the link: the same workloads straight into the embedded
//    backend and through client -> server -> embedded backend, as frames/s
//    and round-trip p50/p99, with the ratio link/direct.
// 2. lease renewal: bytes/s and process CPU of an idle link at a short
//    lease with 0 and with --sessions registered sessions (renewal is per
//    gateway, so the two should match), the registry's memory per session,
//    and the node's endpoint count.
// 3. re-registration after the node restarts (same file, same port): time
//    until the client has every registration answered, and its frames/s.
// 4. lease expiry: the client goes away; time until the node has ended
//    every endpoint, against the lease.
#include "gateway/backends/embedded/backend.hpp"
#include "gateway/backends/embedded/sqlite.hpp"
#include "gateway/backends/link/client.hpp"
#include "gateway/backends/link/endpoints.hpp"
#include "gateway/backends/link/server.hpp"
#include "gateway/ops/log.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace switchyard;
namespace embedded = gateway::embedded;
namespace lnk = gateway::link;
namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

std::string command_line;  // printed in every table's header

struct settings {
    std::size_t senders = 100;
    std::uint64_t messages = 50000;
    std::uint64_t round_trips = 5000;
    std::size_t sessions = 10000;
    std::chrono::milliseconds lease{300};
    double idle_s = 3.0;
    embedded::durability sync = embedded::durability::normal;
    std::filesystem::path dir;
};

std::string handle(std::size_t i) {
    return "u" + std::to_string(i) + "@example.com";
}

double seconds_since(clock_type::time_point t) {
    return std::chrono::duration<double>(clock_type::now() - t).count();
}

double ms_between(clock_type::time_point a, clock_type::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

std::size_t rss_bytes() {
    std::ifstream statm("/proc/self/statm");
    std::size_t pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

double cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

// A request's last reply: an initial presence burst comes before it.
bool terminal(const frame::frame& f) {
    return !std::holds_alternative<frame::presence_update>(f.content);
}

struct countdown {
    std::mutex m;
    std::condition_variable cv;
    std::uint64_t left;
    explicit countdown(std::uint64_t n) : left(n) {}
    void hit() {
        const std::lock_guard lock(m);
        if (--left == 0) cv.notify_all();
    }
    void wait() {
        std::unique_lock lock(m);
        if (!cv.wait_for(lock, 120s, [&] { return left == 0; })) {
            std::printf("timed out waiting for %llu replies\n", static_cast<unsigned long long>(left));
            std::exit(1);
        }
    }
};

// Sends a request and waits for its last reply.
frame::frame ask(gateway::backends::adapter& to, frame::frame f) {
    auto p = std::make_shared<std::promise<frame::frame>>();
    auto fut = p->get_future();
    to.send(std::move(f), [p](frame::frame r) {
        if (terminal(r)) p->set_value(std::move(r));
    });
    return fut.get();
}

void add_users(const std::filesystem::path& file, std::size_t n) {
    embedded::database db(file, embedded::durability::normal);
    db.exec("BEGIN");
    auto& insert = db.prepare("INSERT OR IGNORE INTO users (handle, display_name, created_ms) VALUES (?1, ?1, 0)");
    for (std::size_t i = 0; i < n; ++i) insert.bind(handle(i)).run();
    db.exec("COMMIT");
}

// A backend node: the embedded backend on `file`, served by a link server
// on 127.0.0.1:`port` (0: any) from a thread of its own.
class node {
public:
    node(const embedded::options& eo, std::chrono::milliseconds lease, std::uint16_t port, std::string instance)
        : backend_(std::make_shared<embedded::backend>(eo)), guard_(asio::make_work_guard(ctx_)) {
        lnk::server_options so;
        so.lease = lease;
        so.instance = std::move(instance);
        server_ = std::make_unique<lnk::server>(ctx_, backend_, so);
        if (const auto ec = server_->listen({asio::ip::make_address("127.0.0.1"), port})) {
            std::fprintf(stderr, "listen on port %u: %s\n", port, ec.message().c_str());
            std::exit(1);
        }
        server_->start();
        thread_ = std::thread([this] { ctx_.run(); });
    }
    template <class F> auto on_io(F f) -> decltype(f()) {
        std::packaged_task<decltype(f())()> task(std::move(f));
        auto result = task.get_future();
        asio::post(ctx_, [&task] { task(); });
        return result.get();
    }

    ~node() {
        on_io([this] { server_->close(); });
        guard_.reset();  // the io thread ends once the closed links are done with
        thread_.join();
        server_.reset();
    }

    embedded::backend& backend() { return *backend_; }
    std::uint16_t port() const { return server_->port(); }
    // The server's state belongs to its thread.
    lnk::server_statistics stats() {
        return on_io([this] { return server_->stats(); });
    }

private:
    std::shared_ptr<embedded::backend> backend_;
    asio::io_context ctx_;
    asio::executor_work_guard<asio::io_context::executor_type> guard_;
    std::unique_ptr<lnk::server> server_;
    std::thread thread_;
};

lnk::client_options client_options(std::uint16_t port) {
    lnk::client_options o;
    o.name = "bench";
    o.address = "127.0.0.1";
    o.port = port;
    o.gateway = "gw-bench";
    o.incarnation = lnk::new_incarnation();
    // A node that restarts is back within a few milliseconds here: the
    // restart table should not measure a long back-off.
    o.retry_first = 10ms;
    o.retry_max = 50ms;
    return o;
}

void wait_open(lnk::client& c) {
    const auto deadline = clock_type::now() + 10s;
    while (!c.stats().open) {
        if (clock_type::now() > deadline) {
            std::printf("the link did not open\n");
            std::exit(1);
        }
        std::this_thread::sleep_for(1ms);
    }
}

// ------------------------------------------------------------ 1. cost of the link

struct loop_result {
    double rate = 0;
    double p50_us = 0;
    double p99_us = 0;
    std::uint64_t errors = 0;
};

// Keeps `window` requests in flight, slot s always sending as sender s,
// until `total` have their last reply; each request's round trip is timed.
loop_result closed_loop(gateway::backends::adapter& to, std::size_t window, std::uint64_t total,
                        const std::function<frame::frame(std::uint64_t i, std::size_t slot)>& make) {
    std::mutex m;
    std::condition_variable cv;
    std::deque<std::size_t> ready;
    std::uint64_t done = 0;
    std::vector<clock_type::time_point> sent_at(total);
    std::vector<double> latency(total);
    std::atomic<std::uint64_t> errors{0};
    for (std::size_t s = 0; s < window; ++s) ready.push_back(s);
    std::uint64_t next = 0;
    const auto start = clock_type::now();
    std::vector<std::size_t> batch;
    for (;;) {
        {
            std::unique_lock lock(m);
            cv.wait(lock, [&] { return !ready.empty() || done == total; });
            if (done == total) break;
            batch.assign(ready.begin(), ready.end());
            ready.clear();
        }
        for (const std::size_t slot : batch) {
            if (next == total) break;
            const std::uint64_t i = next++;
            frame::frame f = make(i, slot);
            sent_at[i] = clock_type::now();
            to.send(std::move(f), [&, i, slot](frame::frame r) {
                if (!terminal(r)) return;
                latency[i] = std::chrono::duration<double, std::micro>(clock_type::now() - sent_at[i]).count();
                if (std::holds_alternative<frame::error>(r.content)) errors.fetch_add(1);
                const std::lock_guard lock(m);
                ready.push_back(slot);
                ++done;
                cv.notify_one();
            });
        }
    }
    const double secs = seconds_since(start);
    return {static_cast<double>(total) / secs, percentile(latency, 0.5), percentile(latency, 0.99), errors.load()};
}

frame::frame room_message(const std::string& room, std::uint64_t i, std::size_t sender) {
    frame::room_message m;
    m.message_id = "m" + std::to_string(i);
    m.text = "a message of about sixty bytes, like a short line of chat #" + std::to_string(i);
    m.format.font = "Segoe UI";
    return frame::frame{i + 1, room, handle(sender), std::move(m)};
}

void join_senders(embedded::backend& be, const std::string& room, std::size_t senders) {
    ask(be, frame::frame{1, room, handle(0), frame::room_create{frame::room_policy::named, ""}});
    countdown joined(senders);
    for (std::size_t s = 0; s < senders; ++s) {
        be.send(frame::frame{s + 1, room, handle(s),
                             frame::room_join{frame::member{handle(s), "ep", handle(s), 0, frame::client_protocol::msnp}}},
                [&](frame::frame r) {
                    if (std::holds_alternative<frame::error>(r.content)) {
                        std::printf("join: %s\n", std::get<frame::error>(r.content).reason.c_str());
                        std::exit(1);
                    }
                    joined.hit();
                });
    }
    joined.wait();
}

void link_cost(const settings& opt, embedded::backend& be, lnk::client& c) {
    std::printf("\n## 1. cost of the link: the same workload into the embedded backend directly and through "
                "client -> server -> embedded backend over 127.0.0.1\n\n");
    std::printf("command: %s\n\n", command_line.c_str());
    std::printf("| workload | frames | direct frames/s | link frames/s | link/direct | direct p50 µs | link p50 µs | "
                "direct p99 µs | link p99 µs |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    // The two paths write to rooms of their own, joined beforehand
    // straight into the backend, so the link's registry stays empty.
    join_senders(be, "room:direct", opt.senders);
    join_senders(be, "room:link", opt.senders);

    struct workload {
        std::string name;
        std::size_t window;
        std::uint64_t total;
        std::function<frame::frame(const std::string& path, std::uint64_t, std::size_t)> make;
    };
    const std::vector<workload> workloads = {
        {"durable room_message, 1 sender, 1 in flight", 1, opt.round_trips,
         [](const std::string& path, std::uint64_t i, std::size_t s) { return room_message("room:" + path, i, s); }},
        {"durable room_message, " + std::to_string(opt.senders) + " senders, 1 in flight each", opt.senders,
         opt.messages,
         [](const std::string& path, std::uint64_t i, std::size_t s) {
             return room_message("room:" + path, 1'000'000'000 + i, s);
         }},
        {"roster_get (a read), 1 in flight", 1, opt.round_trips,
         [](const std::string&, std::uint64_t i, std::size_t s) {
             return frame::frame{i + 1, "user:" + handle(s), handle(s), frame::roster_get{}};
         }},
    };
    for (const auto& w : workloads) {
        const auto direct = closed_loop(be, w.window, w.total,
                                        [&](std::uint64_t i, std::size_t s) { return w.make("direct", i, s); });
        const auto linked = closed_loop(c, w.window, w.total,
                                        [&](std::uint64_t i, std::size_t s) { return w.make("link", i, s); });
        std::printf("| %s | %llu | %.0f | %.0f | %.2f | %.0f | %.0f | %.0f | %.0f |\n", w.name.c_str(),
                    static_cast<unsigned long long>(w.total), direct.rate, linked.rate, linked.rate / direct.rate,
                    direct.p50_us, linked.p50_us, direct.p99_us, linked.p99_us);
        if (direct.errors + linked.errors != 0) {
            std::printf("(errors: %llu direct, %llu link)\n", static_cast<unsigned long long>(direct.errors),
                        static_cast<unsigned long long>(linked.errors));
        }
    }
}

// ------------------------------------------------------------ 2. lease renewal

struct idle_result {
    double cpu_ms_per_s = 0;
    double sent_per_s = 0;
    double received_per_s = 0;
};

// What an idle link costs over a fixed interval: the interval is the
// measurement, nothing waits on it.
idle_result measure_idle(lnk::client& c, double seconds) {
    const auto before = c.stats();
    const double cpu0 = cpu_seconds();
    const auto start = clock_type::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    const double wall = seconds_since(start);
    const double cpu = cpu_seconds() - cpu0;
    const auto after = c.stats();
    return {1000.0 * cpu / wall, static_cast<double>(after.bytes_sent - before.bytes_sent) / wall,
            static_cast<double>(after.bytes_received - before.bytes_received) / wall};
}

frame::frame hello(std::size_t i) {
    frame::hello h;
    h.protocol = frame::client_protocol::msnp;
    h.dialect = 18;
    h.user = handle(i);
    h.endpoint = "{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}";
    h.client_name = "MSNMSGR 14.0.8117";
    h.capabilities = {"typing", "nudge", "emoticons"};
    return frame::frame{0, "user:" + handle(i), handle(i), std::move(h)};
}

frame::frame presence(std::size_t i) {
    frame::presence_set p;
    p.presence.state = frame::status::online;
    p.presence.display_name = "User " + std::to_string(i);
    p.presence.personal_message = "around";
    p.presence.capabilities = 0x8c0c0000;
    p.presence.endpoint = "{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}";
    return frame::frame{0, "user:" + handle(i), handle(i), std::move(p)};
}

// The registry's own size per session: the frames a gateway keeps to
// register its sessions again, in a registry of their own.
double registry_bytes_per_session(std::size_t sessions) {
    malloc_trim(0);
    const auto before = mallinfo2().uordblks;
    std::optional<lnk::endpoint_registry> r(std::in_place);
    for (std::size_t i = 0; i < sessions; ++i) {
        r->note(hello(i));
        r->note(presence(i));
    }
    const auto after = mallinfo2().uordblks;
    r.reset();
    return static_cast<double>(after - before) / static_cast<double>(std::max<std::size_t>(1, sessions));
}

struct registered {
    double seconds = 0;
    std::uint64_t errors = 0;
    std::size_t rss_delta = 0;
};

// Signs `sessions` sessions in through the link, all requests at once, as
// a gateway does after its own restart.
registered register_sessions(lnk::client& c, std::size_t sessions) {
    malloc_trim(0);
    const std::size_t rss0 = rss_bytes();
    countdown replies(2 * sessions);
    std::atomic<std::uint64_t> errors{0};
    const auto start = clock_type::now();
    std::uint64_t corr = 0;
    const auto reply = [&](frame::frame r) {
        if (!terminal(r)) return;
        if (const auto* e = std::get_if<frame::error>(&r.content); e && errors.fetch_add(1) == 0) {
            std::printf("(first error: %s)\n", e->reason.c_str());
        }
        replies.hit();
    };
    for (std::size_t i = 0; i < sessions; ++i) {
        frame::frame h = hello(i);
        h.corr = ++corr;
        c.send(std::move(h), reply);
        frame::frame p = presence(i);
        p.corr = ++corr;
        c.send(std::move(p), reply);
    }
    replies.wait();
    const double secs = seconds_since(start);
    malloc_trim(0);
    const std::size_t rss1 = rss_bytes();
    return {secs, errors.load(), rss1 > rss0 ? rss1 - rss0 : 0};
}

void lease_renewal(const settings& opt, node& n, lnk::client& c) {
    std::printf("\n## 2. lease renewal (lease %lld ms: a ping every third of it), idle link over %.1f s each\n\n",
                static_cast<long long>(opt.lease.count()), opt.idle_s);
    std::printf("command: %s\n\n", command_line.c_str());
    const auto empty = measure_idle(c, opt.idle_s);
    const auto empty_stats = n.stats();
    const double registry = registry_bytes_per_session(opt.sessions);
    const auto reg = register_sessions(c, opt.sessions);
    const auto full = measure_idle(c, opt.idle_s);
    const auto full_stats = n.stats();
    const auto client_stats = c.stats();
    std::printf("| sessions | client endpoints | node endpoints | node leases | bytes/s sent | bytes/s received | "
                "process CPU ms/s |\n|---:|---:|---:|---:|---:|---:|---:|\n");
    std::printf("| 0 | 0 | %zu | %zu | %.0f | %.0f | %.2f |\n", empty_stats.endpoints, empty_stats.leases,
                empty.sent_per_s, empty.received_per_s, empty.cpu_ms_per_s);
    std::printf("| %zu | %zu | %zu | %zu | %.0f | %.0f | %.2f |\n", opt.sessions, client_stats.endpoints,
                full_stats.endpoints, full_stats.leases, full.sent_per_s, full.received_per_s, full.cpu_ms_per_s);
    std::printf("\n| registering %zu sessions (hello + presence_set each, all in flight) | value |\n|---|---:|\n",
                opt.sessions);
    std::printf("| elapsed s | %.2f |\n| frames/s | %.0f |\n| errors | %llu |\n", reg.seconds,
                static_cast<double>(2 * opt.sessions) / reg.seconds, static_cast<unsigned long long>(reg.errors));
    std::printf("| registry bytes per session (the client's endpoint_registry alone, heap in use) | %.0f |\n",
                registry);
    std::printf("| process RSS per session (client and node registries, backend endpoints, resident user "
                "objects) | %.0f |\n",
                static_cast<double>(reg.rss_delta) / static_cast<double>(std::max<std::size_t>(1, opt.sessions)));
}

// ------------------------------------------------------------ 3. restart

void wait_until(const std::function<bool()>& done, const char* what) {
    const auto deadline = clock_type::now() + 120s;
    while (!done()) {
        if (clock_type::now() > deadline) {
            std::printf("timed out: %s\n", what);
            std::exit(1);
        }
        std::this_thread::sleep_for(1ms);
    }
}

void restart(const settings& opt, std::unique_ptr<node>& n, const embedded::options& eo, lnk::client& c) {
    std::printf("\n## 3. re-registration after the node restarts (same file, same port; client retries every "
                "10-50 ms)\n\n");
    std::printf("command: %s\n\n", command_line.c_str());
    const std::uint16_t port = n->port();
    const auto before = c.stats();
    const auto t0 = clock_type::now();
    n.reset();
    const auto t_down = clock_type::now();
    n = std::make_unique<node>(eo, opt.lease, port, "node-2");
    const auto t_up = clock_type::now();
    wait_until([&] { return c.stats().connects > before.connects; }, "reconnect");
    const auto t_open = clock_type::now();
    lnk::client_statistics after;
    wait_until(
        [&] {
            after = c.stats();
            return after.connects > before.connects && after.registering == 0;
        },
        "re-registration");
    const auto t_done = clock_type::now();
    const auto node_stats = n->stats();
    const auto frames = after.registrations - before.registrations;
    const double reg_ms = static_cast<double>(after.last_registration.count());
    std::printf("| sessions | frames sent again | node stop ms | node start ms | start → link open ms | "
                "registrations queued → all answered ms (client stats) | frames/s | restart → all answered ms | node endpoints |\n"
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    std::printf("| %zu | %llu | %.1f | %.1f | %.1f | %.0f | %.0f | %.1f | %zu |\n", before.endpoints,
                static_cast<unsigned long long>(frames), ms_between(t0, t_down), ms_between(t_down, t_up),
                ms_between(t_up, t_open), reg_ms, reg_ms > 0 ? 1000.0 * static_cast<double>(frames) / reg_ms : 0.0,
                ms_between(t0, t_done), node_stats.endpoints);
}

// ------------------------------------------------------------ 4. lease expiry

void expiry(const settings& opt, node& n, std::unique_ptr<lnk::client>& c) {
    std::printf("\n## 4. lease expiry: the gateway's client goes away with its endpoints registered\n\n");
    std::printf("command: %s\n\n", command_line.c_str());
    const auto before = n.stats();
    const auto t0 = clock_type::now();
    c.reset();
    const auto t_gone = clock_type::now();
    std::optional<clock_type::time_point> t_closed;
    lnk::server_statistics s;
    wait_until(
        [&] {
            s = n.stats();
            if (!t_closed && s.connections == 0) t_closed = clock_type::now();
            return s.expired - before.expired >= before.endpoints;
        },
        "lease expiry");
    const auto t_ended = clock_type::now();
    // What the node sent to end them is applied once a later request to
    // each user object is answered (requests to an object keep their order).
    countdown answered(opt.sessions);
    for (std::size_t i = 0; i < opt.sessions; ++i) {
        n.backend().send(frame::frame{1, "user:" + handle(i), handle(i), frame::roster_get{}}, [&](frame::frame r) {
            if (terminal(r)) answered.hit();
        });
    }
    answered.wait();
    const auto t_applied = clock_type::now();
    const double lease = static_cast<double>(opt.lease.count());
    std::printf("| endpoints | lease ms | client destroy ms | drop → link seen closed ms | drop → all ended ms | "
                "minus the lease ms | → applied by the backend ms | node endpoints after |\n"
                "|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    std::printf("| %zu | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f | %zu |\n", before.endpoints, lease,
                ms_between(t0, t_gone), t_closed ? ms_between(t0, *t_closed) : -1.0, ms_between(t0, t_ended),
                ms_between(t0, t_ended) - lease, ms_between(t0, t_applied), s.endpoints);
    std::printf("\n(the lease runs from the gateway's last message, up to a third of it before the drop)\n");
}

}  // namespace

int main(int argc, char** argv) {
    settings opt;
    for (int i = 1; i < argc; ++i) {
        command_line += (i > 1 ? " " : "") + std::string(argv[i]);
    }
    command_line = std::string(argv[0]) + (command_line.empty() ? "" : " " + command_line);
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        const std::string v = argv[i + 1];
        if (a == "--senders") opt.senders = std::stoul(v);
        else if (a == "--messages") opt.messages = std::stoull(v);
        else if (a == "--round-trips") opt.round_trips = std::stoull(v);
        else if (a == "--sessions") opt.sessions = std::stoul(v);
        else if (a == "--lease-ms") opt.lease = std::chrono::milliseconds(std::stoll(v));
        else if (a == "--idle-s") opt.idle_s = std::stod(v);
        else if (a == "--sync" && (v == "normal" || v == "full"))
            opt.sync = v == "full" ? embedded::durability::full : embedded::durability::normal;
        else if (a == "--dir") opt.dir = v;
        else {
            std::fprintf(stderr,
                         "usage: link_bench [--senders N] [--messages N] [--round-trips N] [--sessions N] "
                         "[--lease-ms N] [--idle-s S] [--sync normal|full] [--dir DIR]\n");
            return 2;
        }
    }
    if (argc % 2 == 0) {
        std::fprintf(stderr, "%s: an option lacks its value\n", argv[argc - 1]);
        return 2;
    }
    opt.senders = std::clamp<std::size_t>(opt.senders, 1, 1000);  // a room holds 1,000 endpoints
    opt.round_trips = std::max<std::uint64_t>(opt.round_trips, 1);
    opt.messages = std::max<std::uint64_t>(opt.messages, 1);
    gateway::log::set_level(std::getenv("LINK_BENCH_LOG") ? gateway::log::log_level::debug : gateway::log::log_level::warn);
    const bool own_dir = opt.dir.empty();
    if (own_dir) {
        std::string tmpl = (std::filesystem::temp_directory_path() / "switchyard-link-bench-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) return 1;
        opt.dir = tmpl;
    }
    embedded::options eo;
    eo.file = opt.dir / "node.sqlite3";
    eo.sync = opt.sync;

    std::printf("# backend link benchmark\n\ncommand: %s\n", command_line.c_str());
    std::printf("machine: %u cores; database in %s (%s sync, %u shards); client and node in this process over "
                "127.0.0.1\n",
                std::thread::hardware_concurrency(), opt.dir.c_str(),
                opt.sync == embedded::durability::full ? "FULL" : "NORMAL", std::thread::hardware_concurrency());

    auto n = std::make_unique<node>(eo, opt.lease, 0, "node-1");
    add_users(eo.file, std::max(opt.senders, opt.sessions));
    auto c = std::make_unique<lnk::client>(client_options(n->port()));
    wait_open(*c);

    link_cost(opt, n->backend(), *c);
    lease_renewal(opt, *n, *c);
    restart(opt, n, eo, *c);
    expiry(opt, *n, c);

    n.reset();
    if (own_dir) std::filesystem::remove_all(opt.dir);
    return 0;
}
