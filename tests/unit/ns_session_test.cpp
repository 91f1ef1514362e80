// The notification-server machine against a real embedded backend: logins
// per dialect as in msnp-reference Appendix B, SYN in each grammar,
// presence rendered per watcher dialect, list edits and their RL notices,
// privacy, switchboard brokering and the error numerics of §4.8.
#include "msnp_harness.hpp"

#include <openssl/evp.h>

#include <array>
#include <cstdio>

namespace {

using namespace switchyard;
using test::client;
using test::embedded_fixture;
using test::fake_services;
namespace embedded = gateway::embedded;

using ns_client = client<msnp::ns_session>;

const std::string password = "password-123";
const std::string profile_type = "Content-Type: text/x-msmsgsprofile; charset=UTF-8\r\n";
const std::string mail_data_type = "Content-Type: text/x-msmsgsinitialmdatanotification; charset=UTF-8\r\n";
const std::string empty_ubx = "<Data><PSM></PSM><CurrentMedia></CurrentMedia></Data>";
const std::string stamp = "2000-01-01T00:00:00.0-00:00";
const std::string cvr_urls = " http://messenger.msn.com http://messenger.msn.com\r\n";

std::string md5_hex(const std::string& s) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    REQUIRE(EVP_Digest(s.data(), s.size(), digest.data(), &size, EVP_md5(), nullptr) == 1);
    std::string hex;
    for (unsigned int i = 0; i < size; ++i) {
        char b[3];
        std::snprintf(b, sizeof b, "%02x", digest[i]);
        hex += b;
    }
    return hex;
}

// Removes a leading `MSG Hotmail Hotmail <len>` and its payload from `s`
// and returns the payload.
std::string take_hotmail_message(std::string& s) {
    const std::string head = "MSG Hotmail Hotmail ";
    INFO(s);
    REQUIRE(s.starts_with(head));
    const auto eol = s.find("\r\n");
    REQUIRE(eol != std::string::npos);
    const auto length = std::stoul(s.substr(head.size(), eol - head.size()));
    REQUIRE(s.size() >= eol + 2 + length);
    std::string payload = s.substr(eol + 2, length);
    s.erase(0, eol + 2 + length);
    return payload;
}

void check_profile(const std::string& payload) {
    INFO(payload);
    CHECK(payload.starts_with("MIME-Version: 1.0\r\n" + profile_type + "LoginTime: 1700000000\r\n"));
    CHECK(payload.find("\r\nABCHMigrated: 1\r\nMPOPEnabled: 0\r\n\r\n") != std::string::npos);
    CHECK(payload.ends_with("\r\n\r\n"));
}

void check_mail_data(const std::string& payload) {
    INFO(payload);
    CHECK(payload.starts_with("MIME-Version: 1.0\r\n" + mail_data_type + "\r\nMail-Data: <MD><E><I>0</I>"));
}

std::string user(const std::string& handle) { return "user:" + handle; }

struct world {
    embedded_fixture f;
    embedded::database db{f.opt.file, embedded::durability::normal};
    fake_services svc{db};

    // An account that can log in with MD5 (MSNP2-7) and TWN (MSNP8-12).
    void add(const std::string& handle, const std::string& name = {}) {
        f.add_user(handle, name);
        REQUIRE(embedded::accounts(db, fake_services::cheap_kdf()).set_password(handle, password, true));
    }

    frame::frame ask(const std::string& sender, frame::body b) { return f.ask(sender, user(sender), std::move(b)); }

    // Both on each other's FL and AL (as in Appendix B), with the reverse-list
    // notices applied before anyone logs in.
    void befriend(const std::string& a, const std::string& b) {
        auto& qa = f.subscribe(user(a));
        auto& qb = f.subscribe(user(b));
        for (const auto& [owner, other] : {std::pair{a, b}, std::pair{b, a}}) {
            for (const auto which : {frame::list::forward, frame::list::allow}) {
                frame::roster_change add;
                add.which = which;
                add.handle = other;
                test::as<frame::roster_change>(ask(owner, add));
            }
        }
        for (auto* q : {&qa, &qb}) {
            for (;;) {
                auto got = q->pop();
                REQUIRE(got);
                if (std::holds_alternative<frame::roster_change>(got->content)) break;
            }
        }
        f.be->unsubscribe(user(a));
        f.be->unsubscribe(user(b));
    }

    std::string contact_id(const std::string& owner, const std::string& contact) {
        const auto r = test::as<frame::roster>(ask(owner, frame::roster_get{}));
        for (const auto& e : r.entries) {
            if (e.handle == contact) return e.contact_id;
        }
        FAIL("no " << contact << " on " << owner << "'s lists");
        return {};
    }
};

// VER, CVR and USR for `dialect`; returns what USR's final step wrote.
std::string login(world& w, ns_client& c, int dialect, const std::string& handle) {
    const std::string d = std::to_string(dialect);
    REQUIRE(c.send("VER 1 MSNP" + d + " CVR0") == "VER 1 MSNP" + d + " CVR0\r\n");
    REQUIRE(c.send("CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 7.5.0324 MSMSGS " + handle) ==
            "CVR 2 7.5.0324 7.5.0324 7.5.0324" + cvr_urls);
    std::string ok;
    if (dialect <= 7) {
        const std::string salt = w.svc.md5_salt(handle);
        REQUIRE(c.send("USR 3 MD5 I " + handle) == "USR 3 MD5 S " + salt + "\r\n");
        ok = c.send("USR 4 MD5 S " + md5_hex(salt + password));
    } else {
        REQUIRE(c.send("USR 3 TWN I " + handle) == "USR 3 TWN S ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1\r\n");
        ok = c.send("USR 4 TWN S ticket-" + handle);
    }
    INFO(ok);
    REQUIRE(ok.starts_with("USR 4 OK " + handle));
    REQUIRE_FALSE(c.is_closed());
    return ok;
}

// Login, SYN and the first CHG: the client is online and sees its contacts.
std::string sign_in(world& w, ns_client& c, int dialect, const std::string& handle, const std::string& chg = "NLN") {
    login(w, c, dialect, handle);
    c.send(dialect >= 10 ? "SYN 5 0 0" : "SYN 5 0");
    return c.send("CHG 6 " + chg);
}

// ------------------------------------------------------------ logins, as Appendix B

TEST_CASE("MSNP5 MD5 login, SYN and presence as in Appendix B.1", "[ns]") {
    world w;
    w.add("alice@example.com");
    w.add("bob@example.com");
    w.befriend("alice@example.com", "bob@example.com");

    ns_client a(w.f, w.svc);
    CHECK(a.send("VER 1 MSNP5 CVR0") == "VER 1 MSNP5 CVR0\r\n");  // §3.1 recommendation: CVR0 echoed
    CHECK(a.send("CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 4.7.2009 MSMSGS alice@example.com") ==
          "CVR 2 4.7.2009 4.7.2009 4.7.2009" + cvr_urls);
    CHECK(a.send("INF 3") == "INF 3 MD5\r\n");
    const std::string salt = w.svc.md5_salt("alice@example.com");
    CHECK(salt.size() == 15);
    CHECK(a.send("USR 4 MD5 I alice@example.com") == "USR 4 MD5 S " + salt + "\r\n");
    std::string ok = a.send("USR 5 MD5 S " + md5_hex(salt + password));
    const std::string usr_ok = "USR 5 OK alice@example.com alice@example.com\r\n";
    REQUIRE(ok.starts_with(usr_ok));
    ok.erase(0, usr_ok.size());
    check_profile(take_hotmail_message(ok));
    CHECK(ok.empty());

    // Alice's list version is 3: FL, AL, then Bob's RL notice.
    CHECK(a.send("SYN 6 0") == "SYN 6 3\r\n"
                               "GTC 6 3 A\r\n"
                               "BLP 6 3 AL\r\n"
                               "LST 6 FL 3 1 1 bob@example.com bob@example.com\r\n"
                               "LST 6 AL 3 1 1 bob@example.com bob@example.com\r\n"
                               "LST 6 BL 3 0 0\r\n"
                               "LST 6 RL 3 1 1 bob@example.com bob@example.com\r\n");
    CHECK(a.send("CHG 7 NLN") == "CHG 7 NLN\r\n");  // Bob offline: no ILN

    ns_client b(w.f, w.svc);
    login(w, b, 5, "bob@example.com");
    b.send("SYN 6 0");
    CHECK(b.send("CHG 7 NLN") == "CHG 7 NLN\r\nILN 7 NLN alice@example.com alice@example.com\r\n");
    CHECK(a.wait_for("NLN NLN bob@example.com bob@example.com\r\n") ==
          "NLN NLN bob@example.com bob@example.com\r\n");

    CHECK(a.send("PNG") == "QNG\r\n");  // bare below MSNP9
    const std::string xfr = a.send("XFR 8 SB");
    const std::string xfr_head = "XFR 8 SB 127.0.0.1:1863 CKI ";
    REQUIRE(xfr.starts_with(xfr_head));
    const auto grant = w.svc.redeem_sb_cookie(xfr.substr(xfr_head.size(), xfr.size() - xfr_head.size() - 2),
                                              "alice@example.com");
    REQUIRE(grant);
    CHECK(grant->handle == "alice@example.com");
    CHECK(grant->room.starts_with("room:sb"));
    CHECK(grant->dialect == 5);
    CHECK(grant->display_name == "alice@example.com");

    CHECK(b.send("OUT") == "");  // never echoed
    CHECK(b.is_closed());
    b.closed();
    CHECK(a.wait_for("FLN bob@example.com\r\n") == "FLN bob@example.com\r\n");
}

TEST_CASE("MSNP2 and MSNP7 logins and the MSNP7 SYN with LSG", "[ns]") {
    world w;
    w.add("alice@example.com");
    w.add("bob@example.com");
    w.befriend("alice@example.com", "bob@example.com");

    ns_client two(w.f, w.svc);
    std::string ok = login(w, two, 2, "alice@example.com");
    const std::string ok2 = "USR 4 OK alice@example.com alice@example.com\r\n";  // MSNP2-5: no verified flag
    REQUIRE(ok.starts_with(ok2));
    ok.erase(0, ok2.size());
    check_profile(take_hotmail_message(ok));
    CHECK(two.send("SYN 5 3") == "SYN 5 4\r\n"  // the client has 3: answer another version (§4.3)
                                 "GTC 5 4 A\r\n"
                                 "BLP 5 4 AL\r\n"
                                 "LST 5 FL 4 1 1 bob@example.com bob@example.com\r\n"
                                 "LST 5 AL 4 1 1 bob@example.com bob@example.com\r\n"
                                 "LST 5 BL 4 0 0\r\n"
                                 "LST 5 RL 4 1 1 bob@example.com bob@example.com\r\n");

    ns_client seven(w.f, w.svc);
    ok = login(w, seven, 7, "bob@example.com");
    const std::string ok7 = "USR 4 OK bob@example.com bob@example.com 1\r\n";  // MSNP6-7: verified
    REQUIRE(ok.starts_with(ok7));
    ok.erase(0, ok7.size());
    check_profile(take_hotmail_message(ok));
    CHECK(seven.send("SYN 5 0") == "SYN 5 3\r\n"
                                   "GTC 5 3 A\r\n"
                                   "BLP 5 3 AL\r\n"
                                   "LSG 5 3 1 1 0 Other%20Contacts 0\r\n"
                                   "LST 5 FL 3 1 1 alice@example.com alice@example.com 0\r\n"
                                   "LST 5 AL 3 1 1 alice@example.com alice@example.com\r\n"
                                   "LST 5 BL 3 0 0\r\n"
                                   "LST 5 RL 3 1 1 alice@example.com alice@example.com\r\n");
}

TEST_CASE("MSNP8 and MSNP9 TWN logins and the MSNP8-9 SYN", "[ns]") {
    world w;
    w.add("alice@example.com");
    w.add("bob@example.com");
    w.befriend("alice@example.com", "bob@example.com");

    for (const int dialect : {8, 9}) {
        INFO("MSNP" << dialect);
        ns_client a(w.f, w.svc);
        std::string ok = login(w, a, dialect, "alice@example.com");
        const std::string usr_ok = "USR 4 OK alice@example.com alice@example.com 1 0\r\n";
        REQUIRE(ok.starts_with(usr_ok));
        ok.erase(0, usr_ok.size());
        check_profile(take_hotmail_message(ok));
        CHECK(ok.empty());
        CHECK(a.send("SYN 5 0") == "SYN 5 3 1 1\r\n"
                                   "GTC A\r\n"
                                   "BLP AL\r\n"
                                   "LSG 0 Other%20Contacts 0\r\n"
                                   "LST bob@example.com bob@example.com 11 0\r\n");
        CHECK(a.send("CHG 6 NLN 0") == "CHG 6 NLN 0\r\n");
        CHECK(a.send("PNG") == (dialect == 8 ? "QNG\r\n" : "QNG 60\r\n"));
        CHECK(a.send("OUT") == "");
        a.closed();
    }
}

TEST_CASE("MSNP10-12 TWN logins, SBS, the timestamp SYN and GCF", "[ns]") {
    world w;
    w.add("alice@example.com");
    w.add("bob@example.com");
    w.befriend("alice@example.com", "bob@example.com");
    const std::string guid = w.contact_id("alice@example.com", "bob@example.com");
    REQUIRE(guid.size() == 36);

    for (const int dialect : {10, 11, 12}) {
        INFO("MSNP" << dialect);
        ns_client a(w.f, w.svc);
        std::string ok = login(w, a, dialect, "alice@example.com");
        std::string head = "USR 4 OK alice@example.com 1 0\r\n";
        if (dialect >= 11) head += "SBS 0 null\r\n";
        REQUIRE(ok.starts_with(head));
        ok.erase(0, head.size());
        check_profile(take_hotmail_message(ok));
        CHECK(ok.empty());

        if (dialect >= 11) {
            CHECK(a.send("GCF 5 Shields.xml") == "715 5\r\n");  // before SYN (§4.1)
        }
        const std::string lst = "LST N=bob@example.com F=bob@example.com C=" + guid + (dialect == 12 ? " 11 1" : " 11");
        const std::string list = "GTC A\r\nBLP AL\r\nPRP MFN alice@example.com\r\n" + lst + "\r\n";
        CHECK(a.send("SYN 6 0 0") == "SYN 6 " + stamp + " " + stamp + " 1 0\r\n" + list);
        // A client that has the stamp gets another one, and the full list again.
        CHECK(a.send("SYN 7 " + stamp + " " + stamp) ==
              "SYN 7 2000-01-01T00:00:01.0-00:00 2000-01-01T00:00:01.0-00:00 1 0\r\n" + list);

        if (dialect >= 11) {
            std::string gcf = a.send("GCF 8 Shields.xml");
            const std::string xml = "<?xml version=\"1.0\" encoding=\"utf-8\" ?><config><shield><cli maj=\"7\" "
                                    "min=\"0\" minbld=\"0\" maxbld=\"9999\" deny=\" \" /></shield><block></block></config>";
            CHECK(gcf == "GCF 8 Shields.xml " + std::to_string(xml.size()) + "\r\n" + xml);
            std::string chg = a.send("CHG 9 NLN 0");
            REQUIRE(chg.starts_with("CHG 9 NLN 0\r\n"));
            chg.erase(0, 13);
            check_mail_data(take_hotmail_message(chg));
            CHECK(chg.empty());
            CHECK(a.send("CHG 10 BSY 0") == "CHG 10 BSY 0\r\n");  // later CHGs: echo only
            CHECK(a.send("UUX 11 0") == "UUX 11 0\r\n");
        } else {
            CHECK(a.send("GCF 8 Shields.xml") == "502 8\r\n");
            CHECK(a.send("CHG 9 NLN 0") == "CHG 9 NLN 0\r\n");
        }
        CHECK(a.send("PNG") == "QNG 60\r\n");
        a.send("OUT");
        a.closed();
    }
}

// ------------------------------------------------------------ presence

TEST_CASE("MSNP12 presence: ILN and UBX on the first CHG, NLN pushed, FLN on close (Appendix B.2)", "[ns]") {
    world w;
    w.add("alice@example.com");
    w.add("bob@example.com");
    w.befriend("alice@example.com", "bob@example.com");

    ns_client a(w.f, w.svc);
    login(w, a, 12, "alice@example.com");
    a.send("SYN 5 0 0");
    std::string chg = a.send("CHG 6 NLN 0");
    REQUIRE(chg.starts_with("CHG 6 NLN 0\r\n"));  // Bob offline: no ILN

    ns_client b(w.f, w.svc);
    login(w, b, 12, "bob@example.com");
    b.send("SYN 5 0 0");
    chg = b.send("CHG 6 NLN 0");
    const std::string burst = "CHG 6 NLN 0\r\n"
                              "ILN 6 NLN alice@example.com alice@example.com 0 %3Cmsnobj%2F%3E\r\n"
                              "UBX alice@example.com 53\r\n" +
                              empty_ubx;
    REQUIRE(chg.starts_with(burst));
    chg.erase(0, burst.size());
    check_mail_data(take_hotmail_message(chg));
    CHECK(chg.empty());

    // Coming online without a personal message: NLN alone (§4.2).
    const std::string nln = "NLN NLN bob@example.com bob@example.com 0 %3Cmsnobj%2F%3E\r\n";
    CHECK(a.wait_for(nln) == nln);

    // Hidden: watchers see FLN, and no switchboard may be started (§4.2).
    CHECK(b.send("CHG 7 HDN 0") == "CHG 7 HDN 0\r\n");
    CHECK(a.wait_for("FLN bob@example.com\r\n") == "FLN bob@example.com\r\n");
    CHECK(b.send("XFR 8 SB") == "913 8\r\n");
    CHECK(b.send("CHG 9 AWY 0") == "CHG 9 AWY 0\r\n");
    const std::string away = "NLN AWY bob@example.com bob@example.com 0 %3Cmsnobj%2F%3E\r\n";
    CHECK(a.wait_for(away).starts_with(away));

    b.closed();  // the socket drops without OUT
    CHECK(a.wait_for("FLN bob@example.com\r\n") == "FLN bob@example.com\r\n");
}

TEST_CASE("One user's presence in each watcher's dialect", "[ns]") {
    world w;
    for (const auto* h : {"alice@example.com", "bob@example.com", "dave@example.com", "carol@example.com"}) {
        w.add(h);
    }
    w.befriend("carol@example.com", "alice@example.com");
    w.befriend("carol@example.com", "bob@example.com");
    w.befriend("carol@example.com", "dave@example.com");

    ns_client five(w.f, w.svc), eight(w.f, w.svc), twelve(w.f, w.svc), carol(w.f, w.svc);
    sign_in(w, five, 5, "alice@example.com");
    sign_in(w, eight, 8, "dave@example.com", "NLN 0");
    sign_in(w, twelve, 12, "bob@example.com", "NLN 0");

    const std::string msnobj = "%3Cmsnobj%20Creator%3D%22carol%40example.com%22%20Type%3D%223%22%2F%3E";
    sign_in(w, carol, 9, "carol@example.com", "BSY 268435456 " + msnobj);

    CHECK(five.wait_for("NLN BSY carol@example.com carol@example.com\r\n") ==
          "NLN BSY carol@example.com carol@example.com\r\n");
    CHECK(eight.wait_for("NLN BSY carol@example.com carol@example.com 268435456\r\n") ==
          "NLN BSY carol@example.com carol@example.com 268435456\r\n");
    const std::string nln12 = "NLN BSY carol@example.com carol@example.com 268435456 " + msnobj + "\r\n";
    CHECK(twelve.wait_for(nln12) == nln12);
}

TEST_CASE("A personal message set with UUX reaches MSNP11 and MSNP12 watchers as UBX", "[ns]") {
    world w;
    w.add("alice@example.com");
    w.add("bob@example.com");
    w.befriend("alice@example.com", "bob@example.com");

    ns_client a(w.f, w.svc), b(w.f, w.svc);
    sign_in(w, a, 11, "alice@example.com", "NLN 0");
    sign_in(w, b, 12, "bob@example.com", "NLN 0");
    a.wait_for("NLN NLN bob@example.com");

    const std::string doc = "<Data><PSM>fish &amp; chips</PSM><CurrentMedia></CurrentMedia></Data>";
    CHECK(a.send("UUX 7 " + std::to_string(doc.size()), doc) == "UUX 7 0\r\n");
    const std::string ubx = "UBX alice@example.com " + std::to_string(doc.size()) + "\r\n" + doc;
    CHECK(b.wait_for(ubx) == "NLN NLN alice@example.com alice@example.com 0 %3Cmsnobj%2F%3E\r\n" + ubx);

    const std::string media = "<Data><PSM>&lt;b&gt;</PSM><CurrentMedia>\\0Music\\01\\0{0}\\0Song\\0\\0</CurrentMedia>"
                              "<MachineGuid>{0}</MachineGuid></Data>";
    CHECK(b.send("UUX 7 " + std::to_string(media.size()), media) == "UUX 7 0\r\n");
    // Rebuilt without MachineGuid (§4.2).
    const std::string rebuilt = "<Data><PSM>&lt;b&gt;</PSM><CurrentMedia>\\0Music\\01\\0{0}\\0Song\\0\\0</CurrentMedia></Data>";
    CHECK(a.wait_for(rebuilt).ends_with("UBX bob@example.com " + std::to_string(rebuilt.size()) + "\r\n" + rebuilt));

    // A display-name change is an NLN alone: the personal message stays.
    CHECK(a.send("PRP 8 MFN Alice%20A.") == "PRP 8 MFN Alice%20A.\r\n");
    const std::string renamed = "NLN NLN alice@example.com Alice%20A. 0 %3Cmsnobj%2F%3E\r\n";
    CHECK(b.wait_for(renamed) == renamed);
    ns_client again(w.f, w.svc);  // Bob signs in anew and finds the PSM in Alice's UBX
    CHECK(sign_in(w, again, 11, "bob@example.com", "NLN 0").find(ubx) != std::string::npos);

    CHECK(a.send("UUX 9 9", "<Data><PS") == "");  // not a Data document: closed (YW)
    CHECK(a.is_closed());

    // Coming online with a personal message: NLN, then the UBX.
    ns_client back(w.f, w.svc);
    sign_in(w, back, 11, "alice@example.com", "NLN 0");
    const std::string online = "NLN NLN alice@example.com Alice%20A. 0 %3Cmsnobj%2F%3E\r\n" + ubx;
    CHECK(again.wait_for(online).ends_with(online));
}

TEST_CASE("Phone numbers: PRP, the SYN's PRP and BPR lines, and BPR to watchers", "[ns]") {
    world w;
    for (const auto* who : {"alice@example.com", "bob@example.com", "carol@example.com"}) w.add(who);
    w.befriend("alice@example.com", "bob@example.com");
    w.befriend("alice@example.com", "carol@example.com");

    ns_client a(w.f, w.svc), b(w.f, w.svc), c(w.f, w.svc);
    sign_in(w, a, 5, "alice@example.com");
    sign_in(w, b, 9, "bob@example.com");
    sign_in(w, c, 12, "carol@example.com", "NLN 0");

    // Bob's and Carol's objects push their NLNs in either order.
    a.wait_for_all({"NLN NLN bob@example.com", "NLN NLN carol@example.com"});
    // The reply carries the list version up to MSNP9 (§4.3); watchers get BPR.
    CHECK(a.send("PRP 10 PHH 555%200100") == "PRP 10 6 PHH 555%200100\r\n");
    CHECK(b.wait_for("BPR 3 alice@example.com PHH 555%200100\r\n") == "BPR 3 alice@example.com PHH 555%200100\r\n");
    CHECK(c.wait_for("BPR alice@example.com PHH 555%200100\r\n") == "BPR alice@example.com PHH 555%200100\r\n");
    CHECK(a.send("PRP 11 MOB Y") == "PRP 11 6 MOB Y\r\n");
    CHECK(b.wait_for("BPR 3 alice@example.com MOB Y\r\n") == "BPR 3 alice@example.com MOB Y\r\n");
    // MBE is the owner's own; a field cleared that was never set changes nothing.
    CHECK(a.send("PRP 12 MBE Y") == "PRP 12 6 MBE Y\r\n");
    CHECK(a.send("PRP 13 PHW") == "PRP 13 6 PHW\r\n");
    CHECK(a.send("PRP 14 PHM 555%200199") == "PRP 14 6 PHM 555%200199\r\n");
    CHECK(b.wait_for("BPR 3 alice@example.com PHM") == "BPR 3 alice@example.com PHM 555%200199\r\n");

    CHECK(a.send("SYN 15 5") == "SYN 15 6\r\nGTC 15 6 A\r\nBLP 15 6 AL\r\n"
                               "PRP 15 6 PHH 555%200100\r\nPRP 15 6 PHM 555%200199\r\nPRP 15 6 MOB Y\r\n"
                               "PRP 15 6 MBE Y\r\n"
                               "LST 15 FL 6 1 2 bob@example.com bob@example.com\r\n"
                               "LST 15 FL 6 2 2 carol@example.com carol@example.com\r\n"
                               "LST 15 AL 6 1 2 bob@example.com bob@example.com\r\n"
                               "LST 15 AL 6 2 2 carol@example.com carol@example.com\r\n"
                               "LST 15 BL 6 0 0\r\n"
                               "LST 15 RL 6 1 2 bob@example.com bob@example.com\r\n"
                               "LST 15 RL 6 2 2 carol@example.com carol@example.com\r\n");
    CHECK(b.send("SYN 16 0") == "SYN 16 3 1 1\r\nGTC A\r\nBLP AL\r\nLSG 0 Other%20Contacts 0\r\n"
                               "LST alice@example.com alice@example.com 11 0\r\n"
                               "BPR PHH 555%200100\r\nBPR PHM 555%200199\r\nBPR MOB Y\r\n");
    c.wait_for("BPR alice@example.com PHM 555%200199\r\n");
    const std::string synced = c.send("SYN 17 0 0");
    INFO(synced);
    CHECK(synced.ends_with(" 11 1\r\nBPR PHH 555%200100\r\nBPR PHM 555%200199\r\nBPR MOB Y\r\n"));
    // MSNP5-7 name the contact in each BPR, after its FL line.
    ns_client b7(w.f, w.svc);
    sign_in(w, b7, 7, "bob@example.com");
    CHECK(b7.send("SYN 18 0").find("LST 18 FL 3 1 1 alice@example.com alice@example.com 0\r\n"
                                   "BPR 3 alice@example.com PHH 555%200100\r\n"
                                   "BPR 3 alice@example.com PHM 555%200199\r\n"
                                   "BPR 3 alice@example.com MOB Y\r\nLST 18 AL") != std::string::npos);

    // Cleared: the bare field name; a blocked watcher's list shows no phones.
    a.wait_for("NLN NLN bob@example.com");  // Bob's MSNP7 login replaced his MSNP9 one
    CHECK(a.send("PRP 19 PHM") == "PRP 19 6 PHM\r\n");
    CHECK(c.wait_for("BPR alice@example.com PHM\r\n") == "BPR alice@example.com PHM\r\n");
    CHECK(a.send("REM 20 AL carol@example.com") == "REM 20 AL 7 carol@example.com\r\n");
    CHECK(a.send("ADD 21 BL carol@example.com carol@example.com") ==
          "ADD 21 BL 8 carol@example.com carol@example.com\r\n");
    c.wait_for("FLN alice@example.com\r\n");
    const std::string hidden = c.send("SYN 22 0 0");
    INFO(hidden);
    CHECK(hidden.ends_with(" 11 1\r\n"));

    CHECK(a.send("PRP 23 PHX 1") == "201 23\r\n");
    CHECK(a.send("PRP 24 MOB maybe") == "201 24\r\n");
    CHECK(a.send("PRP 25 PHH %C3") == "201 25\r\n");
    CHECK(a.send("PRP 26 PHH " + std::string(96, '5')) == "");  // closed, as Escargot does
    CHECK(a.is_closed());
}

// ------------------------------------------------------------ lists

TEST_CASE("MSNP7 ADD and REM, with ADD 0 RL and REM 0 RL on the other side", "[ns]") {
    world w;
    w.add("alice@example.com");
    w.add("carol@example.com", "Carol");

    ns_client a(w.f, w.svc), c(w.f, w.svc);
    sign_in(w, a, 7, "alice@example.com");
    sign_in(w, c, 5, "carol@example.com");

    // Carol is online and lets everyone see her: the ADD is followed by her ILN (§4.3).
    CHECK(a.send("ADD 7 FL carol@example.com My%20Carol 0") ==
          "ADD 7 FL 1 carol@example.com My%20Carol 0\r\nILN 7 NLN carol@example.com Carol\r\n");
    CHECK(c.wait_for("ADD 0 RL 1 alice@example.com alice@example.com\r\n") ==
          "ADD 0 RL 1 alice@example.com alice@example.com\r\n");
    CHECK(a.send("ADD 8 FL carol@example.com Carol 0") == "215 8\r\n");
    CHECK(a.send("ADD 9 AL carol@example.com Carol") == "ADD 9 AL 2 carol@example.com Carol\r\n");
    CHECK(a.send("ADD 10 BL carol@example.com Carol") == "219 10\r\n");
    CHECK(a.send("ADD 11 FL nobody@example.com nobody 0") == "205 11\r\n");
    CHECK(a.send("ADD 12 FL not-a-handle x 0") == "201 12\r\n");
    CHECK(a.send("ADD 13 RL carol@example.com Carol") == "201 13\r\n");
    // Lifting a block that is not there: done already, same version (§3.10).
    CHECK(a.send("REM 14 BL carol@example.com") == "REM 14 BL 2 carol@example.com\r\n");

    CHECK(a.send("REM 15 FL carol@example.com") == "REM 15 FL 3 carol@example.com\r\n");
    CHECK(c.wait_for("REM 0 RL 2 alice@example.com\r\n") == "REM 0 RL 2 alice@example.com\r\n");

    // A contact's nickname: Carol was just removed from the FL.
    CHECK(a.send("REA 16 carol@example.com Caz") == "216 16\r\n");
    // The own name.
    CHECK(a.send("REA 17 alice@example.com Alice%20A.") == "REA 17 3 alice@example.com Alice%20A.\r\n");
    CHECK(a.send("REA 18 alice@example.com %FF") == "201 18\r\n");  // not UTF-8
    CHECK(a.send("ADC 19 FL N=carol@example.com") == "502 19\r\n");  // MSNP10+ command
}

TEST_CASE("MSNP7 groups: ADG, ADD to a group, REG, RMG keep their numbers until SYN", "[ns]") {
    world w;
    w.add("alice@example.com");
    w.add("bob@example.com");
    w.befriend("alice@example.com", "bob@example.com");

    ns_client a(w.f, w.svc);
    sign_in(w, a, 7, "alice@example.com");
    CHECK(a.send("ADG 20 Friends 0") == "ADG 20 4 Friends 1 0\r\n");
    CHECK(a.send("ADG 21 Work 0") == "ADG 21 5 Work 2 0\r\n");
    CHECK(a.send("ADG 22 Friends 0") == "228 22\r\n");
    CHECK(a.send("ADG 23 " + std::string(62, 'x') + " 0") == "229 23\r\n");
    CHECK(a.send("ADD 24 FL bob@example.com bob@example.com 2") == "ADD 24 FL 6 bob@example.com bob@example.com 2\r\n");
    CHECK(a.send("ADD 25 FL bob@example.com bob@example.com 9") == "224 25\r\n");
    CHECK(a.send("RMG 26 0") == "230 26\r\n");
    CHECK(a.send("RMG 27 1") == "RMG 27 7 1\r\n");
    // Group 2 is still 2 for this client, and 1 is gone.
    CHECK(a.send("REG 28 2 Job 0") == "REG 28 8 2 Job 0\r\n");
    CHECK(a.send("REG 29 1 Gone 0") == "224 29\r\n");
    // Moving Bob to Other Contacts: ADD to 0 (nothing to store yet), then REM from 2.
    CHECK(a.send("ADD 30 FL bob@example.com bob@example.com 0") == "ADD 30 FL 8 bob@example.com bob@example.com 0\r\n");
    CHECK(a.send("REM 31 FL bob@example.com 2") == "REM 31 FL 9 bob@example.com 2\r\n");
    CHECK(a.send("SYN 32 0") == "SYN 32 9\r\n"
                                "GTC 32 9 A\r\n"
                                "BLP 32 9 AL\r\n"
                                "LSG 32 9 1 2 0 Other%20Contacts 0\r\n"
                                "LSG 32 9 2 2 1 Job 0\r\n"
                                "LST 32 FL 9 1 1 bob@example.com bob@example.com 0\r\n"
                                "LST 32 AL 9 1 1 bob@example.com bob@example.com\r\n"
                                "LST 32 BL 9 0 0\r\n"
                                "LST 32 RL 9 1 1 bob@example.com bob@example.com\r\n");
    CHECK(a.send("ADD 33 FL bob@example.com bob@example.com 1") == "ADD 33 FL 10 bob@example.com bob@example.com 1\r\n");
}

TEST_CASE("MSNP12 ADC and REM by GUID, with ADC 0 RL and REM 0 RL on the other side", "[ns]") {
    world w;
    w.add("alice@example.com");
    w.add("bob@example.com");
    w.add("carol@example.com", "Carol");

    ns_client a(w.f, w.svc), c(w.f, w.svc);
    sign_in(w, a, 12, "alice@example.com", "NLN 0");
    sign_in(w, c, 11, "carol@example.com", "NLN 0");

    const std::string added = a.send("ADC 7 FL N=carol@example.com F=My%20Carol");
    const std::string guid = w.contact_id("alice@example.com", "carol@example.com");
    CHECK(added == "ADC 7 FL N=carol@example.com F=My%20Carol C=" + guid +
                       "\r\nILN 7 NLN carol@example.com Carol 0 %3Cmsnobj%2F%3E\r\nUBX carol@example.com 53\r\n" +
                       empty_ubx);
    CHECK(c.wait_for("ADC 0 RL N=alice@example.com F=alice@example.com\r\n") ==
          "ADC 0 RL N=alice@example.com F=alice@example.com\r\n");
    CHECK(a.send("ADC 8 FL N=carol@example.com F=Carol") == "215 8\r\n");
    CHECK(a.send("ADC 9 FL N=nobody@example.com F=nobody") == "208 9\r\n");
    CHECK(a.send("ADC 10 FL N=@@a F=x") == "201 10\r\n");
    CHECK(a.send("ADC 11 AL N=carol@example.com") == "ADC 11 AL N=carol@example.com\r\n");
    CHECK(a.send("ADC 12 BL N=carol@example.com") == "219 12\r\n");
    CHECK(a.send("REM 13 FL 00000000-0000-0000-0000-000000000000") == "216 13\r\n");
    CHECK(a.send("ADD 14 FL carol@example.com Carol") == "502 14\r\n");  // MSNP2-9 command
    CHECK(a.send("REA 15 alice@example.com Alice") == "502 15\r\n");    // removed in MSNP10 (§4.3)

    // Groups with GUIDs, Escargot's reply forms (§4.3).
    const std::string adg = a.send("ADG 16 Friends");
    REQUIRE(adg.starts_with("ADG 16 Friends "));
    const std::string group = adg.substr(15, 36);
    CHECK(adg == "ADG 16 Friends " + group + " 0\r\n");
    CHECK(a.send("ADC 17 FL C=" + guid + " " + group) == "ADC 17 FL C=" + guid + " " + group + "\r\n");
    CHECK(a.send("ADC 18 FL C=" + guid + " 11111111-1111-1111-1111-111111111111") == "224 18\r\n");
    CHECK(a.send("REG 19 " + group + " Pals") == "REG 19 1 Pals " + group + " 0\r\n");
    CHECK(a.send("REM 20 FL " + guid + " " + group) == "REM 20 FL " + guid + " " + group + "\r\n");
    CHECK(a.send("RMG 21 Pals") == "RMG 21 1 " + group + "\r\n");  // by name: the MSN 7.0 quirk
    CHECK(a.send("RMG 22 " + group) == "224 22\r\n");
    const std::string family = a.send("ADG 23 Family").substr(14, 36);
    const std::string bob_added = a.send("ADC 24 FL N=bob@example.com F=Bob " + family);
    CHECK(bob_added == "ADC 24 FL N=bob@example.com F=Bob C=" + w.contact_id("alice@example.com", "bob@example.com") +
                           " " + family + "\r\n");  // Bob is offline: no ILN

    CHECK(a.send("SBP 25 " + guid + " MFN Caz") == "SBP 25 " + guid + " MFN Caz\r\n");  // renames the contact
    CHECK(a.send("REM 26 FL " + guid) == "REM 26 FL " + guid + "\r\n");
    CHECK(c.wait_for("REM 0 RL N=alice@example.com\r\n") == "REM 0 RL N=alice@example.com\r\n");
}

// A client builds its lists from the SYN reply and takes live changes after
// it (§4.3). A reverse-list notice that reaches the session while its SYN is
// on the way is held: dropped when the reply already shows it, sent after
// the reply when it is newer. The frames are fed by hand, in the order that
// a race between the two objects can produce.
TEST_CASE("Reverse-list notices before the SYN reply wait for it and are never shown twice", "[ns]") {
    world w;
    w.add("alice@example.com", "Alice");
    w.add("bob@example.com");
    const auto syn_request = [](ns_client& c, std::vector<std::string> params) {
        msnp::output out = c.machine().on_command(msnp::command{"SYN", std::move(params), {}, false});
        REQUIRE(out.frames.size() == 1);
        REQUIRE(std::holds_alternative<frame::roster_get>(out.frames[0].content));
        return out.frames[0].corr;
    };
    const auto roster_reply = [&](std::uint64_t corr) {
        return frame::frame{corr, user("bob@example.com"), {}, w.ask("bob@example.com", frame::roster_get{}).content};
    };
    frame::roster_change added{frame::change_op::add, frame::list::reverse, "alice@example.com", "Alice", {}, 1, {},
                               {}};
    const frame::frame notice{0, user("bob@example.com"), "alice@example.com", added};
    const auto alice_adds_bob = [&] {
        test::as<frame::roster_change>(w.ask("alice@example.com", frame::roster_change{frame::change_op::add,
                                                                                       frame::list::forward,
                                                                                       "bob@example.com", {}, {}, 0,
                                                                                       {}, {}}));
    };

    SECTION("the reply already shows the change: it is not sent again") {
        ns_client b(w.f, w.svc);
        login(w, b, 11, "bob@example.com");
        const auto corr = syn_request(b, {"5", "0", "0"});
        alice_adds_bob();
        CHECK(b.machine().on_frame(notice).bytes.empty());
        const std::string reply = b.machine().on_frame(roster_reply(corr)).bytes;
        INFO(reply);
        CHECK(reply.starts_with("SYN 5 "));
        CHECK(reply.ends_with("LST N=alice@example.com 8\r\n"));
        CHECK(reply.find("ADC 0 RL") == std::string::npos);
    }
    SECTION("the change is newer than the reply: it follows it") {
        ns_client b(w.f, w.svc);
        login(w, b, 5, "bob@example.com");
        const auto corr = syn_request(b, {"5", "0"});
        const frame::frame before = roster_reply(corr);  // the object answered before Alice's add
        alice_adds_bob();
        CHECK(b.machine().on_frame(notice).bytes.empty());
        CHECK(b.machine().on_frame(before).bytes ==
              "SYN 5 1\r\nGTC 5 1 A\r\nBLP 5 1 AL\r\nLST 5 FL 1 0 0\r\nLST 5 AL 1 0 0\r\n"
              "LST 5 BL 1 0 0\r\nLST 5 RL 1 0 0\r\nADD 0 RL 1 alice@example.com Alice\r\n");
        // Once synchronised, notices are live.
        added.op = frame::change_op::remove;
        added.version = 2;
        CHECK(b.machine().on_frame({0, user("bob@example.com"), "alice@example.com", added}).bytes ==
              "REM 0 RL 2 alice@example.com\r\n");
    }
    SECTION("before the SYN is asked for, the SYN to come shows the change") {
        ns_client b(w.f, w.svc);
        login(w, b, 11, "bob@example.com");
        CHECK(b.machine().on_frame(notice).bytes.empty());
        alice_adds_bob();
        const std::string reply = b.send("SYN 5 0 0");
        CHECK(reply.ends_with("LST N=alice@example.com 8\r\n"));
        CHECK(reply.find("ADC 0 RL") == std::string::npos);
    }
    SECTION("a client that sets a status without synchronising gets the notice then") {
        ns_client b(w.f, w.svc);
        login(w, b, 11, "bob@example.com");
        CHECK(b.machine().on_frame(notice).bytes.empty());
        const std::string chg = b.send("CHG 5 NLN 0");
        INFO(chg);
        CHECK(chg.starts_with("CHG 5 NLN 0\r\n"));
        CHECK(chg.find("ADC 0 RL N=alice@example.com F=Alice\r\n") != std::string::npos);
        CHECK(b.machine().on_frame(notice).bytes == "ADC 0 RL N=alice@example.com F=Alice\r\n");
    }
}

TEST_CASE("Blocking a contact shows it FLN at once", "[ns]") {
    world w;
    w.add("alice@example.com");
    w.add("bob@example.com");
    w.add("carol@example.com");
    w.befriend("alice@example.com", "bob@example.com");
    w.befriend("alice@example.com", "carol@example.com");

    ns_client a(w.f, w.svc), b(w.f, w.svc), c(w.f, w.svc);
    sign_in(w, b, 9, "bob@example.com", "NLN 0");
    sign_in(w, c, 12, "carol@example.com", "NLN 0");
    CHECK(sign_in(w, a, 5, "alice@example.com") ==
          "CHG 6 NLN\r\nILN 6 NLN bob@example.com bob@example.com\r\nILN 6 NLN carol@example.com carol@example.com\r\n");

    CHECK(a.send("ADD 8 BL bob@example.com bob@example.com") == "219 8\r\n");  // Bob is on the AL
    // Version 6 after befriending both; the REM and ADD take 7 and 8.
    CHECK(a.send("REM 9 AL bob@example.com") == "REM 9 AL 7 bob@example.com\r\n");
    CHECK(a.send("ADD 10 BL bob@example.com bob@example.com") == "ADD 10 BL 8 bob@example.com bob@example.com\r\n");
    CHECK(b.wait_for("FLN alice@example.com\r\n").ends_with("FLN alice@example.com\r\n"));

    ns_client a12(w.f, w.svc);
    a.closed();
    sign_in(w, a12, 12, "alice@example.com", "BSY 0");
    c.wait_for("NLN BSY alice@example.com");  // and the FLN of Alice's first session before it
    CHECK(a12.send("REM 7 AL carol@example.com") == "REM 7 AL carol@example.com\r\n");
    CHECK(a12.send("ADC 8 BL N=carol@example.com") == "ADC 8 BL N=carol@example.com\r\n");
    CHECK(c.wait_for("FLN alice@example.com\r\n").ends_with("FLN alice@example.com\r\n"));
}

TEST_CASE("BLP and GTC: stored values, a re-set succeeds unchanged, 201 for a bad value", "[ns]") {
    world w;
    w.add("alice@example.com");

    ns_client a(w.f, w.svc);
    sign_in(w, a, 7, "alice@example.com");
    CHECK(a.send("BLP 7 AL") == "BLP 7 1 AL\r\n");
    // Never 218: msn-pecan re-sends BLP on every sign-on (§3.10, §4.3).
    CHECK(a.send("BLP 8 AL") == "BLP 8 1 AL\r\n");
    CHECK(a.send("BLP 9 BL") == "BLP 9 2 BL\r\n");
    CHECK(a.send("GTC 10 N") == "GTC 10 3 N\r\n");
    CHECK(a.send("GTC 11 N") == "GTC 11 3 N\r\n");
    CHECK(a.send("BLP 12 XX") == "201 12\r\n");
    CHECK(a.send("SYN 13 0").starts_with("SYN 13 3\r\nGTC 13 3 N\r\nBLP 13 3 BL\r\n"));

    ns_client b(w.f, w.svc);
    a.closed();
    sign_in(w, b, 12, "alice@example.com", "NLN 0");
    CHECK(b.send("BLP 7 AL") == "BLP 7 AL\r\n");  // no list version from MSNP10
    CHECK(b.send("BLP 8 AL") == "BLP 8 AL\r\n");
}

TEST_CASE("harmless list requests succeed: AL/BL re-adds and removals, ADC RL and REM PL from MSNP11", "[ns]") {
    world w;
    w.add("alice@example.com");
    w.add("bob@example.com");

    ns_client a(w.f, w.svc);
    sign_in(w, a, 12, "alice@example.com", "NLN 0");
    CHECK(a.send("ADC 7 AL N=bob@example.com") == "ADC 7 AL N=bob@example.com\r\n");
    CHECK(a.send("ADC 8 AL N=bob@example.com") == "ADC 8 AL N=bob@example.com\r\n");
    CHECK(a.send("REM 9 BL bob@example.com") == "REM 9 BL bob@example.com\r\n");
    CHECK(a.send("ADC 10 BL N=bob@example.com") == "219 10\r\n");  // still exclusive
    CHECK(a.send("ADC 11 RL N=bob@example.com") == "ADC 11 RL N=bob@example.com\r\n");
    CHECK(a.send("REM 12 PL bob@example.com") == "REM 12 PL bob@example.com\r\n");
    CHECK(a.send("ADC 13 RL N=@@a") == "201 13\r\n");
    CHECK(a.send("REM 14 PL alice@example.com") == "201 14\r\n");
    CHECK(a.send("ADC 15 FL N=bob@example.com F=Bob").starts_with("ADC 15 FL N=bob@example.com F=Bob C="));
    CHECK(a.send("ADC 16 FL N=bob@example.com F=Bob") == "215 16\r\n");  // the FL keeps its errors

    ns_client b(w.f, w.svc);
    sign_in(w, b, 10, "bob@example.com", "NLN 0");
    CHECK(b.send("ADC 7 RL N=alice@example.com") == "201 7\r\n");  // MSNP10: not yet (§3.10)
}

// ------------------------------------------------------------ switchboards

TEST_CASE("XFR SB needs a first CHG and gives a cookie for a new room; RNG for an invitation", "[ns]") {
    world w;
    w.add("alice@example.com", "Alice A.");
    w.add("bob@example.com");
    w.befriend("alice@example.com", "bob@example.com");

    ns_client a(w.f, w.svc), b(w.f, w.svc);
    login(w, a, 12, "alice@example.com");
    CHECK(a.send("XFR 5 SB") == "913 5\r\n");  // before the first CHG (§4.1)
    a.send("CHG 6 NLN 0");
    CHECK(a.send("XFR 7 NS") == "201 7\r\n");
    const std::string xfr = a.send("XFR 8 SB");
    const std::string head = "XFR 8 SB 127.0.0.1:1863 CKI ";
    REQUIRE(xfr.starts_with(head));
    const auto grant = w.svc.redeem_sb_cookie(xfr.substr(head.size(), xfr.size() - head.size() - 2), "alice@example.com");
    REQUIRE(grant);
    CHECK(grant->dialect == 12);
    CHECK(grant->display_name == "Alice A.");

    sign_in(w, b, 8, "bob@example.com", "NLN 0");
    // What the SB does for USR and CAL (§4.5): create and join the room, then invite.
    const std::string room = grant->room;
    test::as<frame::ack>(w.f.ask("alice@example.com", room, frame::room_create{frame::room_policy::invite_only, {}}));
    test::as<frame::room_members>(w.f.ask("alice@example.com", room,
                                          frame::room_join{{"alice@example.com", "sb-ep", "Alice A.", 0, {}}}));
    test::as<frame::ack>(w.f.ask("alice@example.com", room, frame::room_invite{"bob@example.com", {}, {}}));
    const std::string rng = b.wait_for("RNG ");
    const std::string session = room.substr(5);
    const std::string rng_head = "RNG " + session + " 127.0.0.1:1863 CKI ";
    REQUIRE(rng.starts_with(rng_head));
    const auto space = rng.find(' ', rng_head.size());
    REQUIRE(space != std::string::npos);
    CHECK(rng.substr(space) == " alice@example.com Alice%20A.\r\n");
    const auto bob_grant = w.svc.redeem_sb_cookie(rng.substr(rng_head.size(), space - rng_head.size()), "bob@example.com");
    REQUIRE(bob_grant);
    CHECK(bob_grant->handle == "bob@example.com");
    CHECK(bob_grant->room == room);
    CHECK(bob_grant->dialect == 8);
    CHECK(bob_grant->display_name == "bob@example.com");
}

// ------------------------------------------------------------ errors and ends

TEST_CASE("VER: no common dialect, a second VER, a bad TrID", "[ns]") {
    world w;
    for (const char* ver : {"VER 1 MSNP99 CVR0", "VER 1 MSNP1", "VER 1 CVR0"}) {
        ns_client c(w.f, w.svc);
        CHECK(c.send(ver) == "VER 1 0\r\n");
        CHECK(c.is_closed());
    }
    ns_client highest(w.f, w.svc);
    CHECK(highest.send("VER 1 MSNP18 MSNP12 MSNP11 MSNP8") == "VER 1 MSNP12\r\n");  // no CVR0 offered, none echoed
    CHECK(highest.machine().dialect() == 12);
    CHECK(highest.send("VER 2 MSNP8") == "715 2\r\n");
    CHECK(highest.is_closed());

    ns_client bad(w.f, w.svc);
    CHECK(bad.send("VER x MSNP8") == "");
    CHECK(bad.is_closed());
}

TEST_CASE("Authentication failures: 911 and close", "[ns]") {
    world w;
    w.add("alice@example.com");
    w.add("bob@example.com");

    SECTION("a wrong MD5 response") {
        ns_client c(w.f, w.svc);
        c.send("VER 1 MSNP7");
        c.send("USR 2 MD5 I alice@example.com");
        CHECK(c.send("USR 3 MD5 S " + md5_hex("wrong" + password)) == "911 3\r\n");
        CHECK(c.is_closed());
    }
    SECTION("a ticket issued to someone else") {
        ns_client c(w.f, w.svc);
        c.send("VER 1 MSNP8");
        c.send("USR 2 TWN I alice@example.com");
        CHECK(c.send("USR 3 TWN S t=ticket-bob@example.com&p=") == "911 3\r\n");
        CHECK(c.is_closed());
    }
    SECTION("a ticket never issued") {
        ns_client c(w.f, w.svc);
        c.send("VER 1 MSNP12");
        c.send("USR 2 TWN I alice@example.com");
        CHECK(c.send("USR 3 TWN S forged") == "911 3\r\n");
        CHECK(c.is_closed());
    }
    SECTION("a valid ticket for a user without an account") {
        ns_client c(w.f, w.svc);
        c.send("VER 1 MSNP12");
        c.send("USR 2 TWN I nobody@example.com");
        CHECK(c.send("USR 3 TWN S ticket-nobody@example.com") == "911 3\r\n");
        CHECK(c.is_closed());
    }
    SECTION("MD5 under MSNP8 and TWN under MSNP7 close without a reply") {
        ns_client c(w.f, w.svc);
        c.send("VER 1 MSNP8");
        CHECK(c.send("INF 2") == "");
        CHECK(c.is_closed());
        ns_client d(w.f, w.svc);
        d.send("VER 1 MSNP8");
        CHECK(d.send("USR 2 MD5 I alice@example.com") == "");
        CHECK(d.is_closed());
        ns_client e(w.f, w.svc);
        e.send("VER 1 MSNP7");
        CHECK(e.send("USR 2 TWN I alice@example.com") == "");
        CHECK(e.is_closed());
    }
    SECTION("commands before login close") {
        for (const char* cmd : {"SYN 2 0", "PNG", "CHG 2 NLN"}) {
            ns_client c(w.f, w.svc);
            c.send("VER 1 MSNP8");
            CHECK(c.send(cmd) == "");
            CHECK(c.is_closed());
        }
    }
}

TEST_CASE("Errors after login: 201, 207, unknown commands, OUT OTH and OUT SSD", "[ns]") {
    world w;
    w.add("alice@example.com");

    ns_client a(w.f, w.svc);
    login(w, a, 9, "alice@example.com");
    const std::string endpoint = "ep1";  // fake_services' first id
    CHECK(a.send("CHG 5 FLN 0") == "201 5\r\n");  // §4.2
    CHECK(a.send("CHG 6 XYZ 0") == "201 6\r\n");
    CHECK(a.send("CHG 7 NLN lots") == "201 7\r\n");
    CHECK(a.send("USR 8 TWN I alice@example.com") == "207 8\r\n");
    CHECK(a.send("FOO 9 bar") == "200 9\r\n");  // §4.8 recommendation
    CHECK(a.send("UUX 10 0") == "502 10\r\n");  // MSNP11+
    CHECK(a.send("URL 11 INBOX") == "URL 11 /unused1 /unused2 1\r\n");
    CHECK(a.send("PRP 12 MFN Alice") == "715 12\r\n");  // the own name is REA before MSNP10

    // A user object that boots this endpoint for a newer login (§4.1).
    auto other = a.machine().on_frame(
        frame::frame{0, user("alice@example.com"), "alice@example.com", frame::bye{frame::error_code::internal, false, "elsewhere", "ep9"}});
    CHECK(other.bytes.empty());
    CHECK_FALSE(other.close);
    auto oth = a.machine().on_frame(
        frame::frame{0, user("alice@example.com"), "alice@example.com", frame::bye{frame::error_code::internal, false, "elsewhere", endpoint}});
    CHECK(oth.bytes == "OUT OTH\r\n");
    CHECK(oth.close);

    ns_client b(w.f, w.svc);
    login(w, b, 11, "alice@example.com");
    CHECK(b.shutdown() == "OUT SSD\r\n");
    CHECK(b.is_closed());
    CHECK(b.send("PNG") == "");  // nothing after the close
}

}  // namespace
