// Benchmark of the embedded backend. Prints tables; it is not a test.
//
//   embedded_bench [--messages N] [--rooms N] [--dir DIR]
//
// 1. durable frames/s into one room: pipelined room_message frames, counted
//    when their ack (sent only after commit) arrives; FULL and NORMAL sync.
// 2. contact adds/s: pipelined roster_change{add, forward} between pairs of
//    users, counted when both objects have committed (the owner's reply and
//    the contact's published reverse-list notice); FULL and NORMAL sync.
// 3. deliveries/s to a room's local watchers through the hub (10 and 1,000).
// 4. wake latency: a request to a hibernated room with 100 messages of
//    history, against the same request to a resident room.
// 5. memory per hibernated object.
#include "gateway/backends/embedded/backend.hpp"
#include "gateway/router/hub.hpp"

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace switchyard;
namespace embedded = gateway::embedded;
using clock_type = std::chrono::steady_clock;

namespace {

const std::string sender = "alice@example.com";

struct countdown {
    std::mutex m;
    std::condition_variable cv;
    std::uint64_t left;
    explicit countdown(std::uint64_t n) : left(n) {}
    void hit(std::uint64_t n = 1) {
        const std::lock_guard lock(m);
        left -= n;
        if (left == 0) cv.notify_all();
    }
    bool wait(std::chrono::seconds limit = std::chrono::seconds(120)) {
        std::unique_lock lock(m);
        return cv.wait_for(lock, limit, [&] { return left == 0; });
    }
};

std::size_t rss_bytes() {
    std::ifstream statm("/proc/self/statm");
    std::size_t pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

void add_user(const std::filesystem::path& file, const std::string& handle) {
    embedded::database db(file, embedded::durability::normal);
    db.prepare("INSERT OR IGNORE INTO users (handle, display_name, created_ms) VALUES (?1, ?1, 0)").bind(handle).run();
}

// Sends a request and waits for its terminal reply.
frame::frame ask(embedded::backend& be, std::string object, frame::body b, std::uint64_t corr = 1) {
    std::promise<frame::frame> p;
    auto fut = p.get_future();
    be.send(frame::frame{corr, std::move(object), sender, std::move(b)},
            [&p](frame::frame r) { p.set_value(std::move(r)); });
    return fut.get();
}

void create_joined_room(embedded::backend& be, const std::string& room) {
    ask(be, room, frame::room_create{frame::room_policy::named, ""});
    ask(be, room, frame::room_join{frame::member{sender, "ep", sender, 0, frame::client_protocol::msnp}});
}

frame::room_message message(std::uint64_t i) {
    frame::room_message m;
    m.message_id = "m" + std::to_string(i);
    m.text = "a message of about sixty bytes, like a short line of chat #" + std::to_string(i);
    m.format.font = "Segoe UI";
    return m;
}

embedded::options base_options(const std::filesystem::path& dir, const std::string& name) {
    embedded::options o;
    o.file = dir / (name + ".sqlite3");
    return o;
}

// Waits for a pipelined run to be answered, then prints its row: per second,
// frames per commit, elapsed seconds.
void print_durable_row(const embedded::backend& be, embedded::durability sync, countdown& answered,
                       std::uint64_t errors, std::uint64_t count, clock_type::time_point start,
                       const embedded::statistics& before) {
    if (!answered.wait()) {
        std::printf("timed out\n");
        std::exit(1);
    }
    const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
    const auto after = be.stats();
    if (errors) std::printf("(%llu errors)\n", static_cast<unsigned long long>(errors));
    std::printf("| %s | %.0f | %.0f | %.2f |\n", sync == embedded::durability::full ? "FULL" : "NORMAL",
                static_cast<double>(count) / secs,
                static_cast<double>(after.frames - before.frames) /
                    static_cast<double>(std::max<std::uint64_t>(1, after.commits - before.commits)),
                secs);
}

void durable_throughput(const std::filesystem::path& dir, std::uint64_t n) {
    std::printf("\n## durable frames/s into one room (%llu pipelined room_message frames, acked after commit)\n\n",
                static_cast<unsigned long long>(n));
    std::printf("| sync | frames/s | frames per commit | elapsed s |\n|---|---:|---:|---:|\n");
    for (const auto sync : {embedded::durability::full, embedded::durability::normal}) {
        auto opt = base_options(dir, sync == embedded::durability::full ? "tp-full" : "tp-normal");
        opt.sync = sync;
        embedded::backend be(opt);
        add_user(opt.file, sender);
        create_joined_room(be, "room:bench");
        const auto before = be.stats();
        countdown acks(n);
        std::atomic<std::uint64_t> errors{0};
        const auto start = clock_type::now();
        for (std::uint64_t i = 0; i < n; ++i) {
            be.send(frame::frame{i + 1, "room:bench", sender, message(i)}, [&](frame::frame r) {
                if (!std::holds_alternative<frame::ack>(r.content)) errors.fetch_add(1);
                acks.hit();
            });
        }
        print_durable_row(be, sync, acks, errors.load(), n, start, before);
    }
}

// Each add commits twice: the owner's forward-list row (then its reply), and
// on the contact's object the reverse-list notice that takes the contact's
// next list version (then its publication). An add counts once both are in.
void contact_adds(const std::filesystem::path& dir, std::uint64_t n) {
    const std::uint64_t users = std::max<std::uint64_t>(2, std::min<std::uint64_t>(1000, n));
    const std::uint64_t per_owner = std::max<std::uint64_t>(1, std::min(users - 1, n / users));
    const std::uint64_t adds = users * per_owner;
    std::printf("\n## contact adds/s (%llu pipelined roster_change{add, forward} among %llu users: the owner's reply "
                "and the contact's reverse-list notice, both after commit)\n\n",
                static_cast<unsigned long long>(adds), static_cast<unsigned long long>(users));
    std::printf("| sync | adds/s | frames per commit | elapsed s |\n|---|---:|---:|---:|\n");
    const auto handle = [](std::uint64_t i) { return "u" + std::to_string(i) + "@example.com"; };
    for (const auto sync : {embedded::durability::full, embedded::durability::normal}) {
        auto opt = base_options(dir, sync == embedded::durability::full ? "adds-full" : "adds-normal");
        opt.sync = sync;
        opt.max_list_entries = std::max<std::size_t>(opt.max_list_entries, per_owner);
        embedded::backend be(opt);
        for (std::uint64_t i = 0; i < users; ++i) add_user(opt.file, handle(i));
        countdown done(2 * adds);  // replies and notices
        std::atomic<std::uint64_t> errors{0};
        for (std::uint64_t i = 0; i < users; ++i) {
            be.subscribe("user:" + handle(i), [&](frame::frame f) {
                if (const auto* r = std::get_if<frame::roster_change>(&f.content); r && r->which == frame::list::reverse) {
                    done.hit();
                }
            });
        }
        const auto before = be.stats();
        const auto start = clock_type::now();
        std::uint64_t corr = 0;
        for (std::uint64_t k = 1; k <= per_owner; ++k) {
            for (std::uint64_t i = 0; i < users; ++i) {
                be.send(frame::frame{++corr, "user:" + handle(i), handle(i),
                                     frame::list_edit(frame::change_op::add, frame::list::forward,
                                                      handle((i + k) % users))},
                        [&](frame::frame r) {
                            if (!std::holds_alternative<frame::roster_change>(r.content)) errors.fetch_add(1);
                            done.hit();
                        });
            }
        }
        print_durable_row(be, sync, done, errors.load(), adds, start, before);
    }
}

void fanout(const std::filesystem::path& dir, std::uint64_t n) {
    std::printf("\n## deliveries/s to local watchers of one room (through the hub; %llu messages)\n\n",
                static_cast<unsigned long long>(n));
    std::printf("| watchers | messages/s | deliveries/s |\n|---|---:|---:|\n");
    for (const std::size_t watchers : {std::size_t{10}, std::size_t{1000}}) {
        auto opt = base_options(dir, "fanout-" + std::to_string(watchers));
        opt.sync = embedded::durability::normal;
        auto be = std::make_shared<embedded::backend>(opt);
        add_user(opt.file, sender);
        create_joined_room(*be, "room:fanout");

        std::ofstream(dir / "routes.toml") << "[default]\nbackend = \"embedded\"\n";
        gateway::router routes(dir / "routes.toml", {"embedded"});
        if (!routes.reload()) std::exit(1);
        gateway::metrics stats;
        gateway::hub hub(routes, stats);
        hub.add_backend("embedded", be);
        const std::uint64_t expected = n * watchers;
        countdown delivered(expected);
        std::vector<std::uint64_t> ids;
        for (std::size_t w = 0; w < watchers; ++w) {
            ids.push_back(hub.watch("room:fanout", [&](gateway::shared_frame f) {
                if (std::holds_alternative<frame::room_message>(f->content)) delivered.hit();
            }));
        }
        const auto start = clock_type::now();
        for (std::uint64_t i = 0; i < n; ++i) {
            hub.send(frame::frame{0, "room:fanout", sender, message(i)}, [](frame::frame) {});
        }
        if (!delivered.wait()) {
            std::printf("timed out\n");
            std::exit(1);
        }
        const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
        std::printf("| %zu | %.0f | %.0f |\n", watchers, static_cast<double>(n) / secs,
                    static_cast<double>(expected) / secs);
        for (auto id : ids) hub.unwatch("room:fanout", id);
    }
}

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

void wake_latency(const std::filesystem::path& dir, std::size_t rooms) {
    std::printf("\n## wake latency: room_history_get round trip, %zu rooms with 100 messages each\n\n", rooms);
    auto opt = base_options(dir, "wake");
    opt.sync = embedded::durability::normal;
    opt.hibernate_after = std::chrono::milliseconds(50);
    embedded::backend be(opt);
    add_user(opt.file, sender);
    for (std::size_t r = 0; r < rooms; ++r) {
        const std::string id = "room:w" + std::to_string(r);
        create_joined_room(be, id);
        countdown acks(100);
        for (std::uint64_t i = 0; i < 100; ++i) {
            be.send(frame::frame{i + 1, id, sender, message(i)}, [&](frame::frame) { acks.hit(); });
        }
        acks.wait();
    }
    auto measure = [&] {
        std::vector<double> us;
        for (std::size_t r = 0; r < rooms; ++r) {
            const auto t0 = clock_type::now();
            ask(be, "room:w" + std::to_string(r), frame::room_history_get{});
            us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
        }
        return us;
    };
    // Wait until every room has left memory.
    const auto deadline = clock_type::now() + std::chrono::seconds(30);
    while (be.stats().resident != 0 && clock_type::now() < deadline) std::this_thread::yield();
    const auto wakes_before = be.stats().wakes;
    const auto cold = measure();
    const auto woke = be.stats().wakes - wakes_before;
    const auto warm = measure();  // resident now: the baseline
    std::printf("| request to | p50 µs | p99 µs | max µs |\n|---|---:|---:|---:|\n");
    std::printf("| hibernated room (%llu wakes) | %.1f | %.1f | %.1f |\n", static_cast<unsigned long long>(woke),
                percentile(cold, 0.5), percentile(cold, 0.99), percentile(cold, 1.0));
    std::printf("| resident room (baseline) | %.1f | %.1f | %.1f |\n", percentile(warm, 0.5), percentile(warm, 0.99),
                percentile(warm, 1.0));
    std::printf("| wake cost (p50, p99 difference) | %.1f | %.1f | |\n", percentile(cold, 0.5) - percentile(warm, 0.5),
                percentile(cold, 0.99) - percentile(warm, 0.99));
}

void hibernated_memory(const std::filesystem::path& dir, std::size_t objects) {
    std::printf("\n## memory per hibernated object (%zu rooms, each created, joined and sent one message)\n\n",
                objects);
    auto opt = base_options(dir, "memory");
    opt.sync = embedded::durability::normal;
    opt.hibernate_after = std::chrono::milliseconds(100);
    embedded::backend be(opt);
    add_user(opt.file, sender);
    malloc_trim(0);
    const std::size_t before = rss_bytes();
    const std::size_t batch = 1000;
    for (std::size_t done = 0; done < objects; done += batch) {
        countdown replies(batch * 3);
        for (std::size_t r = done; r < done + batch; ++r) {
            const std::string id = "room:m" + std::to_string(r);
            auto hit = [&](frame::frame) { replies.hit(); };
            be.send(frame::frame{1, id, sender, frame::room_create{frame::room_policy::named, ""}}, hit);
            be.send(frame::frame{2, id, sender,
                                 frame::room_join{frame::member{sender, "ep", sender, 0, frame::client_protocol::msnp}}},
                    hit);
            be.send(frame::frame{3, id, sender, message(r)}, hit);
        }
        replies.wait();
    }
    const std::size_t resident_rss = rss_bytes();
    const auto resident_objects = be.stats().resident;
    const auto deadline = clock_type::now() + std::chrono::seconds(60);
    while (be.stats().resident != 0 && clock_type::now() < deadline) std::this_thread::yield();
    malloc_trim(0);
    const std::size_t after = rss_bytes();
    std::printf("| state | objects in memory | RSS over start, MiB | bytes per object |\n|---|---:|---:|---:|\n");
    std::printf("| all resident | %llu | %.1f | %.0f |\n", static_cast<unsigned long long>(resident_objects),
                static_cast<double>(resident_rss - before) / 1048576.0,
                static_cast<double>(resident_rss - before) / static_cast<double>(objects));
    std::printf("| all hibernated | %llu | %.1f | %.0f |\n", static_cast<unsigned long long>(be.stats().resident),
                static_cast<double>(after > before ? after - before : 0) / 1048576.0,
                static_cast<double>(after > before ? after - before : 0) / static_cast<double>(objects));
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t messages = 500000;
    std::size_t rooms = 2000;
    std::filesystem::path parent = std::filesystem::temp_directory_path();
    const auto usage = [] {
        std::fprintf(stderr, "usage: embedded_bench [--messages N] [--rooms N] [--dir DIR]\n");
        return 2;
    };
    for (int i = 1; i < argc; i += 2) {
        const std::string a = argv[i];
        if (i + 1 >= argc) return usage();
        try {
            if (a == "--messages") messages = std::stoull(argv[i + 1]);
            else if (a == "--rooms") rooms = std::stoul(argv[i + 1]);
            else if (a == "--dir") parent = argv[i + 1];
            else return usage();
        } catch (const std::exception&) {
            std::fprintf(stderr, "embedded_bench: %s takes a number, not \"%s\"\n", a.c_str(), argv[i + 1]);
            return usage();
        }
    }
    // The databases go in a directory of the run's own inside DIR (created
    // when missing), removed at the end: never DIR itself.
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    std::string tmpl = (parent / "switchyard-bench-XXXXXX").string();
    if (ec || !::mkdtemp(tmpl.data())) {
        std::fprintf(stderr, "embedded_bench: cannot make a directory in %s: %s\n", parent.c_str(),
                     (ec ? ec.message() : std::string(std::strerror(errno))).c_str());
        return 1;
    }
    const std::filesystem::path dir = tmpl;
    std::printf("# embedded backend benchmark\n\ncommand: ");
    for (int i = 0; i < argc; ++i) std::printf("%s ", argv[i]);
    std::printf("\nmachine: %u cores; database in %s; %u shards\n", std::thread::hardware_concurrency(),
                dir.c_str(), std::thread::hardware_concurrency());
    int status = 0;
    try {
        durable_throughput(dir, messages);
        contact_adds(dir, messages / 10);
        fanout(dir, messages / 50);
        wake_latency(dir, rooms);
        hibernated_memory(dir, rooms * 50);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "embedded_bench: %s\n", e.what());
        status = 1;
    }
    std::filesystem::remove_all(dir, ec);
    return status;
}
