// WebSocket benchmark: real WebSocket JSON clients over 127.0.0.1 against a
// gateway it starts itself. Prints markdown tables; it is not a test.
//
//   ws_bench [--gateway PATH] [--quick] [--rtt N] [--warmup N] [--rtt-members N]
//            [--members N] [--messages N] [--window N] [--idle N] [--concurrency N]
//            [--durability full|normal] [--gateway-threads N] [--gateway-cpu N] [--load-cpu N]
//            [--no-hibernate-wait] [--no-rtt-normal] [--phase-seconds S] [--keep]
//
// The gateway is build/gateway/switchyard next to this binary's directory
// unless --gateway says otherwise. --quick runs small sizes (a smoke run of
// every phase; the exit status is 1 when a phase could not complete, not
// when a target is missed). --keep keeps the temporary directory (settings, gateway
// logs, databases). A CPU of -1 leaves that side unpinned.
//
// Gateways run one after another (`switchyard run`): one for the round trip
// and the fan-out, one for the round trip at durability "normal", one for
// idle memory. Each has a fresh temporary directory, with the WebSocket listener on port 0 (read back
// from the `event=listening` log line), the MSNP and HTTPS listeners off,
// [gateway] threads = 1 (--gateway-threads), the named rooms "rtt" and
// "fanout" in [listeners.ws] rooms, [limits] commands_per_second raised to
// 1,000,000 (the WebSocket token bucket would otherwise be measured, not
// the gateway: 50/s by default), and max_room_members at least --members.
// Durability is the gateway's default ("full": every stored message is
// synced before its reply) unless --durability says otherwise. The gateway's
// threads are pinned to one CPU (sched_setaffinity before exec), this
// process to the other. This process raises its RLIMIT_NOFILE soft limit to
// the hard limit, and so does the gateway (server.cpp, event=descriptors).
// Beside each measurement: the CPU the gateway's threads and this process
// used, and what other processes used of the two CPUs (/proc/stat), flagged
// above 10%: on a shared machine that, not the gateway, can set a rate or a
// p99.
//
// The client side is one thread and one epoll set: plain sockets, the
// upgrade request written by hand, masked client frames, server frames
// parsed in place. `message` events are recognised by their first bytes and
// only their seq is read; everything else is parsed with Boost.JSON.
//
// Accounts: one account is made with the embedded backend's accounts API
// (scrypt N = 1024, r = 1, the cheapest the gateway accepts); every other
// user gets its own users row and a copy of that credentials row, by SQL in
// one transaction. One client logs in with its password (the scrypt check
// on the gateway's login pool); every other client logs in with a session
// token this process issues with the gateway's own token code
// (gateway/login/tokens.cpp) and the HMAC key it wrote into the settings'
// [[keys]]: exactly the token a previous login's reply would have given it
// (a returning client). The gateway verifies each one and attaches the
// endpoint to the user's object as for any login.
//
// 1. round trip: --rtt-members clients join the named room "rtt"; one sends
//    `send` (with id and client_id) one at a time: the time from the write
//    to the `reply` (the message is stored) and to its own `message` event.
//    --warmup messages first, not counted. With durability "full", the same
//    again on a gateway with durability "normal" (no sync per commit), which
//    tells the disk's share from the gateway's (--no-rtt-normal skips it).
// 2. fan-out: --members clients log in and join the named room "fanout";
//    one of them sends --messages messages, at most --window requests in
//    flight (the codec allows 64); every member counts the `message` events
//    it receives. deliveries/s = members × messages / (last delivery − first
//    write). Also the time from a message's write to its delivery to the
//    last member, and the CPU the gateway and this process used.
// 3. idle memory: a fresh gateway; --idle connections upgraded (and nothing
//    else), VmRSS; then each logs in (token), VmRSS; then, past the
//    backend's hibernate_after (10 s), VmRSS again. Per connection: the
//    difference from the gateway's VmRSS before the first connection,
//    divided by the number of connections. User-space only: socket buffers
//    in the kernel are not in VmRSS.
#include "gateway/backends/embedded/accounts.hpp"
#include "gateway/backends/embedded/backend.hpp"
#include "gateway/backends/embedded/object.hpp"
#include "gateway/backends/embedded/sqlite.hpp"
#include "gateway/config/config.hpp"
#include "gateway/login/tokens.hpp"

#include <boost/json.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
namespace json = boost::json;
namespace embedded = switchyard::gateway::embedded;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// ------------------------------------------------------------------ options

struct options {
    fs::path gateway;
    std::size_t rtt = 2000;
    std::size_t warmup = 200;
    std::size_t rtt_members = 4;
    std::size_t members = 1000;
    std::size_t messages = 500;
    std::size_t window = 32;
    std::size_t idle = 10000;
    std::size_t concurrency = 200;  // connections being set up (upgrade, login, join) at once
    std::string durability = "full";
    unsigned gateway_threads = 1;
    int gateway_cpu = 0;
    int load_cpu = 1;
    bool hibernate_wait = true;
    bool rtt_normal = true;  // the round trip again at durability "normal"
    bool quick = false;
    bool keep = false;
    double phase_seconds = 120;  // every phase's deadline
    clock_type::duration settle = 1s;  // quiet time before a memory reading or a measurement
};

const std::string password = "ws-bench-password";
// [[keys]] of both gateways; the secret, decoded, signs the tokens this process issues.
const std::string key_id = "bench1";
const std::string key_secret = "ws-bench-hmac-key-0123456789abcdef";
const std::string key_secret_base64 = "d3MtYmVuY2gtaG1hYy1rZXktMDEyMzQ1Njc4OWFiY2RlZg==";
// Chat text of a typical length (about 100 bytes).
const std::string chat_text = "benchmark message: the quick brown fox jumps over the lazy dog while the room keeps count";

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "ws_bench: %s\n", what.c_str());
    std::exit(1);
}

// Progress on stderr (the report is stdout): which phase runs, for someone
// attaching a profiler to the gateway.
void progress(const std::string& what) {
    std::fprintf(stderr, "ws_bench: %s\n", what.c_str());
    std::fflush(stderr);
}

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }
double micros(clock_type::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

double maximum(const std::vector<double>& v) { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }

std::string with_commas(double value) {
    const auto n = static_cast<long long>(value + 0.5);
    std::string digits = std::to_string(n < 0 ? -n : n);
    std::string out = n < 0 ? "-" : "";
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

void set_cpu(pid_t pid, int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (::sched_setaffinity(pid, sizeof set, &set) != 0) {
        std::fprintf(stderr, "ws_bench: sched_setaffinity(CPU %d): %s\n", cpu, std::strerror(errno));
    }
}

std::uint64_t now_ms() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

// ------------------------------------------------------------------ event loop

struct pollable {
    virtual ~pollable() = default;
    virtual void on_events(std::uint32_t events) = 0;
};

// One epoll set, level-triggered.
class event_loop {
public:
    event_loop() : ep_(::epoll_create1(EPOLL_CLOEXEC)) {
        if (ep_ < 0) die(std::string("epoll_create1: ") + std::strerror(errno));
    }
    void add(int fd, pollable* p, std::uint32_t events) { ctl(EPOLL_CTL_ADD, fd, p, events); }
    void modify(int fd, pollable* p, std::uint32_t events) { ctl(EPOLL_CTL_MOD, fd, p, events); }
    void remove(int fd) { ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr); }

    void run_once(int timeout_ms) {
        std::array<epoll_event, 512> events;
        const int n = ::epoll_wait(ep_, events.data(), static_cast<int>(events.size()), timeout_ms);
        for (int i = 0; i < n; ++i) {
            static_cast<pollable*>(events[static_cast<std::size_t>(i)].data.ptr)
                ->on_events(events[static_cast<std::size_t>(i)].events);
        }
    }

    // Runs until `done()` or the deadline; false at the deadline.
    template <class F> bool run_until(F&& done, clock_type::time_point deadline) {
        while (!done()) {
            if (clock_type::now() >= deadline) return false;
            run_once(2);
        }
        return true;
    }
    void run_for(clock_type::duration d) {
        const auto until = clock_type::now() + d;
        run_until([] { return false; }, until);
    }

private:
    void ctl(int op, int fd, pollable* p, std::uint32_t events) {
        epoll_event e{};
        e.events = events;
        e.data.ptr = p;
        if (::epoll_ctl(ep_, op, fd, &e) != 0) die(std::string("epoll_ctl: ") + std::strerror(errno));
    }
    int ep_;
};

event_loop loop;

int tcp_connect(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// ------------------------------------------------------------------ WebSocket client

// RFC 6455 section 1.3's example key and the accept value it must produce.
constexpr std::string_view upgrade_key = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view upgrade_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// One WebSocket connection (RFC 6455 client side): the upgrade, masked text
// frames out, server frames parsed in place (continuations joined, pings
// answered, a close frame answered and reported). Text messages reach
// `on_text` as views into the receive buffer, valid during the call.
class ws_client final : public pollable {
public:
    std::function<void()> on_open;
    std::function<void(std::string_view)> on_text;
    std::function<void(const std::string& reason)> on_close;

    ~ws_client() override { close(); }

    bool connect(std::uint16_t port) {
        fd_ = tcp_connect(port);
        if (fd_ < 0) return false;
        port_ = port;
        loop.add(fd_, this, EPOLLIN | EPOLLOUT);
        want_out_ = true;
        return true;
    }

    void send_text(std::string_view payload) { write_frame(0x1, payload); }

    bool is_open() const { return state_ == state::open; }
    std::size_t backlog() const { return out_.size() - out_pos_; }

    void close() {
        if (fd_ < 0) return;
        loop.remove(fd_);
        ::close(fd_);
        fd_ = -1;
        state_ = state::closed;
    }

    void on_events(std::uint32_t events) override {
        if (fd_ < 0) return;
        if (state_ == state::connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) return fail(std::string("connect: ") + std::strerror(err));
            state_ = state::upgrading;
            out_.insert(0, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
                               "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " +
                               std::string(upgrade_key) +
                               "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: switchyard.v1\r\n\r\n");
        }
        if (state_ != state::connecting && (events & EPOLLOUT)) flush();
        if (fd_ >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) read_all();
    }

private:
    enum class state { connecting, upgrading, open, closed };

    void write_frame(std::uint8_t opcode, std::string_view payload) {
        if (fd_ < 0) return;
        char header[14];
        std::size_t n = 0;
        header[n++] = static_cast<char>(0x80 | opcode);
        const std::size_t size = payload.size();
        if (size < 126) {
            header[n++] = static_cast<char>(0x80 | size);
        } else if (size < 65536) {
            header[n++] = static_cast<char>(0x80 | 126);
            header[n++] = static_cast<char>(size >> 8);
            header[n++] = static_cast<char>(size & 0xff);
        } else {
            header[n++] = static_cast<char>(0x80 | 127);
            for (int shift = 56; shift >= 0; shift -= 8) header[n++] = static_cast<char>((size >> shift) & 0xff);
        }
        // A fresh mask per frame (xorshift): the server unmasks whatever it is.
        mask_state_ ^= mask_state_ << 13;
        mask_state_ ^= mask_state_ >> 17;
        mask_state_ ^= mask_state_ << 5;
        std::array<char, 4> mask;
        std::memcpy(mask.data(), &mask_state_, 4);
        std::memcpy(header + n, mask.data(), 4);
        n += 4;
        out_.append(header, n);
        const std::size_t at = out_.size();
        out_.append(payload);
        for (std::size_t i = 0; i < size; ++i) out_[at + i] = static_cast<char>(out_[at + i] ^ mask[i & 3]);
        if (state_ == state::open) flush();
    }

    void flush() {
        while (out_pos_ < out_.size()) {
            const ssize_t n = ::send(fd_, out_.data() + out_pos_, out_.size() - out_pos_, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                return fail(std::string("send: ") + std::strerror(errno));
            }
            out_pos_ += static_cast<std::size_t>(n);
        }
        if (out_pos_ == out_.size()) {
            out_.clear();
            out_pos_ = 0;
        }
        const bool want = out_pos_ < out_.size();
        if (want != want_out_) {
            want_out_ = want;
            loop.modify(fd_, this, EPOLLIN | (want ? EPOLLOUT : 0u));
        }
    }

    void read_all() {
        static std::array<char, 262144> buffer;
        for (;;) {
            const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
            if (n > 0) {
                // Parse straight from the read buffer when nothing is left over.
                if (in_.size() == in_pos_) {
                    in_.clear();
                    in_pos_ = 0;
                    const std::size_t used = parse({buffer.data(), static_cast<std::size_t>(n)});
                    if (fd_ < 0) return;
                    in_.append(buffer.data() + used, static_cast<std::size_t>(n) - used);
                } else {
                    in_.append(buffer.data(), static_cast<std::size_t>(n));
                    in_pos_ += parse(std::string_view(in_).substr(in_pos_));
                    if (fd_ < 0) return;
                    if (in_pos_ == in_.size()) {
                        in_.clear();
                        in_pos_ = 0;
                    }
                }
                if (in_.capacity() > 65536 && in_.size() - in_pos_ < 4096) {
                    in_ = in_.substr(in_pos_);
                    in_pos_ = 0;
                }
                if (static_cast<std::size_t>(n) < buffer.size()) return;
                continue;
            }
            if (n == 0) return fail("closed by the server (no close frame)");
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == EINTR) continue;
            return fail(std::string("recv: ") + std::strerror(errno));
        }
    }

    // Parses what it can of `data`; returns the bytes used.
    std::size_t parse(std::string_view data) {
        std::size_t used = 0;
        if (state_ == state::upgrading) {
            const auto end = data.find("\r\n\r\n");
            if (end == std::string_view::npos) return 0;
            const std::string_view head = data.substr(0, end + 2);
            if (!head.starts_with("HTTP/1.1 101")) return fail("upgrade refused: " + std::string(head.substr(0, head.find('\r')))), 0;
            if (head.find(upgrade_accept) == std::string_view::npos) return fail("upgrade without the right Sec-WebSocket-Accept"), 0;
            state_ = state::open;
            used = end + 4;
            flush();
            if (on_open) on_open();
            if (fd_ < 0) return used;
        }
        while (fd_ >= 0) {
            const std::string_view rest = data.substr(used);
            if (rest.size() < 2) break;
            const auto b0 = static_cast<unsigned char>(rest[0]);
            const auto b1 = static_cast<unsigned char>(rest[1]);
            std::size_t header = 2;
            std::uint64_t size = b1 & 0x7f;
            if (b1 & 0x80) return fail("a masked frame from the server"), used;
            if (size == 126) {
                if (rest.size() < 4) break;
                size = static_cast<std::uint64_t>(static_cast<unsigned char>(rest[2])) << 8 |
                       static_cast<unsigned char>(rest[3]);
                header = 4;
            } else if (size == 127) {
                if (rest.size() < 10) break;
                size = 0;
                for (int i = 2; i < 10; ++i) size = size << 8 | static_cast<unsigned char>(rest[static_cast<std::size_t>(i)]);
                header = 10;
            }
            if (rest.size() < header + size) break;
            const std::string_view payload = rest.substr(header, static_cast<std::size_t>(size));
            used += header + static_cast<std::size_t>(size);
            const bool fin = b0 & 0x80;
            const int opcode = b0 & 0x0f;
            switch (opcode) {
                case 0x1:
                    if (fin) {
                        if (on_text) on_text(payload);
                    } else {
                        fragments_.assign(payload);
                        in_fragments_ = true;
                    }
                    break;
                case 0x0:
                    if (!in_fragments_) return fail("a continuation frame without a message"), used;
                    fragments_.append(payload);
                    if (fin) {
                        in_fragments_ = false;
                        if (on_text) on_text(fragments_);
                        std::string().swap(fragments_);
                    }
                    break;
                case 0x2: return fail("a binary message from the server"), used;
                case 0x8: {
                    std::string reason = "close frame";
                    if (payload.size() >= 2) {
                        reason += " " + std::to_string(static_cast<unsigned char>(payload[0]) << 8 |
                                                       static_cast<unsigned char>(payload[1])) +
                                  " " + std::string(payload.substr(2));
                    }
                    write_frame(0x8, payload.substr(0, std::min<std::size_t>(payload.size(), 2)));
                    return fail(reason), used;
                }
                case 0x9: write_frame(0xA, payload); break;
                case 0xA: break;
                default: return fail("opcode " + std::to_string(opcode)), used;
            }
        }
        return used;
    }

    void fail(const std::string& reason) {
        if (fd_ < 0) return;
        flush();
        close();
        if (on_close) on_close(reason);
    }

    int fd_ = -1;
    std::uint16_t port_ = 0;
    state state_ = state::connecting;
    bool want_out_ = false;
    std::string in_;
    std::size_t in_pos_ = 0;
    std::string out_;
    std::size_t out_pos_ = 0;
    std::string fragments_;
    bool in_fragments_ = false;
    std::uint64_t mask_state_ = 0x9e3779b97f4a7c15ull;
};

// ------------------------------------------------------------------ protocol client

bool is_message_event(std::string_view text) { return text.starts_with(R"({"type":"message",)"); }

// The seq of a message event, read without parsing the rest.
std::uint64_t seq_of(std::string_view text) {
    const auto at = text.find(R"("seq":)");
    if (at == std::string_view::npos) return 0;
    std::uint64_t v = 0;
    std::from_chars(text.data() + at + 6, text.data() + text.size(), v);
    return v;
}

// One user of the JSON protocol: requests with ids, their replies and errors
// to the request's callback; `message` events to on_message unparsed; other
// events dropped.
class client {
public:
    using reply_fn = std::function<void(const json::object& msg)>;  // a reply or an error

    explicit client(std::string handle) : handle_(std::move(handle)) {
        ws.on_text = [this](std::string_view text) { on_text(text); };
        ws.on_close = [this](const std::string& reason) {
            closed_ = reason;
            if (on_close) on_close(reason);
        };
    }

    const std::string& handle() const { return handle_; }
    const std::string& closed() const { return closed_; }

    std::int64_t request(json::object o, reply_fn fn) {
        const std::int64_t id = next_id_++;
        o["id"] = id;
        pending_.emplace(id, std::move(fn));
        ws.send_text(json::serialize(o));
        return id;
    }
    // For the hot paths: the caller wrote the JSON, with this id.
    std::int64_t next_id() { return next_id_++; }
    void expect(std::int64_t id, reply_fn fn) { pending_.emplace(id, std::move(fn)); }

    ws_client ws;
    std::function<void(std::string_view text)> on_message;
    std::function<void(const std::string&)> on_close;
    // Set by join: the room id the server gave.
    std::string room;

private:
    void on_text(std::string_view text) {
        if (is_message_event(text)) {
            if (on_message) on_message(text);
            return;
        }
        // Replies and errors to requests carry their id; events are dropped.
        if (!text.starts_with(R"({"type":"reply")") && !text.starts_with(R"({"type":"error")")) return;
        boost::system::error_code ec;
        json::value v = json::parse(text, ec);
        if (ec || !v.is_object()) return;
        const json::object& o = v.as_object();
        const json::value* id = o.if_contains("id");
        if (!id || !id->is_int64()) return;
        const auto it = pending_.find(id->as_int64());
        if (it == pending_.end()) return;
        reply_fn fn = std::move(it->second);
        pending_.erase(it);
        fn(o);
    }

    std::string handle_;
    std::string closed_;
    std::int64_t next_id_ = 1;
    std::map<std::int64_t, reply_fn> pending_;
};

std::string error_text(const json::object& o) {
    std::string code = o.contains("code") ? std::string(o.at("code").as_string()) : "?";
    std::string reason = o.contains("reason") && o.at("reason").is_string() ? std::string(o.at("reason").as_string()) : "";
    return code + (reason.empty() ? "" : " (" + reason + ")");
}

bool is_reply(const json::object& o) { return o.at("type") == "reply"; }

// ------------------------------------------------------------------ batches

struct batch_result {
    std::size_t ok = 0;
    std::map<std::string, std::size_t> errors;
    double seconds = 0;
    bool timed_out = false;

    std::string error_text() const {
        std::string out;
        for (const auto& [e, n] : errors) out += (out.empty() ? "" : "; ") + std::to_string(n) + "x " + e;
        return out;
    }
    std::string summary(std::size_t of) const {
        return std::to_string(ok) + " of " + std::to_string(of) + " in " + fixed(seconds, 2) + " s" +
               (errors.empty() ? "" : "; errors: " + error_text()) + (timed_out ? "; TIMED OUT" : "");
    }
};

using step_done = std::function<void(const std::string& error)>;
using step_fn = std::function<void(std::size_t i, step_done done)>;

// step(i, done) for every i in [0, n), at most `concurrency` unfinished at
// once; each step calls done once ("" for success). A done called after the
// batch has ended (a close long after its step timed out) changes nothing.
batch_result run_batch(std::size_t n, std::size_t concurrency, const step_fn& step, clock_type::time_point deadline) {
    struct state {
        batch_result r;
        std::size_t active = 0, finished = 0;
        bool over = false;
    };
    const auto s = std::make_shared<state>();
    std::size_t next = 0;
    const auto t0 = clock_type::now();
    while (s->finished < n) {
        while (s->active < concurrency && next < n) {
            ++s->active;
            auto called = std::make_shared<bool>(false);
            step(next++, [s, called](const std::string& error) {
                if (*called || s->over) return;
                *called = true;
                --s->active;
                ++s->finished;
                if (error.empty()) ++s->r.ok;
                else ++s->r.errors[error.substr(0, 160)];
            });
        }
        if (s->finished == n) break;
        if (clock_type::now() >= deadline) {
            s->r.timed_out = true;
            break;
        }
        loop.run_once(2);
    }
    s->over = true;
    s->r.seconds = seconds_since(t0);
    return s->r;
}

// ------------------------------------------------------------------ gateway process

struct proc_memory {
    std::uint64_t rss_kib = 0, anon_kib = 0, hwm_kib = 0, threads = 0, private_kib = 0;
};

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

proc_memory read_memory(pid_t pid) {
    proc_memory m;
    {
        std::ifstream in("/proc/" + std::to_string(pid) + "/status");
        std::string key, rest;
        std::uint64_t value = 0;
        while (in >> key) {
            if (key == "VmRSS:" && in >> value) m.rss_kib = value;
            else if (key == "RssAnon:" && in >> value) m.anon_kib = value;
            else if (key == "VmHWM:" && in >> value) m.hwm_kib = value;
            else if (key == "Threads:" && in >> value) m.threads = value;
            std::getline(in, rest);
        }
    }
    std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
    std::string key, rest;
    std::uint64_t value = 0;
    while (in >> key) {
        if ((key == "Private_Clean:" || key == "Private_Dirty:") && in >> value) m.private_kib += value;
        std::getline(in, rest);
    }
    return m;
}

// A key=value field of a log line; quoted values ("End of file") unquoted.
std::string log_field(std::string_view line, std::string_view key) {
    const std::string k = " " + std::string(key) + "=";
    const auto at = line.find(k);
    if (at == std::string_view::npos) return {};
    std::size_t i = at + k.size();
    if (i >= line.size() || line[i] != '"') {
        const auto end = line.find(' ', i);
        return std::string(line.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i));
    }
    std::string out;
    for (++i; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) ++i;
        out.push_back(line[i]);
    }
    return out;
}

// CPU time of the gateway's threads and of this process over a phase.
class cpu_meter {
public:
    explicit cpu_meter(pid_t gateway)
        : pid_(gateway), t0_(clock_type::now()), threads0_(threads()), self0_(self()), cpus0_(cpus()) {}

    double wall() const { return seconds_since(t0_); }
    double gateway_seconds() const {
        double total = 0;
        for (const auto& [tid, secs] : threads()) {
            const auto before = threads0_.find(tid);
            total += secs - (before == threads0_.end() ? 0 : before->second);
        }
        return total;
    }
    double self_seconds() const { return self() - self0_; }

    // "gateway 97% of a CPU (threads 80%, 9%, 8%), ws_bench 35%"
    std::string report() const {
        const double w = wall();
        std::vector<double> used;
        double total = 0;
        for (const auto& [tid, secs] : threads()) {
            const auto before = threads0_.find(tid);
            const double u = secs - (before == threads0_.end() ? 0 : before->second);
            total += u;
            if (u / w >= 0.005) used.push_back(u);
        }
        std::sort(used.rbegin(), used.rend());
        std::string text = "gateway " + pct(total / w) + " of a CPU (threads";
        for (std::size_t i = 0; i < used.size(); ++i) text += (i ? ", " : " ") + pct(used[i] / w);
        if (used.empty()) text += " idle";
        text += "), ws_bench " + pct(self_seconds() / w);
        // Everything else that ran on the two CPUs (/proc/stat user, nice,
        // system): another process on the gateway's CPU makes the numbers
        // worthless.
        const auto cpus1 = cpus();
        double busy = 0, jiffies = 0, steal = 0;
        for (const int cpu : {gateway_cpu, load_cpu}) {
            const auto a = cpus0_.find(cpu);
            const auto b = cpus1.find(cpu);
            if (cpu < 0 || a == cpus0_.end() || b == cpus1.end() || b->second.total <= a->second.total) return text;
            busy += (b->second.threads - a->second.threads) / (b->second.total - a->second.total);
            jiffies += b->second.total - a->second.total;
            steal += b->second.steal - a->second.steal;
        }
        const double other = std::max(0.0, busy - total / w - self_seconds() / w);
        text += "; other processes " + pct(other);
        if (other > 0.1) {
            text += " ⚠";
            interference = true;
        }
        if (jiffies > 0 && steal / jiffies >= 0.02) text += "; steal " + pct(steal / jiffies);
        return text;
    }

    static inline int gateway_cpu = -1;
    static inline int load_cpu = -1;
    static inline bool interference = false;  // set once any measurement shared its CPUs

private:
    static std::string pct(double share) { return std::to_string(static_cast<int>(share * 100 + 0.5)) + "%"; }

    std::map<pid_t, double> threads() const {
        std::map<pid_t, double> out;
        const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
        std::error_code ec;
        for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid_) + "/task", ec)) {
            const std::string stat = read_file(e.path() / "stat");
            const auto close = stat.rfind(')');
            if (close == std::string::npos) continue;
            std::istringstream fields(stat.substr(close + 2));
            std::string f;
            double utime = 0, stime = 0;
            for (int i = 0; fields >> f; ++i) {
                if (i == 11) utime = std::stod(f);
                if (i == 12) {
                    stime = std::stod(f);
                    break;
                }
            }
            out[static_cast<pid_t>(std::stol(e.path().filename().string()))] = (utime + stime) / tick;
        }
        return out;
    }

    static double self() {
        rusage u{};
        ::getrusage(RUSAGE_SELF, &u);
        return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
               static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
    }

    // Per CPU from /proc/stat.
    struct cpu_jiffies {
        double total = 0, threads = 0, steal = 0;
    };
    static std::map<int, cpu_jiffies> cpus() {
        std::map<int, cpu_jiffies> out;
        std::ifstream in("/proc/stat");
        std::string line;
        while (std::getline(in, line)) {
            if (!line.starts_with("cpu") || line.size() < 4 || !std::isdigit(static_cast<unsigned char>(line[3]))) continue;
            std::istringstream f(line.substr(3));
            int cpu = 0;
            f >> cpu;
            // user nice system idle iowait irq softirq steal: "threads" is
            // user + nice + system, so the kernel's loopback packet work
            // (softirq) counts as nobody's.
            double v = 0, total = 0, threads = 0, steal = 0;
            for (int i = 0; i < 8 && f >> v; ++i) {
                total += v;
                if (i <= 2) threads += v;
                if (i == 7) steal = v;
            }
            out[cpu] = {total, threads, steal};
        }
        return out;
    }

    pid_t pid_;
    clock_type::time_point t0_;
    std::map<pid_t, double> threads0_;
    double self0_;
    std::map<int, cpu_jiffies> cpus0_;
};

class gateway_process {
public:
    gateway_process(const options& opt, const fs::path& dir, std::string name, const std::string& durability)
        : opt_(opt), dir_(dir), name_(std::move(name)) {
        fs::create_directories(dir_);
        std::ofstream(dir_ / "routes.toml") << "[default]\nbackend = \"embedded\"\n";
        std::ofstream conf(dir_ / "switchyard.toml");
        conf << "[gateway]\ndata_dir = \"data\"\nroutes_file = \"routes.toml\"\nthreads = " << opt.gateway_threads
             << "\nlog_level = \"info\"\n\n"
                "[listeners.msnp]\nenabled = false\n[listeners.https]\nenabled = false\n"
                "[listeners.admin]\nport = 0\n"
                "[listeners.ws]\nport = 0\nrooms = [\"rtt\", \"fanout\"]\n\n"
                "[limits]\ncommands_per_second = 1000000\nmax_connections_per_address = 1000000\n\n"
                "[[keys]]\nid = \""
             << key_id << "\"\nsecret = \"" << key_secret_base64
             << "\"\n\n[backends.embedded]\nkind = \"embedded\"\ndurability = \"" << durability
             << "\"\nmax_room_members = " << std::max<std::size_t>(1000, opt.members + opt.rtt_members)
             << "\n\n[accounts]\nscrypt_n = 1024\nscrypt_r = 1\nscrypt_p = 1\n";
    }

    ~gateway_process() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
    }

    // N accounts named prefix<i>@bench.example, all with `password`.
    std::vector<std::string> add_users(const std::string& prefix, std::size_t n) {
        const auto started = clock_type::now();
        std::vector<std::string> handles;
        handles.reserve(n);
        for (std::size_t i = 0; i < n; ++i) handles.push_back(prefix + std::to_string(i) + "@bench.example");
        if (n == 0) return handles;
        fs::create_directories(dir_ / "data");
        embedded::database db(embedded::database_file(dir_ / "data", "embedded"), embedded::durability::normal);
        embedded::create_schema(db);
        if (db.failed()) die("schema: " + db.error());
        embedded::accounts accounts(db, embedded::kdf_params{1024, 1, 1});
        if (auto r = accounts.add(handles[0], password, false); !r) die("add " + handles[0] + ": " + r.error().message);
        db.exec("BEGIN IMMEDIATE");
        for (std::size_t i = 1; i < n; ++i) {
            db.prepare("INSERT INTO users (handle, display_name, created_ms) VALUES (?1, ?1, 0)").bind(handles[i]).run();
            db.prepare("INSERT INTO credentials (handle, kdf, salt, hash, md5_salt, md5_hash) "
                       "SELECT ?1, kdf, salt, hash, NULL, NULL FROM credentials WHERE handle = ?2")
                .bind(handles[i], handles[0])
                .run();
        }
        if (db.failed()) die("adding users: " + db.error());
        db.exec("COMMIT");
        if (db.failed()) die("adding users: " + db.error());
        users_seconds_ += seconds_since(started);
        return handles;
    }
    double users_seconds() const { return users_seconds_; }

    void start() {
        log_file_ = dir_ / "gateway.log";
        const int log_fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (log_fd < 0) die("cannot open " + log_file_.string());
        const std::string binary = opt_.gateway.string();
        const std::string conf = (dir_ / "switchyard.toml").string();
        const int cpu = opt_.gateway_cpu;
        pid_ = ::fork();
        if (pid_ < 0) die("fork failed");
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (cpu >= 0) set_cpu(0, cpu);
            rlimit lim{};
            if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
                lim.rlim_cur = lim.rlim_max;
                ::setrlimit(RLIMIT_NOFILE, &lim);
            }
            const int null_fd = ::open("/dev/null", O_RDWR);
            ::dup2(null_fd, 0);
            ::dup2(log_fd, 1);
            ::dup2(log_fd, 2);
            ::execl(binary.c_str(), binary.c_str(), "run", "-c", conf.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(log_fd);
        const auto deadline = clock_type::now() + 30s;
        for (;;) {
            const std::string text = read_file(log_file_);
            std::istringstream lines(text);
            std::string line;
            bool started = false;
            while (std::getline(lines, line)) {
                if (line.find("event=listening") != std::string::npos) {
                    ports_[log_field(line, "listener")] = static_cast<std::uint16_t>(std::stoi(log_field(line, "port")));
                }
                if (line.find("event=descriptors") != std::string::npos) descriptors_ = log_field(line, "limit");
                if (line.find("event=started") != std::string::npos) started = true;
            }
            if (started && ports_.contains("ws")) break;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                die("gateway exited during start-up; its log:\n" + text);
            }
            if (clock_type::now() > deadline) die("gateway did not start within 30 s; its log:\n" + text);
            std::this_thread::sleep_for(10ms);
        }
    }

    // SIGTERM, keep serving the clients (the gateway closes each with 1001),
    // and wait for the exit. Returns a description.
    std::string stop(std::chrono::seconds limit = 30s) {
        if (pid_ <= 0) return "not running";
        const auto t0 = clock_type::now();
        ::kill(pid_, SIGTERM);
        int status = 0;
        std::string result;
        for (;;) {
            if (::waitpid(pid_, &status, WNOHANG) == pid_) break;
            if (clock_type::now() - t0 > limit) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                result = "HUNG: no exit " + std::to_string(limit.count()) + " s after SIGTERM; killed; ";
                break;
            }
            loop.run_once(5);
        }
        pid_ = -1;
        if (WIFEXITED(status)) result += "exit " + std::to_string(WEXITSTATUS(status));
        else if (WIFSIGNALED(status)) result += "CRASHED: signal " + std::to_string(WTERMSIG(status));
        return result + " after " + fixed(seconds_since(t0), 2) + " s";
    }

    pid_t pid() const { return pid_; }
    std::uint16_t ws_port() const { return ports_.at("ws"); }
    const fs::path& log_file() const { return log_file_; }
    const std::string& name() const { return name_; }
    const std::string& descriptors() const { return descriptors_; }

private:
    const options& opt_;
    fs::path dir_;
    std::string name_;
    pid_t pid_ = -1;
    fs::path log_file_;
    std::map<std::string, std::uint16_t> ports_;
    std::string descriptors_;
    double users_seconds_ = 0;
};

// The gateway log's lines by level, close reasons, and the first warnings.
struct log_summary {
    std::map<std::string, std::size_t> levels;
    std::map<std::string, std::size_t> close_reasons;
    std::vector<std::string> notable;
};

log_summary summarize_log(const fs::path& file) {
    log_summary s;
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) {
        const std::string level = log_field(" " + line, "level");
        ++s.levels[level.empty() ? "(unstructured)" : level];
        if (line.find("event=connection_closed") != std::string::npos) ++s.close_reasons[log_field(line, "reason")];
        if (level != "info" && level != "debug" && level != "trace" && s.notable.size() < 12) s.notable.push_back(line);
    }
    return s;
}

// ------------------------------------------------------------------ phases

using client_list = std::vector<std::unique_ptr<client>>;

// A session token for `handle`, as the gateway's own login reply makes it.
class token_minter {
public:
    token_minter() : tokens_({switchyard::gateway::config::hmac_key{key_id, key_secret}}) {}
    std::string operator()(const std::string& handle) const { return tokens_.issue_ticket(handle, now_ms()); }

private:
    switchyard::gateway::token_service tokens_;
};

// Connects and upgrades clients[i].
step_fn connect_step(client_list& clients, std::uint16_t port) {
    return [&clients, port](std::size_t i, step_done done) {
        client& c = *clients[i];
        c.ws.on_open = [done] { done(""); };
        c.on_close = [done](const std::string& reason) { done("closed: " + reason); };
        if (!c.ws.connect(port)) done(std::string("connect: ") + std::strerror(errno));
    };
}

// Logs clients[i] in: the first `by_password` by password, the others with
// a minted token.
step_fn login_step(client_list& clients, const token_minter& mint, std::size_t by_password = 0) {
    return [&clients, &mint, by_password](std::size_t i, step_done done) {
        client& c = *clients[i];
        c.on_close = [done](const std::string& reason) { done("closed: " + reason); };
        json::object o{{"type", "login"}, {"version", 1}, {"client", "ws_bench"}};
        if (i < by_password) {
            o["handle"] = c.handle();
            o["password"] = password;
        } else {
            o["token"] = mint(c.handle());
        }
        c.request(std::move(o), [done, &c](const json::object& r) {
            if (!is_reply(r)) return done("login: " + error_text(r));
            if (r.at("result").at("handle") != c.handle().c_str()) return done("login: another handle");
            done("");
        });
    };
}

step_fn join_step(client_list& clients, std::string name) {
    return [&clients, name](std::size_t i, step_done done) {
        client& c = *clients[i];
        c.on_close = [done](const std::string& reason) { done("closed: " + reason); };
        c.request({{"type", "join"}, {"name", name}}, [done, &c](const json::object& r) {
            if (!is_reply(r)) return done("join: " + error_text(r));
            c.room = std::string(r.at("result").at("room").as_string());
            done("");
        });
    };
}

client_list make_clients(const std::vector<std::string>& handles) {
    client_list out;
    out.reserve(handles.size());
    for (const auto& h : handles) out.push_back(std::make_unique<client>(h));
    return out;
}

// After set-up, a close is a failure of the phase: recorded, not fatal.
void watch_closes(client_list& clients, std::string& failure) {
    for (auto& c : clients) {
        client* raw = c.get();
        c->on_close = [raw, &failure](const std::string& reason) {
            if (failure.empty()) failure = raw->handle() + " closed: " + reason;
        };
    }
}

std::string send_json(std::int64_t id, const std::string& room, std::uint64_t n) {
    return R"({"type":"send","id":)" + std::to_string(id) + R"(,"room":")" + room + R"(","text":")" + chat_text +
           " #" + std::to_string(n) + R"(","client_id":"b)" + std::to_string(n) + R"("})";
}

struct rtt_result {
    std::vector<double> reply_us, event_us;
    batch_result setup;
    std::string cpu;
    std::string failure;
    std::size_t others_received = 0, others_expected = 0;
};

rtt_result run_rtt(const options& opt, const gateway_process& g, const std::vector<std::string>& users,
                   const token_minter& mint, clock_type::time_point deadline) {
    rtt_result res;
    client_list clients = make_clients(users);
    const auto port = g.ws_port();
    auto r = run_batch(clients.size(), clients.size(), connect_step(clients, port), deadline);
    if (r.ok != clients.size()) {
        res.failure = "connect: " + r.error_text();
        return res;
    }
    // The sender by password (the login pool's scrypt check), the others by token.
    r = run_batch(clients.size(), clients.size(), login_step(clients, mint, 1), deadline);
    if (r.ok != clients.size()) {
        res.failure = "login: " + r.error_text();
        return res;
    }
    r = run_batch(clients.size(), 1, join_step(clients, "rtt"), deadline);
    if (r.ok != clients.size()) {
        res.failure = "join: " + r.error_text();
        return res;
    }
    watch_closes(clients, res.failure);
    loop.run_for(200ms);  // the joined events settle

    client& sender = *clients[0];
    const std::string room = sender.room;
    // The others count the measured messages: seq from first_measured on.
    std::size_t others = 0;
    std::uint64_t first_measured = std::numeric_limits<std::uint64_t>::max();
    for (std::size_t i = 1; i < clients.size(); ++i) {
        clients[i]->on_message = [&](std::string_view text) {
            if (seq_of(text) >= first_measured) ++others;
        };
    }
    // One at a time: write, wait for both the reply and the own event.
    std::uint64_t n = 0;
    bool got_reply = false, got_event = false;
    std::uint64_t reply_seq = 0, event_seq = 0;
    clock_type::time_point sent_at, reply_at, event_at;
    sender.on_message = [&](std::string_view text) {
        const std::string tag = R"("client_id":"b)" + std::to_string(n) + '"';
        if (text.find(tag) == std::string_view::npos) return;
        event_at = clock_type::now();
        event_seq = seq_of(text);
        got_event = true;
    };
    const std::size_t total = opt.warmup + opt.rtt;
    const cpu_meter* cpu = nullptr;
    std::optional<cpu_meter> measured_cpu;
    for (n = 0; n < total && res.failure.empty(); ++n) {
        if (n == opt.warmup) {
            progress("round trip: measuring " + std::to_string(opt.rtt) + " sends (gateway pid " +
                     std::to_string(g.pid()) + ")");
            measured_cpu.emplace(g.pid());
            cpu = &*measured_cpu;
            first_measured = reply_seq + 1;
        }
        got_reply = got_event = false;
        const std::int64_t id = sender.next_id();
        sender.expect(id, [&](const json::object& reply) {
            reply_at = clock_type::now();
            if (!is_reply(reply)) {
                res.failure = "send: " + error_text(reply);
                return;
            }
            reply_seq = static_cast<std::uint64_t>(reply.at("result").at("seq").as_int64());
            got_reply = true;
        });
        const std::string text = send_json(id, room, n);
        sent_at = clock_type::now();
        sender.ws.send_text(text);
        if (!loop.run_until([&] { return (got_reply && got_event) || !res.failure.empty(); }, deadline)) {
            res.failure = "no reply or event for message " + std::to_string(n) + " before the deadline";
            break;
        }
        if (!res.failure.empty()) break;
        if (reply_seq != event_seq) {
            res.failure = "reply seq " + std::to_string(reply_seq) + " != event seq " + std::to_string(event_seq);
            break;
        }
        if (n >= opt.warmup) {
            res.reply_us.push_back(micros(reply_at - sent_at));
            res.event_us.push_back(micros(event_at - sent_at));
        }
    }
    if (cpu) res.cpu = cpu->report();
    // The others' copies of the measured messages.
    res.others_expected = (clients.size() - 1) * res.reply_us.size();
    loop.run_until([&] { return others >= res.others_expected; }, std::min(deadline, clock_type::now() + 5s));
    res.others_received = others;
    for (auto& c : clients) c->on_close = nullptr;
    return res;
}

struct fanout_result {
    std::size_t members = 0, messages = 0;
    std::uint64_t delivered = 0, expected = 0;
    double seconds = 0;         // first write to last delivery
    double stored_seconds = 0;  // first write to last reply
    std::size_t out_of_order = 0;
    std::vector<double> complete_us;  // write to delivery at the last member, per message
    batch_result connect, login, join;
    std::string cpu;
    double gateway_cpu_seconds = 0, bench_cpu_seconds = 0;
    std::string failure;
    double rate() const { return seconds > 0 ? static_cast<double>(delivered) / seconds : 0; }
};

fanout_result run_fanout(const options& opt, const gateway_process& g, const std::vector<std::string>& users,
                         const token_minter& mint, clock_type::time_point deadline) {
    fanout_result res;
    client_list clients = make_clients(users);
    res.members = clients.size();
    const auto port = g.ws_port();
    res.connect = run_batch(clients.size(), opt.concurrency, connect_step(clients, port), deadline);
    if (res.connect.ok != clients.size()) {
        res.failure = "connect: " + res.connect.error_text();
        return res;
    }
    res.login = run_batch(clients.size(), opt.concurrency, login_step(clients, mint), deadline);
    if (res.login.ok != clients.size()) {
        res.failure = "login: " + res.login.error_text();
        return res;
    }
    res.join = run_batch(clients.size(), opt.concurrency, join_step(clients, "fanout"), deadline);
    if (res.join.ok != clients.size()) {
        res.failure = "join: " + res.join.error_text();
        return res;
    }
    watch_closes(clients, res.failure);
    loop.run_for(opt.settle);  // the joined events (one per later member, to every member) settle

    client& sender = *clients[0];
    const std::string room = sender.room;
    // Every member counts the messages after `base` and checks their order.
    std::uint64_t base = 0;
    std::vector<std::uint64_t> last(clients.size(), 0);
    std::vector<std::uint32_t> per_message;  // by seq - base - 1: members that have it
    std::vector<clock_type::time_point> written, completed;
    std::uint64_t delivered = 0;
    clock_type::time_point last_delivery;
    bool counting = false;
    for (std::size_t i = 0; i < clients.size(); ++i) {
        clients[i]->on_message = [&, i](std::string_view text) {
            if (!counting) return;
            const std::uint64_t seq = seq_of(text);
            if (seq <= base) return;
            if (seq != last[i] + 1 && last[i] != 0) ++res.out_of_order;
            last[i] = seq;
            ++delivered;
            last_delivery = clock_type::now();
            const std::uint64_t k = seq - base - 1;
            if (k < per_message.size() && ++per_message[k] == clients.size()) completed[k] = last_delivery;
        };
    }

    // Warm-up: a few messages, one at a time, each seen by every member.
    std::uint64_t replies = 0, n = 0;
    const auto send_one = [&] {
        const std::int64_t id = sender.next_id();
        sender.expect(id, [&](const json::object& reply) {
            if (!is_reply(reply)) {
                if (res.failure.empty()) res.failure = "send: " + error_text(reply);
                return;
            }
            base = std::max(base, static_cast<std::uint64_t>(reply.at("result").at("seq").as_int64()));
            ++replies;
        });
        sender.ws.send_text(send_json(id, room, n++));
    };
    for (int w = 0; w < 5 && res.failure.empty(); ++w) {
        const auto want = replies + 1;
        send_one();
        loop.run_until([&] { return replies >= want || !res.failure.empty(); }, deadline);
    }
    loop.run_for(opt.settle / 2);
    if (!res.failure.empty()) return res;

    // Measured: `messages` sends, at most `window` unanswered.
    const std::uint64_t first_base = base;
    res.messages = opt.messages;
    res.expected = static_cast<std::uint64_t>(res.messages) * clients.size();
    per_message.assign(res.messages, 0);
    completed.assign(res.messages, {});
    written.assign(res.messages, {});
    counting = true;
    const std::uint64_t replies0 = replies;
    std::uint64_t sent = 0;
    clock_type::time_point last_reply;
    progress("fan-out: " + std::to_string(clients.size()) + " members joined; measuring " +
             std::to_string(res.messages) + " messages (gateway pid " + std::to_string(g.pid()) + ")");
    const cpu_meter cpu(g.pid());
    const auto t0 = clock_type::now();
    while (res.failure.empty() && clock_type::now() < deadline) {
        const std::uint64_t answered = replies - replies0;
        while (sent < res.messages && sent - answered < opt.window) {
            written[sent] = clock_type::now();
            const std::int64_t id = sender.next_id();
            sender.expect(id, [&](const json::object& reply) {
                if (!is_reply(reply)) {
                    if (res.failure.empty()) res.failure = "send: " + error_text(reply);
                    return;
                }
                ++replies;
                last_reply = clock_type::now();
            });
            sender.ws.send_text(send_json(id, room, n++));
            ++sent;
        }
        if (delivered >= res.expected && replies - replies0 >= res.messages) break;
        loop.run_once(1);
    }
    res.cpu = cpu.report();
    progress("fan-out: done");
    res.gateway_cpu_seconds = cpu.gateway_seconds();
    res.bench_cpu_seconds = cpu.self_seconds();
    base = first_base;
    res.delivered = delivered;
    res.seconds = std::chrono::duration<double>(last_delivery - t0).count();
    res.stored_seconds = std::chrono::duration<double>(last_reply - t0).count();
    for (std::size_t k = 0; k < res.messages; ++k) {
        if (per_message[k] == clients.size()) res.complete_us.push_back(micros(completed[k] - written[k]));
    }
    if (res.failure.empty() && delivered < res.expected) {
        res.failure = "TIMED OUT: " + with_commas(static_cast<double>(delivered)) + " of " +
                      with_commas(static_cast<double>(res.expected)) + " deliveries";
    }
    counting = false;
    for (auto& c : clients) c->on_close = nullptr;
    return res;
}

struct idle_result {
    std::size_t connections = 0;
    batch_result connect, login;
    proc_memory before, upgraded, logged_in, hibernated;
    bool hibernate_measured = false;
    std::size_t open_at_end = 0;
    std::string failure;
    double per(const proc_memory& m) const {
        return connections ? (static_cast<double>(m.rss_kib) - static_cast<double>(before.rss_kib)) * 1024 /
                                 static_cast<double>(connections)
                           : 0;
    }
    double per_private(const proc_memory& m) const {
        return connections ? (static_cast<double>(m.private_kib) - static_cast<double>(before.private_kib)) * 1024 /
                                 static_cast<double>(connections)
                           : 0;
    }
};

idle_result run_idle(const options& opt, const gateway_process& g, const std::vector<std::string>& users,
                     const token_minter& mint, clock_type::time_point deadline, client_list& clients) {
    idle_result res;
    clients = make_clients(users);
    res.connections = clients.size();
    std::this_thread::sleep_for(opt.settle);
    res.before = read_memory(g.pid());
    progress("idle memory: " + std::to_string(clients.size()) + " connections (gateway pid " + std::to_string(g.pid()) + ")");
    res.connect = run_batch(clients.size(), opt.concurrency, connect_step(clients, g.ws_port()), deadline);
    if (res.connect.ok != clients.size()) {
        res.failure = "connect: " + res.connect.summary(clients.size());
        return res;
    }
    loop.run_for(opt.settle);
    res.upgraded = read_memory(g.pid());
    res.login = run_batch(clients.size(), opt.concurrency, login_step(clients, mint), deadline);
    if (res.login.ok != clients.size()) {
        res.failure = "login: " + res.login.summary(clients.size());
        return res;
    }
    watch_closes(clients, res.failure);
    loop.run_for(2 * opt.settle);
    res.logged_in = read_memory(g.pid());
    if (opt.hibernate_wait) {
        loop.run_for(12s);  // past hibernate_after (10 s): idle user objects leave memory
        res.hibernated = read_memory(g.pid());
        res.hibernate_measured = true;
    }
    res.open_at_end = static_cast<std::size_t>(
        std::count_if(clients.begin(), clients.end(), [](const auto& c) { return c->ws.is_open(); }));
    return res;
}

// ------------------------------------------------------------------ report

std::string machine_description() {
    std::string model = "unknown CPU";
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
        if (line.starts_with("model name")) {
            model = line.substr(line.find(':') + 2);
            break;
        }
    }
    utsname u{};
    ::uname(&u);
    std::string mem;
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    std::uint64_t kib = 0;
    if (meminfo >> key >> kib) mem = fixed(static_cast<double>(kib) / 1024 / 1024, 1) + " GiB RAM";
    return model + ", " + std::to_string(std::thread::hardware_concurrency()) + " CPUs, " + mem + ", Linux " + u.release;
}

struct row {
    std::string measure, conditions, measured, target, verdict, durable_object, node_ws, cpu;
};

fs::path default_gateway() {
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const fs::path candidate = self.parent_path().parent_path() / "gateway" / "switchyard";
        if (fs::exists(candidate)) return candidate;
    }
    return "build/gateway/switchyard";
}

void usage() {
    std::fprintf(stderr,
                 "usage: ws_bench [--gateway PATH] [--quick] [--rtt N] [--warmup N] [--rtt-members N]\n"
                 "                [--members N] [--messages N] [--window N] [--idle N] [--concurrency N]\n"
                 "                [--durability full|normal] [--gateway-threads N] [--gateway-cpu N]\n"
                 "                [--load-cpu N] [--no-hibernate-wait] [--no-rtt-normal] [--phase-seconds S] [--keep]\n");
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    opt.gateway = default_gateway();
    // --quick first, so explicit sizes after it still win.
    for (int i = 1; i < argc; ++i) {
        if (std::string_view(argv[i]) == "--quick") {
            opt.quick = true;
            opt.rtt = 200;
            opt.warmup = 20;
            opt.members = 50;
            opt.messages = 50;
            opt.idle = 300;
            opt.hibernate_wait = false;
            opt.phase_seconds = 30;
            opt.settle = 200ms;
        }
    }
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc) die("missing value for " + a);
            return argv[++i];
        };
        if (a == "--quick") continue;
        if (a == "--gateway") opt.gateway = value();
        else if (a == "--rtt") opt.rtt = std::stoul(value());
        else if (a == "--warmup") opt.warmup = std::stoul(value());
        else if (a == "--rtt-members") opt.rtt_members = std::max<std::size_t>(1, std::stoul(value()));
        else if (a == "--members") opt.members = std::max<std::size_t>(1, std::stoul(value()));
        else if (a == "--messages") opt.messages = std::stoul(value());
        else if (a == "--window") opt.window = std::max<std::size_t>(1, std::stoul(value()));
        else if (a == "--idle") opt.idle = std::stoul(value());
        else if (a == "--concurrency") opt.concurrency = std::max<std::size_t>(1, std::stoul(value()));
        else if (a == "--durability") opt.durability = value();
        else if (a == "--gateway-threads") opt.gateway_threads = static_cast<unsigned>(std::stoul(value()));
        else if (a == "--gateway-cpu") opt.gateway_cpu = std::stoi(value());
        else if (a == "--load-cpu") opt.load_cpu = std::stoi(value());
        else if (a == "--no-hibernate-wait") opt.hibernate_wait = false;
        else if (a == "--no-rtt-normal") opt.rtt_normal = false;
        else if (a == "--phase-seconds") opt.phase_seconds = std::stod(value());
        else if (a == "--keep") opt.keep = true;
        else {
            usage();
            return a == "--help" || a == "-h" ? 0 : 2;
        }
    }
    if (opt.durability != "full" && opt.durability != "normal") die("--durability is full or normal");
    if (!fs::exists(opt.gateway)) die("no gateway binary at " + opt.gateway.string() + " (use --gateway PATH)");
    opt.gateway = fs::absolute(opt.gateway);
    std::signal(SIGPIPE, SIG_IGN);

    if (std::thread::hardware_concurrency() < 2) {
        opt.gateway_cpu = -1;
        opt.load_cpu = -1;
    }
    if (opt.load_cpu >= 0) set_cpu(0, opt.load_cpu);
    cpu_meter::gateway_cpu = opt.gateway_cpu;
    cpu_meter::load_cpu = opt.load_cpu;
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    ::getrlimit(RLIMIT_NOFILE, &lim);
    const auto fd_limit = static_cast<std::size_t>(lim.rlim_cur);
    if (fd_limit < opt.idle + 100 || fd_limit < opt.members + 100) {
        std::fprintf(stderr, "ws_bench: RLIMIT_NOFILE hard limit %zu is too low for these sizes; lowering them\n", fd_limit);
        opt.idle = std::min(opt.idle, fd_limit > 200 ? fd_limit - 200 : 0);
        opt.members = std::min(opt.members, fd_limit > 200 ? fd_limit - 200 : 1);
    }

    const auto run_start = clock_type::now();
    char tmpl[] = "/tmp/ws-bench-XXXXXX";
    if (!::mkdtemp(tmpl)) die("mkdtemp failed");
    const fs::path root = tmpl;
    const auto phase_deadline = [&] {
        return clock_type::now() +
               std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(opt.phase_seconds));
    };

    std::printf("# ws_bench: WebSocket JSON clients against a live gateway over 127.0.0.1\n\ncommand: ");
    for (int i = 0; i < argc; ++i) std::printf("%s ", argv[i]);
    std::printf("\nmachine: %s\n", machine_description().c_str());
    std::printf("gateway: %s, [gateway] threads = %u, pinned to CPU %d; ws_bench on CPU %d (one thread, epoll)\n",
                opt.gateway.c_str(), opt.gateway_threads, opt.gateway_cpu, opt.load_cpu);
    std::printf("settings: durability = \"%s\"; [limits] commands_per_second = 1000000, max_connections_per_address = "
                "1000000 (every client is 127.0.0.1); named rooms rtt, fanout; "
                "scrypt N = 1024, r = 1 for the one password login; other settings at their defaults; "
                "RLIMIT_NOFILE here %zu\n",
                opt.durability.c_str(), fd_limit);
    std::printf("data: %s\n", root.c_str());
    std::fflush(stdout);

    const token_minter mint;
    std::vector<row> rows;
    std::vector<std::string> details;
    std::vector<std::pair<std::unique_ptr<gateway_process>, std::string>> gateways;

    // Two rows and a detail line per round-trip run.
    const auto add_rtt_rows = [&](const rtt_result& rtt, const std::string& durability) {
        const double p50 = percentile(rtt.reply_us, 0.5), p99 = percentile(rtt.reply_us, 0.99);
        const double e50 = percentile(rtt.event_us, 0.5), e99 = percentile(rtt.event_us, 0.99);
        const std::string samples = "durability = \"" + durability + "\"; " + std::to_string(rtt.reply_us.size()) +
                                    " sends one at a time after " + std::to_string(opt.warmup) + " warm-up, " +
                                    std::to_string(opt.rtt_members) + " members in the room";
        const bool ok = rtt.failure.empty() && !rtt.reply_us.empty();
        const auto ms = [](double us) { return fixed(us / 1000, 3); };
        rows.push_back({"round trip `send` → `reply` (stored), p50 / p99 / max", samples,
                        ms(p50) + " / " + ms(p99) + " / " + ms(maximum(rtt.reply_us)) + " ms", "p99 ≤ 1 ms",
                        !ok ? "FAILED" : p99 <= 1000 ? "met" : "NOT met", "≈ 0.5 ms median", "—", rtt.cpu});
        rows.push_back({"round trip `send` → own `message` event, p50 / p99 / max", "the same sends",
                        ms(e50) + " / " + ms(e99) + " / " + ms(maximum(rtt.event_us)) + " ms", "p99 ≤ 1 ms",
                        !ok ? "FAILED" : e99 <= 1000 ? "met" : "NOT met", "≈ 0.5 ms median", "—", rtt.cpu});
        details.push_back("round trip, durability = \"" + durability + "\": p90 reply " +
                          fixed(percentile(rtt.reply_us, 0.9), 0) + " µs, p99.9 " +
                          fixed(percentile(rtt.reply_us, 0.999), 0) + " µs; the other " +
                          std::to_string(opt.rtt_members - 1) + " members received " +
                          std::to_string(rtt.others_received) + " of " + std::to_string(rtt.others_expected) +
                          " message events" + (rtt.failure.empty() ? "" : "; FAILURE: " + rtt.failure));
    };

    // ---- 1 + 2: round trip and fan-out, one gateway.
    {
        auto g = std::make_unique<gateway_process>(opt, root / "rooms", "rooms", opt.durability);
        const auto rtt_users = g->add_users("r", opt.rtt_members);
        const auto members = g->add_users("m", opt.members);
        g->start();

        add_rtt_rows(run_rtt(opt, *g, rtt_users, mint, phase_deadline()), opt.durability);

        const fanout_result fan = run_fanout(opt, *g, members, mint, phase_deadline());
        const bool fan_ok = fan.failure.empty();
        const double rate = fan.rate();
        rows.push_back({"deliveries/s, one sender → every member of one room",
                        std::to_string(fan.members) + " members (the sender among them), " +
                            std::to_string(fan.messages) + " messages, window " + std::to_string(opt.window),
                        with_commas(rate), "≥ 500,000", !fan_ok ? "FAILED" : rate >= 500000 ? "met" : "NOT met",
                        "≈ 13,000 (10 members, SQLite)", "≈ 42,000 (10 members, Redis)", fan.cpu});
        const double per_delivery_gw = fan.delivered ? fan.gateway_cpu_seconds * 1e6 / static_cast<double>(fan.delivered) : 0;
        const double per_delivery_bench = fan.delivered ? fan.bench_cpu_seconds * 1e6 / static_cast<double>(fan.delivered) : 0;
        details.push_back("fan-out: " + with_commas(static_cast<double>(fan.delivered)) + " of " +
                          with_commas(static_cast<double>(fan.expected)) + " deliveries in " + fixed(fan.seconds, 3) +
                          " s; all " + std::to_string(fan.messages) + " stored (replied) after " +
                          fixed(fan.stored_seconds, 3) + " s (" +
                          with_commas(fan.stored_seconds > 0 ? static_cast<double>(fan.messages) / fan.stored_seconds : 0) +
                          " messages/s); " + std::to_string(fan.out_of_order) + " out of order");
        details.push_back("fan-out: write → delivered to every member, per message: p50 " +
                          fixed(percentile(fan.complete_us, 0.5) / 1000, 1) + " ms, p99 " +
                          fixed(percentile(fan.complete_us, 0.99) / 1000, 1) + " ms");
        details.push_back("fan-out CPU: gateway " + fixed(per_delivery_gw, 2) + " µs per delivery, ws_bench " +
                          fixed(per_delivery_bench, 2) + " µs per delivery (" + fan.cpu + ")");
        details.push_back("fan-out set-up: upgrade " + fan.connect.summary(fan.members) + "; token login " +
                          fan.login.summary(fan.members) + "; join " + fan.join.summary(fan.members) +
                          (fan_ok ? "" : "; FAILURE: " + fan.failure));
        details.push_back("accounts made in " + fixed(g->users_seconds(), 2) + " s");
        const auto mem = read_memory(g->pid());
        details.push_back("rooms gateway at the end: VmRSS " + std::to_string(mem.rss_kib) + " KiB, VmHWM " +
                          std::to_string(mem.hwm_kib) + " KiB, " + std::to_string(mem.threads) + " threads");
        const std::string stopped = g->stop();
        gateways.emplace_back(std::move(g), stopped);
    }

    // ---- 1b: the round trip again with durability = "normal" (no sync per
    // commit), which separates the disk's share from the gateway's.
    if (opt.durability == "full" && opt.rtt_normal) {
        auto g = std::make_unique<gateway_process>(opt, root / "rtt-normal", "rtt-normal", "normal");
        const auto rtt_users = g->add_users("r", opt.rtt_members);
        g->start();
        add_rtt_rows(run_rtt(opt, *g, rtt_users, mint, phase_deadline()), "normal");
        const std::string stopped = g->stop();
        gateways.emplace_back(std::move(g), stopped);
    }

    // ---- 3: memory per idle connection, a fresh gateway.
    if (opt.idle > 0) {
        auto g = std::make_unique<gateway_process>(opt, root / "idle", "idle", opt.durability);
        const auto users = g->add_users("i", opt.idle);
        g->start();
        client_list clients;
        const idle_result idle = run_idle(opt, *g, users, mint, phase_deadline(), clients);
        const bool ok = idle.failure.empty();
        const auto kib = [](double bytes) { return fixed(bytes / 1024, 2) + " KiB"; };
        rows.push_back({"user-space memory per idle WebSocket, upgraded, not logged in (VmRSS delta)",
                        std::to_string(idle.connections) + " connections", kib(idle.per(idle.upgraded)), "—", "",
                        "", "", "upgrade: " + idle.connect.summary(idle.connections)});
        rows.push_back({"user-space memory per idle WebSocket, logged in (VmRSS delta)",
                        std::to_string(idle.connections) + " connections, distinct users, token logins",
                        kib(idle.per(idle.logged_in)), "≤ 4 KiB",
                        !ok ? "FAILED" : idle.per(idle.logged_in) <= 4096 ? "met" : "NOT met", "≈ 84 KiB", "≈ 11 KiB",
                        "login: " + idle.login.summary(idle.connections)});
        if (idle.hibernate_measured) {
            rows.push_back({"… the same, 12 s later (past hibernate_after = 10s)",
                            std::to_string(idle.open_at_end) + " still open", kib(idle.per(idle.hibernated)), "≤ 4 KiB",
                            !ok ? "FAILED" : idle.per(idle.hibernated) <= 4096 ? "met" : "NOT met", "", "", "idle"});
        }
        const auto line = [&](const char* what, const proc_memory& m) {
            return std::string(what) + " VmRSS " + std::to_string(m.rss_kib) + " KiB, RssAnon " +
                   std::to_string(m.anon_kib) + " KiB, Private " + std::to_string(m.private_kib) + " KiB";
        };
        std::string mem = "idle memory: " + line("before", idle.before) + "; " + line("upgraded", idle.upgraded) + "; " +
                          line("logged in", idle.logged_in);
        if (idle.hibernate_measured) mem += "; " + line("12 s later", idle.hibernated);
        details.push_back(mem);
        details.push_back("idle memory by Private (smaps_rollup) per connection: upgraded " +
                          kib(idle.per_private(idle.upgraded)) + ", logged in " + kib(idle.per_private(idle.logged_in)) +
                          (idle.hibernate_measured ? ", 12 s later " + kib(idle.per_private(idle.hibernated)) : "") +
                          "; gateway VmHWM " + std::to_string(read_memory(g->pid()).hwm_kib) + " KiB, descriptors " +
                          g->descriptors() + (ok ? "" : "; FAILURE: " + idle.failure));
        for (auto& c : clients) c->on_close = nullptr;
        const std::string stopped = g->stop();
        clients.clear();
        gateways.emplace_back(std::move(g), stopped);
    }

    std::printf("\n## results\n\n| measure | conditions | measured | target | | Durable Object on workerd (issue #9) | "
                "Node ws + Redis (issue #9) | CPU during the measurement |\n|---|---|---:|---:|---|---:|---:|---|\n");
    for (const auto& r : rows) {
        std::printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.measure.c_str(), r.conditions.c_str(),
                    r.measured.c_str(), r.target.c_str(), r.verdict.c_str(), r.durable_object.c_str(),
                    r.node_ws.c_str(), r.cpu.c_str());
    }
    std::printf("\n## details\n\n");
    for (const auto& d : details) std::printf("* %s\n", d.c_str());
    std::printf("\n## gateways\n\n| gateway | descriptors | stop (SIGTERM) | log lines by level | connections closed, by reason |\n"
                "|---|---:|---|---|---|\n");
    for (const auto& [g, stopped] : gateways) {
        const log_summary s = summarize_log(g->log_file());
        std::string levels, reasons;
        for (const auto& [level, n] : s.levels) levels += (levels.empty() ? "" : ", ") + level + " " + std::to_string(n);
        for (const auto& [r, n] : s.close_reasons) reasons += (reasons.empty() ? "" : "; ") + r + " ×" + std::to_string(n);
        std::printf("| %s | %s | %s | %s | %s |\n", g->name().c_str(), g->descriptors().c_str(), stopped.c_str(),
                    levels.c_str(), reasons.empty() ? "—" : reasons.c_str());
    }
    for (const auto& [g, stopped] : gateways) {
        const log_summary s = summarize_log(g->log_file());
        if (s.notable.empty()) continue;
        std::printf("\n%s gateway, warnings and errors (first %zu):\n\n```\n", g->name().c_str(), s.notable.size());
        for (const auto& l : s.notable) std::printf("%s\n", l.c_str());
        std::printf("```\n");
    }
    if (cpu_meter::interference) {
        std::printf("\n⚠ other processes used more than 10%% of the benchmark's CPUs during some measurements "
                    "(\"other processes\" above): those numbers understate the gateway.\n");
    }
    // A target missed is a result; a phase that could not run is a failure.
    const bool failed = std::any_of(rows.begin(), rows.end(), [](const row& r) { return r.verdict == "FAILED"; });
    if (failed) std::printf("\nFAILED: a phase did not complete (see details)\n");
    std::printf("\nwhole run: %.1f s\n", seconds_since(run_start));
    gateways.clear();
    if (!opt.keep) {
        std::error_code ec;
        fs::remove_all(root, ec);
    } else {
        std::printf("kept: %s\n", root.c_str());
    }
    return failed ? 1 : 0;
}
