// Browser users and MSN Messenger 7.0 users (MSNP11) in the same
// conversations, through the real gateway over real sockets: presence and
// personal messages both ways, chats started from either side with typing,
// nudges and P2P content, blocks and unblocks seen from both sides, and one
// person signed in from an MSN client and a browser at once.
#include "msnp_client.hpp"
#include "ws_client.hpp"

#include "gateway/login/tokens.hpp"

#include <catch2/catch.hpp>

#include <chrono>

using namespace switchyard::test;
namespace gw = switchyard::gateway;
namespace json = boost::json;

namespace {

std::uint64_t now_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

// The Passport ticket login2.srf or RST.srf would hand this user.
std::string ticket(const std::string& handle) {
    gw::token_service tokens({gw::config::hmac_key{ws_test_key_id, ws_test_key_secret}});
    return "t=" + tokens.issue_ticket(handle, now_ms()) + "&p=";
}

struct mixed_gateway : ws_gateway {
    mixed_gateway() : ws_gateway(SWITCHYARD_BINARY) {
        add_user("alice@example.com", "secret-alice");
        add_user("bob@example.com", "secret-bob");
        add_user("carol@example.com", "secret-carol");
        start();
    }
};

std::string payload_message(int tr, char ack, const std::string& payload) {
    return "MSG " + std::to_string(tr) + " " + ack + " " + std::to_string(payload.size()) + "\r\n" + payload;
}

const std::string typing_payload(const std::string& handle) {
    return "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nTypingUser: " + handle + "\r\n\r\n\r\n";
}
const std::string nudge_payload = "MIME-Version: 1.0\r\nContent-Type: text/x-msnmsgr-datacast\r\n\r\nID: 1\r\n\r\n";

// The next SB message whose payload has `needle`, passing over others.
std::string sb_message_with(msnp_client& sb, std::string_view needle) {
    for (;;) {
        const std::string line = sb.line();
        if (line.starts_with("MSG ") && contains(sb.payload(), needle)) return sb.payload();
    }
}

// The next NS line starting with `prefix` (an asynchronous notice: NLN, FLN, ILN).
std::string ns_line(msnp_client& ns, std::string_view prefix) {
    for (;;) {
        std::string line = ns.line();
        if (line.starts_with(prefix)) return line;
    }
}

json::object presence_of(ws_client& ws, std::string_view user, std::string_view status) {
    return ws.wait([&](const json::object& o) {
        return o.at("type") == "presence" && o.at("user").as_string() == user && o.at("status").as_string() == status;
    });
}

// Alice in the browser and Bob on MSN 7.0, each on the other's lists and
// online (Bob's ADC FL brought her ILN).
struct alice_and_bob {
    mixed_gateway gw;
    ws_client alice{gw.ws_port};
    msnp_client bob{gw.msnp_port};

    alice_and_bob() {
        alice.login("alice@example.com", "secret-alice");
        alice.request(2, {{"type", "contact_add"}, {"handle", "bob@example.com"}});
        bob.login_twn("bob@example.com", ticket("bob@example.com"));
        bob.command("ADC 7 FL N=alice@example.com F=alice@example.com");
        bob.command("ADC 8 AL N=alice@example.com");
        presence_of(alice, "bob@example.com", "online");
    }
};

}  // namespace

TEST_CASE("presence and personal messages cross between a browser and MSN Messenger 7.0 both ways", "[ws][msnp11]") {
    mixed_gateway gw;
    ws_client alice(gw.ws_port);
    alice.login("alice@example.com", "secret-alice");
    alice.request(2, {{"type", "contact_add"}, {"handle", "bob@example.com"}});
    alice.request(3, {{"type", "profile"}, {"personal_message", "from the <browser>"}, {"display_name", "Alice W"}});
    alice.request(4, {{"type", "presence"}, {"status", "busy"}});

    msnp_client bob(gw.msnp_port);
    bob.login_twn("bob@example.com", ticket("bob@example.com"));
    bob.command("ADC 7 FL N=alice@example.com F=alice@example.com");
    // Bob's client learns Alice's status, name and personal message the MSNP11 way.
    const auto iln = ns_line(bob, "ILN 7 BSY alice@example.com");
    CHECK(contains(iln, "Alice%20W"));
    ns_line(bob, "UBX alice@example.com");
    CHECK(contains(bob.payload(), "<PSM>from the &lt;browser&gt;</PSM>"));

    // Bob sets a personal message and goes away: Alice sees both.
    const std::string psm = "<Data><PSM>on MSN &amp; happy</PSM><CurrentMedia></CurrentMedia></Data>";
    bob.send("UUX 8 " + std::to_string(psm.size()) + "\r\n" + psm);
    bob.reply("UUX 8");
    alice.wait([](const json::object& o) {
        return o.at("type") == "presence" && o.at("user") == "bob@example.com" &&
               o.at("personal_message") == "on MSN & happy";
    });
    bob.command("CHG 9 AWY 1073741824");
    CHECK(presence_of(alice, "bob@example.com", "away").at("personal_message") == "on MSN & happy");

    // Alice's status changes reach Bob as NLN; invisible is FLN.
    alice.request(5, {{"type", "presence"}, {"status", "out_to_lunch"}});
    ns_line(bob, "NLN LUN alice@example.com");
    alice.request(6, {{"type", "presence"}, {"status", "invisible"}});
    ns_line(bob, "FLN alice@example.com");
    alice.request(7, {{"type", "presence"}, {"status", "online"}});
    ns_line(bob, "NLN NLN alice@example.com");

    // Bob signs out: Alice sees him offline.
    bob.send("OUT\r\n");
    presence_of(alice, "bob@example.com", "offline");
}

TEST_CASE("an MSN Messenger 7.0 user opens a chat with a browser user: text, typing, nudges, P2P both ways", "[ws][msnp11]") {
    alice_and_bob s;

    // Bob asks for a switchboard and calls Alice: the browser gets an invitation.
    const auto xfr = words(s.bob.command("XFR 20 SB"));
    const auto sb_port = static_cast<unsigned short>(std::stoi(xfr.at(3).substr(xfr.at(3).rfind(':') + 1)));
    msnp_client bob_sb(sb_port);
    bob_sb.command("USR 1 bob@example.com " + xfr.at(5));
    const auto session = words(bob_sb.command("CAL 2 alice@example.com")).at(3);
    const auto invite = s.alice.event("invite");
    CHECK(invite.at("from") == "bob@example.com");
    const std::string room(invite.at("room").as_string());
    CHECK(room == session);
    const auto joined = s.alice.request(10, {{"type", "join"}, {"room", room}});
    CHECK(joined.at("members").as_array().size() == 2);
    CHECK(words(bob_sb.reply("JOI")).at(1) == "alice@example.com");

    // Text both ways, acknowledged once durable.
    bob_sb.send(chat_message(3, "hi from MSN"));
    bob_sb.reply("ACK 3");
    const auto from_bob = s.alice.wait([](const json::object& o) { return o.at("type") == "message"; });
    CHECK(from_bob.at("from") == "bob@example.com");
    CHECK(from_bob.at("text") == "hi from MSN");
    CHECK(s.alice.request(11, {{"type", "send"}, {"room", room}, {"text", "hi from the browser"},
                               {"format", {{"bold", true}, {"color", "#ff0000"}}}})
              .at("seq") == 2);
    const auto to_bob = sb_message_with(bob_sb, "hi from the browser");
    INFO(to_bob);
    CHECK(contains(to_bob, "X-MMS-IM-Format:"));
    CHECK(contains(to_bob, "EF=B"));
    CHECK(contains(to_bob, "CO=FF;"));  // MSNP colours are BGR: red is FF

    // Typing both ways.
    bob_sb.send(payload_message(4, 'U', typing_payload("bob@example.com")));
    const auto typing = s.alice.event("typing");
    CHECK(typing.at("from") == "bob@example.com");
    s.alice.send({{"type", "typing"}, {"room", room}});
    sb_message_with(bob_sb, "TypingUser: alice@example.com");

    // Nudges both ways.
    bob_sb.send(payload_message(5, 'N', nudge_payload));
    CHECK(s.alice.event("nudge").at("from") == "bob@example.com");
    s.alice.send({{"type", "nudge"}, {"room", room}});
    sb_message_with(bob_sb, "ID: 1");

    // P2P data (a display picture, a wink, a file) is a readable notice, never bytes.
    bob_sb.send(payload_message(6, 'D', "MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\n"
                                        "P2P-Dest: alice@example.com\r\n\r\n" + std::string(48, '\0')));
    const auto notice = s.alice.event("notice");
    CHECK(notice.at("from") == "bob@example.com");
    CHECK(notice.at("content_type") == "application/x-msnmsgrp2p");
    CHECK_FALSE(notice.at("text").as_string().empty());

    // Bob leaves: the browser sees him go; the room keeps its history.
    bob_sb.send("OUT\r\n");
    const auto left = s.alice.event("left");
    CHECK(left.at("user") == "bob@example.com");
    const auto history = s.alice.request(12, {{"type", "history"}, {"room", room}});
    CHECK(history.at("messages").as_array().size() == 2);
}

TEST_CASE("blocks and unblocks between a browser and MSN Messenger 7.0 are seen from both sides", "[ws][msnp11]") {
    alice_and_bob s;

    // Alice blocks Bob: to Bob she signs out; unblocked, she is back.
    s.alice.request(20, {{"type", "block"}, {"handle", "bob@example.com"}});
    ns_line(s.bob, "FLN alice@example.com");
    // Bob cannot reach her while blocked.
    {
        const auto xfr = words(s.bob.command("XFR 20 SB"));
        msnp_client sb(static_cast<unsigned short>(std::stoi(xfr.at(3).substr(xfr.at(3).rfind(':') + 1))));
        sb.command("USR 1 bob@example.com " + xfr.at(5));
        sb.send("CAL 2 alice@example.com\r\n");
        CHECK(sb.line() == "217 2");  // as if she were offline: he cannot tell
    }
    s.alice.request(21, {{"type", "unblock"}, {"handle", "bob@example.com"}});
    ns_line(s.bob, "NLN NLN alice@example.com");

    // Bob blocks Alice (REM AL, ADC BL): in the browser he goes offline, and
    // a chat with him invites nobody.
    s.bob.command("REM 30 AL alice@example.com");
    s.bob.command("ADC 31 BL N=alice@example.com");
    presence_of(s.alice, "bob@example.com", "offline");
    const auto refused = s.alice.request(22, {{"type", "chat_open"}, {"with", json::array{"bob@example.com"}}});
    CHECK(refused.at("invited").as_array().empty());
    REQUIRE(refused.at("not_invited").as_array().size() == 1);
    s.alice.request(23, {{"type", "leave"}, {"room", refused.at("room")}});

    // Unblocked, Bob is online for her again, and a chat reaches him.
    s.bob.command("REM 32 BL alice@example.com");
    s.bob.command("ADC 33 AL N=alice@example.com");
    presence_of(s.alice, "bob@example.com", "online");
    const auto opened = s.alice.request(24, {{"type", "chat_open"}, {"with", json::array{"bob@example.com"}}});
    const std::string room(opened.at("room").as_string());
    const auto rng = words(ns_line(s.bob, "RNG " + room));
    msnp_client bob_sb(static_cast<unsigned short>(std::stoi(rng.at(2).substr(rng.at(2).rfind(':') + 1))));
    bob_sb.command("ANS 1 bob@example.com " + rng.at(4) + " " + room);
    s.alice.wait([](const json::object& o) { return o.at("type") == "joined" && o.at("user") == "bob@example.com"; });

    // A block inside the open conversation silences the blocked side: what
    // Bob sends while blocked reaches nobody (NAK: Alice was all he had),
    // what he sends after the unblock reaches her.
    s.alice.request(25, {{"type", "block"}, {"handle", "bob@example.com"}});
    ns_line(s.bob, "FLN alice@example.com");
    bob_sb.send(chat_message(2, "while blocked"));
    bob_sb.reply("NAK 2");
    s.alice.request(26, {{"type", "unblock"}, {"handle", "bob@example.com"}});
    ns_line(s.bob, "NLN NLN alice@example.com");
    bob_sb.send(chat_message(3, "after the unblock"));
    bob_sb.reply("ACK 3");
    const auto first = s.alice.wait([](const json::object& o) { return o.at("type") == "message"; });
    CHECK(first.at("text") == "after the unblock");
    // Nor does the history show it to her.
    const auto history = s.alice.request(27, {{"type", "history"}, {"room", room}});
    for (const auto& m : history.at("messages").as_array()) CHECK(m.at("text") != "while blocked");
}

TEST_CASE("signing in from MSN Messenger does not sign out the browser, nor the other way round", "[ws][msnp11]") {
    mixed_gateway gw;
    ws_client alice_web(gw.ws_port);
    alice_web.login("alice@example.com", "secret-alice");
    alice_web.request(2, {{"type", "contact_add"}, {"handle", "bob@example.com"}});

    msnp_client alice_msn(gw.msnp_port);
    alice_msn.login_twn("alice@example.com", ticket("alice@example.com"));
    // The browser session is still there and answers.
    CHECK(alice_web.request(3, {{"type", "ping"}}).contains("time"));

    // A second browser tab signs in too: MSN is not signed out.
    ws_client alice_tab(gw.ws_port);
    alice_tab.login("alice@example.com", "secret-alice");
    alice_msn.send("PNG\r\n");
    for (std::string line = alice_msn.line(); !line.starts_with("QNG"); line = alice_msn.line()) {
        CHECK_FALSE(line.starts_with("OUT"));
    }
    CHECK(alice_web.request(4, {{"type", "ping"}}).contains("time"));

    // Bob in a browser calls Alice: every endpoint of hers is invited.
    ws_client bob(gw.ws_port);
    bob.login("bob@example.com", "secret-bob");
    bob.request(2, {{"type", "contact_add"}, {"handle", "alice@example.com"}});
    const auto opened = bob.request(3, {{"type", "chat_open"}, {"with", json::array{"alice@example.com"}}});
    const std::string room(opened.at("room").as_string());
    CHECK(alice_web.event("invite").at("room").as_string() == room);
    CHECK(alice_tab.event("invite").at("room").as_string() == room);
    ns_line(alice_msn, "RNG " + room);
}

TEST_CASE("two browser users chat: invitation, join, text, typing and nudges", "[ws]") {
    mixed_gateway gw;
    ws_client alice(gw.ws_port);
    alice.login("alice@example.com", "secret-alice");
    alice.request(2, {{"type", "contact_add"}, {"handle", "carol@example.com"}});
    ws_client carol(gw.ws_port);
    carol.login("carol@example.com", "secret-carol");
    carol.request(2, {{"type", "contact_add"}, {"handle", "alice@example.com"}});
    presence_of(alice, "carol@example.com", "online");

    const auto opened = alice.request(3, {{"type", "chat_open"}, {"with", json::array{"carol@example.com"}}});
    const std::string room(opened.at("room").as_string());
    CHECK(opened.at("invited").as_array().size() == 1);
    const auto invite = carol.event("invite");
    CHECK(invite.at("room").as_string() == room);
    CHECK(invite.at("from") == "alice@example.com");
    carol.request(3, {{"type", "join"}, {"room", room}});
    alice.wait([](const json::object& o) { return o.at("type") == "joined" && o.at("user") == "carol@example.com"; });

    CHECK(alice.request(4, {{"type", "send"}, {"room", room}, {"text", "hello Carol"}}).at("seq") == 1);
    const auto got = carol.event("message");
    CHECK(got.at("text") == "hello Carol");
    CHECK(got.at("seq") == 1);
    carol.send({{"type", "typing"}, {"room", room}});
    CHECK(alice.event("typing").at("from") == "carol@example.com");
    carol.send({{"type", "nudge"}, {"room", room}});
    CHECK(alice.event("nudge").at("from") == "carol@example.com");
    CHECK(carol.request(4, {{"type", "send"}, {"room", room}, {"text", "hi Alice"}}).at("seq") == 2);
    CHECK(alice.event("message").at("text") == "hi Alice");
}
