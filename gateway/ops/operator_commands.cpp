#include "gateway/ops/operator_commands.hpp"

#include "gateway/ops/control.hpp"
#include "gateway/ops/log.hpp"
#include "gateway/login/user_accounts.hpp"

#include "gateway/backends/embedded/accounts.hpp"
#include "gateway/backends/embedded/backend.hpp"
#include "gateway/backends/embedded/object.hpp"

#include "protocols/frame/frame.hpp"
#include "protocols/text/text.hpp"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <vector>

namespace switchyard::gateway::operator_commands {

namespace {

constexpr int failure = 1;
constexpr std::string_view room_prefix = "room:";

// Client-supplied text (display names, messages, handles typed by the
// operator) made safe for a terminal: control characters, C1 ones included,
// could move the cursor or rewrite the screen, and line breaks would split a
// table row.
std::string printable(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto b = static_cast<unsigned char>(s[i]);
        const bool c1 = b == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xa0 &&
                        static_cast<unsigned char>(s[i + 1]) >= 0x80;
        char escaped[8];
        if (b == '\n') {
            out += "\\n";
        } else if (b == '\t') {
            out += "\\t";
        } else if (b < 0x20 || b == 0x7f) {
            std::snprintf(escaped, sizeof escaped, "\\x%02x", b);
            out += escaped;
        } else if (c1) {
            std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned char>(s[++i]));
            out += escaped;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

// Columns are aligned by code points: close enough for names in a terminal.
std::size_t display_width(std::string_view s) {
    std::size_t n = 0;
    for (const char c : s) {
        if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++n;
    }
    return n;
}

// Rows of printable cells, the first one the header; two spaces between columns.
void print_table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> widths;
    for (const auto& row : rows) {
        widths.resize(std::max(widths.size(), row.size()));
        for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], display_width(row[i]));
    }
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line.append(widths[i] - display_width(row[i]) + 2, ' ');
        }
        std::printf("%s\n", line.c_str());
    }
}


int report(std::string_view message) {
    std::fprintf(stderr, "%s\n", printable(message).c_str());
    return failure;
}

// One line of stdin without its line break; a trailing CR too, for files
// written on Windows.
std::optional<std::string> read_line() {
    std::string line;
    if (!std::getline(std::cin, line)) return std::nullopt;
    if (line.ends_with('\r')) line.pop_back();
    return line;
}

tl::expected<std::string, std::string> read_hidden(const char* prompt) {
    termios shown{};
    if (::tcgetattr(STDIN_FILENO, &shown) != 0) {
        return tl::unexpected(std::string("cannot read the terminal's settings"));
    }
    termios hidden = shown;
    hidden.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    if (::tcsetattr(STDIN_FILENO, TCSAFLUSH, &hidden) != 0) {
        return tl::unexpected(std::string("cannot turn off echo on the terminal"));
    }
    std::fprintf(stderr, "%s", prompt);
    std::fflush(stderr);
    auto line = read_line();
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &shown);
    // The Enter the user typed was not echoed either.
    std::fprintf(stderr, "\n");
    if (!line) return tl::unexpected(std::string("no password entered; nothing was changed"));
    return std::move(*line);
}

tl::expected<std::string, std::string> read_new_password() {
    if (!::isatty(STDIN_FILENO)) {
        auto line = read_line();
        if (!line) return tl::unexpected(std::string("expected the password on a line of standard input"));
        return std::move(*line);
    }
    auto first = read_hidden("New password: ");
    if (!first) return first;
    auto second = read_hidden("Retype new password: ");
    if (!second) return second;
    if (*first != *second) return tl::unexpected(std::string("the passwords do not match; nothing was changed"));
    return first;
}

// With several embedded backends, listings say which one each row is from.
bool several_backends(const config::settings& s) { return s.backends.size() > 1; }

// ------------------------------------------------------------ accounts

// How a command reaches an account's user object: the backend itself,
// served by this process for the command's length while no gateway runs
// on it, or else the running gateway, through its control socket. Either
// way the frames reach the object, its accounts' single writer.
class accounts_channel {
public:
    static tl::expected<accounts_channel, std::string> open(const config::settings& s, const std::string& backend) {
        const auto it = std::find_if(s.backends.begin(), s.backends.end(),
                                     [&](const config::backend& b) { return b.name == backend; });
        if (it == s.backends.end()) return tl::unexpected("no backend " + backend + " in the settings");
        accounts_channel c;
        c.control_ = control::socket_path(s.data_dir);
        c.backend_ = backend;
        if (it->kind != config::backend_kind::embedded) return c;  // only a running gateway reaches it
        std::error_code ec;
        std::filesystem::create_directories(s.data_dir, ec);
        if (ec) return tl::unexpected(s.data_dir.string() + ": cannot create data directory: " + ec.message());
        try {
            auto opt = embedded_options(s, *it, {});
            opt.shards = 1;
            c.local_ = std::make_shared<embedded::backend>(std::move(opt));
        } catch (const embedded::database_in_use&) {
            // A gateway serves it: ask that one.
        } catch (const std::exception& e) {
            return tl::unexpected(std::string(e.what()));
        }
        return c;
    }

    // The final reply to `f`, or why there is none.
    tl::expected<frame::frame, std::string> call(frame::frame f) const {
        if (!local_) {
            if (f.object == directory) f.object += backend_;
            return control::call(control_, std::move(f), reply_wait);
        }
        f.corr = 1;
        auto answer = std::make_shared<std::promise<frame::frame>>();
        auto future = answer->get_future();
        local_->send(std::move(f), [answer](frame::frame r) { answer->set_value(std::move(r)); });
        if (future.wait_for(reply_wait) != std::future_status::ready) {
            return tl::unexpected(std::string("the backend did not answer in time"));
        }
        return future.get();
    }

    // Acknowledged, or the reason it was not, for the operator.
    tl::expected<void, std::string> change(frame::frame f) const {
        auto r = call(std::move(f));
        if (!r) return tl::unexpected(r.error());
        if (const auto* e = std::get_if<frame::error>(&r->content)) return tl::unexpected(e->reason);
        return {};
    }

    static constexpr std::string_view directory = "accounts:";

private:
    // scrypt may wait behind other logins.
    static constexpr std::chrono::seconds reply_wait{60};

    std::shared_ptr<embedded::backend> local_;
    std::filesystem::path control_;
    std::string backend_;
};

// The handle as accounts know it, and the channel to its backend.
tl::expected<std::pair<std::string, accounts_channel>, std::string> account_of(const config::settings& s,
                                                                              const config::route_table& routes,
                                                                              const std::string& handle) {
    auto normalised = embedded::normalize_account_handle(handle);
    if (!normalised) return tl::unexpected(normalised.error().message);
    auto channel = accounts_channel::open(s, user_backend(routes, *normalised));
    if (!channel) return tl::unexpected(channel.error());
    return std::pair{std::move(*normalised), std::move(*channel)};
}

frame::frame to_user(const std::string& handle, frame::body b) { return {0, "user:" + handle, {}, std::move(b)}; }

}  // namespace

int user_add(const config::settings& s, const config::route_table& routes, const std::string& handle,
             bool legacy_md5, const std::string& display_name) {
    auto account = account_of(s, routes, handle);
    if (!account) return report(account.error());
    if (auto ok = embedded::check_account_name(display_name); !display_name.empty() && !ok) {
        return report(ok.error().message);
    }
    auto password = read_new_password();
    if (!password) return report(password.error());
    const auto& [user, channel] = *account;
    if (auto added = channel.change(to_user(user, frame::account_create{std::move(*password), legacy_md5, display_name}));
        !added) {
        return report(added.error());
    }
    std::printf("added user %s%s\n", printable(user).c_str(), legacy_md5 ? " with MSNP2-7 MD5 login" : "");
    return 0;
}

int user_passwd(const config::settings& s, const config::route_table& routes, const std::string& handle,
                std::optional<bool> legacy_md5) {
    auto account = account_of(s, routes, handle);
    if (!account) return report(account.error());
    auto password = read_new_password();
    if (!password) return report(password.error());
    const auto& [user, channel] = *account;
    const frame::md5_login md5 = !legacy_md5 ? frame::md5_login::keep : *legacy_md5 ? frame::md5_login::on
                                                                                      : frame::md5_login::off;
    if (auto changed = channel.change(to_user(user, frame::account_password{std::move(*password), md5})); !changed) {
        return report(changed.error());
    }
    std::printf("changed the password of %s%s\n", printable(user).c_str(),
                !legacy_md5 ? "" : *legacy_md5 ? "; MSNP2-7 MD5 login on" : "; MSNP2-7 MD5 login off");
    return 0;
}

int user_del(const config::settings& s, const config::route_table& routes, const std::string& handle) {
    auto account = account_of(s, routes, handle);
    if (!account) return report(account.error());
    const auto& [user, channel] = *account;
    if (auto removed = channel.change(to_user(user, frame::account_delete{})); !removed) {
        return report(removed.error());
    }
    std::printf("removed user %s\n", printable(user).c_str());
    return 0;
}

int user_list(const config::settings& s) {
    std::vector<std::vector<std::string>> rows{{"HANDLE", "DISPLAY NAME", "LEGACY MD5", "CREATED"}};
    if (several_backends(s)) rows[0].emplace_back("BACKEND");
    for (const auto& b : s.backends) {
        if (b.kind != config::backend_kind::embedded) continue;
        auto channel = accounts_channel::open(s, b.name);
        if (!channel) return report(channel.error());
        frame::account_list page;
        do {
            auto r = channel->call(
                frame::frame{0, std::string(accounts_channel::directory), {}, frame::account_list{page.after, 0, {}, false}});
            if (!r) return report(b.name + ": " + r.error());
            if (const auto* e = std::get_if<frame::error>(&r->content)) return report(b.name + ": " + e->reason);
            const auto* got = std::get_if<frame::account_list>(&r->content);
            if (!got) return report(b.name + ": an unexpected reply " + std::string(frame::type_name(*r)));
            for (const auto& user : got->accounts) {
                rows.push_back({printable(user.handle), printable(user.display_name), user.md5_login ? "yes" : "no",
                                log::iso_time(user.created_ms)});
                if (several_backends(s)) rows.back().push_back(b.name);
            }
            page.more = got->more && !got->accounts.empty();
            if (page.more) page.after = got->accounts.back().handle;
        } while (page.more);
    }
    print_table(rows);
    return 0;
}

int room_list(const config::settings& s) {
    std::vector<std::vector<std::string>> rows{{"ROOM", "POLICY", "TITLE", "MEMBERS", "LAST SEQ"}};
    if (several_backends(s)) rows[0].emplace_back("BACKEND");
    for (const auto& b : s.backends) {
        auto db = open_backend_database(s, b.name);
        if (!db) return report(db.error());
        // The ring's newest message carries the room's last seq.
        auto& q = (*db)->prepare(
            "SELECT r.id, r.policy, r.title, (SELECT count(*) FROM room_members m WHERE m.room = r.id), "
            "coalesce((SELECT max(seq) FROM messages g WHERE g.room = r.id), 0) "
            "FROM rooms r ORDER BY r.id");
        q.bind();
        while (q.step()) {
            rows.push_back({printable(std::string(room_prefix) + q.text(0)),
                            std::string(frame::to_string(static_cast<frame::room_policy>(q.integer(1)))),
                            printable(q.text(2)), std::to_string(q.integer(3)), std::to_string(q.integer(4))});
            if (several_backends(s)) rows.back().push_back(b.name);
        }
        if ((*db)->failed()) return report(b.name + ": " + (*db)->error());
    }
    print_table(rows);
    return 0;
}

int room_history(const config::settings& s, const config::route_table& routes, const std::string& room,
                 std::size_t limit) {
    const std::string id = room.starts_with(room_prefix) ? room.substr(room_prefix.size()) : room;
    auto db = open_backend_database(s, routes.lookup(std::string(room_prefix) + id).backend);
    if (!db) return report(db.error());
    auto& exists = (*db)->prepare("SELECT 1 FROM rooms WHERE id = ?1");
    exists.bind(id);
    const bool found = exists.step();
    exists.run();
    if ((*db)->failed()) return report((*db)->error());
    if (!found) {
        return report("no room " + std::string(room_prefix) + id +
                      (id.starts_with("name:") ? "" : " (a named room's id is name:<name>: see room list)"));
    }

    std::vector<std::vector<std::string>> rows{{"SEQ", "TIME", "SENDER", "TEXT"}};
    // The newest `limit` by seq, then oldest first. Slots are seq % 100, so
    // slot order is not message order once the ring wraps.
    auto& q = (*db)->prepare(
        "SELECT seq, ts_ms, sender, text FROM "
        "(SELECT seq, ts_ms, sender, text FROM messages WHERE room = ?1 ORDER BY seq DESC LIMIT ?2) ORDER BY seq");
    q.bind(id, static_cast<std::uint64_t>(limit));
    while (q.step()) {
        rows.push_back({std::to_string(q.integer(0)), log::iso_time(static_cast<std::uint64_t>(q.integer(1))),
                        printable(q.text(2)), printable(q.text(3))});
    }
    if ((*db)->failed()) return report((*db)->error());
    print_table(rows);
    return 0;
}

}  // namespace switchyard::gateway::operator_commands
