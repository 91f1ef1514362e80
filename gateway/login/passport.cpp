#include "gateway/login/passport.hpp"

#include "gateway/ops/log.hpp"
#include "gateway/session/context.hpp"

#include "protocols/text/text.hpp"

#include <algorithm>
#include <atomic>
#include <memory>
#include <chrono>
#include <ctime>
#include <map>
#include <optional>

namespace switchyard::gateway {

// ------------------------------------------------------------ password_checker

namespace {

constexpr std::size_t waiting_per_thread = 32;
// Refusals answered late at once, at most; more are answered at once.
constexpr std::size_t max_late_replies = 1u << 16;

login_guard_options guard_options(const config::accounts_settings& a) {
    login_guard_options o;
    o.free_failures = a.login_failures_free;
    o.free_failures_per_address = a.login_failures_free_per_address;
    o.base_delay = a.login_failure_delay;
    o.max_delay = a.login_failure_max_delay;
    return o;
}

}  // namespace

password_checker::password_checker(const config::settings& s, hub& objects)
    : objects_(objects),
      guard_(guard_options(s.accounts)),
      queue_(s.accounts.max_concurrent_logins, waiting_per_thread * s.accounts.max_concurrent_logins,
             s.accounts.logins_per_address),
      late_(max_late_replies) {}

void password_checker::check(std::string handle, std::string password, std::string address, completion done) {
    const auto normalised = text::normalize_handle(handle);
    if (!normalised) {
        done(login_result::rejected, {});
        return;
    }
    const auto admission = guard_.admit(address, *normalised, login_guard::clock::now());
    if (!admission.allowed) {
        done(login_result::throttled, admission.retry_after);
        return;
    }
    // One completion shared by start and refuse: exactly one of them runs.
    auto shared_done = std::make_shared<completion>(std::move(done));
    const std::string key = login_guard::address_key(address);
    auto start = [this, shared_done, key, address, subject = *normalised, password = std::move(password)]() mutable {
        auto finish = [this, shared_done, key, address, subject](login_result r) {
            if (r == login_result::ok) {
                guard_.succeeded(address, subject, login_guard::clock::now());
            } else if (r == login_result::rejected) {
                guard_.failed(address, subject, login_guard::clock::now());
            }
            queue_.finish(key);
            (*shared_done)(r, r == login_result::busy ? std::chrono::seconds(5) : std::chrono::seconds(0));
        };
        frame::frame f{1, "user:" + subject, {}, frame::account_check{frame::credential::password, std::move(password)}};
        const bool sent = objects_.send(std::move(f), [finish](frame::frame r) {
            const auto* e = std::get_if<frame::error>(&r.content);
            if (!e) {
                finish(login_result::ok);
            } else if (e->code == frame::error_code::unauthenticated || e->code == frame::error_code::unknown_object) {
                finish(login_result::rejected);
            } else if (e->code == frame::error_code::rate_limited) {
                finish(login_result::busy);
            } else {
                log::error("login_check_failed", {{"error", frame::to_string(e->code)}, {"reason", e->reason}});
                finish(login_result::unavailable);
            }
        });
        if (!sent) {
            finish(login_result::unavailable);
        }
    };
    queue_.submit({admission.priority, key, std::move(start),
                   [shared_done] { (*shared_done)(login_result::busy, std::chrono::seconds(5)); }});
}

// ------------------------------------------------------------ HTTP services

namespace {

// Passport 1.4 (msnp-reference section 3.3 item 1): the nexus answers with
// the DALogin location; ConfigVersion as the official reply had it.
constexpr std::string_view nexus_path = "/rdr/pprdr.asp";
constexpr std::string_view login2_path = "/login2.srf";
constexpr std::string_view rst_path = "/RST.srf";
constexpr std::string_view passport_scheme = "Passport1.4";
// The failure reply's co-branding text, URL-encoded: the client shows it.
constexpr std::string_view failed_text = "The%20e-mail%20address%20or%20password%20is%20incorrect.";

std::uint64_t now_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// IIS, which served these paths, matched them without regard to case.
bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// %XX only: '+' stays '+', as clients encode a space as %20 (and a '+' in a
// password as %2B).
std::optional<std::string> url_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        const int hi = hex_value(s[i + 1]);
        const int lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

struct credentials {
    std::string handle;
    std::string password;
};

// `Authorization: Passport1.4 OrgVerb=GET,OrgURL=...,sign-in=<urlenc>,pwd=<urlenc>,<USR TWN S params>`
// (msnp-reference section 3.3 item 2). One published example repeats the
// scheme name, so any number of them is skipped.
std::optional<credentials> passport_credentials(std::string_view header) {
    header = trim(header);
    bool scheme = false;
    while (header.size() >= passport_scheme.size() && iequals(header.substr(0, passport_scheme.size()), passport_scheme) &&
           (header.size() == passport_scheme.size() || header[passport_scheme.size()] == ' ')) {
        header = trim(header.substr(passport_scheme.size()));
        scheme = true;
    }
    if (!scheme) return std::nullopt;
    std::optional<std::string> handle;
    std::optional<std::string> password;
    while (!header.empty()) {
        const auto comma = header.find(',');
        const std::string_view part = trim(header.substr(0, comma));
        header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
        const auto eq = part.find('=');
        if (eq == std::string_view::npos) continue;
        const std::string_view key = trim(part.substr(0, eq));
        const std::string_view value = part.substr(eq + 1);
        // MSN sends "pwd", the MS-PASS specification spells it "Pwd".
        if (iequals(key, "sign-in") && !handle) {
            handle = url_decode(value);
            if (!handle) return std::nullopt;
        } else if (iequals(key, "pwd") && !password) {
            password = url_decode(value);
            if (!password) return std::nullopt;
        }
    }
    if (!handle || !password) return std::nullopt;
    return credentials{std::move(*handle), std::move(*password)};
}

// ---- a small XML scan, enough for the RST envelope

// Characters of an element's text with the five named entities and numeric
// references resolved. Nullopt for anything else after '&'.
std::optional<std::string> xml_unescape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '&') {
            out.push_back(s[i]);
            continue;
        }
        const auto semi = s.find(';', i);
        if (semi == std::string_view::npos || semi - i > 10) return std::nullopt;
        const std::string_view name = s.substr(i + 1, semi - i - 1);
        i = semi;
        if (name == "lt") out.push_back('<');
        else if (name == "gt") out.push_back('>');
        else if (name == "amp") out.push_back('&');
        else if (name == "quot") out.push_back('"');
        else if (name == "apos") out.push_back('\'');
        else if (name.size() > 1 && name[0] == '#') {
            const bool hex = name[1] == 'x' || name[1] == 'X';
            const std::string_view digits = name.substr(hex ? 2 : 1);
            std::uint32_t cp = 0;
            if (digits.empty()) return std::nullopt;
            for (const char c : digits) {
                const int v = hex ? hex_value(c) : (c >= '0' && c <= '9' ? c - '0' : -1);
                if (v < 0) return std::nullopt;
                cp = cp * (hex ? 16 : 10) + static_cast<std::uint32_t>(v);
                if (cp > 0x10ffff) return std::nullopt;
            }
            if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff)) return std::nullopt;
            if (cp < 0x80) {
                out.push_back(static_cast<char>(cp));
            } else if (cp < 0x800) {
                out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
                out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
            } else if (cp < 0x10000) {
                out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
                out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
                out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
            } else {
                out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
                out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
                out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
                out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
            }
        } else {
            return std::nullopt;
        }
    }
    return out;
}


// The text of every element whose local name (after any prefix) is `local`,
// in document order, at most `limit` of them. Clients spell the prefixes
// differently (wsse:, wsa:), so only the local name counts. The body is at
// most 64 KiB and each step moves forward, so the scan is linear; an element
// whose text does not end at its own closing tag is skipped.
std::vector<std::string> element_texts(std::string_view xml, std::string_view local, std::size_t limit) {
    std::vector<std::string> found;
    std::size_t at = 0;
    while (found.size() < limit) {
        const auto open = xml.find('<', at);
        if (open == std::string_view::npos) break;
        at = open + 1;
        const auto name_end = xml.find_first_of(" \t\r\n/>", at);
        if (name_end == std::string_view::npos) break;
        const std::string_view name = xml.substr(at, name_end - at);
        const auto colon = name.rfind(':');
        if (name.empty() || name.front() == '/' || name.front() == '?' || name.front() == '!' ||
            name.substr(colon == std::string_view::npos ? 0 : colon + 1) != local) {
            continue;
        }
        const auto close = xml.find('>', name_end);
        if (close == std::string_view::npos) break;
        if (xml[close - 1] == '/') {  // <x/>
            found.emplace_back();
            at = close + 1;
            continue;
        }
        const auto text_end = xml.find('<', close + 1);
        if (text_end == std::string_view::npos) break;
        const std::string closing = "</" + std::string(name) + ">";
        if (xml.substr(text_end, closing.size()) == closing) {
            if (auto text = xml_unescape(xml.substr(close + 1, text_end - close - 1))) found.push_back(std::move(*text));
        }
        at = text_end;
    }
    return found;
}

std::optional<std::string> first_element_text(std::string_view xml, std::string_view local) {
    auto texts = element_texts(xml, local, 1);
    if (texts.empty()) return std::nullopt;
    return std::move(texts.front());
}


// The handle as accounts and tickets know it; nullopt when there is none or
// it is not a handle at all.
std::optional<std::string> normalized(const std::optional<std::string>& handle) {
    if (!handle) return std::nullopt;
    auto h = text::normalize_handle(*handle);
    if (!h) return std::nullopt;
    return std::move(*h);
}

std::string_view to_string(login_result r) {
    switch (r) {
        case login_result::ok: return "ok";
        case login_result::rejected: return "rejected";
        case login_result::busy: return "busy";
        case login_result::throttled: return "throttled";
        case login_result::unavailable: return "unavailable";
    }
    return "?";
}

// One line per check that ran. Refusals before any check are not logged
// each: throttled ones by the login_guard (per address, every 10 s at most),
// busy ones here at most once a second with how many went unlogged.
void log_login(std::string_view service, std::string_view handle, std::string_view address, login_result r) {
    if (r == login_result::throttled) return;
    if (r == login_result::busy) {
        static std::atomic<std::int64_t> last_ms{0};
        static std::atomic<std::uint64_t> unlogged{0};
        const auto now = static_cast<std::int64_t>(now_ms());
        auto before = last_ms.load();
        if (now - before < 1000 || !last_ms.compare_exchange_strong(before, now)) {
            ++unlogged;
            return;
        }
        log::warn("passport_login", {{"service", service}, {"handle", handle}, {"address", address},
                                     {"result", to_string(r)}, {"busy_unlogged", unlogged.exchange(0)}});
        return;
    }
    log::write(r == login_result::ok || r == login_result::rejected ? log::log_level::info : log::log_level::warn,
               "passport_login", {{"service", service}, {"handle", handle}, {"address", address}, {"result", to_string(r)}});
}

// 503 when the service is busy or down, 429 when this client or handle has
// failed too often lately; both say when to come back (RFC 6585 section 4).
http_response unavailable(const http_request& req, login_result r, std::chrono::seconds retry_after) {
    if (r == login_result::throttled) {
        auto res = make_response(req, http::status::too_many_requests,
                                 "too many failed logins; try again in " + std::to_string(retry_after.count()) + " s\n");
        res.set(http::field::retry_after, std::to_string(retry_after.count()));
        return res;
    }
    auto res = make_response(req, http::status::service_unavailable,
                             r == login_result::busy ? "too many logins at once; try again shortly\n"
                                                     : "the account service is unavailable\n");
    if (r == login_result::busy) res.set(http::field::retry_after, std::to_string(std::max<std::int64_t>(retry_after.count(), 1)));
    return res;
}

// ---- GET /rdr/pprdr.asp

http_response nexus(session_context& ctx, const http_request& req) {
    const config::listener* l = ctx.settings.find_listener("https");
    std::string host = l ? l->public_endpoint : std::string{};
    if (host.empty()) {
        // Only a loopback listener may leave public_endpoint empty
        // (config::parse_settings): there the Host this client reached the
        // nexus with is one this machine answers for (tests, a terminator
        // on the same host). It must still be a plain host to sit inside
        // the comma-separated value.
        host = std::string_view(req[http::field::host]);
        if (!config::is_login_host(host)) {
            // msn-pecan 0.1.1 and Pidgin 2.0-2.2 send no Host at all
            // (msnp-reference 3.10): only the setting can name the server.
            return make_response(req, http::status::bad_request,
                                 "no Host header names this server: set public_endpoint in [listeners.https] to "
                                 "the host[:port] clients reach the login service at\n");
        }
    }
    auto res = make_response(req, http::status::ok, "", "text/html");
    res.set(http::field::cache_control, "private");
    // DALogin without a scheme, as the official nexus sent it. Stock
    // clients look for "PassportURLs", Escargot-patched ones for the
    // "Passporturls" a proxy re-cased it to, both case-sensitively; Beast
    // keeps each spelling as inserted (msnp-reference section 3.3 item 1).
    const std::string urls = "DARealm=Passport.Net,DALogin=" + host + std::string(login2_path) + ",ConfigVersion=15";
    res.insert("PassportURLs", urls);
    res.insert("Passporturls", urls);
    return res;
}

// ---- GET /login2.srf

http_response login2_failed(const http_request& req) {
    auto res = make_response(req, http::status::unauthorized, "");
    res.set(http::field::www_authenticate,
            "Passport1.4 da-status=failed,srealm=Passport.NET,ts=-3,prompt,"
            "cburl=http://messenger.msn.com/images/logo102x88.gif,cbtxt=" +
                std::string(failed_text));
    return res;
}

void login2(session_context& ctx, const std::string& address, http_request&& req, http_reply reply) {
    auto creds = passport_credentials(req[http::field::authorization]);
    auto handle = normalized(creds ? std::optional(creds->handle) : std::nullopt);
    if (!handle) {
        // Nothing to check: no account can match, so no hash to spend.
        log_login(login2_path, creds ? creds->handle : "", address, login_result::rejected);
        return reply(login2_failed(req));
    }
    std::string subject = *handle;
    ctx.logins.check(std::move(*handle), std::move(creds->password), address,
                    [&ctx, req = std::move(req), reply = std::move(reply), subject,
                     address](login_result r, std::chrono::seconds retry_after) {
                        log_login(login2_path, subject, address, r);
                        if (r == login_result::throttled || r == login_result::busy) {
                            return ctx.logins.answer_later(retry_after, [reply, res = unavailable(req, r, retry_after)] {
                                reply(res);
                            });
                        }
                        if (r != login_result::ok) {
                            return reply(r == login_result::rejected ? login2_failed(req)
                                                                     : unavailable(req, r, retry_after));
                        }
                        const std::string ticket = ctx.tokens.issue_ticket(subject, now_ms());
                        auto res = make_response(req, http::status::ok, "");
                        // The client sends what is inside from-PP='...' in
                        // `USR t TWN S`; only its t= part is checked.
                        res.set(http::field::authentication_info,
                                "Passport1.4 da-status=success,tname=MSPAuth,tname=MSPProf,tname=MSPSec,from-PP='t=" +
                                    ticket + "&p=',ru=http://messenger.msn.com");
                        reply(std::move(res));
                    });
}

// ---- POST /RST.srf

// The domains a client may ask tokens for in one request (MSN 7.5 asks for
// two, WLM 8.x for seven).
constexpr std::size_t max_requested_tokens = 16;
constexpr std::string_view legacy_token_domain = "http://Passport.NET/tb";
constexpr std::string_view messenger_domain = "messenger.msn.com";

http_response soap(const http_request& req, std::string body) {
    return make_response(req, http::status::ok, std::move(body), "text/xml; charset=utf-8");
}

// The fault in the shape Microsoft's server sent (captures quoted by Escargot
// and libpurple): S:Fault right after S:Header, without S:Body. Answered with
// 200 OK, as the Escargot server answers it and the clients it serves accept
// (msnp-reference section 3.6).
http_response rst_failed(const http_request& req) {
    return soap(req,
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                "<S:Envelope xmlns:S=\"http://schemas.xmlsoap.org/soap/envelope/\" "
                "xmlns:wsse=\"http://schemas.xmlsoap.org/ws/2003/06/secext\" "
                "xmlns:psf=\"http://schemas.microsoft.com/Passport/SoapServices/SOAPFault\">"
                "<S:Header><psf:pp><psf:serverVersion>1</psf:serverVersion><psf:authstate>0x80048800</psf:authstate>"
                "<psf:reqstatus>0x80048823</psf:reqstatus></psf:pp></S:Header>"
                "<S:Fault><faultcode>wsse:FailedAuthentication</faultcode>"
                "<faultstring>Authentication Failure</faultstring></S:Fault></S:Envelope>");
}

// One RequestSecurityTokenResponse per requested domain, in request order.
// Every domain gets the same compact ticket; the Passport.NET/tb entry is a
// legacy blob the client stores without reading (msnp-reference section 3.6).
// Token ids count requests from 0, so MSN 7.5's messenger.msn.com, asked for
// second, is "Compact1" where it looks for it (msnp-reference section 3.4).
std::string rst_success(std::string_view handle, const std::vector<std::string>& domains, std::string_view ticket,
                        std::uint64_t now, std::uint64_t expires) {
    const std::string created = log::iso_time(now);
    const std::string expiry = log::iso_time(expires);
    std::string xml =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
        "<S:Envelope xmlns:S=\"http://schemas.xmlsoap.org/soap/envelope/\">"
        "<S:Header><psf:pp xmlns:psf=\"http://schemas.microsoft.com/Passport/SoapServices/SOAPFault\">"
        "<psf:serverVersion>1</psf:serverVersion><psf:authstate>0x48803</psf:authstate>"
        "<psf:reqstatus>0x0</psf:reqstatus><psf:credProperties>"
        "<psf:credProperty Name=\"AuthMembername\">" +
        text::xml_escape(handle) +
        "</psf:credProperty></psf:credProperties></psf:pp></S:Header>"
        "<S:Body><wst:RequestSecurityTokenResponseCollection "
        "xmlns:wst=\"http://schemas.xmlsoap.org/ws/2004/04/trust\" "
        "xmlns:wsse=\"http://schemas.xmlsoap.org/ws/2003/06/secext\" "
        "xmlns:wsu=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd\" "
        "xmlns:wsp=\"http://schemas.xmlsoap.org/ws/2002/12/policy\" "
        "xmlns:wsa=\"http://schemas.xmlsoap.org/ws/2004/03/addressing\">";
    for (std::size_t i = 0; i < domains.size(); ++i) {
        const bool legacy = domains[i] == legacy_token_domain;
        const std::string id = (legacy ? "BinaryDAToken" : "Compact") + std::to_string(i);
        xml += "<wst:RequestSecurityTokenResponse><wst:TokenType>";
        xml += legacy ? "urn:passport:legacy" : "urn:passport:compact";
        xml += "</wst:TokenType><wsp:AppliesTo><wsa:EndpointReference><wsa:Address>" + text::xml_escape(domains[i]) +
               "</wsa:Address></wsa:EndpointReference></wsp:AppliesTo><wst:LifeTime><wsu:Created>" + created +
               "</wsu:Created><wsu:Expires>" + expiry + "</wsu:Expires></wst:LifeTime><wst:RequestedSecurityToken>";
        if (legacy) {
            xml += "<EncryptedData xmlns=\"http://www.w3.org/2001/04/xmlenc#\" Id=\"" + id +
                   "\" Type=\"http://www.w3.org/2001/04/xmlenc#Element\"><EncryptionMethod "
                   "Algorithm=\"http://www.w3.org/2001/04/xmlenc#tripledes-cbc\"></EncryptionMethod>"
                   "<ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:KeyName>http://Passport.NET/STS"
                   "</ds:KeyName></ds:KeyInfo><CipherData><CipherValue></CipherValue></CipherData></EncryptedData>";
        } else {
            // The ticket's characters need no escaping; the '&' does.
            xml += "<wsse:BinarySecurityToken Id=\"" + id + "\">t=" + std::string(ticket) +
                   "&amp;p=</wsse:BinarySecurityToken>";
        }
        xml += "</wst:RequestedSecurityToken><wst:RequestedTokenReference><wsse:KeyIdentifier ValueType=\"";
        xml += legacy ? "urn:passport" : "urn:passport:compact";
        xml += "\"></wsse:KeyIdentifier><wsse:Reference URI=\"#" + id +
               "\"></wsse:Reference></wst:RequestedTokenReference></wst:RequestSecurityTokenResponse>";
    }
    xml += "</wst:RequestSecurityTokenResponseCollection></S:Body></S:Envelope>";
    return xml;
}

void rst(session_context& ctx, const std::string& address, http_request&& req, http_reply reply) {
    const std::string_view body = req.body();
    auto name = first_element_text(body, "Username");
    auto password = first_element_text(body, "Password");
    auto handle = normalized(name);
    if (!password || !handle) {
        log_login(rst_path, name.value_or(""), address, login_result::rejected);
        return reply(rst_failed(req));
    }
    std::vector<std::string> domains = element_texts(body, "Address", max_requested_tokens);
    if (domains.empty()) domains.emplace_back(messenger_domain);
    std::string subject = *handle;
    ctx.logins.check(std::move(*handle), std::move(*password), address,
                    [&ctx, req = std::move(req), reply = std::move(reply), subject, address,
                     domains = std::move(domains)](login_result r, std::chrono::seconds retry_after) {
                        log_login(rst_path, subject, address, r);
                        if (r == login_result::throttled || r == login_result::busy) {
                            return ctx.logins.answer_later(retry_after, [reply, res = unavailable(req, r, retry_after)] {
                                reply(res);
                            });
                        }
                        if (r != login_result::ok) {
                            return reply(r == login_result::rejected ? rst_failed(req)
                                                                     : unavailable(req, r, retry_after));
                        }
                        const std::uint64_t now = now_ms();
                        const std::string ticket = ctx.tokens.issue_ticket(subject, now);
                        const auto expires =
                            now + static_cast<std::uint64_t>(ctx.tokens.options().ticket_lifetime.count());
                        reply(soap(req, rst_success(subject, domains, ticket, now, expires)));
                    });
}

// ---- POST /OimWS/oim.asmx (offline messages)

constexpr std::string_view oim_store_path = "/OimWS/oim.asmx";

// Offline messages are not stored yet, so every Store/Store2 is refused
// with the fault that makes clients tell their user the message was not
// delivered. msn-pecan (pn_oim.c process_body_send) looks for
// "q0:SystemUnavailable" in the body and shows "the message wasn't sent";
// libpurple's msn (oim.c msn_oim_send_read_cb) compares the faultcode with
// it and reports the same. The other faults are worse: a LockKeyChallenge
// (with q0:AuthenticationFailed) makes both resend with a computed lock
// key, again and again; msn-pecan treats a reply without a fault it knows,
// a 404 included, as delivered. The "q0:" prefix is matched as text, so it
// is spelled exactly so. SOAP 1.1 sends faults with status 500.
http_response oim_unavailable(const http_request& req) {
    auto res = make_response(
        req, http::status::internal_server_error,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
        "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" "
        "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">"
        "<soap:Body><soap:Fault>"
        "<faultcode xmlns:q0=\"http://messenger.msn.com/ws/2004/09/oim/\">q0:SystemUnavailable</faultcode>"
        "<faultstring>offline messages are not stored by this server</faultstring>"
        "<faultactor>https://ows.messenger.msn.com/OimWS/oim.asmx</faultactor>"
        "<detail/></soap:Fault></soap:Body></soap:Envelope>",
        "text/xml; charset=utf-8");
    return res;
}

}  // namespace

void handle_passport(session_context& ctx, const std::string& address, http_request&& req, http_reply reply) {
    const std::string_view path = path_of(req.target());
    const auto method = req.method();
    if (iequals(path, nexus_path)) {
        if (method != http::verb::get) return reply(make_response(req, http::status::method_not_allowed, "use GET\n"));
        return reply(nexus(ctx, req));
    }
    if (iequals(path, login2_path)) {
        if (method != http::verb::get) return reply(make_response(req, http::status::method_not_allowed, "use GET\n"));
        return login2(ctx, address, std::move(req), std::move(reply));
    }
    if (iequals(path, rst_path)) {
        if (method != http::verb::post) {
            return reply(make_response(req, http::status::method_not_allowed, "use POST\n"));
        }
        return rst(ctx, address, std::move(req), std::move(reply));
    }
    if (iequals(path, oim_store_path)) {
        if (method != http::verb::post) {
            return reply(make_response(req, http::status::method_not_allowed, "use POST\n"));
        }
        return reply(oim_unavailable(req));
    }
    reply(make_response(req, http::status::not_found, "not found\n"));
}

}  // namespace switchyard::gateway
