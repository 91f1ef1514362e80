// Throttling of password guesses: the rules of login_guard and the order of
// login_queue, with the clock passed in.
#include "gateway/login/login_guard.hpp"

#include <catch2/catch.hpp>

#include <future>
#include <mutex>
#include <string>
#include <vector>

using namespace switchyard::gateway;
using namespace std::chrono_literals;

namespace {

using clock_type = login_guard::clock;
const clock_type::time_point t0 = clock_type::time_point{} + 1000h;

login_guard_options small() {
    login_guard_options o;
    o.free_failures = 3;
    o.free_failures_per_address = 10;
    o.base_delay = 1s;
    o.max_delay = 60s;
    return o;
}

}  // namespace

TEST_CASE("a guesser waits longer after each failure, and the right password waits too", "[login_guard]") {
    login_guard g(small());
    const std::string a = "192.0.2.1";
    for (int i = 0; i < 3; ++i) {
        REQUIRE(g.admit(a, "alice@example.com", t0).allowed);
        g.failed(a, "alice@example.com", t0);
    }
    // The third failure starts the waits: 1 s, then 2 s, 4 s ...
    auto refused = g.admit(a, "alice@example.com", t0 + 500ms);
    CHECK_FALSE(refused.allowed);
    CHECK(refused.retry_after == 1s);
    REQUIRE(g.admit(a, "alice@example.com", t0 + 1s).allowed);
    g.failed(a, "alice@example.com", t0 + 1s);
    CHECK_FALSE(g.admit(a, "alice@example.com", t0 + 2500ms).allowed);
    CHECK(g.admit(a, "alice@example.com", t0 + 2500ms).retry_after == 1s);
    CHECK(g.admit(a, "alice@example.com", t0 + 3s).allowed);
    for (int i = 0; i < 20; ++i) g.failed(a, "alice@example.com", t0 + 3s);
    CHECK(g.admit(a, "alice@example.com", t0 + 3s).retry_after == 60s);  // capped at max_delay
    // The same handle from elsewhere is not held back, but goes after
    // first attempts (still before the guessers) while the account is
    // under attack.
    const auto elsewhere = g.admit("198.51.100.7", "alice@example.com", t0 + 3s);
    CHECK(elsewhere.allowed);
    CHECK(elsewhere.priority == login_priority::wary);
    // Forgotten an hour after the last failure.
    CHECK(g.admit(a, "alice@example.com", t0 + 3s + 1h).allowed);
    CHECK(g.admit(a, "alice@example.com", t0 + 3s + 1h).priority == login_priority::first);
}

TEST_CASE("one address guessing many handles is held back as a whole", "[login_guard]") {
    login_guard g(small());
    const std::string a = "192.0.2.1";
    for (int i = 0; i < 10; ++i) {
        const std::string h = "user" + std::to_string(i) + "@example.com";
        REQUIRE(g.admit(a, h, t0).allowed);
        g.failed(a, h, t0);
    }
    CHECK_FALSE(g.admit(a, "fresh@example.com", t0).allowed);
    CHECK(g.admit("192.0.2.2", "fresh@example.com", t0).allowed);
    CHECK(g.admit("192.0.2.2", "fresh@example.com", t0).priority == login_priority::first);
}

TEST_CASE("an address that signed in to an account keeps it, whatever else comes from there", "[login_guard]") {
    login_guard g(small());
    const std::string nat = "203.0.113.9";
    REQUIRE(g.admit(nat, "bob@example.com", t0).allowed);
    g.succeeded(nat, "bob@example.com", t0);
    // Someone else behind the same address guesses other accounts, and bob's.
    for (int i = 0; i < 30; ++i) g.failed(nat, "victim" + std::to_string(i) + "@example.com", t0 + 1s);
    for (int i = 0; i < 10; ++i) g.failed("198.51.100." + std::to_string(i), "bob@example.com", t0 + 1s);
    CHECK_FALSE(g.admit(nat, "carol@example.com", t0 + 2s).allowed);
    const auto bob = g.admit(nat, "bob@example.com", t0 + 2s);
    CHECK(bob.allowed);
    CHECK(bob.priority == login_priority::known);
    // A success does not wipe the address's failures.
    g.succeeded(nat, "bob@example.com", t0 + 2s);
    CHECK_FALSE(g.admit(nat, "carol@example.com", t0 + 2s).allowed);
}

TEST_CASE("IPv6 addresses are counted per /64, IPv4-mapped ones as IPv4", "[login_guard]") {
    CHECK(login_guard::address_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64");
    CHECK(login_guard::address_key("2001:db8:1:2:ffff:1:2:3") == "2001:db8:1:2::/64");
    CHECK(login_guard::address_key("::ffff:192.0.2.1") == "192.0.2.1");
    CHECK(login_guard::address_key("192.0.2.1") == "192.0.2.1");
    login_guard g(small());
    for (int i = 0; i < 10; ++i) g.failed("2001:db8::" + std::to_string(i + 1), "u" + std::to_string(i), t0);
    CHECK_FALSE(g.admit("2001:db8::ffff", "other", t0).allowed);
}

TEST_CASE("the guard's tables stay bounded", "[login_guard]") {
    auto o = small();
    o.max_records = 100;
    login_guard g(o);
    for (int i = 0; i < 1000; ++i) g.failed("192.0.2." + std::to_string(i % 250), "h" + std::to_string(i), t0 + std::chrono::seconds(i));
    // The most recent still count.
    CHECK(g.admit("192.0.2.249", "h999", t0 + 1000s).priority == login_priority::suspect);
}

TEST_CASE("the login queue runs the best waiting check next, and a better one pushes out the worst", "[login_guard]") {
    login_queue q(1, 2, 2);
    std::vector<std::string> events;
    const auto job = [&](std::string name, login_priority p, std::string address) {
        return login_queue::job{p, std::move(address), [&events, name] { events.push_back("start " + name); },
                                [&events, name] { events.push_back("refuse " + name); }};
    };
    q.submit(job("a", login_priority::suspect, "1"));   // runs
    q.submit(job("b", login_priority::suspect, "2"));   // waits
    q.submit(job("c", login_priority::suspect, "3"));   // waits
    q.submit(job("d", login_priority::suspect, "4"));   // full, no better: refused
    q.submit(job("e", login_priority::first, "5"));     // pushes out c
    q.submit(job("f", login_priority::known, "6"));     // pushes out b
    q.submit(job("g", login_priority::suspect, "1"));   // full
    CHECK(q.running() == 1);
    CHECK(q.waiting() == 2);
    q.finish("1");
    q.finish("6");
    q.finish("5");
    CHECK(q.running() == 0);
    CHECK(events == std::vector<std::string>{"start a", "refuse d", "refuse c", "refuse b", "refuse g", "start f",
                                             "start e"});
    // At most `per_address` running and waiting from one address.
    events.clear();
    login_queue one(1, 10, 2);
    one.submit(job("x1", login_priority::first, "9"));
    one.submit(job("x2", login_priority::first, "9"));
    one.submit(job("x3", login_priority::first, "9"));
    CHECK(events == std::vector<std::string>{"start x1", "refuse x3"});
    one.finish("9");
    one.submit(job("x4", login_priority::first, "9"));
    one.finish("9");
    one.finish("9");
    CHECK(events == std::vector<std::string>{"start x1", "refuse x3", "start x2", "start x4"});
    CHECK(one.running() == 0);
}

TEST_CASE("suspects leave one check free for better attempts; one first attempt per address", "[login_guard]") {
    login_queue q(2, 10, 4);
    std::vector<std::string> events;
    const auto job = [&](std::string name, login_priority p, std::string address) {
        return login_queue::job{p, std::move(address), [&events, name] { events.push_back("start " + name); },
                                [&events, name] { events.push_back("refuse " + name); }};
    };
    q.submit(job("s1", login_priority::suspect, "1"));  // runs
    q.submit(job("s2", login_priority::suspect, "2"));  // waits: the last slot is not for suspects
    q.submit(job("f1", login_priority::first, "3"));    // runs in it
    q.submit(job("f2", login_priority::first, "3"));    // the same address again: a suspect, waits
    q.submit(job("k1", login_priority::known, "4"));    // waits, first in line
    CHECK(events == std::vector<std::string>{"start s1", "start f1"});
    q.finish("1");
    CHECK(events.back() == "start k1");
    q.finish("3");  // k1 runs: the other slot is the last free one
    CHECK(events.back() == "start k1");
    q.finish("4");  // none running: one suspect at a time
    CHECK(events.back() == "start s2");
    CHECK(q.waiting() == 1);
    q.finish("2");
    CHECK(events.back() == "start f2");
    q.finish("3");
    CHECK(q.running() == 0);
    CHECK(q.waiting() == 0);
}

TEST_CASE("the delay line runs calls in deadline order, and at once when full", "[login_guard]") {
    std::mutex m;
    std::vector<std::string> order;
    const auto note = [&](std::string what) {
        const std::lock_guard l(m);
        order.push_back(std::move(what));
    };
    {
        std::promise<void> done;
        delay_line line(10);
        line.after(40ms, [&] {
            note("late");
            done.set_value();
        });
        line.after(0ms, [&] { note("early"); });
        done.get_future().wait();
    }
    CHECK(order == std::vector<std::string>{"early", "late"});
    order.clear();
    {
        std::promise<void> done;
        delay_line full(1);
        full.after(20ms, [&] {
            note("waited");
            done.set_value();
        });
        full.after(0ms, [&] { note("at once"); });  // no room: runs here, now
        CHECK(order == std::vector<std::string>{"at once"});
        done.get_future().wait();
    }
    CHECK(order == std::vector<std::string>{"at once", "waited"});
}
