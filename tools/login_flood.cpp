// Password-guessing flood against a gateway it starts itself, and how long a
// legitimate login takes meanwhile. Prints markdown tables; it is not a test.
//
//   login_flood [--gateway PATH] [--seconds S] [--http-flooders N] [--md5-flooders N]
//               [--addresses N] [--samples N] [--cost default|cheap] [--keep]
//
// The gateway is build/gateway/switchyard next to this binary's directory
// unless --gateway says otherwise (a gateway from before the throttling
// reads the same settings, so the two can be compared). It runs in a fresh
// temporary directory with ports 0 (read back from its `event=listening`
// lines), [gateway] threads = 1, the HTTPS listener on with tls = "legacy"
// and certificates made by fixtures/certs/make-certs.sh, and scrypt at the
// gateway's default cost (--cost cheap: N = 1024, r = 1). Accounts, made
// with the embedded backend's API before it starts: alice (the legitimate
// user) and victim, both with the MSNP2-7 MD5 record.
//
// Flooders (threads with blocking sockets, each from one of --addresses
// source addresses 127.0.0.2, 127.0.0.3, ...; Linux routes all of 127/8 to
// lo):
//   * --http-flooders keep-alive TLS connections sending GET /login2.srf
//     with a wrong password, one request at a time, back to back; half
//     against victim, half against alice;
//   * --md5-flooders connections doing VER, USR MD5 I, USR MD5 S with a
//     wrong response, again and again (the gateway closes after each 911).
// Legitimate logins (--samples each, one at a time, 100 ms apart), from
// 127.0.0.1 (which signed in as alice before the flood: a "known" address)
// and from a fresh address each time (127.0.1.x: a first attempt):
//   * Passport: a new TLS connection (TLS 1.0, AES128-SHA, like MSN 7 on
//     SChannel), GET /login2.srf with the right password, until the 200;
//   * MD5: a new NS connection, VER MSNP7, USR MD5 I / S, until USR OK.
// Each is measured without flood (baseline) and during the flood, in one
// run. Finally the last flooding address sends alice's right password over
// MD5: refused (911) while its wait lasts.
#include "gateway/backends/embedded/accounts.hpp"
#include "gateway/backends/embedded/object.hpp"
#include "gateway/backends/embedded/sqlite.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace embedded = switchyard::gateway::embedded;
using clock_type = std::chrono::steady_clock;

namespace {

const std::string password = "correct horse battery";

[[noreturn]] void die(const std::string& why) {
    std::fprintf(stderr, "login_flood: %s\n", why.c_str());
    std::exit(1);
}

struct options {
    fs::path gateway;
    int seconds = 20;
    int http_flooders = 80;
    int md5_flooders = 8;
    int addresses = 16;
    int samples = 20;
    bool cheap = false;
    bool keep = false;
};

double ms_since(clock_type::time_point t) { return std::chrono::duration<double, std::milli>(clock_type::now() - t).count(); }

std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

std::string url_encode(std::string_view s) {
    std::string out;
    for (const unsigned char c : s) {
        if (std::isalnum(c) || c == '.' || c == '-' || c == '_') {
            out.push_back(static_cast<char>(c));
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

std::string md5_hex(std::string_view text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(text.data(), text.size(), digest, &n, EVP_md5(), nullptr);
    std::string out;
    char buf[3];
    for (unsigned int i = 0; i < n; ++i) {
        std::snprintf(buf, sizeof buf, "%02x", digest[i]);
        out += buf;
    }
    return out;
}

// A blocking TCP connection from `source` (an address on lo) to 127.0.0.1.
int connect_from(const std::string& source, std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    const timeval timeout{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in from{};
    from.sin_family = AF_INET;
    ::inet_pton(AF_INET, source.c_str(), &from.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
        ::close(fd);
        return -1;
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// ------------------------------------------------------------------ HTTPS

SSL_CTX* client_context() {
    static SSL_CTX* ctx = [] {
        SSL_CTX* c = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_security_level(c, 0);
        SSL_CTX_set_min_proto_version(c, TLS1_VERSION);
        SSL_CTX_set_max_proto_version(c, TLS1_VERSION);
        SSL_CTX_set_cipher_list(c, "AES128-SHA:@SECLEVEL=0");
        SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
        SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);  // our own gateway on lo
        return c;
    }();
    return ctx;
}

class https_conn {
public:
    https_conn(const std::string& source, std::uint16_t port) : fd_(connect_from(source, port)) {
        if (fd_ < 0) return;
        ssl_ = SSL_new(client_context());
        SSL_set_fd(ssl_, fd_);
        if (SSL_connect(ssl_) != 1) close();
    }
    ~https_conn() { close(); }
    bool ok() const { return ssl_ != nullptr; }

    // One request, its response's status (0: the connection failed).
    int request(const std::string& text) {
        if (!ssl_) return 0;
        if (SSL_write(ssl_, text.data(), static_cast<int>(text.size())) <= 0) return fail();
        std::string in;
        char buf[4096];
        std::size_t head_end = std::string::npos;
        while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
            const int n = SSL_read(ssl_, buf, sizeof buf);
            if (n <= 0) return fail();
            in.append(buf, static_cast<std::size_t>(n));
        }
        std::size_t length = 0;
        const auto cl = in.find("Content-Length: ");
        if (cl != std::string::npos && cl < head_end) length = std::stoul(in.substr(cl + 16));
        while (in.size() < head_end + 4 + length) {
            const int n = SSL_read(ssl_, buf, sizeof buf);
            if (n <= 0) return fail();
            in.append(buf, static_cast<std::size_t>(n));
        }
        const int status = in.size() > 12 ? std::atoi(in.c_str() + 9) : 0;
        if (in.find("Connection: close") != std::string::npos && in.find("Connection: close") < head_end) close();
        return status;
    }

private:
    int fail() {
        close();
        return 0;
    }
    void close() {
        if (ssl_) {
            SSL_free(ssl_);
            ssl_ = nullptr;
        }
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }
    int fd_ = -1;
    SSL* ssl_ = nullptr;
};

std::string login2_request(std::string_view handle, std::string_view pwd) {
    return "GET /login2.srf HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Authorization: Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in=" +
           url_encode(handle) + ",pwd=" + url_encode(pwd) +
           ",ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1\r\nUser-Agent: MSMSGS\r\nConnection: Keep-Alive\r\n"
           "Cache-Control: no-cache\r\n\r\n";
}

// ------------------------------------------------------------------ MSNP

class msnp_conn {
public:
    msnp_conn(const std::string& source, std::uint16_t port) : fd_(connect_from(source, port)) {}
    ~msnp_conn() {
        if (fd_ >= 0) ::close(fd_);
    }
    bool ok() const { return fd_ >= 0; }
    bool send(const std::string& line) {
        return fd_ >= 0 && ::send(fd_, line.data(), line.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(line.size());
    }
    // The next line without CRLF; nullopt once the connection is closed.
    std::optional<std::string> line() {
        for (;;) {
            if (const auto end = buf_.find("\r\n"); end != std::string::npos) {
                std::string l = buf_.substr(0, end);
                buf_.erase(0, end + 2);
                return l;
            }
            char chunk[4096];
            const ssize_t n = fd_ < 0 ? 0 : ::recv(fd_, chunk, sizeof chunk, 0);
            if (n <= 0) return std::nullopt;
            buf_.append(chunk, static_cast<std::size_t>(n));
        }
    }

private:
    int fd_;
    std::string buf_;
};

// One MD5 login (msnp-reference section 3.2): true on USR OK.
bool md5_login(const std::string& source, std::uint16_t port, const std::string& handle, const std::string& pwd) {
    msnp_conn c(source, port);
    if (!c.ok() || !c.send("VER 1 MSNP7 MSNP6 CVR0\r\n")) return false;
    const auto ver = c.line();
    if (!ver || !ver->starts_with("VER 1 MSNP7")) return false;
    if (!c.send("USR 2 MD5 I " + handle + "\r\n")) return false;
    const auto salt = c.line();
    if (!salt || !salt->starts_with("USR 2 MD5 S ")) return false;
    if (!c.send("USR 3 MD5 S " + md5_hex(salt->substr(12) + pwd) + "\r\n")) return false;
    const auto ok = c.line();
    return ok && ok->starts_with("USR 3 OK ");
}

// ------------------------------------------------------------------ gateway

std::string log_field(std::string_view line, std::string_view key) {
    const std::string k = " " + std::string(key) + "=";
    const auto at = line.find(k);
    if (at == std::string_view::npos) return {};
    const auto start = at + k.size();
    return std::string(line.substr(start, line.find(' ', start) - start));
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

class gateway_process {
public:
    gateway_process(const options& opt, fs::path dir) : opt_(opt), dir_(std::move(dir)) {
        const fs::path certs = dir_ / "certs";
        const std::string make = std::string(SWITCHYARD_SOURCE_DIR) + "/fixtures/certs/make-certs.sh";
        if (std::system(("/bin/sh '" + make + "' '" + certs.string() + "'").c_str()) != 0) die("make-certs.sh failed");
        std::ofstream(dir_ / "routes.toml") << "[default]\nbackend = \"embedded\"\n";
        std::ofstream conf(dir_ / "switchyard.toml");
        conf << "[gateway]\ndata_dir = \"data\"\nroutes_file = \"routes.toml\"\nthreads = 1\nlog_level = \"info\"\n\n"
                "[listeners.msnp]\nport = 0\n[listeners.ws]\nport = 0\n[listeners.admin]\nport = 0\n"
                "[listeners.https]\nenabled = true\nport = 0\ntls = \"legacy\"\n\n"
                "[tls.legacy]\ncertificate = \""
             << (certs / "legacy.pem").string() << "\"\nprivate_key = \"" << (certs / "legacy.key").string()
             << "\"\n\n[limits]\ncommands_per_second = 100000\n\n"
                "[[keys]]\nid = \"flood1\"\nsecret = \"bG9hZC10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Ng==\"\n";
        if (opt_.cheap) conf << "\n[accounts]\nscrypt_n = 1024\nscrypt_r = 1\n";
    }
    ~gateway_process() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
    }

    void add_users(const std::vector<std::string>& handles) {
        fs::create_directories(dir_ / "data");
        embedded::database db(embedded::database_file(dir_ / "data", "embedded"), embedded::durability::normal);
        embedded::create_schema(db);
        if (db.failed()) die("schema: " + db.error());
        const embedded::kdf_params cost = opt_.cheap ? embedded::kdf_params{1024, 1, 1} : embedded::kdf_params{};
        embedded::accounts accounts(db, cost);
        for (const auto& h : handles) {
            if (auto r = accounts.add(h, password, true); !r) die("add " + h + ": " + r.error().message);
        }
    }

    void start() {
        log_file_ = dir_ / "gateway.log";
        const int log_fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (log_fd < 0) die("cannot open " + log_file_.string());
        const std::string binary = opt_.gateway.string();
        const std::string conf = (dir_ / "switchyard.toml").string();
        pid_ = ::fork();
        if (pid_ < 0) die("fork failed");
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
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
            std::istringstream lines(read_file(log_file_));
            bool started = false;
            for (std::string line; std::getline(lines, line);) {
                if (line.find("event=listening") != std::string::npos) {
                    ports_[log_field(line, "listener")] = static_cast<std::uint16_t>(std::stoi(log_field(line, "port")));
                }
                if (line.find("event=started") != std::string::npos) started = true;
            }
            if (started && ports_.contains("msnp") && ports_.contains("https")) return;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                die("gateway exited during start-up; its log:\n" + read_file(log_file_));
            }
            if (clock_type::now() > deadline) die("gateway did not start within 30 s");
            std::this_thread::sleep_for(10ms);
        }
    }

    std::uint16_t port(const std::string& listener) const { return ports_.at(listener); }
    const fs::path& log_file() const { return log_file_; }

private:
    const options& opt_;
    fs::path dir_;
    pid_t pid_ = -1;
    fs::path log_file_;
    std::map<std::string, std::uint16_t> ports_;
};

// ------------------------------------------------------------------ measuring

struct samples {
    std::vector<double> ms;
    int failed = 0;
};

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

// `count` logins one at a time, 100 ms apart; `source(i)` names the address.
template <class Login, class Source> samples measure(int count, Source source, Login login) {
    samples s;
    for (int i = 0; i < count; ++i) {
        const auto t = clock_type::now();
        if (login(source(i))) {
            s.ms.push_back(ms_since(t));
        } else {
            ++s.failed;
        }
        std::this_thread::sleep_for(100ms);
    }
    return s;
}

struct flood_counts {
    std::mutex m;
    std::map<std::string, long> by_outcome;
    void add(const std::string& k) {
        const std::lock_guard l(m);
        ++by_outcome[k];
    }
};

std::string flooder_address(int i, int addresses) { return "127.0.0." + std::to_string(2 + i % addresses); }

}  // namespace

int main(int argc, char** argv) {
    options opt;
    opt.gateway = fs::path(argv[0]).parent_path().parent_path() / "gateway" / "switchyard";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto next = [&]() -> std::string {
            if (i + 1 >= argc) die(a + " needs a value");
            return argv[++i];
        };
        if (a == "--gateway") opt.gateway = next();
        else if (a == "--seconds") opt.seconds = std::stoi(next());
        else if (a == "--http-flooders") opt.http_flooders = std::stoi(next());
        else if (a == "--md5-flooders") opt.md5_flooders = std::stoi(next());
        else if (a == "--addresses") opt.addresses = std::max(1, std::stoi(next()));
        else if (a == "--samples") opt.samples = std::stoi(next());
        else if (a == "--cost") opt.cheap = next() == "cheap";
        else if (a == "--keep") opt.keep = true;
        else die("unknown option " + a + " (see the comment at the top of tools/login_flood.cpp)");
    }
    opt.gateway = fs::absolute(opt.gateway);
    std::signal(SIGPIPE, SIG_IGN);
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }

    char tmpl[] = "/tmp/login_flood.XXXXXX";
    if (!::mkdtemp(tmpl)) die("mkdtemp failed");
    const fs::path dir = tmpl;
    int status = 0;
    {
        gateway_process gw(opt, dir);
        const std::string alice = "alice@flood.example";
        const std::string victim = "victim@flood.example";
        const auto t_users = clock_type::now();
        gw.add_users({alice, victim});
        const double hash_ms = ms_since(t_users) / 2;
        gw.start();
        const std::uint16_t https = gw.port("https");
        const std::uint16_t msnp = gw.port("msnp");

        const auto passport = [&](const std::string& source) {
            const auto t = clock_type::now();
            https_conn c(source, https);
            const int answer = c.ok() ? c.request(login2_request(alice, password)) : -1;
            if (answer != 200) {
                // -1: no TLS connection; 0: the connection failed before an answer.
                std::fprintf(stderr, "legitimate login2.srf from %s: status %d after %s ms\n", source.c_str(), answer,
                             fixed(ms_since(t), 0).c_str());
            }
            return answer == 200;
        };
        const auto md5 = [&](const std::string& source) { return md5_login(source, msnp, alice, password); };
        const auto known = [](int) { return std::string("127.0.0.1"); };
        int fresh_counter = 0;
        const auto fresh = [&](int) { return "127.0.1." + std::to_string(1 + fresh_counter++ % 250); };

        // 127.0.0.1 signs in once, so it is an address alice used before.
        if (!passport("127.0.0.1")) die("the first login failed; see " + gw.log_file().string());

        std::map<std::string, samples> results;
        results["baseline passport known"] = measure(opt.samples, known, passport);
        results["baseline passport fresh"] = measure(opt.samples, fresh, passport);
        results["baseline md5 known"] = measure(opt.samples, known, md5);
        results["baseline md5 fresh"] = measure(opt.samples, fresh, md5);

        std::atomic<bool> stop{false};
        flood_counts http_counts, md5_counts;
        std::vector<std::thread> flooders;
        for (int i = 0; i < opt.http_flooders; ++i) {
            flooders.emplace_back([&, i] {
                const std::string source = flooder_address(i, opt.addresses);
                const std::string target = i % 2 == 0 ? victim : alice;
                std::optional<https_conn> c;
                int n = 0;
                while (!stop) {
                    if (!c || !c->ok()) c.emplace(source, https);
                    const int st = c->request(login2_request(target, "wrong guess " + std::to_string(n++)));
                    http_counts.add(st == 0 ? "connection failed" : std::to_string(st));
                    if (st == 0) std::this_thread::sleep_for(10ms);
                }
            });
        }
        for (int i = 0; i < opt.md5_flooders; ++i) {
            flooders.emplace_back([&, i] {
                const std::string source = flooder_address(i + opt.http_flooders, opt.addresses);
                const std::string target = i % 2 == 0 ? victim : alice;
                int n = 0;
                while (!stop) {
                    const bool in = md5_login(source, msnp, target, "wrong guess " + std::to_string(n++));
                    md5_counts.add(in ? "USR OK (guessed!)" : "refused (911 or closed)");
                }
            });
        }
        std::this_thread::sleep_for(2s);  // the flood under way
        const auto flood_start = clock_type::now();
        results["flood passport known"] = measure(opt.samples, known, passport);
        results["flood passport fresh"] = measure(opt.samples, fresh, passport);
        results["flood md5 known"] = measure(opt.samples, known, md5);
        results["flood md5 fresh"] = measure(opt.samples, fresh, md5);
        const double rest = opt.seconds * 1000.0 - ms_since(flood_start);
        if (rest > 0) std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<long>(rest)));
        const double flood_seconds = ms_since(flood_start) / 1000 + 2;
        stop = true;
        for (auto& t : flooders) t.join();

        // The right password, from an address that has just been guessing.
        const std::string guesser = flooder_address(opt.http_flooders + opt.md5_flooders - 1, opt.addresses);
        const bool right_after = md5_login(guesser, msnp, alice, password);

        std::printf("## login_flood\n\n");
        std::printf("gateway `%s`, scrypt %s (one hash took %s ms when the accounts were made), [gateway] threads = 1, "
                    "%d HTTPS flooders and %d MD5 flooders from %d addresses, flood %s s, %d samples per row\n\n",
                    opt.gateway.c_str(), opt.cheap ? "N=1024 r=1" : "default cost (N=2^17 r=8)", fixed(hash_ms, 0).c_str(),
                    opt.http_flooders, opt.md5_flooders, opt.addresses, fixed(flood_seconds, 1).c_str(), opt.samples);
        std::printf("| legitimate login | from | flood | ok | failed | p50 ms | p99 ms | max ms |\n");
        std::printf("|---|---|---|---:|---:|---:|---:|---:|\n");
        for (const char* service : {"passport", "md5"}) {
            for (const char* from : {"known", "fresh"}) {
                for (const char* phase : {"baseline", "flood"}) {
                    const auto& s = results[std::string(phase) + " " + service + " " + from];
                    std::printf("| %s | %s | %s | %zu | %d | %s | %s | %s |\n",
                                std::string(service) == "md5" ? "MSNP7 MD5" : "Passport login2.srf",
                                std::string(from) == "known" ? "127.0.0.1 (signed in before)" : "new address each",
                                std::string(phase) == "flood" ? "yes" : "no", s.ms.size(), s.failed,
                                fixed(percentile(s.ms, 0.5), 1).c_str(), fixed(percentile(s.ms, 0.99), 1).c_str(),
                                fixed(s.ms.empty() ? 0 : *std::max_element(s.ms.begin(), s.ms.end()), 1).c_str());
                }
            }
        }
        std::printf("\n| flood | outcome | count | per second |\n|---|---|---:|---:|\n");
        for (auto* counts : {&http_counts, &md5_counts}) {
            for (const auto& [k, v] : counts->by_outcome) {
                std::printf("| %s | %s | %ld | %s |\n", counts == &http_counts ? "login2.srf wrong password" : "MD5 wrong response",
                            k.c_str(), v, fixed(static_cast<double>(v) / flood_seconds, 1).c_str());
            }
        }
        std::printf("\nright MD5 password from the last guessing address (%s) right after the flood: %s\n",
                    guesser.c_str(), right_after ? "signed in" : "refused");
        std::printf("gateway log: %s\n", gw.log_file().c_str());
        if (!results["baseline passport known"].ms.size()) status = 1;
    }
    if (!opt.keep) {
        std::error_code ec;
        fs::remove_all(dir, ec);
    } else {
        std::printf("kept %s\n", dir.c_str());
    }
    return status;
}
