#include "tools/replay/runner.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <ostream>
#include <set>
#include <sstream>
#include <thread>

namespace switchyard::replay {

using clock_type = std::chrono::steady_clock;

std::string md5_hex(std::string_view text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_Digest(text.data(), text.size(), digest, &size, EVP_md5(), nullptr);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < size; ++i) {
        out.push_back(hex[digest[i] >> 4]);
        out.push_back(hex[digest[i] & 15]);
    }
    return out;
}

namespace {

std::string url_encode(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(c);
        } else {
            out += {'%', hex[u >> 4], hex[u & 15]};
        }
    }
    return out;
}

std::string join(const std::vector<std::string>& w, std::size_t from, const char* sep = " ") {
    std::string out;
    for (std::size_t i = from; i < w.size(); ++i) out += (i > from ? sep : "") + w[i];
    return out;
}

// ------------------------------------------------------------------ sockets

int connect_to(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout, std::string& error) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    if (const int r = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); r != 0) {
        error = host + ": " + ::gai_strerror(r);
        return -1;
    }
    int fd = -1;
    for (addrinfo* a = found; a && fd < 0; a = a->ai_next) {
        fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) continue;
        if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            error = std::strerror(errno);
            ::close(fd);
            fd = -1;
            continue;
        }
        pollfd p{fd, POLLOUT, 0};
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1 ||
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
            error = soerr ? std::strerror(soerr) : "connect timed out";
            ::close(fd);
            fd = -1;
        }
    }
    ::freeaddrinfo(found);
    if (fd >= 0) {
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

bool send_all(int fd, std::string_view bytes, std::chrono::milliseconds timeout) {
    const auto deadline = clock_type::now() + timeout;
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n > 0) {
            bytes.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, static_cast<int>(left.count()));
    }
    return true;
}

// ------------------------------------------------------------------ HTTPS (Passport)

struct url {
    std::string host;
    std::uint16_t port = 443;
    std::string path = "/";
};

std::optional<url> parse_url(std::string_view s) {
    if (s.starts_with("https://")) s.remove_prefix(8);
    url u;
    const auto slash = s.find('/');
    std::string_view authority = s.substr(0, slash);
    if (slash != std::string_view::npos) u.path = std::string(s.substr(slash));
    if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
        unsigned port = 0;
        const auto p = authority.substr(colon + 1);
        if (std::from_chars(p.data(), p.data() + p.size(), port).ec != std::errc() || port == 0 || port > 65535) {
            return std::nullopt;
        }
        u.port = static_cast<std::uint16_t>(port);
        authority = authority.substr(0, colon);
    }
    if (authority.empty()) return std::nullopt;
    u.host = std::string(authority);
    return u;
}

std::string openssl_errors() {
    std::string out;
    while (const unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        out += (out.empty() ? "" : "; ") + std::string(buf);
    }
    return out.empty() ? "TLS failure" : out;
}

struct http_reply {
    int status = 0;
    std::string head;
};

// One GET over a fresh TLS connection; the head of the reply.
std::optional<http_reply> https_get(const url& u, const std::string& extra_headers, const run_options& o,
                                    std::string& error) {
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
    if (!ctx) {
        error = openssl_errors();
        return std::nullopt;
    }
    // Old login servers speak TLS 1.0 with AES128-SHA (msnp-reference §3.3).
    SSL_CTX_set_security_level(ctx.get(), 0);
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_VERSION);
    SSL_CTX_set_cipher_list(ctx.get(), "DEFAULT:AES128-SHA:@SECLEVEL=0");
    if (!o.insecure) {
        const bool loaded = o.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx.get()) == 1
                                              : SSL_CTX_load_verify_locations(ctx.get(), o.ca_file.c_str(), nullptr) == 1;
        if (!loaded) {
            error = "trust " + o.ca_file + ": " + openssl_errors();
            return std::nullopt;
        }
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    }
    const int fd = connect_to(u.host, u.port, o.timeout, error);
    if (fd < 0) return std::nullopt;
    // Blocking from here on, with socket timeouts.
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    const timeval tv{static_cast<time_t>(o.timeout.count() / 1000), static_cast<suseconds_t>(o.timeout.count() % 1000 * 1000)};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
    in6_addr ip6{};
    in_addr ip4{};
    const bool is_ip = ::inet_pton(AF_INET, u.host.c_str(), &ip4) == 1 || ::inet_pton(AF_INET6, u.host.c_str(), &ip6) == 1;
    if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), u.host.c_str());
    } else {
        SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(u.host.c_str()));
        SSL_set1_host(ssl.get(), u.host.c_str());
    }
    SSL_set_fd(ssl.get(), fd);
    std::optional<http_reply> out;
    if (SSL_connect(ssl.get()) != 1) {
        error = "TLS handshake with " + u.host + ":" + std::to_string(u.port) + ": " + openssl_errors();
    } else {
        const std::string request = "GET " + u.path + " HTTP/1.1\r\nHost: " + u.host + ":" + std::to_string(u.port) +
                                    "\r\n" + extra_headers + "User-Agent: MSMSGS\r\nConnection: close\r\n\r\n";
        std::string in;
        if (SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) != static_cast<int>(request.size())) {
            error = "TLS write: " + openssl_errors();
        } else {
            char buf[4096];
            while (in.find("\r\n\r\n") == std::string::npos) {
                const int n = SSL_read(ssl.get(), buf, sizeof buf);
                if (n <= 0) break;
                in.append(buf, static_cast<std::size_t>(n));
            }
            if (in.size() < 12 || !in.starts_with("HTTP/")) {
                error = "no HTTP reply from " + u.host;
            } else {
                out = http_reply{std::atoi(in.c_str() + 9), in.substr(0, in.find("\r\n\r\n") + 2)};
            }
        }
        SSL_shutdown(ssl.get());
    }
    ssl.reset();
    ::close(fd);
    return out;
}

std::string header(const std::string& head, std::string_view name) {
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string key = "\r\n" + std::string(name) + ":";
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const auto at = lower.find(key);
    if (at == std::string::npos) return {};
    auto start = at + key.size();
    while (start < head.size() && head[start] == ' ') ++start;
    return head.substr(start, head.find("\r\n", start) - start);
}

// Passport 1.4 (msnp-reference §3.3): the nexus names the login server,
// which answers the client's credentials with the ticket in from-PP.
std::optional<std::string> passport_ticket(const run_options& o, const std::string& handle, const std::string& password,
                                           const std::string& params, std::string& error) {
    std::string login = o.login_url;
    if (login.empty()) {
        if (o.nexus_url.empty()) {
            error = "a Passport login needs --nexus URL or --login-url URL";
            return std::nullopt;
        }
        const auto nexus = parse_url(o.nexus_url);
        if (!nexus) {
            error = "bad nexus URL " + o.nexus_url;
            return std::nullopt;
        }
        const auto r = https_get(*nexus, "", o, error);
        if (!r) return std::nullopt;
        const std::string urls = header(r->head, "PassportURLs");
        const auto at = urls.find("DALogin=");
        if (r->status != 200 || at == std::string::npos) {
            error = "the nexus answered " + std::to_string(r->status) + " without PassportURLs DALogin";
            return std::nullopt;
        }
        login = urls.substr(at + 8, urls.find(',', at) - at - 8);
    }
    const auto u = parse_url(login);
    if (!u) {
        error = "bad login URL " + login;
        return std::nullopt;
    }
    const auto r = https_get(*u,
                             "Authorization: Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in=" +
                                 url_encode(handle) + ",pwd=" + url_encode(password) + "," + params + "\r\n",
                             o, error);
    if (!r) return std::nullopt;
    const std::string info = header(r->head, "Authentication-Info");
    const auto from = info.find("from-PP='");
    if (r->status != 200 || from == std::string::npos) {
        error = "login for " + handle + " answered " + std::to_string(r->status) + (info.empty() ? "" : ": " + info);
        return std::nullopt;
    }
    return info.substr(from + 9, info.find('\'', from + 9) - from - 9);
}

// `command 'handle'`: its first line of output.
std::optional<std::string> run_ticket_command(const std::string& command, const std::string& handle, std::string& error) {
    std::string quoted = "'";
    for (char c : handle) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    quoted += "'";
    FILE* p = ::popen((command + " " + quoted).c_str(), "r");
    if (!p) {
        error = "cannot run the ticket command: " + std::string(std::strerror(errno));
        return std::nullopt;
    }
    std::string out;
    char buf[4096];
    while (const std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    const int status = ::pclose(p);
    if (const auto nl = out.find('\n'); nl != std::string::npos) out.resize(nl);
    if (status != 0 || out.empty()) {
        error = "the ticket command failed for " + handle;
        return std::nullopt;
    }
    return out;
}

// ------------------------------------------------------------------ the runner

struct message {
    std::string text;
    std::string payload;
    bool has_payload = false;
};

struct connection {
    int fd = -1;
    bool closed = false;
    std::string buffer;
    std::deque<message> queue;
    std::string handle;       // signed in as (USR ... I, or USR/ANS on a switchboard)
    std::string twn_params;   // from USR ... TWN S
    std::string seen;         // every line received, for reports
};

class runner {
public:
    runner(const transcript& t, const run_options& o) : t_(t), o_(o) {}

    ~runner() {
        for (auto& [name, c] : conns_) {
            if (c.fd >= 0) ::close(c.fd);
        }
    }

    run_result go() {
        start_ = clock_type::now();
        const std::size_t total = t_.steps.size();
        for (const step& s : t_.steps) {
            if (fatal_ || result_.failures.size() >= 20) break;
            if (o_.progress && total >= 1000 && result_.steps % 1000 == 0 && result_.steps) {
                *o_.progress << "replay: step " << result_.steps << "/" << total << "\n" << std::flush;
            }
            if (s.client) {
                send(s);
            } else {
                expect(s);
            }
            ++result_.steps;
        }
        return std::move(result_);
    }

private:
    std::string place(const step& s) const {
        return t_.file + ":" + std::to_string(s.line) + ": " + s.connection + (s.client ? " C: " : " S: ") + s.text;
    }

    void fail(const step& s, std::string kind, std::string expected, std::string actual, std::string detail,
              bool fatal) {
        result_.failures.push_back({std::move(kind), place(s), std::move(expected), std::move(actual), std::move(detail)});
        if (fatal) fatal_ = true;
    }

    // ${...} in a client line.
    std::optional<std::string> expand(const step& s, const connection& c, const std::string& text) {
        std::string out;
        std::size_t pos = 0;
        for (;;) {
            const auto open = text.find("${", pos);
            if (open == std::string::npos) break;
            const auto close = text.find('}', open);
            if (close == std::string::npos) break;
            out += text.substr(pos, open - pos);
            const std::string name = text.substr(open + 2, close - open - 2);
            pos = close + 1;
            if (name.starts_with("md5:")) {
                // ${md5:SALT:PASSWORD}, or ${md5:SALT} with the password of
                // the account this connection signs in as.
                const auto colon = name.find(':', 4);
                const std::string salt = name.substr(4, colon == std::string::npos ? std::string::npos : colon - 4);
                std::string password;
                if (colon != std::string::npos) {
                    password = name.substr(colon + 1);
                } else if (const auto p = o_.passwords.find(c.handle); p != o_.passwords.end()) {
                    password = p->second;
                } else {
                    fail(s, "login", "", "", "no password for " + (c.handle.empty() ? "this connection" : c.handle) +
                                                 " (give it in the mapping file or an @user line)", true);
                    return std::nullopt;
                }
                if (!captures_.contains(salt)) {
                    fail(s, "input", "", "", "no capture named " + salt, true);
                    return std::nullopt;
                }
                out += md5_hex(captures_.at(salt) + password);
            } else if (name.starts_with("ticket:")) {
                const std::string handle = name.substr(7);
                if (o_.ticket) {
                    out += o_.ticket(handle);
                    continue;
                }
                const auto p = o_.passwords.find(handle);
                if (p == o_.passwords.end() && !o_.ticket_command.empty()) {
                    std::string error;
                    const auto minted = run_ticket_command(o_.ticket_command, handle, error);
                    if (!minted) {
                        fail(s, "login", "", "", error, true);
                        return std::nullopt;
                    }
                    out += *minted;
                    continue;
                }
                if (p == o_.passwords.end()) {
                    fail(s, "login", "", "", "no password for " + handle + " (give it in the mapping file or an @user line)", true);
                    return std::nullopt;
                }
                std::string error;
                const auto ticket = passport_ticket(o_, handle, p->second,
                                                    c.twn_params.empty() ? "ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1"
                                                                         : c.twn_params,
                                                    error);
                if (!ticket) {
                    fail(s, "login", "", "", error, true);
                    return std::nullopt;
                }
                out += *ticket;
            } else {
                const auto it = captures_.find(name);
                if (it == captures_.end()) {
                    fail(s, "input", "", "", "no capture named " + name + " (nothing the server sent so far set it)", true);
                    return std::nullopt;
                }
                out += it->second;
            }
        }
        return out + text.substr(pos);
    }

    connection* open(const step& s, const std::string& first_line) {
        auto& c = conns_[s.connection];
        if (c.fd >= 0 || c.closed) return &c;
        // A switchboard goes where the server said, found by its cookie.
        std::string host = o_.host;
        std::uint16_t port = o_.port;
        const auto w = split(first_line);
        std::string cookie;
        if (w.size() >= 4 && w[0] == "USR" && w[2].find('@') != std::string::npos && w.size() == 4) cookie = w[3];
        if (w.size() >= 5 && w[0] == "ANS") cookie = w[3];
        if (const auto it = switchboards_.find(cookie); !cookie.empty() && it != switchboards_.end()) {
            const auto colon = it->second.rfind(':');
            host = it->second.substr(0, colon);
            unsigned p = 0;
            const std::string ps = it->second.substr(colon + 1);
            std::from_chars(ps.data(), ps.data() + ps.size(), p);
            port = static_cast<std::uint16_t>(p);
        }
        std::string error;
        c.fd = connect_to(host, port, o_.timeout, error);
        if (c.fd < 0) {
            fail(s, "connect", "", "", "cannot connect to " + host + ":" + std::to_string(port) + ": " + error, true);
            return nullptr;
        }
        return &c;
    }

    void pace(const step& s) {
        if (o_.pace <= 0 || !s.at) return;
        const auto due = start_ + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(*s.at * o_.pace));
        while (clock_type::now() < due) pump(due);
    }

    void send(const step& s) {
        pace(s);
        auto& existing = conns_[s.connection];
        auto line = expand(s, existing, s.text);
        if (!line) return;
        std::string payload;
        for (std::size_t i = 0; i < s.payload.size() && s.has_payload; ++i) {
            if (s.payload.size() == 1 && s.payload[0].starts_with("!base64 ")) {
                payload = payload_bytes(s.payload);
                break;
            }
            auto p = expand(s, existing, s.payload[i]);
            if (!p) return;
            payload += (i ? "\r\n" : "") + *p;
        }
        auto w = split(*line);
        if (s.has_payload) w.back() = std::to_string(payload.size());
        const std::string text = join(w, 0);
        connection* c = open(s, text);
        if (!c) return;
        if (c->closed) {
            fail(s, "closed", "", "", "the server closed this connection before the client sent this line", true);
            return;
        }
        if (w[0] == "USR" && w.size() >= 5 && w[3] == "I") c->handle = w[4];
        if ((w[0] == "USR" && w.size() == 4) || (w[0] == "ANS" && w.size() >= 5)) c->handle = w[2];
        // Every client command but PNG and OUT carries a transaction id, MSG included.
        if (w.size() > 1 && all_digits(w[1]) && w[1].find_first_not_of('0') != std::string::npos) {
            pending_[{s.connection, w[1]}] = {w[0], clock_type::now()};
        }
        if (!send_all(c->fd, text + "\r\n" + payload, o_.timeout)) {
            fail(s, "closed", "", "", "cannot send: " + std::string(std::strerror(errno)), true);
        }
    }

    // Reads whatever has arrived on every connection, waiting until `deadline` for something.
    void pump(clock_type::time_point deadline) {
        std::vector<pollfd> fds;
        std::vector<std::pair<std::string, connection*>> which;
        for (auto& [name, c] : conns_) {
            if (c.fd >= 0 && !c.closed) {
                fds.push_back({c.fd, POLLIN, 0});
                which.push_back({name, &c});
            }
        }
        const auto left = std::max<long>(0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count());
        if (fds.empty()) {
            if (left > 0) std::this_thread::sleep_until(deadline);
            return;
        }
        if (::poll(fds.data(), fds.size(), static_cast<int>(left)) <= 0) return;
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (!fds[i].revents) continue;
            connection& c = *which[i].second;
            char buf[16384];
            for (;;) {
                const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
                if (n > 0) {
                    c.buffer.append(buf, static_cast<std::size_t>(n));
                    continue;
                }
                if (n == 0 || (errno != EAGAIN && errno != EINTR)) c.closed = true;
                break;
            }
            frame(which[i].first, c);
        }
    }

    void frame(const std::string& name, connection& c) {
        for (;;) {
            const auto nl = c.buffer.find("\r\n");
            if (nl == std::string::npos) return;
            message m;
            m.text = c.buffer.substr(0, nl);
            std::size_t used = nl + 2;
            if (payload_command(m.text, false)) {
                const auto w = split(m.text);
                std::size_t length = 0;
                std::from_chars(w.back().data(), w.back().data() + w.back().size(), length);
                if (c.buffer.size() < used + length) return;
                m.payload = c.buffer.substr(used, length);
                m.has_payload = true;
                used += length;
            }
            c.buffer.erase(0, used);
            c.seen += "  " + m.text + "\n";
            if (const auto trid = transaction_id(m.text)) {
                if (const auto p = pending_.find({name, *trid}); p != pending_.end()) {
                    result_.latency[p->second.first].push_back(
                        std::chrono::duration<double, std::milli>(clock_type::now() - p->second.second).count());
                    pending_.erase(p);
                }
            }
            c.queue.push_back(std::move(m));
        }
    }

    bool candidate(const std::vector<std::string>& want, const std::optional<std::string>& trid, const message& m) const {
        const auto got = split(m.text);
        const bool numeric = all_digits(got[0]) || all_digits(want[0]);
        if (trid) return got.size() > 1 && got[1] == *trid && (want[0] == "*" || got[0] == want[0] || numeric);
        return want[0] == "*" || got[0] == want[0];
    }

    bool full_match(const step& s, const message& m, captures& fresh, std::string* why) {
        if (o_.loose) {
            // Command and transaction id only, plus the values it captures.
            const auto want = split(s.text);
            const auto got = split(m.text);
            for (std::size_t i = 0; i < want.size() && i < got.size(); ++i) {
                const auto open = want[i].find("${");
                if (open == std::string::npos || want[i].find("${=") != std::string::npos) continue;
                const auto close = want[i].find('}', open);
                if (close == std::string::npos || !got[i].starts_with(want[i].substr(0, open))) continue;
                fresh[want[i].substr(open + 2, close - open - 2)] = got[i].substr(open);
            }
            if (want[0] != "*" && want[0] != got[0]) {
                if (why) *why = "expected " + want[0] + ", received " + got[0];
                return false;
            }
            return true;
        }
        if (!match_line(s.text, m.text, captures_, fresh, why)) return false;
        if (!s.has_payload || s.payload.empty()) return true;
        const auto lines = payload_lines(m.payload);
        if (lines.size() != s.payload.size()) {
            if (why) *why = "payload of " + std::to_string(lines.size()) + " lines, expected " + std::to_string(s.payload.size());
            return false;
        }
        for (std::size_t i = 0; i < lines.size(); ++i) {
            if (s.payload[i] == "*") continue;
            captures merged = captures_;
            for (auto& [k, v] : fresh) merged[k] = v;
            std::string reason;
            if (!match_line(s.payload[i], lines[i], merged, fresh, &reason)) {
                if (why) *why = "payload line " + std::to_string(i + 1) + ": " + reason;
                return false;
            }
        }
        return true;
    }

    std::string pending_lines(const connection& c) const {
        std::string out;
        for (const auto& m : c.queue) out += "  " + m.text + "\n";
        return out.empty() ? "  (none)\n" : out;
    }

    void consumed(connection& c, const message& m) {
        const auto w = split(m.text);
        // Where this server's switchboards are, by cookie (XFR, RNG).
        if (w[0] == "XFR" && w.size() >= 6 && w[2] == "SB") switchboards_[w[5]] = w[3];
        if (w[0] == "RNG" && w.size() >= 5) switchboards_[w[4]] = w[2];
        if (w[0] == "USR" && w.size() >= 5 && w[2] == "TWN" && w[3] == "S") c.twn_params = join(w, 4);
    }

    void expect(const step& s) {
        auto it = conns_.find(s.connection);
        if (it == conns_.end() || it->second.fd < 0) {
            if (!open(s, "")) return;
            it = conns_.find(s.connection);
        }
        connection& c = it->second;
        if (s.text == "(flush)" && s.line == 0) {
            c.queue.clear();
            return;
        }
        const auto deadline = clock_type::now() + o_.timeout;
        if (s.text == "(closed)") {
            for (;;) {
                if (!o_.loose && !c.queue.empty()) {
                    fail(s, "unexpected", "(closed)", c.queue.front().text, "the server sent more before closing:\n" + pending_lines(c), false);
                    c.queue.clear();
                }
                if (c.closed) return;
                if (clock_type::now() >= deadline) {
                    fail(s, "timeout", "(closed)", "", "the connection is still open after " + std::to_string(o_.timeout.count()) + " ms", true);
                    return;
                }
                pump(deadline);
            }
        }
        const auto want = split(s.text);
        std::optional<std::string> trid = transaction_id(s.text);
        if (want.size() > 1 && want[0] == "*" && all_digits(want[1])) trid = want[1];
        if (o_.loose && !trid && s.text.find("${") == std::string::npos) return;  // nothing the client waits for
        std::optional<clock_type::time_point> grace;
        for (;;) {
            const message* first = nullptr;
            std::string first_why;
            for (auto m = c.queue.begin(); m != c.queue.end(); ++m) {
                if (!candidate(want, trid, *m)) continue;
                captures fresh;
                std::string why;
                if (full_match(s, *m, fresh, &why)) {
                    for (auto& [k, v] : fresh) captures_[k] = v;
                    consumed(c, *m);
                    c.queue.erase(m);
                    return;
                }
                if (!first) {
                    first = &*m;
                    first_why = why;
                }
            }
            const auto now = clock_type::now();
            if (first) {
                // The same transaction id with another command (an error for
                // a reply, say) cannot get better by waiting.
                const bool final = trid && split(first->text)[0] != want[0];
                if (!grace) grace = now + o_.grace;
                if (final || now >= *grace || c.closed) {
                    fail(s, "mismatch", s.text, first->text, first_why, false);
                    for (auto m = c.queue.begin(); m != c.queue.end(); ++m) {
                        if (&*m == first) {
                            c.queue.erase(m);
                            break;
                        }
                    }
                    return;
                }
            }
            if (c.closed) {
                fail(s, "closed", s.text, "(closed)", "the server closed the connection; lines received and not matched:\n" + pending_lines(c), true);
                return;
            }
            if (now >= deadline) {
                fail(s, "timeout", s.text, "", "nothing matching within " + std::to_string(o_.timeout.count()) +
                                                   " ms; lines received and not matched:\n" + pending_lines(c), true);
                return;
            }
            pump(grace ? std::min(*grace, deadline) : deadline);
        }
    }

    const transcript& t_;
    const run_options& o_;
    clock_type::time_point start_;
    std::map<std::string, connection> conns_;
    captures captures_;
    std::map<std::string, std::string> switchboards_;  // cookie -> host:port
    std::map<std::pair<std::string, std::string>, std::pair<std::string, clock_type::time_point>> pending_;
    run_result result_;
    bool fatal_ = false;
};

}  // namespace

run_result run(const transcript& t, const run_options& options) {
    run_options o = options;
    for (const auto& u : t.users) o.passwords.emplace(u.handle, u.password);
    return runner(t, o).go();
}

std::string describe(const failure& f) {
    std::string out = f.place + "\n  " + f.kind;
    if (!f.expected.empty()) out += "\n  expected: " + f.expected;
    if (!f.actual.empty()) out += "\n  received: " + f.actual;
    if (!f.detail.empty()) out += "\n  " + f.detail;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

std::optional<parse_error> read_mapping(const std::string& path, std::map<std::string, std::string>& passwords,
                                        std::map<std::string, std::string>& renames) {
    std::ifstream in(path);
    if (!in) return parse_error{path, 0, "cannot open"};
    std::string raw;
    for (int n = 1; std::getline(in, raw); ++n) {
        if (!raw.empty() && raw.back() == '\r') raw.pop_back();
        std::istringstream words(raw);
        std::string handle, password, renamed, extra;
        words >> handle;
        if (handle.empty() || handle[0] == '#') continue;
        words >> password >> renamed >> extra;
        if (password.empty() || !extra.empty()) {
            return parse_error{path, n, "expected HANDLE PASSWORD [NEW-HANDLE]"};
        }
        if (!renamed.empty() && renamed != handle) {
            renames[handle] = renamed;
            passwords[renamed] = password;
        } else {
            passwords[handle] = password;
        }
    }
    return std::nullopt;
}

namespace {

// A switchboard connection that presents a cookie nothing in the trace
// captured (a recorded switchboard connection on its own): a hidden
// notification connection signs in as its user first and asks for a
// switchboard, whose cookie and address it then uses.
int add_switchboard_preludes(transcript& t, const std::map<std::string, std::string>& passwords) {
    int dialect = 8;
    if (t.dialect.starts_with("MSNP")) dialect = std::max(8, std::atoi(t.dialect.c_str() + 4));
    const std::string v = "MSNP" + std::to_string(dialect);
    std::set<std::string> seen;
    int added = 0;
    for (std::size_t i = 0; i < t.steps.size(); ++i) {
        const step s = t.steps[i];
        if (!seen.insert(s.connection).second || !s.client) continue;
        const auto w = split(s.text);
        if (w[0] != "USR" || w.size() != 4 || !w[3].starts_with("${") || !w[3].ends_with("}") || w[3].starts_with("${=")) continue;
        const std::string var = w[3].substr(2, w[3].size() - 3);
        const bool captured = std::any_of(t.steps.begin(), t.steps.begin() + static_cast<std::ptrdiff_t>(i), [&](const step& x) {
            return !x.client && x.text.find("${" + var + "}") != std::string::npos;
        });
        if (captured || !passwords.contains(w[2])) continue;
        const std::string ns = s.connection + "~ns";
        std::vector<step> steps;
        auto c = [&](std::string text) { steps.push_back(step{0, std::nullopt, ns, true, std::move(text), {}, false}); };
        auto sv = [&](std::string text) { steps.push_back(step{0, std::nullopt, ns, false, std::move(text), {}, false}); };
        c("VER 1 " + v + " CVR0");
        sv("VER 1 " + v + " ...");
        c("CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 7.0.0816 MSMSGS " + w[2]);
        sv("CVR 2 ...");
        c("USR 3 TWN I " + w[2]);
        sv("USR 3 TWN S ...");
        c("USR 4 TWN S ${ticket:" + w[2] + "}");
        sv("USR 4 OK ...");
        c("CHG 5 NLN 0");  // switchboards are for users who are online (913 otherwise)
        sv("CHG 5 NLN ...");
        c("XFR 6 SB");
        sv("XFR 6 SB * CKI ${" + var + "} ...");
        sv("(flush)");
        t.steps.insert(t.steps.begin() + static_cast<std::ptrdiff_t>(i), steps.begin(), steps.end());
        i += steps.size();
        ++added;
    }
    return added;
}

}  // namespace

int add_login_prelude(transcript& t, const std::map<std::string, std::string>& passwords) {
    const int switchboards = add_switchboard_preludes(t, passwords);
    // Only for a trace with no login anywhere in it.
    if (std::any_of(t.steps.begin(), t.steps.end(), [](const step& s) { return s.client && s.text.starts_with("VER "); })) {
        return switchboards;
    }
    // Which connections are notification connections without a login.
    std::map<std::string, std::vector<std::size_t>> by_conn;
    for (std::size_t i = 0; i < t.steps.size(); ++i) by_conn[t.steps[i].connection].push_back(i);
    int dialect = 11;  // the 2005 capture's (msnp-reference §6.1)
    if (t.dialect.starts_with("MSNP")) dialect = std::atoi(t.dialect.c_str() + 4);
    std::string own;  // the user of the trace: the one answering or opening switchboards
    std::set<std::string> contacts;
    for (const auto& s : t.steps) {
        const auto w = split(s.text);
        if (s.client && ((w[0] == "ANS" && w.size() >= 5) || (w[0] == "USR" && w.size() == 4)) && own.empty()) own = w[2];
        for (const auto& token : w) {
            if (token.find('@') != std::string::npos && token.find('=') == std::string::npos && token.find("${") == std::string::npos) {
                contacts.insert(token.starts_with("1:") ? token.substr(2) : token);
            }
        }
    }
    if (own.empty() && !passwords.empty()) own = passwords.begin()->first;
    if (own.empty()) return 0;
    contacts.erase(own);
    std::vector<step> prelude;
    int added = 0;
    for (const auto& [name, indices] : by_conn) {
        const step* first_client = nullptr;
        for (auto i : indices) {
            if (t.steps[i].client) {
                first_client = &t.steps[i];
                break;
            }
        }
        if (!first_client) continue;
        const auto w = split(first_client->text);
        if (w[0] == "VER" || w[0] == "ANS" || (w[0] == "USR" && w.size() == 4)) continue;
        ++added;
        auto c = [&](std::string text) { prelude.push_back(step{0, std::nullopt, name, true, std::move(text), {}, false}); };
        auto sv = [&](std::string text) { prelude.push_back(step{0, std::nullopt, name, false, std::move(text), {}, false}); };
        const std::string v = "MSNP" + std::to_string(dialect);
        c("VER 1 " + v + " CVR0");
        sv("VER 1 " + v + " ...");
        if (dialect >= 8) {
            c("CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 7.0.0816 MSMSGS " + own);
            sv("CVR 2 ...");
            c("USR 3 TWN I " + own);
            sv("USR 3 TWN S ...");
            c("USR 4 TWN S ${ticket:" + own + "}");
            sv("USR 4 OK ...");
        } else {
            c("USR 3 MD5 I " + own);
            sv("USR 3 MD5 S ${prelude_salt}");
            c("USR 4 MD5 S ${md5:prelude_salt}");
            sv("USR 4 OK ...");
        }
        int trid = 5;
        for (const auto& h : contacts) {
            for (const char* list : {"FL", "AL"}) {
                const std::string tr = std::to_string(trid++);
                if (dialect >= 10) {
                    c("ADC " + tr + " " + list + " N=" + h + (std::string(list) == "FL" ? " F=" + h : ""));
                } else {
                    c("ADD " + tr + " " + list + " " + h + " " + h);
                }
                sv("* " + tr + " ...");  // added, or already there (215): either will do
            }
        }
        const std::string tr = std::to_string(trid);
        c("CHG " + tr + " NLN 0");
        sv("CHG " + tr + " NLN ...");
        // What the login brought that the trace does not speak of (the
        // profile, list lines, presence of contacts) came before the CHG
        // reply on this connection: drop it.
        sv("(flush)");
        // The prelude goes just before the connection's first step.
        auto at = std::find_if(t.steps.begin(), t.steps.end(), [&](const step& s) { return s.connection == name; });
        t.steps.insert(at, prelude.begin(), prelude.end());
        prelude.clear();
    }
    return added + switchboards;
}

}  // namespace switchyard::replay
