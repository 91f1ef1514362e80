// Load generator: real MSNP clients over 127.0.0.1 against a gateway it
// starts itself. Prints markdown tables; it is not a test.
//
//   msnp_load [--gateway PATH] [--logins N] [--concurrency N] [--costly-logins N]
//             [--costly-concurrency N] [--serial N] [--pipelined N] [--rounds N] [--window N]
//             [--sessions N] [--session-concurrency N] [--durability full|normal]
//             [--commands-per-second N] [--tls old|current] [--gateway-cpu N] [--load-cpu N]
//             [--no-hibernate-wait] [--phase-seconds S] [--perf DIR] [--keep]
//
// The gateway is build/gateway/switchyard next to this binary's directory
// unless --gateway says otherwise. --perf DIR records `perf record -g` of the
// gateway's CPU per phase into DIR/<phase>.data. --keep keeps the temporary
// directory (settings, gateway logs, databases). MSNP_LOAD_DEBUG=1 prints the
// switchboard set-up exchange.
//
// Three gateways run one after another (`switchyard run`), each in a fresh
// temporary directory: "cheap" (scrypt N = 1024, r = 1, the least the
// gateway accepts: logins, then the switchboard), "default-cost" ([accounts]
// left out, so the gateway's default cost: logins) and "sessions" (cheap:
// memory). Each has ports 0 (read back from the
// `event=listening` log lines), the HTTPS listener on with tls = "legacy"
// and certificates made by fixtures/certs/make-certs.sh, [gateway]
// threads = 1. Its threads are pinned to one CPU (sched_setaffinity in the
// child before exec), this process to the other. The gateway raises its own
// RLIMIT_NOFILE soft limit to the hard limit (server.cpp, logged as
// event=descriptors); the child sets it too before exec, and this process
// raises its own. Every wait has a deadline (--phase-seconds per phase).
//
// Accounts: one account is made with the embedded backend's accounts API
// (scrypt at the phase's cost, so the stored hash carries that cost); the
// other N-1 get a copy of its credentials row by SQL, in one transaction.
// All accounts share one password; each keeps its own row, so every login
// still runs the full scrypt check. (`switchyard user add` in a loop costs a
// process, a hash and a synchronous commit per user: about 13 ms each here,
// two minutes for 10,000.)
//
// 1. logins/s: per login, an NS connection (VER, CVR, USR TWN I), then a new
//    TLS connection to /login2.srf with the Passport1.4 Authorization
//    header and the parameters from USR TWN S (TLS 1.0, AES128-SHA like MSN
//    Messenger 7.x on SChannel), the ticket from from-PP='...', then USR TWN
//    S until USR OK, SBS and the profile MSG. Distinct users (a second login
//    signs the first out). With cheap hashing every user logs in twice:
//    first contact, a full TLS handshake, then as a returning client that
//    resumes the TLS session of its first login by session id, as SChannel
//    does for repeat connections to one server. At the default cost, first
//    contact only.
// 2. switchboard: alice and bob log in (SYN, CHG NLN); alice XFR SB, USR,
//    CAL bob; bob gets RNG and ANSwers; then MSG A one at a time (wait for
//    ACK) and pipelined (a window of MSG A in flight); bob must receive every
//    message, in order.
// 3. ACK round trip percentiles from the one-at-a-time run.
// 4. memory per idle session: tickets minted over keep-alive HTTPS
//    connections to /login2.srf, then VmRSS, then N distinct users log in
//    over NS (SYN, CHG NLN) and stay connected, then VmRSS again.
//
// [limits] commands_per_second (a per-connection abuse limit counted in
// lines, default 50) is raised for the benchmark, or the token bucket and
// not the gateway would be measured; --commands-per-second sets it.
#include "gateway/backends/embedded/accounts.hpp"
#include "gateway/backends/embedded/backend.hpp"
#include "gateway/backends/embedded/object.hpp"
#include "gateway/backends/embedded/sqlite.hpp"
#include "gateway/config/config.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

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
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
namespace embedded = switchyard::gateway::embedded;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// ------------------------------------------------------------------ options

struct options {
    fs::path gateway;
    fs::path certs_script = fs::path(SWITCHYARD_SOURCE_DIR) / "fixtures" / "certs" / "make-certs.sh";
    std::size_t logins = 3000;
    std::size_t costly_logins = 8;
    std::size_t concurrency = 32;
    std::size_t costly_concurrency = 4;
    std::size_t serial = 5000;
    std::size_t pipelined = 300000;
    std::size_t rounds = 3;
    std::size_t window = 1000;
    std::size_t sessions = 10000;
    std::size_t session_concurrency = 200;
    std::string durability = "full";
    std::uint64_t commands_per_second = 1000000;
    std::string tls = "old";
    int gateway_cpu = 0;
    int load_cpu = 1;
    bool hibernate_wait = true;
    fs::path perf_dir;
    bool keep = false;
    double phase_seconds = 45;  // every phase's deadline
};

const std::string password = "load-test-password";

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "msnp_load: %s\n", what.c_str());
    std::exit(1);
}

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

std::string with_commas(double value) {
    const auto n = static_cast<long long>(value + 0.5);
    std::string digits = std::to_string(n);
    std::string out;
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

std::string url_encode(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(ch);
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

void set_cpu(pid_t pid, int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (::sched_setaffinity(pid, sizeof set, &set) != 0) {
        std::fprintf(stderr, "msnp_load: sched_setaffinity(CPU %d): %s\n", cpu, std::strerror(errno));
    }
}

// ------------------------------------------------------------------ event loop

struct pollable {
    virtual ~pollable() = default;
    virtual void on_events(std::uint32_t events) = 0;
};

// One epoll set, level-triggered. Objects retired during a batch of events
// are deleted after it, so a later event of the same batch never reaches
// freed memory.
class event_loop {
public:
    event_loop() : ep_(::epoll_create1(EPOLL_CLOEXEC)) {
        if (ep_ < 0) die(std::string("epoll_create1: ") + std::strerror(errno));
    }
    void add(int fd, pollable* p, std::uint32_t events) { ctl(EPOLL_CTL_ADD, fd, p, events); }
    void modify(int fd, pollable* p, std::uint32_t events) { ctl(EPOLL_CTL_MOD, fd, p, events); }
    void remove(int fd) { ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr); }
    void retire(std::unique_ptr<pollable> p) { retired_.push_back(std::move(p)); }

    void run_once(int timeout_ms) {
        std::array<epoll_event, 512> events;
        const int n = ::epoll_wait(ep_, events.data(), static_cast<int>(events.size()), timeout_ms);
        for (int i = 0; i < n; ++i) {
            static_cast<pollable*>(events[static_cast<std::size_t>(i)].data.ptr)
                ->on_events(events[static_cast<std::size_t>(i)].events);
        }
        retired_.clear();
    }

    // Runs until `done()` or the deadline; false at the deadline.
    template <class F> bool run_until(F&& done, clock_type::time_point deadline) {
        while (!done()) {
            if (clock_type::now() >= deadline) return false;
            run_once(5);
        }
        return true;
    }

private:
    void ctl(int op, int fd, pollable* p, std::uint32_t events) {
        epoll_event e{};
        e.events = events;
        e.data.ptr = p;
        if (::epoll_ctl(ep_, op, fd, &e) != 0) die(std::string("epoll_ctl: ") + std::strerror(errno));
    }
    int ep_;
    std::vector<std::unique_ptr<pollable>> retired_;
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

// ------------------------------------------------------------------ MSNP connection

// One received command line, tokens pointing into the connection's buffer:
// valid only during the callback.
struct msnp_line {
    std::string_view raw;
    std::array<std::string_view, 24> tok{};
    std::size_t n = 0;
    std::string_view payload;

    std::string_view at(std::size_t i) const { return i < n ? tok[i] : std::string_view{}; }
    std::string_view name() const { return at(0); }
    bool is_error() const {
        const auto c = name();
        return c.size() == 3 && std::isdigit(static_cast<unsigned char>(c[0])) &&
               std::isdigit(static_cast<unsigned char>(c[1])) && std::isdigit(static_cast<unsigned char>(c[2]));
    }
};

msnp_line tokenize(std::string_view raw) {
    msnp_line l;
    l.raw = raw;
    std::size_t start = 0;
    while (start < raw.size() && l.n < l.tok.size()) {
        auto sp = raw.find(' ', start);
        if (sp == std::string_view::npos) sp = raw.size();
        if (sp > start) l.tok[l.n++] = raw.substr(start, sp - start);
        start = sp + 1;
    }
    return l;
}

// Server commands followed by a payload whose length is the last parameter.
bool payload_command(std::string_view name) {
    return name == "MSG" || name == "UBX" || name == "GCF" || name == "NOT" || name == "IPG" || name == "UBN";
}

class msnp_conn final : public pollable {
public:
    std::function<void(const msnp_line&)> on_line;
    std::function<void(const std::string& reason)> on_close;  // the server closed, or an error

    ~msnp_conn() override { close(); }

    bool connect(std::uint16_t port) {
        fd_ = tcp_connect(port);
        if (fd_ < 0) return false;
        loop.add(fd_, this, EPOLLIN | EPOLLOUT);
        want_out_ = true;
        return true;
    }

    void send(std::string_view bytes) {
        if (fd_ < 0) return;
        out_.append(bytes);
        if (connected_) flush();
    }

    std::size_t backlog() const { return out_.size() - out_pos_; }
    bool is_open() const { return fd_ >= 0; }

    void close() {
        if (fd_ < 0) return;
        loop.remove(fd_);
        ::close(fd_);
        fd_ = -1;
    }

    void on_events(std::uint32_t events) override {
        if (fd_ < 0) return;
        if (!connected_ && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) return fail(std::string("connect: ") + std::strerror(err));
            connected_ = true;
        }
        if (connected_ && (events & EPOLLOUT)) flush();
        if (fd_ >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) read_all();
    }

private:
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
        static std::array<char, 65536> buffer;
        for (;;) {
            const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
            if (n > 0) {
                in_.append(buffer.data(), static_cast<std::size_t>(n));
                parse();
                if (fd_ < 0) return;
                if (static_cast<std::size_t>(n) < buffer.size()) return;
                continue;
            }
            if (n == 0) return fail("closed by the server");
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == EINTR) continue;
            return fail(std::string("recv: ") + std::strerror(errno));
        }
    }

    void parse() {
        for (;;) {
            const std::string_view rest = std::string_view(in_).substr(in_pos_);
            const auto eol = rest.find("\r\n");
            if (eol == std::string_view::npos) break;
            msnp_line l = tokenize(rest.substr(0, eol));
            std::size_t used = eol + 2;
            if (payload_command(l.name()) && l.n >= 2) {
                std::size_t length = 0;
                const auto last = l.tok[l.n - 1];
                const auto [p, ec] = std::from_chars(last.data(), last.data() + last.size(), length);
                if (ec != std::errc() || p != last.data() + last.size()) {
                    return fail("payload command without a length: " + std::string(l.raw));
                }
                if (rest.size() < used + length) break;  // wait for the whole payload
                l.payload = rest.substr(used, length);
                used += length;
            }
            in_pos_ += used;
            if (on_line) on_line(l);
            if (fd_ < 0) return;
        }
        if (in_pos_ == in_.size()) {
            in_.clear();
            in_pos_ = 0;
        } else if (in_pos_ > 65536) {
            in_.erase(0, in_pos_);
            in_pos_ = 0;
        }
    }

    void fail(const std::string& reason) {
        close();
        if (on_close) on_close(reason);
    }

    int fd_ = -1;
    bool connected_ = false;
    bool want_out_ = false;
    std::string in_;
    std::size_t in_pos_ = 0;
    std::string out_;
    std::size_t out_pos_ = 0;
};

// ------------------------------------------------------------------ HTTPS connection

std::string openssl_errors() {
    std::string out;
    while (const unsigned long e = ERR_get_error()) {
        char text[256];
        ERR_error_string_n(e, text, sizeof text);
        if (!out.empty()) out += "; ";
        out += text;
    }
    return out.empty() ? "no OpenSSL error" : out;
}

struct http_response {
    int status = 0;
    std::string head;
    std::string body;
};

std::string between(std::string_view s, std::string_view before, std::string_view after) {
    const auto start = s.find(before);
    if (start == std::string_view::npos) return {};
    const auto end = s.find(after, start + before.size());
    if (end == std::string_view::npos) return {};
    return std::string(s.substr(start + before.size(), end - start - before.size()));
}

struct tls_session_free {
    void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};
using tls_session = std::unique_ptr<SSL_SESSION, tls_session_free>;

// A non-blocking HTTP/1.1 client over TLS: connect, handshake (resuming
// `resume` when given), then one request at a time (keep-alive); responses
// are framed by Content-Length.
class https_conn final : public pollable {
public:
    std::function<void(http_response&)> on_response;
    std::function<void(const std::string& reason)> on_error;

    ~https_conn() override { close(); }

    bool start(std::uint16_t port, SSL_CTX* ctx, SSL_SESSION* resume = nullptr) {
        fd_ = tcp_connect(port);
        if (fd_ < 0) return false;
        ssl_ = SSL_new(ctx);
        SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), "127.0.0.1");
        if (resume) SSL_set_session(ssl_, resume);
        SSL_set_fd(ssl_, fd_);
        loop.add(fd_, this, EPOLLIN | EPOLLOUT);
        interest_ = EPOLLIN | EPOLLOUT;
        return true;
    }

    void request(std::string bytes) {
        out_ += bytes;
        if (state_ == state::ready) drive();
    }

    // The session to offer on the next connection to this server; null
    // before the handshake has finished.
    tls_session session() const {
        return tls_session(ssl_ && state_ == state::ready ? SSL_get1_session(ssl_) : nullptr);
    }
    // Whether the handshake resumed the offered session.
    bool resumed() const { return ssl_ && SSL_session_reused(ssl_) == 1; }

    void close() {
        if (fd_ < 0) return;
        if (ssl_) {
            if (state_ == state::ready) SSL_shutdown(ssl_);  // close_notify, as a polite client sends
            SSL_free(ssl_);
            ssl_ = nullptr;
        }
        loop.remove(fd_);
        ::close(fd_);
        fd_ = -1;
    }

    void on_events(std::uint32_t events) override {
        if (fd_ < 0) return;
        if (state_ == state::connecting) {
            if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) return fail(std::string("connect: ") + std::strerror(err));
            state_ = state::handshaking;
        }
        drive();
    }

private:
    enum class state { connecting, handshaking, ready };

    void drive() {
        std::uint32_t want = EPOLLIN;
        if (state_ == state::handshaking) {
            ERR_clear_error();
            const int r = SSL_connect(ssl_);
            if (r != 1) {
                const int e = SSL_get_error(ssl_, r);
                if (e == SSL_ERROR_WANT_READ) return interest(EPOLLIN);
                if (e == SSL_ERROR_WANT_WRITE) return interest(EPOLLIN | EPOLLOUT);
                return fail("TLS handshake: " + openssl_errors());
            }
            state_ = state::ready;
        }
        while (out_pos_ < out_.size()) {
            ERR_clear_error();
            const int r = SSL_write(ssl_, out_.data() + out_pos_, static_cast<int>(out_.size() - out_pos_));
            if (r <= 0) {
                const int e = SSL_get_error(ssl_, r);
                if (e == SSL_ERROR_WANT_WRITE) {
                    want |= EPOLLOUT;
                    break;
                }
                if (e == SSL_ERROR_WANT_READ) break;
                return fail("TLS write: " + openssl_errors());
            }
            out_pos_ += static_cast<std::size_t>(r);
        }
        if (out_pos_ == out_.size()) {
            out_.clear();
            out_pos_ = 0;
        }
        for (;;) {
            std::array<char, 16384> buffer;
            ERR_clear_error();
            const int r = SSL_read(ssl_, buffer.data(), static_cast<int>(buffer.size()));
            if (r > 0) {
                in_.append(buffer.data(), static_cast<std::size_t>(r));
                continue;
            }
            const int e = SSL_get_error(ssl_, r);
            if (e == SSL_ERROR_WANT_READ) break;
            if (e == SSL_ERROR_WANT_WRITE) {
                want |= EPOLLOUT;
                break;
            }
            parse();
            if (fd_ < 0) return;
            return fail(e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ? "closed by the server"
                                                                             : "TLS read: " + openssl_errors());
        }
        parse();
        if (fd_ >= 0) interest(want);
    }

    void parse() {
        for (;;) {
            const auto head_end = in_.find("\r\n\r\n");
            if (head_end == std::string::npos) return;
            http_response r;
            r.head = in_.substr(0, head_end + 2);
            if (r.head.size() < 12) return fail("malformed response: " + r.head);
            r.status = std::atoi(r.head.c_str() + 9);
            std::string lower = r.head;
            for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            const std::string length = between(lower, "\r\ncontent-length: ", "\r\n");
            const std::size_t size = length.empty() ? 0 : std::stoul(length);
            if (in_.size() < head_end + 4 + size) return;
            r.body = in_.substr(head_end + 4, size);
            in_.erase(0, head_end + 4 + size);
            if (on_response) on_response(r);
            if (fd_ < 0) return;
        }
    }

    void interest(std::uint32_t want) {
        if (fd_ < 0 || want == interest_) return;
        interest_ = want;
        loop.modify(fd_, this, want);
    }

    void fail(const std::string& reason) {
        close();
        if (on_error) on_error(reason);
    }

    int fd_ = -1;
    SSL* ssl_ = nullptr;
    state state_ = state::connecting;
    std::uint32_t interest_ = 0;
    std::string out_;
    std::size_t out_pos_ = 0;
    std::string in_;
};

// As MSN Messenger 5-7 sends it (msnp-reference §3.3 item 2), with the
// parameters the NS gave in USR TWN S appended.
std::string login2_request(std::uint16_t port, std::string_view handle, std::string_view params) {
    return "GET /login2.srf HTTP/1.1\r\n"
           "Authorization: Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in=" +
           url_encode(handle) + ",pwd=" + url_encode(password) + "," + std::string(params) +
           "\r\nUser-Agent: MSMSGS\r\nHost: 127.0.0.1:" + std::to_string(port) +
           "\r\nConnection: Keep-Alive\r\nCache-Control: no-cache\r\n\r\n";
}

// The ticket inside from-PP='...', or "" with the reason in `error`.
std::string ticket_of(const http_response& r, std::string& error) {
    if (r.status != 200) {
        error = "login2.srf answered " + std::to_string(r.status);
        return {};
    }
    const std::string info = between(r.head, "\r\nAuthentication-Info: ", "\r\n");
    std::string ticket = between(info, "from-PP='", "'");
    if (ticket.empty()) error = "login2.srf 200 without from-PP: " + info;
    return ticket;
}

// ------------------------------------------------------------------ gateway process

// The scrypt cost of a gateway's accounts: written to its [accounts], or
// left out so the gateway's own defaults apply, and used for the stored hash.
struct password_cost {
    std::uint64_t n = 1024;
    std::uint32_t r = 1;
    std::uint32_t p = 1;
    bool gateway_default = false;

    std::string text() const {
        return "scrypt N = " + std::to_string(n) + ", r = " + std::to_string(r) + ", p = " + std::to_string(p) +
               (gateway_default ? " (gateway default)" : "");
    }
};

// The cheapest cost [accounts] accepts (scrypt_n ≥ 1024, scrypt_r ≥ 1).
const password_cost cheap_cost{1024, 1, 1, false};

password_cost default_cost() {
    const switchyard::gateway::config::accounts_settings a;
    return {a.scrypt_n, a.scrypt_r, a.scrypt_p, true};
}

struct gateway_settings {
    password_cost cost = cheap_cost;
    std::string durability = "full";
    std::uint64_t commands_per_second = 1000000;
};

struct proc_memory {
    std::uint64_t rss_kib = 0, anon_kib = 0, hwm_kib = 0, threads = 0;
};

proc_memory read_memory(pid_t pid) {
    proc_memory m;
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string key;
    std::uint64_t value = 0;
    std::string rest;
    while (in >> key) {
        if (key == "VmRSS:" && in >> value) m.rss_kib = value;
        else if (key == "RssAnon:" && in >> value) m.anon_kib = value;
        else if (key == "VmHWM:" && in >> value) m.hwm_kib = value;
        else if (key == "Threads:" && in >> value) m.threads = value;
        std::getline(in, rest);
    }
    return m;
}

std::string log_field(std::string_view line, std::string_view key) {
    const std::string k = " " + std::string(key) + "=";
    const auto at = line.find(k);
    if (at == std::string_view::npos) return {};
    const auto start = at + k.size();
    const auto end = line.find(' ', start);
    return std::string(line.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

// CPU time of the gateway's threads and of this process over a phase: shows
// whether the gateway's core was saturated or waiting (fsync, a lock).
class cpu_meter {
public:
    explicit cpu_meter(pid_t gateway)
        : pid_(gateway), t0_(clock_type::now()), threads0_(threads()), self0_(self()), cpus0_(cpus()) {}

    // "gateway 97% of a CPU (main thread 80%, others 9% 8%), load 35%"
    std::string report() const {
        const double wall = seconds_since(t0_);
        const auto now = threads();
        double total = 0;
        double main_thread = 0;
        std::vector<double> others;
        for (const auto& [tid, secs] : now) {
            const auto before = threads0_.find(tid);
            const double used = secs - (before == threads0_.end() ? 0 : before->second);
            total += used;
            if (tid == pid_) main_thread = used;
            else if (used / wall >= 0.005) others.push_back(used);
        }
        std::sort(others.rbegin(), others.rend());
        std::string text = "gateway " + pct(total / wall) + " (main " + pct(main_thread / wall);
        for (const double o : others) text += ", " + pct(o / wall);
        const double load = (self() - self0_) / wall;
        text += "), load " + pct(load);
        // Everything else that ran on the two CPUs: another process competing
        // for the gateway's CPU makes the numbers worthless.
        const auto cpus1 = cpus();
        const auto busy = [&](int cpu) -> std::optional<double> {
            const auto a = cpus0_.find(cpu);
            const auto b = cpus1.find(cpu);
            if (cpu < 0 || a == cpus0_.end() || b == cpus1.end() || b->second.total <= a->second.total) {
                return std::nullopt;
            }
            return (b->second.threads - a->second.threads) / (b->second.total - a->second.total);
        };
        double steal = 0, jiffies = 0;
        for (const auto& [cpu, b] : cpus1) {
            if (const auto a = cpus0_.find(cpu); a != cpus0_.end()) {
                steal += b.steal - a->second.steal;
                jiffies += b.total - a->second.total;
            }
        }
        const auto gw = busy(gateway_cpu), ld = busy(load_cpu);
        if (gw && ld) {
            const double other = std::max(0.0, *gw - total / wall) + std::max(0.0, *ld - load);
            text += "; other processes " + pct(other);
            if (other > 0.1) {
                text += " ⚠";
                interference = true;
            }
        }
        // Time the hypervisor gave to other guests.
        if (jiffies > 0 && steal / jiffies >= 0.02) text += "; steal " + pct(steal / jiffies);
        return text;
    }

    // CPU time the gateway's threads used, in seconds: unlike a rate, it
    // holds up when other processes share the gateway's CPU.
    double gateway_seconds() const {
        double total = 0;
        for (const auto& [tid, secs] : threads()) {
            const auto before = threads0_.find(tid);
            total += secs - (before == threads0_.end() ? 0 : before->second);
        }
        return total;
    }

    static inline int gateway_cpu = -1;
    static inline int load_cpu = -1;
    static inline bool interference = false;  // set once any phase shared its CPUs

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
            // user nice system idle iowait irq softirq steal: "busy" is the
            // time threads ran (user, nice, system), so the kernel's own
            // loopback packet work (softirq) counts as nobody's.
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

// Runs a command to completion with a deadline; its output goes to `log`.
bool run_command(const std::vector<std::string>& argv, const fs::path& log, std::chrono::seconds limit) {
    const pid_t pid = ::fork();
    if (pid < 0) die("fork failed");
    if (pid == 0) {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    const auto deadline = clock_type::now() + limit;
    for (;;) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (clock_type::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return false;
        }
        std::this_thread::sleep_for(10ms);
    }
}

class gateway_process {
public:
    gateway_process(const options& opt, const fs::path& dir, const fs::path& certs, const gateway_settings& gs,
                    std::string name)
        : opt_(opt), dir_(dir), name_(std::move(name)) {
        fs::create_directories(dir_);
        std::ofstream(dir_ / "routes.toml") << "[default]\nbackend = \"embedded\"\n";
        std::ofstream conf(dir_ / "switchyard.toml");
        conf << "[gateway]\ndata_dir = \"data\"\nroutes_file = \"routes.toml\"\nthreads = 1\nlog_level = \"info\"\n\n"
                "[listeners.msnp]\nport = 0\n[listeners.ws]\nport = 0\n[listeners.admin]\nport = 0\n"
                "[listeners.https]\nenabled = true\nport = 0\ntls = \"legacy\"\n\n"
                "[tls.legacy]\ncertificate = \""
             << (certs / "legacy.pem").string() << "\"\nprivate_key = \"" << (certs / "legacy.key").string()
             << "\"\n\n[limits]\ncommands_per_second = " << gs.commands_per_second
             << "\nmax_connections_per_address = 1000000"
             << "\n\n[[keys]]\nid = \"load1\"\nsecret = \"bG9hZC10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Ng==\"\n\n"
                "[backends.embedded]\nkind = \"embedded\"\ndurability = \""
             << gs.durability << "\"\n";
        if (!gs.cost.gateway_default) {
            conf << "\n[accounts]\nscrypt_n = " << gs.cost.n << "\nscrypt_r = " << gs.cost.r
                 << "\nscrypt_p = " << gs.cost.p << "\n";
        }
        cost_ = gs.cost;
    }

    ~gateway_process() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
    }

    // N accounts named prefix<i>@load.example, all with `password`.
    std::vector<std::string> add_users(const std::string& prefix, std::size_t n) {
        const auto started = clock_type::now();
        std::vector<std::string> handles;
        handles.reserve(n);
        for (std::size_t i = 0; i < n; ++i) handles.push_back(prefix + std::to_string(i) + "@load.example");
        if (n == 0) return handles;
        fs::create_directories(dir_ / "data");
        embedded::database db(embedded::database_file(dir_ / "data", "embedded"), embedded::durability::normal);
        embedded::create_schema(db);
        if (db.failed()) die("schema: " + db.error());
        embedded::accounts accounts(db, embedded::kdf_params{cost_.n, cost_.r, cost_.p});
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
        users_seconds_ = seconds_since(started);
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
            // The gateway raises its own soft RLIMIT_NOFILE to the hard
            // limit (server.cpp raise_descriptor_limit); doing it here too
            // keeps the benchmark right should that ever change.
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
        started_ = clock_type::now();
        const auto deadline = started_ + 30s;
        for (;;) {
            const std::string text = read_file(log_file_);
            std::istringstream lines(text);
            std::string line;
            bool started = false;
            while (std::getline(lines, line)) {
                if (line.find("event=listening") != std::string::npos) {
                    ports_[log_field(line, "listener")] = static_cast<std::uint16_t>(std::stoi(log_field(line, "port")));
                }
                if (line.find("event=started") != std::string::npos) started = true;
            }
            if (started && ports_.contains("msnp") && ports_.contains("https")) break;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                die("gateway exited during start-up; its log:\n" + text);
            }
            if (clock_type::now() > deadline) die("gateway did not start within 30 s; its log:\n" + text);
            std::this_thread::sleep_for(10ms);
        }
    }

    // SIGTERM, keep serving the event loop (the gateway writes OUT SSD to
    // every client), and wait for the exit. Returns a description.
    std::string stop(std::chrono::seconds limit = 20s) {
        if (pid_ <= 0) return "not running";
        const auto t0 = clock_type::now();
        ::kill(pid_, SIGTERM);
        int status = 0;
        std::string result;
        for (;;) {
            const pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_) break;
            if (clock_type::now() - t0 > limit) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                result = "HUNG: no exit " + std::to_string(limit.count()) + " s after SIGTERM; killed; ";
                break;
            }
            loop.run_once(5);
        }
        pid_ = -1;
        if (WIFEXITED(status)) {
            result += "exit " + std::to_string(WEXITSTATUS(status));
        } else if (WIFSIGNALED(status)) {
            result += "CRASHED: signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
        }
        result += " after " + fixed(seconds_since(t0), 2) + " s";
        return result;
    }

    bool alive() const {
        if (pid_ <= 0) return false;
        int status = 0;
        return ::waitpid(pid_, &status, WNOHANG) == 0;
    }

    pid_t pid() const { return pid_; }
    std::uint16_t port(const std::string& listener) const { return ports_.at(listener); }
    const fs::path& log_file() const { return log_file_; }
    const std::string& name() const { return name_; }

private:
    const options& opt_;
    fs::path dir_;
    std::string name_;
    password_cost cost_;
    pid_t pid_ = -1;
    fs::path log_file_;
    std::map<std::string, std::uint16_t> ports_;
    clock_type::time_point started_;
    double users_seconds_ = 0;
};

// Counts of the gateway log's warnings, errors and close reasons.
struct log_summary {
    std::map<std::string, std::size_t> levels;
    std::map<std::string, std::size_t> close_reasons;
    std::vector<std::string> notable;  // warn and error lines, the first few
    std::string descriptors;           // the gateway's RLIMIT_NOFILE, as it logged it
};

log_summary summarize_log(const fs::path& file) {
    log_summary s;
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) {
        const std::string level = log_field(" " + line, "level");
        ++s.levels[level.empty() ? "(unstructured)" : level];
        if (line.find("event=descriptors") != std::string::npos) s.descriptors = log_field(line, "limit");
        if (line.find("event=connection_closed") != std::string::npos) {
            const auto at = line.find(" reason=");
            ++s.close_reasons[at == std::string::npos ? "?" : line.substr(at + 8)];
        }
        if ((level != "info" && level != "debug" && level != "trace") && s.notable.size() < 12) s.notable.push_back(line);
    }
    return s;
}

// perf record on the gateway for one phase, when --perf DIR is given.
class perf_recording {
public:
    perf_recording(const options& opt, pid_t gateway, const std::string& phase) {
        if (opt.perf_dir.empty()) return;
        fs::create_directories(opt.perf_dir);
        file_ = opt.perf_dir / (phase + ".data");
        pid_ = ::fork();
        if (pid_ == 0) {
            const int null_fd = ::open("/dev/null", O_RDWR);
            ::dup2(null_fd, 1);
            ::dup2(null_fd, 2);
            // The whole gateway CPU when it is pinned: `-p` misses threads
            // the gateway starts later (the password checkers).
            const std::string target = opt.gateway_cpu >= 0 ? std::to_string(opt.gateway_cpu) : std::to_string(gateway);
            ::execlp("perf", "perf", "record", "-F", "2000", "-g", opt.gateway_cpu >= 0 ? "-C" : "-p", target.c_str(),
                     "-o", file_.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        std::this_thread::sleep_for(300ms);  // let perf attach
    }
    ~perf_recording() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGINT);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }

private:
    pid_t pid_ = -1;
    fs::path file_;
};

// ------------------------------------------------------------------ TLS client context

SSL_CTX* make_client_context(const options& opt, const fs::path& trusted) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) die("SSL_CTX_new: " + openssl_errors());
    if (opt.tls == "old") {
        // MSN Messenger 5-7.5 on SChannel: TLS 1.0, RSA key exchange.
        SSL_CTX_set_security_level(ctx, 0);
        SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
        SSL_CTX_set_max_proto_version(ctx, TLS1_VERSION);
        if (SSL_CTX_set_cipher_list(ctx, "AES128-SHA:@SECLEVEL=0") != 1) die("cipher list: " + openssl_errors());
    } else {
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    }
    // Each login client keeps its own session (login_client), so the
    // context caches none. SChannel on Windows XP resumes by session id and
    // knows nothing of RFC 5077 tickets.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (SSL_CTX_load_verify_locations(ctx, trusted.c_str(), nullptr) != 1) die("trust: " + openssl_errors());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    return ctx;
}

// ------------------------------------------------------------------ MSNP login client

struct endpoint_ports {
    std::uint16_t msnp = 0;
    std::uint16_t https = 0;
    SSL_CTX* tls = nullptr;
};

// One MSNP12 client logging in (msnp-reference §3.3, Appendix B.2). With a
// ticket already in hand it skips the HTTPS step. With a session slot it
// keeps a TLS session cache of one entry, as SChannel keeps one per server:
// the login offers the session held there and leaves its own in its place.
class login_client final : public pollable {
public:
    struct settings {
        bool online = false;  // SYN and CHG NLN after the profile
        bool keep = false;    // stay connected once done
    };
    using completion = std::function<void(login_client&, const std::string& error)>;

    login_client(const endpoint_ports& ep, std::string handle, std::string ticket, tls_session* session, settings s,
                 completion done)
        : ep_(ep),
          handle_(std::move(handle)),
          ticket_(std::move(ticket)),
          session_(session),
          settings_(s),
          done_(std::move(done)) {}

    void start() {
        started_ = clock_type::now();
        ns.on_line = [this](const msnp_line& l) { on_ns(l); };
        ns.on_close = [this](const std::string& reason) {
            if (step_ != step::done && step_ != step::failed) finish(reason + " (" + step_name() + ")");
            closed_ = true;
        };
        if (!ns.connect(ep_.msnp)) return finish("NS connect failed: " + std::string(std::strerror(errno)));
        step_ = step::ver;
        ns.send("VER 1 MSNP12 MSNP11 MSNP10 CVR0\r\n");
    }

    void on_events(std::uint32_t) override {}

    msnp_conn ns;
    const std::string& handle() const { return handle_; }
    double seconds() const { return seconds_; }
    bool closed() const { return closed_; }
    bool tls_resumed() const { return tls_resumed_; }
    // After login: lines the NS sends later (RNG, presence) go here.
    std::function<void(const msnp_line&)> after;

private:
    enum class step { idle, ver, cvr, usr_i, https, usr_s, profile, syn, chg, done, failed };

    std::string step_name() const {
        static constexpr std::array<const char*, 11> names{"idle", "VER",  "CVR", "USR TWN I", "login2.srf", "USR TWN S",
                                                           "profile", "SYN", "CHG", "done", "failed"};
        return names[static_cast<std::size_t>(step_)];
    }

    void on_ns(const msnp_line& l) {
        if (step_ == step::done) {
            if (after) after(l);
            return;
        }
        if (step_ == step::failed) return;
        if (l.is_error()) return finish("NS answered " + std::string(l.raw) + " (" + step_name() + ")");
        const auto name = l.name();
        switch (step_) {
            case step::ver:
                if (name != "VER") break;
                if (l.at(2) != "MSNP12") return finish("VER answered " + std::string(l.raw));
                step_ = step::cvr;
                ns.send("CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 7.5.0324 MSMSGS " + handle_ + "\r\n");
                return;
            case step::cvr:
                if (name != "CVR") break;
                step_ = step::usr_i;
                ns.send("USR 3 TWN I " + handle_ + "\r\n");
                return;
            case step::usr_i:
                if (name != "USR") break;
                if (l.at(2) != "TWN" || l.at(3) != "S" || l.n < 5) return finish("USR I answered " + std::string(l.raw));
                if (!ticket_.empty()) return send_ticket();
                return passport(std::string(l.at(4)));
            case step::usr_s:
                if (name != "USR") break;
                if (l.at(2) != "OK") return finish("USR S answered " + std::string(l.raw));
                step_ = step::profile;
                return;
            case step::profile:
                if (name == "SBS") return;
                if (name != "MSG" || l.at(1) != "Hotmail") break;
                if (l.payload.find("text/x-msmsgsprofile") == std::string_view::npos) {
                    return finish("first MSG after USR OK is not the profile");
                }
                if (!settings_.online) return finish({});
                step_ = step::syn;
                ns.send("SYN 5 0 0\r\n");
                return;
            case step::syn:
                if (name != "SYN" || l.at(1) != "5") return;  // the list lines that follow
                step_ = step::chg;
                ns.send("CHG 6 NLN 0\r\n");
                return;
            case step::chg:
                if (name != "CHG" || l.at(1) != "6") return;
                return finish({});
            default:
                return;
        }
        finish("unexpected " + std::string(l.raw) + " (" + step_name() + ")");
    }

    void passport(std::string params) {
        step_ = step::https;
        https_ = std::make_unique<https_conn>();
        https_->on_response = [this](http_response& r) {
            tls_resumed_ = https_->resumed();
            if (session_) *session_ = https_->session();
            std::string error;
            ticket_ = ticket_of(r, error);
            retire_https();
            if (ticket_.empty()) return finish(error);
            send_ticket();
        };
        https_->on_error = [this](const std::string& reason) {
            retire_https();
            finish("HTTPS: " + reason);
        };
        if (!https_->start(ep_.https, ep_.tls, session_ ? session_->get() : nullptr)) {
            return finish("HTTPS connect failed: " + std::string(std::strerror(errno)));
        }
        https_->request(login2_request(ep_.https, handle_, params));
    }

    void retire_https() {
        if (!https_) return;
        https_->close();
        loop.retire(std::move(https_));
    }

    void send_ticket() {
        step_ = step::usr_s;
        ns.send("USR 4 TWN S " + ticket_ + "\r\n");
    }

    void finish(const std::string& error) {
        if (step_ == step::done || step_ == step::failed) return;
        step_ = error.empty() ? step::done : step::failed;
        seconds_ = seconds_since(started_);
        retire_https();
        if (!error.empty()) {
            ns.close();
            closed_ = true;
        } else if (!settings_.keep) {
            // Signing out: the server closes; keep reading until it does,
            // so the close is the server's and no RST goes out.
            ns.send("OUT\r\n");
        }
        if (done_) done_(*this, error);
    }

    const endpoint_ports& ep_;
    std::string handle_;
    std::string ticket_;
    tls_session* session_;
    settings settings_;
    completion done_;
    step step_ = step::idle;
    std::unique_ptr<https_conn> https_;
    clock_type::time_point started_;
    double seconds_ = 0;
    bool closed_ = false;
    bool tls_resumed_ = false;
};

struct login_result {
    std::size_t attempted = 0;
    std::size_t ok = 0;
    std::size_t tls_resumed = 0;  // of the ok logins, those whose HTTPS handshake resumed a session
    std::map<std::string, std::size_t> errors;
    std::vector<double> latency_ms;
    double seconds = 0;
    bool timed_out = false;
    std::vector<std::unique_ptr<login_client>> kept;  // online clients, with settings.keep

    std::string error_text() const {
        std::string out;
        for (const auto& [e, n] : errors) {
            if (!out.empty()) out += "; ";
            out += std::to_string(n) + "x " + e;
        }
        return out;
    }
};

// Logs in `handles` (tickets[i] when given), `concurrency` at a time. With
// `sessions` (one slot per handle), login i resumes the TLS session in slot i
// when there is one, and leaves its own there.
login_result run_logins(const endpoint_ports& ep, const std::vector<std::string>& handles,
                        const std::vector<std::string>& tickets, std::size_t concurrency, login_client::settings s,
                        clock_type::time_point deadline, std::vector<tls_session>* sessions = nullptr) {
    login_result r;
    std::map<login_client*, std::unique_ptr<login_client>> active;
    std::vector<std::unique_ptr<login_client>> closing;  // signed out, waiting for the server's close
    std::size_t next = 0;
    std::size_t finished = 0;
    std::function<void()> launch;
    const auto on_done = [&](login_client& c, const std::string& error) {
        ++finished;
        if (error.empty()) {
            ++r.ok;
            if (c.tls_resumed()) ++r.tls_resumed;
            r.latency_ms.push_back(c.seconds() * 1000);
        } else {
            ++r.errors[error.substr(0, 160)];
        }
        auto it = active.find(&c);
        if (it != active.end()) {
            if (error.empty() && s.keep) r.kept.push_back(std::move(it->second));
            else if (error.empty()) closing.push_back(std::move(it->second));
            else loop.retire(std::move(it->second));
            active.erase(it);
        }
        launch();
    };
    launch = [&] {
        while (active.size() < concurrency && next < handles.size() && clock_type::now() < deadline) {
            const std::size_t i = next++;
            ++r.attempted;
            auto c = std::make_unique<login_client>(ep, handles[i], i < tickets.size() ? tickets[i] : std::string{},
                                                    sessions ? &sessions->at(i) : nullptr, s, on_done);
            login_client* raw = c.get();
            active.emplace(raw, std::move(c));
            raw->start();
        }
    };
    const auto t0 = clock_type::now();
    launch();
    r.timed_out = !loop.run_until([&] { return finished == r.attempted && (next == handles.size() || clock_type::now() >= deadline); },
                                  deadline);
    r.seconds = seconds_since(t0);
    for (auto& [raw, c] : active) {
        ++r.errors["timed out"];
        loop.retire(std::move(c));
    }
    active.clear();
    // Let the signed-out connections see their close (bounded).
    loop.run_until([&] { return std::all_of(closing.begin(), closing.end(), [](const auto& c) { return c->closed(); }); },
                   std::min(deadline, clock_type::now() + 5s));
    for (auto& c : closing) loop.retire(std::move(c));
    launch = [] {};
    return r;
}

// Tickets for `handles` from /login2.srf over `connections` keep-alive TLS
// connections (one handshake each, then request after request).
std::vector<std::string> mint_tickets(const endpoint_ports& ep, const std::vector<std::string>& handles,
                                      std::size_t connections, clock_type::time_point deadline, std::string& error,
                                      double& seconds) {
    std::vector<std::string> tickets(handles.size());
    std::vector<std::unique_ptr<https_conn>> conns;
    std::size_t next = 0, done = 0;
    bool failed = false;
    const auto t0 = clock_type::now();
    for (std::size_t k = 0; k < connections && next < handles.size(); ++k) {
        auto c = std::make_unique<https_conn>();
        https_conn* raw = c.get();
        auto current = std::make_shared<std::size_t>(next++);
        raw->on_response = [&, raw, current](http_response& r) {
            std::string e;
            tickets[*current] = ticket_of(r, e);
            if (tickets[*current].empty()) {
                error = e;
                failed = true;
                return;
            }
            ++done;
            if (next < handles.size()) {
                *current = next++;
                raw->request(login2_request(ep.https, handles[*current], "ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1"));
            }
        };
        raw->on_error = [&](const std::string& reason) {
            error = "HTTPS: " + reason;
            failed = true;
        };
        if (!raw->start(ep.https, ep.tls)) die("HTTPS connect failed");
        raw->request(login2_request(ep.https, handles[*current], "ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1"));
        conns.push_back(std::move(c));
    }
    if (!loop.run_until([&] { return failed || done == handles.size(); }, deadline) && error.empty()) {
        error = "timed out after " + std::to_string(done) + " tickets";
    }
    seconds = seconds_since(t0);
    for (auto& c : conns) {
        c->close();
        loop.retire(std::move(c));
    }
    if (!error.empty()) tickets.clear();
    return tickets;
}

// ------------------------------------------------------------------ procedural helpers

// Lines kept from a connection, for step-by-step exchanges.
struct line_queue {
    std::deque<std::pair<std::string, std::string>> lines;  // raw line, payload
    std::string closed;

    void attach(msnp_conn& c) {
        c.on_line = [this](const msnp_line& l) { lines.emplace_back(std::string(l.raw), std::string(l.payload)); };
        c.on_close = [this](const std::string& reason) { closed = reason; };
    }
    std::function<void(const msnp_line&)> sink() {
        return [this](const msnp_line& l) { lines.emplace_back(std::string(l.raw), std::string(l.payload)); };
    }

    // Waits for a line `name [trid]`; an error line with that trid, a close
    // or the deadline ends the run with the reason.
    std::string expect(const std::string& who, std::string_view name, std::string_view trid,
                       clock_type::time_point deadline) {
        for (;;) {
            while (!lines.empty()) {
                const std::string raw = std::move(lines.front().first);
                lines.pop_front();
                const msnp_line l = tokenize(raw);
                if (std::getenv("MSNP_LOAD_DEBUG")) std::fprintf(stderr, "%s S: %s\n", who.c_str(), raw.c_str());
                if (l.is_error() && (trid.empty() || l.at(1) == trid)) throw std::runtime_error(who + ": server answered " + raw);
                if (l.name() == name && (trid.empty() || l.at(1) == trid)) return raw;
            }
            if (!closed.empty()) throw std::runtime_error(who + ": " + closed + " while waiting for " + std::string(name));
            if (clock_type::now() > deadline) throw std::runtime_error(who + ": no " + std::string(name) + " before the deadline");
            loop.run_once(5);
        }
    }
};

// A chat line of a typical size (about 150 bytes of payload).
std::string chat_message(std::uint64_t trid, std::uint64_t seq) {
    const std::string payload =
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
        "X-MMS-IM-Format: FN=Segoe%20UI; EF=; CO=0; CS=0; PF=0\r\n\r\nload test message #" +
        std::to_string(seq);
    return "MSG " + std::to_string(trid) + " A " + std::to_string(payload.size()) + "\r\n" + payload;
}

std::optional<std::uint64_t> message_seq(std::string_view payload) {
    const auto hash = payload.rfind('#');
    if (hash == std::string_view::npos) return std::nullopt;
    std::uint64_t v = 0;
    const auto [p, ec] = std::from_chars(payload.data() + hash + 1, payload.data() + payload.size(), v);
    if (ec != std::errc()) return std::nullopt;
    return v;
}

struct sb_result {
    std::size_t serial_acked = 0;
    double serial_seconds = 0;
    std::vector<double> rtt_us;
    std::size_t naks = 0;
    std::size_t bob_received = 0;
    std::size_t bob_out_of_order = 0;
    std::size_t sent = 0;
    std::vector<std::string> problems;
    std::string serial_cpu;
    struct round {
        std::size_t acked = 0;
        double seconds = 0;
        std::string cpu;
        double rate() const { return seconds > 0 ? static_cast<double>(acked) / seconds : 0; }
    };
    std::vector<round> rounds;  // pipelined

    // The round with the median rate.
    round median() const {
        if (rounds.empty()) return {};
        auto sorted = rounds;
        std::sort(sorted.begin(), sorted.end(), [](const round& a, const round& b) { return a.rate() < b.rate(); });
        return sorted[sorted.size() / 2];
    }
};

sb_result run_switchboard(const options& opt, const endpoint_ports& ep, const std::vector<std::string>& users,
                          pid_t gateway) {
    sb_result res;
    auto deadline = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                            std::chrono::duration<double>(opt.phase_seconds));
    // alice and bob, fully online.
    auto logins = run_logins(ep, {users[0], users[1]}, {}, 2, {true, true}, deadline);
    if (logins.ok != 2) throw std::runtime_error("switchboard: alice and bob could not log in: " + logins.error_text());
    login_client& alice = *logins.kept[0];
    login_client& bob = *logins.kept[1];
    const std::string& alice_handle = alice.handle();
    const std::string& bob_handle = bob.handle();

    line_queue alice_ns, bob_ns, alice_sbq, bob_sbq;
    alice.after = alice_ns.sink();
    bob.after = bob_ns.sink();
    alice.ns.on_close = [&](const std::string& r) { alice_ns.closed = r; };
    bob.ns.on_close = [&](const std::string& r) { bob_ns.closed = r; };

    // alice: XFR SB → USR → CAL bob; bob: RNG → ANS (msnp-reference §4.4, §4.5, B.2).
    alice.ns.send("XFR 7 SB\r\n");
    const std::string xfr_raw = alice_ns.expect("alice NS", "XFR", "7", deadline);
    const msnp_line xfr = tokenize(xfr_raw);
    const std::string sb_addr(xfr.at(3)), cookie_a(xfr.at(5));
    const auto colon = sb_addr.rfind(':');
    const auto sb_port = static_cast<std::uint16_t>(std::stoi(sb_addr.substr(colon + 1)));
    if (sb_addr.substr(0, colon) != "127.0.0.1") res.problems.push_back("XFR names " + sb_addr);

    auto alice_sb = std::make_unique<msnp_conn>();
    auto bob_sb = std::make_unique<msnp_conn>();
    alice_sbq.attach(*alice_sb);
    if (!alice_sb->connect(sb_port)) throw std::runtime_error("alice SB connect failed");
    alice_sb->send("USR 1 " + alice_handle + " " + cookie_a + "\r\n");
    alice_sbq.expect("alice SB", "USR", "1", deadline);
    alice_sb->send("CAL 2 " + bob_handle + "\r\n");
    const std::string cal_raw = alice_sbq.expect("alice SB", "CAL", "2", deadline);
    const msnp_line cal = tokenize(cal_raw);
    const std::string session(cal.at(3));
    const std::string rng_raw = bob_ns.expect("bob NS", "RNG", "", deadline);
    const msnp_line rng = tokenize(rng_raw);
    if (rng.at(1) != session) res.problems.push_back("RNG session " + std::string(rng.at(1)) + " != " + session);
    bob_sbq.attach(*bob_sb);
    if (!bob_sb->connect(sb_port)) throw std::runtime_error("bob SB connect failed");
    bob_sb->send("ANS 1 " + bob_handle + " " + std::string(rng.at(4)) + " " + session + "\r\n");
    bob_sbq.expect("bob SB", "ANS", "1", deadline);
    alice_sbq.expect("alice SB", "JOI", "", deadline);

    // Counting handlers from here on.
    std::uint64_t expected_seq = 0;
    bob_sb->on_line = [&](const msnp_line& l) {
        if (l.name() != "MSG" || l.at(1) != alice_handle) return;
        ++res.bob_received;
        const auto seq = message_seq(l.payload);
        if (!seq || *seq != expected_seq) ++res.bob_out_of_order;
        expected_seq = seq ? *seq + 1 : expected_seq + 1;
    };
    std::string failure;
    bob_sb->on_close = [&](const std::string& r) { failure = "bob's SB connection: " + r; };
    alice_sb->on_close = [&](const std::string& r) { failure = "alice's SB connection: " + r; };

    std::uint64_t trid = 10;  // next TrID
    std::uint64_t seq = 0;    // next message number
    std::uint64_t acked_total = 0;
    std::vector<clock_type::time_point> sent_at;  // one-at-a-time: by seq
    bool serial = true;
    std::uint64_t serial_first_trid = trid;
    alice_sb->on_line = [&](const msnp_line& l) {
        const auto name = l.name();
        if (name == "ACK") {
            ++acked_total;
            if (serial) {
                std::uint64_t t = 0;
                std::from_chars(l.at(1).data(), l.at(1).data() + l.at(1).size(), t);
                if (t >= serial_first_trid && t - serial_first_trid < sent_at.size()) {
                    res.rtt_us.push_back(
                        std::chrono::duration<double, std::micro>(clock_type::now() - sent_at[t - serial_first_trid])
                            .count());
                }
            }
        } else if (name == "NAK") {
            ++res.naks;
            ++acked_total;
        } else if (l.is_error()) {
            failure = "alice SB got " + std::string(l.raw);
        }
    };

    // One at a time: MSG A, wait for its ACK, repeat.
    {
        const auto phase_deadline = std::min(deadline, clock_type::now() + 20s);
        sent_at.reserve(opt.serial);
        const cpu_meter cpu(gateway);
        const auto t0 = clock_type::now();
        while (seq < opt.serial && failure.empty() && clock_type::now() < phase_deadline) {
            const std::uint64_t want = acked_total + 1;
            sent_at.push_back(clock_type::now());
            alice_sb->send(chat_message(trid++, seq++));
            while (acked_total < want && failure.empty() && clock_type::now() < phase_deadline) loop.run_once(5);
        }
        res.serial_seconds = seconds_since(t0);
        res.serial_acked = static_cast<std::size_t>(acked_total);
        res.serial_cpu = cpu.report();
        serial = false;
    }

    // Pipelined: up to `window` MSG A in flight, written in batches; in
    // rounds, since one round's rate varies with the disk (durability full).
    for (std::size_t round = 0; round < opt.rounds && failure.empty(); ++round) {
        const auto phase_deadline = std::min(deadline, clock_type::now() + 30s);
        const std::uint64_t start_acked = acked_total;
        const std::uint64_t target = std::max<std::uint64_t>(1, opt.pipelined / opt.rounds);
        std::uint64_t sent = 0;
        const auto t0 = clock_type::now();
        auto last_ack = t0;
        std::uint64_t seen = acked_total;
        std::string batch;
        const cpu_meter cpu(gateway);
        while (acked_total - start_acked < target && failure.empty() && clock_type::now() < phase_deadline) {
            const std::uint64_t in_flight = sent - (acked_total - start_acked);
            if (sent < target && in_flight < opt.window && alice_sb->backlog() < 256 * 1024) {
                batch.clear();
                const std::uint64_t n = std::min<std::uint64_t>({opt.window - in_flight, target - sent, 128});
                for (std::uint64_t i = 0; i < n; ++i) batch += chat_message(trid++, seq++);
                sent += n;
                alice_sb->send(batch);
            }
            loop.run_once(sent < target && sent - (acked_total - start_acked) < opt.window ? 0 : 5);
            if (acked_total != seen) {
                seen = acked_total;
                last_ack = clock_type::now();
            }
        }
        // Let this round's stragglers in before the next one starts.
        loop.run_until([&] { return acked_total - start_acked >= sent || !failure.empty(); },
                       std::min(deadline, clock_type::now() + 10s));
        const std::uint64_t acked = std::min(acked_total - start_acked, target);
        const double secs = std::chrono::duration<double>(last_ack - t0).count();
        res.rounds.push_back({static_cast<std::size_t>(acked), secs, cpu.report()});
    }
    res.sent = static_cast<std::size_t>(seq);
    // bob must have every message.
    loop.run_until([&] { return res.bob_received >= res.sent || !failure.empty(); },
                   std::min(deadline, clock_type::now() + 10s));
    if (!failure.empty()) res.problems.push_back(failure);
    if (res.bob_received != res.sent) {
        res.problems.push_back("bob received " + std::to_string(res.bob_received) + " of " +
                               std::to_string(res.sent) + " messages");
    }
    if (res.bob_out_of_order) res.problems.push_back(std::to_string(res.bob_out_of_order) + " out of order at bob");
    if (res.naks) res.problems.push_back(std::to_string(res.naks) + " NAKs");

    // Leave: bob's SB OUT, then everything closes.
    bob_sb->on_close = nullptr;
    alice_sb->on_close = nullptr;
    bob_sb->send("OUT\r\n");
    alice_sb->send("OUT\r\n");
    loop.run_until([&] { return !bob_sb->is_open() && !alice_sb->is_open(); }, clock_type::now() + 3s);
    for (auto& c : logins.kept) {
        c->ns.on_close = nullptr;
        c->ns.send("OUT\r\n");
    }
    loop.run_until([&] { return std::none_of(logins.kept.begin(), logins.kept.end(),
                                             [](const auto& c) { return c->ns.is_open(); }); },
                   clock_type::now() + 3s);
    loop.retire(std::move(alice_sb));
    loop.retire(std::move(bob_sb));
    for (auto& c : logins.kept) loop.retire(std::move(c));
    loop.run_once(0);
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
    return model + ", " + std::to_string(std::thread::hardware_concurrency()) + " CPUs, " + mem + ", Linux " +
           u.release;
}

struct row {
    std::string measure, conditions, measured, target, verdict, cpu;
};

void print_gateway_summary(const gateway_process& g, const std::string& stop_result) {
    const log_summary s = summarize_log(g.log_file());
    std::string levels;
    for (const auto& [level, n] : s.levels) levels += (levels.empty() ? "" : ", ") + level + " " + std::to_string(n);
    std::printf("| %s | %s | %s | %s |", g.name().c_str(), s.descriptors.c_str(), stop_result.c_str(), levels.c_str());
    std::string reasons;
    for (const auto& [r, n] : s.close_reasons) reasons += (reasons.empty() ? "" : "; ") + r + " ×" + std::to_string(n);
    std::printf(" %s |\n", reasons.empty() ? "—" : reasons.c_str());
}

// The gateway's warning and error lines, the first few, for the report.
void print_gateway_notable(const gateway_process& g) {
    const log_summary s = summarize_log(g.log_file());
    if (s.notable.empty()) return;
    std::printf("\n%s gateway, warnings and errors (first %zu):\n\n```\n", g.name().c_str(), s.notable.size());
    for (const auto& l : s.notable) std::printf("%s\n", l.c_str());
    std::printf("```\n");
}

fs::path default_gateway() {
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const fs::path candidate = self.parent_path().parent_path() / "gateway" / "switchyard";
        if (fs::exists(candidate)) return candidate;
    }
    return "build/gateway/switchyard";
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    opt.gateway = default_gateway();
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc) die("missing value for " + a);
            return argv[++i];
        };
        if (a == "--gateway") opt.gateway = value();
        else if (a == "--certs-script") opt.certs_script = value();
        else if (a == "--logins") opt.logins = std::stoul(value());
        else if (a == "--costly-logins") opt.costly_logins = std::stoul(value());
        else if (a == "--concurrency") opt.concurrency = std::stoul(value());
        else if (a == "--costly-concurrency") opt.costly_concurrency = std::stoul(value());
        else if (a == "--serial") opt.serial = std::stoul(value());
        else if (a == "--pipelined") opt.pipelined = std::stoul(value());
        else if (a == "--rounds") opt.rounds = std::max<std::size_t>(1, std::stoul(value()));
        else if (a == "--window") opt.window = std::max<std::size_t>(1, std::stoul(value()));
        else if (a == "--sessions") opt.sessions = std::stoul(value());
        else if (a == "--session-concurrency") opt.session_concurrency = std::stoul(value());
        else if (a == "--durability") opt.durability = value();
        else if (a == "--commands-per-second") opt.commands_per_second = std::stoull(value());
        else if (a == "--tls") opt.tls = value();
        else if (a == "--gateway-cpu") opt.gateway_cpu = std::stoi(value());
        else if (a == "--load-cpu") opt.load_cpu = std::stoi(value());
        else if (a == "--no-hibernate-wait") opt.hibernate_wait = false;
        else if (a == "--perf") opt.perf_dir = value();
        else if (a == "--keep") opt.keep = true;
        else if (a == "--phase-seconds") opt.phase_seconds = std::stod(value());
        else {
            std::fprintf(stderr,
                         "usage: msnp_load [--gateway PATH] [--logins N] [--concurrency N] [--costly-logins N]\n"
                         "                 [--costly-concurrency N] [--serial N] [--pipelined N] [--rounds N]\n"
                         "                 [--window N] [--sessions N] [--session-concurrency N]\n"
                         "                 [--durability full|normal] [--commands-per-second N] [--tls old|current]\n"
                         "                 [--gateway-cpu N] [--load-cpu N] [--no-hibernate-wait]\n"
                         "                 [--phase-seconds S] [--perf DIR] [--keep]\n");
            return 2;
        }
    }
    if (opt.durability != "full" && opt.durability != "normal") die("--durability is full or normal");
    if (opt.tls != "old" && opt.tls != "current") die("--tls is old or current");
    if (!fs::exists(opt.gateway)) die("no gateway binary at " + opt.gateway.string() + " (use --gateway PATH)");
    opt.gateway = fs::absolute(opt.gateway);
    std::signal(SIGPIPE, SIG_IGN);

    const unsigned cpus = std::thread::hardware_concurrency();
    if (cpus < 2) {
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
    if (lim.rlim_cur < opt.sessions + 200) {
        std::fprintf(stderr, "msnp_load: RLIMIT_NOFILE hard limit %llu is below %zu sessions; lowering --sessions\n",
                     static_cast<unsigned long long>(lim.rlim_cur), opt.sessions);
        opt.sessions = lim.rlim_cur > 300 ? lim.rlim_cur - 300 : 0;
    }

    const auto run_start = clock_type::now();
    char tmpl[] = "/tmp/msnp-load-XXXXXX";
    if (!::mkdtemp(tmpl)) die("mkdtemp failed");
    const fs::path root = tmpl;
    const fs::path certs = root / "certs";
    if (!run_command({"/bin/sh", opt.certs_script.string(), certs.string()}, root / "make-certs.log", 60s)) {
        die("make-certs.sh failed: " + read_file(root / "make-certs.log"));
    }
    SSL_CTX* tls = make_client_context(opt, certs / "legacy.pem");
    const auto phase_deadline = [&] {
        return clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                       std::chrono::duration<double>(opt.phase_seconds));
    };

    std::printf("# msnp_load: MSNP12 clients against a live gateway over 127.0.0.1\n\ncommand: ");
    for (int i = 0; i < argc; ++i) std::printf("%s ", argv[i]);
    std::printf("\nmachine: %s\n", machine_description().c_str());
    std::printf("gateway: %s, threads = 1, pinned to CPU %d; load generator on CPU %d (one thread, epoll)\n",
                opt.gateway.c_str(), opt.gateway_cpu, opt.load_cpu);
    std::printf("settings: HTTPS tls = \"legacy\" (RSA-2048 from make-certs.sh); client TLS %s; durability = \"%s\"; "
                "[limits] commands_per_second = %llu, max_connections_per_address = 1000000 (every client is "
                "127.0.0.1); other settings at their defaults\n",
                opt.tls == "old" ? "1.0 AES128-SHA (MSN Messenger on SChannel)" : "1.2+ (OpenSSL defaults)",
                opt.durability.c_str(), static_cast<unsigned long long>(opt.commands_per_second));
    std::printf("data: %s\n", root.c_str());
    std::fflush(stdout);

    std::vector<row> rows;
    std::vector<std::string> details;
    std::vector<std::pair<std::unique_ptr<gateway_process>, std::string>> gateways;

    const auto start_gateway = [&](const std::string& name, const password_cost& cost) {
        gateway_settings gs{cost, opt.durability, opt.commands_per_second};
        auto g = std::make_unique<gateway_process>(opt, root / name, certs, gs, name);
        return g;
    };

    // ---- 1a + 2 + 3: cheap hashing: logins, then the switchboard.
    {
        auto g = start_gateway("cheap", cheap_cost);
        const auto users = g->add_users("u", opt.logins + 2);
        g->start();
        endpoint_ports ep{g->port("msnp"), g->port("https"), tls};
        std::vector<std::string> login_users(users.begin() + 2, users.end());
        // Each user's client logs in twice: first contact (a full TLS
        // handshake), then again later, resuming the session it kept.
        std::vector<tls_session> sessions(login_users.size());
        const auto login_pass = [&](const std::string& pass, const std::string& phase) {
            login_result r;
            std::string cpu_text;
            double gateway_seconds = 0;
            {
                perf_recording perf(opt, g->pid(), phase);
                const cpu_meter cpu(g->pid());
                r = run_logins(ep, login_users, {}, opt.concurrency, {false, false}, phase_deadline(), &sessions);
                cpu_text = cpu.report();
                gateway_seconds = cpu.gateway_seconds();
            }
            const double rate = static_cast<double>(r.ok) / r.seconds;
            rows.push_back({"full TWN logins/s (HTTPS login2.srf + NS), " + pass,
                            cheap_cost.text() + "; " + std::to_string(r.ok) + " of " + std::to_string(r.attempted) +
                                " logins ok, " + std::to_string(r.tls_resumed) + " TLS sessions resumed, " +
                                std::to_string(opt.concurrency) + " in flight",
                            with_commas(rate), "≥ 1,000", rate >= 1000 ? "met" : "NOT met", cpu_text});
            details.push_back("logins, " + pass + " (" + cheap_cost.text() + "): " + std::to_string(r.ok) + " ok in " +
                              fixed(r.seconds, 2) + " s; login time p50 " + fixed(percentile(r.latency_ms, 0.5), 1) +
                              " ms, p99 " + fixed(percentile(r.latency_ms, 0.99), 1) + " ms; gateway CPU " +
                              fixed(r.ok ? gateway_seconds * 1000 / static_cast<double>(r.ok) : 0, 2) +
                              " ms per login" + (r.errors.empty() ? "" : "; errors: " + r.error_text()) +
                              (r.timed_out ? "; TIMED OUT" : ""));
        };
        login_pass("first contact (full TLS handshake)", "logins-cheap");
        login_pass("returning clients (TLS session resumed)", "logins-cheap-resumed");
        details.push_back("accounts made in " + fixed(g->users_seconds(), 2) + " s");

        sb_result sb;
        {
            perf_recording perf(opt, g->pid(), "switchboard");
            try {
                sb = run_switchboard(opt, ep, users, g->pid());
            } catch (const std::exception& e) {
                sb.problems.push_back(std::string("switchboard FAILED: ") + e.what());
            }
        }
        const double serial_rate = sb.serial_seconds > 0 ? static_cast<double>(sb.serial_acked) / sb.serial_seconds : 0;
        const auto median = sb.median();
        const double piped_rate = median.rate();
        std::string rounds_text;
        for (const auto& round : sb.rounds) {
            rounds_text += (rounds_text.empty() ? "" : ", ") + with_commas(round.rate());
        }
        rows.push_back({"SB messages/s, one at a time (MSG A → ACK)",
                        std::to_string(sb.serial_acked) + " messages, alice → bob in one switchboard",
                        with_commas(serial_rate), "—", "", sb.serial_cpu});
        rows.push_back({"SB messages/s, pipelined (ACKs counted)",
                        "median of " + std::to_string(sb.rounds.size()) + " rounds of " +
                            with_commas(static_cast<double>(median.acked)) + " messages (" + rounds_text + "/s), window " +
                            std::to_string(opt.window),
                        with_commas(piped_rate), "≥ 100,000", piped_rate >= 100000 ? "met" : "NOT met",
                        median.cpu});
        const double p50 = percentile(sb.rtt_us, 0.5), p99 = percentile(sb.rtt_us, 0.99);
        rows.push_back({"ACK round trip p50 / p99 µs", "one at a time (" + std::to_string(sb.rtt_us.size()) + " samples)",
                        fixed(p50, 0) + " / " + fixed(p99, 0), "p99 < 1,000", p99 < 1000 ? "met" : "NOT met",
                        sb.serial_cpu});
        details.push_back("switchboard: bob received " + std::to_string(sb.bob_received) + " of " +
                          std::to_string(sb.sent) + " messages sent; ACK max " +
                          fixed(sb.rtt_us.empty() ? 0 : *std::max_element(sb.rtt_us.begin(), sb.rtt_us.end()), 0) +
                          " µs, p90 " + fixed(percentile(sb.rtt_us, 0.9), 0) + " µs, p99.9 " +
                          fixed(percentile(sb.rtt_us, 0.999), 0) + " µs" +
                          (sb.problems.empty() ? std::string("; no problems")
                                               : "; PROBLEMS: " + [&] {
                                                     std::string s;
                                                     for (const auto& p : sb.problems) s += (s.empty() ? "" : "; ") + p;
                                                     return s;
                                                 }()));
        const auto mem = read_memory(g->pid());
        details.push_back("cheap gateway after logins and switchboard: VmRSS " + std::to_string(mem.rss_kib) +
                          " KiB, VmHWM " + std::to_string(mem.hwm_kib) + " KiB, " + std::to_string(mem.threads) +
                          " threads");
        const std::string stopped = g->stop();
        gateways.emplace_back(std::move(g), stopped);
    }

    // ---- 1b: the default cost.
    if (opt.costly_logins > 0) {
        const password_cost costly = default_cost();
        auto g = start_gateway("default-cost", costly);
        const auto users = g->add_users("c", opt.costly_logins);
        g->start();
        endpoint_ports ep{g->port("msnp"), g->port("https"), tls};
        login_result r;
        std::string cpu_text;
        {
            perf_recording perf(opt, g->pid(), "logins-default-cost");
            const cpu_meter cpu(g->pid());
            r = run_logins(ep, users, {}, opt.costly_concurrency, {false, false}, phase_deadline());
            cpu_text = cpu.report();
        }
        const double rate = static_cast<double>(r.ok) / r.seconds;
        const auto mem = read_memory(g->pid());
        rows.push_back({"full TWN logins/s (HTTPS login2.srf + NS), first contact (full TLS handshake)",
                        costly.text() + "; " + std::to_string(r.ok) + " of " + std::to_string(r.attempted) +
                            " logins ok, " + std::to_string(opt.costly_concurrency) + " in flight",
                        fixed(rate, 2), "—", "", cpu_text});
        details.push_back("logins (" + costly.text() + "): " + std::to_string(r.ok) + " ok in " + fixed(r.seconds, 2) +
                          " s; login time p50 " + fixed(percentile(r.latency_ms, 0.5), 0) + " ms, p99 " +
                          fixed(percentile(r.latency_ms, 0.99), 0) + " ms" +
                          (r.errors.empty() ? "" : "; errors: " + r.error_text()) + (r.timed_out ? "; TIMED OUT" : "") +
                          "; gateway VmHWM " + std::to_string(mem.hwm_kib / 1024) + " MiB");
        const std::string stopped = g->stop();
        gateways.emplace_back(std::move(g), stopped);
    }

    // ---- 4: memory per idle session.
    if (opt.sessions > 0) {
        auto g = start_gateway("sessions", cheap_cost);
        const auto users = g->add_users("m", opt.sessions);
        g->start();
        endpoint_ports ep{g->port("msnp"), g->port("https"), tls};
        std::string error;
        double mint_seconds = 0;
        const cpu_meter mint_cpu(g->pid());
        const auto tickets = mint_tickets(ep, users, 8, phase_deadline(), error, mint_seconds);
        const std::string mint_cpu_text = mint_cpu.report();
        login_result r;
        if (!error.empty()) {
            rows.push_back({"user-space memory per idle session (VmRSS delta)", "FAILED: minting tickets: " + error, "—",
                            "≤ 4,096 B", "NOT measured", mint_cpu_text});
        } else {
            std::this_thread::sleep_for(1s);
            const auto before = read_memory(g->pid());
            std::string cpu_text;
            {
                perf_recording perf(opt, g->pid(), "sessions");
                const cpu_meter cpu(g->pid());
                r = run_logins(ep, users, tickets, opt.session_concurrency, {true, true}, phase_deadline());
                cpu_text = cpu.report();
            }
            // Settle, then read again.
            const auto settle_until = clock_type::now() + 2s;
            loop.run_until([] { return false; }, settle_until);
            const auto after = read_memory(g->pid());
            const std::size_t online = static_cast<std::size_t>(std::count_if(
                r.kept.begin(), r.kept.end(), [](const auto& c) { return c->ns.is_open(); }));
            const double per = online ? (static_cast<double>(after.rss_kib) - static_cast<double>(before.rss_kib)) * 1024 /
                                            static_cast<double>(online)
                                      : 0;
            rows.push_back({"user-space memory per idle session (VmRSS delta)",
                            std::to_string(online) + " NS sessions online (SYN, CHG NLN), distinct users",
                            with_commas(per) + " B", "≤ 4,096 B", per <= 4096 ? "met" : "NOT met",
                            "logging in: " + cpu_text});
            details.push_back("sessions: tickets minted over 8 keep-alive HTTPS connections in " + fixed(mint_seconds, 2) +
                              " s (" + with_commas(static_cast<double>(users.size()) / mint_seconds) +
                              "/s, " + cheap_cost.text() + "; " + mint_cpu_text + "); " + std::to_string(r.ok) + " NS logins in " + fixed(r.seconds, 2) +
                              " s (" + with_commas(static_cast<double>(r.ok) / r.seconds) + "/s with SYN + CHG, " +
                              std::to_string(opt.session_concurrency) + " in flight; p50 " +
                              fixed(percentile(r.latency_ms, 0.5), 1) + " ms, p99 " +
                              fixed(percentile(r.latency_ms, 0.99), 1) + " ms)" +
                              (r.errors.empty() ? "" : "; errors: " + r.error_text()) + (r.timed_out ? "; TIMED OUT" : ""));
            details.push_back("sessions: VmRSS " + std::to_string(before.rss_kib) + " → " + std::to_string(after.rss_kib) +
                              " KiB (RssAnon " + std::to_string(before.anon_kib) + " → " + std::to_string(after.anon_kib) +
                              " KiB), VmHWM " + std::to_string(after.hwm_kib) + " KiB, " + std::to_string(after.threads) +
                              " threads");
            if (opt.hibernate_wait) {
                // Past hibernate_after (10 s): idle objects leave memory.
                loop.run_until([] { return false; }, clock_type::now() + 12s);
                const auto later = read_memory(g->pid());
                const std::size_t still = static_cast<std::size_t>(std::count_if(
                    r.kept.begin(), r.kept.end(), [](const auto& c) { return c->ns.is_open(); }));
                const double per_later =
                    still ? (static_cast<double>(later.rss_kib) - static_cast<double>(before.rss_kib)) * 1024 /
                                static_cast<double>(still)
                          : 0;
                rows.push_back({"… the same, 12 s later (past hibernate_after = 10s)",
                                std::to_string(still) + " sessions still connected", with_commas(per_later) + " B",
                                "≤ 4,096 B", per_later <= 4096 ? "met" : "NOT met", "idle"});
            }
        }
        const std::string stopped = g->stop(30s);
        for (auto& c : r.kept) {
            c->ns.close();
            loop.retire(std::move(c));
        }
        loop.run_once(0);
        gateways.emplace_back(std::move(g), stopped);
    }

    std::printf("\n## results\n\n| measure | conditions | measured | target | | CPU during the measurement |\n"
                "|---|---|---:|---:|---|---|\n");
    for (const auto& r : rows) {
        std::printf("| %s | %s | %s | %s | %s | %s |\n", r.measure.c_str(), r.conditions.c_str(), r.measured.c_str(),
                    r.target.c_str(), r.verdict.c_str(), r.cpu.c_str());
    }
    std::printf("\n## details\n\n");
    for (const auto& d : details) std::printf("* %s\n", d.c_str());
    std::printf("\n## gateways\n\n| gateway | descriptors | stop (SIGTERM) | log lines by level | connections closed, by reason |\n"
                "|---|---:|---|---|---|\n");
    for (const auto& [g, stopped] : gateways) print_gateway_summary(*g, stopped);
    for (const auto& [g, stopped] : gateways) print_gateway_notable(*g);
    if (cpu_meter::interference) {
        std::printf("\n⚠ other processes used more than 10%% of the benchmark's CPUs during some measurements "
                    "(\"other processes\" above): those numbers understate the gateway.\n");
    }
    std::printf("\nwhole run: %.1f s\n", seconds_since(run_start));
    SSL_CTX_free(tls);
    gateways.clear();
    if (!opt.keep) {
        std::error_code ec;
        fs::remove_all(root, ec);
    } else {
        std::printf("kept: %s\n", root.c_str());
    }
    return 0;
}
