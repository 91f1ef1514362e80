// Gateways that reach their objects over a backend link: a backend node
// (the real binary with [listeners.link] and no client listeners) and
// gateways of backend kind "link", all real processes on 127.0.0.1. What an
// operator sees when a gateway is killed (its users go offline within the
// lease) and when the backend restarts under live sessions (nobody is shown
// offline; the gateways register their sessions again).
#include "child_process.hpp"
#include "msnp_client.hpp"
#include "ws_client.hpp"

#include "protocols/frame/link.hpp"

#include <catch2/catch.hpp>

#include <csignal>

using namespace switchyard::test;
namespace wire = switchyard::frame::link;

namespace {

constexpr const char* key_section =
    "[[keys]]\nid = \"k1\"\nsecret = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n"
    "[accounts]\nscrypt_n = 1024\n";

unsigned short listening_port(child_process& p, const std::string& listener) {
    for (;;) {
        const auto line = p.wait_for_line("event=listening");
        INFO(p.output());
        REQUIRE(line);
        if (log_field(*line, "listener") == listener) {
            return static_cast<unsigned short>(std::stoi(log_field(*line, "port")));
        }
    }
}

// The process that holds the objects. `port` 0 picks a free one; a restart
// passes the port it had, since the gateways know it from their settings.
struct backend_node {
    temp_dir dir;
    std::filesystem::path settings = dir.path / "switchyard.toml";
    std::optional<child_process> proc;
    unsigned short port = 0;

    void write_settings(unsigned short link_port) {
        write_file(settings, "[gateway]\nthreads = 2\nname = \"node\"\n"
                             "[listeners.msnp]\nenabled = false\n[listeners.ws]\nenabled = false\n"
                             "[listeners.admin]\nport = 0\n"
                             "[listeners.link]\nenabled = true\nport = " +
                                 std::to_string(link_port) + "\nlease = \"1s\"\n" + key_section);
        write_file(dir.path / "routes.toml", "[default]\nbackend = \"embedded\"\n");
    }
    backend_node() { write_settings(0); }

    void start() {
        proc.emplace(std::vector<std::string>{SWITCHYARD_BINARY, "run", "-c", settings.string()});
        port = listening_port(*proc, "link");
        REQUIRE(proc->wait_for_line("event=started"));
        write_settings(port);
    }
    void add_user(const std::string& handle) {
        const auto r = run_to_completion(
            {SWITCHYARD_BINARY, "user", "add", handle, "--legacy-md5", "-c", settings.string()}, "password1\n");
        INFO(r.output);
        REQUIRE(r.status == 0);
    }
};

// A gateway whose every object is on the node.
struct link_gateway {
    temp_dir dir;
    std::filesystem::path settings = dir.path / "switchyard.toml";
    std::optional<child_process> proc;
    unsigned short msnp_port = 0;
    unsigned short ws_port = 0;

    link_gateway(const std::string& name, unsigned short node_port) {
        write_file(settings, "[gateway]\nthreads = 2\nname = \"" + name +
                                 "\"\n[listeners.msnp]\nport = 0\n[listeners.ws]\nport = 0\n"
                                 "[listeners.admin]\nenabled = false\n"
                                 "[backends.node]\nkind = \"link\"\naddress = \"127.0.0.1\"\nport = " +
                                 std::to_string(node_port) + "\n" + key_section);
        write_file(dir.path / "routes.toml", "[default]\nbackend = \"node\"\n");
        proc.emplace(std::vector<std::string>{SWITCHYARD_BINARY, "run", "-c", settings.string()});
        // The link may open before or after the listener is logged.
        bool open = false;
        while (msnp_port == 0 || ws_port == 0 || !open) {
            const auto line = proc->wait_for_line("level=");
            INFO(proc->output());
            REQUIRE(line);
            open = open || line->find("event=link_open") != std::string::npos;
            if (line->find("event=listening") != std::string::npos && log_field(*line, "listener") == "msnp") {
                msnp_port = static_cast<unsigned short>(std::stoi(log_field(*line, "port")));
            }
            if (line->find("event=listening") != std::string::npos && log_field(*line, "listener") == "ws") {
                ws_port = static_cast<unsigned short>(std::stoi(log_field(*line, "port")));
            }
        }
    }
};

// Reads lines until one starts with `prefix`; every line read is kept in `seen`.
std::string until(msnp_client& c, const std::string& prefix, std::string& seen) {
    for (;;) {
        std::string l = c.line();
        seen += l + "\n";
        if (l.starts_with(prefix)) return l;
    }
}

// Bob adds Alice and sees her sign in; MD5 logins (MSNP5) are checked by
// the node, which holds the accounts. Returns what Bob read.
std::string bob_sees_alice_sign_in(msnp_client& bob, msnp_client& alice) {
    bob.login("bob@example.com", "password1");
    bob.command("ADD 5 FL alice@example.com alice@example.com");
    alice.login("alice@example.com", "password1");
    std::string seen;
    until(bob, "NLN NLN alice@example.com", seen);
    return seen;
}

}  // namespace

TEST_CASE("a killed gateway's users go offline for the other gateways' clients within the lease", "[link]") {
    backend_node node;
    node.start();
    node.add_user("alice@example.com");
    node.add_user("bob@example.com");
    link_gateway one("one", node.port);
    link_gateway two("two", node.port);

    // Bob (on two) watches Alice (on one) sign in.
    msnp_client bob(two.msnp_port);
    msnp_client alice(one.msnp_port);
    std::string seen = bob_sees_alice_sign_in(bob, alice);

    one.proc->signal(SIGKILL);
    REQUIRE(one.proc->wait_exit() == -SIGKILL);
    until(bob, "FLN alice@example.com", seen);
    INFO(node.proc->output());
    const auto ended = node.proc->wait_for_line("event=lease_ended gateway=one");
    REQUIRE(ended);
    CHECK(log_field(*ended, "reason") == "lease expired");
    CHECK(log_field(*ended, "endpoints") == "1");

    // A wrong password is refused by the node too.
    msnp_client mallory(two.msnp_port);
    mallory.command("VER 1 MSNP5 CVR0");
    const auto salt = words(mallory.command("USR 2 MD5 I alice@example.com")).at(4);
    mallory.send("USR 3 MD5 S " + md5_hex(salt + "wrong") + "\r\n");
    REQUIRE(mallory.line().starts_with("911 3"));
}

TEST_CASE("a backend restarted under live sessions shows nobody offline once it is back", "[link]") {
    backend_node node;
    node.start();
    for (const char* user : {"alice@example.com", "bob@example.com", "carol@example.com"}) {
        node.add_user(user);
    }
    link_gateway one("one", node.port);
    link_gateway two("two", node.port);

    // Bob (on two) watches Alice (on one) sign in.
    msnp_client bob(two.msnp_port);
    msnp_client alice(one.msnp_port);
    std::string seen = bob_sees_alice_sign_in(bob, alice);

    // A conversation across the two gateways: Bob (two) calls Alice (one).
    const auto port_of = [](const std::string& host_port) {
        return static_cast<unsigned short>(std::stoi(host_port.substr(host_port.rfind(':') + 1)));
    };
    const auto xfr = words(bob.command("XFR 6 SB"));
    msnp_client bob_sb(port_of(xfr.at(3)));
    bob_sb.command("USR 1 bob@example.com " + xfr.at(5));
    const auto room = words(bob_sb.command("CAL 2 alice@example.com")).at(3);
    std::string alice_seen;
    const auto rng = words(until(alice, "RNG " + room, alice_seen));
    msnp_client alice_sb(port_of(rng.at(2)));
    alice_sb.command("ANS 1 alice@example.com " + rng.at(4) + " " + room);
    std::string bob_sb_seen;
    until(bob_sb, "JOI alice@example.com", bob_sb_seen);

    node.proc->signal(SIGKILL);
    REQUIRE(node.proc->wait_exit() == -SIGKILL);
    node.start();
    // Each gateway notices the new backend and registers its sessions again.
    for (link_gateway* g : {&one, &two}) {
        INFO(g->proc->output());
        const auto line = g->proc->wait_for_line("backend_restarted=1");
        REQUIRE(line);
        // Two sign-ins (hello, presence) on each, and one room place.
        CHECK(log_field(*line, "registered") == "3");
        REQUIRE(g->proc->wait_for_line("event=link_registered"));
    }

    // Someone signing in now sees both online: adding an online contact
    // shows its presence (ILN, after the ADD reply).
    msnp_client carol(two.msnp_port);
    carol.login("carol@example.com", "password1");
    std::string carol_seen;
    carol.send("ADD 5 FL alice@example.com alice@example.com\r\n");
    CHECK(until(carol, "ILN 5", carol_seen) == "ILN 5 NLN alice@example.com alice@example.com");
    carol.send("ADD 6 FL bob@example.com bob@example.com\r\n");
    CHECK(until(carol, "ILN 6", carol_seen) == "ILN 6 NLN bob@example.com bob@example.com");

    // The conversation goes on, and neither side saw the other leave or join.
    bob_sb.send(chat_message(3, "still here?"));
    until(bob_sb, "ACK 3", bob_sb_seen);
    std::string alice_sb_seen;
    until(alice_sb, "MSG bob@example.com", alice_sb_seen);
    CHECK(alice_sb.payload().ends_with("still here?"));
    alice_sb.send(chat_message(2, "yes"));
    until(alice_sb, "ACK 2", alice_sb_seen);
    until(bob_sb, "MSG alice@example.com", bob_sb_seen);
    INFO(bob_sb_seen << alice_sb_seen);
    CHECK(bob_sb_seen.find("BYE") == std::string::npos);
    CHECK(bob_sb_seen.find("JOI", bob_sb_seen.find("JOI") + 1) == std::string::npos);
    CHECK(alice_sb_seen.find("BYE") == std::string::npos);
    CHECK(alice_sb_seen.find("JOI") == std::string::npos);

    // ...and bob never saw alice go offline.
    bob.send("CHG 9 NLN\r\n");
    until(bob, "CHG 9", seen);
    INFO(seen);
    CHECK(seen.find("FLN alice@example.com") == std::string::npos);
}

TEST_CASE("a browser login through a link gateway is checked by the node, which holds the account", "[link]") {
    backend_node node;
    node.start();
    node.add_user("alice@example.com");
    link_gateway gateway("edge", node.port);

    ws_client right(gateway.ws_port);
    CHECK(right.login("alice@example.com", "password1").at("handle") == "alice@example.com");
    ws_client wrong(gateway.ws_port);
    wrong.send({{"type", "login"}, {"id", 1}, {"version", 1}, {"handle", "alice@example.com"}, {"password", "nope"}});
    CHECK(wrong.error(1).at("code") == "unauthenticated");
}

TEST_CASE("a second gateway under a name already connected is refused, and gets in once the first is gone", "[link]") {
    backend_node node;
    node.start();
    std::optional<link_gateway> first(std::in_place, "edge", node.port);
    temp_dir dir;
    write_file(dir.path / "switchyard.toml", "[gateway]\nname = \"edge\"\n[listeners.msnp]\nport = 0\n"
                                             "[listeners.ws]\nenabled = false\n[listeners.admin]\nenabled = false\n"
                                             "[backends.node]\nkind = \"link\"\nport = " +
                                                 std::to_string(node.port) + "\n" + key_section);
    write_file(dir.path / "routes.toml", "[default]\nbackend = \"node\"\n");
    child_process second({SWITCHYARD_BINARY, "run", "-c", (dir.path / "switchyard.toml").string()});
    const auto down = second.wait_for_line("event=link_down");
    INFO(second.output());
    REQUIRE(down);
    CHECK(log_field(*down, "error") == "refused: the gateway name \"edge\" is in use by a connected gateway");

    first->proc->signal(SIGKILL);
    REQUIRE(first->proc->wait_exit() == -SIGKILL);
    REQUIRE(second.wait_for_line("event=link_open"));
}

TEST_CASE("the link handshake refuses a gateway with no common version and anything not a link", "[link]") {
    backend_node node;
    node.start();

    tcp_client later(node.port);
    std::string open;
    wire::encode(wire::open{wire::highest_version + 1, wire::highest_version + 2, "future", "0123"}, open);
    later.send(open);
    const auto answer = later.read_to_eof();
    REQUIRE(answer);
    wire::decoder d;
    d.feed(*answer);
    auto m = d.next();
    REQUIRE(m);
    REQUIRE(*m);
    const auto* refused = std::get_if<wire::refuse>(&**m);
    REQUIRE(refused);
    CHECK(refused->reason.find("no common version") != std::string::npos);

    tcp_client stray(node.port);
    stray.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(stray.read_to_eof() == std::string());
    INFO(node.proc->output());
    CHECK(node.proc->wait_for_line("event=link_refused"));
}
