// Golden MSNP transcripts (fixtures/transcripts/*.txt) run against the real
// gateway over real sockets, in the C:/S: format of msnp-reference §6.3.
//
//   # comment
//   @user alice@example.com secret123 [legacy-md5]   create an account first
//   A-NS C: VER 1 MSNP5 CVR0                          client A-NS sends a line
//   A-NS S: VER 1 MSNP5                               ... and must receive this one next
//   A-NS C: MSG 4 A *                                 a payload command: '*' is its length,
//       MIME-Version: 1.0                             the payload follows on lines indented
//       Content-Type: text/plain; charset=UTF-8       by four spaces, joined with CRLF
//   A-NS S: (closed)                                  the server closes the connection
//
// A connection opens the first time its name is used. In server lines '*'
// matches any one token, ${name} captures one and ${=name} must equal an
// earlier capture (the same session id, say); both may follow a literal
// prefix within the token (C=${guid} captures what follows "C="). In client
// lines ${name} expands a capture, ${md5:salt:password} the MSNP2-7 login
// answer, and ${ticket:handle} a Passport ticket signed with the test's key.
// Server payload lines match the same way, with '*' for any one line; a
// server payload command with no payload lines skips its payload unread.
#include "child_process.hpp"
#include "msnp_client.hpp"

#include "gateway/login/tokens.hpp"

#include <catch2/catch.hpp>

#include <csignal>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>

using namespace switchyard::test;
namespace fs = std::filesystem;

namespace {

const std::string binary = SWITCHYARD_BINARY;
const fs::path transcripts_dir = fs::path(SWITCHYARD_SOURCE_DIR) / "fixtures" / "transcripts";
const std::string key_id = "t1";
const std::string key_secret = "0123456789abcdef0123456789abcdef";  // base64 in the settings below

struct step {
    int line = 0;
    std::string connection;
    bool client = false;
    std::string text;                    // the command line, or "(closed)"
    std::vector<std::string> payload;    // payload lines, if any
    bool has_payload = false;
};

struct transcript {
    std::vector<std::pair<std::string, std::pair<std::string, bool>>> users;  // handle -> password, md5
    std::vector<step> steps;
};

transcript parse(const fs::path& file) {
    std::ifstream in(file);
    REQUIRE(in);
    transcript t;
    std::string raw;
    for (int n = 1; std::getline(in, raw); ++n) {
        if (!raw.empty() && raw.back() == '\r') raw.pop_back();
        if (raw.starts_with("    ") && !t.steps.empty()) {
            t.steps.back().payload.push_back(raw.substr(4));
            continue;
        }
        if (raw.empty() || raw[0] == '#') continue;
        std::istringstream words(raw);
        if (raw[0] == '@') {
            std::string directive, handle, password, flag;
            words >> directive >> handle >> password >> flag;
            INFO(file << ":" << n << ": expected @user HANDLE PASSWORD [legacy-md5]");
            REQUIRE(directive == "@user");
            REQUIRE_FALSE(password.empty());
            t.users.push_back({handle, {password, flag == "legacy-md5"}});
            continue;
        }
        step s;
        s.line = n;
        std::string dir;
        words >> s.connection >> dir;
        INFO(file << ":" << n << ": expected \"<connection> C: ...\" or \"<connection> S: ...\"");
        REQUIRE((dir == "C:" || dir == "S:"));
        s.client = dir == "C:";
        std::getline(words >> std::ws, s.text);
        const bool payload_command = s.text.starts_with("MSG ") || s.text.starts_with("UUX ") ||
                                     s.text.starts_with("UBX ") || s.text.starts_with("GCF ");
        s.has_payload = payload_command && s.text.back() != '0' && !s.text.ends_with("Shields.xml");
        t.steps.push_back(std::move(s));
    }
    return t;
}

std::vector<std::string> split(std::string_view s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= s.size()) {
        const auto sp = s.find(' ', start);
        out.emplace_back(s.substr(start, sp == std::string_view::npos ? std::string_view::npos : sp - start));
        if (sp == std::string_view::npos) break;
        start = sp + 1;
    }
    return out;
}


class runner {
public:
    runner(unsigned short port, switchyard::gateway::token_service& tokens) : port_(port), tokens_(tokens) {}

    void run(const fs::path& file, const transcript& t) {
        for (const step& s : t.steps) {
            INFO(file.filename().string() << ":" << s.line << ": " << s.connection << (s.client ? " C: " : " S: ")
                                          << s.text);
            auto& c = connection(s.connection);
            if (s.client) {
                send(c, s);
            } else {
                expect(c, s);
            }
        }
    }

private:
    struct conn {
        std::unique_ptr<tcp_client> socket;
        std::string buffer;
    };

    conn& connection(const std::string& name) {
        auto& c = conns_[name];
        if (!c.socket) c.socket = std::make_unique<tcp_client>(port_);
        return c;
    }

    std::string expand(const std::string& text) {
        static const std::regex var(R"(\$\{([^}]*)\})");
        std::string out;
        std::size_t last = 0;
        for (auto it = std::sregex_iterator(text.begin(), text.end(), var); it != std::sregex_iterator(); ++it) {
            out += text.substr(last, static_cast<std::size_t>(it->position()) - last);
            const std::string name = (*it)[1];
            if (name.starts_with("md5:")) {
                const auto colon = name.find(':', 4);
                out += md5_hex(captures_.at(name.substr(4, colon - 4)) + name.substr(colon + 1));
            } else if (name.starts_with("ticket:")) {
                out += "t=" + tokens_.issue_ticket(name.substr(7), now_ms()) + "&p=";
            } else {
                INFO("no capture named " << name);
                REQUIRE(captures_.contains(name));
                out += captures_.at(name);
            }
            last = static_cast<std::size_t>(it->position() + it->length());
        }
        return out + text.substr(last);
    }

    static std::uint64_t now_ms() {
        return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
    }

    void send(conn& c, const step& s) {
        std::string line = expand(s.text);
        if (!s.has_payload) {
            c.socket->send(line + "\r\n");
            return;
        }
        std::string payload;
        for (std::size_t i = 0; i < s.payload.size(); ++i) {
            if (i) payload += "\r\n";
            payload += expand(s.payload[i]);
        }
        REQUIRE(line.ends_with(" *"));
        line.replace(line.size() - 1, 1, std::to_string(payload.size()));
        c.socket->send(line + "\r\n" + payload);
    }

    std::string read_line(conn& c) {
        for (;;) {
            if (auto nl = c.buffer.find("\r\n"); nl != std::string::npos) {
                std::string l = c.buffer.substr(0, nl);
                c.buffer.erase(0, nl + 2);
                return l;
            }
            REQUIRE(fill(c));
        }
    }

    std::string read_bytes(conn& c, std::size_t n) {
        while (c.buffer.size() < n) REQUIRE(fill(c));
        std::string out = c.buffer.substr(0, n);
        c.buffer.erase(0, n);
        return out;
    }

    // More bytes from the server; false when it closed or went quiet.
    static bool fill(conn& c) {
        auto more = c.socket->read_some(10s);
        if (!more || more->empty()) return false;
        c.buffer += *more;
        return true;
    }

    void match_tokens(const std::string& expected, const std::string& actual) {
        const auto want = split(expected);
        const auto got = split(actual);
        INFO("expected: " << expected << "\n     got: " << actual);
        REQUIRE(want.size() == got.size());
        for (std::size_t i = 0; i < want.size(); ++i) {
            if (want[i] == "*") continue;
            // [prefix]${name} captures the rest of the token, [prefix]${=name}
            // compares it with an earlier capture (C=${guid}, ${=session}).
            static const std::regex capture(R"(([^$]*)\$\{(=?)([^}:]+)\})");
            if (std::smatch m; std::regex_match(want[i], m, capture)) {
                const std::string prefix = m[1];
                const std::string name = m[3];
                REQUIRE(got[i].starts_with(prefix));
                if (m[2].length() == 0) {
                    captures_[name] = got[i].substr(prefix.size());
                } else {
                    INFO("no capture named " << name);
                    REQUIRE(captures_.contains(name));
                    REQUIRE(got[i] == prefix + captures_.at(name));
                }
                continue;
            }
            REQUIRE(expand(want[i]) == got[i]);
        }
    }

    void expect(conn& c, const step& s) {
        if (s.text == "(closed)") {
            INFO("expected the server to close; it sent: " << c.buffer);
            REQUIRE(c.buffer.empty());
            const auto rest = c.socket->read_some(10s);
            REQUIRE(rest);
            REQUIRE(rest->empty());
            return;
        }
        const std::string line = read_line(c);
        match_tokens(s.text, line);
        if (!s.has_payload) return;
        const std::size_t length = std::stoul(split(line).back());
        const std::string payload = read_bytes(c, length);
        if (s.payload.empty()) return;  // a payload the transcript does not spell out
        std::vector<std::string> lines;
        std::size_t start = 0;
        for (;;) {
            const auto nl = payload.find("\r\n", start);
            lines.push_back(payload.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
            if (nl == std::string::npos) break;
            start = nl + 2;
        }
        INFO("payload: " << payload);
        REQUIRE(lines.size() == s.payload.size());
        for (std::size_t i = 0; i < lines.size(); ++i) {
            if (s.payload[i] == "*") continue;
            match_tokens(s.payload[i], lines[i]);
        }
    }

    unsigned short port_;
    switchyard::gateway::token_service& tokens_;
    std::map<std::string, conn> conns_;
    std::map<std::string, std::string> captures_;
};

}  // namespace

TEST_CASE("golden MSNP transcripts", "[transcript]") {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(transcripts_dir)) {
        if (e.path().extension() == ".txt") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    REQUIRE_FALSE(files.empty());
    for (const fs::path& file : files) {
        DYNAMIC_SECTION(file.filename().string()) {
            const transcript t = parse(file);
            const temp_dir dir;
            write_file(dir.path / "routes.toml", "[default]\nbackend = \"embedded\"\n");
            write_file(dir.path / "switchyard.toml",
                       "[gateway]\nthreads = 2\n[listeners.msnp]\nport = 0\n[listeners.ws]\nport = 0\n"
                       "[listeners.admin]\nport = 0\n[accounts]\nscrypt_n = 1024\n"
                       "[[keys]]\nid = \"" + key_id + "\"\nsecret = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n");
            const std::string conf = (dir.path / "switchyard.toml").string();
            for (const auto& [handle, pw] : t.users) {
                std::vector<std::string> argv{binary, "user", "add", handle, "-c", conf};
                if (pw.second) argv.push_back("--legacy-md5");
                const auto r = run_to_completion(argv, pw.first + "\n");
                INFO(r.output);
                REQUIRE(r.status == 0);
            }
            child_process gw({binary, "run", "-c", conf});
            const auto listening = gw.wait_for_line("event=listening listener=msnp");
            INFO(gw.output());
            REQUIRE(listening);
            REQUIRE(gw.wait_for_line("event=started"));
            switchyard::gateway::token_service tokens({{key_id, key_secret}});
            runner(static_cast<unsigned short>(std::stoi(log_field(*listening, "port"))), tokens).run(file, t);
            gw.signal(SIGTERM);
            CHECK(gw.wait_exit() == std::optional<int>{0});
        }
    }
}
