// The real switchyard binary's Passport services on its HTTPS listener,
// reached over real TLS: an old client's TLS 1.0 with AES128-SHA and no SNI
// on the legacy profile, and a default TLS 1.2+ client. Certificates come
// from fixtures/certs/make-certs.sh, made into the test's own directory.
#include "child_process.hpp"

#include "gateway/login/tokens.hpp"

#include <catch2/catch.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

using namespace switchyard::test;
namespace fs = std::filesystem;
namespace gw = switchyard::gateway;

namespace {

const std::string binary = SWITCHYARD_BINARY;
const fs::path source_dir = SWITCHYARD_SOURCE_DIR;

// The gateway signs with this key, so the test can check its tickets.
const gw::config::hmac_key test_key{"test1", "0123456789abcdef0123456789abcdef"};
const char* const test_key_base64 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

bool contains(std::string_view haystack, std::string_view needle) { return haystack.find(needle) != std::string_view::npos; }

// The text between `before` and the next `after`, or "" when absent.
std::string between(std::string_view s, std::string_view before, std::string_view after) {
    const auto start = s.find(before);
    if (start == std::string_view::npos) return {};
    const auto end = s.find(after, start + before.size());
    if (end == std::string_view::npos) return {};
    return std::string(s.substr(start + before.size(), end - start - before.size()));
}

std::string openssl_errors() {
    std::string out;
    while (const unsigned long e = ERR_get_error()) {
        char text[256];
        ERR_error_string_n(e, text, sizeof text);
        out += text;
        out += '\n';
    }
    return out;
}

struct response {
    int status = 0;
    std::string head;  // status line and header lines, each ending in CRLF
    std::string body;
};

enum class client_kind {
    old_messenger,  // TLS 1.0 only, AES128-SHA, security level 0, no SNI, no tickets: MSN 5.0-7.5 on SChannel
    current,        // TLS 1.2 or later, OpenSSL's defaults
};

// A blocking TLS client on 127.0.0.1 that trusts only the test certificate
// and checks it names 127.0.0.1. Socket timeouts bound every read and write.
class tls_client {
public:
    // From `source` when given (any address of 127.0.0.0/8), else 127.0.0.1.
    tls_client(unsigned short port, const fs::path& trusted, client_kind kind, const std::string& source = {}) {
        ctx_.reset(SSL_CTX_new(TLS_client_method()));
        REQUIRE(ctx_);
        if (kind == client_kind::old_messenger) {
            SSL_CTX_set_security_level(ctx_.get(), 0);
            SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_VERSION);
            SSL_CTX_set_max_proto_version(ctx_.get(), TLS1_VERSION);
            REQUIRE(SSL_CTX_set_cipher_list(ctx_.get(), "AES128-SHA:@SECLEVEL=0") == 1);
            SSL_CTX_set_options(ctx_.get(), SSL_OP_NO_TICKET);  // SChannel resumes by session id only
        } else {
            SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_2_VERSION);
        }
        REQUIRE(SSL_CTX_load_verify_locations(ctx_.get(), trusted.c_str(), nullptr) == 1);
        SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);

        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        const timeval timeout{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        if (!source.empty()) {
            sockaddr_in from{};
            from.sin_family = AF_INET;
            REQUIRE(::inet_pton(AF_INET, source.c_str(), &from.sin_addr) == 1);
            REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) == 0);
        }
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);

        ssl_.reset(SSL_new(ctx_.get()));
        REQUIRE(ssl_);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), "127.0.0.1");
        SSL_set_fd(ssl_.get(), fd_);
    }

    ~tls_client() {
        ssl_.reset();
        if (fd_ >= 0) ::close(fd_);
    }

    // Offers a session saved from an earlier connection, as a returning
    // client does. Each connection gets its own copy: OpenSSL marks a
    // session unresumable when one connection using it ends badly.
    void resume(const std::string& saved) {
        const auto* der = reinterpret_cast<const unsigned char*>(saved.data());
        SSL_SESSION* session = d2i_SSL_SESSION(nullptr, &der, static_cast<long>(saved.size()));
        REQUIRE(session);
        REQUIRE(SSL_set_session(ssl_.get(), session) == 1);
        SSL_SESSION_free(session);
    }
    // This connection's session, saved for a later connection.
    std::string session() const {
        SSL_SESSION* session = SSL_get_session(ssl_.get());
        REQUIRE(session);
        std::string saved(static_cast<std::size_t>(i2d_SSL_SESSION(session, nullptr)), '\0');
        auto* out = reinterpret_cast<unsigned char*>(saved.data());
        REQUIRE(i2d_SSL_SESSION(session, &out) == static_cast<int>(saved.size()));
        return saved;
    }
    bool resumed() const { return SSL_session_reused(ssl_.get()) == 1; }

    // Sends close_notify and reads until the server's close_notify; false
    // when the server ends the connection without one.
    bool close_cleanly() {
        SSL_shutdown(ssl_.get());
        return ends_cleanly();
    }
    // Reads until the server ends the connection: true for close_notify.
    bool ends_cleanly() {
        char chunk[256];
        while (SSL_read(ssl_.get(), chunk, sizeof chunk) > 0) {
        }
        return (SSL_get_shutdown(ssl_.get()) & SSL_RECEIVED_SHUTDOWN) != 0;
    }

    // True when the handshake succeeds; otherwise `error()` says why.
    bool handshake() {
        if (SSL_connect(ssl_.get()) == 1) return true;
        error_ = openssl_errors();
        return false;
    }
    const std::string& error() const { return error_; }
    int version() const { return SSL_version(ssl_.get()); }
    std::string cipher() const { return SSL_get_cipher_name(ssl_.get()); }
    long verify_result() const { return SSL_get_verify_result(ssl_.get()); }

    void send(std::string_view bytes) {
        REQUIRE(SSL_write(ssl_.get(), bytes.data(), static_cast<int>(bytes.size())) == static_cast<int>(bytes.size()));
    }

    // One response, framed by Content-Length (the server always sends it).
    response read_response() {
        while (!contains(buffer_, "\r\n\r\n")) REQUIRE(read_more());
        response r;
        const auto head_end = buffer_.find("\r\n\r\n") + 4;
        r.head = buffer_.substr(0, head_end - 2);
        r.status = std::stoi(r.head.substr(9, 3));
        std::string lower = r.head;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        const std::string length = between(lower, "\r\ncontent-length: ", "\r\n");
        REQUIRE_FALSE(length.empty());
        const std::size_t size = std::stoul(length);
        while (buffer_.size() < head_end + size) REQUIRE(read_more());
        r.body = buffer_.substr(head_end, size);
        buffer_.erase(0, head_end + size);
        return r;
    }

    response request(std::string_view bytes) {
        send(bytes);
        return read_response();
    }

    // Whether any response bytes have arrived, without waiting.
    bool has_data() {
        if (!buffer_.empty() || SSL_pending(ssl_.get()) > 0) return true;
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, 0) > 0;
    }

private:
    bool read_more() {
        char chunk[4096];
        const int n = SSL_read(ssl_.get(), chunk, sizeof chunk);
        if (n <= 0) return false;
        buffer_.append(chunk, static_cast<std::size_t>(n));
        return true;
    }

    struct ctx_free {
        void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
    };
    struct ssl_free {
        void operator()(SSL* s) const { SSL_free(s); }
    };
    std::unique_ptr<SSL_CTX, ctx_free> ctx_;
    std::unique_ptr<SSL, ssl_free> ssl_;
    int fd_ = -1;
    std::string buffer_;
    std::string error_;
};

// The value of header `name`, spelled exactly so ("" when absent).
std::string header(const response& r, std::string_view name) {
    return between(r.head, "\r\n" + std::string(name) + ": ", "\r\n");
}

// A gateway with the HTTPS listener on a free port, its certificates, and
// accounts made with the operator command (cheap scrypt).
struct passport_gateway {
    temp_dir dir;
    fs::path settings = dir.path / "switchyard.toml";
    std::optional<child_process> proc;
    std::map<std::string, unsigned short> ports;

    explicit passport_gateway(std::string_view profile, std::string_view accounts = "scrypt_n = 1024\n",
                              unsigned threads = 2) {
        const auto certs = run_to_completion({"/bin/sh", (source_dir / "fixtures/certs/make-certs.sh").string(),
                                              (dir.path / "certs").string()});
        INFO(certs.output);
        REQUIRE(certs.status == 0);
        write_file(settings, R"([gateway]
data_dir = "data"
routes_file = "routes.toml"
threads = )" + std::to_string(threads) + R"(

[listeners.msnp]
port = 0
[listeners.ws]
port = 0
[listeners.admin]
port = 0
[listeners.https]
enabled = true
port = 0
tls = ")" + std::string(profile) + R"("

[tls.legacy]
certificate = "certs/legacy.pem"
private_key = "certs/legacy.key"
[tls.modern]
certificate = "certs/modern.pem"
private_key = "certs/modern.key"

[[keys]]
id = "test1"
secret = ")" + std::string(test_key_base64) + R"("

[accounts]
)" + std::string(accounts));
        write_file(dir.path / "routes.toml", "[default]\nbackend = \"embedded\"\n");
    }

    void add_user(const std::string& handle, const std::string& password) {
        const auto r = run_to_completion({binary, "user", "add", handle, "-c", settings.string()}, password + "\n");
        INFO(r.output);
        REQUIRE(r.status == 0);
    }

    void start() {
        proc.emplace(std::vector<std::string>{binary, "run", "-c", settings.string()});
        for (int i = 0; i < 4; ++i) {
            const auto line = proc->wait_for_line("event=listening");
            INFO(proc->output());
            REQUIRE(line);
            ports[log_field(*line, "listener")] = static_cast<unsigned short>(std::stoi(log_field(*line, "port")));
        }
        INFO(proc->output());
        REQUIRE(proc->wait_for_line("event=started"));
    }

    unsigned short https() const { return ports.at("https"); }
    fs::path certificate(std::string_view profile) const { return dir.path / "certs" / (std::string(profile) + ".pem"); }
};

std::string nexus_request(unsigned short port) {
    return "GET /rdr/pprdr.asp HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n\r\n";
}

// As MSN Messenger sends it (msnp-reference section 3.3 item 2), with the
// parameters the NS gave in USR TWN S appended.
std::string login2_request(unsigned short port, std::string_view sign_in, std::string_view pwd) {
    return "GET /login2.srf HTTP/1.1\r\n"
           "Authorization: Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in=" +
           std::string(sign_in) + ",pwd=" + std::string(pwd) +
           ",ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1\r\n"
           "User-Agent: MSMSGS\r\nHost: 127.0.0.1:" +
           std::to_string(port) + "\r\nConnection: Keep-Alive\r\nCache-Control: no-cache\r\n\r\n";
}

// An MSN 7.5-style RequestMultipleSecurityTokens (msnp-reference sections
// 3.4, 3.6): Passport.NET/tb and messenger.msn.com, in that order.
std::string rst_request(unsigned short port, std::string_view username_xml, std::string_view password_xml) {
    const std::string body =
        R"(<?xml version="1.0" encoding="UTF-8"?>)"
        R"(<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" )"
        R"(xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing" )"
        R"(xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust"><Header>)"
        R"(<ps:AuthInfo xmlns:ps="http://schemas.microsoft.com/Passport/SoapServices/PPCRL" Id="PPAuthInfo">)"
        R"(<ps:HostingApp>{7108E71A-9926-4FCB-BCC9-9A9D3F32E423}</ps:HostingApp><ps:BinaryVersion>4</ps:BinaryVersion>)"
        R"(<ps:UIVersion>1</ps:UIVersion><ps:Cookies></ps:Cookies><ps:RequestParams>AQAAAAIAAABsYwQAAAAzMDg0</ps:RequestParams>)"
        R"(</ps:AuthInfo><wsse:Security><wsse:UsernameToken Id="user"><wsse:Username>)" +
        std::string(username_xml) + "</wsse:Username><wsse:Password>" + std::string(password_xml) +
        R"(</wsse:Password></wsse:UsernameToken></wsse:Security></Header><Body>)"
        R"(<ps:RequestMultipleSecurityTokens xmlns:ps="http://schemas.microsoft.com/Passport/SoapServices/PPCRL" Id="RSTS">)"
        R"(<wst:RequestSecurityToken Id="RST0"><wst:RequestType>http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue</wst:RequestType>)"
        R"(<wsp:AppliesTo><wsa:EndpointReference><wsa:Address>http://Passport.NET/tb</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>)"
        R"(</wst:RequestSecurityToken><wst:RequestSecurityToken Id="RST1"><wst:RequestType>http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue</wst:RequestType>)"
        R"(<wsp:AppliesTo><wsa:EndpointReference><wsa:Address>messenger.msn.com</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>)"
        R"(<wsse:PolicyReference URI="?id=507"></wsse:PolicyReference></wst:RequestSecurityToken>)"
        R"(</ps:RequestMultipleSecurityTokens></Body></Envelope>)";
    return "POST /RST.srf HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
           "\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
           body;
}

std::uint64_t now_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

// The handle a ticket names, checked the way the MSNP side checks it.
std::optional<std::string> ticket_subject(std::string_view usr_twn_s_param) {
    gw::token_service tokens({test_key});
    return tokens.verify_ticket(gw::parse_ticket_param(usr_twn_s_param), now_ms());
}

// Everything the login services answer, over one client kind.
void exercise_passport(const passport_gateway& gw, tls_client& client) {
    const unsigned short port = gw.https();

    // Nexus: both header spellings, DALogin without a scheme, at the Host asked for.
    const auto nexus = client.request(nexus_request(port));
    CHECK(nexus.status == 200);
    const std::string urls =
        "DARealm=Passport.Net,DALogin=127.0.0.1:" + std::to_string(port) + "/login2.srf,ConfigVersion=15";
    CHECK(header(nexus, "PassportURLs") == urls);
    CHECK(header(nexus, "Passporturls") == urls);

    // login2.srf, success: the ticket inside from-PP='...' is what USR TWN S sends.
    auto ok = client.request(login2_request(port, "Alice%40Example.COM", "correct%20horse"));
    CHECK(ok.status == 200);
    const std::string info = header(ok, "Authentication-Info");
    INFO(info);
    CHECK(info.starts_with("Passport1.4 da-status=success,tname=MSPAuth,tname=MSPProf,tname=MSPSec,from-PP='t="));
    CHECK(info.ends_with("&p=',ru=http://messenger.msn.com"));
    const std::string from_pp = between(info, "from-PP='", "'");
    CHECK(from_pp.starts_with("t=pt2.test1."));
    CHECK(ticket_subject(from_pp) == "alice@example.com");

    // A password with the characters the encodings are about: , & % < >.
    ok = client.request(login2_request(port, "carol%40example.com", "s3cret%2C%26%25%3Cpass%3E"));
    CHECK(ok.status == 200);
    CHECK(ticket_subject(between(header(ok, "Authentication-Info"), "from-PP='", "'")) == "carol@example.com");

    // login2.srf, failure: wrong password, unknown user, no credentials at all.
    const std::string failed =
        "Passport1.4 da-status=failed,srealm=Passport.NET,ts=-3,prompt,"
        "cburl=http://messenger.msn.com/images/logo102x88.gif,"
        "cbtxt=The%20e-mail%20address%20or%20password%20is%20incorrect.";
    for (const auto& [sign_in, pwd] : std::vector<std::pair<std::string, std::string>>{
             {"alice%40example.com", "wrong%20horse"}, {"nobody%40example.com", "correct%20horse"}}) {
        const auto denied = client.request(login2_request(port, sign_in, pwd));
        INFO(sign_in);
        CHECK(denied.status == 401);
        CHECK(header(denied, "WWW-Authenticate") == failed);
        CHECK(header(denied, "Authentication-Info").empty());
    }
    const auto bare = client.request("GET /login2.srf HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    CHECK(bare.status == 401);
    CHECK(header(bare, "WWW-Authenticate") == failed);

    // RST.srf, success: one response per requested domain, in order; the
    // messenger.msn.com compact ticket is Compact1.
    const auto rst = client.request(rst_request(port, "alice@example.com", "correct horse"));
    CHECK(rst.status == 200);
    INFO(rst.body);
    CHECK(contains(header(rst, "Content-Type"), "text/xml"));
    CHECK(contains(rst.body, "<wsa:Address>http://Passport.NET/tb</wsa:Address>"));
    CHECK(contains(rst.body, "<wst:TokenType>urn:passport:legacy</wst:TokenType>"));
    CHECK(rst.body.find("http://Passport.NET/tb") < rst.body.find("<wsa:Address>messenger.msn.com</wsa:Address>"));
    const std::string compact = between(rst.body, "<wsse:BinarySecurityToken Id=\"Compact1\">", "</wsse:BinarySecurityToken>");
    CHECK(compact.starts_with("t=pt2.test1."));
    CHECK(compact.ends_with("&amp;p="));
    // What the client sends after decoding the XML.
    CHECK(ticket_subject(compact.substr(0, compact.size() - 7) + "&p=") == "alice@example.com");
    CHECK(contains(rst.body, "<psf:credProperty Name=\"AuthMembername\">alice@example.com</psf:credProperty>"));

    const auto escaped = client.request(rst_request(port, "carol@example.com", "s3cret,&amp;%&lt;pass&#x3E;"));
    CHECK(escaped.status == 200);
    CHECK(contains(escaped.body, "Id=\"Compact1\">t=pt2."));

    // RST.srf, failure: a SOAP fault.
    for (const auto& [user, password] : std::vector<std::pair<std::string, std::string>>{
             {"alice@example.com", "wrong horse"}, {"nobody@example.com", "correct horse"}, {"", ""}}) {
        const auto fault = client.request(rst_request(port, user, password));
        INFO(user);
        CHECK(fault.status == 200);
        CHECK(contains(fault.body, "<faultcode>wsse:FailedAuthentication</faultcode>"));
        CHECK(contains(fault.body, "<psf:reqstatus>0x80048823</psf:reqstatus>"));
        CHECK_FALSE(contains(fault.body, "BinarySecurityToken"));
    }

    CHECK(client.request("GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").status == 404);
    CHECK(client.request("POST /login2.srf HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n").status == 405);
}

}  // namespace

TEST_CASE("Passport services over the legacy TLS profile", "[passport]") {
    passport_gateway gw("legacy");
    gw.add_user("alice@example.com", "correct horse");
    gw.add_user("carol@example.com", "s3cret,&%<pass>");
    gw.start();

    SECTION("an old Messenger's TLS 1.0 with AES128-SHA and no SNI") {
        tls_client client(gw.https(), gw.certificate("legacy"), client_kind::old_messenger);
        REQUIRE(client.handshake());
        CHECK(client.version() == TLS1_VERSION);
        CHECK(client.cipher() == "AES128-SHA");
        CHECK(client.verify_result() == X509_V_OK);
        exercise_passport(gw, client);
    }
    SECTION("a current TLS 1.2+ client") {
        tls_client client(gw.https(), gw.certificate("legacy"), client_kind::current);
        REQUIRE(client.handshake());
        CHECK(client.version() >= TLS1_2_VERSION);
        CHECK(client.verify_result() == X509_V_OK);
        exercise_passport(gw, client);
    }

    // Logins are logged by handle and outcome, never with the password.
    CHECK(gw.proc->wait_for_line("event=passport_login"));
    CHECK(contains(gw.proc->output(), "result=ok"));
    CHECK_FALSE(contains(gw.proc->output(), "correct horse"));
    CHECK_FALSE(contains(gw.proc->output(), "correct%20horse"));
}

// SChannel on Windows XP resumes TLS sessions by id, from the server's
// cache; the session must survive however the connection ended between
// requests.
TEST_CASE("a returning old Messenger resumes its TLS session", "[passport]") {
    passport_gateway gw("legacy", "scrypt_n = 1024\n\n[limits]\nidle_timeout = \"1s\"\n");
    gw.start();
    const std::string nexus = "GET /rdr/pprdr.asp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    const auto connect = [&](const std::string& session) {
        auto c = std::make_unique<tls_client>(gw.https(), gw.certificate("legacy"), client_kind::old_messenger);
        if (!session.empty()) c->resume(session);
        REQUIRE(c->handshake());
        REQUIRE(c->request(nexus).status == 200);
        return c;
    };

    // The client closes: the server answers close_notify with its own.
    auto first = connect({});
    CHECK_FALSE(first->resumed());
    const auto session = first->session();
    CHECK(first->close_cleanly());
    auto second = connect(session);
    CHECK(second->resumed());

    // The server closes (Connection: close): with close_notify, session kept.
    second->send("GET /rdr/pprdr.asp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    CHECK(second->read_response().status == 200);
    CHECK(second->ends_cleanly());
    CHECK(connect(session)->resumed());

    // The client drops the connection without close_notify.
    connect(session).reset();
    CHECK(connect(session)->resumed());

    // An idle keep-alive connection times out: the session stays too.
    auto idle = connect(session);
    CHECK_FALSE(idle->ends_cleanly());  // the idle timeout closes it without a word
    CHECK(connect(session)->resumed());

    // A connection that breaks the protocol loses its session.
    auto bad = connect(session);
    bad->send("NOT HTTP\r\n\r\n");
    bad->ends_cleanly();
    CHECK_FALSE(connect(session)->resumed());
}

TEST_CASE("the modern TLS profile serves an ECDSA certificate to TLS 1.2+ only", "[passport]") {
    passport_gateway gw("modern");
    gw.add_user("alice@example.com", "correct horse");
    gw.start();

    tls_client old(gw.https(), gw.certificate("modern"), client_kind::old_messenger);
    CHECK_FALSE(old.handshake());

    tls_client client(gw.https(), gw.certificate("modern"), client_kind::current);
    INFO(client.error());
    REQUIRE(client.handshake());
    CHECK(client.version() >= TLS1_2_VERSION);
    CHECK(client.verify_result() == X509_V_OK);
    const auto ok = client.request(login2_request(gw.https(), "alice%40example.com", "correct%20horse"));
    CHECK(ok.status == 200);
    CHECK(ticket_subject(between(header(ok, "Authentication-Info"), "from-PP='", "'")) == "alice@example.com");
}

TEST_CASE("the nexus names the configured public endpoint", "[passport]") {
    passport_gateway gw("legacy");
    // Replace the listener table's tail: the operator's own login host.
    std::ifstream in(gw.settings);
    std::string text{std::istreambuf_iterator<char>(in), {}};
    const std::string marker = "tls = \"legacy\"\n";
    text.insert(text.find(marker) + marker.size(), "public_endpoint = \"login.example.com\"\n");
    write_file(gw.settings, text);
    gw.start();

    tls_client client(gw.https(), gw.certificate("legacy"), client_kind::old_messenger);
    REQUIRE(client.handshake());
    const auto nexus = client.request(nexus_request(gw.https()));
    CHECK(header(nexus, "PassportURLs") ==
          "DARealm=Passport.Net,DALogin=login.example.com/login2.srf,ConfigVersion=15");
}

TEST_CASE("password checks run off the I/O thread", "[passport]") {
    // One I/O thread, one password thread, and a hash that takes a good part
    // of a second (64 MiB): were a check run on the I/O thread, nothing
    // else could be served until the logins queued before it were done.
    passport_gateway gw("legacy", "scrypt_n = 65536\nmax_concurrent_logins = 1\n", 1);
    gw.add_user("alice@example.com", "correct horse");
    gw.start();

    std::vector<std::unique_ptr<tls_client>> logins;
    for (int i = 0; i < 3; ++i) {
        auto c = std::make_unique<tls_client>(gw.https(), gw.certificate("legacy"), client_kind::old_messenger);
        REQUIRE(c->handshake());
        c->send(login2_request(gw.https(), "alice%40example.com", "correct%20horse"));
        logins.push_back(std::move(c));
    }
    tls_client other(gw.https(), gw.certificate("legacy"), client_kind::old_messenger);
    REQUIRE(other.handshake());
    CHECK(other.request(nexus_request(gw.https())).status == 200);
    // The nexus answered while the last login still waits for its hash.
    CHECK_FALSE(logins.back()->has_data());
    for (auto& c : logins) {
        const auto r = c->read_response();
        CHECK(r.status == 200);
        CHECK(ticket_subject(between(header(r, "Authentication-Info"), "from-PP='", "'")) == "alice@example.com");
    }
}

TEST_CASE("a legitimate login goes ahead of a flood of wrong passwords, and the flood's next tries wait",
          "[passport][login_guard]") {
    // One password thread and a hash of a few tens of milliseconds: the
    // flood's checks queue, and in arrival order the legitimate login would
    // come after all of them.
    passport_gateway gw("legacy", "scrypt_n = 16384\nmax_concurrent_logins = 1\n", 1);
    gw.add_user("alice@example.com", "correct horse");
    gw.add_user("victim@example.com", "victim's password");
    gw.start();
    const auto client = [&](const std::string& source) {
        auto c = std::make_unique<tls_client>(gw.https(), gw.certificate("legacy"), client_kind::old_messenger, source);
        REQUIRE(c->handshake());
        return c;
    };
    // Alice signs in from 127.0.0.1 once: an address she used before.
    auto alice = client("127.0.0.1");
    REQUIRE(alice->request(login2_request(gw.https(), "alice%40example.com", "correct%20horse")).status == 200);

    // 24 wrong passwords for victim from six addresses, four each (the
    // shipped limit of checks per address), all connected first.
    std::vector<std::unique_ptr<tls_client>> flood;
    for (int i = 0; i < 24; ++i) flood.push_back(client("127.0.0." + std::to_string(2 + i % 6)));
    for (int i = 0; i < 24; ++i) {
        flood[i]->send(login2_request(gw.https(), "victim%40example.com", "guess%20" + std::to_string(i)));
    }
    const auto t0 = std::chrono::steady_clock::now();
    alice->send(login2_request(gw.https(), "alice%40example.com", "correct%20horse"));
    CHECK(alice->read_response().status == 200);
    const auto waited = std::chrono::steady_clock::now() - t0;
    // Answered after at most the check already running and one that began
    // before hers was queued, not after the 24.
    int answered = 0;
    for (auto& c : flood) answered += c->has_data() ? 1 : 0;
    CHECK(answered <= 3);
    INFO("alice waited " << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count() << " ms");
    for (auto& c : flood) CHECK(c->read_response().status == 401);

    // Each flooding address has now failed four times for victim: its next
    // try waits, the right password included, and says for how long.
    const auto refused = flood[0]->request(login2_request(gw.https(), "victim%40example.com", "victim%27s%20password"));
    CHECK(refused.status == 429);
    CHECK_FALSE(header(refused, "Retry-After").empty());
    // Victim from an address of its own still signs in.
    auto own = client("127.0.1.1");
    CHECK(own->request(login2_request(gw.https(), "victim%40example.com", "victim%27s%20password")).status == 200);
}

namespace {

// A blocking plain-TCP client for the admin listener.
std::string tcp_exchange(unsigned short port, std::string_view request) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    const timeval timeout{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
    std::string out;
    char chunk[4096];
    // Every request here ends the connection after its answer.
    for (ssize_t n; (n = ::recv(fd, chunk, sizeof chunk, 0)) > 0;) out.append(chunk, static_cast<std::size_t>(n));
    ::close(fd);
    return out;
}

void set_public_endpoint(const passport_gateway& gw, std::string_view endpoint) {
    std::ifstream in(gw.settings);
    std::string text{std::istreambuf_iterator<char>(in), {}};
    const std::string marker = "tls = \"legacy\"\n";
    text.insert(text.find(marker) + marker.size(), "public_endpoint = \"" + std::string(endpoint) + "\"\n");
    write_file(gw.settings, text);
}

// msn-pecan 0.1.1's and Pidgin 2.0-2.2's nexus request: no version, no Host
// (msnp-reference section 3.10).
const std::string versionless_nexus = "GET /rdr/pprdr.asp\r\n\r\n";

}  // namespace

TEST_CASE("a nexus request without an HTTP version is answered as HTTP/1.0", "[passport]") {
    passport_gateway gw("legacy");
    set_public_endpoint(gw, "login.example.com");
    gw.start();

    tls_client client(gw.https(), gw.certificate("legacy"), client_kind::old_messenger);
    REQUIRE(client.handshake());
    const auto nexus = client.request(versionless_nexus);
    INFO(nexus.head);
    CHECK(nexus.head.starts_with("HTTP/1.0 200 "));
    CHECK(header(nexus, "PassportURLs") ==
          "DARealm=Passport.Net,DALogin=login.example.com/login2.srf,ConfigVersion=15");
    CHECK(client.ends_cleanly());  // HTTP/1.0 without keep-alive: closed after the answer
}

TEST_CASE("without Host or public_endpoint the nexus says which setting to fill, and logs it", "[passport]") {
    passport_gateway gw("legacy");
    gw.start();

    tls_client client(gw.https(), gw.certificate("legacy"), client_kind::old_messenger);
    REQUIRE(client.handshake());
    const auto refused = client.request(versionless_nexus);
    CHECK(refused.status == 400);
    CHECK(contains(refused.body, "public_endpoint in [listeners.https]"));
    const auto line = gw.proc->wait_for_line("event=http_request_refused");
    INFO(gw.proc->output());
    REQUIRE(line);
    CHECK(log_field(*line, "listener") == "https");
    CHECK(log_field(*line, "target") == "/rdr/pprdr.asp");
    CHECK(log_field(*line, "status") == "400");
    CHECK(contains(*line, "public_endpoint"));
}

TEST_CASE("an offline message is refused with the fault clients report as not delivered", "[passport]") {
    passport_gateway gw("legacy");
    gw.start();

    tls_client client(gw.https(), gw.certificate("legacy"), client_kind::current);
    REQUIRE(client.handshake());
    // msn-pecan's Store2 (pn_oim.c send_send_request), shortened body.
    const std::string body =
        R"(<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">)"
        R"(<soap:Header><From memberName="bob@example.com" friendlyName="=?utf-8?B?Ym9i?=" xml:lang="en-US" )"
        R"(proxy="MSNMSGR" xmlns="http://messenger.msn.com/ws/2004/09/oim/" msnpVer="MSNP15" buildVer="8.5.1288.816"/>)"
        R"(<To memberName="alice@example.com" xmlns="http://messenger.msn.com/ws/2004/09/oim/"/>)"
        R"(<Ticket passport="t=x&amp;p=" appid="PROD0119GSJUC$18" lockkey="" xmlns="http://messenger.msn.com/ws/2004/09/oim/"/>)"
        R"(</soap:Header><soap:Body><MessageType xmlns="http://messenger.msn.com/ws/2004/09/oim/">text</MessageType>)"
        R"(<Content xmlns="http://messenger.msn.com/ws/2004/09/oim/">aGk=</Content></soap:Body></soap:Envelope>)";
    const auto fault = client.request(
        "POST /OimWS/oim.asmx HTTP/1.1\r\nAccept: */*\r\n"
        "SOAPAction: \"http://messenger.live.com/ws/2006/09/oim/Store2\"\r\n"
        "Content-Type: text/xml; charset=utf-8\r\nContent-Length: " +
        std::to_string(body.size()) +
        "\r\nHost: ows.messenger.msn.com\r\nConnection: Keep-Alive\r\nCache-Control: no-cache\r\n\r\n" + body);
    INFO(fault.body);
    CHECK(fault.status == 500);
    // msn-pecan reads the body by this exact header spelling.
    CHECK_FALSE(header(fault, "Content-Length").empty());
    CHECK(contains(fault.body, ">q0:SystemUnavailable</faultcode>"));
    CHECK_FALSE(contains(fault.body, "LockKeyChallenge"));
    CHECK_FALSE(contains(fault.body, "AuthenticationFailed"));
    const auto line = gw.proc->wait_for_line("event=http_request_refused");
    INFO(gw.proc->output());
    REQUIRE(line);
    CHECK(log_field(*line, "target") == "/OimWS/oim.asmx");
    CHECK(log_field(*line, "status") == "500");
}

TEST_CASE("every refused HTTP request is answered where possible and logged with a reason", "[passport]") {
    passport_gateway gw("legacy");
    gw.start();

    tls_client client(gw.https(), gw.certificate("legacy"), client_kind::old_messenger);
    REQUIRE(client.handshake());
    CHECK(client.request("GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").status == 404);
    auto line = gw.proc->wait_for_line("event=http_request_refused");
    REQUIRE(line);
    CHECK(log_field(*line, "status") == "404");
    CHECK(log_field(*line, "target") == "/nope");

    // Not HTTP at all: a 400 saying so, then the connection ends.
    tls_client broken(gw.https(), gw.certificate("legacy"), client_kind::old_messenger);
    REQUIRE(broken.handshake());
    const auto bad = broken.request("NOT HTTP\r\n\r\n");
    CHECK(bad.status == 400);
    CHECK(contains(bad.body, "not an HTTP request"));
    line = gw.proc->wait_for_line("event=http_request_refused");
    REQUIRE(line);
    CHECK(log_field(*line, "listener") == "https");
    CHECK(log_field(*line, "status") == "400");

    // Headers or a body over the limits: 431 and 413, not a silent close.
    tls_client long_head(gw.https(), gw.certificate("legacy"), client_kind::old_messenger);
    REQUIRE(long_head.handshake());
    CHECK(long_head.request("GET /rdr/pprdr.asp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: " +
                            std::string(20000, 'a') + "\r\n\r\n")
              .status == 431);
    tls_client big_body(gw.https(), gw.certificate("legacy"), client_kind::old_messenger);
    REQUIRE(big_body.handshake());
    CHECK(big_body.request("POST /login2.srf HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n")
              .status == 413);
    REQUIRE(gw.proc->wait_for_line("status=431"));
    REQUIRE(gw.proc->wait_for_line("status=413"));

    // The admin listener answers and logs the same way.
    const std::string unknown = tcp_exchange(gw.ports.at("admin"), "GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n");
    CHECK(unknown.starts_with("HTTP/1.1 404 "));
    line = gw.proc->wait_for_line("event=http_request_refused");
    REQUIRE(line);
    CHECK(log_field(*line, "listener") == "admin");
    const std::string garbage = tcp_exchange(gw.ports.at("admin"), "\x01\x02 nonsense\r\n\r\n");
    CHECK(garbage.starts_with("HTTP/1.1 400 "));
    line = gw.proc->wait_for_line("event=http_request_refused");
    INFO(gw.proc->output());
    REQUIRE(line);
    CHECK(log_field(*line, "listener") == "admin");
    CHECK(log_field(*line, "status") == "400");
}
