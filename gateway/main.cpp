// switchyard: the gateway executable.
//   switchyard [run] [-c FILE]    start the gateway (the default command)
//   switchyard check [-c FILE]    validate the settings and routes files
//   switchyard user ... [-c FILE] add, change, remove and list accounts
//   switchyard room ... [-c FILE] list rooms and show their history
#include "gateway/config/config.hpp"
#include "gateway/ops/operator_commands.hpp"
#include "gateway/net/server.hpp"

#include "protocols/frame/frame.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>

namespace {

using namespace switchyard::gateway;
namespace ops = operator_commands;

constexpr const char* default_config = "conf/switchyard.toml";

struct configuration {
    config::settings settings;
    config::route_table routes;
};

// Loads the settings and the routes file they name; prints the first error.
tl::expected<configuration, int> load(const std::string& file) {
    auto s = config::load_settings(file);
    if (!s) {
        std::fprintf(stderr, "%s\n", s.error().to_string().c_str());
        return tl::unexpected(1);
    }
    std::vector<std::string> backends;
    for (const auto& b : s->backends) {
        backends.push_back(b.name);
    }
    auto routes = config::load_routes(s->routes_file, backends);
    if (!routes) {
        std::fprintf(stderr, "%s\n", routes.error().to_string().c_str());
        return tl::unexpected(1);
    }
    return configuration{std::move(*s), std::move(*routes)};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Switchyard: an MSNP and WebSocket messaging gateway"};
    app.set_version_flag("--version", "switchyard 0.1.0");
    std::string file = default_config;
    // Every command takes -c, before or after its own arguments.
    const auto with_config = [&](CLI::App* cmd) {
        cmd->add_option("-c,--config", file, "gateway settings file")->capture_default_str();
        return cmd;
    };
    with_config(&app);

    with_config(app.add_subcommand("run", "start the gateway (the default)"));
    auto* check_cmd =
        with_config(app.add_subcommand("check", "validate the settings file and the routes file it names"));

    std::string handle;
    std::string display_name;
    bool legacy_md5 = false;
    bool no_legacy_md5 = false;
    const char* const handle_help = "the user's handle, such as alice@example.com";
    auto* user_cmd = with_config(app.add_subcommand(
        "user", "manage accounts of the embedded backend; passwords are read from standard input"));
    user_cmd->require_subcommand(1);
    auto* user_add = with_config(user_cmd->add_subcommand("add", "create an account"));
    user_add->add_option("HANDLE", handle, handle_help)->required();
    user_add->add_flag("--legacy-md5", legacy_md5,
                       "also allow MD5 login (MSNP2-7: MSN 1.0-4.7); stores md5(salt + password), which lets "
                       "anyone who reads the database log in as the user");
    user_add->add_option("--name", display_name, "display name (default: the handle)");
    auto* user_passwd = with_config(user_cmd->add_subcommand("passwd", "set an account's password"));
    user_passwd->add_option("HANDLE", handle, handle_help)->required();
    auto* md5_on = user_passwd->add_flag("--legacy-md5", legacy_md5, "turn MD5 login (MSNP2-7) on");
    auto* md5_off = user_passwd->add_flag("--no-legacy-md5", no_legacy_md5,
                                          "turn MD5 login off (default: leave it as it is)");
    md5_on->excludes(md5_off);
    auto* user_del = with_config(user_cmd->add_subcommand("del", "remove an account with its contact lists"));
    user_del->add_option("HANDLE", handle, handle_help)->required();
    auto* user_list = with_config(user_cmd->add_subcommand("list", "list accounts"));

    std::string room;
    std::size_t limit = switchyard::frame::limits::history;
    auto* room_cmd = with_config(app.add_subcommand("room", "inspect rooms of the embedded backend"));
    room_cmd->require_subcommand(1);
    auto* room_list = with_config(room_cmd->add_subcommand("list", "list rooms"));
    auto* room_history =
        with_config(room_cmd->add_subcommand("history", "show a room's stored messages, oldest first"));
    room_history->add_option("ROOM", room, "the room's id, with or without room:")->required();
    room_history->add_option("--limit", limit, "show only the newest N messages")
        ->check(CLI::Range(std::size_t{1}, switchyard::frame::limits::history))
        ->capture_default_str();

    app.require_subcommand(0, 1);
    CLI11_PARSE(app, argc, argv);

    auto loaded = load(file);
    if (!loaded) {
        return loaded.error();
    }
    const auto& [settings, routes] = *loaded;
    if (check_cmd->parsed()) {
        const auto tls = check_tls(settings);
        for (const std::string& problem : tls) std::fprintf(stderr, "%s\n", problem.c_str());
        if (!tls.empty()) return 1;
        std::printf("%s: ok\n%s: ok\n", settings.file.string().c_str(), settings.routes_file.string().c_str());
        for (const std::string& warning : switchyard::gateway::config::warnings(settings)) {
            std::printf("warning: %s\n", warning.c_str());
        }
        return 0;
    }
    if (user_add->parsed()) return ops::user_add(settings, routes, handle, legacy_md5, display_name);
    if (user_passwd->parsed()) {
        const auto change = legacy_md5 ? std::optional(true) : no_legacy_md5 ? std::optional(false) : std::nullopt;
        return ops::user_passwd(settings, routes, handle, change);
    }
    if (user_del->parsed()) return ops::user_del(settings, routes, handle);
    if (user_list->parsed()) return ops::user_list(settings);
    if (room_list->parsed()) return ops::room_list(settings);
    if (room_history->parsed()) return ops::room_history(settings, routes, room, limit);
    return run(settings);
}
